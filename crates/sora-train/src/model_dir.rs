//! The directory a trained model is saved to and loaded from.
//!
//! | file | content |
//! |---|---|
//! | `manifest.json` | the [`Manifest`]: kind, format version, Sora version, task, input, files |
//! | `spec.json` | the [`ModelSpec`](sora_core::ModelSpec) |
//! | `model.safetensors` | weights, PyTorch-style names and layouts |
//! | `train.json` | the [`TrainConfig`] |
//! | `metrics.json` | evaluation [`Metrics`] (when given) |
//! | `history.json`, `curves.png` | per-epoch [`History`] and its learning curves (when given) |

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sora_core::weights::{load_safetensors, save_safetensors, write_atomic};
use sora_core::{CheckedSpec, EncoderSpec, Model, ModelSpec};

use crate::{History, Manifest, Metrics, TrainConfig, TrainError};

/// A model directory on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    path: PathBuf,
}

/// A model read back from a [`ModelDir`].
#[derive(Debug)]
pub struct LoadedModel<S: EncoderSpec> {
    /// The checked spec.
    pub spec: CheckedSpec<S>,
    /// The model with the saved weights, in evaluation mode.
    pub model: Model<S::Encoder>,
    /// The training config, when the directory has one.
    pub train_config: Option<TrainConfig>,
    /// The saved metrics, when the directory has them.
    pub metrics: Option<Metrics>,
}

/// File names inside a model directory.
pub mod files {
    /// The model spec.
    pub const SPEC: &str = "spec.json";
    /// The weights.
    pub const WEIGHTS: &str = "model.safetensors";
    /// The training config.
    pub const TRAIN: &str = "train.json";
    /// The evaluation metrics.
    pub const METRICS: &str = "metrics.json";
    /// The per-epoch history.
    pub const HISTORY: &str = "history.json";
    /// The learning curves.
    pub const CURVES: &str = "curves.png";
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("plain data serialises to JSON")
}

impl ModelDir {
    /// A model directory at `path` (nothing is touched until saving or loading).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves everything into a staging directory beside `path`, then swaps it into place:
    /// if anything fails, an existing model directory at `path` is left as it was.
    /// `extra` files (name, bytes) are written alongside (e.g. a fitted data pipeline), and
    /// the `manifest` last, listing every file.
    #[allow(clippy::too_many_arguments)]
    pub fn save<S: EncoderSpec>(
        &self,
        manifest: &Manifest,
        spec: &CheckedSpec<S>,
        model: &Model<S::Encoder>,
        train_config: &TrainConfig,
        metrics: Option<&Metrics>,
        history: Option<&History>,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<(), TrainError> {
        self.save_with(manifest, |staging| {
            let write = |file: &str, bytes: &[u8]| {
                let path = staging.join(file);
                write_atomic(&path, bytes).map_err(TrainError::io(path))
            };
            write(files::SPEC, spec.spec().to_json_string().as_bytes())?;
            save_safetensors(model, &staging.join(files::WEIGHTS))?;
            write(files::TRAIN, &to_json(train_config))?;
            if let Some(m) = metrics {
                write(files::METRICS, &to_json(m))?;
            }
            if let Some(h) = history {
                h.save_json(&staging.join(files::HISTORY))?;
                h.plot_png(&staging.join(files::CURVES))?;
            }
            for (file, bytes) in extra {
                write(file, bytes)?;
            }
            Ok(())
        })
    }

    /// Builds the directory with `write`, which fills a fresh staging directory beside `path`
    /// (its argument); then writes `manifest` there, listing the files `write` made, and swaps
    /// the staging directory into place: if `write` or the swap fails, an existing directory
    /// at `path` is left as it was and the staging directory is removed. [`ModelDir::save`] is
    /// this with the files of an encoder + head model; other models (e.g. language models)
    /// write their own files through it.
    ///
    /// ```
    /// use sora_train::{InputSummary, Manifest, ModelDir, TrainError};
    ///
    /// # fn main() -> Result<(), TrainError> {
    /// let tmp = std::env::temp_dir().join(format!("sora-save-with-{}", std::process::id()));
    /// let dir = ModelDir::new(tmp.join("model"));
    /// let note = |staging: &std::path::Path, text: &str| {
    ///     let file = staging.join("note.txt");
    ///     std::fs::write(&file, text).map_err(|source| TrainError::Io { file, source })
    /// };
    /// let manifest = Manifest::new("notes", "none", InputSummary::new("nothing"));
    /// dir.save_with(&manifest, |staging| note(staging, "first"))?;
    /// let written = Manifest::read(dir.path()).unwrap().unwrap();
    /// assert_eq!(written.files, ["note.txt"]);
    /// // A failing save leaves the previous directory untouched.
    /// let failed = dir.save_with(&manifest, |staging| {
    ///     note(staging, "second")?;
    ///     let source = std::io::Error::other("disk full");
    ///     Err(TrainError::Io { file: staging.join("model.safetensors"), source })
    /// });
    /// assert!(failed.is_err());
    /// assert_eq!(std::fs::read_to_string(dir.path().join("note.txt")).unwrap(), "first");
    /// # std::fs::remove_dir_all(&tmp).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn save_with(
        &self,
        manifest: &Manifest,
        write: impl FnOnce(&Path) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| TrainError::Io {
                file: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a model directory needs a name",
                ),
            })?;
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(TrainError::io(&parent))?;
        let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let result = std::fs::create_dir(&staging)
            .map_err(TrainError::io(&staging))
            .and_then(|()| write(&staging))
            .and_then(|()| Ok(manifest.clone().write_into(&staging)?));
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        // Swap: the old directory moves aside, the new one takes its name, the old one goes.
        let backup = parent.join(format!(".{name}.old-{}", std::process::id()));
        let had_old = self.path.exists();
        if had_old {
            std::fs::rename(&self.path, &backup).map_err(TrainError::io(&self.path))?;
        }
        if let Err(source) = std::fs::rename(&staging, &self.path) {
            if had_old {
                let _ = std::fs::rename(&backup, &self.path);
            }
            let _ = std::fs::remove_dir_all(&staging);
            return Err(TrainError::Io {
                file: self.path.clone(),
                source,
            });
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&backup);
        }
        Ok(())
    }

    /// Reads the spec, checks it, allocates the model on `device` and loads the weights,
    /// checking every tensor's name and shape against the spec.
    pub fn load<S: EncoderSpec>(&self, device: &Device) -> Result<LoadedModel<S>, TrainError> {
        if !self.path.is_dir() {
            return Err(TrainError::Io {
                file: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a model directory"),
            });
        }
        let spec = ModelSpec::<S>::from_file(self.path.join(files::SPEC))?.check()?;
        let model = spec.init(&device.clone().without_autodiff());
        let model = load_safetensors(model, &self.path.join(files::WEIGHTS))?;
        let train_config = self.read_json(files::TRAIN)?;
        let metrics = self.read_json(files::METRICS)?;
        Ok(LoadedModel {
            spec,
            model,
            train_config,
            metrics,
        })
    }

    /// The directory's manifest: `None` for a directory without one (written by an earlier
    /// release); an error when it is unreadable, of a newer format, or lists a missing file.
    pub fn manifest(&self) -> Result<Option<Manifest>, TrainError> {
        Ok(Manifest::read(&self.path)?)
    }

    /// Reads an optional JSON file of the directory.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        file: &str,
    ) -> Result<Option<T>, TrainError> {
        let path = self.path.join(file);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read(&path).map_err(TrainError::io(&path))?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| TrainError::Json { file: path, source })
    }
}
