//! The training loop: forward, loss, backward, optimizer step, in mini-batches, with
//! validation every epoch, early stopping, checkpoints and resume.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{GradientsParams, ModuleOptimizer};

use crate::optim::{FusedAdam, FusedSgd};
use burn::store::ModuleRecord;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sora_core::{Encoder, Model};

use crate::checkpoint::{
    Cadence, CheckpointEvery, CheckpointFiles, STATE_FILE, load_module, read_optimizer,
    read_record, write_state,
};
use crate::parallel::{Collective, Flatten, Unflatten, shard};
use crate::{
    ClassificationMetrics, EpochRecord, History, Metrics, OptimizerConfig, Progress,
    RegressionMetrics, TargetBatch, Targets, TrainConfig, TrainData, TrainError,
};

/// A finished run.
#[derive(Debug)]
pub struct Fitted<M> {
    /// The trained model in evaluation mode (the best epoch's weights under early stopping).
    pub model: M,
    /// What every epoch measured.
    pub history: History,
    /// The epoch whose weights `model` holds (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
}

/// Where a run stands, saved with every checkpoint (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    config: TrainConfig,
    epochs_done: usize,
    steps_done: usize,
    best_epoch: usize,
    best_loss: f64,
    history: History,
    /// Each epoch's wall-clock seconds (the history's own JSON leaves them out).
    #[serde(default)]
    seconds: Vec<f64>,
    #[serde(flatten)]
    files: CheckpointFiles,
}

/// Trains [`Model`]s on one device.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_train::{Progress, TabularData, Targets, TrainConfig, Trainer};
///
/// # fn main() -> Result<(), sora_train::TrainError> {
/// // XOR-like data: the class is whether x0 and x1 have the same sign.
/// let mut x = Vec::new();
/// let mut y = Vec::new();
/// for i in 0..200 {
///     let (a, b) = (((i * 37) % 200) as f32 / 100.0 - 1.0, ((i * 91) % 200) as f32 / 100.0 - 1.0);
///     x.extend([a, b]);
///     y.push(usize::from(a * b > 0.0));
/// }
/// let data = TabularData::new(x, 2, Targets::Classes { labels: y, n_classes: 2 })?;
/// let spec = ModelSpec::new(IdentitySpec::new(2), HeadSpec::new(&[16]), Task::Classification { n_classes: 2 })
///     .check()?;
/// let config = TrainConfig::new(60, 16, 0.1).with_seed(7).with_progress(Progress::Quiet);
/// let trainer = Trainer::new(config, &Device::flex());
/// let fitted = trainer.fit(trainer.init(&spec), &data, None)?;
/// let metrics = trainer.evaluate(&fitted.model, &data)?;
/// assert!(metrics.accuracy().unwrap() > 0.9);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    checkpoint_dir: Option<PathBuf>,
    checkpoint_every: CheckpointEvery,
    parallel: Parallel,
}

/// How the gradient of each step is computed (see the [`parallel`](crate::parallel) module).
#[derive(Debug, Clone, Default)]
pub enum Parallel {
    /// The whole batch on the trainer's device.
    #[default]
    None,
    /// Shards of every batch on these devices, in parallel threads, gradients averaged in
    /// process; the first device holds the model and the optimizer.
    Devices(Vec<Device>),
    /// This process's shard of every batch, gradients averaged over the processes.
    Processes(Arc<dyn Collective + Send + Sync>),
}

/// Reads every parameter once, which draws the lazily initialised ones.
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

enum Loss {
    CrossEntropy(Box<CrossEntropyLoss>),
    Mse(MseLoss),
}

/// Burn's random generator is one per backend and process: whoever seeds it or draws
/// initial weights from it holds this lock, so runs in parallel threads (tests, several
/// trainers) do not change each other's initial weights.
static DEVICE_RNG: Mutex<()> = Mutex::new(());

/// Reads every parameter of `module` once, which draws the lazily initialised ones (Burn
/// allocates parameters on first use): call it inside [`seeded`] so the draws happen there.
pub fn materialize<M: Module>(module: &M) {
    module.visit(&mut Materialize);
}

/// Seeds `device`'s random generator and runs `draw` (e.g. a model's initialisation) while no
/// other thread of the process seeds it or draws initial weights through this function or a
/// [`Trainer`]: the same seed gives the same draws however many runs share the process.
pub fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = DEVICE_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    draw()
}

/// One shard's gradient in [`Flatten`]'s layout, scaled by the shard's share `scale` of the
/// batch, and its mean loss times `scale`.
fn shard_gradient<E: Encoder>(
    replica: &Model<E>,
    input: E::Input,
    targets: TargetBatch,
    loss_fn: &Loss,
    scale: f32,
) -> (Vec<f32>, f32) {
    let loss = loss_of(loss_fn, replica.forward(input), targets);
    let value = loss.clone().into_scalar::<f32>();
    let mut grads = GradientsParams::from_grads(loss.backward(), replica);
    let mut flat = Flatten {
        grads: &mut grads,
        scale,
        out: Vec::new(),
    };
    replica.visit(&mut flat);
    (flat.out, value * scale)
}

/// The mean loss of a batch's outputs.
fn loss_of(loss_fn: &Loss, output: Tensor<2>, targets: TargetBatch) -> Tensor<1> {
    match (loss_fn, targets) {
        (Loss::CrossEntropy(ce), TargetBatch::Classes(y)) => ce.forward(output, y),
        (Loss::Mse(mse), TargetBatch::Values(y)) => {
            mse.forward(output, y, Reduction::Mean).reshape([1])
        }
        _ => unreachable!("the loss is chosen from the same targets"),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

impl Trainer {
    /// A trainer that runs on `device` (autodiff is added for training).
    pub fn new(config: TrainConfig, device: &Device) -> Self {
        Self {
            config,
            device: device.clone().without_autodiff(),
            checkpoint_dir: None,
            checkpoint_every: CheckpointEvery::default(),
            parallel: Parallel::None,
        }
    }

    /// Trains data-parallel (see [`Parallel`]). With [`Parallel::Devices`], the model and the
    /// optimizer live on the first device, which becomes the trainer's device.
    pub fn with_parallel(mut self, parallel: Parallel) -> Result<Self, TrainError> {
        match &parallel {
            Parallel::Devices(devices) => {
                let first = devices.first().ok_or_else(|| TrainError::Config {
                    field: "devices".into(),
                    expected: "at least one device".into(),
                    found: "none".into(),
                })?;
                self.device = first.clone().without_autodiff();
            }
            Parallel::Processes(c) if c.size() == 0 || c.rank() >= c.size() => {
                return Err(TrainError::Config {
                    field: "collective".into(),
                    expected: "a rank below the number of processes".into(),
                    found: format!("rank {} of {}", c.rank(), c.size()),
                });
            }
            _ => {}
        }
        self.parallel = parallel;
        Ok(self)
    }

    /// Whether this trainer prints and writes checkpoints: always, except on the processes
    /// other than rank 0 of a [`Parallel::Processes`] run.
    pub fn is_leader(&self) -> bool {
        match &self.parallel {
            Parallel::Processes(c) => c.rank() == 0,
            _ => true,
        }
    }

    /// Writes checkpoints (best and last, atomically) into `dir`: after every epoch, unless
    /// [`with_checkpoint_every`](Self::with_checkpoint_every) says otherwise.
    pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoint_dir = Some(dir.into());
        self
    }

    /// How often checkpoints are written (the last epoch of a run always is).
    pub fn with_checkpoint_every(mut self, every: CheckpointEvery) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// The directory checkpoints are written to, if any.
    pub fn checkpoint_dir(&self) -> Option<&Path> {
        self.checkpoint_dir.as_deref()
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The (non-autodiff) device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The autodiff device on which models train.
    pub fn train_device(&self) -> Device {
        self.device.clone().autodiff()
    }

    /// Seeds the device with the config's seed and allocates the spec's model on the
    /// training device: the same seed gives the same initial weights.
    ///
    /// Burn's random generator is one per backend and process, and parameters are drawn
    /// lazily; so the seeding and every draw happen here, under a process-wide lock, and
    /// models initialised in parallel threads do not disturb each other.
    pub fn init<S: sora_core::EncoderSpec>(
        &self,
        spec: &sora_core::CheckedSpec<S>,
    ) -> Model<S::Encoder> {
        let device = self.train_device();
        seeded(&device, self.config.seed, || {
            let model = spec.init(&device);
            model.visit(&mut Materialize);
            model
        })
    }

    fn optimizer(&self) -> ModuleOptimizer {
        match self.config.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => ModuleOptimizer::from(FusedSgd {
                momentum: (momentum > 0.0).then_some((momentum, 0.0, nesterov)),
                weight_decay: (weight_decay > 0.0).then_some(weight_decay as f32),
            }),
            OptimizerConfig::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => ModuleOptimizer::from(FusedAdam {
                beta_1: beta_1 as f32,
                beta_2: beta_2 as f32,
                epsilon: epsilon as f32,
                weight_decay: (weight_decay > 0.0).then_some(weight_decay as f32),
                decoupled_weight_decay: None,
            }),
            OptimizerConfig::AdamW {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => ModuleOptimizer::from(FusedAdam {
                beta_1: beta_1 as f32,
                beta_2: beta_2 as f32,
                epsilon: epsilon as f32,
                weight_decay: None,
                decoupled_weight_decay: Some(weight_decay as f32),
            }),
        }
    }

    fn loss(&self, targets: &Targets, device: &Device) -> Loss {
        match targets {
            Targets::Classes { .. } => Loss::CrossEntropy(Box::new(
                CrossEntropyLossConfig::new()
                    .with_weights(self.config.loss.class_weights.clone())
                    .with_smoothing(self.config.loss.label_smoothing)
                    .init(device),
            )),
            Targets::Values { .. } => Loss::Mse(MseLoss::new()),
        }
    }

    fn check_data<E: Encoder, D: TrainData>(
        &self,
        model: &Model<E>,
        train: &D,
        valid: Option<&D>,
    ) -> Result<(), TrainError> {
        let d_output = model.head.output.weight.dims()[1];
        let check = |data: &D, set: &'static str| -> Result<(), TrainError> {
            if data.is_empty() {
                return Err(TrainError::EmptySet { set });
            }
            match data.targets() {
                Targets::Classes { n_classes, .. } if *n_classes != d_output => {
                    Err(TrainError::TargetsMismatch {
                        set,
                        what: "classes",
                        found: *n_classes,
                        outputs: d_output,
                    })
                }
                Targets::Values { d, .. } if *d != d_output => Err(TrainError::TargetsMismatch {
                    set,
                    what: "targets per sample",
                    found: *d,
                    outputs: d_output,
                }),
                _ => Ok(()),
            }
        };
        check(train, "training")?;
        if let Some(v) = valid {
            check(v, "validation")?;
        }
        let n_classes = match train.targets() {
            Targets::Classes { n_classes, .. } => Some(*n_classes),
            Targets::Values { .. } => None,
        };
        self.config.check(n_classes)
    }

    /// Trains `model` (allocated on [`train_device`](Self::train_device), e.g. by
    /// [`init`](Self::init)) on `train`, validating on `valid` after every epoch.
    pub fn fit<E, D>(
        &self,
        model: Model<E>,
        train: &D,
        valid: Option<&D>,
    ) -> Result<Fitted<Model<E>>, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        self.check_data(&model, train, valid)?;
        let optimizer = self.optimizer();
        let state = RunState {
            config: self.config.clone(),
            epochs_done: 0,
            steps_done: 0,
            best_epoch: 0,
            best_loss: f64::INFINITY,
            history: History::default(),
            seconds: Vec::new(),
            files: CheckpointFiles::default(),
        };
        let best = model.clone().into_record();
        self.run(model, best, optimizer, state, train, valid)
    }

    /// [`resume`](Self::resume)s the run when the trainer's checkpoint directory holds a
    /// checkpoint of it, [`fit`](Self::fit)s otherwise: a run started again after an
    /// interruption continues where it stopped (a checkpoint of a different config is
    /// refused, see `resume`).
    pub fn fit_or_resume<E, D>(
        &self,
        model: Model<E>,
        train: &D,
        valid: Option<&D>,
    ) -> Result<Fitted<Model<E>>, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        match &self.checkpoint_dir {
            Some(dir) if dir.join(STATE_FILE).exists() => self.resume(model, train, valid),
            _ => self.fit(model, train, valid),
        }
    }

    /// Continues the run whose checkpoints are in the trainer's checkpoint directory, from
    /// its last completed epoch, with the optimizer state it had. `model` must have the
    /// run's architecture (e.g. [`init`](Self::init) of the same spec); its weights are
    /// replaced by the checkpoint's. The config must be the run's, except that `epochs` may
    /// be raised to extend it. The continued run ends where an uninterrupted one would, with
    /// the same weights (for a schedule that depends on the total, with the same total).
    pub fn resume<E, D>(
        &self,
        model: Model<E>,
        train: &D,
        valid: Option<&D>,
    ) -> Result<Fitted<Model<E>>, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        let dir = self
            .checkpoint_dir
            .as_ref()
            .ok_or_else(|| TrainError::Config {
                field: "checkpoint_dir".into(),
                expected: "a checkpoint directory to resume from".into(),
                found: "none".into(),
            })?;
        let state_path = dir.join(STATE_FILE);
        let text =
            sora_core::weights::read_bounded(&state_path, sora_core::weights::MAX_JSON_BYTES)
                .map_err(TrainError::io(&state_path))?;
        let mut state: RunState =
            serde_json::from_slice(&text).map_err(|source| TrainError::Json {
                file: state_path.clone(),
                source,
            })?;
        let mut same = state.config.clone();
        same.epochs = self.config.epochs;
        if same != self.config {
            return Err(TrainError::Checkpoint {
                file: state_path,
                message: "the checkpoint was written with a different training config \
                          (only `epochs` may change, to extend a run)"
                    .into(),
            });
        }
        if state.epochs_done > self.config.epochs {
            return Err(TrainError::Checkpoint {
                file: state_path,
                message: format!(
                    "the run has already done {} epochs, more than the {} asked for",
                    state.epochs_done, self.config.epochs
                ),
            });
        }
        state.config = self.config.clone();
        for (epoch, seconds) in state.history.epochs.iter_mut().zip(&state.seconds) {
            epoch.seconds = *seconds;
        }
        self.check_data(&model, train, valid)?;
        let last = load_module(model, &dir.join(&state.files.last_model))?;
        let best = read_record(&dir.join(&state.files.best_model))?;
        let optimizer = read_optimizer(&dir.join(&state.files.last_optimizer), self.optimizer())?;
        if self.is_leader() && self.config.progress != Progress::Quiet {
            println!(
                "continuing from the checkpoint of epoch {} in {}",
                state.epochs_done,
                dir.display()
            );
        }
        self.run(last, best, optimizer, state, train, valid)
    }

    fn run<E, D>(
        &self,
        mut model: Model<E>,
        mut best: ModuleRecord,
        mut optimizer: ModuleOptimizer,
        mut state: RunState,
        train: &D,
        valid: Option<&D>,
    ) -> Result<Fitted<Model<E>>, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        let cfg = &self.config;
        let device = self.train_device();
        let loss_fn = self.loss(train.targets(), &device);
        let n = train.len();
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        let total_steps = steps_per_epoch * cfg.epochs;
        let show = match cfg.progress {
            _ if !self.is_leader() => Progress::Quiet,
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Plain,
            other => other,
        };
        let mut stopped_early = false;
        let mut order: Vec<usize> = (0..n).collect();
        let mut since_best = state.epochs_done - state.best_epoch.min(state.epochs_done);
        let mut cadence = Cadence::new(self.checkpoint_every);
        // Whether the best weights changed since the last checkpoint.
        let mut best_unsaved = false;
        // A resumed run whose checkpoint is the epoch early stopping ended on.
        if let Some(es) = &cfg.early_stopping
            && state.epochs_done > 0
            && since_best >= es.patience
        {
            stopped_early = state.epochs_done < cfg.epochs;
        }

        for epoch in state.epochs_done..cfg.epochs {
            if stopped_early {
                break;
            }
            let start = Instant::now();
            // Every epoch's randomness derives from (seed, epoch) alone, so a resumed run
            // draws exactly what an uninterrupted one would.
            let epoch_seed = cfg.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            // Under the lock: seeding here must not fall between another run's seeding and
            // drawing of its initial weights.
            seeded(&device, epoch_seed, || ());
            if cfg.shuffle {
                order.sort_unstable();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed));
            }
            let bar = (show == Progress::Bar).then(|| {
                let bar = ProgressBar::new(steps_per_epoch as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} batches, {elapsed}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
                bar
            });
            let lr_epoch = cfg
                .schedule
                .lr(cfg.lr, epoch, state.steps_done, total_steps);
            let mut loss_sum: Option<Tensor<1>> = None;
            for (b, batch) in order.chunks(cfg.batch_size).enumerate() {
                let lr = cfg
                    .schedule
                    .lr(cfg.lr, epoch, state.steps_done, total_steps);
                let batch_seed = epoch_seed ^ (b as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                let (grads, weighted) = match &self.parallel {
                    Parallel::None => {
                        let output = model.forward(train.train_inputs(batch, batch_seed, &device));
                        let loss = loss_of(&loss_fn, output, train.targets().batch(batch, &device));
                        let weighted = loss.clone().detach() * batch.len() as f32;
                        (
                            GradientsParams::from_grads(loss.backward(), &model),
                            weighted,
                        )
                    }
                    Parallel::Devices(devices) => {
                        self.device_gradients(&model, devices, batch, batch_seed, train)?
                    }
                    Parallel::Processes(c) => self.process_gradients(
                        &model,
                        c.as_ref(),
                        batch,
                        batch_seed,
                        train,
                        &loss_fn,
                    )?,
                };
                loss_sum = Some(match loss_sum {
                    Some(sum) => sum + weighted,
                    None => weighted,
                });
                model = optimizer.step(lr, model, grads);
                state.steps_done += 1;
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
            let train_loss = loss_sum
                .map(|s| s.into_scalar::<f32>() as f64 / n as f64)
                .unwrap_or(f64::NAN);
            if !train_loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step: state.steps_done,
                    loss: train_loss as f32,
                });
            }
            let metrics = match valid {
                // Every epoch: the metrics alone, without the final evaluation's intervals.
                Some(v) => Some(metrics_of(&self.predict(&model.valid(), v)?, v.targets())),
                None => None,
            };
            let monitored = metrics.as_ref().map_or(train_loss, Metrics::loss);
            let record = EpochRecord {
                epoch: epoch + 1,
                lr: lr_epoch,
                train_loss,
                valid_loss: metrics.as_ref().map(Metrics::loss),
                valid_accuracy: metrics.as_ref().and_then(Metrics::accuracy),
                seconds: start.elapsed().as_secs_f64(),
            };
            let min_delta = cfg.early_stopping.as_ref().map_or(0.0, |e| e.min_delta);
            let improved = monitored < state.best_loss - min_delta;
            if improved {
                state.best_loss = monitored;
                state.best_epoch = epoch + 1;
                // A record, not a clone: a clone shares the batch-norm running statistics
                // with the model that goes on training.
                best = model.clone().into_record();
                best_unsaved = true;
                since_best = 0;
            } else {
                since_best += 1;
            }
            state.epochs_done = epoch + 1;
            let line = epoch_line(&record, cfg.epochs, improved);
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if show != Progress::Quiet {
                println!("{line}");
            }
            state.history.epochs.push(record);
            let stopping = cfg
                .early_stopping
                .as_ref()
                .is_some_and(|es| since_best >= es.patience);
            if let Some(dir) = self.checkpoint_dir.as_ref().filter(|_| self.is_leader())
                && cadence.due(stopping || epoch + 1 == cfg.epochs)
            {
                self.save_checkpoint(
                    dir,
                    &mut state,
                    &model,
                    &optimizer,
                    best_unsaved.then_some(&best),
                )?;
                best_unsaved = false;
            }
            if stopping {
                stopped_early = epoch + 1 < cfg.epochs;
                break;
            }
        }
        let model = if cfg.early_stopping.is_some() {
            model
                .try_load_record(best)
                .map_err(|e| TrainError::Checkpoint {
                    file: PathBuf::from("(the best epoch's weights, in memory)"),
                    message: e.to_string(),
                })?
        } else {
            model
        };
        let best_epoch = if cfg.early_stopping.is_some() {
            state.best_epoch
        } else {
            state.epochs_done
        };
        let mut history = state.history;
        history.best_epoch = Some(best_epoch);
        history.stopped_early = stopped_early;
        Ok(Fitted {
            model: model.valid(),
            history,
            best_epoch,
            stopped_early,
        })
    }

    /// The step's gradient from shards of `batch` on `devices` (one replica each, forked from
    /// `model`, run in parallel threads), summed on the host in device order.
    fn device_gradients<E, D>(
        &self,
        model: &Model<E>,
        devices: &[Device],
        batch: &[usize],
        seed: u64,
        train: &D,
    ) -> Result<(GradientsParams, Tensor<1>), TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        let k = devices.len();
        let mut jobs = Vec::new();
        for (i, dev) in devices.iter().enumerate() {
            let part = shard(batch, i, k);
            if part.is_empty() {
                continue;
            }
            let dev = dev.clone().autodiff();
            let replica = if i == 0 {
                model.clone()
            } else {
                model.clone().fork(&dev)
            };
            let scale = part.len() as f32 / batch.len() as f32;
            let input = train.train_inputs(part, seed ^ i as u64, &dev);
            let targets = train.targets().batch(part, &dev);
            let loss_fn = self.loss(train.targets(), &dev);
            jobs.push((replica, input, targets, loss_fn, scale));
        }
        let buffers: Vec<Result<(Vec<f32>, f32), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(replica, input, targets, loss_fn, scale)| {
                    s.spawn(move || shard_gradient(&replica, input, targets, &loss_fn, scale))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|e| panic_message(e.as_ref())))
                .collect()
        });
        let mut sum: Vec<f32> = Vec::new();
        let mut loss = 0.0;
        for buffer in buffers {
            let (values, l) = buffer.map_err(|message| TrainError::Parallel {
                message: format!("a device's shard failed: {message}"),
            })?;
            if sum.is_empty() {
                sum = values;
            } else {
                sum.iter_mut().zip(&values).for_each(|(a, b)| *a += b);
            }
            loss += l;
        }
        Ok((
            self.unflatten(model, &sum),
            self.weighted_loss(loss, batch.len()),
        ))
    }

    /// The step's gradient from this process's shard of `batch`, summed over the processes
    /// by the collective (with the shard losses, in the buffer's last element).
    fn process_gradients<E, D>(
        &self,
        model: &Model<E>,
        collective: &(dyn Collective + Send + Sync),
        batch: &[usize],
        seed: u64,
        train: &D,
        loss_fn: &Loss,
    ) -> Result<(GradientsParams, Tensor<1>), TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        let device = self.train_device();
        let part = shard(batch, collective.rank(), collective.size());
        let (mut buffer, loss) = if part.is_empty() {
            // No rows here: zeros (and absent flags) in the same layout.
            let mut flat = Flatten {
                grads: &mut GradientsParams::new(),
                scale: 0.0,
                out: Vec::new(),
            };
            model.visit(&mut flat);
            (flat.out, 0.0)
        } else {
            // Shard k draws its augmentation from `seed ^ k`, as on several devices.
            let shard_seed = seed ^ collective.rank() as u64;
            shard_gradient(
                model,
                train.train_inputs(part, shard_seed, &device),
                train.targets().batch(part, &device),
                loss_fn,
                part.len() as f32 / batch.len() as f32,
            )
        };
        buffer.push(loss);
        collective.all_reduce_sum(&mut buffer)?;
        let loss = buffer.pop().expect("the loss element");
        Ok((
            self.unflatten(model, &buffer),
            self.weighted_loss(loss, batch.len()),
        ))
    }

    fn unflatten<E: Encoder>(&self, model: &Model<E>, values: &[f32]) -> GradientsParams {
        let mut reader = Unflatten {
            values,
            at: 0,
            device: self.device.clone(),
            grads: GradientsParams::new(),
        };
        model.visit(&mut reader);
        reader.grads
    }

    /// A batch's mean loss times its size, as the epoch sum adds it.
    fn weighted_loss(&self, mean: f32, n: usize) -> Tensor<1> {
        Tensor::from_data(
            burn::tensor::TensorData::new(vec![mean * n as f32], [1]),
            &self.train_device(),
        )
    }

    fn save_checkpoint<E: Encoder>(
        &self,
        dir: &Path,
        state: &mut RunState,
        model: &Model<E>,
        optimizer: &ModuleOptimizer,
        best: Option<&ModuleRecord>,
    ) -> Result<(), TrainError> {
        let old = state.files.write(
            dir,
            state.epochs_done,
            model.clone().into_record(),
            optimizer,
            best.cloned(),
        )?;
        state.seconds = state.history.epochs.iter().map(|e| e.seconds).collect();
        // The state file is the commit point: until it is renamed into place, the previous
        // checkpoint stays the valid one.
        write_state(dir, state)?;
        state.files.remove_stale(dir, &old);
        Ok(())
    }

    /// Predicts a whole data set in batches: class probabilities (softmax of the logits) for
    /// a classifier, values for a regressor; row-major `[n, d_output]`.
    pub fn predict<E, D>(&self, model: &Model<E>, data: &D) -> Result<Vec<f32>, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        predict(model, data, self.config.batch_size.max(256), &self.device)
    }

    /// Evaluates a model (in evaluation mode, on the trainer's device) on `data`, with
    /// bootstrap confidence intervals ([`Metrics::with_intervals`]).
    pub fn evaluate<E, D>(&self, model: &Model<E>, data: &D) -> Result<Metrics, TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        evaluate(model, data, self.config.batch_size.max(256), &self.device)
    }
}

/// Predicts `data` with `model` on `device` in batches of `batch_size`: class
/// probabilities for a classifier, values for a regressor; row-major `[n, d_output]`.
pub fn predict<E, D>(
    model: &Model<E>,
    data: &D,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f32>, TrainError>
where
    E: Encoder,
    D: TrainData<Input = E::Input>,
{
    let classify = matches!(data.targets(), Targets::Classes { .. });
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut out = Vec::new();
    for batch in indices.chunks(batch_size.max(1)) {
        let y = model.forward(data.inputs(batch, device));
        let y = if classify { softmax(y, 1) } else { y };
        let values = y
            .try_into_vec_as::<f32>()
            .map_err(|e| TrainError::Backend {
                what: "the predictions",
                message: format!("{e:?}"),
            })?;
        out.extend(values);
    }
    Ok(out)
}

/// Evaluates `model` on `data` (see [`Metrics`]), with bootstrap confidence intervals
/// ([`Metrics::with_intervals`]).
pub fn evaluate<E, D>(
    model: &Model<E>,
    data: &D,
    batch_size: usize,
    device: &Device,
) -> Result<Metrics, TrainError>
where
    E: Encoder,
    D: TrainData<Input = E::Input>,
{
    let predictions = predict(model, data, batch_size, device)?;
    Ok(metrics_of(&predictions, data.targets()).with_intervals(&predictions, data.targets()))
}

/// The metrics of `predictions` (probabilities or values, row-major) against `targets`.
fn metrics_of(predictions: &[f32], targets: &Targets) -> Metrics {
    match targets {
        Targets::Classes { labels, n_classes } => Metrics::Classification(
            ClassificationMetrics::compute(predictions, labels, *n_classes),
        ),
        Targets::Values { values, d } => {
            Metrics::Regression(RegressionMetrics::compute(predictions, values, *d))
        }
    }
}

fn epoch_line(r: &EpochRecord, epochs: usize, improved: bool) -> String {
    let mut line = format!(
        "epoch {:>3}/{epochs}  lr {:.4}  train loss {:.4}",
        r.epoch, r.lr, r.train_loss
    );
    if let Some(v) = r.valid_loss {
        line.push_str(&format!("  valid loss {v:.4}"));
    }
    if let Some(a) = r.valid_accuracy {
        line.push_str(&format!("  valid acc {a:.4}"));
    }
    line.push_str(&format!("  {:.2}s", r.seconds));
    if improved {
        line.push_str("  *");
    }
    line
}
