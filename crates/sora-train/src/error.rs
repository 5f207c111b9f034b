//! Typed errors of the training crate.

use std::path::PathBuf;

/// The crate's result alias.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Why training, evaluation, a checkpoint or a model directory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// Data-parallel training failed: a device's shard, or the collective between processes.
    #[error("data-parallel training: {message}")]
    Parallel {
        /// What failed.
        message: String,
    },
    /// A training-config field is out of range.
    #[error("training config: field `{field}`: expected {expected}, found {found}")]
    Config {
        /// The field, as written in the config.
        field: String,
        /// What was expected.
        expected: String,
        /// What the config holds.
        found: String,
    },
    /// Data whose sizes do not fit together (values, rows, targets, masks).
    #[error("data: {found} {what}")]
    Layout {
        /// What does not fit, e.g. `feature values do not split into rows of 4`.
        what: String,
        /// The size found.
        found: usize,
    },
    /// A data set given to the loop holds no sample.
    #[error("data: the {set} set is empty")]
    EmptySet {
        /// `training` or `validation`.
        set: &'static str,
    },
    /// A data set's targets do not fit the model's outputs.
    #[error("data: the {set} set has {found} {what} but the model outputs {outputs}")]
    TargetsMismatch {
        /// `training` or `validation`.
        set: &'static str,
        /// `classes` or `targets per sample`.
        what: &'static str,
        /// What the set has.
        found: usize,
        /// What the model outputs.
        outputs: usize,
    },
    /// The backend could not hand a tensor back.
    #[error("the backend could not read {what}: {message}")]
    Backend {
        /// What was read.
        what: &'static str,
        /// The backend's message.
        message: String,
    },
    /// A feature value is NaN or infinite.
    #[error("data: row {row}, feature {feature}: value {value} is not finite")]
    NonFiniteFeature {
        /// The row (0-based).
        row: usize,
        /// The feature (0-based).
        feature: usize,
        /// The value.
        value: f32,
    },
    /// A target value is NaN or infinite.
    #[error("data: row {row}: target {value} is not finite")]
    NonFiniteTarget {
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// A class label is not below the number of classes.
    #[error("data: {what} {row}: class {class} is out of range for {n_classes} classes")]
    ClassOutOfRange {
        /// `row` or `document`.
        what: &'static str,
        /// Its index (0-based).
        row: usize,
        /// The label.
        class: usize,
        /// Classes of the task.
        n_classes: usize,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the run (1-based).
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A save would replace what is not a model directory.
    #[error(
        "{}: exists and is {what}; it is not replaced (choose another --out, or move it away)",
        .path.display()
    )]
    NotReplaced {
        /// The path given.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// A JSON file is malformed.
    #[error("{}: {source}", .file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint is missing or unreadable.
    #[error("checkpoint {}: {message}", .file.display())]
    Checkpoint {
        /// The checkpoint file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model spec is invalid.
    #[error(transparent)]
    Spec(#[from] sora_core::SpecError),
    /// The weights do not fit the model.
    #[error(transparent)]
    Weights(#[from] sora_core::WeightsError),
    /// A model directory's manifest is unreadable or does not fit the directory.
    #[error(transparent)]
    Manifest(#[from] crate::ManifestError),
    /// Calibration could not be measured, fitted, applied or drawn.
    #[error(transparent)]
    Calibration(#[from] crate::CalibrationError),
    /// A decision threshold could not be parsed or chosen.
    #[error(transparent)]
    Threshold(#[from] crate::ThresholdError),
    /// A conformal predictor could not be calibrated or applied.
    #[error(transparent)]
    Conformal(#[from] crate::ConformalError),
    /// The learning-curve plot could not be drawn.
    #[error("learning-curve plot {}: {message}", .file.display())]
    Plot {
        /// The PNG file.
        file: PathBuf,
        /// The drawing backend's message.
        message: String,
    },
}

impl TrainError {
    /// An I/O error on `file`, for `map_err`.
    pub fn io(file: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let file = file.into();
        move |source| TrainError::Io { file, source }
    }
}
