//! Samples: where labelled images or clips come from, how files become model inputs, and the
//! standardisation saved with a model.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sora_conv::audio::{FeatureConfig, FeatureExtractor};
use sora_conv::images::ImageOptions;

use crate::Result;

/// Where labelled images or clips come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A folder with one sub-folder of images per class.
    ImageFolder(PathBuf),
    /// An IDX images file (gzip or raw) and, for labelled data, its labels file.
    Idx {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: Option<PathBuf>,
    },
    /// A folder with one sub-folder of WAV clips per class.
    AudioFolder(PathBuf),
}

impl Source {
    /// What `data` holds: a folder whose class folders hold `.wav` files is audio, any other
    /// folder images; a file is IDX (with `labels`, when given). `None` for a CSV file or a
    /// path that does not exist.
    pub fn detect(data: &Path, labels: Option<&Path>) -> Option<Source> {
        if data.is_dir() {
            let has_wav = std::fs::read_dir(data)
                .ok()?
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| std::fs::read_dir(e.path()).ok())
                .flat_map(|files| files.flatten())
                .any(|f| {
                    f.path()
                        .extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("wav"))
                });
            return Some(if has_wav {
                Source::AudioFolder(data.to_path_buf())
            } else {
                Source::ImageFolder(data.to_path_buf())
            });
        }
        let is_csv = data
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("csv"));
        (data.is_file() && !is_csv).then(|| Source::Idx {
            images: data.to_path_buf(),
            labels: labels.map(Path::to_path_buf),
        })
    }

    /// Whether the source holds audio.
    pub fn is_audio(&self) -> bool {
        matches!(self, Source::AudioFolder(_))
    }
}

/// How raw files become model inputs; saved with the model as [`INPUT_FILE`](super::INPUT_FILE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputPipeline {
    /// Images, converted to `channels` and resized to `height × width`.
    Image {
        /// 1 (gray) or 3 (RGB).
        channels: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// WAV clips, resampled, fitted to a fixed length and turned into features.
    Audio {
        /// The features.
        features: FeatureConfig,
    },
}

/// The saved input side of a model: the pipeline, the per-channel standardisation fitted on
/// the training samples, and the class names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedInput {
    /// How files become samples.
    pub pipeline: InputPipeline,
    /// Mean of each channel (image channel, or feature row) over the training samples.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel (floored at 1e-6).
    pub std: Vec<f32>,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
}

impl SavedInput {
    /// Standardises samples in place, channel by channel (the first axis of a sample).
    pub fn normalize(&self, samples: &mut Samples) {
        let d = samples.sample_len();
        let per_channel = d / samples.shape[0];
        for sample in samples.values.chunks_mut(d) {
            for (c, channel) in sample.chunks_mut(per_channel).enumerate() {
                channel
                    .iter_mut()
                    .for_each(|v| *v = (*v - self.mean[c]) / self.std[c]);
            }
        }
    }
}

/// Labelled samples, as model inputs before standardisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Row-major samples of `shape`.
    pub values: Vec<f32>,
    /// Shape of one sample: `[channels, height, width]` for images, `[rows, frames]` for
    /// audio features (`[1, samples]` for waveforms).
    pub shape: Vec<usize>,
    /// Class of each sample.
    pub labels: Vec<usize>,
    /// Class names.
    pub classes: Vec<String>,
    /// Where each sample came from (its file, or `file#index` for IDX).
    pub sources: Vec<String>,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.sample_len();
        &self.values[i * d..(i + 1) * d]
    }

    /// The samples at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Samples {
        Samples {
            values: indices
                .iter()
                .flat_map(|&i| self.sample(i).iter().copied())
                .collect(),
            shape: self.shape.clone(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            sources: indices.iter().map(|&i| self.sources[i].clone()).collect(),
        }
    }

    /// Per-channel mean and standard deviation (the first axis of a sample).
    pub fn channel_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let channels = self.shape[0];
        let per_channel = self.sample_len() / channels;
        let mut sums = vec![(0.0f64, 0.0f64); channels];
        for sample in self.values.chunks(self.sample_len()) {
            for (c, channel) in sample.chunks(per_channel).enumerate() {
                for &v in channel {
                    sums[c].0 += f64::from(v);
                    sums[c].1 += f64::from(v) * f64::from(v);
                }
            }
        }
        let n = (self.len() * per_channel).max(1) as f64;
        sums.iter()
            .map(|&(s, s2)| {
                let mean = s / n;
                let var = (s2 / n - mean * mean).max(0.0);
                (mean as f32, (var.sqrt() as f32).max(1e-6))
            })
            .unzip()
    }
}

/// What the job reads and how: image size and channels, audio features.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadOptions {
    /// Image channels and size (size `None`: all images must share the first one's).
    pub image: ImageOptions,
    /// Audio features.
    pub features: FeatureConfig,
}

/// Reads labelled samples and the pipeline that produced them.
pub fn load(source: &Source, options: &LoadOptions) -> Result<(Samples, InputPipeline)> {
    match source {
        Source::ImageFolder(dir) => {
            let set = sora_conv::images::read_image_folder(dir, &options.image)?;
            Ok(from_images(set))
        }
        Source::Idx { images, labels } => {
            let set = sora_conv::images::read_idx(images, labels.as_deref())?;
            Ok(from_images(set))
        }
        Source::AudioFolder(dir) => {
            let set = sora_conv::audio::read_audio_folder(dir)?;
            let extractor = FeatureExtractor::new(options.features.clone())?;
            let shape = options.features.output_shape().to_vec();
            let mut values = Vec::with_capacity(set.len() * shape.iter().product::<usize>());
            for clip in &set.clips {
                values.extend(extractor.extract(clip)?);
            }
            let samples = Samples {
                values,
                shape,
                labels: set.labels,
                classes: set.class_names,
                sources: set.sources,
            };
            let pipeline = InputPipeline::Audio {
                features: options.features.clone(),
            };
            Ok((samples, pipeline))
        }
    }
}

fn from_images(set: sora_conv::images::ImageSet) -> (Samples, InputPipeline) {
    let pipeline = InputPipeline::Image {
        channels: set.channels,
        height: set.height,
        width: set.width,
    };
    let samples = Samples {
        shape: vec![set.channels, set.height, set.width],
        values: set.values,
        labels: set.labels,
        classes: set.class_names,
        sources: set.sources,
    };
    (samples, pipeline)
}
