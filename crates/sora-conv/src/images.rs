//! Image data: IDX files (MNIST style), image-folder trees, per-channel normalization and
//! seeded augmentation.
//!
//! Every reader returns an [`ImageSet`]: `n` images stored as one flat `Vec<f32>` of shape
//! `n × channels × height × width` (CHW per image, row-major), pixel values scaled to `[0, 1]`.
//! Every bad input (missing file, corrupt image, inconsistent header, odd folder layout) is an
//! [`ImageError`] naming the offending file or folder; nothing here panics on file contents.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageReader};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 2049;
/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 2051;
/// The most bytes of data an IDX file may declare (and a gzip file expand to): 4 GiB.
pub const MAX_IDX_BYTES: u64 = 4 << 30;
/// The most pixels an image file may have by default (`ImageOptions::max_pixels`): 40
/// million, e.g. 8000×5000; a larger one is refused before it is decoded.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// Largest accepted image side (pixels) for a resize target.
pub const MAX_SIDE: usize = 4096;

/// File extensions (lower case) decoded as images.
const SUPPORTED: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif"];
/// Image extensions (lower case) recognised but not decoded: an error rather than a skip.
const UNSUPPORTED: &[&str] = &[
    "webp", "tif", "tiff", "heic", "heif", "avif", "jxl", "ico", "tga", "ppm", "pgm", "pbm", "pnm",
    "qoi",
];

/// An error reading or writing image data; every variant names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// An image has more pixels than the limit.
    #[error(
        "{}: {width}×{height} pixels, more than the limit of {limit} (raise it with --max-pixels)",
        file.display()
    )]
    TooManyPixels {
        /// The file.
        file: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The limit in force.
        limit: u64,
    },
    /// The file could not be opened, read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is corrupt or truncated (image or gzip stream).
    #[error("{}: cannot decode: {message}", file.display())]
    Decode {
        /// The file.
        file: PathBuf,
        /// What the decoder reported.
        message: String,
    },
    /// The file is an image in a format this build cannot decode.
    #[error(
        "{}: unsupported image format (extension {extension:?}); supported: png, jpg, jpeg, bmp, gif",
        file.display()
    )]
    UnsupportedFormat {
        /// The file.
        file: PathBuf,
        /// The file's extension, lower case (empty when it has none).
        extension: String,
    },
    /// An IDX file starts with the wrong magic number.
    #[error("{}: not an IDX file of this kind: magic {found}, expected {expected}", file.display())]
    IdxMagic {
        /// The file.
        file: PathBuf,
        /// The magic number expected (2049 labels, 2051 images).
        expected: u32,
        /// The magic number found.
        found: u32,
    },
    /// An IDX file's length (bytes, after decompression) disagrees with its header.
    #[error(
        "{}: IDX file has {found} bytes, its header needs {expected} (truncated or extra data)",
        file.display()
    )]
    IdxLength {
        /// The file.
        file: PathBuf,
        /// Bytes the header calls for (header included).
        expected: u64,
        /// Bytes found (header included).
        found: u64,
    },
    /// The images and labels IDX files hold different numbers of items.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels",
        images.display(),
        labels.display()
    )]
    IdxCountMismatch {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// Number of images.
        n_images: usize,
        /// Number of labels.
        n_labels: usize,
    },
    /// An image-folder root has no class sub-folders.
    #[error("{}: no class folders (expected one sub-folder of images per class)", dir.display())]
    EmptyFolder {
        /// The root folder.
        dir: PathBuf,
    },
    /// An image-folder root has a single class sub-folder; classification needs two.
    #[error("{}: only one class folder ({class:?}); at least two are needed", dir.display())]
    OneClass {
        /// The root folder.
        dir: PathBuf,
        /// The single class's name.
        class: String,
    },
    /// A class folder holds no images.
    #[error("{}: class folder holds no png/jpg/jpeg/bmp/gif images", dir.display())]
    NoImages {
        /// The class folder.
        dir: PathBuf,
    },
    /// An image's size differs from the first image's while no resize was asked for.
    #[error(
        "{}: image is {found:?} (channels, height, width) but the first image is {expected:?}; \
         set a size to resize",
        file.display()
    )]
    SizeMismatch {
        /// The file.
        file: PathBuf,
        /// `(channels, height, width)` of the first image.
        expected: (usize, usize, usize),
        /// `(channels, height, width)` of this image.
        found: (usize, usize, usize),
    },
    /// An argument is invalid for this file (channel count, size, data length).
    #[error("{}: {message}", file.display())]
    Invalid {
        /// The file or folder the call was about.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result with [`ImageError`] as the default error.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

fn io_error(file: &Path) -> impl Fn(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        file: file.to_path_buf(),
        source,
    }
}

fn invalid(file: &Path, message: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

/// A set of `n` equally sized images with labels.
///
/// Invariants kept by the readers: `values.len() == n * channels * height * width` and
/// `labels.len() == sources.len() == n`.
#[derive(Clone, PartialEq)]
pub struct ImageSet {
    /// Pixels, shape `n × channels × height × width` (CHW per image, row-major), in `[0, 1]`.
    pub values: Vec<f32>,
    /// Channels per image (1 gray, 3 RGB).
    pub channels: usize,
    /// Image height (pixels).
    pub height: usize,
    /// Image width (pixels).
    pub width: usize,
    /// Class index per image, in `0..class_names.len()` (all 0 when read without labels).
    pub labels: Vec<usize>,
    /// Class names, indexed by label (empty when read without labels).
    pub class_names: Vec<String>,
    /// Where each image came from: its path, or `"file#index"` for IDX files.
    pub sources: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image: `channels * height * width`.
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image `i`, `channels × height × width` values.
    ///
    /// # Panics
    /// When `i >= len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.sample_len();
        &self.values[i * len..(i + 1) * len]
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The images at `indices`, in that order (repeats allowed), with the same classes.
    ///
    /// # Panics
    /// When an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut values = Vec::with_capacity(indices.len() * self.sample_len());
        for &i in indices {
            values.extend_from_slice(self.image(i));
        }
        ImageSet {
            values,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            sources: indices.iter().map(|&i| self.sources[i].clone()).collect(),
            class_names: self.class_names.clone(),
            ..*self
        }
    }
}

impl fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageSet")
            .field("len", &self.len())
            .field("shape", &self.shape())
            .field("class_names", &self.class_names)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------------------------

/// Reads an IDX images file (magic 2051, `n × rows × cols` bytes) and optionally its labels
/// file (magic 2049, `n` bytes). Either file may be gzip-compressed (detected by its magic
/// bytes `1f 8b`, not its name). Pixels are scaled by `1/255`; `channels` is 1.
///
/// Classes are the distinct label values, sorted: a label's class index is its rank, and its
/// class name its decimal value (labels `0..=9`, all present, map to themselves). Without a
/// labels file every label is 0 and `class_names` is empty (for prediction).
pub fn read_idx(images: &Path, labels: Option<&Path>) -> Result<ImageSet> {
    let (dims, pixels) = read_idx_file(images, IDX_IMAGES_MAGIC, 3)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if n > 0 && rows * cols == 0 {
        return Err(invalid(
            images,
            format!("IDX images are {rows}×{cols} pixels"),
        ));
    }
    let (labels, class_names) = match labels {
        None => (vec![0; n], Vec::new()),
        Some(path) => {
            let (_, raw) = read_idx_file(path, IDX_LABELS_MAGIC, 1)?;
            if raw.len() != n {
                return Err(ImageError::IdxCountMismatch {
                    images: images.to_path_buf(),
                    labels: path.to_path_buf(),
                    n_images: n,
                    n_labels: raw.len(),
                });
            }
            rank_labels(&raw)
        }
    };
    let name = images.display();
    Ok(ImageSet {
        values: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        channels: 1,
        height: rows,
        width: cols,
        labels,
        class_names,
        sources: (0..n).map(|i| format!("{name}#{i}")).collect(),
    })
}

/// Maps byte labels to their rank among the distinct values; names are the values.
fn rank_labels(raw: &[u8]) -> (Vec<usize>, Vec<String>) {
    let mut present = [false; 256];
    for &l in raw {
        present[usize::from(l)] = true;
    }
    let mut rank = [0usize; 256];
    let mut names = Vec::new();
    for value in (0..256).filter(|&v| present[v]) {
        rank[value] = names.len();
        names.push(value.to_string());
    }
    (raw.iter().map(|&l| rank[usize::from(l)]).collect(), names)
}

/// Reads an IDX file of unsigned bytes with `n_dims` dimensions: returns the dimensions and
/// the data. The data is read in growing chunks up to the header's size, so an absurd header
/// allocates nothing up front.
fn read_idx_file(file: &Path, magic: u32, n_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    sora_core::weights::check_regular(file, u64::MAX).map_err(io_error(file))?;
    let mut reader = BufReader::new(File::open(file).map_err(io_error(file))?);
    let gzip = reader
        .fill_buf()
        .map_err(io_error(file))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let read_error = |source: io::Error| {
        if gzip {
            let message = format!("gzip: {source}");
            ImageError::Decode {
                file: file.to_path_buf(),
                message,
            }
        } else {
            ImageError::Io {
                file: file.to_path_buf(),
                source,
            }
        }
    };
    let mut read_up_to = |limit: u64| -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        reader
            .by_ref()
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(read_error)?;
        Ok(buf)
    };

    let header_len = 4 * (1 + n_dims as u64);
    let header = read_up_to(header_len)?;
    let word = |i: usize| {
        header
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if let Some(found) = word(0).filter(|&found| found != magic) {
        return Err(ImageError::IdxMagic {
            file: file.to_path_buf(),
            expected: magic,
            found,
        });
    }
    if (header.len() as u64) < header_len {
        let found = header.len() as u64;
        return Err(ImageError::IdxLength {
            file: file.to_path_buf(),
            expected: header_len,
            found,
        });
    }
    let dims: Vec<u64> = (1..=n_dims)
        .filter_map(|i| word(i).map(u64::from))
        .collect();
    let data_len = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let Some(data_len) = data_len.filter(|&len| len <= u64::MAX - header_len) else {
        return Err(invalid(
            file,
            format!("IDX header dimensions {dims:?} overflow"),
        ));
    };
    if data_len > MAX_IDX_BYTES {
        return Err(invalid(
            file,
            format!(
                "IDX header dimensions {dims:?} declare {data_len} bytes, more than the {MAX_IDX_BYTES} read"
            ),
        ));
    }

    let data = read_up_to(data_len)?;
    let expected = header_len + data_len;
    let mut found = header_len + data.len() as u64;
    if found == expected {
        found += io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
    }
    if found != expected {
        return Err(ImageError::IdxLength {
            file: file.to_path_buf(),
            expected,
            found,
        });
    }
    // The whole data is in memory, so every dimension (a factor of its length) fits a usize,
    // except a zero-sized payload with a huge other dimension.
    let dims = dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>();
    let dims = dims.map_err(|_| invalid(file, "IDX dimension too large for this platform"))?;
    Ok((dims, data))
}

/// Writes an IDX images file: magic 2051, `n`, `rows`, `cols` (u32 big-endian), then
/// `pixels` (`n × rows × cols` bytes); gzip-compressed when `gzip`.
pub fn write_idx_images(
    path: &Path,
    pixels: &[u8],
    n: usize,
    rows: usize,
    cols: usize,
    gzip: bool,
) -> Result<()> {
    let expected = n.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    if expected != Some(pixels.len()) {
        let message = format!("{} pixel bytes for {n}×{rows}×{cols} images", pixels.len());
        return Err(invalid(path, message));
    }
    write_idx_file(path, IDX_IMAGES_MAGIC, &[n, rows, cols], pixels, gzip)
}

/// Writes an IDX labels file: magic 2049, `labels.len()` (u32 big-endian), then the label
/// bytes; gzip-compressed when `gzip`.
pub fn write_idx_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    write_idx_file(path, IDX_LABELS_MAGIC, &[labels.len()], labels, gzip)
}

fn write_idx_file(path: &Path, magic: u32, dims: &[usize], data: &[u8], gzip: bool) -> Result<()> {
    let mut header = magic.to_be_bytes().to_vec();
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| invalid(path, format!("IDX dimension {d} exceeds u32")))?;
        header.extend_from_slice(&d.to_be_bytes());
    }
    let file = BufWriter::new(File::create(path).map_err(io_error(path))?);
    let write = |mut w: Box<dyn Write>| -> io::Result<()> {
        w.write_all(&header)?;
        w.write_all(data)?;
        w.flush()
    };
    let result = if gzip {
        let mut encoder = GzEncoder::new(file, Compression::default());
        write(Box::new(&mut encoder)).and_then(|()| encoder.finish()?.flush())
    } else {
        write(Box::new(file))
    };
    result.map_err(io_error(path))
}

// ---------------------------------------------------------------------------------------------
// Image folders
// ---------------------------------------------------------------------------------------------

/// How many channels to decode images to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelMode {
    /// One channel (luminance).
    Gray,
    /// Three channels (red, green, blue); alpha is dropped.
    Rgb,
    /// Gray when the first image is gray (with or without alpha), RGB otherwise.
    #[default]
    Auto,
}

/// How to decode an image folder; saved with trained models.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageOptions {
    /// Channels to decode to.
    pub channels: ChannelMode,
    /// `(height, width)` in pixels to resize every image to (triangle filter). `None`: no
    /// resize, every image must have the first image's size.
    pub size: Option<(usize, usize)>,
    /// The most pixels an image may have (`None`: [`DEFAULT_MAX_PIXELS`]); a larger one is an
    /// error naming it, before it is decoded.
    pub max_pixels: Option<u64>,
}

impl ImageOptions {
    /// The pixel limit in force.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels.unwrap_or(DEFAULT_MAX_PIXELS)
    }
}

/// Reads an image-folder tree: each sub-folder of `root` is a class (sorted by name; class
/// index = position), holding its images (files sorted by name, not recursive).
///
/// Files ending in png, jpg, jpeg, bmp or gif (any case) are decoded; a known but unsupported
/// image extension (webp, tif, tiff, heic, avif, …) is an error; other files (README, LICENSE)
/// and hidden entries (names starting with `.`, such as `.DS_Store` or `._x.png`) are skipped.
pub fn read_image_folder(root: &Path, options: &ImageOptions) -> Result<ImageSet> {
    if let Some(size) = options.size {
        check_size(root, size)?;
    }
    let classes: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    let class_names: Vec<String> = classes.iter().map(|p| file_name(p)).collect();
    match class_names.as_slice() {
        [] => {
            return Err(ImageError::EmptyFolder {
                dir: root.to_path_buf(),
            });
        }
        [class] => {
            return Err(ImageError::OneClass {
                dir: root.to_path_buf(),
                class: class.clone(),
            });
        }
        _ => {}
    }
    let mut files = Vec::new();
    for (label, dir) in classes.iter().enumerate() {
        let before = files.len();
        for path in sorted_entries(dir)?.into_iter().filter(|p| p.is_file()) {
            let extension = extension(&path);
            if SUPPORTED.contains(&extension.as_str()) {
                files.push((path, label));
            } else if UNSUPPORTED.contains(&extension.as_str()) {
                return Err(ImageError::UnsupportedFormat {
                    file: path,
                    extension,
                });
            }
        }
        if files.len() == before {
            return Err(ImageError::NoImages { dir: dir.clone() });
        }
    }

    let mut set = ImageSet {
        values: Vec::new(),
        channels: 0,
        height: 0,
        width: 0,
        labels: Vec::with_capacity(files.len()),
        class_names,
        sources: Vec::with_capacity(files.len()),
    };
    for (path, label) in files {
        let image = decode(&path, options.max_pixels())?;
        if set.is_empty() {
            set.channels = match options.channels {
                ChannelMode::Gray => 1,
                ChannelMode::Rgb => 3,
                ChannelMode::Auto => {
                    if image.color().has_color() {
                        3
                    } else {
                        1
                    }
                }
            };
            (set.height, set.width) = options
                .size
                .unwrap_or((image.height() as usize, image.width() as usize));
        }
        let found = (
            set.channels,
            image.height() as usize,
            image.width() as usize,
        );
        if options.size.is_none() && found != (set.channels, set.height, set.width) {
            let expected = (set.channels, set.height, set.width);
            return Err(ImageError::SizeMismatch {
                file: path,
                expected,
                found,
            });
        }
        set.values
            .extend(to_chw(&image, set.channels, (set.height, set.width)));
        set.labels.push(label);
        set.sources.push(path.display().to_string());
    }
    Ok(set)
}

/// Reads one image file for prediction: `channels` (1 or 3) × `size.0` × `size.1` values in
/// `[0, 1]`, CHW, always resized to `size` = `(height, width)` pixels.
pub fn read_image_file(path: &Path, channels: usize, size: (usize, usize)) -> Result<Vec<f32>> {
    if channels != 1 && channels != 3 {
        return Err(invalid(
            path,
            format!("{channels} channels asked; 1 or 3 are supported"),
        ));
    }
    check_size(path, size)?;
    Ok(to_chw(&decode(path, DEFAULT_MAX_PIXELS)?, channels, size))
}

/// Decodes an image held in memory (an upload; PNG, JPEG, BMP or GIF, by its bytes), converted
/// and resized as [`read_image_file`] does; `name` names it in errors.
pub fn read_image_bytes(
    name: &str,
    bytes: &[u8],
    channels: usize,
    size: (usize, usize),
) -> Result<Vec<f32>> {
    let file = Path::new(name);
    if channels != 1 && channels != 3 {
        return Err(invalid(
            file,
            format!("{channels} channels asked; 1 or 3 are supported"),
        ));
    }
    check_size(file, size)?;
    let open = || ImageReader::new(io::Cursor::new(bytes)).with_guessed_format();
    Ok(to_chw(
        &decode_with(file, open, DEFAULT_MAX_PIXELS)?,
        channels,
        size,
    ))
}

fn check_size(file: &Path, (h, w): (usize, usize)) -> Result<()> {
    if (1..=MAX_SIDE).contains(&h) && (1..=MAX_SIDE).contains(&w) {
        Ok(())
    } else {
        Err(invalid(
            file,
            format!("image size {h}×{w} is outside 1..={MAX_SIDE} pixels per side"),
        ))
    }
}

/// Entries of `dir` sorted by name, hidden ones (`.` prefix) left out.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if !file_name(&path).starts_with('.') {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn decode(file: &Path, max_pixels: u64) -> Result<DynamicImage> {
    sora_core::weights::check_regular(file, u64::MAX).map_err(io_error(file))?;
    decode_with(
        file,
        || ImageReader::open(file).and_then(ImageReader::with_guessed_format),
        max_pixels,
    )
}

/// Decodes the image `open` reads, after checking from its header that it has at most
/// `max_pixels` pixels (a huge image is refused before its pixels are allocated).
fn decode_with<R: io::BufRead + io::Seek>(
    file: &Path,
    open: impl Fn() -> io::Result<ImageReader<R>>,
    max_pixels: u64,
) -> Result<DynamicImage> {
    let decode_error = |e: image::ImageError| match e {
        image::ImageError::IoError(source)
            if !matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            ImageError::Io {
                file: file.to_path_buf(),
                source,
            }
        }
        image::ImageError::Unsupported(u)
            if matches!(u.kind(), image::error::UnsupportedErrorKind::Format(_)) =>
        {
            ImageError::UnsupportedFormat {
                file: file.to_path_buf(),
                extension: extension(file),
            }
        }
        e => ImageError::Decode {
            file: file.to_path_buf(),
            message: e.to_string(),
        },
    };
    let (width, height) = open()
        .map_err(io_error(file))?
        .into_dimensions()
        .map_err(decode_error)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels {
            file: file.to_path_buf(),
            width,
            height,
            limit: max_pixels,
        });
    }
    open()
        .map_err(io_error(file))?
        .decode()
        .map_err(decode_error)
}

/// Converts to `channels` (1 or 3) and `(h, w)` (resizing when different); returns CHW values.
/// `h` and `w` are at most [`MAX_SIDE`], so they fit a `u32`.
fn to_chw(image: &DynamicImage, channels: usize, (h, w): (usize, usize)) -> Vec<f32> {
    let (h32, w32) = (h as u32, w as u32);
    if channels == 1 {
        let gray = image.to_luma32f();
        let same = gray.dimensions() == (w32, h32);
        return if same {
            gray
        } else {
            imageops::resize(&gray, w32, h32, FilterType::Triangle)
        }
        .into_raw();
    }
    let rgb = image.to_rgb32f();
    let same = rgb.dimensions() == (w32, h32);
    let hwc = if same {
        rgb
    } else {
        imageops::resize(&rgb, w32, h32, FilterType::Triangle)
    }
    .into_raw();
    let mut chw = vec![0.0; hwc.len()];
    for (i, pixel) in hwc.chunks_exact(3).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            chw[c * h * w + i] = v;
        }
    }
    chw
}

// ---------------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------------

/// Per-channel standardisation `(x - mean[c]) / std[c]`; saved with trained models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean per channel (`channels` entries).
    pub mean: Vec<f32>,
    /// Standard deviation per channel (`channels` entries), at least `1e-6`.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Per-channel mean and (population) standard deviation over every pixel of `set`,
    /// computed in f64; std floored at `1e-6`. An empty set gives mean 0, std 1.
    pub fn fit(set: &ImageSet) -> Normalization {
        let (channels, plane) = (set.channels, set.height * set.width);
        if set.is_empty() || channels == 0 || plane == 0 {
            return Normalization {
                mean: vec![0.0; channels],
                std: vec![1.0; channels],
            };
        }
        let count = (set.values.len() / (channels * plane) * plane) as f64;
        let mut sum = vec![0.0f64; channels];
        for (i, p) in set.values.chunks_exact(plane).enumerate() {
            sum[i % channels] += p.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut var = vec![0.0f64; channels];
        for (i, p) in set.values.chunks_exact(plane).enumerate() {
            let m = mean[i % channels];
            var[i % channels] += p.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>();
        }
        Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&v| ((v / count).sqrt() as f32).max(1e-6))
                .collect(),
        }
    }

    /// Number of channels this normalization is for.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Normalizes a batch of whole images in place: `values` is `n × channels × h × w`.
    ///
    /// # Panics
    /// When `channels` differs from [`Self::channels`] (or `std.len()`), or `values.len()` is
    /// not a multiple of `channels * h * w`.
    pub fn apply(&self, values: &mut [f32], channels: usize, h: usize, w: usize) {
        assert!(
            self.mean.len() == channels && self.std.len() == channels,
            "normalization has {} means and {} stds for {channels} channels",
            self.mean.len(),
            self.std.len()
        );
        let plane = h * w;
        if plane == 0 {
            return;
        }
        assert_eq!(
            values.len() % (channels * plane),
            0,
            "values are not whole {channels}×{h}×{w} images"
        );
        for (i, p) in values.chunks_exact_mut(plane).enumerate() {
            let (m, s) = (self.mean[i % channels], self.std[i % channels]);
            for v in p {
                *v = (*v - m) / s;
            }
        }
    }

    /// Normalizes every image of `set` in place.
    ///
    /// # Panics
    /// As [`Self::apply`], when `set` does not have [`Self::channels`] channels.
    pub fn apply_set(&self, set: &mut ImageSet) {
        self.apply(&mut set.values, set.channels, set.height, set.width);
    }

    /// The normalized value of a raw 0 per channel (`-mean / std`): the `fill` to give
    /// [`Augment::apply`] when augmenting normalized images.
    pub fn normalized_zero(&self) -> Vec<f32> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| -m / s)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Augmentation
// ---------------------------------------------------------------------------------------------

/// Seeded image augmentation (all off by default); saved with trained models.
///
/// Random crop with padding and translation are both random shifts of the image content, so
/// they are combined into one shift of up to `crop_padding + max_translate` pixels per axis;
/// uncovered pixels get the per-channel `fill` value given to [`Augment::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Random crop: pad by this many pixels on each side, then take a random `h × w` window
    /// (a random shift in `[-p, p]` per axis).
    pub crop_padding: usize,
    /// Flip horizontally with probability 0.5.
    pub hflip: bool,
    /// Random translation by up to this many pixels per axis.
    pub max_translate: usize,
}

impl Augment {
    /// Whether this augmentation leaves every image unchanged.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.hflip && self.max_translate == 0
    }

    /// Augments one image (`channels × h × w`, CHW) in place. Uncovered pixels of channel `c`
    /// get `fill[c]` (0 when `fill` is shorter): pass `&[]` for raw `[0, 1]` images, or
    /// [`Normalization::normalized_zero`] for normalized ones. The same `rng` state gives the
    /// same result.
    ///
    /// # Panics
    /// When `image.len() != channels * h * w`.
    pub fn apply(
        &self,
        image: &mut [f32],
        channels: usize,
        h: usize,
        w: usize,
        fill: &[f32],
        rng: &mut impl Rng,
    ) {
        assert_eq!(
            image.len(),
            channels * h * w,
            "image is not {channels}×{h}×{w}"
        );
        // Shifts beyond the side only add fill, so `max` is capped at it (and fits an i64).
        let mut shift = |max: usize, side: usize| -> isize {
            let max = max.min(side) as i64;
            if max == 0 {
                0
            } else {
                rng.random_range(-max..=max) as isize
            }
        };
        let (mut dy, mut dx) = (shift(self.crop_padding, h), shift(self.crop_padding, w));
        dy += shift(self.max_translate, h);
        dx += shift(self.max_translate, w);
        let flip = self.hflip && rng.random_bool(0.5);
        if (dy, dx, flip) == (0, 0, false) {
            return;
        }
        let source = image.to_vec();
        let plane = h * w;
        for c in 0..channels {
            let fill = fill.get(c).copied().unwrap_or(0.0);
            let (src, out) = (
                &source[c * plane..][..plane],
                &mut image[c * plane..][..plane],
            );
            for y in 0..h {
                let sy = y.checked_add_signed(dy).filter(|&sy| sy < h);
                for x in 0..w {
                    let sx = x.checked_add_signed(dx).filter(|&sx| sx < w);
                    out[y * w + x] = match (sy, sx) {
                        (Some(sy), Some(sx)) => src[sy * w + if flip { w - 1 - sx } else { sx }],
                        _ => fill,
                    };
                }
            }
        }
    }

    /// Augments each image of a batch (`n × channels × h × w`) in place, in order, as
    /// [`Self::apply`].
    ///
    /// # Panics
    /// When `values.len()` is not a multiple of `channels * h * w`.
    pub fn apply_batch(
        &self,
        values: &mut [f32],
        channels: usize,
        h: usize,
        w: usize,
        fill: &[f32],
        rng: &mut impl Rng,
    ) {
        let len = channels * h * w;
        if self.is_identity() || len == 0 {
            return;
        }
        assert_eq!(
            values.len() % len,
            0,
            "values are not whole {channels}×{h}×{w} images"
        );
        for image in values.chunks_exact_mut(len) {
            self.apply(image, channels, h, w, fill, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tempfile::TempDir;

    fn pixels(n: usize, rows: usize, cols: usize) -> Vec<u8> {
        (0..n * rows * cols).map(|i| (i * 37 % 256) as u8).collect()
    }

    #[test]
    fn idx_round_trip_raw_and_gzip() {
        let dir = TempDir::new().unwrap();
        let data = pixels(5, 3, 4);
        let labels = [3u8, 7, 3, 9, 7];
        for gzip in [false, true] {
            let (img, lab) = (
                dir.path().join(format!("i{gzip}")),
                dir.path().join(format!("l{gzip}")),
            );
            write_idx_images(&img, &data, 5, 3, 4, gzip).unwrap();
            write_idx_labels(&lab, &labels, gzip).unwrap();
            let head = std::fs::read(&img).unwrap();
            assert_eq!(head.starts_with(&[0x1f, 0x8b]), gzip);
            let set = read_idx(&img, Some(&lab)).unwrap();
            assert_eq!(
                (set.len(), set.shape(), set.sample_len()),
                (5, [1, 3, 4], 12)
            );
            assert_eq!(set.values[13], f32::from(data[13]) / 255.0);
            assert_eq!(set.class_names, ["3", "7", "9"]);
            assert_eq!(set.labels, [0, 1, 0, 2, 1]);
            assert_eq!(set.sources[2], format!("{}#2", img.display()));
            let sub = set.subset(&[4, 1]);
            assert_eq!(
                (sub.labels.as_slice(), sub.image(1)),
                (&[1, 1][..], set.image(1))
            );

            let unlabeled = read_idx(&img, None).unwrap();
            assert_eq!(
                (unlabeled.labels, unlabeled.class_names.len()),
                (vec![0; 5], 0)
            );
        }
    }

    #[test]
    fn idx_errors_name_the_file() {
        let dir = TempDir::new().unwrap();
        let (img, lab) = (dir.path().join("img"), dir.path().join("lab"));
        write_idx_images(&img, &pixels(4, 2, 2), 4, 2, 2, true).unwrap();
        write_idx_labels(&lab, &[1, 2, 3], false).unwrap();
        let err = read_idx(&img, Some(&lab)).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::IdxCountMismatch {
                    n_images: 4,
                    n_labels: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&img.display().to_string()));

        // Labels passed as images: wrong magic.
        let err = read_idx(&lab, None).unwrap_err();
        assert!(
            matches!(&err, ImageError::IdxMagic { file, expected: 2051, found: 2049 } if *file == lab)
        );

        // Truncated and extended raw files.
        write_idx_images(&img, &pixels(4, 2, 2), 4, 2, 2, false).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(&img, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_idx(&img, None).unwrap_err();
        assert!(
            matches!(&err, ImageError::IdxLength { file, expected: 32, found: 29 } if *file == img),
            "{err}"
        );
        std::fs::write(&img, [&bytes[..], &[0; 5]].concat()).unwrap();
        assert!(matches!(
            read_idx(&img, None),
            Err(ImageError::IdxLength {
                expected: 32,
                found: 37,
                ..
            })
        ));
        std::fs::write(&img, &bytes[..10]).unwrap();
        assert!(matches!(
            read_idx(&img, None),
            Err(ImageError::IdxLength {
                expected: 16,
                found: 10,
                ..
            })
        ));

        // Absurd header: 2^32-1 images of 2^32-1 × 2^32-1 overflows; large but finite → length.
        let absurd = [&2051u32.to_be_bytes()[..], &[0xff; 12], &[0; 8]].concat();
        std::fs::write(&img, absurd).unwrap();
        assert!(matches!(
            read_idx(&img, None),
            Err(ImageError::Invalid { .. })
        ));
        let big = [
            &2051u32.to_be_bytes()[..],
            &[0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
            &[0; 8],
        ]
        .concat();
        std::fs::write(&img, big).unwrap();
        assert!(matches!(
            read_idx(&img, None),
            Err(ImageError::IdxLength { found: 24, .. })
        ));

        // Truncated gzip stream → Decode; missing file → Io.
        write_idx_images(&img, &pixels(50, 8, 8), 50, 8, 8, true).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(&img, &bytes[..bytes.len() / 2]).unwrap();
        assert!(
            matches!(&read_idx(&img, None), Err(ImageError::Decode { file, .. }) if *file == img)
        );
        let missing = dir.path().join("missing");
        assert!(
            matches!(&read_idx(&missing, None), Err(ImageError::Io { file, .. }) if *file == missing)
        );
        assert!(matches!(
            write_idx_images(&img, &[0; 3], 1, 2, 2, false),
            Err(ImageError::Invalid { .. })
        ));
    }

    fn gray(w: u32, h: u32, v: u8) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| Luma([v.wrapping_add((x + y) as u8)]))
    }

    /// Two classes `cat` (gray 4×6) and `dog` (RGB 4×6, or 8×8 when `odd_size`).
    fn folder(odd_size: bool) -> TempDir {
        let dir = TempDir::new().unwrap();
        let (cat, dog) = (dir.path().join("cat"), dir.path().join("dog"));
        std::fs::create_dir_all(&cat).unwrap();
        std::fs::create_dir_all(&dog).unwrap();
        gray(6, 4, 10).save(cat.join("b.png")).unwrap();
        gray(6, 4, 50).save(cat.join("a.PNG")).unwrap();
        std::fs::write(cat.join("README"), "not an image").unwrap();
        std::fs::write(cat.join(".DS_Store"), "junk").unwrap();
        let (w, h) = if odd_size { (8, 8) } else { (6, 4) };
        let rgb = RgbImage::from_fn(w, h, |x, _| Rgb([255, 0, x as u8]));
        rgb.save(dog.join("x.png")).unwrap();
        std::fs::write(dir.path().join("LICENSE"), "root files are ignored").unwrap();
        dir
    }

    #[test]
    fn image_folder_gray_rgb_and_resize() {
        let dir = folder(false);
        let set = read_image_folder(dir.path(), &ImageOptions::default()).unwrap();
        assert_eq!((set.len(), set.shape()), (3, [1, 4, 6]));
        assert_eq!(set.class_names, ["cat", "dog"]);
        assert_eq!(set.labels, [0, 0, 1]);
        assert!(set.sources[0].ends_with("a.PNG"));
        assert_eq!(set.image(0)[0], 50.0 / 255.0);
        assert_eq!(set.image(1)[7], 12.0 / 255.0); // b.png at (y 1, x 1): 10 + 2

        let rgb = ImageOptions {
            channels: ChannelMode::Rgb,
            size: Some((2, 3)),
            ..ImageOptions::default()
        };
        let set = read_image_folder(dir.path(), &rgb).unwrap();
        // An image over the pixel limit is refused from its header, naming it.
        let small = ImageOptions {
            max_pixels: Some(5),
            ..rgb.clone()
        };
        match read_image_folder(dir.path(), &small).unwrap_err() {
            e @ ImageError::TooManyPixels { limit: 5, .. } => {
                assert!(e.to_string().contains("--max-pixels"), "{e}")
            }
            other => panic!("expected TooManyPixels, got {other}"),
        }
        assert_eq!(set.shape(), [3, 2, 3]);
        assert_eq!(set.values.len(), 3 * 18);
        let dog = set.image(2);
        assert!(dog[..6].iter().all(|&v| (v - 1.0).abs() < 1e-6)); // red plane
        assert!(dog[6..12].iter().all(|&v| v.abs() < 1e-6)); // green plane
        assert!(set.values.iter().all(|v| (0.0..=1.0).contains(v)));

        let file = read_image_file(&dir.path().join("dog/x.png"), 1, (5, 5)).unwrap();
        assert_eq!(file.len(), 25);
        assert!(matches!(
            read_image_file(&dir.path().join("dog/x.png"), 2, (5, 5)),
            Err(ImageError::Invalid { .. })
        ));
        let readme = dir.path().join("cat/README");
        let err = read_image_file(&readme, 1, (5, 5)).unwrap_err();
        assert!(matches!(&err, ImageError::UnsupportedFormat { file, .. } if *file == readme));
    }

    #[test]
    fn image_folder_size_mismatch_without_resize() {
        let dir = folder(true);
        let err = read_image_folder(dir.path(), &ImageOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::SizeMismatch { expected: (1, 4, 6), found: (1, 8, 8), file } if file.ends_with("dog/x.png")),
            "{err}"
        );
        let resized = ImageOptions {
            size: Some((4, 6)),
            ..ImageOptions::default()
        };
        assert_eq!(
            read_image_folder(dir.path(), &resized).unwrap().shape(),
            [1, 4, 6]
        );
    }

    #[test]
    fn image_folder_errors() {
        let dir = folder(false);
        let root = dir.path();
        // Corrupt and truncated PNGs.
        let corrupt = root.join("dog/y.png");
        std::fs::write(
            &corrupt,
            (0..200u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let err = read_image_folder(root, &ImageOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::Decode { file, .. } if *file == corrupt),
            "{err}"
        );
        let png = std::fs::read(root.join("cat/b.png")).unwrap();
        std::fs::write(&corrupt, &png[..png.len() / 2]).unwrap();
        let err = read_image_folder(root, &ImageOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::Decode { file, .. } if *file == corrupt),
            "{err}"
        );
        std::fs::remove_file(&corrupt).unwrap();

        let webp = root.join("dog/z.WebP");
        std::fs::write(&webp, "RIFF").unwrap();
        let err = read_image_folder(root, &ImageOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::UnsupportedFormat { file, extension } if *file == webp && extension == "webp")
        );
        std::fs::remove_file(&webp).unwrap();

        std::fs::create_dir(root.join("empty")).unwrap();
        let err = read_image_folder(root, &ImageOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::NoImages { dir } if dir.ends_with("empty")),
            "{err}"
        );

        let one = TempDir::new().unwrap();
        assert!(matches!(
            read_image_folder(one.path(), &ImageOptions::default()),
            Err(ImageError::EmptyFolder { .. })
        ));
        std::fs::create_dir(one.path().join("only")).unwrap();
        let err = read_image_folder(one.path(), &ImageOptions::default()).unwrap_err();
        assert!(matches!(&err, ImageError::OneClass { class, .. } if class == "only"));
        let bad = ImageOptions {
            size: Some((0, 4)),
            ..ImageOptions::default()
        };
        assert!(matches!(
            read_image_folder(root, &bad),
            Err(ImageError::Invalid { .. })
        ));
        let missing = root.join("missing");
        assert!(matches!(
            read_image_folder(&missing, &ImageOptions::default()),
            Err(ImageError::Io { .. })
        ));
    }

    fn random_set(channels: usize, n: usize) -> ImageSet {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let len = n * channels * 16;
        ImageSet {
            values: (0..len)
                .map(|i| rng.random::<f32>() * (1 + i % 3) as f32)
                .collect(),
            channels,
            height: 4,
            width: 4,
            labels: vec![0; n],
            class_names: vec![],
            sources: vec![String::new(); n],
        }
    }

    #[test]
    fn normalization_standardises_each_channel() {
        let mut set = random_set(3, 10);
        let norm = Normalization::fit(&set);
        assert_eq!(norm.channels(), 3);
        norm.apply_set(&mut set);
        let after = Normalization::fit(&set);
        for c in 0..3 {
            assert!(after.mean[c].abs() < 1e-5, "{after:?}");
            assert!((after.std[c] - 1.0).abs() < 1e-4, "{after:?}");
        }
        let constant = ImageSet {
            values: vec![0.5; 32],
            ..random_set(1, 2)
        };
        assert_eq!(Normalization::fit(&constant).std, [1e-6]);
        let zero = norm.normalized_zero();
        assert!((zero[0] + norm.mean[0] / norm.std[0]).abs() < 1e-7);
    }

    #[test]
    fn augmentation() {
        let image: Vec<f32> = (1..=32).map(|v| v as f32).collect(); // 2 × 4 × 4
        let mut rng = ChaCha8Rng::seed_from_u64(0);

        let mut out = image.clone();
        assert!(Augment::default().is_identity());
        Augment::default().apply(&mut out, 2, 4, 4, &[], &mut rng);
        assert_eq!(out, image);

        let all = Augment {
            crop_padding: 2,
            hflip: true,
            max_translate: 1,
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut batch = [image.clone(), image.clone()].concat();
            all.apply_batch(&mut batch, 2, 4, 4, &[-1.0, -2.0], &mut rng);
            batch
        };
        assert_eq!(run(7), run(7));
        assert!((0..20).any(|s| run(s) != run(7)));
        assert!(
            run(3)
                .iter()
                .all(|v| image.contains(v) || *v == -1.0 || *v == -2.0)
        );

        // Flip: over a few draws some image comes out exactly mirrored.
        let flip = Augment {
            hflip: true,
            ..Augment::default()
        };
        let mirrored: Vec<f32> = image
            .chunks(4)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        let outs: Vec<Vec<f32>> = (0..16)
            .map(|_| {
                let mut out = image.clone();
                flip.apply(&mut out, 2, 4, 4, &[], &mut rng);
                out
            })
            .collect();
        assert!(outs.contains(&mirrored) && outs.contains(&image));
        assert!(outs.iter().all(|o| *o == mirrored || *o == image));

        // Crop: shape kept; padding 0 keeps pixel mass; big padding shifts in fill only.
        let mut out = image.clone();
        Augment {
            crop_padding: 0,
            ..Augment::default()
        }
        .apply(&mut out, 2, 4, 4, &[], &mut rng);
        assert_eq!(out.iter().sum::<f32>(), image.iter().sum::<f32>());
        let crop = Augment {
            crop_padding: 1_000_000,
            ..Augment::default()
        };
        for _ in 0..8 {
            let mut out = image.clone();
            crop.apply(&mut out, 2, 4, 4, &[], &mut rng);
            assert_eq!(out.len(), 32);
            assert!(out.iter().sum::<f32>() <= image.iter().sum::<f32>());
        }
    }

    #[test]
    fn options_are_serde_types() {
        fn serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        serde::<ImageOptions>();
        serde::<Normalization>();
        serde::<Augment>();
    }

    #[test]
    fn real_mnist_test_split() {
        // The copy bundled with the repository (data/mnist).
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"));
        let (images, labels) = (
            dir.join("t10k-images-idx3-ubyte.gz"),
            dir.join("t10k-labels-idx1-ubyte.gz"),
        );
        let set = read_idx(&images, Some(&labels)).unwrap();
        assert_eq!((set.len(), set.shape()), (10_000, [1, 28, 28]));
        assert_eq!(
            set.class_names,
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        );
        let mut counts = [0usize; 10];
        set.labels.iter().for_each(|&l| counts[l] += 1);
        assert_eq!(
            counts,
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        let norm = Normalization::fit(&set);
        assert!(
            (norm.mean[0] - 0.1325).abs() < 1e-3 && (norm.std[0] - 0.3105).abs() < 2e-3,
            "{norm:?}"
        );
    }
}
