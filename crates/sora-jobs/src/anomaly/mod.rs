//! The `anomaly` kind: a CSV table's normal rows in; a detector that flags rows unlike them
//! out.
//!
//! - **Data.** `--target COL --normal VALUE` says which rows are normal (the others are
//!   anomalies); without `--target` every row is normal. A seeded random split of the
//!   *normal* rows gives a training part, a validation part (early stopping, and the
//!   threshold) and a test part. Anomalies are never trained on: they all join the test part.
//! - **Model.** An autoencoder — an MLP `d → h → b → h → d` with a bottleneck `b` and tanh
//!   activations — over the tabular kind's fitted pipeline
//!   ([`FittedPipeline`](sora_data::FittedPipeline), fitted on the training normal rows only,
//!   the label column left out), trained with the project's
//!   [`Trainer`](sora_train::Trainer) to reconstruct its inputs (mean squared error), with
//!   early stopping on the validation normal rows.
//! - **Score.** A row's anomaly score is its reconstruction error: the mean squared error over
//!   the model inputs. The threshold is the `(1 − fpr)` quantile of the validation normal
//!   rows' scores (`--fpr`, default 0.05), saved in [`DETECTOR_FILE`].
//! - **Outputs.** Two classes, `normal` and `anomaly`. `p_anomaly = s / (s + t)` for score `s`
//!   and threshold `t`: 0 for a perfect reconstruction, ½ at the threshold, towards 1 far
//!   above it, so `p_anomaly ≥ ½ ⇔ s ≥ t` (the label), and `s = t · p / (1 − p)`.
//! - **Evaluation.** On the test part (held-out normal rows and every anomaly), or on any
//!   labelled file with `sora eval`: AUROC and average precision of the score (anomaly =
//!   positive), precision and recall at the threshold, and the false-positive rate reached
//!   on the normal rows.
//! - **Explanations.** Each raw column's share of a row's score: the squared errors of the
//!   model inputs that come from the column (its one-hot block, its missing indicator),
//!   divided by the number of inputs, so that the shares sum to the score.

mod data;
mod detector;
mod explain;
mod model;
mod train;

use std::path::PathBuf;

use burn::tensor::Device;
use sora_data::PipelineConfig;
use sora_train::{OptimizerConfig, TrainConfig};

pub use detector::{Detector, Evaluated, probability, quantile};
pub use model::AnomalyModel;
pub use train::AnomalyRun;

use crate::kind::{CommonOptions, DataSource, Holdout, JobConfig, Kind, LoopDefaults, RunContext};
use crate::{EARLY_STOPPING_MIN_DELTA, JobError, Result};

/// The detector's file inside a model directory: label column, normal value, false-positive
/// rate, threshold, and the test part's figures.
pub const DETECTOR_FILE: &str = "anomaly.json";
/// File name of the fitted pipeline inside a model directory (as the tabular kind's).
pub const PIPELINE_FILE: &str = "pipeline.json";
/// The fewest normal rows the training part may hold.
pub const MIN_NORMAL_TRAIN_ROWS: usize = 20;
/// The two classes of a detector's outputs, in output order.
pub const CLASSES: [&str; 2] = ["normal", "anomaly"];

/// Why the anomaly job failed (besides the data, training and spec errors it passes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnomalyError {
    /// `--fpr` is not a rate in (0, 1).
    #[error("--fpr: expected a false-positive rate in (0, 1), found {fpr}")]
    Fpr {
        /// The value given.
        fpr: f64,
    },
    /// `--normal` without `--target`.
    #[error(
        "--normal {normal}: it names the value of normal rows in the label column, and no \
         --target names that column (without --target every row is normal)"
    )]
    NormalWithoutTarget {
        /// The value given.
        normal: String,
    },
    /// `--target` without `--normal`.
    #[error(
        "--normal: --target `{target}` names the label column; say which of its values marks \
         the normal rows (its values: {values})"
    )]
    MissingNormal {
        /// The label column.
        target: String,
        /// Its values and their counts.
        values: String,
    },
    /// No row has the `--normal` value.
    #[error("--normal {normal}: no row of {file} has `{target}` = {normal} (its values: {values})")]
    NormalNotFound {
        /// The file.
        file: String,
        /// The label column.
        target: String,
        /// The value given.
        normal: String,
        /// The column's values and their counts.
        values: String,
    },
    /// The label column is not in the file.
    #[error(
        "--target {target}: {file} has no column `{target}`, the label column (columns: {})",
        .columns.join(", ")
    )]
    NoLabelColumn {
        /// The file.
        file: String,
        /// The label column.
        target: String,
        /// The file's columns.
        columns: Vec<String>,
    },
    /// Too few normal rows are left to train on.
    #[error(
        "{what}: {train} normal rows to train on (of {normal}: {valid} held out for \
         validation, {test} for the test), fewer than the {minimum} an anomaly detector \
         needs; add normal rows"
    )]
    TooFewNormalRows {
        /// Which option chose the normal rows (`--normal 1 (`target` = 1)`, or no `--target`).
        what: String,
        /// Normal rows in the file.
        normal: usize,
        /// Of them, in the training part.
        train: usize,
        /// In the validation part.
        valid: usize,
        /// In the test part.
        test: usize,
        /// [`MIN_NORMAL_TRAIN_ROWS`].
        minimum: usize,
    },
    /// A model trained without `--target` cannot tell anomalies from normal rows in a file.
    #[error(
        "this anomaly model was trained without --target: it does not know which rows of a \
         file are anomalies, so it cannot be evaluated (predict flags rows)"
    )]
    NoLabels,
    /// A model directory lacks the detector file.
    #[error("{}: no {DETECTOR_FILE}: not an anomaly model directory", .dir.display())]
    NoDetector {
        /// The directory.
        dir: PathBuf,
    },
    /// A model directory's pipeline and spec disagree.
    #[error(
        "{}: {PIPELINE_FILE} makes {pipeline} inputs but spec.json reconstructs {spec}",
        .dir.display()
    )]
    PipelineMismatch {
        /// The directory.
        dir: PathBuf,
        /// Inputs the pipeline makes.
        pipeline: usize,
        /// Inputs the spec takes and gives back.
        spec: usize,
    },
    /// An explanation option that does not apply to reconstruction errors.
    #[error(
        "{option}: anomaly models are explained by each column's share of the reconstruction \
         error, which has no {what}"
    )]
    ExplainOption {
        /// The option (`--method ig`).
        option: String,
        /// What the explanation does not have.
        what: &'static str,
    },
    /// The explanation report could not be drawn.
    #[error(transparent)]
    Report(#[from] crate::explain::report::ReportError),
}

impl From<AnomalyError> for JobError {
    fn from(e: AnomalyError) -> Self {
        JobError::kind(e)
    }
}

/// Everything an anomaly run needs besides the table.
#[derive(Debug, Clone)]
pub struct AnomalyConfig {
    /// The label column, when there is one (`--target`); it is never a feature.
    pub target: Option<String>,
    /// Its value on normal rows (`--normal`); every other value is an anomaly.
    pub normal: Option<String>,
    /// The false-positive rate the threshold is chosen at, in (0, 1).
    pub fpr: f64,
    /// The encoder's widths, the last the bottleneck (the decoder mirrors them); `None`
    /// sizes them from the data ([`default_widths`]).
    pub widths: Option<Vec<usize>>,
    /// How the raw columns become model inputs (its `target` is set by the job).
    pub pipeline: PipelineConfig,
    /// The training loop's configuration.
    pub train: TrainConfig,
    /// Fractions of the *normal* rows held out for validation and for the test.
    pub holdout: Holdout,
}

impl Default for AnomalyConfig {
    /// Every row normal, false-positive rate 0.05, widths from the data, Adam at 0.001 in
    /// batches of 32 for up to 300 epochs with early stopping (patience 20), 20 % of the
    /// normal rows for validation and 40 % for the test (as the isolation-forest baseline of
    /// `benches/small_data.py` holds them out), seed 42.
    fn default() -> Self {
        Self {
            target: None,
            normal: None,
            fpr: 0.05,
            widths: None,
            pipeline: PipelineConfig::new(""),
            train: TrainConfig::new(300, 32, 1e-3)
                .with_optimizer(OptimizerConfig::adam())
                .with_early_stopping(20, EARLY_STOPPING_MIN_DELTA)
                .with_seed(crate::DEFAULT_SEED),
            holdout: Holdout {
                valid_fraction: 0.2,
                test_fraction: 0.4,
            },
        }
    }
}

impl JobConfig for AnomalyConfig {
    fn check(&self) -> Result<()> {
        if !(self.fpr > 0.0 && self.fpr < 1.0) {
            return Err(AnomalyError::Fpr { fpr: self.fpr }.into());
        }
        if let (None, Some(normal)) = (&self.target, &self.normal) {
            return Err(AnomalyError::NormalWithoutTarget {
                normal: normal.clone(),
            }
            .into());
        }
        self.holdout.check()?;
        if let Some(widths) = &self.widths
            && (widths.is_empty() || widths.contains(&0))
        {
            return Err(JobError::invalid(
                "hidden",
                "encoder widths of at least 1, the last the bottleneck",
                format!("{widths:?}"),
            ));
        }
        Ok(())
    }
}

/// The encoder's widths for `d` model inputs: a first layer of the next power of two of `d`
/// clamped to [16, 128], then a bottleneck of a quarter of `d` clamped to [2, 16]. The
/// decoder mirrors them: `d → h → b → h → d`.
pub fn default_widths(d: usize) -> Vec<usize> {
    vec![d.next_power_of_two().clamp(16, 128), (d / 4).clamp(2, 16)]
}

/// The `anomaly` kind.
#[derive(Debug, Clone, Copy)]
pub struct Anomaly;

/// The options of `sora train` for anomaly detection.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Anomaly detection (--task anomaly)")]
pub struct AnomalyOptions {
    /// The value of the `--target` column on normal rows: only they are trained on; rows of
    /// any other value are anomalies, used only to evaluate. Without `--target` every row is
    /// normal.
    #[arg(long, value_name = "VALUE")]
    pub normal: Option<String>,
    /// The false-positive rate the anomaly threshold is chosen at: the (1 − fpr) quantile of
    /// the validation normal rows' reconstruction errors.
    #[arg(long, value_name = "RATE", allow_negative_numbers = true, default_value_t = AnomalyConfig::default().fpr)]
    pub fpr: f64,
}

impl Kind for Anomaly {
    const NAME: &'static str = "anomaly";
    const ABOUT: &'static str =
        "a CSV file's normal rows: an autoencoder that flags rows unlike them";
    const ENSEMBLES: bool = false;
    type Config = AnomalyConfig;
    type Options = AnomalyOptions;
    type Data = sora_data::Table;
    type Run = AnomalyRun;
    type Model = AnomalyModel;

    fn defaults() -> LoopDefaults {
        LoopDefaults::of(&AnomalyConfig::default().train)
    }

    fn configure(
        mut config: AnomalyConfig,
        common: &CommonOptions,
        o: AnomalyOptions,
    ) -> Result<AnomalyConfig> {
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--seq-len", common.seq_len.is_some()),
                ("--embed", common.embed.is_some()),
                ("--min-count", common.min_count.is_some()),
                ("--spec", common.spec.is_some()),
                ("--labels", common.labels.is_some()),
                ("--text", common.text.is_some()),
                ("--ratings", common.ratings),
            ],
        )?;
        common.apply_holdout(&mut config.holdout);
        let decision = [
            ("--calibration", common.calibration.is_some()),
            ("--threshold", common.threshold.is_some()),
            ("--coverage", common.coverage.is_some()),
        ];
        if let Some((option, _)) = decision.iter().find(|(_, given)| *given) {
            return Err(JobError::OptionNotForKind {
                option: (*option).to_string(),
                reason: "anomaly models choose their threshold on the validation normal rows' \
                         reconstruction errors at the false-positive rate of --fpr"
                    .into(),
            });
        }
        config.target = common.target.clone();
        config.normal = o.normal;
        config.fpr = o.fpr;
        config.widths = common.hidden.clone();
        common.apply(&mut config.train);
        Ok(config)
    }

    fn load_data(
        _config: &AnomalyConfig,
        source: &DataSource,
        _ctx: &RunContext,
    ) -> Result<sora_data::Table> {
        Ok(sora_data::Table::read_csv(source.data()?)?)
    }

    fn train(
        config: &AnomalyConfig,
        table: sora_data::Table,
        ctx: &RunContext,
    ) -> Result<AnomalyRun> {
        train::train(config, &table, ctx)
    }

    fn load(dir: &std::path::Path, device: &Device) -> Result<AnomalyModel> {
        AnomalyModel::load(dir, device)
    }
}
