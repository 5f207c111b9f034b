//! Missing-value markers, column kinds and schema inference.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Table;

/// The cells that mean "missing" unless configured otherwise.
pub const DEFAULT_MISSING_MARKERS: [&str; 7] = ["", "NA", "N/A", "?", "nan", "NaN", "null"];

/// Categorical columns with more non-missing rows than this, all distinct, are identifiers;
/// numeric targets with at most this many distinct integer values are classes.
pub const MAX_CLASSES_AUTO: usize = 20;

/// The set of cell values that mean "missing", matched exactly against trimmed cells.
///
/// ```
/// use sora_data::MissingMarkers;
///
/// let markers = MissingMarkers::default();
/// assert!(markers.is_missing("") && markers.is_missing("NA") && markers.is_missing("?"));
/// assert!(!markers.is_missing("na") && !markers.is_missing("0"));
/// let custom = MissingMarkers::new(["-999"]);
/// assert!(custom.is_missing("-999") && !custom.is_missing(""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MissingMarkers(Vec<String>);

impl MissingMarkers {
    /// Markers from a list of values.
    pub fn new<I, S>(markers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MissingMarkers(markers.into_iter().map(Into::into).collect())
    }

    /// Whether `cell` (already trimmed) is one of the markers.
    pub fn is_missing(&self, cell: &str) -> bool {
        self.0.iter().any(|m| m == cell)
    }

    /// The markers.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Default for MissingMarkers {
    /// [`DEFAULT_MISSING_MARKERS`].
    fn default() -> Self {
        MissingMarkers::new(DEFAULT_MISSING_MARKERS)
    }
}

/// What a column holds, which decides how it becomes model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Every non-missing cell is a number: standardized.
    Numeric,
    /// Text (or numbers treated as labels): one-hot encoded.
    Categorical,
    /// At most one distinct non-missing value: left out.
    Constant,
    /// A row identifier (every value distinct): left out.
    Identifier,
}

impl ColumnKind {
    /// The name used in configs and in the schema table.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Constant => "constant",
            ColumnKind::Identifier => "identifier",
        }
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Summary of the finite values of a numeric column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Whether every finite value is a whole number.
    pub all_integer: bool,
}

/// What schema inference found in one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSchema {
    /// The column name.
    pub name: String,
    /// The inferred kind.
    pub kind: ColumnKind,
    /// Cells that are missing.
    pub n_missing: usize,
    /// `n_missing` over the number of rows (0 for no rows).
    pub missing_fraction: f64,
    /// Distinct non-missing values (numeric columns compare parsed values, so `1` and `1.0`
    /// are one value).
    pub n_distinct: usize,
    /// Cells that parse as numbers but not finite ones (`inf`, `1e999`). A column whose other
    /// cells are numbers is still [`ColumnKind::Numeric`]; fitting or transforming such a cell
    /// is a [`DataError::NonFinite`](crate::DataError::NonFinite).
    pub n_non_finite: usize,
    /// For numeric columns with at least one finite value: min, max, mean.
    pub numeric: Option<NumericSummary>,
    /// For a column of numbers but for a few text cells: those cells, which make it
    /// categorical when read as they are (see [`TextAmongNumbers`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_among_numbers: Option<TextAmongNumbers>,
}

/// A few text cells in a column of numbers: at most one cell in [`TEXT_SHARE_LIMIT`] is text,
/// and the numbers take more than [`MAX_CLASSES_AUTO`] distinct values. Read as they are, the
/// text cells turn every number into a category of its own, so fitting refuses such a column
/// unless told what the cells mean ([`TextCells`](crate::TextCells)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAmongNumbers {
    /// Cells that are not numbers.
    pub n_text: usize,
    /// Cells that are numbers.
    pub n_numbers: usize,
    /// Distinct numbers.
    pub n_distinct_numbers: usize,
    /// The first text cells: (file line, cell), at most [`TEXT_EXAMPLES`].
    pub examples: Vec<(u64, String)>,
}

/// A column with more than one text cell in this many present cells is text, not numbers
/// with a few stray cells.
pub const TEXT_SHARE_LIMIT: usize = 20;

/// Columns a schema's `Display` lists; the others are counted by kind.
pub const SCHEMA_LISTED: usize = 40;

/// Text cells named per column when a few of them sit among numbers.
pub const TEXT_EXAMPLES: usize = 3;

impl TextAmongNumbers {
    /// The cells as `line 17: `abc`, line 90: `-``, with a count of the others.
    pub fn cells(&self) -> String {
        let mut text: Vec<String> = self
            .examples
            .iter()
            .map(|(line, cell)| format!("line {line}: `{cell}`"))
            .collect();
        if self.n_text > self.examples.len() {
            text.push(format!("{} more", self.n_text - self.examples.len()));
        }
        text.join(", ")
    }
}

/// The inferred schema of a table, one entry per column in table order.
///
/// Its `Display` is an aligned table for a command line.
///
/// ```
/// use sora_data::{ColumnKind, MissingMarkers, Table, infer_schema};
///
/// # fn main() -> Result<(), sora_data::DataError> {
/// let table = Table::from_reader("age,city,k\n31,Oslo,1\nNA,Rome,1\n45,Oslo,1\n".as_bytes(), "p.csv")?;
/// let schema = infer_schema(&table, &MissingMarkers::default());
/// let age = schema.column("age").unwrap();
/// assert_eq!((age.kind, age.n_missing, age.n_distinct), (ColumnKind::Numeric, 1, 2));
/// assert_eq!(age.numeric.unwrap().mean, 38.0);
/// assert_eq!(schema.column("city").unwrap().kind, ColumnKind::Categorical);
/// assert_eq!(schema.column("k").unwrap().kind, ColumnKind::Constant);
/// println!("{schema}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The table's source (file name).
    pub source: String,
    /// Number of rows described.
    pub n_rows: usize,
    /// One entry per column, in table order.
    pub columns: Vec<ColumnSchema>,
}

impl Schema {
    /// The entry of the column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Infers the kind and statistics of every column of `table` over all its rows.
///
/// - A cell is missing when it equals one of `markers`.
/// - **Constant**: at most one distinct non-missing value (an entirely missing column too).
/// - **Numeric**: every non-missing cell parses as a number (`f64`, so `inf` and `1e999`
///   parse too; they are counted in [`ColumnSchema::n_non_finite`] and rejected when fitted
///   or transformed).
/// - **Identifier**: a non-numeric column whose values are all distinct over more than
///   [`MAX_CLASSES_AUTO`] non-missing rows, or an integer-valued numeric column named `id`
///   (any case) or ending in `_id` whose values are all distinct.
/// - **Categorical**: everything else.
pub fn infer_schema(table: &Table, markers: &MissingMarkers) -> Schema {
    let rows: Vec<usize> = (0..table.n_rows()).collect();
    let columns = (0..table.n_cols())
        .map(|col| {
            let stats = ColumnStats::compute(table, col, &rows, |c| markers.is_missing(c));
            stats.schema(table, col)
        })
        .collect();
    Schema {
        source: table.source().to_string(),
        n_rows: table.n_rows(),
        columns,
    }
}

/// Statistics of one column over some rows, shared by schema inference and fitting.
#[derive(Debug, Clone)]
pub(crate) struct ColumnStats {
    pub n_rows: usize,
    pub n_missing: usize,
    pub n_distinct: usize,
    /// Every non-missing cell parses as `f64` (vacuously true when all are missing).
    pub numeric: bool,
    pub n_non_finite: usize,
    pub summary: Option<NumericSummary>,
    /// Present cells that do not parse as numbers, and the rows of the first few.
    pub n_text: usize,
    pub text_rows: Vec<usize>,
    /// Present cells that parse as numbers, and their distinct values.
    pub n_numbers: usize,
    pub n_distinct_numbers: usize,
}

impl ColumnStats {
    pub fn compute(
        table: &Table,
        col: usize,
        rows: &[usize],
        is_missing: impl Fn(&str) -> bool,
    ) -> ColumnStats {
        let mut n_missing = 0;
        let mut texts: HashSet<&str> = HashSet::new();
        let mut numbers: HashSet<u64> = HashSet::new();
        let mut numeric = true;
        let mut n_non_finite = 0;
        let (mut min, mut max, mut sum, mut n_finite) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0);
        let mut all_integer = true;
        let (mut n_text, mut text_rows) = (0, Vec::new());
        for &row in rows {
            let cell = table.cell(row, col);
            if is_missing(cell) {
                n_missing += 1;
                continue;
            }
            texts.insert(cell);
            // Past the first text cell, numbers are only counted (to tell a column of text
            // from numbers with a few stray cells).
            if !numeric {
                match cell.parse::<f64>() {
                    Ok(x) => {
                        numbers.insert(canonical_bits(x));
                    }
                    Err(_) => {
                        n_text += 1;
                        if text_rows.len() < TEXT_EXAMPLES {
                            text_rows.push(row);
                        }
                    }
                }
                continue;
            }
            match cell.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    numbers.insert(canonical_bits(x));
                    min = min.min(x);
                    max = max.max(x);
                    sum += x;
                    n_finite += 1;
                    all_integer &= x.fract() == 0.0;
                }
                Ok(x) => {
                    numbers.insert(canonical_bits(x));
                    n_non_finite += 1;
                }
                Err(_) => {
                    numeric = false;
                    n_text = 1;
                    text_rows.push(row);
                }
            }
        }
        let summary = (numeric && n_finite > 0).then(|| NumericSummary {
            min,
            max,
            mean: sum / n_finite as f64,
            all_integer,
        });
        let n_present = rows.len() - n_missing;
        ColumnStats {
            n_rows: rows.len(),
            n_missing,
            n_distinct: if numeric { numbers.len() } else { texts.len() },
            numeric,
            n_non_finite: if numeric { n_non_finite } else { 0 },
            summary,
            n_text,
            text_rows,
            n_numbers: n_present - n_text,
            n_distinct_numbers: numbers.len(),
        }
    }

    /// Numbers with a few stray text cells ([`TextAmongNumbers`]), or `None`.
    pub fn text_among_numbers(&self, table: &Table, col: usize) -> Option<TextAmongNumbers> {
        let few = self.n_text > 0 && self.n_text * TEXT_SHARE_LIMIT <= self.n_present();
        (few && self.n_distinct_numbers > MAX_CLASSES_AUTO).then(|| TextAmongNumbers {
            n_text: self.n_text,
            n_numbers: self.n_numbers,
            n_distinct_numbers: self.n_distinct_numbers,
            examples: self
                .text_rows
                .iter()
                .map(|&r| (table.line(r), table.cell(r, col).to_string()))
                .collect(),
        })
    }

    pub fn n_present(&self) -> usize {
        self.n_rows - self.n_missing
    }

    pub fn missing_fraction(&self) -> f64 {
        if self.n_rows == 0 {
            0.0
        } else {
            self.n_missing as f64 / self.n_rows as f64
        }
    }

    /// Whether every non-missing value is a finite whole number.
    pub fn integer_valued(&self) -> bool {
        self.numeric && self.n_non_finite == 0 && self.summary.is_some_and(|s| s.all_integer)
    }

    pub fn kind(&self, name: &str) -> ColumnKind {
        let all_distinct = self.n_distinct == self.n_present();
        if self.n_distinct <= 1 {
            ColumnKind::Constant
        } else if self.numeric {
            if all_distinct && self.integer_valued() && is_id_name(name) {
                ColumnKind::Identifier
            } else {
                ColumnKind::Numeric
            }
        } else if all_distinct && self.n_present() > MAX_CLASSES_AUTO {
            ColumnKind::Identifier
        } else {
            ColumnKind::Categorical
        }
    }

    pub fn schema(&self, table: &Table, col: usize) -> ColumnSchema {
        let name = &table.headers()[col];
        ColumnSchema {
            text_among_numbers: self.text_among_numbers(table, col),
            name: name.to_string(),
            kind: self.kind(name),
            n_missing: self.n_missing,
            missing_fraction: self.missing_fraction(),
            n_distinct: self.n_distinct,
            n_non_finite: self.n_non_finite,
            numeric: self.summary,
        }
    }
}

fn canonical_bits(x: f64) -> u64 {
    if x == 0.0 {
        0.0f64.to_bits()
    } else if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

fn is_id_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("id") || name.to_ascii_lowercase().ends_with("_id")
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} rows, {} columns",
            self.source,
            self.n_rows,
            self.columns.len()
        )?;
        let header = [
            "column",
            "kind",
            "missing",
            "missing %",
            "distinct",
            "range",
        ];
        let listed = &self.columns[..self.columns.len().min(SCHEMA_LISTED)];
        let rows: Vec<[String; 6]> = listed
            .iter()
            .map(|c| {
                let mut range = c
                    .numeric
                    .map_or_else(|| "-".to_string(), |s| format!("{} .. {}", s.min, s.max));
                if c.n_non_finite > 0 {
                    range.push_str(&format!(" ({} non-finite)", c.n_non_finite));
                }
                if let Some(mixed) = &c.text_among_numbers {
                    range = format!(
                        "numbers but for {} text cell(s): {}",
                        mixed.n_text,
                        mixed.cells()
                    );
                }
                [
                    c.name.clone(),
                    c.kind.to_string(),
                    c.n_missing.to_string(),
                    format!("{:.1}%", 100.0 * c.missing_fraction),
                    c.n_distinct.to_string(),
                    range,
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header = header.map(str::to_string);
        for row in std::iter::once(&header).chain(&rows) {
            // Names and kinds left-aligned, counts right-aligned, the range last and unpadded.
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            )?;
        }
        let rest = &self.columns[listed.len()..];
        if !rest.is_empty() {
            let mut kinds: Vec<(ColumnKind, usize)> = Vec::new();
            for c in rest {
                match kinds.iter_mut().find(|(k, _)| *k == c.kind) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((c.kind, 1)),
                }
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            writeln!(f, "… {} more columns: {}", rest.len(), kinds.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        Table::from_reader(text.as_bytes(), "s.csv").unwrap()
    }

    #[test]
    fn kinds_and_counts() {
        let t = table("id,x,c,k,m\n1,1.5,a,7,NA\n2,1.0,b,7,\n3,1,a,7,?\n4,?,b,,null\n");
        let s = infer_schema(&t, &MissingMarkers::default());
        let kinds: Vec<_> = s.columns.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ColumnKind::Identifier,
                ColumnKind::Numeric,
                ColumnKind::Categorical,
                ColumnKind::Constant,
                ColumnKind::Constant
            ]
        );
        let x = s.column("x").unwrap();
        // "1.0" and "1" are the same number.
        assert_eq!((x.n_missing, x.n_distinct), (1, 2));
        assert_eq!(x.missing_fraction, 0.25);
        let summary = x.numeric.unwrap();
        assert_eq!((summary.min, summary.max), (1.0, 1.5));
        assert!(!summary.all_integer);
        assert_eq!(s.column("m").unwrap().n_missing, 4);
    }

    #[test]
    fn text_identifier_needs_more_than_20_rows() {
        let mut text = String::from("name,v\n");
        for i in 0..21 {
            text.push_str(&format!("n{i},{}\n", i % 3));
        }
        let s = infer_schema(&table(&text), &MissingMarkers::default());
        assert_eq!(s.column("name").unwrap().kind, ColumnKind::Identifier);
        let short: String = text.lines().take(21).map(|l| format!("{l}\n")).collect();
        let s = infer_schema(&table(&short), &MissingMarkers::default());
        assert_eq!(s.column("name").unwrap().kind, ColumnKind::Categorical);
    }

    #[test]
    fn numeric_id_needs_an_id_name_and_distinct_integers() {
        let t = table("user_id,ID,idx,order_id\n1,5,1,1\n2,6,2,1\n3,7,3,2\n");
        let s = infer_schema(&t, &MissingMarkers::default());
        assert_eq!(s.column("user_id").unwrap().kind, ColumnKind::Identifier);
        assert_eq!(s.column("ID").unwrap().kind, ColumnKind::Identifier);
        assert_eq!(s.column("idx").unwrap().kind, ColumnKind::Numeric);
        assert_eq!(s.column("order_id").unwrap().kind, ColumnKind::Numeric);
    }

    #[test]
    fn non_finite_cells_are_counted_not_hidden() {
        let t = table("x\n1\ninf\n1e999\n2\n");
        let s = infer_schema(&t, &MissingMarkers::default());
        let x = s.column("x").unwrap();
        assert_eq!(x.kind, ColumnKind::Numeric);
        assert_eq!(x.n_non_finite, 2);
        assert_eq!(x.numeric.unwrap().max, 2.0);
        assert!(s.to_string().contains("(2 non-finite)"));
    }

    #[test]
    fn wide_tables_are_summarised() {
        let header: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..100).map(|i| (i % 2).to_string()).collect();
        let text = format!(
            "{}\n{}\n{}\n",
            header.join(","),
            row.join(","),
            row.join(",")
        );
        let shown = infer_schema(&table(&text), &MissingMarkers::default()).to_string();
        assert_eq!(shown.lines().count(), 2 + SCHEMA_LISTED + 1, "{shown}");
        assert!(
            shown.ends_with("… 60 more columns: 60 constant\n"),
            "{shown}"
        );
    }

    #[test]
    fn display_is_aligned() {
        let t = table("age,long_column_name\n1,a\n22,b\n");
        let text = infer_schema(&t, &MissingMarkers::default()).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "s.csv: 2 rows, 2 columns");
        let kind_at = lines[1].find("kind").unwrap();
        assert_eq!(lines[2].find("numeric"), Some(kind_at));
        assert_eq!(lines[3].find("categorical"), Some(kind_at));
        assert!(lines[2].ends_with("1 .. 22"), "{}", lines[2]);
    }
}
