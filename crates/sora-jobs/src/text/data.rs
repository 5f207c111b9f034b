//! Documents and their labels, read from a CSV file.

#[allow(unused_imports)]
use super::*;

/// Documents read from a CSV file, with their labels when the file has them.
#[derive(Debug, Clone, PartialEq)]
pub struct TextData {
    /// One document per row.
    pub texts: Vec<String>,
    /// Class index of each document (empty when unlabelled).
    pub labels: Vec<usize>,
    /// Class names in class-index order (empty when unlabelled).
    pub classes: Vec<String>,
    /// Where the documents came from.
    pub source: String,
}

impl TextData {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The documents at `indices`.
    pub fn subset(&self, indices: &[usize]) -> TextData {
        TextData {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: if self.labels.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.labels[i]).collect()
            },
            classes: self.classes.clone(),
            source: self.source.clone(),
        }
    }
}

pub(super) fn column(table: &Table, name: &str) -> Result<usize> {
    table
        .column_index(name)
        .ok_or_else(|| TextJobError::MissingColumn {
            file: table.source().to_string(),
            column: name.to_string(),
            found: table.headers().join(", "),
        })
}

/// Class names of a label column: numerically ordered when every label is a number, in
/// string order otherwise.
fn class_names<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = labels.map(str::to_string).collect();
    names.sort();
    names.dedup();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
        });
    }
    names
}

/// Reads the `text` column and, when `target` is given, the label column of `table`.
///
/// Fails with [`TextJobError::MissingColumn`] naming the file and the column, with
/// [`TextJobError::NoText`] when every document is empty, and with
/// [`TextJobError::TooFewClasses`] when the labels hold a single class.
///
/// ```
/// use sora_data::Table;
/// use sora_jobs::text::{TextJobError, load};
///
/// # fn main() -> Result<(), TextJobError> {
/// let csv = "label,text\nspam,WIN a prize now\nham,see you at 6\nham,ok\n";
/// let table = Table::from_reader(csv.as_bytes(), "inline.csv")?;
/// let data = load(&table, "text", Some("label"))?;
/// assert_eq!(data.classes, ["ham", "spam"]);
/// assert_eq!(data.labels, [1, 0, 0]);
///
/// let missing = load(&table, "body", Some("label")).unwrap_err();
/// assert_eq!(
///     missing.to_string(),
///     "inline.csv: no column `body` (columns: label, text)"
/// );
/// # Ok(())
/// # }
/// ```
pub fn load(table: &Table, text: &str, target: Option<&str>) -> Result<TextData> {
    let text_col = column(table, text)?;
    let target_col = target.map(|t| column(table, t)).transpose()?;
    let texts: Vec<String> = table.column(text_col).map(str::to_string).collect();
    if texts.iter().all(|t| t.trim().is_empty()) {
        return Err(TextJobError::NoText {
            file: table.source().to_string(),
            column: text.to_string(),
        });
    }
    let (labels, classes) = match target_col {
        None => (Vec::new(), Vec::new()),
        Some(col) => {
            let classes = class_names(table.column(col).map(str::trim));
            if classes.len() < 2 {
                return Err(TextJobError::TooFewClasses {
                    file: table.source().to_string(),
                    column: target.unwrap_or_default().to_string(),
                    n_classes: classes.len(),
                    classes,
                });
            }
            let index: HashMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let labels = table.column(col).map(|l| index[l.trim()]).collect();
            (labels, classes)
        }
    };
    Ok(TextData {
        texts,
        labels,
        classes,
        source: table.source().to_string(),
    })
}

/// Reads a CSV file and [`load`]s its columns.
pub fn load_csv(path: &Path, text: &str, target: Option<&str>) -> Result<TextData> {
    load(&Table::read_csv(path)?, text, target)
}
