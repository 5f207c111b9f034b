//! Ratings files: `user,item,rating[,timestamp]` rows, the data of recommenders.
//!
//! Columns are found by name ([`USER_COLUMNS`], [`ITEM_COLUMNS`], `rating`/`score`,
//! `timestamp`/`time`); ids are any non-empty text. With a declared [`RatingRange`], a rating
//! outside it is an error naming the file and line.
//!
//! ```
//! use sora_data::{RatingRange, Ratings, Table};
//!
//! # fn main() -> Result<(), sora_data::DataError> {
//! let csv = "userId,movieId,rating,timestamp\n1,10,4.5,100\n1,11,3,101\n2,10,5,99\n";
//! let table = Table::from_reader(csv.as_bytes(), "ratings.csv")?;
//! let ratings = Ratings::from_table(&table, Some("0.5-5".parse()?))?;
//! assert_eq!((ratings.len(), ratings.n_users(), ratings.n_items()), (3, 2, 2));
//!
//! let out = Ratings::from_table(&table, Some(RatingRange { min: 1.0, max: 4.0 })).unwrap_err();
//! assert_eq!(
//!     out.to_string(),
//!     "ratings.csv: line 2: rating 4.5 is outside the declared range 1–4"
//! );
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DataError, Result, Table};

/// Names accepted for the user column.
pub const USER_COLUMNS: &[&str] = &["user", "user_id", "userId", "userid"];
/// Names accepted for the item column.
pub const ITEM_COLUMNS: &[&str] = &["item", "item_id", "itemId", "movieId", "movie_id"];
/// Names accepted for the rating column.
pub const RATING_COLUMNS: &[&str] = &["rating", "score"];
/// Names accepted for the timestamp column.
pub const TIME_COLUMNS: &[&str] = &["timestamp", "time"];

/// The allowed ratings, inclusive (`0.5-5`, `0.5..5` or `0.5,5` as text).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingRange {
    /// Lowest rating.
    pub min: f32,
    /// Highest rating.
    pub max: f32,
}

impl FromStr for RatingRange {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let parts = if let Some((a, b)) = s.split_once("..") {
            Some((a, b))
        } else if let Some((a, b)) = s.split_once(',') {
            Some((a, b))
        } else {
            // A `-` after the first character separates (the first may be a sign).
            s.char_indices()
                .skip(1)
                .find(|&(_, c)| c == '-')
                .map(|(i, _)| (&s[..i], &s[i + 1..]))
        };
        let bad = || DataError::InvalidConfig {
            field: "rating_range".into(),
            expected: "`MIN-MAX` with MIN < MAX (e.g. `0.5-5`)".into(),
            found: s.into(),
        };
        let (a, b) = parts.ok_or_else(bad)?;
        let min: f32 = a.trim().parse().map_err(|_| bad())?;
        let max: f32 = b.trim().parse().map_err(|_| bad())?;
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(bad());
        }
        Ok(Self { min, max })
    }
}

impl std::fmt::Display for RatingRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// Ratings as read: one entry per row, ids as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratings {
    /// The file the rows came from (for messages).
    pub source: String,
    /// User id of each row.
    pub users: Vec<String>,
    /// Item id of each row.
    pub items: Vec<String>,
    /// Rating of each row.
    pub ratings: Vec<f32>,
    /// Timestamp of each row, when the file has them.
    pub timestamps: Option<Vec<i64>>,
    /// The range: the declared one, or the data's own minimum and maximum.
    pub range: RatingRange,
}

/// The first column of `table` named one of `names`, or an error naming the role.
fn find_column(table: &Table, role: &str, names: &[&str]) -> Result<usize> {
    names
        .iter()
        .find_map(|n| table.column_index(n))
        .ok_or_else(|| DataError::MissingRatingsColumn {
            file: table.source().to_string(),
            role: role.into(),
            accepted: names.join(", "),
            found: table.headers().to_vec(),
        })
}

/// The `(user, item)` pairs of a table with a user and an item column (found by name as in
/// [`Ratings::read_csv`]); other columns are ignored.
pub fn rating_pairs(table: &Table) -> Result<Vec<(String, String)>> {
    let cu = find_column(table, "user", USER_COLUMNS)?;
    let ci = find_column(table, "item", ITEM_COLUMNS)?;
    Ok((0..table.n_rows())
        .map(|r| (table.cell(r, cu).to_string(), table.cell(r, ci).to_string()))
        .collect())
}

impl Ratings {
    /// Reads a ratings CSV (`user,item,rating[,timestamp]`, columns found by name:
    /// `user`/`user_id`/`userId`, `item`/`item_id`/`itemId`/`movieId`, `rating`,
    /// `timestamp`). With a declared `range`, a rating outside it is an error naming the file
    /// and line; without one, the range is the data's minimum and maximum.
    pub fn read_csv(path: &Path, range: Option<RatingRange>) -> Result<Self> {
        Self::from_table(&Table::read_csv(path)?, range)
    }

    /// The ratings of a table already read (see [`read_csv`](Self::read_csv)).
    pub fn from_table(table: &Table, range: Option<RatingRange>) -> Result<Self> {
        let file = table.source().to_string();
        let (cu, ci, cr) = (
            find_column(table, "user", USER_COLUMNS)?,
            find_column(table, "item", ITEM_COLUMNS)?,
            find_column(table, "rating", RATING_COLUMNS)?,
        );
        let ct = TIME_COLUMNS.iter().find_map(|n| table.column_index(n));
        let n = table.n_rows();
        let (mut users, mut items, mut ratings) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut times = ct.map(|_| Vec::with_capacity(n));
        for row in 0..n {
            let line = table.line(row);
            for (col, role) in [(cu, "user"), (ci, "item")] {
                if table.cell(row, col).is_empty() {
                    return Err(DataError::EmptyId {
                        file,
                        line,
                        role: role.into(),
                    });
                }
            }
            let cell = table.cell(row, cr);
            let value: f32 = match cell.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    return Err(DataError::BadRating {
                        file,
                        line,
                        value: cell.into(),
                    });
                }
            };
            if let Some(r) = range
                && !(r.min..=r.max).contains(&value)
            {
                return Err(DataError::RatingOutOfRange {
                    file,
                    line,
                    value,
                    min: r.min,
                    max: r.max,
                });
            }
            if let (Some(ct), Some(times)) = (ct, times.as_mut()) {
                let cell = table.cell(row, ct);
                let t = cell
                    .parse::<i64>()
                    .ok()
                    .or_else(|| {
                        cell.parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite())
                            .map(|v| v as i64)
                    })
                    .ok_or_else(|| DataError::BadTimestamp {
                        file: file.clone(),
                        line,
                        value: cell.into(),
                    })?;
                times.push(t);
            }
            users.push(table.cell(row, cu).to_string());
            items.push(table.cell(row, ci).to_string());
            ratings.push(value);
        }
        let range = range.unwrap_or_else(|| RatingRange {
            min: ratings.iter().copied().fold(f32::INFINITY, f32::min),
            max: ratings.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        });
        Ok(Self {
            source: file,
            users,
            items,
            ratings,
            timestamps: times,
            range,
        })
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    /// Whether there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// Number of distinct users.
    pub fn n_users(&self) -> usize {
        self.users.iter().collect::<HashSet<_>>().len()
    }

    /// Number of distinct items.
    pub fn n_items(&self) -> usize {
        self.items.iter().collect::<HashSet<_>>().len()
    }

    /// The ratings of the first `n` users (in order of first appearance): a smaller set with
    /// every kept user's full history.
    pub fn first_users(&self, n: usize) -> Self {
        let mut kept = HashSet::new();
        let mut rows = Vec::new();
        for (r, u) in self.users.iter().enumerate() {
            if kept.contains(u) || kept.len() < n {
                kept.insert(u.clone());
                rows.push(r);
            }
        }
        Self {
            source: self.source.clone(),
            users: rows.iter().map(|&r| self.users[r].clone()).collect(),
            items: rows.iter().map(|&r| self.items[r].clone()).collect(),
            ratings: rows.iter().map(|&r| self.ratings[r]).collect(),
            timestamps: self
                .timestamps
                .as_ref()
                .map(|t| rows.iter().map(|&r| t[r]).collect()),
            range: self.range,
        }
    }
}
