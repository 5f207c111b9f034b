//! The training side of the contract: a model [`Kind`] — checked config, data in, a trained
//! run out, saved, loaded back as a [`Model`](crate::Model) — and the steps every kind
//! shares: the device and the data-parallel setting of the run ([`RunContext`]), the
//! training loop's options ([`CommonOptions`], applied once by [`CommonOptions::apply`]),
//! the seeded split ([`Holdout`]).

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sora_train::{
    CheckpointEvery, Metrics, OptimizerConfig, Parallel, Progress, TrainConfig, Trainer,
};

use crate::decision::HeldOut;
use crate::{JobError, Model, Result};

/// Smallest decrease of the validation loss that counts as an improvement, for every kind
/// that stops early.
pub const EARLY_STOPPING_MIN_DELTA: f64 = 1e-4;
/// The seed of a run when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// A kind's configuration: `Default` is the one source of its defaults (the command line's
/// help shows them from there), and [`check`](JobConfig::check) validates it up front, naming
/// the first field out of range.
pub trait JobConfig: Default + Clone + Debug + Send + Sync + 'static {
    /// Checks every field; the error names the first one out of range.
    fn check(&self) -> Result<()>;
}

/// A model kind: one implementation per kind, registered once in the
/// [`Registry`](crate::Registry).
///
/// `sora train` builds the kind's [`Config`](Kind::Config) from its defaults, the shared
/// flags ([`CommonOptions`]) and the kind's own flags ([`Options`](Kind::Options)), checks it,
/// reads the data, trains, and saves the run; `sora eval | predict | explain | serve` read the
/// directory back through [`load_any`](crate::load_any), which calls the kind's
/// [`load`](Kind::load).
pub trait Kind: 'static {
    /// The kind's name: what `manifest.json` records and `--task` takes.
    const NAME: &'static str;
    /// One line on what the kind learns, for `--help`.
    const ABOUT: &'static str;
    /// Whether `--ensemble` may average several models of the kind (their outputs are class
    /// probabilities or values).
    const ENSEMBLES: bool = true;
    /// How the kind learns.
    type Config: JobConfig;
    /// The kind's own command-line options (shown under their own heading in
    /// `sora train --help`; given to another kind, they are refused).
    type Options: clap::Args;
    /// The data as read for training (cloned once per fold by cross-validation).
    type Data: Clone;
    /// A finished run.
    type Run: Trained;
    /// A model of the kind read back from its directory.
    type Model: Model + 'static;

    /// The defaults of the training loop, for the shared flags' help.
    fn defaults() -> LoopDefaults;

    /// The config of a `sora train` run: `config` (the kind's defaults) with the shared and
    /// the kind's own flags applied. The result is checked before use.
    fn configure(
        config: Self::Config,
        common: &CommonOptions,
        options: Self::Options,
    ) -> Result<Self::Config>;

    /// Reads the training data.
    fn load_data(
        config: &Self::Config,
        source: &DataSource,
        ctx: &RunContext,
    ) -> Result<Self::Data>;

    /// Trains, and evaluates on held-out data.
    fn train(config: &Self::Config, data: Self::Data, ctx: &RunContext) -> Result<Self::Run>;

    /// Reads a model directory of this kind.
    fn load(dir: &Path, device: &Device) -> Result<Self::Model>;

    /// The examples of `data` that cross-validation deals into folds: how many, their classes
    /// (folds are stratified by them) and, for `--group COL`, the group of each (no group is
    /// in two folds). [`Kind::train`] then takes the fixed parts from
    /// [`RunContext::split`], as indices into these examples.
    ///
    /// The default refuses `--cv`: a kind that can be cross-validated says so here.
    fn examples(config: &Self::Config, data: &Self::Data, group: Option<&str>) -> Result<Examples> {
        let _ = (config, data, group);
        Err(JobError::OptionNotForKind {
            option: "--cv".into(),
            reason: format!("{} models are not cross-validated", Self::NAME),
        })
    }
}

/// The examples of a kind's data as cross-validation sees them ([`Kind::examples`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Examples {
    /// Number of examples.
    pub n: usize,
    /// The fraction of a fold's training examples held out for early stopping (the kind's
    /// validation fraction).
    pub valid_fraction: f64,
    /// The class of each, for a classifier (folds are stratified by it).
    pub labels: Option<Vec<usize>>,
    /// The group of each, when `--group` names one.
    pub groups: Option<Vec<String>>,
}

/// A finished training run.
pub trait Trained {
    /// What the program prints at the end of the run: the epoch kept, test metrics, …
    fn report(&self) -> String;

    /// Saves the model directory (with its manifest); an existing directory is replaced only
    /// once everything has been written.
    fn save(&self, dir: &Path) -> Result<()>;

    /// The metrics on the run's test part, if it had one (a model refitted on every example
    /// after cross-validation has none).
    fn test_metrics(&self) -> Option<&Metrics> {
        None
    }

    /// The run's held-out predictions (validation and test parts), which calibration,
    /// thresholds and conformal sets are fitted on and checked with
    /// ([`Decision`](crate::decision::Decision)); none by default.
    fn held_out(&self) -> HeldOut {
        HeldOut::default()
    }

    /// [`save`](Self::save), with `extra` files (name, bytes) written into the directory
    /// too, all in one replacement of the directory.
    ///
    /// The default saves the run into a sibling directory first, then moves its files and
    /// the extra ones into the directory's replacement; a crash leaves the old directory (or
    /// the new one, whole) in place.
    fn save_with(&self, dir: &Path, extra: &[(String, Vec<u8>)]) -> Result<()> {
        if extra.is_empty() {
            return self.save(dir);
        }
        save_with_files(dir, |staging| self.save(staging), extra)
    }
}

/// Writes a model directory at `dir` in one replacement: `save` writes a complete model
/// directory (with its manifest) at the path it is given, `extra` files are added to it.
pub(crate) fn save_with_files(
    dir: &Path,
    save: impl FnOnce(&Path) -> Result<()>,
    extra: &[(String, Vec<u8>)],
) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(JobError::io(&parent))?;
    let parts = parent.join(format!(".{name}.parts{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parts);
    let result = save(&parts).and_then(|()| {
        let manifest = sora_train::Manifest::read(&parts)?
            .ok_or_else(|| JobError::NotAModel { dir: parts.clone() })?;
        sora_train::ModelDir::new(dir).save_with(&manifest, |staging| {
            let entries = std::fs::read_dir(&parts).map_err(sora_train::TrainError::io(&parts))?;
            for entry in entries {
                let entry = entry.map_err(sora_train::TrainError::io(&parts))?;
                if entry.file_name() == sora_train::MANIFEST_FILE {
                    continue;
                }
                let to = staging.join(entry.file_name());
                std::fs::rename(entry.path(), &to).map_err(sora_train::TrainError::io(&to))?;
            }
            for (file, bytes) in extra {
                let path = staging.join(file);
                sora_core::weights::write_atomic(&path, bytes)
                    .map_err(sora_train::TrainError::io(&path))?;
            }
            Ok(())
        })?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&parts);
    result
}

/// Where a run's data is: the command line's `--data`, `--labels`, `--text`, `--target`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSource {
    /// The data file or folder.
    pub data: Option<PathBuf>,
    /// The IDX labels file of an IDX images file.
    pub labels: Option<PathBuf>,
    /// The text column of a CSV file, or a plain text file (language models).
    pub text: Option<String>,
    /// The column to predict.
    pub target: Option<String>,
}

impl DataSource {
    /// The data path, which a kind that reads one requires.
    pub fn data(&self) -> Result<&Path> {
        self.data
            .as_deref()
            .ok_or_else(|| JobError::invalid("data", "the data file or folder (--data)", "none"))
    }

    /// The target column, which `kind` requires.
    pub fn target(&self, what: &str) -> Result<&str> {
        self.target
            .as_deref()
            .ok_or_else(|| JobError::OptionNotForKind {
                option: "--target".into(),
                reason: format!("{what} needs the column to predict"),
            })
    }
}

/// The shared setting of a run: the device, data-parallel training, which process prints.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The device the model trains on (the first of several).
    pub device: Device,
    /// Data-parallel training over several devices or processes.
    pub parallel: Parallel,
    /// Whether this process prints and saves (rank 0 under MPI).
    pub leader: bool,
    /// Whether the run prints what it does (its data, split, model, outcome).
    pub verbose: bool,
    /// Where the run keeps its checkpoints, if it writes any.
    pub checkpoints: Option<Checkpoints>,
    /// The parts of the data each example goes to, when the caller fixes them
    /// (cross-validation: a fold's training rows, a validation part carved from them, and the
    /// fold's test rows); indices into the kind's examples ([`Kind::examples`]). `None`: the
    /// kind's own seeded holdout.
    pub split: Option<sora_data::Split>,
    /// The seed of the initial weights and the shuffling when it is not the config's (a
    /// member of an ensemble: the split stays the config seed's, the weights are its own).
    pub member_seed: Option<u64>,
}

/// Where a run keeps its checkpoints and how often it writes them.
///
/// A kind's run has one or more phases (a recommender trains a rating model, then a
/// ranker), each with its own subdirectory of `dir`; a phase finds its checkpoint there and
/// continues from it, so a run started again with the same config and data continues where
/// the interrupted one stopped, and ends with the same weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoints {
    /// The run's checkpoint directory.
    pub dir: PathBuf,
    /// How often each phase writes one (its last epoch always is).
    pub every: CheckpointEvery,
}

impl Checkpoints {
    /// The directory of one phase of the run.
    pub fn phase(&self, phase: &str) -> PathBuf {
        self.dir.join(phase)
    }
}

impl RunContext {
    /// A run on one device that prints what it does.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            parallel: Parallel::None,
            leader: true,
            verbose: true,
            checkpoints: None,
            split: None,
            member_seed: None,
        }
    }

    /// The same run, writing checkpoints (and continuing from those it finds).
    pub fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// The trainer of one phase of the run (`phase` names its checkpoint subdirectory): on
    /// the run's device, data-parallel as the run is, writing the phase's checkpoints. Train
    /// with [`Trainer::fit_or_resume`], which continues from a checkpoint it finds.
    pub fn trainer(
        &self,
        phase: &str,
        config: TrainConfig,
    ) -> std::result::Result<Trainer, sora_train::TrainError> {
        let mut config = config;
        if let Some(seed) = self.member_seed {
            config.seed = seed;
        }
        let mut trainer =
            Trainer::new(config, &self.device).with_parallel(self.parallel.clone())?;
        if let Some(c) = &self.checkpoints {
            trainer = trainer
                .with_checkpoints(c.phase(phase))
                .with_checkpoint_every(c.every);
        }
        Ok(trainer)
    }

    /// Member `i` of an ensemble, seeded `seed` (see [`RunContext::member_seed`]): quiet,
    /// with its own checkpoint directory.
    pub fn member(&self, i: usize, seed: u64) -> Self {
        Self {
            verbose: false,
            member_seed: Some(seed),
            checkpoints: self.checkpoints.as_ref().map(|c| Checkpoints {
                dir: c.dir.join(format!("member{i}")),
                every: c.every,
            }),
            ..self.clone()
        }
    }

    /// The same run on fixed parts of the data (see [`RunContext::split`]).
    pub fn with_split(mut self, split: sora_data::Split) -> Self {
        self.split = Some(split);
        self
    }

    /// A run on one device that prints nothing of its own.
    pub fn quiet(device: Device) -> Self {
        Self {
            verbose: false,
            ..Self::new(device)
        }
    }

    /// Prints a line of the run's account (the leader only, when verbose).
    pub fn say(&self, line: impl std::fmt::Display) {
        if self.leader && self.verbose {
            println!("{line}");
        }
    }

    /// Refuses data-parallel training for a kind that trains on one device.
    pub fn single_device(&self, kind: &str) -> Result<()> {
        match self.parallel {
            Parallel::None => Ok(()),
            _ => Err(JobError::OptionNotForKind {
                option: "--devices/--distributed".into(),
                reason: format!("{kind} models train on one device"),
            }),
        }
    }
}

/// A kind's training-loop defaults, as the shared flags' help shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopDefaults {
    /// Maximum epochs.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// The optimizer, when the kind lets the user choose it.
    pub optimizer: Option<OptimizerKind>,
    /// Early-stopping patience, when the kind stops early.
    pub patience: Option<usize>,
}

impl LoopDefaults {
    /// The defaults of a loop configured by a [`TrainConfig`].
    pub fn of(train: &TrainConfig) -> Self {
        Self {
            epochs: train.epochs,
            batch_size: train.batch_size,
            lr: train.lr,
            optimizer: Some(OptimizerKind::of(&train.optimizer)),
            patience: Some(train.early_stopping.as_ref().map_or(0, |e| e.patience)),
        }
    }
}

/// The optimizers the command line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

impl OptimizerKind {
    /// The optimizer with Sora's defaults (PyTorch's, and momentum 0.9 for SGD).
    pub fn config(self) -> OptimizerConfig {
        match self {
            OptimizerKind::Sgd => OptimizerConfig::sgd(0.9),
            OptimizerKind::Adam => OptimizerConfig::adam(),
            OptimizerKind::Adamw => OptimizerConfig::adamw(),
        }
    }

    /// The kind of a configured optimizer.
    pub fn of(config: &OptimizerConfig) -> Self {
        match config {
            OptimizerConfig::Sgd { .. } => OptimizerKind::Sgd,
            OptimizerConfig::Adam { .. } => OptimizerKind::Adam,
            OptimizerConfig::AdamW { .. } => OptimizerKind::Adamw,
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
        }
    }
}

/// How training shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live bar on a terminal, one line per epoch otherwise.
    #[default]
    Auto,
    /// Always a live bar.
    Bar,
    /// One line per epoch.
    Plain,
    /// Nothing.
    Quiet,
}

impl From<ProgressMode> for Progress {
    fn from(mode: ProgressMode) -> Progress {
        match mode {
            ProgressMode::Auto => Progress::Auto,
            ProgressMode::Bar => Progress::Bar,
            ProgressMode::Plain => Progress::Plain,
            ProgressMode::Quiet => Progress::Quiet,
        }
    }
}

/// The options of `sora train` that several kinds share. Unset options keep the kind's
/// defaults (its `Config::default()`); an option a kind does not have is refused by that
/// kind's [`configure`](Kind::configure).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct CommonOptions {
    /// The data: a CSV file; a folder with one sub-folder of images (PNG, JPEG, BMP, GIF) or
    /// of WAV clips per class (the folder name is the label); or an IDX images file (with
    /// `--labels`). Not needed by `--task generate` with a plain text file.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The kind of model [default: inferred from the data: `ratings` with `--ratings`,
    /// `text` with `--text`, `audio` for a folder of WAV clips, `image` for other folders
    /// and IDX files, `tabular` for a CSV file].
    #[arg(long)]
    pub task: Option<String>,
    /// The column to predict (tables, text; anomaly detectors: the label column that `--normal`
    /// reads).
    #[arg(long)]
    pub target: Option<String>,
    /// The IDX labels file of an IDX images file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Text: the CSV column holding the documents (UTF-8; invalid text is an error naming
    /// its line); its presence makes this a text classifier over `--target`. Language
    /// models (`--task generate`): a plain UTF-8 text file to learn from, or, when `--data`
    /// names a CSV file, its column (one row per line).
    #[arg(long)]
    pub text: Option<String>,
    /// Ratings: the CSV holds `user,item,rating[,timestamp]` rows (the same as `--task
    /// ratings`).
    #[arg(long, conflicts_with = "text")]
    pub ratings: bool,
    /// Hidden widths of the head, comma-separated (tables: default sized from the data;
    /// language models: one width, the recurrent layers'; anomaly detectors: the encoder's
    /// widths, the last one the bottleneck).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// A model spec file (JSON or TOML) to use instead of the default model (tables, images,
    /// audio).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Maximum epochs (early stopping usually ends sooner).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Learning rate (a negative value is read as a value, then refused by name).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer (SGD with momentum 0.9, Adam, AdamW).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// The fraction of the examples held out for validation — early stopping, and what
    /// calibration, thresholds and conformal sets are fitted on — in (0, 0.5) [default: 0.15;
    /// anomaly detectors 0.2 of the normal rows].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub valid_fraction: Option<f64>,
    /// The fraction of the examples held out for the final test, in (0, 0.5) [default: 0.2;
    /// anomaly detectors 0.4 of the normal rows].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub test_fraction: Option<f64>,
    /// Weight decay of the optimizer (L2 for SGD and Adam, decoupled for AdamW; 0 turns it
    /// off) [default: 0; AdamW 0.01].
    #[arg(long, value_name = "WD", allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Dropout probability after each hidden layer, in [0, 1) (tables: the head's layers;
    /// language models: the embeddings, between layers and before the projection)
    /// [default: 0; language models 0.1].
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Epochs without validation improvement before stopping (0 disables early stopping).
    #[arg(long, allow_negative_numbers = true)]
    pub patience: Option<usize>,
    /// Text and language models: tokens per document (text: default the 95th percentile of
    /// the training lengths, at most 64) or per chunk of truncated back-propagation through
    /// time (language models).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Text and language models: embedding width.
    #[arg(long)]
    pub embed: Option<usize>,
    /// Text and language models: keep tokens seen at least this many times in the training
    /// part.
    #[arg(long)]
    pub min_count: Option<usize>,
    /// Cross-validate with K folds (stratified by class; grouped with `--group`): every
    /// metric per fold and as mean ± sd, then the final model refitted on every example.
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// Repeats of the cross-validation, each with other folds (with `--cv`).
    #[arg(long, value_name = "R", requires = "cv")]
    pub repeats: Option<usize>,
    /// What makes examples one group — a patient, a speaker — so that no group is in two
    /// folds (with `--cv`): a column of a table, or for folders of images or clips `name:N`,
    /// the N-th `_`-separated part of each file name (from 0).
    #[arg(long, value_name = "COL", requires = "cv")]
    pub group: Option<String>,
    /// Calibration of a classifier's probabilities, fitted on the validation part (or on
    /// out-of-fold predictions after `--cv`): `auto` (temperature scaling when there is a
    /// validation part), `none`, `temperature`, or `platt` (two classes).
    #[arg(long, value_name = "METHOD")]
    pub calibration: Option<String>,
    /// A decision threshold for a two-class model, chosen on the validation part's
    /// calibrated probabilities and used by predict and serve: `f1` (the best F1),
    /// `precision>=P` (the best recall at that precision), `recall>=R`, or `cost:FP,FN` (the
    /// lowest cost of false positives and negatives).
    #[arg(long, value_name = "OBJECTIVE")]
    pub threshold: Option<String>,
    /// Conformal prediction at this coverage (in (0, 1), e.g. 0.9): predict and serve give
    /// each row a set of classes, or an interval around its value, that holds the truth with
    /// this probability; calibrated on the validation part, checked on the test part.
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub coverage: Option<f64>,
    /// Train N models, each from its own seed of the weights and the shuffling (the run's
    /// seed and the next N − 1), on the same split, and save them as one model that
    /// averages their probabilities or values.
    #[arg(long, value_name = "N")]
    pub ensemble: Option<usize>,
    /// After `--cv`: keep the first repeat's K fold models as the final model (an
    /// ensemble averaging them) instead of refitting one on every example.
    #[arg(long, requires = "cv")]
    pub cv_ensemble: bool,
    /// Seed of the split (the validation and test parts; the folds of `--cv`) when it is not
    /// `--seed`'s: runs with one split seed and other seeds differ only in their initial
    /// weights and shuffling.
    #[arg(long, value_name = "S")]
    pub split_seed: Option<u64>,
    /// Seed of the split, the initial weights and the shuffling.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

impl CommonOptions {
    /// Where the data is.
    pub fn source(&self) -> DataSource {
        DataSource {
            data: self.data.clone(),
            labels: self.labels.clone(),
            text: self.text.clone(),
            target: self.target.clone(),
        }
    }

    /// The decision options (`--calibration`, `--threshold`, `--coverage`), parsed and
    /// checked.
    pub fn decision(&self) -> Result<crate::decision::DecisionOptions> {
        crate::decision::DecisionOptions::parse(
            self.calibration.as_deref(),
            self.threshold.as_deref(),
            self.coverage,
        )
    }

    /// Applies `--valid-fraction` and `--test-fraction` to a kind's seeded split (checked
    /// with the kind's config).
    pub fn apply_holdout(&self, holdout: &mut Holdout) {
        if let Some(v) = self.valid_fraction {
            holdout.valid_fraction = v;
        }
        if let Some(t) = self.test_fraction {
            holdout.test_fraction = t;
        }
    }

    /// Applies the loop options (epochs, batch size, learning rate, optimizer, patience,
    /// seed, progress) to a kind's [`TrainConfig`]; patience 0 turns early stopping off, any
    /// other sets it with [`EARLY_STOPPING_MIN_DELTA`].
    pub fn apply(&self, train: &mut TrainConfig) {
        if let Some(epochs) = self.epochs {
            train.epochs = epochs;
        }
        if let Some(batch_size) = self.batch_size {
            train.batch_size = batch_size;
        }
        if let Some(lr) = self.lr {
            train.lr = lr;
        }
        if let Some(optimizer) = self.optimizer {
            train.optimizer = optimizer.config();
        }
        if let Some(wd) = self.weight_decay {
            match &mut train.optimizer {
                OptimizerConfig::Sgd { weight_decay, .. }
                | OptimizerConfig::Adam { weight_decay, .. }
                | OptimizerConfig::AdamW { weight_decay, .. } => *weight_decay = wd,
            }
        }
        match self.patience {
            Some(0) => train.early_stopping = None,
            Some(patience) => {
                *train = train
                    .clone()
                    .with_early_stopping(patience, EARLY_STOPPING_MIN_DELTA)
            }
            None => {}
        }
        train.seed = self.seed;
        train.progress = self.progress.into();
    }

    /// Refuses the shared options a kind does not have: `present` names each option and
    /// whether it was given.
    pub fn refuse(kind: &str, options: &[(&str, bool)]) -> Result<()> {
        match options.iter().find(|(_, given)| *given) {
            Some((option, _)) => Err(JobError::OptionNotForKind {
                option: (*option).to_string(),
                reason: format!("{kind} models do not take it"),
            }),
            None => Ok(()),
        }
    }
}

/// The seeded split every kind holds data out with: a validation part (early stopping)
/// and a test part (the final figures).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// Fraction of the rows held out for validation.
    pub valid_fraction: f64,
    /// Fraction of the rows held out for the final test.
    pub test_fraction: f64,
}

impl Holdout {
    /// Checks that both fractions lie in `(0, 0.5)`.
    pub fn check(&self) -> Result<()> {
        for (name, fraction) in [
            ("valid_fraction", self.valid_fraction),
            ("test_fraction", self.test_fraction),
        ] {
            if !(fraction > 0.0 && fraction < 0.5) {
                return Err(JobError::invalid(name, "a fraction in (0, 0.5)", fraction));
            }
        }
        Ok(())
    }

    /// The split of classified rows, stratified by class and seeded.
    pub fn stratified(&self, labels: &[usize], seed: u64) -> sora_data::Split {
        sora_data::stratified_split(labels, self.valid_fraction, self.test_fraction, seed)
    }

    /// Checks that the validation and test parts of `split` hold rows, and otherwise says
    /// why not: with `labels`, a stratified split holds out `round(n_c × fraction)` rows of
    /// each class, so classes smaller than `ceil(0.5 / fraction)` rows give the part none.
    pub fn require_parts(&self, split: &sora_data::Split, labels: Option<&[usize]>) -> Result<()> {
        self.require(split, labels, true)
    }

    /// [`require_parts`](Self::require_parts) for the test part alone, for kinds that train
    /// without early stopping when the validation part is empty (images and audio).
    pub fn require_test(&self, split: &sora_data::Split, labels: Option<&[usize]>) -> Result<()> {
        self.require(split, labels, false)
    }

    fn require(
        &self,
        split: &sora_data::Split,
        labels: Option<&[usize]>,
        validation: bool,
    ) -> Result<()> {
        let rows = split.train.len() + split.valid.len() + split.test.len();
        let parts = [
            ("validation", &split.valid, self.valid_fraction),
            ("test", &split.test, self.test_fraction),
        ];
        let empty = parts
            .into_iter()
            .filter(|p| validation || p.0 == "test")
            .find(|p| p.1.is_empty());
        let Some((part, _, fraction)) = empty else {
            return Ok(());
        };
        let needed = (0.5 / fraction).ceil() as usize;
        let (classes, why) = match labels {
            Some(labels) => {
                let mut counts = std::collections::BTreeMap::<usize, usize>::new();
                for &l in labels {
                    *counts.entry(l).or_default() += 1;
                }
                let largest = counts.values().copied().max().unwrap_or(0);
                let small = counts.values().filter(|&&c| c < needed).count();
                (
                    format!(", in {} classes of at most {largest} rows", counts.len()),
                    format!(
                        "the split is stratified and holds out round(rows × {fraction}) rows of \
                         each class, which is none for a class of fewer than {needed} rows \
                         ({small} of the {} classes).",
                        counts.len()
                    ),
                )
            }
            None => (
                String::new(),
                format!("round(rows × {fraction}) rows are held out, none below {needed} rows."),
            ),
        };
        Err(JobError::EmptyPart {
            part,
            rows,
            classes,
            why,
        })
    }

    /// The split of `n` rows, at random and seeded.
    pub fn random(&self, n: usize, seed: u64) -> sora_data::Split {
        sora_data::random_split(n, self.valid_fraction, self.test_fraction, seed)
    }
}

/// Fixed parts must index the `n` examples and give the training part rows.
pub(crate) fn check_parts(parts: &sora_data::Split, n: usize) -> Result<()> {
    if parts.train.is_empty() {
        return Err(JobError::invalid(
            "split",
            "a training part with rows",
            "an empty one",
        ));
    }
    if let Some(&i) = parts
        .train
        .iter()
        .chain(&parts.valid)
        .chain(&parts.test)
        .find(|&&i| i >= n)
    {
        return Err(JobError::invalid(
            "split",
            format!("indices below {n} (the examples)"),
            i,
        ));
    }
    Ok(())
}
