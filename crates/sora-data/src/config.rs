//! The preprocessing configuration (serde, with defaults).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::ColumnStats;
use crate::{
    ColumnKind, DEFAULT_MISSING_MARKERS, DataError, MissingMarkers, Result, Schema, Table,
};

/// How the target column becomes a training target.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetRule {
    /// Classification for a non-numeric target, or a numeric one with at most
    /// [`MAX_CLASSES_AUTO`](crate::MAX_CLASSES_AUTO) distinct values, all whole numbers;
    /// regression otherwise.
    #[default]
    Auto,
    /// Classification: each distinct value is a class.
    Classes,
    /// Regression on the numeric value.
    Regression,
    /// Binary classification of a numeric value: class `"1"` when the value is greater than
    /// `above`, `"0"` otherwise.
    Threshold {
        /// The threshold (finite).
        above: f64,
    },
}

/// How missing cells of a feature column are filled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Impute {
    /// The training mean (numeric columns; categorical ones use [`Impute::MostFrequent`]).
    #[default]
    Mean,
    /// The training median (numeric columns; categorical ones use [`Impute::MostFrequent`]).
    Median,
    /// The most frequent training value; ties go to the first in sorted order.
    MostFrequent,
    /// A fixed value. For a numeric column it must be a finite number. For a categorical column
    /// it becomes a category of its own when the column has missing training cells.
    Constant {
        /// The value, as it would be written in the CSV.
        value: String,
    },
}

impl std::str::FromStr for Impute {
    type Err = DataError;

    /// `mean`, `median`, `most-frequent` (or `most_frequent`), or `constant=VALUE`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "mean" => Impute::Mean,
            "median" => Impute::Median,
            "most-frequent" | "most_frequent" => Impute::MostFrequent,
            other => match other.strip_prefix("constant=") {
                Some(value) => Impute::Constant {
                    value: value.to_string(),
                },
                None => {
                    return Err(DataError::InvalidConfig {
                        field: "impute".into(),
                        expected: "mean, median, most-frequent or constant=VALUE".into(),
                        found: format!("{other:?}"),
                    });
                }
            },
        })
    }
}

impl std::fmt::Display for Impute {
    /// The form [`FromStr`](std::str::FromStr) reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Impute::Mean => f.write_str("mean"),
            Impute::Median => f.write_str("median"),
            Impute::MostFrequent => f.write_str("most-frequent"),
            Impute::Constant { value } => write!(f, "constant={value}"),
        }
    }
}

/// What fitting does with a column of numbers that holds a few text cells
/// ([`TextAmongNumbers`](crate::TextAmongNumbers)): read as they are, the text cells make
/// every number a category of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextCells {
    /// Refuse to fit, naming the cells ([`DataError::TextAmongNumbers`]).
    #[default]
    Refuse,
    /// Read the text cells as missing values: the column stays numeric (and at transform
    /// time, any cell of it that is not a number is missing too).
    Missing,
    /// Read the column as categories, every value one of them, as a column of text.
    Categorical,
}

impl std::str::FromStr for TextCells {
    type Err = DataError;

    /// `refuse`, `missing` or `categorical`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "refuse" => TextCells::Refuse,
            "missing" => TextCells::Missing,
            "categorical" => TextCells::Categorical,
            other => {
                return Err(DataError::InvalidConfig {
                    field: "text_cells".into(),
                    expected: "refuse, missing or categorical".into(),
                    found: format!("{other:?}"),
                });
            }
        })
    }
}

impl std::fmt::Display for TextCells {
    /// The form [`FromStr`](std::str::FromStr) reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextCells::Refuse => "refuse",
            TextCells::Missing => "missing",
            TextCells::Categorical => "categorical",
        })
    }
}

/// The preprocessing configuration: which column is the target and how every other column
/// becomes model input. Every field but `target` has a default.
///
/// ```
/// use sora_data::{Impute, PipelineConfig, TargetRule};
///
/// # fn main() -> Result<(), serde_json::Error> {
/// let config: PipelineConfig = serde_json::from_str(r#"{
///     "target": "num",
///     "target_rule": { "kind": "threshold", "above": 0 },
///     "impute_columns": { "ca": { "kind": "median" } },
///     "missing_indicators": true
/// }"#)?;
/// assert_eq!(config.target_rule, TargetRule::Threshold { above: 0.0 });
/// assert_eq!(config.impute, Impute::Mean);
/// assert_eq!(config.missing_markers.len(), 7);
/// assert_eq!(config, {
///     let mut c = PipelineConfig::new("num");
///     c.target_rule = TargetRule::Threshold { above: 0.0 };
///     c.impute_columns.insert("ca".into(), Impute::Median);
///     c.missing_indicators = true;
///     c
/// });
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The target column.
    pub target: String,
    /// How the target becomes a training target (default [`TargetRule::Auto`]).
    #[serde(default)]
    pub target_rule: TargetRule,
    /// Cells that mean "missing" (default [`DEFAULT_MISSING_MARKERS`]).
    #[serde(default = "default_markers")]
    pub missing_markers: Vec<String>,
    /// Default imputation (default [`Impute::Mean`]; categorical columns use
    /// [`Impute::MostFrequent`] unless this is [`Impute::Constant`]).
    #[serde(default)]
    pub impute: Impute,
    /// Per-column imputation, overriding `impute`. [`Impute::Mean`] and [`Impute::Median`]
    /// are errors for a categorical column.
    #[serde(default)]
    pub impute_columns: BTreeMap<String, Impute>,
    /// Add a 0/1 column `<col>_missing` after every feature column that has missing cells in
    /// the training rows (default false).
    #[serde(default)]
    pub missing_indicators: bool,
    /// Drop rows with any missing feature cell instead of imputing (default false). Rows with
    /// a missing target are always dropped.
    #[serde(default)]
    pub drop_missing_rows: bool,
    /// Leave out feature columns whose missing fraction in the training rows is greater than
    /// this (in `[0, 1]`). A column missing in every training row is always left out.
    #[serde(default)]
    pub drop_columns_over: Option<f64>,
    /// Columns in which the value 0 means missing (e.g. insulin in the Pima data).
    #[serde(default)]
    pub zero_as_missing: Vec<String>,
    /// Column kinds that override inference.
    #[serde(default)]
    pub kinds: BTreeMap<String, ColumnKind>,
    /// Columns to leave out. Identifier and constant columns are left out anyway.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// What a column of numbers holding a few text cells becomes, unless `kinds` names it
    /// (default [`TextCells::Refuse`]).
    #[serde(default)]
    pub text_cells: TextCells,
}

fn default_markers() -> Vec<String> {
    DEFAULT_MISSING_MARKERS.map(String::from).to_vec()
}

impl PipelineConfig {
    /// A configuration with the given target and every other field at its default.
    pub fn new(target: impl Into<String>) -> Self {
        PipelineConfig {
            target: target.into(),
            target_rule: TargetRule::Auto,
            missing_markers: default_markers(),
            impute: Impute::Mean,
            impute_columns: BTreeMap::new(),
            missing_indicators: false,
            drop_missing_rows: false,
            drop_columns_over: None,
            zero_as_missing: Vec::new(),
            kinds: BTreeMap::new(),
            ignore: Vec::new(),
            text_cells: TextCells::Refuse,
        }
    }

    /// The missing markers as a [`MissingMarkers`].
    pub fn missing_markers(&self) -> MissingMarkers {
        MissingMarkers::new(self.missing_markers.iter().cloned())
    }

    /// The schema of `table` as this configuration sees it: its missing markers,
    /// `zero_as_missing` and `kinds` overrides applied, over all rows.
    pub fn infer_schema(&self, table: &Table) -> Schema {
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let mut schema = crate::infer_schema(table, &self.missing_markers());
        for (col, entry) in schema.columns.iter_mut().enumerate() {
            if self.zero_as_missing.contains(&entry.name) {
                let markers = self.missing_markers();
                let stats = ColumnStats::compute(table, col, &rows, |c| {
                    markers.is_missing(c) || is_zero(c)
                });
                *entry = stats.schema(table, col);
            }
            if let Some(&kind) = self.kinds.get(&entry.name) {
                entry.kind = kind;
            }
        }
        schema
    }

    /// Whether `target_rule` makes the target a classification target, judged from a schema
    /// of the table (e.g. from [`PipelineConfig::infer_schema`]).
    ///
    /// [`TargetRule::Auto`] applies the same rule as fitting: classification unless the target
    /// is numeric with more than [`MAX_CLASSES_AUTO`](crate::MAX_CLASSES_AUTO) distinct values
    /// or a value that is not a finite whole number. Fitting judges on the training rows only,
    /// so the two can differ when a split leaves few distinct values in training.
    ///
    /// ```
    /// use sora_data::{PipelineConfig, Table};
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let table = Table::from_reader("x,y\n1,0\n2,1\n3,2.5\n".as_bytes(), "t.csv")?;
    /// let config = PipelineConfig::new("y");
    /// assert!(!config.is_classification(&config.infer_schema(&table))?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::TargetNotFound`] when the schema has no target column.
    pub fn is_classification(&self, schema: &Schema) -> Result<bool> {
        let column = schema
            .column(&self.target)
            .ok_or_else(|| DataError::TargetNotFound {
                file: schema.source.clone(),
                target: self.target.clone(),
                available: schema.columns.iter().map(|c| c.name.clone()).collect(),
            })?;
        Ok(match self.target_rule {
            TargetRule::Classes | TargetRule::Threshold { .. } => true,
            TargetRule::Regression => false,
            TargetRule::Auto => match column.numeric {
                Some(summary) => {
                    summary.all_integer
                        && column.n_non_finite == 0
                        && column.n_distinct <= crate::MAX_CLASSES_AUTO
                }
                // Text, or numeric with no finite value (fitting reports the bad cells).
                None => column.n_non_finite == 0,
            },
        })
    }

    /// Checks the configuration against `table`: every column named exists, fractions are in
    /// range, the threshold is finite.
    pub fn validate(&self, table: &Table) -> Result<()> {
        let named = self
            .ignore
            .iter()
            .map(|c| ("ignore", c))
            .chain(self.zero_as_missing.iter().map(|c| ("zero_as_missing", c)))
            .chain(self.kinds.keys().map(|c| ("kinds", c)))
            .chain(self.impute_columns.keys().map(|c| ("impute_columns", c)));
        for (field, column) in named {
            if table.column_index(column).is_none() {
                return Err(DataError::UnknownColumn {
                    file: table.source().to_string(),
                    field: field.to_string(),
                    column: column.clone(),
                });
            }
        }
        if let Some(f) = self.drop_columns_over
            && !(0.0..=1.0).contains(&f)
        {
            return Err(DataError::InvalidConfig {
                field: "drop_columns_over".into(),
                expected: "a fraction in [0, 1]".into(),
                found: f.to_string(),
            });
        }
        if let TargetRule::Threshold { above } = self.target_rule
            && !above.is_finite()
        {
            return Err(DataError::InvalidConfig {
                field: "target_rule.above".into(),
                expected: "a finite number".into(),
                found: above.to_string(),
            });
        }
        Ok(())
    }
}

/// Whether a cell is the number zero (`0`, `0.0`, `-0`, …).
pub(crate) fn is_zero(cell: &str) -> bool {
    cell.parse::<f64>().is_ok_and(|x| x == 0.0)
}
