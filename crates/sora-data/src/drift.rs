//! How far new rows are from the training rows, column by column: what `sora eval`,
//! `sora predict` and `sora serve` report about the data they are given.
//!
//! A fitted pipeline keeps, per feature column, a [`TrainingProfile`]: how many training rows
//! it saw, how many were missing, and the range of a numeric column. [`FittedPipeline::drift`]
//! counts the same things in new rows, and a column is *flagged* when
//!
//! - its missing share exceeds the training share by more than [`MISSING_RISE`] (each
//!   such cell is imputed with a training statistic, so the model sees the training
//!   population where the data had nothing),
//! - more than [`OUTSIDE_SHARE`] of its present numbers lie outside the training range, or
//! - more than [`UNSEEN_SHARE`] of its present categories were never seen in training (each
//!   is encoded as none of the known ones).
//!
//! ```
//! use sora_data::{FittedPipeline, PipelineConfig, Table};
//!
//! # fn main() -> Result<(), sora_data::DataError> {
//! let train = Table::from_reader("age,sex,y\n30,m,0\n40,f,1\n50,m,0\n60,f,1\n".as_bytes(), "a.csv")?;
//! let pipeline = FittedPipeline::fit(&train, &[0, 1, 2, 3], &PipelineConfig::new("y"))?;
//!
//! let other = Table::from_reader("age,sex\n,m\n,f\n95,x\n45,m\n".as_bytes(), "b.csv")?;
//! let drift = pipeline.drift(&other, &[0, 1, 2, 3])?;
//! let age = &drift.columns[0];
//! assert_eq!((age.missing, age.above), (2, 1));
//! assert_eq!(drift.flagged().count(), 2);
//! let notes = drift.notes();
//! assert!(notes[0].contains("`age`: 2 of 4 rows missing (50.0%; 0.0% in training)"), "{notes:?}");
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::{FeatureEncoding, FittedPipeline, Result, Table};

/// A missing share this much above the training share flags a column.
pub const MISSING_RISE: f64 = 0.10;
/// A share of present numbers outside the training range above this flags a column.
pub const OUTSIDE_SHARE: f64 = 0.05;
/// A share of present categories unseen in training above this flags a column.
pub const UNSEEN_SHARE: f64 = 0.05;

/// What the training rows held in one feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingProfile {
    /// Training rows.
    pub rows: usize,
    /// Of them, missing in this column.
    pub missing: usize,
    /// The smallest and largest training value (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
}

impl TrainingProfile {
    /// The missing share of the training rows.
    pub fn missing_share(&self) -> f64 {
        share(self.missing, self.rows)
    }
}

/// One feature column of new rows against its training profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    /// The column.
    pub name: String,
    /// Rows looked at.
    pub rows: usize,
    /// Cells missing (and imputed, unless the pipeline drops such rows).
    pub missing: usize,
    /// Numbers below the training range.
    pub below: usize,
    /// Numbers above the training range.
    pub above: usize,
    /// Categories never seen in training.
    pub unseen: usize,
    /// The training profile (absent in pipelines written before profiles were kept).
    pub training: Option<TrainingProfile>,
    /// How a missing cell is filled, as the user would write it.
    pub imputed_with: String,
}

impl ColumnDrift {
    /// The missing share of the rows.
    pub fn missing_share(&self) -> f64 {
        share(self.missing, self.rows)
    }

    fn present(&self) -> usize {
        self.rows - self.missing
    }

    /// Why this column is flagged, one phrase per reason (empty: it is not).
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        let trained_missing = self.training.as_ref().map_or(0.0, |t| t.missing_share());
        if self.missing > 0 && self.missing_share() > trained_missing + MISSING_RISE {
            let trained = match &self.training {
                Some(t) => format!("{:.1}% in training", 100.0 * t.missing_share()),
                None => "training share not recorded".into(),
            };
            reasons.push(format!(
                "{} of {} rows missing ({:.1}%; {trained}), imputed with {}",
                self.missing,
                self.rows,
                100.0 * self.missing_share(),
                self.imputed_with
            ));
        }
        let outside = self.below + self.above;
        if let Some((lo, hi)) = self.training.as_ref().and_then(|t| t.range)
            && outside > 0
            && share(outside, self.present()) > OUTSIDE_SHARE
        {
            reasons.push(format!(
                "{outside} of {} values ({:.1}%) outside the training range {lo} .. {hi} \
                 ({} below, {} above)",
                self.present(),
                100.0 * share(outside, self.present()),
                self.below,
                self.above
            ));
        }
        if self.unseen > 0 && share(self.unseen, self.present()) > UNSEEN_SHARE {
            reasons.push(format!(
                "{} of {} values ({:.1}%) are categories not seen in training",
                self.unseen,
                self.present(),
                100.0 * share(self.unseen, self.present())
            ));
        }
        reasons
    }
}

/// New rows against the training rows, per feature column (in pipeline order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// Rows looked at.
    pub rows: usize,
    /// One entry per feature column.
    pub columns: Vec<ColumnDrift>,
}

impl Drift {
    /// The flagged columns.
    pub fn flagged(&self) -> impl Iterator<Item = &ColumnDrift> {
        self.columns.iter().filter(|c| !c.reasons().is_empty())
    }

    /// Adds the counts of `other` (rows of the same pipeline) to these.
    pub fn add(&mut self, other: &Drift) {
        self.rows += other.rows;
        for (mine, theirs) in self.columns.iter_mut().zip(&other.columns) {
            mine.rows += theirs.rows;
            mine.missing += theirs.missing;
            mine.below += theirs.below;
            mine.above += theirs.above;
            mine.unseen += theirs.unseen;
        }
    }

    /// One line per flagged column, then a total, for standard error; empty when no column is
    /// flagged.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .flagged()
            .map(|c| format!("drift: `{}`: {}", c.name, c.reasons().join("; ")))
            .collect();
        if !notes.is_empty() {
            let imputed: usize = self.flagged().map(|c| c.missing).sum();
            let mut total = format!(
                "drift: {} of {} columns differ from the training data",
                notes.len(),
                self.columns.len()
            );
            if imputed > 0 {
                let _ = write!(
                    total,
                    "; {imputed} missing cells in them were filled from training statistics"
                );
            }
            notes.push(total);
        }
        notes
    }
}

/// A number as a person reads it: at most 4 decimals, no trailing zeros.
fn short(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl FittedPipeline {
    /// How `rows` of `table` compare with the training rows, column by column (see the
    /// [module](crate::drift) for what is counted and flagged). Cells that are not numbers
    /// in a numeric column are not counted here: [`transform`](Self::transform) refuses them.
    ///
    /// # Errors
    ///
    /// A row index out of range, or a feature column absent from `table`.
    pub fn drift(&self, table: &Table, rows: &[usize]) -> Result<Drift> {
        let cols = self.feature_columns(table, rows)?;
        let markers = self.missing_markers();
        let columns = self
            .features()
            .iter()
            .zip(cols)
            .map(|(f, col)| {
                let mut c = ColumnDrift {
                    name: f.name.clone(),
                    rows: rows.len(),
                    missing: 0,
                    below: 0,
                    above: 0,
                    unseen: 0,
                    training: f.training.clone(),
                    imputed_with: match &f.encoding {
                        FeatureEncoding::Numeric { impute, .. } => short(*impute),
                        FeatureEncoding::Categorical { impute, .. } => format!("`{impute}`"),
                    },
                };
                let range = f.training.as_ref().and_then(|t| t.range);
                let known: HashSet<&str> = match &f.encoding {
                    FeatureEncoding::Categorical { categories, .. } => {
                        categories.iter().map(String::as_str).collect()
                    }
                    FeatureEncoding::Numeric { .. } => HashSet::new(),
                };
                for &row in rows {
                    let cell = table.cell(row, col);
                    if f.is_missing(cell, markers) {
                        c.missing += 1;
                        continue;
                    }
                    match &f.encoding {
                        FeatureEncoding::Numeric { .. } => {
                            if let (Some((lo, hi)), Ok(x)) = (range, cell.parse::<f64>()) {
                                c.below += usize::from(x < lo);
                                c.above += usize::from(x > hi);
                            }
                        }
                        FeatureEncoding::Categorical { .. } => {
                            c.unseen += usize::from(!known.contains(cell));
                        }
                    }
                }
                c
            })
            .collect();
        Ok(Drift {
            rows: rows.len(),
            columns,
        })
    }
}
