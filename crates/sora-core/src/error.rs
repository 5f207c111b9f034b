//! Typed errors of the core crate.

use std::path::PathBuf;

/// The crate's result alias.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// A model spec that cannot be built, found before anything is allocated.
///
/// Every variant about a layer names it by its index in the model's layer list and its
/// kind (as in the [`Summary`](crate::Summary)), and names the offending field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A field holds a value outside its allowed range.
    #[error("layer {index} ({kind}): field `{field}`: expected {expected}, found {found}")]
    InvalidField {
        /// Index of the layer in the model (0 = first row of the summary).
        index: usize,
        /// Kind of the layer (`Linear`, `Dropout`, `Identity`, …).
        kind: String,
        /// The field of the spec that is wrong, as written in the spec.
        field: String,
        /// What was expected.
        expected: String,
        /// What the spec holds.
        found: String,
    },
    /// The model would hold more parameters than the configured limit.
    #[error(
        "layer {index} ({kind}): field `{field}`: the model would need {total} parameters, \
         more than the limit of {limit} (raise `SpecLimits::max_params` to allow it)"
    )]
    TooManyParams {
        /// Index of the layer that crosses the limit.
        index: usize,
        /// Kind of that layer.
        kind: String,
        /// The width field that makes the layer large.
        field: String,
        /// Parameters counted up to and including that layer (saturating).
        total: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The spec text is not valid JSON/TOML or does not have the spec's structure.
    #[error("model spec{}: {message}", source_name(.file))]
    Parse {
        /// The file the spec came from, when it came from one.
        file: Option<PathBuf>,
        /// The parser's message (it carries the line and column).
        message: String,
        /// The parser's error (`serde_json::Error` or `toml::de::Error`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The spec file could not be read.
    #[error("cannot read model spec {}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn source_name(file: &Option<PathBuf>) -> String {
    match file {
        Some(f) => format!(" {}", f.display()),
        None => String::new(),
    }
}

/// Weights that do not fit the model they are loaded into, or are not readable at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be read or written.
    #[error("weights file {}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file.
    #[error("weights file {}: not a safetensors file: {reason}", .file.display())]
    NotSafetensors {
        /// The file.
        file: PathBuf,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// The model expects a tensor the file does not have.
    #[error("weights file {}: missing tensor `{tensor}` (expected shape {expected:?})", .file.display())]
    MissingTensor {
        /// The file.
        file: PathBuf,
        /// The tensor name (PyTorch style, e.g. `head.output.weight`).
        tensor: String,
        /// Its shape in the model.
        expected: Vec<usize>,
    },
    /// The file holds a tensor the model does not have.
    #[error("weights file {}: unexpected tensor `{tensor}` (shape {found:?}), not part of the model", .file.display())]
    UnexpectedTensor {
        /// The file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape in the file.
        found: Vec<usize>,
    },
    /// A tensor's shape differs from the model's.
    #[error("weights file {}: tensor `{tensor}` has shape {found:?}, the model expects {expected:?}", .file.display())]
    ShapeMismatch {
        /// The file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Shape in the model.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a data type other than float32.
    #[error("weights file {}: tensor `{tensor}` has dtype {found}, expected F32", .file.display())]
    DType {
        /// The file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its dtype in the file.
        found: String,
    },
    /// The underlying store failed after the checks passed.
    #[error("weights file {}: {message}", .file.display())]
    Store {
        /// The file.
        file: PathBuf,
        /// The store's message.
        message: String,
    },
}
