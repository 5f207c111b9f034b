//! `manifest.json`: what a model directory holds, recorded when it is written.
//!
//! Every model directory that [`ModelDir`](crate::ModelDir) writes carries a manifest: the
//! model's kind (the job that trained it), the directory format's version, the Sora version
//! that wrote it, the task, a summary of the input the model takes, and the files written
//! beside it. A loader reads the manifest once and knows what it is reading; nothing probes
//! which files exist.
//!
//! ```
//! use sora_train::{InputSummary, Manifest, ManifestError};
//!
//! let manifest = Manifest::new("tabular", "classification", InputSummary::new("13 columns"));
//! let json = serde_json::to_string(&manifest).unwrap();
//! let back: Manifest = serde_json::from_str(&json).unwrap();
//! assert_eq!(back.kind, "tabular");
//! assert_eq!(back.format_version, sora_train::FORMAT_VERSION);
//!
//! // A manifest from a newer Sora is refused, naming the file.
//! let newer = json.replace("\"format_version\":1", "\"format_version\":9");
//! let e = Manifest::parse(newer.as_bytes(), "m/manifest.json".as_ref()).unwrap_err();
//! assert!(matches!(e, ManifestError::NewerFormat { found: 9, .. }));
//! assert!(e.to_string().starts_with("m/manifest.json: format version 9"), "{e}");
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The `format` of every manifest.
pub const FORMAT: &str = "sora-model";
/// The model-directory format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The Sora version this build records.
pub const SORA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a model directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The directory format's version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The model kind: the name the job that trained it is registered under (`tabular`,
    /// `image`, `audio`, `text`, `generate`, `ratings`, …).
    pub kind: String,
    /// The Sora version that wrote the directory.
    pub sora_version: String,
    /// What the model does: `classification`, `regression`, `generation`, `recommendation`.
    pub task: String,
    /// The input the model takes.
    pub input: InputSummary,
    /// The files written beside the manifest, sorted (filled in by the writer).
    pub files: Vec<String>,
}

/// A summary of a model's input: one line, and its named fields (columns of a table, the
/// text column of a text model, …; empty for inputs without named fields, such as images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSummary {
    /// One line, e.g. `images 1×28×28 (gray)` or `13 table columns`.
    pub description: String,
    /// The named fields, in input order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<InputField>,
}

/// One named field of a model's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputField {
    /// The field's name (a column of the training file).
    pub name: String,
    /// Its type: `number`, `category`, `text`, `id`, ….
    #[serde(rename = "type")]
    pub kind: String,
}

impl InputSummary {
    /// A summary with no named fields.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            fields: Vec::new(),
        }
    }

    /// Adds named fields.
    pub fn with_fields(mut self, fields: impl IntoIterator<Item = InputField>) -> Self {
        self.fields.extend(fields);
        self
    }
}

/// Why a manifest could not be read, or does not fit its directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest could not be read or written.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The manifest file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid JSON, or not a manifest's structure.
    #[error("{}: not a Sora model manifest: {source}", .file.display())]
    Parse {
        /// The manifest file.
        file: PathBuf,
        /// The cause (it carries the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The manifest's `format` is another one.
    #[error("{}: format `{found}` is not a Sora model directory (`{FORMAT}`)", .file.display())]
    Format {
        /// The manifest file.
        file: PathBuf,
        /// The format found.
        found: String,
    },
    /// The directory was written by a newer Sora, in a format this build does not read.
    #[error(
        "{}: format version {found} is newer than this Sora ({SORA_VERSION}) reads \
         (up to {FORMAT_VERSION}); upgrade Sora to read it", .file.display()
    )]
    NewerFormat {
        /// The manifest file.
        file: PathBuf,
        /// The version found.
        found: u32,
    },
    /// A file the manifest lists is not in the directory.
    #[error("{}: lists `{missing}`, which is not in the directory", .file.display())]
    MissingFile {
        /// The manifest file.
        file: PathBuf,
        /// The missing file.
        missing: String,
    },
    /// A file the manifest lists is there but is not a regular file: a folder, or a link to a
    /// device, a pipe or a socket (`model.safetensors` linked to `/dev/zero`, say), which is
    /// never read.
    #[error(
        "{}: lists `{name}`, which is not a regular file (a folder, device, pipe or socket)",
        .file.display()
    )]
    NotRegular {
        /// The manifest file.
        file: PathBuf,
        /// The file that is not a regular file.
        name: String,
    },
    /// The manifest names another kind of model than the one being read.
    #[error(
        "{}: a `{found}` model, read as a `{expected}` model", .file.display()
    )]
    KindMismatch {
        /// The manifest file.
        file: PathBuf,
        /// The kind being read.
        expected: String,
        /// The kind the manifest records.
        found: String,
    },
}

/// The two fields read before the rest: which format, which version.
#[derive(Deserialize)]
struct Probe {
    format: Option<String>,
    format_version: Option<u32>,
}

impl Manifest {
    /// A manifest of this build's format and version, with no files yet (the writer lists
    /// them).
    pub fn new(kind: impl Into<String>, task: impl Into<String>, input: InputSummary) -> Self {
        Self {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            kind: kind.into(),
            sora_version: SORA_VERSION.to_string(),
            task: task.into(),
            input,
            files: Vec::new(),
        }
    }

    /// Parses a manifest's bytes; `file` names it in errors. The format and its version are
    /// checked before the rest, so a newer directory is reported as newer, not as malformed.
    pub fn parse(bytes: &[u8], file: &Path) -> Result<Self, ManifestError> {
        let parse = |source| ManifestError::Parse {
            file: file.to_path_buf(),
            source,
        };
        let probe: Probe = serde_json::from_slice(bytes).map_err(parse)?;
        match probe.format.as_deref() {
            Some(FORMAT) | None => {}
            Some(other) => {
                return Err(ManifestError::Format {
                    file: file.to_path_buf(),
                    found: other.to_string(),
                });
            }
        }
        if let Some(found) = probe.format_version
            && found > FORMAT_VERSION
        {
            return Err(ManifestError::NewerFormat {
                file: file.to_path_buf(),
                found,
            });
        }
        serde_json::from_slice(bytes).map_err(parse)
    }

    /// Reads `dir/manifest.json`: `None` when the directory has none (a directory of an
    /// earlier release); otherwise the manifest, checked against the directory (every file it
    /// lists is there).
    pub fn read(dir: &Path) -> Result<Option<Self>, ManifestError> {
        let file = dir.join(MANIFEST_FILE);
        let bytes =
            match sora_core::weights::read_bounded(&file, sora_core::weights::MAX_JSON_BYTES) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(ManifestError::Io { file, source }),
            };
        let manifest = Self::parse(&bytes, &file)?;
        if let Some(listed) = manifest.files.iter().find(|f| !dir.join(f).is_file()) {
            return Err(if dir.join(listed).exists() {
                ManifestError::NotRegular {
                    file,
                    name: listed.clone(),
                }
            } else {
                ManifestError::MissingFile {
                    file,
                    missing: listed.clone(),
                }
            });
        }
        Ok(Some(manifest))
    }

    /// Checks that the manifest records `kind`; `dir` names the directory in the error.
    pub fn expect_kind(&self, kind: &str, dir: &Path) -> Result<(), ManifestError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(ManifestError::KindMismatch {
                file: dir.join(MANIFEST_FILE),
                expected: kind.to_string(),
                found: self.kind.clone(),
            })
        }
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("plain data serialises to JSON")
    }

    /// Lists the regular files of `dir` (but the manifest) into [`files`](Self::files),
    /// sorted, and writes the manifest there atomically.
    pub fn write_into(&mut self, dir: &Path) -> Result<(), ManifestError> {
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |source| ManifestError::Io { file, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map_err(io(&entry.path()))?.is_file() && name != MANIFEST_FILE {
                files.push(name);
            }
        }
        files.sort();
        self.files = files;
        let file = dir.join(MANIFEST_FILE);
        sora_core::weights::write_atomic(&file, &self.to_json()).map_err(io(&file))
    }
}
