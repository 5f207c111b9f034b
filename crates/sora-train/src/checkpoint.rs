//! Checkpoints of a training run: how often they are written ([`CheckpointEvery`]), when the
//! next one is due ([`Cadence`]), and the files they are made of (module records and
//! optimizer state, each written atomically; the run's state file is the commit point).
//!
//! [`Trainer`](crate::Trainer) writes its checkpoints with these; a training loop of its own
//! (a language model's, say) uses the same pieces, so every run resumes the same way.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use sora_core::weights::{MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, read_bounded, write_atomic};

use crate::TrainError;

/// The file of a checkpoint directory that says where the run stands; it is written last,
/// so the files it names are complete.
pub const STATE_FILE: &str = "state.json";

/// How often a run writes a checkpoint.
///
/// Parsed from the command line's `--checkpoint-every`: `N` (every N epochs), `Ns` or `Nm`
/// (after the first epoch that ends N seconds or minutes after the last checkpoint).
///
/// ```
/// use std::time::Duration;
/// use sora_train::CheckpointEvery;
///
/// assert_eq!("3".parse::<CheckpointEvery>().unwrap(), CheckpointEvery::Epochs(3));
/// assert_eq!("90s".parse::<CheckpointEvery>().unwrap(), CheckpointEvery::Time(Duration::from_secs(90)));
/// assert_eq!("2m".parse::<CheckpointEvery>().unwrap().to_string(), "120s");
/// assert!("0".parse::<CheckpointEvery>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CheckpointEvery {
    /// After every `n`-th epoch (`n ≥ 1`).
    Epochs(usize),
    /// After the first epoch that ends at least this long after the last checkpoint (or the
    /// start of the run): a run shorter than that writes none.
    Time(Duration),
}

impl Default for CheckpointEvery {
    /// Every epoch.
    fn default() -> Self {
        Self::Epochs(1)
    }
}

impl fmt::Display for CheckpointEvery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Epochs(n) => write!(f, "{n}"),
            Self::Time(d) => write!(f, "{}s", d.as_secs_f64()),
        }
    }
}

/// A `--checkpoint-every` value that is neither a positive number of epochs nor a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{found}`: expected a number of epochs (e.g. 5) or a time (e.g. 90s, 2m), greater than 0")]
pub struct CheckpointEveryError {
    /// The value given.
    pub found: String,
}

impl FromStr for CheckpointEvery {
    type Err = CheckpointEveryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || CheckpointEveryError { found: s.into() };
        let t = s.trim();
        let (number, scale) = match t.as_bytes().last() {
            Some(b's') => (&t[..t.len() - 1], Some(1.0)),
            Some(b'm') => (&t[..t.len() - 1], Some(60.0)),
            _ => (t, None),
        };
        match scale {
            None => match number.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Self::Epochs(n)),
                _ => Err(error()),
            },
            Some(scale) => match number.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => {
                    Ok(Self::Time(Duration::from_secs_f64(v * scale)))
                }
                _ => Err(error()),
            },
        }
    }
}

/// When the next checkpoint is due: ask [`due`](Self::due) after every epoch.
#[derive(Debug, Clone)]
pub struct Cadence {
    every: CheckpointEvery,
    since: Instant,
    epochs: usize,
}

impl Cadence {
    /// A cadence that starts counting now.
    pub fn new(every: CheckpointEvery) -> Self {
        Self {
            every,
            since: Instant::now(),
            epochs: 0,
        }
    }

    /// Whether the epoch just ended is to be checkpointed; `last` (the run's final epoch,
    /// or the one early stopping ends on) always is. When it says yes, counting starts again.
    pub fn due(&mut self, last: bool) -> bool {
        self.epochs += 1;
        let due = last
            || match self.every {
                CheckpointEvery::Epochs(n) => self.epochs >= n,
                CheckpointEvery::Time(d) => self.since.elapsed() >= d,
            };
        if due {
            self.epochs = 0;
            self.since = Instant::now();
        }
        due
    }
}

/// Writes a module record (weights and buffers, e.g. batch-norm statistics) atomically.
pub fn write_record(path: &Path, record: ModuleRecord) -> Result<(), TrainError> {
    let bytes = record.into_bytes().map_err(|e| TrainError::Checkpoint {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(TrainError::io(path))
}

/// Reads a module record written by [`write_record`].
pub fn read_record(path: &Path) -> Result<ModuleRecord, TrainError> {
    let bytes = read_bounded(path, MAX_WEIGHTS_BYTES).map_err(TrainError::io(path))?;
    ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| TrainError::Checkpoint {
        file: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Loads the record at `path` into `module` (which must have the record's architecture).
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M, TrainError> {
    let record = read_record(path)?;
    module
        .try_load_record(record)
        .map_err(|e| TrainError::Checkpoint {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Writes an optimizer's state (moments, step counts) atomically.
pub fn write_optimizer(path: &Path, optimizer: &ModuleOptimizer) -> Result<(), TrainError> {
    let bytes = optimizer.into_bytes().map_err(|e| TrainError::Checkpoint {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(TrainError::io(path))
}

/// Restores the state written by [`write_optimizer`] into `optimizer` (one of the same kind
/// and configuration).
pub fn read_optimizer(
    path: &Path,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let bytes = read_bounded(path, MAX_WEIGHTS_BYTES).map_err(TrainError::io(path))?;
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::Checkpoint {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Writes a run's state as the checkpoint's [`STATE_FILE`] in `dir`, atomically: the commit
/// point of the checkpoint.
pub fn write_state<S: Serialize>(dir: &Path, state: &S) -> Result<(), TrainError> {
    let path = dir.join(STATE_FILE);
    let text = serde_json::to_vec_pretty(state).map_err(|source| TrainError::Json {
        file: path.clone(),
        source,
    })?;
    write_atomic(&path, &text).map_err(TrainError::io(&path))
}

/// The run state of the checkpoint in `dir`, or `None` when it has none yet.
pub fn read_state<S: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Option<S>, TrainError> {
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_bounded(&path, MAX_JSON_BYTES).map_err(TrainError::io(&path))?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| TrainError::Json { file: path, source })
}

/// The files of a checkpoint: the last epoch's model and optimizer state and the best
/// epoch's model, each under a name of its own epoch, so that writing a checkpoint never
/// overwrites the files the committed one names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFiles {
    /// The last epoch's module record.
    pub last_model: String,
    /// The last epoch's optimizer state.
    pub last_optimizer: String,
    /// The best epoch's module record.
    pub best_model: String,
}

impl CheckpointFiles {
    /// Writes `epoch`'s model and optimizer state, and the best model when it changed
    /// (`best`), into `dir` and names them; returns the names they replace. Commit with
    /// [`write_state`] (a state that holds these names), then
    /// [`remove_stale`](Self::remove_stale).
    pub fn write(
        &mut self,
        dir: &Path,
        epoch: usize,
        model: ModuleRecord,
        optimizer: &ModuleOptimizer,
        best: Option<ModuleRecord>,
    ) -> Result<CheckpointFiles, TrainError> {
        std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
        let old = self.clone();
        let model_name = format!("model-{epoch}.bpk");
        write_record(&dir.join(&model_name), model)?;
        let optim_name = format!("optimizer-{epoch}.bpk");
        write_optimizer(&dir.join(&optim_name), optimizer)?;
        if let Some(best) = best {
            let best_name = format!("best-{epoch}.bpk");
            write_record(&dir.join(&best_name), best)?;
            self.best_model = best_name;
        }
        self.last_model = model_name;
        self.last_optimizer = optim_name;
        Ok(old)
    }

    /// Removes the files `old` names that this checkpoint does not (best effort: a file
    /// left behind is only disk space).
    pub fn remove_stale(&self, dir: &Path, old: &CheckpointFiles) {
        let keep = [&self.last_model, &self.last_optimizer, &self.best_model];
        for stale in [&old.last_model, &old.last_optimizer, &old.best_model] {
            if !stale.is_empty() && !keep.contains(&stale) {
                let _ = std::fs::remove_file(dir.join(stale));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_every_parses_epochs_and_times() {
        assert_eq!("1".parse(), Ok(CheckpointEvery::Epochs(1)));
        assert_eq!(
            "1.5m".parse(),
            Ok(CheckpointEvery::Time(Duration::from_secs(90)))
        );
        for bad in ["", "0", "-1", "0s", "s", "1h", "nan s", "infs", "1e10m"] {
            assert!(bad.parse::<CheckpointEvery>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cadence_counts_epochs_and_always_keeps_the_last() {
        let mut c = Cadence::new(CheckpointEvery::Epochs(3));
        let due: Vec<bool> = (0..7).map(|i| c.due(i == 6)).collect();
        assert_eq!(due, [false, false, true, false, false, true, true]);
        let mut t = Cadence::new(CheckpointEvery::Time(Duration::from_secs(3600)));
        assert!(!t.due(false));
        assert!(t.due(true));
        let mut now = Cadence::new(CheckpointEvery::Time(Duration::from_nanos(1)));
        std::thread::sleep(Duration::from_millis(1));
        assert!(now.due(false));
    }
}
