//! The fitted preprocessing pipeline: imputation, standardization, one-hot encoding and
//! target encoding, with every statistic taken from the training rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::is_zero;
use crate::drift::TrainingProfile;
use crate::schema::ColumnStats;
use crate::{
    ColumnKind, DataError, Impute, MAX_CLASSES_AUTO, MissingMarkers, PipelineConfig, Result, Table,
    TargetRule, TextCells,
};

/// What the model predicts, which fixes its output width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskKind {
    /// Class labels `0..n_classes`.
    Classification {
        /// Number of classes (≥ 2).
        n_classes: usize,
    },
    /// One real value per row.
    Regression,
}

/// Encoded targets, one per kept row.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetValues {
    /// Class indices into [`FittedPipeline::classes`].
    Classes(Vec<usize>),
    /// Regression values, as in the file (not standardized).
    Values(Vec<f32>),
}

impl TargetValues {
    /// Number of targets.
    pub fn len(&self) -> usize {
        match self {
            TargetValues::Classes(v) => v.len(),
            TargetValues::Values(v) => v.len(),
        }
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Model inputs (and targets, when the table has the target column) for some table rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    /// Row-major features, `rows.len() × d`.
    pub features: Vec<f32>,
    /// Features per row (the pipeline's [`d_input`](FittedPipeline::d_input)).
    pub d: usize,
    /// The table rows kept, in the order given; rows with a missing target (and, with
    /// `drop_missing_rows`, rows with a missing feature) are left out.
    pub rows: Vec<usize>,
    /// The targets of the kept rows; `None` when the table has no target column.
    pub targets: Option<TargetValues>,
    /// Cells of categorical columns holding a category not seen in the training rows; each
    /// was encoded as an all-zeros block.
    pub unseen_categories: usize,
    /// What was dropped or unseen, for the user.
    pub warnings: Vec<String>,
}

impl Transformed {
    /// Number of rows kept.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// The features of kept row `i`.
    ///
    /// # Panics
    ///
    /// When `i >= n_rows()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.d..(i + 1) * self.d]
    }
}

/// The targets of every row of a table whose target is present, encoded with statistics
/// from all those rows. Meant for choosing a split before fitting; see [`encode_target`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedTarget {
    /// The table rows whose target is present, ascending.
    pub rows: Vec<usize>,
    /// Their targets.
    pub targets: TargetValues,
    /// The classes, sorted, for a classification target.
    pub classes: Option<Vec<String>>,
}

/// How one raw feature column becomes model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureEncoding {
    /// One input, `(x - mean) / std`; missing cells take `impute` first.
    Numeric {
        /// Training mean of the observed values.
        mean: f64,
        /// Training population standard deviation of the observed values (1 when it is 0).
        std: f64,
        /// The value a missing cell takes (in raw units).
        impute: f64,
    },
    /// One input per category, one-hot; a category not in the list gives all zeros.
    Categorical {
        /// The training categories, sorted (numerically when all look like numbers).
        categories: Vec<String>,
        /// The value a missing cell takes.
        impute: String,
    },
}

/// One raw feature column of a fitted pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedFeature {
    /// The raw column name.
    pub name: String,
    /// How it is encoded.
    pub encoding: FeatureEncoding,
    /// Whether the value 0 means missing in this column.
    pub zero_as_missing: bool,
    /// Whether a cell that is not a number is missing ([`TextCells::Missing`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_as_missing: bool,
    /// Whether a 0/1 `<name>_missing` input follows its block.
    pub missing_indicator: bool,
    /// What the training rows held in this column, to tell how far new rows are from them
    /// ([`FittedPipeline::drift`]); absent in pipelines written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingProfile>,
}

impl FittedFeature {
    /// Number of model inputs this column produces (indicator included).
    pub fn width(&self) -> usize {
        let block = match &self.encoding {
            FeatureEncoding::Numeric { .. } => 1,
            FeatureEncoding::Categorical { categories, .. } => categories.len(),
        };
        block + usize::from(self.missing_indicator)
    }

    pub(crate) fn is_missing(&self, cell: &str, markers: &MissingMarkers) -> bool {
        markers.is_missing(cell)
            || (self.zero_as_missing && is_zero(cell))
            || (self.text_as_missing && cell.parse::<f64>().is_err())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TargetEncoding {
    Classes {
        classes: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
    },
    Regression,
}

/// The training mean and standard deviation of a regression target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetScale {
    /// Mean of the training targets.
    pub mean: f64,
    /// Their standard deviation (population; 1 when they are all equal).
    pub std: f64,
}

impl TargetScale {
    /// The scale of `values` (the training rows' targets).
    ///
    /// ```
    /// let scale = sora_data::TargetScale::fit(&[1000.0, 3000.0]);
    /// assert_eq!((scale.mean, scale.std), (2000.0, 1000.0));
    /// let mut v = vec![3000.0f32];
    /// scale.scale(&mut v);
    /// assert_eq!(v, [1.0]);
    /// scale.unscale(&mut v);
    /// assert_eq!(v, [3000.0]);
    /// ```
    pub fn fit(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt();
        Self {
            mean,
            std: if std.is_finite() && std > 0.0 {
                std
            } else {
                1.0
            },
        }
    }

    /// `(v − mean) / std` of each value, in place.
    pub fn scale(&self, values: &mut [f32]) {
        for v in values {
            *v = ((*v as f64 - self.mean) / self.std) as f32;
        }
    }

    /// `v · std + mean` of each value, in place.
    pub fn unscale(&self, values: &mut [f32]) {
        for v in values {
            *v = (*v as f64 * self.std + self.mean) as f32;
        }
    }
}

/// A preprocessing pipeline fitted on training rows: it turns table rows into standardized,
/// one-hot encoded `f32` model inputs and encoded targets.
///
/// Every statistic (imputation values, means and standard deviations, category lists,
/// classes) comes from the training rows given to [`FittedPipeline::fit`]; applying it to
/// other rows never looks at their values except to encode them. It serializes with serde
/// (`pipeline.json` beside the model weights).
///
/// - Numeric features: missing cells take the imputation value, then `(x - mean) / std` with
///   the mean and population standard deviation of the observed training values (std 0 → 1).
/// - Categorical features: one input per training category, in sorted order, named
///   `<col>=<category>`; a category first seen at transform time gives an all-zeros block and
///   is counted in [`Transformed::unseen_categories`].
/// - Missing indicators (`missing_indicators`): `<col>_missing`, 1 for a missing cell, after
///   the column's block, for columns with missing training cells.
/// - Classification targets: label-encoded, classes sorted (numerically when all look like
///   numbers); a class not seen in training is a [`DataError::UnseenClass`].
/// - Regression targets: the raw value as `f32`.
///
/// ```
/// use sora_data::{FittedPipeline, PipelineConfig, Table, TargetValues, TaskKind};
///
/// # fn main() -> Result<(), sora_data::DataError> {
/// let csv = "age,color,label\n20,red,no\n40,blue,yes\nNA,red,yes\n30,green,no\n";
/// let table = Table::from_reader(csv.as_bytes(), "toy.csv")?;
/// let config = PipelineConfig { missing_indicators: true, ..PipelineConfig::new("label") };
/// let pipeline = FittedPipeline::fit(&table, &[0, 1, 2], &config)?;
/// assert_eq!(pipeline.feature_names(), ["age", "age_missing", "color=blue", "color=red"]);
/// assert_eq!(pipeline.task(), TaskKind::Classification { n_classes: 2 });
/// assert_eq!(pipeline.classes().unwrap(), ["no", "yes"]);
///
/// // Row 3 ("green") is not a training row: its colour was never seen.
/// let out = pipeline.transform(&table, &[2, 3])?;
/// assert_eq!(out.d, 4);
/// assert_eq!(out.row(0), [0.0, 1.0, 0.0, 1.0]); // age imputed with the train mean 30
/// assert_eq!(out.row(1), [0.0, 0.0, 0.0, 0.0]);
/// assert_eq!(out.unseen_categories, 1);
/// assert_eq!(out.targets, Some(TargetValues::Classes(vec![1, 0])));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "PipelineFile")]
pub struct FittedPipeline {
    fitted_on: String,
    target: String,
    target_zero_as_missing: bool,
    target_encoding: TargetEncoding,
    /// A regression target's training mean and standard deviation: the model learns
    /// `(y − mean) / std`, and its outputs are mapped back ([`TargetScale`]). Absent in
    /// pipelines written before it existed (their models learned raw values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_scale: Option<TargetScale>,
    missing_markers: MissingMarkers,
    drop_missing_rows: bool,
    features: Vec<FittedFeature>,
    feature_names: Vec<String>,
    warnings: Vec<String>,
}

/// A pipeline as written, checked before it becomes a [`FittedPipeline`]: an edited file
/// whose features no longer make the inputs the model was trained on is refused, naming them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    fitted_on: String,
    target: String,
    target_zero_as_missing: bool,
    target_encoding: TargetEncoding,
    /// A regression target's training mean and standard deviation: the model learns
    /// `(y − mean) / std`, and its outputs are mapped back ([`TargetScale`]). Absent in
    /// pipelines written before it existed (their models learned raw values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_scale: Option<TargetScale>,
    missing_markers: MissingMarkers,
    drop_missing_rows: bool,
    features: Vec<FittedFeature>,
    feature_names: Vec<String>,
    warnings: Vec<String>,
}

impl TryFrom<PipelineFile> for FittedPipeline {
    type Error = String;

    fn try_from(file: PipelineFile) -> std::result::Result<Self, String> {
        for f in &file.features {
            if let FeatureEncoding::Numeric { mean, std, impute } = f.encoding
                && !(mean.is_finite() && impute.is_finite() && std.is_finite() && std > 0.0)
            {
                return Err(format!(
                    "feature `{}`: mean {mean}, std {std} and impute {impute} must be finite \
                     numbers, std above 0",
                    f.name
                ));
            }
        }
        let made = input_names(&file.features);
        if made != file.feature_names {
            let made_set: HashSet<&String> = made.iter().collect();
            let listed_set: HashSet<&String> = file.feature_names.iter().collect();
            let listed: Vec<&String> = file
                .feature_names
                .iter()
                .filter(|n| !made_set.contains(n))
                .collect();
            let unlisted: Vec<&String> = made.iter().filter(|n| !listed_set.contains(n)).collect();
            let mut why = format!(
                "the features make {} model inputs, but feature_names lists {}",
                made.len(),
                file.feature_names.len()
            );
            if !listed.is_empty() {
                why.push_str(&format!(
                    "; no feature makes {} (was a column removed from `features`?)",
                    first_names(&listed)
                ));
            }
            if !unlisted.is_empty() {
                why.push_str(&format!("; feature_names lacks {}", first_names(&unlisted)));
            }
            if listed.is_empty() && unlisted.is_empty() {
                why.push_str("; the same inputs in another order");
            }
            return Err(format!(
                "{why}. A fitted pipeline must make the inputs its model was trained on: to \
                 leave a column out, train again with it ignored"
            ));
        }
        let PipelineFile {
            fitted_on,
            target,
            target_zero_as_missing,
            target_encoding,
            target_scale,
            missing_markers,
            drop_missing_rows,
            features,
            feature_names,
            warnings,
        } = file;
        if let Some(t) = target_scale
            && !(t.mean.is_finite() && t.std.is_finite() && t.std > 0.0)
        {
            return Err(format!(
                "target_scale: mean {} and std {} must be finite numbers, std above 0",
                t.mean, t.std
            ));
        }
        Ok(FittedPipeline {
            fitted_on,
            target,
            target_zero_as_missing,
            target_encoding,
            target_scale,
            missing_markers,
            drop_missing_rows,
            features,
            feature_names,
            warnings,
        })
    }
}

/// The model-input names the features make, in order: `age`, `sex=male`, `ca_missing`.
fn input_names(features: &[FittedFeature]) -> Vec<String> {
    features
        .iter()
        .flat_map(|f| {
            let mut names = match &f.encoding {
                FeatureEncoding::Numeric { .. } => vec![f.name.clone()],
                FeatureEncoding::Categorical { categories, .. } => categories
                    .iter()
                    .map(|c| format!("{}={c}", f.name))
                    .collect(),
            };
            if f.missing_indicator {
                names.push(format!("{}_missing", f.name));
            }
            names
        })
        .collect()
}

impl FittedPipeline {
    /// Fits the pipeline on `train_rows` (0-based data-row indices) of `table`.
    ///
    /// In order: the config is checked against the table; training rows with a missing target
    /// are dropped (with a warning); each other column not in `ignore` is kept or left out
    /// (entirely missing, identifier, constant, or over `drop_columns_over`, each with a
    /// warning) by its kind over those rows; with `drop_missing_rows`, rows missing a kept
    /// feature are dropped; then the target encoding and every feature statistic is computed
    /// from the remaining rows.
    ///
    /// # Errors
    ///
    /// A config naming an unknown column or out of range; a row index out of range; no
    /// training rows; the target column absent ([`DataError::TargetNotFound`] lists the
    /// columns), missing in every training row, or holding one class; no feature left; a
    /// numeric cell that is not a number or not finite; an impute setting that does not fit
    /// the column.
    pub fn fit(table: &Table, train_rows: &[usize], config: &PipelineConfig) -> Result<Self> {
        config.validate(table)?;
        check_rows(table, train_rows)?;
        let file = table.source();
        if train_rows.is_empty() {
            return Err(DataError::NoTrainingRows {
                file: file.to_string(),
                reason: "no training rows were given".into(),
            });
        }
        let target_col = find_target(table, &config.target)?;
        let markers = config.missing_markers();
        let zero: Vec<bool> = table
            .headers()
            .iter()
            .map(|h| config.zero_as_missing.contains(h))
            .collect();
        let missing = |row: usize, col: usize| {
            let cell = table.cell(row, col);
            markers.is_missing(cell) || (zero[col] && is_zero(cell))
        };
        let mut warnings = Vec::new();

        let rows: Vec<usize> = train_rows
            .iter()
            .copied()
            .filter(|&r| !missing(r, target_col))
            .collect();
        if rows.is_empty() {
            return Err(DataError::TargetAllMissing {
                file: file.to_string(),
                target: config.target.clone(),
            });
        }
        if rows.len() < train_rows.len() {
            warnings.push(format!(
                "dropped {} of {} training rows with a missing target `{}`",
                train_rows.len() - rows.len(),
                train_rows.len(),
                config.target
            ));
        }

        let mut kept = Vec::new();
        let mut left_out = Vec::new();
        let all_rows: Vec<usize> = (0..table.n_rows()).collect();
        // Columns of numbers whose few text cells are read as missing (TextCells::Missing).
        let mut text_missing = vec![false; table.n_cols()];
        for (col, name) in table.headers().iter().enumerate() {
            if col == target_col || config.ignore.contains(name) {
                continue;
            }
            let mut stats = ColumnStats::compute(table, col, &rows, |c| {
                markers.is_missing(c) || (zero[col] && is_zero(c))
            });
            let mut kind = config.kinds.get(name).copied();
            // Whether a column is numbers is a property of the file, judged on every row: a
            // stray text cell outside the training rows would otherwise fail only later.
            let mixed = || {
                ColumnStats::compute(table, col, &all_rows, |c| {
                    markers.is_missing(c) || (zero[col] && is_zero(c))
                })
                .text_among_numbers(table, col)
            };
            if let Some(cells) = kind.is_none().then(mixed).flatten() {
                match config.text_cells {
                    TextCells::Refuse => {
                        return Err(DataError::TextAmongNumbers {
                            file: file.to_string(),
                            column: name.clone(),
                            cells,
                        });
                    }
                    TextCells::Missing => {
                        warnings.push(format!(
                            "`{name}`: {} text cell(s) read as missing ({})",
                            cells.n_text,
                            cells.cells()
                        ));
                        text_missing[col] = true;
                        stats = ColumnStats::compute(table, col, &rows, |c| {
                            markers.is_missing(c)
                                || (zero[col] && is_zero(c))
                                || c.parse::<f64>().is_err()
                        });
                    }
                    TextCells::Categorical => {
                        warnings.push(format!(
                            "`{name}`: {} text cell(s) among numbers ({}); every value read as \
                             a category",
                            cells.n_text,
                            cells.cells()
                        ));
                        kind = Some(ColumnKind::Categorical);
                    }
                }
            }
            if stats.n_present() == 0 {
                left_out.push((
                    "missing in every training row",
                    name,
                    format!(
                        "`{name}`: missing in all {} training rows; left out",
                        rows.len()
                    ),
                ));
                continue;
            }
            let kind = kind.unwrap_or_else(|| stats.kind(name));
            match kind {
                ColumnKind::Identifier => {
                    left_out.push((
                        "identifier",
                        name,
                        format!("`{name}`: identifier column; left out"),
                    ));
                    continue;
                }
                ColumnKind::Constant => {
                    left_out.push((
                        "constant",
                        name,
                        format!(
                            "`{name}`: constant column ({} distinct value); left out",
                            stats.n_distinct
                        ),
                    ));
                    continue;
                }
                ColumnKind::Numeric | ColumnKind::Categorical => {}
            }
            if let Some(limit) = config.drop_columns_over
                && stats.missing_fraction() > limit
            {
                left_out.push((
                    "mostly missing (drop_columns_over)",
                    name,
                    format!(
                        "`{name}`: {:.1}% missing in training rows, over drop_columns_over = \
                         {limit}; left out",
                        100.0 * stats.missing_fraction()
                    ),
                ));
                continue;
            }
            kept.push((col, kind));
        }
        let left_out = summarise_left_out(left_out);
        warnings.extend(left_out.iter().cloned());
        let missing = |row: usize, col: usize| {
            missing(row, col) || (text_missing[col] && table.cell(row, col).parse::<f64>().is_err())
        };
        if kept.is_empty() {
            return Err(DataError::NoFeatures {
                file: file.to_string(),
                dropped: left_out,
            });
        }

        let rows = if config.drop_missing_rows {
            let complete: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| kept.iter().all(|&(c, _)| !missing(r, c)))
                .collect();
            if complete.is_empty() {
                return Err(DataError::NoTrainingRows {
                    file: file.to_string(),
                    reason: "every training row has a missing feature (drop_missing_rows)".into(),
                });
            }
            if complete.len() < rows.len() {
                warnings.push(format!(
                    "dropped {} of {} training rows with a missing feature (drop_missing_rows)",
                    rows.len() - complete.len(),
                    rows.len()
                ));
            }
            complete
        } else {
            rows
        };

        let target_zero_as_missing = zero[target_col];
        let target_encoding =
            fit_target(table, &rows, target_col, config, &markers, zero[target_col])?;
        let target_scale = match target_encoding {
            TargetEncoding::Regression => {
                let values = rows
                    .iter()
                    .map(
                        |&r| match encode_target_cell(&target_encoding, table, r, target_col)? {
                            Target::Value(v) => Ok(v as f64),
                            Target::Class(c) => Ok(c as f64),
                        },
                    )
                    .collect::<Result<Vec<f64>>>()?;
                Some(TargetScale::fit(&values))
            }
            TargetEncoding::Classes { .. } => None,
        };

        let mut features = Vec::with_capacity(kept.len());
        for (col, kind) in kept {
            let name = &table.headers()[col];
            let present: Vec<usize> = rows.iter().copied().filter(|&r| !missing(r, col)).collect();
            let n_missing = rows.len() - present.len();
            let (encoding, range) = match kind {
                ColumnKind::Numeric => fit_numeric(table, col, &present, config)?,
                _ => (
                    fit_categorical(table, col, &present, n_missing, config)?,
                    None,
                ),
            };
            features.push(FittedFeature {
                name: name.clone(),
                encoding,
                zero_as_missing: zero[col],
                text_as_missing: text_missing[col],
                missing_indicator: config.missing_indicators && n_missing > 0,
                training: Some(TrainingProfile {
                    rows: rows.len(),
                    missing: n_missing,
                    range,
                }),
            });
        }
        let feature_names = input_names(&features);

        Ok(FittedPipeline {
            fitted_on: file.to_string(),
            target: config.target.clone(),
            target_zero_as_missing,
            target_encoding,
            target_scale,
            missing_markers: markers,
            drop_missing_rows: config.drop_missing_rows,
            features,
            feature_names,
            warnings,
        })
    }

    /// Turns `rows` (0-based data-row indices) of `table` into model inputs and targets.
    ///
    /// Columns are matched by name, in any order; extra columns are ignored. When the table has
    /// the target column, rows with a missing target are left out and the others' targets are
    /// encoded; without it (prediction data) `targets` is `None`. Missing feature cells take
    /// the training imputation value, or drop the row when the pipeline was fitted with
    /// `drop_missing_rows`. A category not seen in training gives an all-zeros block and is
    /// counted (a categorical column imputed with a constant that was not a training category
    /// also gives zeros, but is not counted).
    ///
    /// # Errors
    ///
    /// A row index out of range; a feature column absent ([`DataError::MissingColumn`]); a
    /// numeric cell that is not a number ([`DataError::NotNumeric`]) or not finite, also after
    /// standardization in `f32` ([`DataError::NonFinite`]); a class not seen in training
    /// ([`DataError::UnseenClass`]).
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<Transformed> {
        let cols = self.feature_columns(table, rows)?;
        let target_col = table.column_index(&self.target);
        let lookups: Vec<HashMap<&str, usize>> = self
            .features
            .iter()
            .map(|f| match &f.encoding {
                FeatureEncoding::Categorical { categories, .. } => categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect(),
                FeatureEncoding::Numeric { .. } => HashMap::new(),
            })
            .collect();

        let d = self.d_input();
        let mut features = Vec::with_capacity(rows.len() * d);
        let mut kept = Vec::with_capacity(rows.len());
        let mut classes = Vec::new();
        let mut values = Vec::new();
        let mut unseen = vec![0usize; self.features.len()];
        let (mut no_target, mut incomplete) = (0usize, 0usize);
        for &row in rows {
            if let Some(tc) = target_col {
                let cell = table.cell(row, tc);
                if self.missing_markers.is_missing(cell)
                    || (self.target_zero_as_missing && is_zero(cell))
                {
                    no_target += 1;
                    continue;
                }
            }
            if self.drop_missing_rows
                && self
                    .features
                    .iter()
                    .zip(&cols)
                    .any(|(f, &c)| f.is_missing(table.cell(row, c), &self.missing_markers))
            {
                incomplete += 1;
                continue;
            }
            for (k, (f, &col)) in self.features.iter().zip(&cols).enumerate() {
                let cell = table.cell(row, col);
                let miss = f.is_missing(cell, &self.missing_markers);
                match &f.encoding {
                    FeatureEncoding::Numeric { mean, std, impute } => {
                        let x = if miss {
                            *impute
                        } else {
                            parse_finite(table, row, col, cell)?
                        };
                        let z = ((x - mean) / std) as f32;
                        if !z.is_finite() {
                            return Err(non_finite(table, row, col, cell));
                        }
                        features.push(z);
                    }
                    FeatureEncoding::Categorical { categories, impute } => {
                        let value = if miss { impute.as_str() } else { cell };
                        let start = features.len();
                        features.resize(start + categories.len(), 0.0);
                        match lookups[k].get(value) {
                            Some(&i) => features[start + i] = 1.0,
                            None if !miss => unseen[k] += 1,
                            None => {}
                        }
                    }
                }
                if f.missing_indicator {
                    features.push(if miss { 1.0 } else { 0.0 });
                }
            }
            if let Some(tc) = target_col {
                match self.encode_target_cell(table, row, tc)? {
                    Target::Class(c) => classes.push(c),
                    Target::Value(v) => values.push(v),
                }
            }
            kept.push(row);
        }

        let mut warnings = Vec::new();
        if no_target > 0 {
            warnings.push(format!(
                "dropped {no_target} of {} rows with a missing target `{}`",
                rows.len(),
                self.target
            ));
        }
        if incomplete > 0 {
            warnings.push(format!(
                "dropped {incomplete} of {} rows with a missing feature (drop_missing_rows)",
                rows.len()
            ));
        }
        for (f, &n) in self.features.iter().zip(&unseen) {
            if n > 0 {
                warnings.push(format!(
                    "`{}`: {n} cells hold a category not seen in training (encoded as zeros)",
                    f.name
                ));
            }
        }
        let targets = target_col.map(|_| match self.target_encoding {
            TargetEncoding::Classes { .. } => TargetValues::Classes(classes),
            TargetEncoding::Regression => TargetValues::Values(values),
        });
        Ok(Transformed {
            features,
            d,
            rows: kept,
            targets,
            unseen_categories: unseen.iter().sum(),
            warnings,
        })
    }

    /// The column of `table` holding each feature, after checking `rows` are in range.
    pub(crate) fn feature_columns(&self, table: &Table, rows: &[usize]) -> Result<Vec<usize>> {
        check_rows(table, rows)?;
        self.features
            .iter()
            .map(|f| {
                table
                    .column_index(&f.name)
                    .ok_or_else(|| DataError::MissingColumn {
                        file: table.source().to_string(),
                        column: f.name.clone(),
                    })
            })
            .collect()
    }

    /// The model-input column names, e.g. `age`, `sex=male`, `ca_missing`.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Number of model inputs per row.
    pub fn d_input(&self) -> usize {
        self.feature_names.len()
    }

    /// Each raw feature column and the range of model inputs it produced (its missing
    /// indicator included), in input order.
    pub fn column_map(&self) -> Vec<(String, Range<usize>)> {
        let mut start = 0;
        self.features
            .iter()
            .map(|f| {
                let range = start..start + f.width();
                start = range.end;
                (f.name.clone(), range)
            })
            .collect()
    }

    /// The raw feature columns and how each is encoded, in input order.
    pub fn features(&self) -> &[FittedFeature] {
        &self.features
    }

    /// Whether `cell` of the raw feature column `column` counts as missing for this pipeline
    /// (a missing marker, or 0 in a zero-as-missing column) and so is imputed by
    /// [`transform`](Self::transform). `false` for a column the pipeline does not use.
    pub fn is_missing_cell(&self, column: &str, cell: &str) -> bool {
        self.features
            .iter()
            .find(|f| f.name == column)
            .is_some_and(|f| f.is_missing(cell, &self.missing_markers))
    }

    /// The cells that mean "missing" to this pipeline (as configured when it was fitted).
    pub fn missing_markers(&self) -> &MissingMarkers {
        &self.missing_markers
    }

    /// Whether rows with a missing feature cell are dropped by [`transform`](Self::transform)
    /// rather than imputed (`drop_missing_rows` when fitted).
    pub fn drops_missing_rows(&self) -> bool {
        self.drop_missing_rows
    }

    /// A regression target's scale: the model learns standardized values, and
    /// [`TargetScale::unscale`] maps its outputs back. `None` for classes, and for pipelines
    /// written before targets were scaled.
    pub fn target_scale(&self) -> Option<TargetScale> {
        self.target_scale
    }

    /// The classes in label order, for a classification target.
    pub fn classes(&self) -> Option<&[String]> {
        match &self.target_encoding {
            TargetEncoding::Classes { classes, .. } => Some(classes),
            TargetEncoding::Regression => None,
        }
    }

    /// The name of class `label`; `None` for regression or a label out of range.
    pub fn class_name(&self, label: usize) -> Option<&str> {
        self.classes()?.get(label).map(String::as_str)
    }

    /// Classification (with its number of classes) or regression.
    pub fn task(&self) -> TaskKind {
        match &self.target_encoding {
            TargetEncoding::Classes { classes, .. } => TaskKind::Classification {
                n_classes: classes.len(),
            },
            TargetEncoding::Regression => TaskKind::Regression,
        }
    }

    /// The target column.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The model's output width: the number of classes, or 1 for regression.
    pub fn d_output(&self) -> usize {
        match self.task() {
            TaskKind::Classification { n_classes } => n_classes,
            TaskKind::Regression => 1,
        }
    }

    /// What fitting left out or dropped, for the user.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The source of the table the pipeline was fitted on.
    pub fn fitted_on(&self) -> &str {
        &self.fitted_on
    }

    /// Writes the pipeline as pretty JSON (`pipeline.json`).
    pub fn save_json(&self, path: &Path) -> Result<()> {
        let file = path.display().to_string();
        let text = serde_json::to_string_pretty(self).map_err(|e| DataError::Json {
            file: file.clone(),
            source: e,
        })?;
        std::fs::write(path, text).map_err(|e| DataError::Io { file, source: e })
    }

    /// Reads a pipeline written by [`FittedPipeline::save_json`].
    pub fn load_json(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let reader = crate::table::open_regular(path).map_err(|e| DataError::Io {
            file: file.clone(),
            source: e,
        })?;
        serde_json::from_reader(std::io::BufReader::new(reader))
            .map_err(|e| DataError::Json { file, source: e })
    }

    fn encode_target_cell(&self, table: &Table, row: usize, col: usize) -> Result<Target> {
        encode_target_cell(&self.target_encoding, table, row, col)
    }
}

/// Encodes the target of every row of `table` where it is present, with the target rule of
/// `config` applied over all those rows.
///
/// This looks at every row's target, so use it only to choose a split (for
/// [`stratified_split`](crate::stratified_split)); fit the pipeline on the training rows
/// afterwards. Indices of the split refer to positions in [`EncodedTarget::rows`]; map them
/// with [`Split::select`](crate::Split::select).
///
/// ```
/// use sora_data::{FittedPipeline, PipelineConfig, Table, TargetValues, encode_target, stratified_split};
///
/// # fn main() -> Result<(), sora_data::DataError> {
/// let csv = "x,y\n1,a\n2,b\n3,a\n4,\n5,b\n6,a\n7,b\n8,a\n";
/// let table = Table::from_reader(csv.as_bytes(), "xy.csv")?;
/// let config = PipelineConfig::new("y");
/// let target = encode_target(&table, &config)?;
/// assert_eq!(target.rows, [0, 1, 2, 4, 5, 6, 7]); // row 3 has no target
/// let TargetValues::Classes(labels) = &target.targets else { unreachable!() };
/// let split = stratified_split(labels, 0.0, 0.3, 7).select(&target.rows);
/// assert_eq!(split.train.len() + split.test.len(), 7);
/// let pipeline = FittedPipeline::fit(&table, &split.train, &config)?;
/// assert_eq!(pipeline.d_output(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As for the target in [`FittedPipeline::fit`].
pub fn encode_target(table: &Table, config: &PipelineConfig) -> Result<EncodedTarget> {
    config.validate(table)?;
    let col = find_target(table, &config.target)?;
    let markers = config.missing_markers();
    let zero = config.zero_as_missing.contains(&config.target);
    let rows: Vec<usize> = (0..table.n_rows())
        .filter(|&r| {
            let cell = table.cell(r, col);
            !(markers.is_missing(cell) || (zero && is_zero(cell)))
        })
        .collect();
    if rows.is_empty() {
        return Err(DataError::TargetAllMissing {
            file: table.source().to_string(),
            target: config.target.clone(),
        });
    }
    let encoding = fit_target(table, &rows, col, config, &markers, zero)?;
    let mut classes = Vec::new();
    let mut values = Vec::new();
    for &row in &rows {
        match encode_target_cell(&encoding, table, row, col)? {
            Target::Class(c) => classes.push(c),
            Target::Value(v) => values.push(v),
        }
    }
    Ok(match encoding {
        TargetEncoding::Classes { classes: names, .. } => EncodedTarget {
            rows,
            targets: TargetValues::Classes(classes),
            classes: Some(names),
        },
        TargetEncoding::Regression => EncodedTarget {
            rows,
            targets: TargetValues::Values(values),
            classes: None,
        },
    })
}

enum Target {
    Class(usize),
    Value(f32),
}

fn encode_target_cell(
    encoding: &TargetEncoding,
    table: &Table,
    row: usize,
    col: usize,
) -> Result<Target> {
    let cell = table.cell(row, col);
    match encoding {
        TargetEncoding::Classes {
            threshold: Some(above),
            ..
        } => {
            let x = parse_finite(table, row, col, cell)?;
            Ok(Target::Class(usize::from(x > *above)))
        }
        TargetEncoding::Classes {
            classes,
            threshold: None,
        } => {
            if let Some(i) = classes.iter().position(|c| c == cell) {
                return Ok(Target::Class(i));
            }
            // "1.0" in a file whose training classes were written "1".
            if let Some(x) = finite_number(cell)
                && let Some(i) = classes.iter().position(|c| finite_number(c) == Some(x))
            {
                return Ok(Target::Class(i));
            }
            Err(DataError::UnseenClass {
                file: table.source().to_string(),
                line: table.line(row),
                column: table.headers()[col].clone(),
                value: cell.to_string(),
                classes: classes.clone(),
            })
        }
        TargetEncoding::Regression => {
            let x = parse_finite(table, row, col, cell)? as f32;
            if !x.is_finite() {
                return Err(non_finite(table, row, col, cell));
            }
            Ok(Target::Value(x))
        }
    }
}

fn fit_target(
    table: &Table,
    rows: &[usize],
    col: usize,
    config: &PipelineConfig,
    markers: &MissingMarkers,
    zero: bool,
) -> Result<TargetEncoding> {
    let distinct_sorted = || {
        let mut counts = BTreeMap::<&str, usize>::new();
        for &r in rows {
            *counts.entry(table.cell(r, col)).or_default() += 1;
        }
        let mut classes: Vec<String> = counts.keys().map(|c| c.to_string()).collect();
        sort_labels(&mut classes);
        merge_equal_numbers(classes, |c| counts[c])
    };
    let encoding = match config.target_rule {
        TargetRule::Classes => TargetEncoding::Classes {
            classes: distinct_sorted(),
            threshold: None,
        },
        TargetRule::Regression => TargetEncoding::Regression,
        TargetRule::Threshold { above } => TargetEncoding::Classes {
            classes: vec!["0".into(), "1".into()],
            threshold: Some(above),
        },
        TargetRule::Auto => {
            let stats = ColumnStats::compute(table, col, rows, |c| {
                markers.is_missing(c) || (zero && is_zero(c))
            });
            if stats.numeric && stats.n_non_finite > 0 {
                // Name the first bad cell.
                for &r in rows {
                    parse_finite(table, r, col, table.cell(r, col))?;
                }
            }
            if stats.numeric && !(stats.integer_valued() && stats.n_distinct <= MAX_CLASSES_AUTO) {
                TargetEncoding::Regression
            } else {
                TargetEncoding::Classes {
                    classes: distinct_sorted(),
                    threshold: None,
                }
            }
        }
    };
    // Encode every training target: checks regression and threshold values, and counts classes.
    let mut seen = BTreeMap::new();
    for &r in rows {
        if let Target::Class(c) = encode_target_cell(&encoding, table, r, col)? {
            seen.entry(c).or_insert(r);
        }
    }
    if let TargetEncoding::Classes { classes, .. } = &encoding
        && seen.len() < 2
    {
        let (&label, _) = seen.iter().next().expect("rows is not empty");
        return Err(DataError::OneClass {
            file: table.source().to_string(),
            target: config.target.clone(),
            class: classes[label].clone(),
        });
    }
    Ok(encoding)
}

/// Columns left out are listed one per line up to this many; beyond, summarised by reason.
const LEFT_OUT_LISTED: usize = 12;

/// The columns left out, for the user: one line each, or for a wide table (thousands of
/// constant columns) one line per reason with the first few names and a count.
fn summarise_left_out(left_out: Vec<(&'static str, &String, String)>) -> Vec<String> {
    if left_out.len() <= LEFT_OUT_LISTED {
        return left_out.into_iter().map(|(_, _, line)| line).collect();
    }
    let mut reasons: Vec<(&str, Vec<&String>)> = Vec::new();
    for (reason, name, _) in &left_out {
        match reasons.iter_mut().find(|(r, _)| r == reason) {
            Some((_, names)) => names.push(name),
            None => reasons.push((reason, vec![name])),
        }
    }
    reasons
        .into_iter()
        .map(|(reason, names)| {
            format!(
                "{} {reason} column(s) left out: {}",
                names.len(),
                first_names(&names)
            )
        })
        .collect()
}

/// The first five names quoted, then how many more: `` `a`, `b`, `c`, `d`, `e` and 7 more``.
fn first_names(names: &[&String]) -> String {
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    match names.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

fn fit_numeric(
    table: &Table,
    col: usize,
    present: &[usize],
    config: &PipelineConfig,
) -> Result<(FeatureEncoding, Option<(f64, f64)>)> {
    let name = &table.headers()[col];
    let values = present
        .iter()
        .map(|&r| parse_finite(table, r, col, table.cell(r, col)))
        .collect::<Result<Vec<f64>>>()?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    let std = if std > 0.0 && std.is_finite() {
        std
    } else {
        1.0
    };
    let (field, rule) = impute_rule(config, name);
    let impute = match rule {
        Impute::Mean => mean,
        Impute::Median => {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            if sorted.len() % 2 == 0 {
                (sorted[mid - 1] + sorted[mid]) / 2.0
            } else {
                sorted[mid]
            }
        }
        Impute::MostFrequent => {
            let mut counts: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
            for &x in &values {
                counts.entry((x + 0.0).to_bits()).or_insert((x, 0)).1 += 1;
            }
            // Highest count; ties go to the smallest value.
            counts
                .values()
                .copied()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)))
                .map_or(mean, |(x, _)| x)
        }
        Impute::Constant { value } => {
            finite_number(value).ok_or_else(|| DataError::InvalidConfig {
                field,
                expected: format!("a finite number, as column `{name}` is numeric"),
                found: value.clone(),
            })?
        }
    };
    let range = values.iter().fold(None, |r: Option<(f64, f64)>, &x| {
        Some(r.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
    });
    Ok((FeatureEncoding::Numeric { mean, std, impute }, range))
}

fn fit_categorical(
    table: &Table,
    col: usize,
    present: &[usize],
    n_missing: usize,
    config: &PipelineConfig,
) -> Result<FeatureEncoding> {
    let name = &table.headers()[col];
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for &r in present {
        *counts.entry(table.cell(r, col)).or_default() += 1;
    }
    let mut categories: Vec<String> = counts.keys().map(|c| c.to_string()).collect();
    sort_labels(&mut categories);
    let (field, rule) = impute_rule(config, name);
    let impute = match rule {
        Impute::Constant { value } => {
            if n_missing > 0 && !categories.contains(value) {
                categories.push(value.clone());
                sort_labels(&mut categories);
            }
            value.clone()
        }
        Impute::Mean | Impute::Median if config.impute_columns.contains_key(name) => {
            return Err(DataError::InvalidConfig {
                field,
                expected: format!("most_frequent or constant, as column `{name}` is categorical"),
                found: if *rule == Impute::Mean {
                    "mean"
                } else {
                    "median"
                }
                .into(),
            });
        }
        _ => {
            // Highest count; ties go to the first in sorted order.
            let mut best = &categories[0];
            for c in &categories {
                if counts[c.as_str()] > counts[best.as_str()] {
                    best = c;
                }
            }
            best.clone()
        }
    };
    Ok(FeatureEncoding::Categorical { categories, impute })
}

fn impute_rule<'a>(config: &'a PipelineConfig, name: &str) -> (String, &'a Impute) {
    match config.impute_columns.get(name) {
        Some(rule) => (format!("impute_columns.{name}"), rule),
        None => ("impute".to_string(), &config.impute),
    }
}

fn find_target(table: &Table, target: &str) -> Result<usize> {
    table
        .column_index(target)
        .ok_or_else(|| DataError::TargetNotFound {
            file: table.source().to_string(),
            target: target.to_string(),
            available: table.headers().to_vec(),
        })
}

fn check_rows(table: &Table, rows: &[usize]) -> Result<()> {
    match rows.iter().find(|&&r| r >= table.n_rows()) {
        Some(&row) => Err(DataError::RowOutOfRange {
            file: table.source().to_string(),
            row,
            n_rows: table.n_rows(),
        }),
        None => Ok(()),
    }
}

fn finite_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn parse_finite(table: &Table, row: usize, col: usize, cell: &str) -> Result<f64> {
    match cell.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(non_finite(table, row, col, cell)),
        Err(_) => Err(DataError::NotNumeric {
            file: table.source().to_string(),
            line: table.line(row),
            column: table.headers()[col].clone(),
            value: cell.to_string(),
        }),
    }
}

fn non_finite(table: &Table, row: usize, col: usize, cell: &str) -> DataError {
    DataError::NonFinite {
        file: table.source().to_string(),
        line: table.line(row),
        column: table.headers()[col].clone(),
        value: cell.to_string(),
    }
}

/// Merges labels (sorted by [`sort_labels`]) that spell the same number — `-0` and `0`, `1`
/// and `1.0` — into one class, named by its most frequent spelling (then the shortest, then
/// one without a sign). Labels that are not all numbers are kept as they are.
fn merge_equal_numbers(labels: Vec<String>, count: impl Fn(&str) -> usize) -> Vec<String> {
    if !labels.iter().all(|l| finite_number(l).is_some()) {
        return labels;
    }
    let mut merged: Vec<(f64, String)> = Vec::with_capacity(labels.len());
    for label in labels {
        let x = finite_number(&label).unwrap_or(0.0);
        match merged.last_mut() {
            Some((y, kept)) if *y == x => {
                let key = |l: &str| (std::cmp::Reverse(count(l)), l.len(), l.starts_with('-'));
                if key(&label) < key(kept) {
                    *kept = label;
                }
            }
            _ => merged.push((x, label)),
        }
    }
    merged.into_iter().map(|(_, label)| label).collect()
}

/// Sorts labels numerically when every one is a finite number (ties by text), else by text.
pub(crate) fn sort_labels(labels: &mut [String]) {
    if labels.iter().all(|l| finite_number(l).is_some()) {
        labels.sort_by(|a, b| {
            let (x, y) = (
                finite_number(a).unwrap_or(0.0),
                finite_number(b).unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        labels.sort();
    }
}
