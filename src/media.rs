//! The image and audio job: a folder tree of labelled images or WAV clips (folder name =
//! label), or IDX files, in; a trained, evaluated, saved convolutional model out.
//!
//! [`load`] reads the data into [`Samples`] (images `[channels, height, width]` in `[0, 1]`;
//! clips as log-mel or MFCC frames `[rows, frames]`, or waveforms). [`train`] splits them
//! (stratified, seeded), standardises each channel (or feature row) with statistics of the
//! training part only, trains a [`Conv2dEncoder`] or [`Conv1dEncoder`] model with early
//! stopping on the validation part and seeded augmentation, and evaluates it on the test part.
//! [`MediaModel`] is the saved model read back, ready to predict, evaluate and explain files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sora_conv::audio::{AudioError, FeatureConfig, FeatureExtractor, FeatureKind, Masking};
use sora_conv::images::{Augment, ChannelMode, ImageError, ImageOptions};
use sora_conv::{
    Conv1dEncoder, Conv1dSpec, Conv2dEncoder, Conv2dSpec, ConvBlockSpec, GlobalPool, Pool,
};
use sora_core::{CheckedSpec, Encoder, EncoderSpec, HeadSpec, Model, ModelSpec, SpecError, Task};
use sora_data::stratified_split;
use sora_train::{ArrayData, Fitted, Metrics, ModelDir, Targets, TrainConfig, TrainError, Trainer};

/// File name of the saved input pipeline inside a model directory.
pub const INPUT_FILE: &str = "input.json";

/// Default maximum epochs (early stopping usually ends sooner).
pub const DEFAULT_EPOCHS: usize = 30;
/// Default samples per step.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Default learning rate (Adam).
pub const DEFAULT_LR: f64 = 1e-3;
/// Default early-stopping patience, in epochs.
pub const DEFAULT_PATIENCE: usize = 5;

/// Why the image or audio job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// An image or IDX file could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A WAV file could not be read, or the audio features are misconfigured.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Training, evaluation or the model directory failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The model spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An explanation failed.
    #[error(transparent)]
    Explain(#[from] sora_explain::ExplainError),
    /// The options do not fit the data.
    #[error("{0}")]
    Options(String),
}

type Result<T, E = MediaError> = std::result::Result<T, E>;

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

/// How raw files become model inputs; saved with the model as [`INPUT_FILE`].
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

/// A convolutional model spec of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ConvSpec {
    /// Images and spectrograms.
    Conv2d(ModelSpec<Conv2dSpec>),
    /// Waveforms and frames of features.
    Conv1d(ModelSpec<Conv1dSpec>),
}

impl ConvSpec {
    /// The `encoder.kind` of a spec file (JSON, or TOML by extension), when it has one.
    pub fn encoder_kind(path: &Path) -> Result<Option<String>> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str::<toml::Value>(&text)
                .ok()
                .and_then(|v| Some(v.get("encoder")?.get("kind")?.as_str()?.to_string()))
        } else {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| Some(v["encoder"]["kind"].as_str()?.to_string()))
        })
    }

    /// Reads a spec file (JSON, or TOML by extension); `encoder.kind` picks the kind.
    pub fn from_file(path: &Path) -> Result<ConvSpec> {
        let kind = Self::encoder_kind(path)?;
        match kind.as_deref() {
            Some("conv1d") => Ok(ConvSpec::Conv1d(ModelSpec::from_file(path)?)),
            Some("conv2d") => Ok(ConvSpec::Conv2d(ModelSpec::from_file(path)?)),
            other => Err(SpecError::Parse {
                file: Some(path.to_path_buf()),
                message: format!(
                    "encoder.kind: expected \"conv2d\" or \"conv1d\" for image or audio data, found {other:?}"
                ),
            }
            .into()),
        }
    }

    /// The spec as pretty JSON.
    pub fn to_json_string(&self) -> String {
        match self {
            ConvSpec::Conv2d(s) => s.to_json_string(),
            ConvSpec::Conv1d(s) => s.to_json_string(),
        }
    }

    /// The model's layer summary (checks the spec).
    pub fn summary(&self) -> Result<sora_core::Summary> {
        Ok(match self {
            ConvSpec::Conv2d(s) => s.check()?.summary().clone(),
            ConvSpec::Conv1d(s) => s.check()?.summary().clone(),
        })
    }

    /// Shape of one input sample, as the encoder takes it.
    fn input_shape(&self) -> Result<Vec<usize>> {
        Ok(match self {
            ConvSpec::Conv2d(s) => s.check()?.encoder_plan().input_shape.clone(),
            ConvSpec::Conv1d(s) => s.check()?.encoder_plan().input_shape.clone(),
        })
    }
}

/// The default model for samples of `shape` and `n_classes` classes.
///
/// - `[c, h, w]` (images): blocks of 3×3 convolution, batch norm, ReLU and 2×2 max pooling,
///   32 → 64 channels, and a third of 128 when the image is at least 24 pixels on its shorter
///   side; global average pooling; a head with one hidden layer of 64.
/// - `[rows, frames]` (audio features): 1-D convolutions along time with the mel bands (or
///   coefficients) as channels — widths 5, 5, 3 to 32 → 64 → 64 channels, ReLU, max pooling
///   after the first two — and the maximum over time of each channel; waveforms
///   `[1, samples]` get 1-D blocks of width 9 with batch norm and 4× pooling instead.
pub fn default_spec(shape: &[usize], n_classes: usize) -> ConvSpec {
    let task = Task::Classification {
        n_classes: n_classes as i64,
    };
    let block = |c| {
        ConvBlockSpec::new(c, 3)
            .with_batch_norm(true)
            .with_pool(Pool::Max, 2)
    };
    let head = HeadSpec::new(&[64]);
    match shape {
        [c, h, w] => {
            let mut blocks = vec![block(32), block(64)];
            if (*h).min(*w) >= 24 {
                blocks.push(block(128));
            }
            ConvSpec::Conv2d(ModelSpec::new(
                Conv2dSpec::new([*c, *h, *w], blocks),
                head,
                task,
            ))
        }
        [1, samples] => {
            let wave = |c| {
                ConvBlockSpec::new(c, 9)
                    .with_batch_norm(true)
                    .with_pool(Pool::Max, 4)
            };
            let blocks = vec![wave(16), wave(32), wave(64), wave(64)];
            ConvSpec::Conv1d(ModelSpec::new(
                Conv1dSpec::new([1, *samples], blocks).with_global_pool(GlobalPool::Avg),
                head,
                task,
            ))
        }
        [rows, frames] => {
            let frames_block = |c, k| ConvBlockSpec::new(c, k).with_pool(Pool::Max, 2);
            let blocks = vec![
                frames_block(32, 5),
                frames_block(64, 5),
                ConvBlockSpec::new(64, 3),
            ];
            ConvSpec::Conv1d(ModelSpec::new(
                Conv1dSpec::new([*rows, *frames], blocks).with_global_pool(GlobalPool::Max),
                head,
                task,
            ))
        }
        _ => unreachable!("samples are images [c, h, w] or features [rows, frames]"),
    }
}

/// Everything [`train`] needs besides the samples.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The training loop.
    pub train: TrainConfig,
    /// Fraction held out for validation (early stopping).
    pub valid_fraction: f64,
    /// Fraction held out for the final test.
    pub test_fraction: f64,
    /// A model spec to use instead of [`default_spec`].
    pub spec: Option<ConvSpec>,
    /// Image augmentation of training batches.
    pub augment: Augment,
    /// Time and frequency masking of training batches (spectrograms).
    pub masking: Masking,
    /// Data-parallel training over several devices or processes (none by default).
    pub parallel: sora_train::Parallel,
}

impl Default for MediaConfig {
    /// Adam (learning rate 1e-3), batch 64, up to 30 epochs with early stopping (patience 5)
    /// on a 10 % validation split, 20 % test split, no augmentation.
    fn default() -> Self {
        Self {
            train: TrainConfig::new(DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE, DEFAULT_LR)
                .with_optimizer(sora_train::OptimizerConfig::adam())
                .with_early_stopping(DEFAULT_PATIENCE, 1e-4),
            valid_fraction: 0.1,
            test_fraction: 0.2,
            spec: None,
            augment: Augment::default(),
            masking: Masking::default(),
            parallel: sora_train::Parallel::None,
        }
    }
}

/// A trained convolutional model of either kind.
#[derive(Debug, Clone)]
pub enum ConvNet {
    /// Over images and spectrograms.
    Conv2d(Model<Conv2dEncoder>),
    /// Over waveforms and frames of features.
    Conv1d(Model<Conv1dEncoder>),
}

/// A finished run of the job.
#[derive(Debug)]
pub struct MediaRun {
    /// The spec trained.
    pub spec: ConvSpec,
    /// The trained model (the best epoch's weights).
    pub net: ConvNet,
    /// Per-epoch history.
    pub history: sora_train::History,
    /// Best epoch (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Metrics on the test samples.
    pub test: Metrics,
    /// The input side, saved with the model.
    pub input: SavedInput,
    /// The training config as run.
    pub train_config: TrainConfig,
}

/// Splits `samples` (stratified, seeded by the training seed) and runs [`train_split`].
pub fn train(
    samples: &Samples,
    pipeline: InputPipeline,
    config: &MediaConfig,
    device: &Device,
) -> Result<MediaRun> {
    check_classes(samples)?;
    let split = stratified_split(
        &samples.labels,
        config.valid_fraction,
        config.test_fraction,
        config.train.seed,
    );
    let valid = (!split.valid.is_empty()).then(|| samples.subset(&split.valid));
    train_split(
        &samples.subset(&split.train),
        valid.as_ref(),
        &samples.subset(&split.test),
        pipeline,
        config,
        device,
    )
}

fn check_classes(samples: &Samples) -> Result<()> {
    if samples.classes.len() < 2 {
        return Err(MediaError::Options(format!(
            "the data has {} class(es); a classifier needs at least 2",
            samples.classes.len()
        )));
    }
    Ok(())
}

/// Trains on `train`, stops early on `valid` (when given), evaluates on `test`. The
/// standardisation is fitted on `train` only.
pub fn train_split(
    train: &Samples,
    valid: Option<&Samples>,
    test: &Samples,
    pipeline: InputPipeline,
    config: &MediaConfig,
    device: &Device,
) -> Result<MediaRun> {
    check_classes(train)?;
    let (mean, std) = train.channel_stats();
    let input = SavedInput {
        pipeline,
        mean,
        std,
        classes: train.classes.clone(),
    };
    let spec = config
        .spec
        .clone()
        .unwrap_or_else(|| default_spec(&train.shape, train.classes.len()));
    let expected = spec.input_shape()?;
    // Features [rows, frames] also feed a 2-D encoder as one-channel pictures [1, rows, frames].
    let as_picture: Vec<usize> = std::iter::once(1)
        .chain(train.shape.iter().copied())
        .collect();
    if expected != train.shape && !(train.shape.len() == 2 && expected == as_picture) {
        return Err(MediaError::Options(format!(
            "the model spec takes inputs {expected:?} (encoder.input) but the samples are {:?}",
            train.shape
        )));
    }
    let prepare = |s: &Samples| {
        let mut s = s.clone();
        input.normalize(&mut s);
        s
    };
    let (train_n, valid_n, test_n) = (prepare(train), valid.map(prepare), prepare(test));
    let n_classes = input.classes.len();
    let augmentation = augmentation(config, &train.shape, &input);
    let mut train_config = config.train.clone();
    if valid.is_none() {
        train_config.early_stopping = None;
    }
    let trainer =
        Trainer::new(train_config.clone(), device).with_parallel(config.parallel.clone())?;
    let (net, report) = match &spec {
        ConvSpec::Conv2d(s) => {
            let (model, report) = fit::<_, 4>(
                &trainer,
                &s.check()?,
                [&train_n, &test_n],
                valid_n.as_ref(),
                n_classes,
                augmentation,
            )?;
            (ConvNet::Conv2d(model), report)
        }
        ConvSpec::Conv1d(s) => {
            let (model, report) = fit::<_, 3>(
                &trainer,
                &s.check()?,
                [&train_n, &test_n],
                valid_n.as_ref(),
                n_classes,
                augmentation,
            )?;
            (ConvNet::Conv1d(model), report)
        }
    };
    Ok(MediaRun {
        spec,
        net,
        history: report.history,
        best_epoch: report.best_epoch,
        stopped_early: report.stopped_early,
        test: report.test,
        input,
        train_config,
    })
}

/// The seeded augmentation of training samples (already standardised), if any.
fn augmentation(
    config: &MediaConfig,
    shape: &[usize],
    input: &SavedInput,
) -> Option<sora_train::Augmentation> {
    match (&input.pipeline, shape) {
        (InputPipeline::Image { .. }, &[c, h, w]) if !config.augment.is_identity() => {
            let augment = config.augment;
            // Padding shows as black (raw 0), which is -mean/std once standardised.
            let fill: Vec<f32> = input
                .mean
                .iter()
                .zip(&input.std)
                .map(|(m, s)| -m / s)
                .collect();
            Some(Arc::new(
                move |x: &mut [f32], rng: &mut rand_chacha::ChaCha8Rng| {
                    augment.apply(x, c, h, w, &fill, rng)
                },
            ))
        }
        (InputPipeline::Audio { features }, &[rows, frames])
            if !config.masking.is_identity() && features.kind != FeatureKind::Waveform =>
        {
            let masking = config.masking;
            // Masked cells take the standardised mean, 0.
            Some(Arc::new(
                move |x: &mut [f32], rng: &mut rand_chacha::ChaCha8Rng| {
                    masking.apply(x, rows, frames, 0.0, rng)
                },
            ))
        }
        _ => None,
    }
}

fn data<const D: usize>(s: &Samples, n_classes: usize) -> Result<ArrayData<D>> {
    Ok(ArrayData::new(
        s.values.clone(),
        &s.shape,
        Targets::Classes {
            labels: s.labels.clone(),
            n_classes,
        },
    )?)
}

/// Reshapes samples to what the encoder takes (`[rows, frames]` features feed a 2-D encoder
/// as one-channel images).
fn data_for<const D: usize>(s: &Samples, n_classes: usize) -> Result<ArrayData<D>> {
    if s.shape.len() + 1 == D {
        return data(s, n_classes);
    }
    let mut shaped = s.clone();
    shaped.shape.insert(0, 1);
    data(&shaped, n_classes)
}

/// What [`fit`] hands back besides the model.
struct FitReport {
    history: sora_train::History,
    best_epoch: usize,
    stopped_early: bool,
    test: Metrics,
}

fn fit<S, const D: usize>(
    trainer: &Trainer,
    spec: &CheckedSpec<S>,
    [train, test]: [&Samples; 2],
    valid: Option<&Samples>,
    n_classes: usize,
    augmentation: Option<sora_train::Augmentation>,
) -> Result<(Model<S::Encoder>, FitReport)>
where
    S: EncoderSpec,
    S::Encoder: Encoder<Input = Tensor<D>>,
{
    let mut train = data_for::<D>(train, n_classes)?;
    if let Some(a) = augmentation {
        train = train.with_augmentation(a);
    }
    let valid = valid.map(|v| data_for::<D>(v, n_classes)).transpose()?;
    let test = data_for::<D>(test, n_classes)?;
    let fitted = trainer.fit(trainer.init(spec), &train, valid.as_ref())?;
    let test = trainer.evaluate(&fitted.model, &test)?;
    let Fitted {
        model,
        history,
        best_epoch,
        stopped_early,
    } = fitted;
    let report = FitReport {
        history,
        best_epoch,
        stopped_early,
        test,
    };
    Ok((model, report))
}

impl MediaRun {
    /// Saves the model directory: spec, weights, input pipeline, training config, test
    /// metrics, history and learning curves; an existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let input = serde_json::to_vec_pretty(&self.input).expect("the input pipeline serialises");
        let extra = [(INPUT_FILE, input)];
        let model_dir = ModelDir::new(dir);
        let (test, history) = (Some(&self.test), Some(&self.history));
        match (&self.spec, &self.net) {
            (ConvSpec::Conv2d(s), ConvNet::Conv2d(m)) => {
                model_dir.save(&s.check()?, m, &self.train_config, test, history, &extra)?
            }
            (ConvSpec::Conv1d(s), ConvNet::Conv1d(m)) => {
                model_dir.save(&s.check()?, m, &self.train_config, test, history, &extra)?
            }
            _ => unreachable!("the net is built from the spec"),
        }
        Ok(())
    }

    /// The trained model with its input side, as [`MediaModel::load`] would read it back.
    pub fn to_model(&self, device: &Device) -> MediaModel {
        MediaModel {
            input: self.input.clone(),
            spec: self.spec.clone(),
            net: self.net.clone(),
            device: device.clone(),
        }
    }
}

/// An image or audio model read back from its directory.
#[derive(Debug, Clone)]
pub struct MediaModel {
    /// The input side.
    pub input: SavedInput,
    /// The spec.
    pub spec: ConvSpec,
    /// The model.
    pub net: ConvNet,
    device: Device,
}

impl MediaModel {
    /// Reads a model directory written by [`MediaRun::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<MediaModel> {
        let model_dir = ModelDir::new(dir);
        let input: SavedInput = model_dir.read_json(INPUT_FILE)?.ok_or_else(|| {
            MediaError::Options(format!(
                "{}: no {INPUT_FILE}: not an image or audio model directory",
                dir.display()
            ))
        })?;
        let spec = ConvSpec::from_file(&dir.join(sora_train::files::SPEC))?;
        let net = match &spec {
            ConvSpec::Conv2d(_) => ConvNet::Conv2d(model_dir.load::<Conv2dSpec>(device)?.model),
            ConvSpec::Conv1d(_) => ConvNet::Conv1d(model_dir.load::<Conv1dSpec>(device)?.model),
        };
        let model = MediaModel {
            input,
            spec,
            net,
            device: device.clone(),
        };
        let d: usize = model.spec.input_shape()?.iter().product();
        let sample = model.sample_shape();
        if sample.iter().product::<usize>() != d || model.input.mean.len() != sample[0] {
            return Err(MediaError::Options(format!(
                "{}: {INPUT_FILE} gives samples {sample:?} with {} channel statistics, which do not fit spec.json",
                dir.display(),
                model.input.mean.len()
            )));
        }
        Ok(model)
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Shape of one sample as the pipeline makes it.
    pub fn sample_shape(&self) -> Vec<usize> {
        match &self.input.pipeline {
            InputPipeline::Image {
                channels,
                height,
                width,
            } => vec![*channels, *height, *width],
            InputPipeline::Audio { features } => features.output_shape().to_vec(),
        }
    }

    /// Reads data the way the model was trained: images converted and resized to the model's
    /// size (IDX images must have it already), clips through the saved features.
    pub fn load_data(&self, source: &Source) -> Result<Samples> {
        let options = match &self.input.pipeline {
            InputPipeline::Image {
                channels,
                height,
                width,
            } => LoadOptions {
                image: ImageOptions {
                    channels: if *channels == 1 {
                        ChannelMode::Gray
                    } else {
                        ChannelMode::Rgb
                    },
                    size: Some((*height, *width)),
                },
                ..LoadOptions::default()
            },
            InputPipeline::Audio { features } => LoadOptions {
                features: features.clone(),
                ..LoadOptions::default()
            },
        };
        let kind_fits = matches!(
            (&self.input.pipeline, source.is_audio()),
            (InputPipeline::Image { .. }, false) | (InputPipeline::Audio { .. }, true)
        );
        if !kind_fits {
            return Err(MediaError::Options(format!(
                "{source:?}: the model was trained on {}",
                match self.input.pipeline {
                    InputPipeline::Image { .. } => "images",
                    InputPipeline::Audio { .. } => "audio clips",
                }
            )));
        }
        let (mut samples, _) = load(source, &options)?;
        if samples.shape != self.sample_shape() {
            return Err(MediaError::Options(format!(
                "{source:?}: samples are {:?}, the model takes {:?}",
                samples.shape,
                self.sample_shape()
            )));
        }
        self.relabel(&mut samples)?;
        Ok(samples)
    }

    /// Maps the data's class names onto the model's class indices.
    fn relabel(&self, samples: &mut Samples) -> Result<()> {
        if samples.classes.is_empty() || samples.classes == self.input.classes {
            return Ok(());
        }
        let map = samples
            .classes
            .iter()
            .map(|c| {
                self.input
                    .classes
                    .iter()
                    .position(|k| k == c)
                    .ok_or_else(|| {
                        MediaError::Options(format!(
                            "class {c:?} of the data is not one of the model's classes {:?}",
                            self.input.classes
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        samples.labels.iter_mut().for_each(|l| *l = map[*l]);
        samples.classes = self.input.classes.clone();
        Ok(())
    }

    /// Class probabilities `[n, classes]` row-major for raw (unstandardised) samples.
    pub fn predict(&self, samples: &Samples) -> Result<Vec<f32>> {
        let mut s = samples.clone();
        self.input.normalize(&mut s);
        s.labels = vec![0; s.len()];
        let n_classes = self.input.classes.len();
        Ok(match &self.net {
            ConvNet::Conv2d(m) => {
                sora_train::predict(m, &data_for::<4>(&s, n_classes)?, 256, &self.device)?
            }
            ConvNet::Conv1d(m) => {
                sora_train::predict(m, &data_for::<3>(&s, n_classes)?, 256, &self.device)?
            }
        })
    }

    /// Metrics on raw labelled samples.
    pub fn evaluate(&self, samples: &Samples) -> Result<Metrics> {
        let mut s = samples.clone();
        self.input.normalize(&mut s);
        let n_classes = self.input.classes.len();
        Ok(match &self.net {
            ConvNet::Conv2d(m) => {
                sora_train::evaluate(m, &data_for::<4>(&s, n_classes)?, 256, &self.device)?
            }
            ConvNet::Conv1d(m) => {
                sora_train::evaluate(m, &data_for::<3>(&s, n_classes)?, 256, &self.device)?
            }
        })
    }
}

/// How [`MediaModel::explain`] attributes a prediction to the pixels (or spectrogram cells).
#[derive(Debug, Clone, PartialEq)]
pub enum MediaMethod {
    /// Grad-CAM on a convolution block (`None`: the last), upsampled to the input.
    GradCam {
        /// Index of the block.
        layer: Option<usize>,
    },
    /// `|∂F/∂x|`.
    Saliency,
    /// `x · ∂F/∂x`.
    InputXGradient,
    /// Integrated gradients from the all-mean input (zeros once standardised).
    IntegratedGradients {
        /// Path steps.
        steps: usize,
    },
    /// Occlusion by `patch × patch` squares set to the training mean.
    Occlusion {
        /// Side of the square, in pixels (or cells).
        patch: usize,
    },
}

impl MediaMethod {
    /// Names accepted by [`parse`](Self::parse).
    pub const NAMES: &'static str = "gradcam, saliency, input-x-gradient, ig, occlusion";

    /// Parses a method name; `steps` is used by `ig`, `patch` by `occlusion`, `layer` by
    /// `gradcam`.
    pub fn parse(name: &str, steps: usize, patch: usize, layer: Option<usize>) -> Option<Self> {
        Some(match name {
            "gradcam" | "grad-cam" => MediaMethod::GradCam { layer },
            "saliency" => MediaMethod::Saliency,
            "input-x-gradient" => MediaMethod::InputXGradient,
            "ig" | "integrated-gradients" => MediaMethod::IntegratedGradients { steps },
            "occlusion" => MediaMethod::Occlusion { patch },
            _ => return None,
        })
    }

    /// A display name.
    pub fn label(&self) -> &'static str {
        match self {
            MediaMethod::GradCam { .. } => "Grad-CAM",
            MediaMethod::Saliency => "saliency",
            MediaMethod::InputXGradient => "input × gradient",
            MediaMethod::IntegratedGradients { .. } => "integrated gradients",
            MediaMethod::Occlusion { .. } => "occlusion",
        }
    }
}

/// Attribution maps of some samples, one `[height, width]` map per sample over the picture
/// of the input (the image, or the spectrogram `[rows, frames]`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaExplanation {
    /// Row-major `[n, height, width]`, non-negative (magnitudes).
    pub heat: Vec<f32>,
    /// Picture height.
    pub height: usize,
    /// Picture width.
    pub width: usize,
    /// The class each map explains.
    pub targets: Vec<usize>,
    /// Class probabilities `[n, classes]`.
    pub probabilities: Vec<f32>,
    /// The Grad-CAM layer, when the method has one.
    pub layer: Option<String>,
}

impl MediaExplanation {
    /// The map of sample `i`.
    pub fn map(&self, i: usize) -> &[f32] {
        let d = self.height * self.width;
        &self.heat[i * d..(i + 1) * d]
    }

    /// The position `(row, column)` of the largest value of map `i`.
    pub fn peak(&self, i: usize) -> (usize, usize) {
        let map = self.map(i);
        let at = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]))
            .unwrap_or(0);
        (at / self.width, at % self.width)
    }
}

impl MediaModel {
    /// Picture `[channels, height, width]` of a sample: the image, or the features as a
    /// one-channel picture `[1, rows, frames]`.
    fn picture_shape(&self) -> [usize; 3] {
        match self.sample_shape()[..] {
            [c, h, w] => [c, h, w],
            [rows, frames] => [1, rows, frames],
            _ => unreachable!("samples have two or three axes"),
        }
    }

    /// Explains the predictions for `samples` (raw, as [`load_data`](Self::load_data) reads
    /// them): for each, a map of where the evidence for `targets` (default: the predicted
    /// class) lies.
    pub fn explain(
        &self,
        samples: &Samples,
        method: &MediaMethod,
        targets: Option<Vec<usize>>,
    ) -> Result<MediaExplanation> {
        use sora_explain::{
            Attribution, Baseline, FeatureAblation, GradCam, InputXGradient, Inputs,
            IntegratedGradients, Saliency, Target,
        };
        let probabilities = self.predict(samples)?;
        let k = self.input.classes.len();
        let targets = targets.unwrap_or_else(|| {
            probabilities
                .chunks(k)
                .map(sora_train::argmax)
                .collect::<Vec<_>>()
        });
        let mut standardised = samples.clone();
        self.input.normalize(&mut standardised);
        let d = samples.sample_len();
        let inputs = Inputs::new(standardised.values, d)?;
        let target = Target::PerExample(targets.clone());
        let [c, h, w] = self.picture_shape();
        let device = &self.device;
        let attribute = |a: &dyn Fn() -> Result<sora_explain::Attributions>| -> Result<Vec<f32>> {
            // Per-pixel magnitude, summed over channels.
            let a = a()?;
            let mut heat = vec![0.0f32; a.n * h * w];
            for (i, row) in a.values.chunks(d).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    heat[i * h * w + j % (h * w)] += v.abs();
                }
            }
            Ok(heat)
        };
        let gradient = |method: &dyn Fn(&ConvNet) -> Result<sora_explain::Attributions>| {
            attribute(&|| method(&self.net))
        };
        let mut layer = None;
        let heat = match method {
            MediaMethod::GradCam { layer: l } => {
                let cam = GradCam {
                    layer: *l,
                    relu: true,
                };
                let maps = match &self.net {
                    ConvNet::Conv2d(m) => cam.attribute(m, &inputs, &target, device)?,
                    ConvNet::Conv1d(m) => cam.attribute(m, &inputs, &target, device)?,
                };
                layer = Some(maps.layer.clone());
                if maps.height == 1 && h > 1 {
                    // A 1-D encoder's maps run along time: the same weight for every row.
                    let up = maps.upsample(1, w);
                    up.values
                        .chunks(w)
                        .flat_map(|row| std::iter::repeat_n(row, h).flatten().copied())
                        .collect()
                } else {
                    maps.upsample(h, w).values
                }
            }
            MediaMethod::Saliency => gradient(&|net| {
                Ok(match net {
                    ConvNet::Conv2d(m) => Saliency::default().attribute(
                        m,
                        &inputs,
                        &Baseline::Zeros,
                        &target,
                        device,
                    )?,
                    ConvNet::Conv1d(m) => Saliency::default().attribute(
                        m,
                        &inputs,
                        &Baseline::Zeros,
                        &target,
                        device,
                    )?,
                })
            })?,
            MediaMethod::InputXGradient => gradient(&|net| {
                Ok(match net {
                    ConvNet::Conv2d(m) => {
                        InputXGradient.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                    }
                    ConvNet::Conv1d(m) => {
                        InputXGradient.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                    }
                })
            })?,
            MediaMethod::IntegratedGradients { steps } => {
                let ig = IntegratedGradients {
                    n_steps: *steps,
                    ..IntegratedGradients::default()
                };
                gradient(&|net| {
                    Ok(match net {
                        ConvNet::Conv2d(m) => {
                            ig.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                        ConvNet::Conv1d(m) => {
                            ig.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                    })
                })?
            }
            MediaMethod::Occlusion { patch } => {
                if *patch == 0 || *patch > h.max(w) {
                    return Err(MediaError::Options(format!(
                        "occlusion patch: expected 1 ..= {}, found {patch}",
                        h.max(w)
                    )));
                }
                let across = w.div_ceil(*patch);
                let mask: Vec<usize> = (0..c * h * w)
                    .map(|j| {
                        let (y, x) = ((j / w) % h, j % w);
                        (y / patch) * across + x / patch
                    })
                    .collect();
                let ablation = FeatureAblation { mask: Some(mask) };
                gradient(&|net| {
                    Ok(match net {
                        ConvNet::Conv2d(m) => {
                            ablation.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                        ConvNet::Conv1d(m) => {
                            ablation.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                    })
                })?
            }
        };
        // Every channel adds the same patch value once; divide it back out.
        let heat = match method {
            MediaMethod::Occlusion { .. } => heat.iter().map(|v| v / c as f32).collect(),
            _ => heat,
        };
        Ok(MediaExplanation {
            heat,
            height: h,
            width: w,
            targets,
            probabilities,
            layer,
        })
    }

    /// Draws each sample beside its map blended over it, one row per sample, into a PNG
    /// (spectrograms with low frequencies at the bottom). The file is replaced atomically.
    pub fn save_picture(
        &self,
        samples: &Samples,
        explanation: &MediaExplanation,
        path: &Path,
    ) -> Result<()> {
        let [c, h, w] = self.picture_shape();
        let overlays: Vec<sora_explain::Overlay<'_>> = (0..samples.len())
            .map(|i| sora_explain::Overlay {
                image: samples.sample(i),
                channels: c,
                height: h,
                width: w,
                heat: explanation.map(i),
            })
            .collect();
        let is_audio = matches!(self.input.pipeline, InputPipeline::Audio { .. });
        let scale = (224 / h.max(w).max(1)).clamp(1, 8);
        sora_explain::save_overlays(path, &overlays, scale, is_audio)?;
        Ok(())
    }

    /// Reads one unlabelled file: an image (converted and resized to the model's input) or a
    /// WAV clip (through the saved features).
    pub fn load_file(&self, path: &Path) -> Result<Samples> {
        let values = match &self.input.pipeline {
            InputPipeline::Image {
                channels,
                height,
                width,
            } => sora_conv::images::read_image_file(path, *channels, (*height, *width))?,
            InputPipeline::Audio { features } => {
                let clip = sora_conv::audio::read_wav(path)?;
                FeatureExtractor::new(features.clone())?.extract(&clip)?
            }
        };
        Ok(Samples {
            values,
            shape: self.sample_shape(),
            labels: vec![0],
            classes: Vec::new(),
            sources: vec![path.display().to_string()],
        })
    }
}
