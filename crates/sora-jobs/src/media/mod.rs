//! The `image` and `audio` kinds: a folder tree of labelled images or WAV clips (folder name
//! = label), or IDX files, in; a trained, evaluated, saved convolutional model out.
//!
//! [`load`] reads the data into [`Samples`] (images `[channels, height, width]` in `[0, 1]`;
//! clips as log-mel or MFCC frames `[rows, frames]`, or waveforms). [`train`] splits them
//! (stratified, seeded), standardises each channel (or feature row) with statistics of the
//! training part only, trains a [`Conv2dEncoder`](sora_conv::Conv2dEncoder) or
//! [`Conv1dEncoder`](sora_conv::Conv1dEncoder) model with early stopping on the validation
//! part and seeded augmentation, and evaluates it on the test part. [`MediaModel`] is the
//! saved model read back, ready to predict, evaluate and explain files (Grad-CAM, saliency,
//! input × gradient, integrated gradients, occlusion), from paths or from uploaded bytes.
//!
//! The two kinds share this module: [`Image`] reads images and augments them by crops, flips
//! and translations; [`Audio`] reads WAV clips into features and masks them in time and
//! frequency.

mod explain;
mod model;
mod samples;
mod spec;
mod train;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sora_conv::audio::{AudioError, FeatureConfig, FeatureKind, Masking};
use sora_conv::images::{Augment, ChannelMode, ImageError, ImageOptions};

pub use explain::{METHODS, MediaExplanation};
pub use model::MediaModel;
pub use samples::{InputPipeline, LoadOptions, Samples, SavedInput, Source, load};
pub use spec::{ConvSpec, default_spec};
pub use train::{ConvNet, MediaConfig, MediaRun, train, train_split};

use crate::kind::{CommonOptions, DataSource, JobConfig, Kind, LoopDefaults, RunContext};
use crate::{JobError, Result};

/// File name of the saved input pipeline inside a model directory.
pub const INPUT_FILE: &str = "input.json";

/// Why the image or audio job failed (besides the image, audio, training, spec and
/// explanation errors it passes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// An image or IDX file could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A WAV file could not be read, or the audio features are misconfigured.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The data has fewer than two classes.
    #[error("the data has {n} class(es); a classifier needs at least 2")]
    TooFewClasses {
        /// Classes found.
        n: usize,
    },
    /// The spec's input does not fit the samples.
    #[error("the model spec takes inputs {spec:?} (encoder.input) but the samples are {samples:?}")]
    SpecMismatch {
        /// The spec's input shape.
        spec: Vec<usize>,
        /// The samples' shape.
        samples: Vec<usize>,
    },
    /// A model directory has no input pipeline.
    #[error("{}: no {INPUT_FILE}: not an image or audio model directory", .dir.display())]
    NoInputFile {
        /// The directory.
        dir: PathBuf,
    },
    /// A model directory's input pipeline and spec disagree.
    #[error(
        "{}: {INPUT_FILE} gives samples {sample:?} with {channels} channel statistics, which do \
         not fit spec.json", .dir.display()
    )]
    InputMismatch {
        /// The directory.
        dir: PathBuf,
        /// The sample shape of the pipeline.
        sample: Vec<usize>,
        /// Channel statistics saved.
        channels: usize,
    },
    /// Data of the other medium was given to a model.
    #[error("{what}: the model was trained on {trained}")]
    WrongMedium {
        /// The data.
        what: String,
        /// `images` or `audio clips`.
        trained: &'static str,
    },
    /// Samples of another shape than the model's.
    #[error("{what}: samples are {found:?}, the model takes {expected:?}")]
    WrongShape {
        /// The data.
        what: String,
        /// Their shape.
        found: Vec<usize>,
        /// The model's.
        expected: Vec<usize>,
    },
    /// A class of the data is not one of the model's.
    #[error("class {class:?} of the data is not one of the model's classes {classes:?}")]
    UnknownClass {
        /// The class.
        class: String,
        /// The model's classes.
        classes: Vec<String>,
    },
    /// The data has no labels to evaluate against.
    #[error("{what}: the data has no labels to evaluate against")]
    Unlabelled {
        /// The data.
        what: String,
    },
    /// A spec file for images or audio has another encoder than a convolutional one.
    #[error(
        "{}: encoder.kind: expected \"conv2d\" or \"conv1d\" for image or audio data, found {found:?}",
        .file.display()
    )]
    NotConvSpec {
        /// The spec file.
        file: PathBuf,
        /// The `encoder.kind` found.
        found: Option<String>,
    },
    /// A path is neither a folder, an image, a WAV file nor an IDX file.
    #[error("{}: not an image or audio folder, image, WAV or IDX file", .path.display())]
    NotMedia {
        /// The path.
        path: PathBuf,
    },
}

impl From<MediaError> for JobError {
    fn from(e: MediaError) -> Self {
        JobError::kind(e)
    }
}

impl From<ImageError> for JobError {
    fn from(e: ImageError) -> Self {
        MediaError::from(e).into()
    }
}

impl From<AudioError> for JobError {
    fn from(e: AudioError) -> Self {
        MediaError::from(e).into()
    }
}

/// Which of the two media kinds a folder or file holds: a folder whose class folders hold
/// `.wav` files is `audio`, any other folder or a file that is not CSV `image` (IDX); `None`
/// for a CSV file or a path that does not exist.
pub fn detect(data: &Path) -> Option<&'static str> {
    Source::detect(data, None).map(|s| {
        if s.is_audio() {
            Audio::NAME
        } else {
            Image::NAME
        }
    })
}

/// The `image` kind.
#[derive(Debug, Clone, Copy)]
pub struct Image;

/// The `audio` kind.
#[derive(Debug, Clone, Copy)]
pub struct Audio;

/// The options of `sora train` for images.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Images (--task image)")]
pub struct ImageTrainOptions {
    /// Image size `HEIGHTxWIDTH` to resize every image to [default: the first image's size;
    /// then all must share it].
    #[arg(long, value_parser = parse_size)]
    pub image_size: Option<(usize, usize)>,
    /// Image channels: auto (from the first image), gray, rgb.
    #[arg(long, value_enum, default_value_t = Channels::Auto)]
    pub channels: Channels,
    /// Augmentation: random crop of training images after zero padding by this many pixels.
    #[arg(long, default_value_t = Augment::default().crop_padding)]
    pub crop_padding: usize,
    /// Augmentation: random horizontal flips (not for digits or text).
    #[arg(long)]
    pub hflip: bool,
    /// Augmentation: random translation by up to this many pixels.
    #[arg(long, default_value_t = Augment::default().max_translate)]
    pub translate: usize,
    /// The most pixels an image file may have; a larger one is refused before it is decoded.
    #[arg(long, default_value_t = sora_conv::images::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Image channels as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Channels {
    /// From the first image.
    Auto,
    /// One channel.
    Gray,
    /// Three channels.
    Rgb,
}

impl From<Channels> for ChannelMode {
    fn from(c: Channels) -> Self {
        match c {
            Channels::Auto => ChannelMode::Auto,
            Channels::Gray => ChannelMode::Gray,
            Channels::Rgb => ChannelMode::Rgb,
        }
    }
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    s.split_once('x')
        .and_then(|(h, w)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?)))
        .filter(|&(h, w): &(usize, usize)| h > 0 && w > 0)
        .ok_or_else(|| JobError::invalid("image_size", "HEIGHTxWIDTH", format!("{s:?}")))
}

/// The options of `sora train` for audio.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Audio (--task audio)")]
pub struct AudioTrainOptions {
    /// Audio features.
    #[arg(long, value_enum, default_value_t = Features::LogMel)]
    pub features: Features,
    /// Audio sample rate the clips are resampled to, in Hz.
    #[arg(long, default_value_t = FeatureConfig::default().sample_rate)]
    pub sample_rate: u32,
    /// Audio clip length in seconds (shorter clips are padded, longer ones cropped).
    #[arg(long, default_value_t = clip_seconds(&FeatureConfig::default()))]
    pub clip_seconds: f64,
    /// Audio mel bands.
    #[arg(long, default_value_t = FeatureConfig::default().n_mels)]
    pub mels: usize,
    /// Audio MFCC coefficients (with `--features mfcc`).
    #[arg(long, default_value_t = FeatureConfig::default().n_mfcc)]
    pub mfcc: usize,
    /// Augmentation: time masks of up to this many frames on training spectrograms (two per
    /// clip).
    #[arg(long, default_value_t = 0)]
    pub mask_time: usize,
    /// Augmentation: frequency masks of up to this many bands on training spectrograms (two
    /// per clip).
    #[arg(long, default_value_t = 0)]
    pub mask_freq: usize,
}

fn clip_seconds(f: &FeatureConfig) -> f64 {
    f.clip_samples as f64 / f64::from(f.sample_rate)
}

/// Audio features as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Features {
    /// Log-mel spectrogram frames.
    LogMel,
    /// MFCC frames.
    Mfcc,
    /// The waveform itself.
    Waveform,
}

impl From<Features> for FeatureKind {
    fn from(f: Features) -> Self {
        match f {
            Features::LogMel => FeatureKind::LogMel,
            Features::Mfcc => FeatureKind::Mfcc,
            Features::Waveform => FeatureKind::Waveform,
        }
    }
}

impl JobConfig for MediaConfig {
    fn check(&self) -> Result<()> {
        self.holdout.check()?;
        self.load.features.check()?;
        Ok(())
    }
}

/// The shared part of the two kinds' `configure`: the loop options and the spec.
fn configure_common(config: &mut MediaConfig, common: &CommonOptions, kind: &str) -> Result<()> {
    CommonOptions::refuse(
        kind,
        &[
            ("--hidden", common.hidden.is_some()),
            ("--dropout", common.dropout.is_some()),
            ("--target", common.target.is_some()),
            ("--seq-len", common.seq_len.is_some()),
            ("--embed", common.embed.is_some()),
            ("--min-count", common.min_count.is_some()),
        ],
    )?;
    common.apply(&mut config.train);
    common.apply_holdout(&mut config.holdout);
    if let Some(spec) = &common.spec {
        config.spec = Some(ConvSpec::from_file(spec)?);
    }
    Ok(())
}

fn load_samples(
    config: &MediaConfig,
    source: &DataSource,
    ctx: &RunContext,
    audio: bool,
) -> Result<(Samples, InputPipeline)> {
    let data = source.data()?;
    let source =
        Source::detect(data, source.labels.as_deref()).ok_or_else(|| MediaError::NotMedia {
            path: data.to_path_buf(),
        })?;
    if source.is_audio() != audio {
        return Err(MediaError::WrongMedium {
            what: data.display().to_string(),
            trained: if audio { "audio clips" } else { "images" },
        }
        .into());
    }
    let start = std::time::Instant::now();
    let (samples, pipeline) = load(&source, &config.load)?;
    ctx.say(format!(
        "{}: {} samples of shape {:?}, {} classes ({}), read in {:.1} s",
        data.display(),
        samples.len(),
        samples.shape,
        samples.classes.len(),
        samples.classes.join(", "),
        start.elapsed().as_secs_f64()
    ));
    Ok((samples, pipeline))
}

/// The samples as cross-validation sees them: their classes and, for `--group name:N`, the
/// `N`-th `_`-separated part of each file's name (without its extension) as its group — the
/// speaker of a Free Spoken Digit Dataset clip `3_jackson_12.wav` is `name:1`.
fn examples(
    config: &MediaConfig,
    samples: &Samples,
    group: Option<&str>,
) -> Result<crate::Examples> {
    let groups = match group {
        None => None,
        Some(key) => {
            let field = key
                .strip_prefix("name:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    JobError::invalid(
                        "group",
                        "name:N, the N-th `_`-separated part of each file name (from 0)",
                        key,
                    )
                })?;
            let parts = samples.sources.iter().map(|s| file_name_part(s, field));
            Some(parts.collect::<Result<Vec<_>>>()?)
        }
    };
    Ok(crate::Examples {
        n: samples.len(),
        valid_fraction: config.holdout.valid_fraction,
        labels: Some(samples.labels.clone()),
        groups,
    })
}

/// The `field`-th `_`-separated part of the name (without its extension) of the file a
/// sample came from.
fn file_name_part(source: &str, field: usize) -> Result<String> {
    let stem = Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(source);
    stem.split('_')
        .nth(field)
        .map(str::to_string)
        .ok_or_else(|| {
            JobError::invalid(
                "group",
                format!("a file name with a part {field} (`_`-separated, from 0)"),
                source,
            )
        })
}

fn train_samples(
    config: &MediaConfig,
    (samples, pipeline): (Samples, InputPipeline),
    ctx: &RunContext,
) -> Result<MediaRun> {
    let spec = config
        .spec
        .clone()
        .unwrap_or_else(|| default_spec(&samples.shape, samples.classes.len()));
    ctx.say(format!("\n{}\n", spec.summary()?));
    let config = MediaConfig {
        spec: Some(spec),
        ..config.clone()
    };
    train::train_in(&samples, pipeline, &config, ctx)
}

impl Kind for Image {
    const NAME: &'static str = "image";
    const ABOUT: &'static str =
        "class folders of images (or IDX files): a convolutional classifier";
    type Config = MediaConfig;
    type Options = ImageTrainOptions;
    type Data = (Samples, InputPipeline);
    type Run = MediaRun;
    type Model = MediaModel;

    fn defaults() -> LoopDefaults {
        LoopDefaults::of(&MediaConfig::default().train)
    }

    fn configure(
        mut config: MediaConfig,
        common: &CommonOptions,
        o: ImageTrainOptions,
    ) -> Result<MediaConfig> {
        configure_common(&mut config, common, Self::NAME)?;
        config.load.image = ImageOptions {
            channels: o.channels.into(),
            size: o.image_size,
            max_pixels: Some(o.max_pixels),
        };
        config.augment = Augment {
            crop_padding: o.crop_padding,
            hflip: o.hflip,
            max_translate: o.translate,
        };
        Ok(config)
    }

    fn load_data(
        config: &MediaConfig,
        source: &DataSource,
        ctx: &RunContext,
    ) -> Result<(Samples, InputPipeline)> {
        load_samples(config, source, ctx, false)
    }

    fn train(
        config: &MediaConfig,
        data: (Samples, InputPipeline),
        ctx: &RunContext,
    ) -> Result<MediaRun> {
        train_samples(config, data, ctx)
    }

    fn examples(
        config: &MediaConfig,
        (samples, _): &(Samples, InputPipeline),
        group: Option<&str>,
    ) -> Result<crate::Examples> {
        examples(config, samples, group)
    }

    fn load(dir: &Path, device: &Device) -> Result<MediaModel> {
        MediaModel::load(dir, device)
    }
}

impl Kind for Audio {
    const NAME: &'static str = "audio";
    const ABOUT: &'static str =
        "class folders of WAV clips: a convolutional classifier over log-mel or MFCC frames";
    type Config = MediaConfig;
    type Options = AudioTrainOptions;
    type Data = (Samples, InputPipeline);
    type Run = MediaRun;
    type Model = MediaModel;

    fn defaults() -> LoopDefaults {
        LoopDefaults::of(&MediaConfig::default().train)
    }

    fn configure(
        mut config: MediaConfig,
        common: &CommonOptions,
        o: AudioTrainOptions,
    ) -> Result<MediaConfig> {
        configure_common(&mut config, common, Self::NAME)?;
        let kind = FeatureKind::from(o.features);
        if kind == FeatureKind::Waveform && (o.mask_time > 0 || o.mask_freq > 0) {
            return Err(JobError::OptionNotForKind {
                option: "--mask-time/--mask-freq".into(),
                reason: "they mask spectrograms, not --features waveform".into(),
            });
        }
        if !(o.clip_seconds.is_finite() && o.clip_seconds > 0.0 && o.clip_seconds <= 600.0) {
            return Err(JobError::invalid(
                "clip_seconds",
                "a length in (0, 600]",
                o.clip_seconds,
            ));
        }
        config.load.features = FeatureConfig {
            kind,
            sample_rate: o.sample_rate,
            clip_samples: (o.clip_seconds * f64::from(o.sample_rate)).round() as usize,
            n_mels: o.mels,
            n_mfcc: o.mfcc,
            ..FeatureConfig::default()
        };
        config.masking = Masking {
            time_masks: if o.mask_time > 0 { 2 } else { 0 },
            max_time: o.mask_time,
            freq_masks: if o.mask_freq > 0 { 2 } else { 0 },
            max_freq: o.mask_freq,
        };
        Ok(config)
    }

    fn load_data(
        config: &MediaConfig,
        source: &DataSource,
        ctx: &RunContext,
    ) -> Result<(Samples, InputPipeline)> {
        load_samples(config, source, ctx, true)
    }

    fn train(
        config: &MediaConfig,
        data: (Samples, InputPipeline),
        ctx: &RunContext,
    ) -> Result<MediaRun> {
        train_samples(config, data, ctx)
    }

    fn examples(
        config: &MediaConfig,
        (samples, _): &(Samples, InputPipeline),
        group: Option<&str>,
    ) -> Result<crate::Examples> {
        examples(config, samples, group)
    }

    fn load(dir: &Path, device: &Device) -> Result<MediaModel> {
        MediaModel::load(dir, device)
    }
}
