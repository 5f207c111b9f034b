//! A CSV file read into a table of trimmed string cells.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::{DataError, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A CSV table: a header row of unique column names and rows of string cells.
///
/// Cells are kept as text, trimmed of surrounding whitespace; deciding what is a number or a
/// missing value is left to [`infer_schema`](crate::infer_schema) and the
/// [`FittedPipeline`](crate::FittedPipeline).
///
/// Rows are addressed by their 0-based index among the data rows; [`Table::line`] gives the
/// line in the file, which is what errors report.
///
/// ```
/// use sora_data::Table;
///
/// # fn main() -> Result<(), sora_data::DataError> {
/// let csv = "\u{feff}name,city\r\n\"Smith, J\", Oslo \r\nLee,Rome\r\n";
/// let table = Table::from_reader(csv.as_bytes(), "people.csv")?;
/// assert_eq!(table.headers(), ["name", "city"]);
/// assert_eq!(table.n_rows(), 2);
/// assert_eq!(table.cell(0, 0), "Smith, J");
/// assert_eq!(table.cell(0, 1), "Oslo");
/// assert_eq!(table.column_index("city"), Some(1));
/// assert_eq!(table.line(1), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    source: String,
    headers: Vec<String>,
    /// Each header's position, for lookups by name in wide tables.
    index: HashMap<String, usize>,
    cells: Vec<String>,
    lines: Vec<u64>,
}

impl Table {
    /// Reads a CSV file; errors name the file by its path.
    ///
    /// See [`Table::from_reader`] for the format accepted.
    pub fn read_csv(path: &Path) -> Result<Table> {
        let source = path.display().to_string();
        let file = open_regular(path).map_err(|e| DataError::Io {
            file: source.clone(),
            source: e,
        })?;
        Table::from_reader(std::io::BufReader::new(file), &source)
    }

    /// Reads CSV text; `source` is the name used in errors.
    ///
    /// The first row is the header; names must be non-empty and unique. Fields are separated by
    /// commas, may be quoted (`"a, b"`, with `""` for a quote inside), and rows end in LF or
    /// CRLF. A UTF-8 byte-order mark at the start is skipped. Every field is trimmed of
    /// surrounding whitespace. Blank lines are skipped. Every row must have as many fields as
    /// the header.
    pub fn from_reader<R: Read>(mut reader: R, source: &str) -> Result<Table> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|e| DataError::Io {
            file: source.to_string(),
            source: e,
        })?;
        let bytes = bytes.strip_prefix(BOM).unwrap_or(&bytes);
        if let Some(line) = unterminated_quote(bytes) {
            return Err(DataError::UnterminatedQuote {
                file: source.to_string(),
                line,
            });
        }

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut record = csv::ByteRecord::new();
        let csv_error = |e: csv::Error| DataError::Csv {
            file: source.to_string(),
            source: e,
        };

        if !reader.read_byte_record(&mut record).map_err(csv_error)? {
            return Err(DataError::Empty {
                file: source.to_string(),
            });
        }
        let headers = decode_record(&record, source, 1)?;
        let index = check_headers(&headers, source)?;

        let mut cells = Vec::new();
        let mut lines = Vec::new();
        let mut lines_counter = LineCounter::default();
        while reader.read_byte_record(&mut record).map_err(csv_error)? {
            let start = record.position().map_or(0, |p| p.byte() as usize);
            let line = lines_counter.line_at(bytes, start);
            if record.len() != headers.len() {
                return Err(DataError::FieldCount {
                    file: source.to_string(),
                    line,
                    expected: headers.len(),
                    found: record.len(),
                });
            }
            cells.extend(decode_record(&record, source, line)?);
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(DataError::NoDataRows {
                file: source.to_string(),
            });
        }
        Ok(Table {
            source: source.to_string(),
            headers,
            index,
            cells,
            lines,
        })
    }

    /// Builds a table from cells already split into rows (e.g. rows received as JSON rather
    /// than read from a file); `source` is the name used in errors.
    ///
    /// The same rules as [`Table::from_reader`] apply: header names non-empty and unique,
    /// every row as long as the header, at least one row, every cell trimmed of surrounding
    /// whitespace. Data row `i` (0-based) is numbered as line `i + 2`, as if the rows had been
    /// written below a header line.
    ///
    /// ```
    /// use sora_data::Table;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let rows = vec![vec![" 31".to_string(), "Oslo".to_string()]];
    /// let table = Table::from_rows("request", vec!["age".into(), "city".into()], rows)?;
    /// assert_eq!(table.cell(0, 0), "31");
    /// assert_eq!(table.line(0), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_rows(source: &str, headers: Vec<String>, rows: Vec<Vec<String>>) -> Result<Table> {
        let index = check_headers(&headers, source)?;
        if rows.is_empty() {
            return Err(DataError::NoDataRows {
                file: source.to_string(),
            });
        }
        let mut cells = Vec::with_capacity(rows.len() * headers.len());
        let mut lines = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let line = i as u64 + 2;
            if row.len() != headers.len() {
                return Err(DataError::FieldCount {
                    file: source.to_string(),
                    line,
                    expected: headers.len(),
                    found: row.len(),
                });
            }
            cells.extend(row.iter().map(|c| c.trim().to_string()));
            lines.push(line);
        }
        Ok(Table {
            source: source.to_string(),
            headers,
            index,
            cells,
            lines,
        })
    }

    /// The name used in errors: the path or the `source` given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The column names, in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.headers.len()
    }

    /// Number of data rows (the header is not counted).
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// The trimmed cell at data row `row` (0-based) and column `col` (0-based).
    ///
    /// # Panics
    ///
    /// When `row >= n_rows()` or `col >= n_cols()`.
    pub fn cell(&self, row: usize, col: usize) -> &str {
        assert!(col < self.headers.len(), "column {col} out of range");
        &self.cells[row * self.headers.len() + col]
    }

    /// The position of the column named `name`, matched exactly.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The cells of column `col`, top to bottom.
    ///
    /// # Panics
    ///
    /// When `col >= n_cols()`.
    pub fn column(&self, col: usize) -> impl Iterator<Item = &str> + '_ {
        assert!(col < self.headers.len(), "column {col} out of range");
        self.cells
            .iter()
            .skip(col)
            .step_by(self.headers.len())
            .map(String::as_str)
    }

    /// The line in the file where data row `row` (0-based) starts; the header is line 1.
    ///
    /// # Panics
    ///
    /// When `row >= n_rows()`.
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }
}

/// Numbers lines from byte offsets, counting forward (record offsets only grow).
///
/// The CSV reader's own line numbers lag behind after CRLF terminators, and its record
/// offset may point at the rest of the previous terminator, so the record is taken to start
/// at the first byte at or after the offset that is not `\r` or `\n` (blank lines are
/// skipped by the reader too).
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> u64 {
        let start = offset
            + bytes[offset.min(bytes.len())..]
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
        let start = start.max(self.offset);
        self.line += bytes[self.offset..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.offset = start;
        self.line + 1
    }
}

fn decode_record(record: &csv::ByteRecord, source: &str, line: u64) -> Result<Vec<String>> {
    record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            std::str::from_utf8(field)
                .map(|s| s.trim().to_string())
                .map_err(|e| DataError::InvalidUtf8 {
                    file: source.to_string(),
                    line,
                    field: i + 1,
                    source: e,
                })
        })
        .collect()
}

/// The line where a quoted field opens and is never closed, scanning as the CSV reader does:
/// a quote opens a quoted field only at the start of a field; inside one, `""` is a quote and
/// a lone `"` closes it.
fn unterminated_quote(bytes: &[u8]) -> Option<u64> {
    let mut line = 1u64;
    let mut field_start = true;
    let mut open_line = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if open_line.is_some() {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    open_line = None;
                }
            } else if b == b'\n' {
                line += 1;
            }
        } else {
            match b {
                b'"' if field_start => open_line = Some(line),
                b'\n' => line += 1,
                _ => {}
            }
            field_start = matches!(b, b',' | b'\n' | b'\r');
        }
        i += 1;
    }
    open_line
}

/// Header names must be non-empty and unique (errors give 1-based field numbers); gives each
/// name's position.
fn check_headers(headers: &[String], source: &str) -> Result<HashMap<String, usize>> {
    let mut index = HashMap::with_capacity(headers.len());
    for (i, name) in headers.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(DataError::EmptyColumnName {
                file: source.to_string(),
                field: i + 1,
            });
        }
        if let Some(&first) = index.get(name) {
            return Err(DataError::DuplicateColumn {
                file: source.to_string(),
                column: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
        index.insert(name.clone(), i);
    }
    Ok(index)
}

/// Opens a file that must be a regular file (a link is followed): a device, a pipe or a
/// folder (a data file linked to `/dev/zero`, say) is refused before anything is read.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            if meta.is_dir() {
                "not a regular file (a folder)"
            } else {
                "not a regular file (a device, pipe or socket)"
            },
        ));
    }
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<Table> {
        Table::from_reader(text, "t.csv")
    }

    #[test]
    fn from_rows_checks_like_a_file_and_equals_the_same_csv() {
        let h = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let rows = vec![h(&["1", " a "]), h(&["", "b"])];
        let table = Table::from_rows("req", h(&["x", "y"]), rows.clone()).unwrap();
        let csv = read(b"x,y\n1, a \n,b\n").unwrap();
        assert_eq!(table.headers(), csv.headers());
        for r in 0..2 {
            assert_eq!(table.line(r), csv.line(r));
            for c in 0..2 {
                assert_eq!(table.cell(r, c), csv.cell(r, c));
            }
        }
        assert!(matches!(
            Table::from_rows("req", h(&["x", "x"]), rows.clone()),
            Err(DataError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            Table::from_rows("req", h(&["x", ""]), rows),
            Err(DataError::EmptyColumnName { field: 2, .. })
        ));
        assert!(matches!(
            Table::from_rows("req", h(&["x", "y"]), vec![h(&["1"])]),
            Err(DataError::FieldCount {
                line: 2,
                expected: 2,
                found: 1,
                ..
            })
        ));
        assert!(matches!(
            Table::from_rows("req", h(&["x"]), Vec::new()),
            Err(DataError::NoDataRows { .. })
        ));
    }

    #[test]
    fn bom_crlf_quotes_and_trimming() {
        let t = read(b"\xEF\xBB\xBFa,b,c\r\n1,\"x, y\" ,3\r\n\"say \"\"hi\"\"\",\"multi\r\nline\",6\r\n\r\n7,8,9\r\n")
            .unwrap();
        assert_eq!(t.headers(), ["a", "b", "c"]);
        assert_eq!(t.n_rows(), 3);
        assert_eq!(t.cell(0, 1), "x, y");
        assert_eq!(t.cell(1, 0), "say \"hi\"");
        assert_eq!(t.cell(1, 1), "multi\r\nline");
        assert_eq!(t.cell(2, 2), "9");
        assert_eq!((t.line(0), t.line(1), t.line(2)), (2, 3, 6));
        assert_eq!(t.column(2).collect::<Vec<_>>(), ["3", "6", "9"]);
        assert_eq!(t.source(), "t.csv");
    }

    #[test]
    fn empty_and_header_only() {
        assert!(matches!(read(b""), Err(DataError::Empty { file }) if file == "t.csv"));
        assert!(matches!(
            read(b"\xEF\xBB\xBF\n\n"),
            Err(DataError::Empty { .. })
        ));
        assert!(matches!(
            read(b"a,b\r\n"),
            Err(DataError::NoDataRows { .. })
        ));
    }

    #[test]
    fn wrong_field_counts_name_the_line() {
        let err = read(b"a,b,c\n1,2,3\n4,5\n").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::FieldCount {
                    line: 3,
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = read(b"a,b\n1,2\n3,4\n5,6,7\n").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::FieldCount {
                    line: 4,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("t.csv: line 4"), "{err}");
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        let err = read(b"a,b\n1,2\n3,\"open\n4,5\n").unwrap_err();
        assert!(
            matches!(err, DataError::UnterminatedQuote { line: 3, .. }),
            "{err:?}"
        );
        // A quote inside an unquoted field is literal, as in the CSV reader.
        let t = read(b"a,b\n5\" disk,2\n").unwrap();
        assert_eq!(t.cell(0, 0), "5\" disk");
    }

    #[test]
    fn invalid_utf8_names_line_and_field() {
        let err = read(b"a,b\n1,2\n3,\xFF\xFE\n").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::InvalidUtf8 {
                    line: 3,
                    field: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn duplicate_and_empty_column_names() {
        let err = read(b"a,b,a\n1,2,3\n").unwrap_err();
        assert!(
            matches!(&err, DataError::DuplicateColumn { column, first: 1, second: 3, .. } if column == "a"),
            "{err:?}"
        );
        let err = read(b"a,,c\n1,2,3\n").unwrap_err();
        assert!(
            matches!(err, DataError::EmptyColumnName { field: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn io_error_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        let err = Table::read_csv(&path).unwrap_err();
        match &err {
            DataError::Io { file, source } => {
                assert!(file.ends_with("absent.csv"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn read_csv_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "\u{feff}x,y\r\n1,\"2,5\"\r\n").unwrap();
        let t = Table::read_csv(&path).unwrap();
        assert_eq!(t.cell(0, 1), "2,5");
        assert!(t.source().ends_with("x.csv"));
    }
}
