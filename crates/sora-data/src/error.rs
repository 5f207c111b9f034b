//! Typed errors of the data crate.

/// The crate's result alias.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Data that cannot be read, described, or turned into model inputs.
///
/// Variants about a place in a file carry the file (`file`, the name given to
/// [`Table::from_reader`](crate::Table::from_reader) or the path given to
/// [`Table::read_csv`](crate::Table::read_csv)), the line as numbered in the file (`line`,
/// 1-based, the header is line 1; a record spanning several lines is named by its first line)
/// and/or the column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read (or, for [`FittedPipeline::save_json`](crate::FittedPipeline::save_json),
    /// written).
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing (not even a header row).
    #[error("{file}: the file is empty; expected a header row and data rows")]
    Empty {
        /// The file.
        file: String,
    },
    /// The file holds a header row but no data rows.
    #[error("{file}: the file has a header row but no data rows")]
    NoDataRows {
        /// The file.
        file: String,
    },
    /// A row has a different number of fields than the header.
    #[error("{file}: line {line}: expected {expected} fields (as in the header), found {found}")]
    FieldCount {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// Number of fields in the header.
        expected: usize,
        /// Number of fields in the row.
        found: usize,
    },
    /// A quoted field is opened and never closed before the end of the file.
    #[error("{file}: line {line}: a quoted field opened here is never closed")]
    UnterminatedQuote {
        /// The file.
        file: String,
        /// Line where the unterminated quote opens.
        line: u64,
    },
    /// A field is not valid UTF-8.
    #[error("{file}: line {line}: field {field} is not valid UTF-8: {source}")]
    InvalidUtf8 {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// Position of the field in the row (1-based).
        field: usize,
        /// The cause.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Two header fields have the same name.
    #[error(
        "{file}: line 1: column `{column}` appears twice in the header (fields {first} and {second})"
    )]
    DuplicateColumn {
        /// The file.
        file: String,
        /// The repeated name.
        column: String,
        /// Position of its first appearance (1-based).
        first: usize,
        /// Position of its second appearance (1-based).
        second: usize,
    },
    /// A header field is empty.
    #[error("{file}: line 1: field {field} of the header is empty; every column needs a name")]
    EmptyColumnName {
        /// The file.
        file: String,
        /// Position of the empty header field (1-based).
        field: usize,
    },
    /// The CSV reader failed in a way not covered by another variant.
    #[error("{file}: {source}")]
    Csv {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// The target column is not in the table.
    #[error("{file}: target column `{target}` not found; available columns: {}", .available.join(", "))]
    TargetNotFound {
        /// The file.
        file: String,
        /// The target asked for.
        target: String,
        /// The table's columns, in order.
        available: Vec<String>,
    },
    /// Every training row's target is missing.
    #[error("{file}: column `{target}`: the target is missing in every training row")]
    TargetAllMissing {
        /// The file.
        file: String,
        /// The target column.
        target: String,
    },
    /// A classification target holds a single class in the training rows.
    #[error(
        "{file}: column `{target}`: a classification target needs at least 2 classes in the \
         training rows, found only `{class}`"
    )]
    OneClass {
        /// The file.
        file: String,
        /// The target column.
        target: String,
        /// The only class found.
        class: String,
    },
    /// A column of numbers holds a few text cells, which would make every number a category.
    #[error(
        "{file}: column `{column}` holds {} text cell(s) among {} numbers ({}); read as text, \
         its {} distinct numbers would each become a category. Say what the cells mean: \
         missing values (text_cells = missing, `--text-cells missing`; or add them to the \
         missing markers), or categories (`--categorical {column}`, or \
         `--text-cells categorical` for every such column)",
        .cells.n_text, .cells.n_numbers, .cells.cells(), .cells.n_distinct_numbers
    )]
    TextAmongNumbers {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// The text cells and the numbers around them.
        cells: crate::TextAmongNumbers,
    },
    /// No training rows are left to fit on.
    #[error("{file}: no training rows to fit on: {reason}")]
    NoTrainingRows {
        /// The file.
        file: String,
        /// Why (no rows given, or every row dropped).
        reason: String,
    },
    /// Every feature column was left out.
    #[error("{file}: no feature columns left; {}", if .dropped.is_empty() { "the table holds only the target".to_string() } else { .dropped.join("; ") })]
    NoFeatures {
        /// The file.
        file: String,
        /// Why each candidate column was left out.
        dropped: Vec<String>,
    },
    /// A feature column the pipeline was fitted with is absent from the table.
    #[error("{file}: feature column `{column}` is missing (the pipeline was fitted with it)")]
    MissingColumn {
        /// The file.
        file: String,
        /// The absent column.
        column: String,
    },
    /// The configuration names a column the table does not have.
    #[error("{file}: config field `{field}` names column `{column}`, which is not in the table")]
    UnknownColumn {
        /// The file.
        file: String,
        /// The config field (`ignore`, `kinds`, `impute_columns`, `zero_as_missing`).
        field: String,
        /// The unknown column.
        column: String,
    },
    /// A configuration value is out of its allowed range.
    #[error("config field `{field}`: expected {expected}, found {found}")]
    InvalidConfig {
        /// The config field.
        field: String,
        /// What was expected.
        expected: String,
        /// What the config holds.
        found: String,
    },
    /// A row index is past the end of the table.
    #[error("{file}: row index {row} is out of range for a table of {n_rows} rows")]
    RowOutOfRange {
        /// The file.
        file: String,
        /// The index given (0-based data-row index).
        row: usize,
        /// Number of data rows in the table.
        n_rows: usize,
    },
    /// A cell of a numeric column does not parse as a number.
    #[error("{file}: line {line}: column `{column}`: expected a number, found `{value}`")]
    NotNumeric {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
    },
    /// A cell of a numeric column parses to an infinite or NaN number (`inf`, `1e999`, …).
    #[error("{file}: line {line}: column `{column}`: expected a finite number, found `{value}`")]
    NonFinite {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
    },
    /// A classification target holds a class not seen in the training rows.
    #[error(
        "{file}: line {line}: column `{column}`: class `{value}` was not seen in the training \
         rows (known classes: {})", .classes.join(", ")
    )]
    UnseenClass {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The target column.
        column: String,
        /// The unknown class.
        value: String,
        /// The classes of the fitted pipeline.
        classes: Vec<String>,
    },
    /// A ratings file lacks a user, item or rating column.
    #[error(
        "{file}: line 1: no `{role}` column (accepted names: {accepted}); the header has {found:?}"
    )]
    MissingRatingsColumn {
        /// The file.
        file: String,
        /// The column's role (`user`, `item`, `rating`).
        role: String,
        /// The names accepted for it.
        accepted: String,
        /// The header.
        found: Vec<String>,
    },
    /// A rating is not a number.
    #[error("{file}: line {line}: rating `{value}` is not a number")]
    BadRating {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The cell.
        value: String,
    },
    /// A rating lies outside the declared range.
    #[error("{file}: line {line}: rating {value} is outside the declared range {min}–{max}")]
    RatingOutOfRange {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The rating.
        value: f32,
        /// Lowest allowed rating.
        min: f32,
        /// Highest allowed rating.
        max: f32,
    },
    /// A timestamp is not a number.
    #[error("{file}: line {line}: timestamp `{value}` is not a number")]
    BadTimestamp {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The cell.
        value: String,
    },
    /// A user or item id is empty.
    #[error("{file}: line {line}: the {role} id is empty")]
    EmptyId {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// `user` or `item`.
        role: String,
    },
    /// Cross-validation asks for fewer than 2 folds.
    #[error("--cv {k}: cross-validation needs at least 2 folds")]
    CvTooFewFolds {
        /// The number of folds asked for.
        k: usize,
    },
    /// Cross-validation asks for more folds than there are rows, so a fold would test nothing.
    #[error("--cv {k} is larger than the number of rows, {n_rows}; every fold needs a test row")]
    CvMoreFoldsThanRows {
        /// The number of folds asked for.
        k: usize,
        /// The number of rows.
        n_rows: usize,
    },
    /// Stratified cross-validation asks for more folds than the smallest class has rows, so
    /// some fold would test no row of that class.
    #[error(
        "--cv {k} is larger than the smallest class, `{class}` with {count} rows; every fold \
         needs a row of each class (lower --cv to at most {count})"
    )]
    CvMoreFoldsThanClassRows {
        /// The number of folds asked for.
        k: usize,
        /// The smallest class (its label; the first such class when several are as small).
        class: usize,
        /// Its number of rows.
        count: usize,
    },
    /// Grouped cross-validation has fewer groups than folds (or a single group), so some
    /// fold would test no group.
    #[error(
        "--group: {n_groups} group{} for --cv {k}; grouped cross-validation needs at least {k} \
         groups, one per fold",
        if .n_groups == &1 { "" } else { "s" }
    )]
    CvTooFewGroups {
        /// The number of folds asked for.
        k: usize,
        /// The number of distinct groups.
        n_groups: usize,
    },
    /// Stratified grouped cross-validation got a different number of labels and groups.
    #[error("--group: {n_groups} group values for {n_labels} labels; expected one of each per row")]
    CvGroupsLength {
        /// The number of labels.
        n_labels: usize,
        /// The number of group values.
        n_groups: usize,
    },
    /// Repeated cross-validation asks for no repeat.
    #[error("--repeats 0: repeated cross-validation needs at least 1 repeat")]
    CvNoRepeats,
    /// A saved pipeline is not valid JSON or does not have the pipeline's structure.
    #[error("{file}: {source}")]
    Json {
        /// The file.
        file: String,
        /// The cause (it carries the line and column).
        #[source]
        source: serde_json::Error,
    },
}
