//! The data sets bundled in the repository (`data/`), read with the splits the benchmarks
//! and examples use.

use std::path::{Path, PathBuf};

use sora_train::{TabularData, Targets, TrainError};

/// The repository's `data/` directory.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// scikit-learn's 8×8 digits, split as `BENCH.md` defines it: sample *i* (file order) is a
/// test sample when `i % 5 == 0` (360 test, 1,437 train); every feature standardised with
/// the train mean and population standard deviation (a zero deviation counts as 1).
#[derive(Debug, Clone)]
pub struct Digits {
    /// 1,437 training samples.
    pub train: TabularData,
    /// 360 test samples.
    pub test: TabularData,
}

/// Why the digits could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigitsError {
    /// The file could not be read.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line does not hold 64 pixel values and a digit.
    #[error("{}: line {line}: {what}", .file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// The line (1 is the header).
        line: usize,
        /// What is wrong with it.
        what: String,
    },
    /// The rows do not make training data.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// Reads `digits.csv` (`pixel_0..pixel_63,label`).
pub fn digits(path: &Path) -> Result<Digits, DigitsError> {
    let text = std::fs::read_to_string(path).map_err(|source| DigitsError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, what: String| DigitsError::Line {
        file: path.to_path_buf(),
        line,
        what,
    };
    let mut rows: Vec<(Vec<f32>, usize)> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(bad(
                i + 1,
                format!("expected 65 fields, found {}", fields.len()),
            ));
        }
        let pixels = fields[..64]
            .iter()
            .enumerate()
            .map(|(c, f)| {
                f.trim()
                    .parse::<f32>()
                    .map_err(|_| bad(i + 1, format!("column pixel_{c}: {f:?} is not a number")))
            })
            .collect::<Result<Vec<f32>, _>>()?;
        let label: usize = fields[64]
            .trim()
            .parse()
            .ok()
            .filter(|l| *l < 10)
            .ok_or_else(|| {
                bad(
                    i + 1,
                    format!("column label: {:?} is not a digit", fields[64]),
                )
            })?;
        rows.push((pixels, label));
    }
    let (test, train): (Vec<_>, Vec<_>) =
        rows.into_iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let n_train = train.len() as f64;
    let mut mean = [0f64; 64];
    let mut var = [0f64; 64];
    for (_, (x, _)) in &train {
        for j in 0..64 {
            mean[j] += x[j] as f64 / n_train;
        }
    }
    for (_, (x, _)) in &train {
        for j in 0..64 {
            var[j] += (x[j] as f64 - mean[j]).powi(2) / n_train;
        }
    }
    let std: Vec<f64> = var
        .iter()
        .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
        .collect();
    let build = |rows: Vec<(usize, (Vec<f32>, usize))>| {
        let mut features = Vec::with_capacity(rows.len() * 64);
        let mut labels = Vec::with_capacity(rows.len());
        for (_, (x, y)) in rows {
            features.extend((0..64).map(|j| ((x[j] as f64 - mean[j]) / std[j]) as f32));
            labels.push(y);
        }
        TabularData::new(
            features,
            64,
            Targets::Classes {
                labels,
                n_classes: 10,
            },
        )
    };
    Ok(Digits {
        train: build(train)?,
        test: build(test)?,
    })
}

/// The bundled digits (`data/digits/digits.csv`).
pub fn bundled_digits() -> Result<Digits, DigitsError> {
    digits(&data_dir().join("digits/digits.csv"))
}
