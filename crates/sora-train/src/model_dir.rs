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
//! | `timings.json` | each epoch's wall-clock seconds (when a history is given) |
//!
//! The same seed on the same backend writes every file byte for byte the same, but
//! `timings.json`.

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
    /// Each epoch's wall-clock seconds (the one file that differs between runs of a seed).
    pub const TIMINGS: &str = "timings.json";
}

/// The infix of a save's staging directory, `.NAME.staging-PID`.
const STAGING: &str = "staging-";
/// The infix of the directory a save moves aside, `.NAME.old-PID`.
const OLD: &str = "old-";

/// Whether process `pid` runs (Linux: `/proc/PID` exists). Elsewhere every process counts as
/// running, so nothing of another save is ever touched.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
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
                h.save_timings(&staging.join(files::TIMINGS))?;
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
        let (parent, name) = self.parent_and_name()?;
        self.recover()?;
        self.check_replaceable()?;
        std::fs::create_dir_all(&parent).map_err(TrainError::io(&parent))?;
        let staging = parent.join(format!(".{name}.{STAGING}{}", std::process::id()));
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
        // A crash between the two renames leaves both beside `path`; `recover` finishes the
        // swap (the staging directory is complete: its manifest is written last).
        let backup = parent.join(format!(".{name}.{OLD}{}", std::process::id()));
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

    fn parent_and_name(&self) -> Result<(PathBuf, String), TrainError> {
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
        Ok((parent, name))
    }

    /// Refuses to replace what is not a model directory: a file, or a folder that is neither
    /// empty nor a model directory (it holds no `manifest.json` and no `model.safetensors`).
    /// [`save`](Self::save) checks it; a program checks it before training too, so that a
    /// refused `--out` costs no training time.
    pub fn check_replaceable(&self) -> Result<(), TrainError> {
        let meta = match std::fs::symlink_metadata(&self.path) {
            Ok(meta) => meta,
            Err(_) => return Ok(()),
        };
        let refuse = |what: &str| {
            Err(TrainError::NotReplaced {
                path: self.path.clone(),
                what: what.to_string(),
            })
        };
        if !meta.is_dir() {
            return refuse("a file, not a model directory");
        }
        let is_model = self.path.join(crate::MANIFEST_FILE).is_file()
            || self.path.join(files::WEIGHTS).is_file();
        let empty = std::fs::read_dir(&self.path)
            .map_err(TrainError::io(&self.path))?
            .next()
            .is_none();
        if !is_model && !empty {
            return refuse(
                "a folder that is not a model directory (no manifest.json, no model.safetensors)",
            );
        }
        Ok(())
    }

    /// Repairs what a save interrupted by a crash left beside the directory, and returns what
    /// it did. A save builds `.NAME.staging-PID` and swaps it in through `.NAME.old-PID`; for
    /// a process that is no longer running (on Linux, no `/proc/PID`):
    ///
    /// - when the directory itself is missing — the crash fell between the two renames — a
    ///   complete staging directory (its manifest, written last, is there) takes its place,
    ///   or else the old directory is put back;
    /// - any staging or old directory left over is removed.
    ///
    /// Entries of running processes (a save in progress) are left alone. Every save runs this
    /// first, and so does the loader of model directories.
    pub fn recover(&self) -> Result<Vec<String>, TrainError> {
        let (parent, name) = self.parent_and_name()?;
        let Ok(entries) = std::fs::read_dir(&parent) else {
            return Ok(Vec::new());
        };
        let (mut staging, mut old) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = file.strip_prefix(&format!(".{name}.")) else {
                continue;
            };
            let (kind, pid) = if let Some(pid) = rest.strip_prefix(STAGING) {
                (&mut staging, pid)
            } else if let Some(pid) = rest.strip_prefix(OLD) {
                (&mut old, pid)
            } else {
                continue;
            };
            if let Ok(pid) = pid.parse::<u32>()
                && !process_alive(pid)
            {
                kind.push(entry.path());
            }
        }
        let mut done = Vec::new();
        if !self.path.exists() {
            let complete = staging
                .iter()
                .position(|s| s.join(crate::MANIFEST_FILE).is_file());
            let restored = match complete {
                Some(i) => Some(("finished an interrupted save from", staging.remove(i))),
                None => old.pop().map(|o| ("put back the previous model from", o)),
            };
            if let Some((what, from)) = restored {
                std::fs::rename(&from, &self.path).map_err(TrainError::io(&self.path))?;
                done.push(format!(
                    "{}: {what} {}",
                    self.path.display(),
                    from.display()
                ));
            }
        }
        for stale in staging.into_iter().chain(old) {
            std::fs::remove_dir_all(&stale).map_err(TrainError::io(&stale))?;
            done.push(format!(
                "removed {}, left by an interrupted save",
                stale.display()
            ));
        }
        Ok(done)
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
        let text = sora_core::weights::read_bounded(&path, sora_core::weights::MAX_JSON_BYTES)
            .map_err(TrainError::io(&path))?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| TrainError::Json { file: path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputSummary;

    /// The pid of a process that has ended.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn manifest() -> Manifest {
        Manifest::new("notes", "none", InputSummary::new("nothing"))
    }

    fn save(dir: &ModelDir, text: &str) -> Result<(), TrainError> {
        dir.save_with(&manifest(), |staging| {
            let file = staging.join("note.txt");
            std::fs::write(&file, text).map_err(|source| TrainError::Io { file, source })
        })
    }

    fn note(path: &Path) -> String {
        std::fs::read_to_string(path.join("note.txt")).unwrap()
    }

    #[test]
    fn an_interrupted_swap_is_finished_or_undone_and_leftovers_go() {
        let root = tempfile::tempdir().unwrap();
        let dir = ModelDir::new(root.path().join("m"));
        let hidden = |infix: &str, pid: u32| root.path().join(format!(".m.{infix}{pid}"));
        let pid = dead_pid();

        // Killed between the renames, the new model complete: it takes the name.
        save(&dir, "old").unwrap();
        std::fs::rename(dir.path(), hidden(OLD, pid)).unwrap();
        std::fs::create_dir(hidden(STAGING, pid)).unwrap();
        std::fs::write(hidden(STAGING, pid).join("note.txt"), "new").unwrap();
        manifest().write_into(&hidden(STAGING, pid)).unwrap();
        let done = dir.recover().unwrap();
        assert_eq!(note(dir.path()), "new");
        assert!(!hidden(OLD, pid).exists() && !hidden(STAGING, pid).exists());
        assert_eq!(done.len(), 2, "{done:?}");

        // Killed while the new one was being written: the old model comes back.
        std::fs::rename(dir.path(), hidden(OLD, pid)).unwrap();
        std::fs::create_dir(hidden(STAGING, pid)).unwrap();
        dir.recover().unwrap();
        assert_eq!(note(dir.path()), "new");
        assert!(!hidden(STAGING, pid).exists());

        // Leftovers beside a sound directory go; a running process's are left alone.
        std::fs::create_dir(hidden(STAGING, pid)).unwrap();
        std::fs::create_dir(hidden(OLD, pid)).unwrap();
        let mine = hidden(STAGING, std::process::id());
        std::fs::create_dir(&mine).unwrap();
        dir.recover().unwrap();
        assert!(!hidden(STAGING, pid).exists() && !hidden(OLD, pid).exists());
        assert!(mine.exists());
        std::fs::remove_dir(&mine).unwrap();
        // A save repairs first, then saves.
        std::fs::rename(dir.path(), hidden(OLD, pid)).unwrap();
        save(&dir, "third").unwrap();
        assert_eq!(note(dir.path()), "third");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn what_is_not_a_model_directory_is_not_replaced() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("report.txt");
        std::fs::write(&file, "mine").unwrap();
        let e = save(&ModelDir::new(&file), "x").unwrap_err();
        assert!(matches!(e, TrainError::NotReplaced { .. }), "{e}");
        assert!(
            e.to_string().contains("report.txt: exists and is a file"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

        let folder = root.path().join("photos");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("cat.png"), "png").unwrap();
        let e = save(&ModelDir::new(&folder), "x").unwrap_err();
        assert!(e.to_string().contains("not a model directory"), "{e}");
        assert!(folder.join("cat.png").is_file());

        // An empty folder and a model directory are replaced.
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        save(&ModelDir::new(&empty), "a").unwrap();
        save(&ModelDir::new(&empty), "b").unwrap();
        assert_eq!(note(&empty), "b");
    }
}
