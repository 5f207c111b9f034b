//! `sora train`'s checkpoints on disk: the hidden directory beside `--out` that holds them
//! with the command line that started the run (`command.json`), and `--resume`, which reads
//! that command line back and runs it again, continuing from the checkpoints.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sora::core::weights::{MAX_JSON_BYTES, read_bounded, write_atomic};

/// The file of a checkpoint directory that holds the run's command line.
pub const COMMAND_FILE: &str = "command.json";

/// How a run was started: enough to start it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// The arguments after `sora train`.
    pub args: Vec<String>,
    /// The working directory the arguments' paths are relative to.
    pub cwd: PathBuf,
    /// The data files read, as they were when the run started.
    pub inputs: Vec<InputFile>,
}

/// A data file of the run: a resumed run refuses data that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The path as given.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its modification time (nanoseconds since the Unix epoch).
    pub modified_ns: u128,
}

impl InputFile {
    /// The file as it is now; `None` for a folder or a path that is not there.
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Some(Self {
            path: path.to_path_buf(),
            bytes: meta.len(),
            modified_ns,
        })
    }
}

/// The checkpoint directory of a run writing `out`: `.NAME.checkpoints` beside it.
pub fn checkpoint_dir(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("--out {}: not a directory name", out.display()))?;
    let mut hidden = OsString::from(".");
    hidden.push(name);
    hidden.push(".checkpoints");
    Ok(out.with_file_name(hidden))
}

/// Starts the checkpoints of a new run in `dir`: an earlier interrupted run's are replaced
/// (and the user told so), anything else there is refused, then the command line is saved.
pub fn start(dir: &Path, args: Vec<String>, inputs: &[&Path]) -> Result<()> {
    if dir.exists() {
        if !dir.join(COMMAND_FILE).is_file() {
            bail!(
                "{} is in the way of the run's checkpoints and is not a checkpoint directory \
                 (it has no {COMMAND_FILE}); move it, or train with --checkpoint-every 0",
                dir.display()
            );
        }
        eprintln!(
            "note: replacing the checkpoints of an interrupted run in {} (`sora train --resume` \
             would have continued it)",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Started {
        args,
        cwd: std::env::current_dir().context("the working directory")?,
        inputs: inputs.iter().filter_map(|p| InputFile::of(p)).collect(),
    };
    let path = dir.join(COMMAND_FILE);
    let text = serde_json::to_vec_pretty(&started).expect("plain data serialises");
    write_atomic(&path, &text).with_context(|| format!("writing {}", path.display()))
}

/// The run to continue: `dir` is the interrupted run's `--out` (or its checkpoint
/// directory). Moves to the run's working directory and checks that its data files are as
/// they were.
pub fn read(dir: &Path) -> Result<Started> {
    let checkpoints = if dir.join(COMMAND_FILE).is_file() {
        dir.to_path_buf()
    } else {
        checkpoint_dir(dir)?
    };
    let path = checkpoints.join(COMMAND_FILE);
    if !path.is_file() {
        bail!(
            "--resume {}: no interrupted run to continue ({} is not there: a run that finished \
             removes its checkpoints, and one trained with --checkpoint-every 0 writes none)",
            dir.display(),
            path.display()
        );
    }
    let text = read_bounded(&path, MAX_JSON_BYTES)
        .with_context(|| format!("reading {}", path.display()))?;
    let started: Started =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?;
    std::env::set_current_dir(&started.cwd).with_context(|| {
        format!(
            "--resume: the run's working directory {}",
            started.cwd.display()
        )
    })?;
    for input in &started.inputs {
        if InputFile::of(&input.path).as_ref() != Some(input) {
            bail!(
                "--resume: {} has changed since the run started (size or modification time); \
                 the run cannot continue on other data: start it anew without --resume",
                input.path.display()
            );
        }
    }
    Ok(started)
}

/// Removes the checkpoints of a run whose model is saved.
pub fn finish(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing the checkpoints {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Removes the checkpoints of a run that failed before it checkpointed anything (bad options,
/// bad data): the folder holds only the command line, and nothing could be resumed from it.
/// A run that has checkpoints keeps them.
pub fn abandon(dir: &Path) {
    let only_command = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .all(|e| e.file_name() == COMMAND_FILE)
    });
    if only_command {
        // Best effort: the run's own error is the one to report.
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_live_beside_the_model() {
        assert_eq!(
            checkpoint_dir(Path::new("runs/heart")).unwrap(),
            Path::new("runs/.heart.checkpoints")
        );
        assert_eq!(
            checkpoint_dir(Path::new("model")).unwrap(),
            Path::new(".model.checkpoints")
        );
        assert!(checkpoint_dir(Path::new("/")).is_err());
    }
}
