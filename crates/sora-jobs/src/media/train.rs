//! Training a convolutional model on samples, and the finished run.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use sora_conv::audio::{FeatureKind, Masking};
use sora_conv::images::Augment;
use sora_conv::{Conv1dEncoder, Conv2dEncoder};
use sora_core::{CheckedSpec, Encoder, EncoderSpec, Model};
use sora_train::{ArrayData, Fitted, Metrics, ModelDir, Targets, TrainConfig, Trainer};

use super::{
    ConvSpec, INPUT_FILE, InputPipeline, LoadOptions, MediaError, MediaModel, Samples, SavedInput,
    default_spec,
};
use crate::decision::{HeldOut, Scored};
use crate::kind::{Holdout, RunContext, Trained};
use crate::{EARLY_STOPPING_MIN_DELTA, Result};

/// Everything [`train`] needs besides the samples.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// What is read and how: image size and channels, audio features.
    pub load: LoadOptions,
    /// The training loop.
    pub train: TrainConfig,
    /// Fractions held out for validation (early stopping) and the final test.
    pub holdout: Holdout,
    /// A model spec to use instead of [`default_spec`].
    pub spec: Option<ConvSpec>,
    /// Image augmentation of training batches.
    pub augment: Augment,
    /// Time and frequency masking of training batches (spectrograms).
    pub masking: Masking,
}

impl Default for MediaConfig {
    /// Images of the first image's size and channels, log-mel features of 1-second clips at
    /// 8 kHz; Adam (learning rate 1e-3), batch 64, up to 30 epochs with early stopping
    /// (patience 5) on a 10 % validation split, 20 % test split, seed 42, no augmentation.
    fn default() -> Self {
        Self {
            load: LoadOptions::default(),
            train: TrainConfig::new(30, 64, 1e-3)
                .with_optimizer(sora_train::OptimizerConfig::adam())
                .with_early_stopping(5, EARLY_STOPPING_MIN_DELTA)
                .with_seed(crate::DEFAULT_SEED),
            holdout: Holdout {
                valid_fraction: 0.1,
                test_fraction: 0.2,
            },
            spec: None,
            augment: Augment::default(),
            masking: Masking::default(),
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
    /// Metrics on the test samples (`None` for a model refitted on every sample after
    /// cross-validation).
    pub test: Option<Metrics>,
    /// The input side, saved with the model.
    pub input: SavedInput,
    /// The training config as run.
    pub train_config: TrainConfig,
    /// Predictions of the validation and test samples.
    pub held_out: HeldOut,
}

/// Splits `samples` (stratified, seeded by the training seed) and runs [`train_split`].
pub fn train(
    samples: &Samples,
    pipeline: InputPipeline,
    config: &MediaConfig,
    device: &Device,
) -> Result<MediaRun> {
    train_in(
        samples,
        pipeline,
        config,
        &RunContext::quiet(device.clone()),
    )
}

/// [`train`] in a run's context (its device and data-parallel setting).
pub(super) fn train_in(
    samples: &Samples,
    pipeline: InputPipeline,
    config: &MediaConfig,
    ctx: &RunContext,
) -> Result<MediaRun> {
    check_classes(samples)?;
    let split = match &ctx.split {
        Some(parts) => {
            crate::kind::check_parts(parts, samples.len())?;
            parts.clone()
        }
        None => {
            let split = config
                .holdout
                .stratified(&samples.labels, config.train.seed);
            config.holdout.require_test(&split, Some(&samples.labels))?;
            split
        }
    };
    let valid = (!split.valid.is_empty()).then(|| samples.subset(&split.valid));
    split_in(
        &samples.subset(&split.train),
        valid.as_ref(),
        &samples.subset(&split.test),
        pipeline,
        config,
        ctx,
    )
}

fn check_classes(samples: &Samples) -> Result<()> {
    if samples.classes.len() < 2 {
        return Err(MediaError::TooFewClasses {
            n: samples.classes.len(),
        }
        .into());
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
    split_in(
        train,
        valid,
        test,
        pipeline,
        config,
        &RunContext::quiet(device.clone()),
    )
}

fn split_in(
    train: &Samples,
    valid: Option<&Samples>,
    test: &Samples,
    pipeline: InputPipeline,
    config: &MediaConfig,
    ctx: &RunContext,
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
        return Err(MediaError::SpecMismatch {
            spec: expected,
            samples: train.shape.clone(),
        }
        .into());
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
    let trainer = ctx.trainer("train", train_config.clone())?;
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
        held_out: HeldOut {
            classes: Some(input.classes.clone()),
            ..report.held_out
        },
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
pub(super) fn data_for<const D: usize>(s: &Samples, n_classes: usize) -> Result<ArrayData<D>> {
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
    test: Option<Metrics>,
    held_out: HeldOut,
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
    let fitted = trainer.fit_or_resume(trainer.init(spec), &train, valid.as_ref())?;
    let valid = valid
        .as_ref()
        .map(|v| Scored::of(trainer, &fitted.model, v))
        .transpose()?;
    let test = match test.is_empty() {
        true => None,
        false => Some(Scored::of(
            trainer,
            &fitted.model,
            &data_for::<D>(test, n_classes)?,
        )?),
    };
    let held_out = HeldOut::parts(valid, test);
    let test = held_out.test.as_ref().map(Scored::metrics);
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
        held_out,
    };
    Ok((model, report))
}

impl MediaRun {
    /// Saves the model directory: manifest, spec, weights, input pipeline, training config,
    /// test metrics, history and learning curves; an existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let input = serde_json::to_vec_pretty(&self.input).expect("the input pipeline serialises");
        let extra = [(INPUT_FILE, input)];
        let model_dir = ModelDir::new(dir);
        let (test, history) = (self.test.as_ref(), Some(&self.history));
        let manifest =
            super::model::describe(&self.input, &self.spec, self.net.num_params())?.manifest();
        match (&self.spec, &self.net) {
            (ConvSpec::Conv2d(s), ConvNet::Conv2d(m)) => model_dir.save(
                &manifest,
                &s.check()?,
                m,
                &self.train_config,
                test,
                history,
                &extra,
            )?,
            (ConvSpec::Conv1d(s), ConvNet::Conv1d(m)) => model_dir.save(
                &manifest,
                &s.check()?,
                m,
                &self.train_config,
                test,
                history,
                &extra,
            )?,
            _ => unreachable!("the net is built from the spec"),
        }
        Ok(())
    }

    /// The trained model with its input side, as [`MediaModel::load`] would read it back.
    pub fn to_model(&self, device: &Device) -> Result<MediaModel> {
        MediaModel::new(
            self.input.clone(),
            self.spec.clone(),
            self.net.clone(),
            device,
        )
    }
}

impl ConvNet {
    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        match self {
            ConvNet::Conv2d(m) => m.num_params(),
            ConvNet::Conv1d(m) => m.num_params(),
        }
    }
}

impl Trained for MediaRun {
    fn report(&self) -> String {
        crate::outcome(
            self.best_epoch,
            self.history.epochs.len(),
            self.stopped_early,
            self.test.as_ref(),
            Some(&self.input.classes),
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        MediaRun::save(self, dir)
    }

    fn test_metrics(&self) -> Option<&sora_train::Metrics> {
        self.test.as_ref()
    }

    fn held_out(&self) -> crate::decision::HeldOut {
        self.held_out.clone()
    }
}
