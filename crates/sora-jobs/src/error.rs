//! The errors of the job contract.

use std::path::PathBuf;

/// The crate's result alias.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// Why a job, or a verb of a loaded model, failed.
///
/// The shared steps have variants of their own; each kind's own failures (a CSV column that
/// is missing, a rating out of range, …) are kept whole, typed, as the [`JobError::Kind`]
/// source, and read back with [`JobError::kind_error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Data could not be read or prepared.
    #[error(transparent)]
    Data(#[from] sora_data::DataError),
    /// Training, evaluation, or the model directory failed.
    #[error(transparent)]
    Train(#[from] sora_train::TrainError),
    /// A model spec is invalid.
    #[error(transparent)]
    Spec(#[from] sora_core::SpecError),
    /// Weights could not be written or read.
    #[error(transparent)]
    Weights(#[from] sora_core::WeightsError),
    /// An attribution method failed.
    #[error(transparent)]
    Explain(#[from] sora_explain::ExplainError),
    /// A model directory's manifest is unreadable, newer, or disagrees with the directory.
    #[error(transparent)]
    Manifest(#[from] sora_train::ManifestError),
    /// A decision threshold could not be parsed or chosen.
    #[error(transparent)]
    Threshold(#[from] sora_train::ThresholdError),
    /// Conformal prediction could not be calibrated or applied.
    #[error(transparent)]
    Conformal(#[from] sora_train::ConformalError),
    /// Probabilities could not be calibrated.
    #[error(transparent)]
    Calibration(#[from] sora_train::CalibrationError),
    /// An option of a job or a verb is out of range.
    #[error("{field}: expected {expected}, found {found}")]
    InvalidOption {
        /// The option, as the config names it (`seq_len`, `valid_fraction`, …).
        field: String,
        /// What it accepts.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// A part of the seeded split holds no row: too few rows, or classes too small for a
    /// stratified split to hold any of them out.
    #[error(
        "the {part} part of the split is empty: {rows} rows{classes}; {why} Merge or drop the \
         rare classes, or add rows"
    )]
    EmptyPart {
        /// `validation` or `test`.
        part: &'static str,
        /// Rows split.
        rows: usize,
        /// `, in K classes of at most M rows`, for a stratified split.
        classes: String,
        /// Why the part came out empty.
        why: String,
    },
    /// An option was given that the model kind does not have.
    #[error("{option}: {reason}")]
    OptionNotForKind {
        /// The option (`--hflip`, `--optimizer`, …).
        option: String,
        /// Which kinds have it, or why this one does not.
        reason: String,
    },
    /// A verb does not apply to the model's kind.
    #[error("{}: {kind} models {verb_phrase}{hint}", .dir.as_ref().map_or("this model".to_string(), |d| d.display().to_string()), verb_phrase = .verb.refusal())]
    Unsupported {
        /// The model directory, when known.
        dir: Option<PathBuf>,
        /// The model's kind.
        kind: String,
        /// The verb.
        verb: Verb,
        /// What to do instead, starting with `; ` (may be empty).
        hint: String,
    },
    /// The input is not of a form the model takes.
    #[error("{what}: {kind} models take {expected}")]
    WrongInput {
        /// What was given (a path, `the request`).
        what: String,
        /// The model's kind.
        kind: String,
        /// What the kind takes.
        expected: String,
    },
    /// No kind of that name is registered.
    #[error("{}unknown model kind `{name}` (known kinds: {known})", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    UnknownKind {
        /// The manifest that names it, when one does.
        file: Option<PathBuf>,
        /// The name.
        name: String,
        /// The registered kinds, comma-separated.
        known: String,
    },
    /// A path is not a model directory.
    #[error(
        "{}: not a Sora model directory (no {}; train one with `sora train`)",
        .dir.display(), sora_train::MANIFEST_FILE
    )]
    NotAModel {
        /// The path.
        dir: PathBuf,
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
    /// A JSON or TOML file could not be parsed.
    #[error("{}: {message}", .file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// The parser's message (with line and column).
        message: String,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure of one model kind, kept whole.
    #[error(transparent)]
    Kind(Box<dyn std::error::Error + Send + Sync>),
}

impl JobError {
    /// A kind's own error.
    pub fn kind(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        JobError::Kind(Box::new(error))
    }

    /// An option out of range.
    pub fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        JobError::InvalidOption {
            field: field.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    /// The kind's own error of type `E` inside, when that is what this is.
    pub fn kind_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            JobError::Kind(e) => e.downcast_ref(),
            _ => None,
        }
    }

    /// An I/O error on `file`, for `map_err`.
    pub fn io(file: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let file = file.into();
        move |source| JobError::Io { file, source }
    }
}

/// What a loaded model is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `sora predict`, `POST /v1/predict`.
    Predict,
    /// `sora eval`.
    Evaluate,
    /// `sora explain`, `POST /v1/explain`.
    Explain,
    /// `sora generate`, `POST /v1/generate`.
    Generate,
    /// `sora predict --user`, `POST /v1/recommend`.
    Recommend,
}

impl Verb {
    /// The verb's name.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Predict => "predict",
            Verb::Evaluate => "eval",
            Verb::Explain => "explain",
            Verb::Generate => "generate",
            Verb::Recommend => "recommend",
        }
    }

    fn refusal(self) -> &'static str {
        match self {
            Verb::Predict => "do not predict rows",
            Verb::Evaluate => "cannot be evaluated on labelled data",
            Verb::Explain => "have no explanations",
            Verb::Generate => "do not write text",
            Verb::Recommend => "do not recommend items",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
