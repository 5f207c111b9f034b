//! Typed errors of the explanation crate.

/// The crate's result alias.
pub type Result<T, E = ExplainError> = std::result::Result<T, E>;

/// Arguments an attribution cannot be computed for, or a backend that failed to answer.
///
/// Every shape variant says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The inputs hold no rows or no features.
    #[error("inputs must have at least one row and one feature, found n = {n}, d = {d}")]
    EmptyInputs {
        /// Rows found.
        n: usize,
        /// Features found.
        d: usize,
    },
    /// A buffer's length does not fit the shape it should have.
    #[error("{what}: expected {expected} values, found {found}")]
    Length {
        /// Which buffer (`inputs`, `baseline`, `mask`, …) and the shape it should have.
        what: String,
        /// Expected number of values.
        expected: usize,
        /// Number of values found.
        found: usize,
    },
    /// Per-example targets whose count differs from the number of rows.
    #[error("targets: expected one per example ({expected}), found {found}")]
    TargetCount {
        /// Number of examples.
        expected: usize,
        /// Number of targets given.
        found: usize,
    },
    /// A target class beyond the model's outputs.
    #[error(
        "target {target} (example {example}) is out of range: the model has {n_outputs} outputs"
    )]
    TargetOutOfRange {
        /// The example the target belongs to.
        example: usize,
        /// The target given.
        target: usize,
        /// Outputs of the model.
        n_outputs: usize,
    },
    /// A method parameter outside its allowed range.
    #[error("{method}: parameter `{parameter}`: expected {expected}, found {found}")]
    InvalidParameter {
        /// The method (`IntegratedGradients`, `Occlusion`, …).
        method: &'static str,
        /// The parameter.
        parameter: &'static str,
        /// What is allowed.
        expected: String,
        /// What was given.
        found: String,
    },
    /// The model's output is not `[batch, n_outputs]` with one row per input row.
    #[error(
        "model output: expected shape [{expected_rows}, n_outputs] with n_outputs ≥ 1, found {found:?}"
    )]
    OutputShape {
        /// Rows sent to the model.
        expected_rows: usize,
        /// Shape the model returned.
        found: Vec<usize>,
    },
    /// The backend could not hand a tensor back, or gave no gradient for the inputs.
    #[error("backend: {0}")]
    Backend(String),
    /// A picture could not be written.
    #[error("{}: {message}", .file.display())]
    Io {
        /// The file.
        file: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}
