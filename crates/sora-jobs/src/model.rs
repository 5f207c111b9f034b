//! The loaded side of the contract: a [`Model`] read back from its directory, whatever its
//! kind, and what its verbs take and give.
//!
//! Every verb takes an [`Input`]: a path named on the command line (`--data`), rows of named
//! raw values (a CSV file's, or a request's JSON rows), or encoded files (an uploaded image or
//! WAV clip). Prediction is two steps, so a server can batch: [`Model::prepare`] checks and
//! encodes one request's rows into a [`Batch`] (bad input fails here, before the queue), and
//! [`Model::score`] runs one forward pass over batches joined together.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sora_data::Table;

use crate::explain::{ExplainRequest, Explanation};
use crate::generation::{GenerateRequest, Generated};
use crate::recommendation::UserItems;
use crate::{JobError, Result, Verb};

/// Rows per forward pass when a verb scores many rows (prediction, evaluation).
pub const PREDICTION_BATCH: usize = 256;

/// What a model is, as `sora summary --model`, `GET /v1/model` and the manifest show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The kind (`tabular`, `image`, …).
    pub kind: String,
    /// What the model outputs.
    pub output: OutputKind,
    /// The column (or label) the model was trained to predict, when there is one.
    pub target: Option<String>,
    /// What a verb's rows must hold.
    pub input: InputSchema,
    /// Layers, output shapes and parameters, as `sora summary` prints them.
    pub summary: String,
    /// Number of parameters.
    pub parameters: usize,
}

impl ModelInfo {
    /// The task's name as the manifest records it.
    pub fn task(&self) -> &'static str {
        match self.output {
            OutputKind::Classes { .. } => "classification",
            OutputKind::Values { .. } => "regression",
            OutputKind::Text { .. } => "generation",
            OutputKind::Ratings { .. } => "recommendation",
        }
    }

    /// The class names of a classifier.
    pub fn classes(&self) -> Option<&[String]> {
        match &self.output {
            OutputKind::Classes { classes } => Some(classes),
            _ => None,
        }
    }

    /// The manifest of a directory holding this model (its files are listed when written).
    pub fn manifest(&self) -> sora_train::Manifest {
        let fields = match &self.input {
            InputSchema::Columns { columns } => columns
                .iter()
                .map(|c| sora_train::InputField {
                    name: c.name.clone(),
                    kind: c.kind.name().to_string(),
                })
                .collect(),
            _ => Vec::new(),
        };
        sora_train::Manifest::new(
            self.kind.clone(),
            self.task(),
            sora_train::InputSummary::new(self.input.describe()).with_fields(fields),
        )
    }
}

/// What a model outputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputKind {
    /// Class probabilities.
    Classes {
        /// The classes, in output order.
        classes: Vec<String>,
    },
    /// Real values.
    Values {
        /// One name per value.
        names: Vec<String>,
    },
    /// Text, token by token.
    Text {
        /// `character` or `word` tokens.
        tokens: String,
    },
    /// Ratings of (user, item) pairs, and ranked items per user.
    Ratings {
        /// The range predictions are clipped to.
        range: sora_data::RatingRange,
    },
}

/// What a verb's rows must hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputSchema {
    /// Rows of named columns: a CSV file's rows, or JSON objects of `column: value`.
    Columns {
        /// The columns, in input order.
        columns: Vec<InputColumn>,
    },
    /// Files of one medium, one sample each.
    Files {
        /// What the files hold.
        medium: Medium,
        /// The shape of one sample once read (`[channels, height, width]`, `[rows, frames]`).
        shape: Vec<usize>,
        /// How a file becomes a sample, in words.
        reading: String,
    },
    /// A text prompt.
    Prompt {
        /// `character` or `word` tokens.
        tokens: String,
        /// Tokens the model knows.
        vocabulary: usize,
    },
}

impl InputSchema {
    /// One line, as the manifest records it.
    pub fn describe(&self) -> String {
        match self {
            InputSchema::Columns { columns } => {
                let names: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.kind.name()))
                    .collect();
                format!("{} column(s): {}", columns.len(), names.join(", "))
            }
            InputSchema::Files {
                medium,
                shape,
                reading,
            } => format!("{} files → {shape:?} ({reading})", medium.name()),
            InputSchema::Prompt { tokens, vocabulary } => {
                format!("a text prompt of {tokens} tokens ({vocabulary} known)")
            }
        }
    }

    /// The columns, for a schema of columns.
    pub fn columns(&self) -> Option<&[InputColumn]> {
        match self {
            InputSchema::Columns { columns } => Some(columns),
            _ => None,
        }
    }
}

/// The medium of a model of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    /// PNG, JPEG, BMP or GIF images.
    Image,
    /// WAV clips.
    Audio,
}

impl Medium {
    /// `image` or `audio`.
    pub fn name(self) -> &'static str {
        match self {
            Medium::Image => "image",
            Medium::Audio => "audio",
        }
    }
}

/// One column of a model's rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputColumn {
    /// The raw column name, as in the training file.
    pub name: String,
    /// What its values are.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// The training categories (categorical columns); others encode as none of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// What a missing value (`null`) becomes, or why it is refused.
    pub missing: String,
    /// The cell a missing value is written as in the model's rows (`None`: missing values
    /// are refused).
    #[serde(skip)]
    pub missing_marker: Option<String>,
}

/// What a column's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Numbers.
    Number,
    /// Categories (strings, or numbers matched by their text).
    Category,
    /// Free text.
    Text,
    /// Identifiers (strings, or numbers matched by their text).
    Id,
}

impl ColumnType {
    /// The type's name, as the manifest and `GET /v1/model` write it.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Number => "number",
            ColumnType::Category => "category",
            ColumnType::Text => "text",
            ColumnType::Id => "id",
        }
    }
}

/// Data for a verb.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Data named on the command line: a CSV file, one image or WAV file, a class-folder tree,
    /// or an IDX images file (with its labels file).
    Path {
        /// The file or folder.
        data: PathBuf,
        /// The IDX labels file of an IDX images file.
        labels: Option<PathBuf>,
    },
    /// Rows of named raw values, as a CSV file would give them (missing values as the
    /// model's missing-value marker).
    Table(Table),
    /// Encoded files (images, WAV clips): each a name and its bytes.
    Files(Vec<NamedFile>),
}

/// An encoded file handed to a model (an upload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    /// Its name (shown in answers).
    pub name: String,
    /// Its bytes (PNG, JPEG, WAV, …).
    pub bytes: Vec<u8>,
}

impl Input {
    /// Data named by a path (and, for IDX images, a labels file).
    pub fn path(data: impl Into<PathBuf>, labels: Option<&Path>) -> Self {
        Input::Path {
            data: data.into(),
            labels: labels.map(Path::to_path_buf),
        }
    }

    /// How the input is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Input::Path { data, .. } => data.display().to_string(),
            Input::Table(t) => t.source().to_string(),
            Input::Files(files) => match files.as_slice() {
                [one] => one.name.clone(),
                _ => format!("{} files", files.len()),
            },
        }
    }

    /// The table of a CSV path or of rows; any other form is a [`JobError::WrongInput`].
    pub fn table(&self, kind: &str) -> Result<Table> {
        match self {
            Input::Path { data, .. } => Ok(Table::read_csv(data)?),
            Input::Table(t) => Ok(t.clone()),
            Input::Files(_) => Err(self.wrong(kind, "rows of columns (a CSV file, JSON rows)")),
        }
    }

    /// The error for an input a kind does not take.
    pub fn wrong(&self, kind: &str, expected: &str) -> JobError {
        JobError::WrongInput {
            what: self.describe(),
            kind: kind.to_string(),
            expected: expected.to_string(),
        }
    }
}

/// Rows made ready for the forward pass by [`Model::prepare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// What names a row in answers: `row` (1-based data rows), `source` (a file).
    pub key: &'static str,
    /// One name per row.
    pub keys: Vec<String>,
    /// The encoded rows.
    pub rows: Rows,
    /// Notes about the input for the user (unseen categories, unknown words, drift).
    pub notes: Vec<String>,
    /// For tables: how the rows compare with the training rows, column by column.
    pub drift: Option<sora_data::Drift>,
}

/// Encoded rows of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    /// `d` values per row, row-major (tables after their pipeline, standardised images).
    Dense {
        /// The values.
        values: Vec<f32>,
        /// Values per row.
        d: usize,
    },
    /// Documents.
    Texts(Vec<String>),
    /// (user, item) pairs.
    Pairs(Vec<(String, String)>),
    /// The same rows as each member of an ensemble prepared them.
    Members(Vec<Rows>),
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Dense { values, d } => values.len() / (*d).max(1),
            Rows::Texts(t) => t.len(),
            Rows::Pairs(p) => p.len(),
            Rows::Members(m) => m.first().map_or(0, Rows::len),
        }
    }

    /// Appends `other`'s rows (of the same form) to these.
    ///
    /// # Panics
    /// If the rows are of different forms (they come from different models).
    fn extend(&mut self, other: Rows) {
        match (self, other) {
            (Rows::Dense { values, d }, Rows::Dense { values: v, d: e }) if *d == e => {
                values.extend(v)
            }
            (Rows::Texts(t), Rows::Texts(u)) => t.extend(u),
            (Rows::Pairs(p), Rows::Pairs(q)) => p.extend(q),
            (Rows::Members(m), Rows::Members(n)) if m.len() == n.len() => {
                for (a, b) in m.iter_mut().zip(n) {
                    a.extend(b);
                }
            }
            _ => panic!("batches of one model hold rows of one form"),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The rows of several batches of one model, in order, as one batch (its notes and
    /// drift are dropped: they belong to each request).
    ///
    /// # Panics
    /// If the batches hold rows of different forms (they come from different models).
    pub fn join(batches: impl IntoIterator<Item = Batch>) -> Batch {
        let mut iter = batches.into_iter();
        let Some(mut out) = iter.next() else {
            return Batch {
                key: "row",
                keys: Vec::new(),
                rows: Rows::Texts(Vec::new()),
                notes: Vec::new(),
                drift: None,
            };
        };
        out.notes.clear();
        out.drift = None;
        for b in iter {
            out.keys.extend(b.keys);
            out.rows.extend(b.rows);
        }
        out
    }
}

/// What one forward pass gave, one entry per row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outputs {
    /// Class probabilities, `classes.len()` per row, row-major.
    Classes {
        /// The classes.
        classes: Vec<String>,
        /// The probabilities.
        probabilities: Vec<f32>,
        /// The class each row is given, when a decision threshold decides it (otherwise the
        /// most probable class).
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<Vec<usize>>,
        /// Each row's conformal prediction set (class indices), when the model has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        sets: Option<Vec<Vec<usize>>>,
    },
    /// Real values, `names.len()` per row, row-major.
    Values {
        /// One name per value.
        names: Vec<String>,
        /// The values.
        values: Vec<f32>,
        /// Each value's conformal interval `[lower, upper]`, row-major like the values, when
        /// the model has them.
        #[serde(skip_serializing_if = "Option::is_none")]
        intervals: Option<Vec<[f32; 2]>>,
    },
    /// Predicted ratings of (user, item) pairs.
    Ratings {
        /// The pairs' users.
        users: Vec<String>,
        /// The pairs' items.
        items: Vec<String>,
        /// The ratings, clipped to the model's range.
        ratings: Vec<f32>,
        /// Whether the rating is the bias baseline's (an unknown user or item).
        fallback: Vec<bool>,
    },
}

impl Outputs {
    /// Class probabilities as a model gives them (no threshold, no sets).
    pub fn classes(classes: Vec<String>, probabilities: Vec<f32>) -> Self {
        Outputs::Classes {
            classes,
            probabilities,
            labels: None,
            sets: None,
        }
    }

    /// Values as a model gives them (no intervals).
    pub fn values(names: Vec<String>, values: Vec<f32>) -> Self {
        Outputs::Values {
            names,
            values,
            intervals: None,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Outputs::Classes {
                classes,
                probabilities,
                ..
            } => probabilities.len() / classes.len().max(1),
            Outputs::Values { names, values, .. } => values.len() / names.len().max(1),
            Outputs::Ratings { ratings, .. } => ratings.len(),
        }
    }

    /// The numbers predicted, row-major: class probabilities, values, or ratings.
    pub fn predictions(&self) -> &[f32] {
        match self {
            Outputs::Classes { probabilities, .. } => probabilities,
            Outputs::Values { values, .. } => values,
            Outputs::Ratings { ratings, .. } => ratings,
        }
    }

    /// The class row `i` is given: the threshold's decision when there is one, else the most
    /// probable class. `None` for outputs that are not classes.
    pub fn label(&self, i: usize) -> Option<usize> {
        match self {
            Outputs::Classes {
                classes,
                probabilities,
                labels,
                ..
            } => Some(match labels {
                Some(l) => l[i],
                None => {
                    let k = classes.len();
                    sora_train::argmax(&probabilities[i * k..(i + 1) * k])
                }
            }),
            _ => None,
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `range` of these outputs.
    pub fn rows(&self, range: std::ops::Range<usize>) -> Outputs {
        match self {
            Outputs::Classes {
                classes,
                probabilities,
                labels,
                sets,
            } => {
                let k = classes.len();
                Outputs::Classes {
                    classes: classes.clone(),
                    probabilities: probabilities[range.start * k..range.end * k].to_vec(),
                    labels: labels.as_ref().map(|l| l[range.clone()].to_vec()),
                    sets: sets.as_ref().map(|s| s[range.clone()].to_vec()),
                }
            }
            Outputs::Values {
                names,
                values,
                intervals,
            } => {
                let k = names.len();
                let rows = range.start * k..range.end * k;
                Outputs::Values {
                    names: names.clone(),
                    values: values[rows.clone()].to_vec(),
                    intervals: intervals.as_ref().map(|i| i[rows].to_vec()),
                }
            }
            Outputs::Ratings {
                users,
                items,
                ratings,
                fallback,
            } => Outputs::Ratings {
                users: users[range.clone()].to_vec(),
                items: items[range.clone()].to_vec(),
                ratings: ratings[range.clone()].to_vec(),
                fallback: fallback[range].to_vec(),
            },
        }
    }

    /// Row `i` as the JSON object a server answers with: `{"label", "probability",
    /// "probabilities"}` for classes (`probability`: the label's; `"set"`: the conformal
    /// prediction set, when the model has one), `{"value"}` (one value) or `{"values"}` (with
    /// `"interval"` or `"intervals"` when the model has them), `{"user", "item", "rating",
    /// "fallback"}` for ratings.
    pub fn row_json(&self, i: usize) -> serde_json::Value {
        use serde_json::json;
        match self {
            Outputs::Classes {
                classes,
                probabilities,
                sets,
                ..
            } => {
                let k = classes.len();
                let p = &probabilities[i * k..(i + 1) * k];
                let label = self.label(i).unwrap_or(0);
                let mut row = json!({
                    "label": classes[label], "probability": p[label], "probabilities": p
                });
                if let Some(sets) = sets {
                    let set: Vec<&String> = sets[i].iter().map(|&c| &classes[c]).collect();
                    row["set"] = json!(set);
                }
                row
            }
            Outputs::Values {
                names,
                values,
                intervals,
            } => {
                let k = names.len();
                let v = &values[i * k..(i + 1) * k];
                let mut row = if k == 1 {
                    json!({"value": v[0]})
                } else {
                    json!({"values": v})
                };
                if let Some(intervals) = intervals {
                    let iv = &intervals[i * k..(i + 1) * k];
                    if k == 1 {
                        row["interval"] = json!(iv[0]);
                    } else {
                        row["intervals"] = json!(iv);
                    }
                }
                row
            }
            Outputs::Ratings {
                users,
                items,
                ratings,
                fallback,
            } => json!({
                "user": users[i], "item": items[i], "rating": ratings[i], "fallback": fallback[i]
            }),
        }
    }
}

/// Predictions for the rows of an input: what `sora predict` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// What names a row (`row`, `source`).
    pub key: &'static str,
    /// One name per row.
    pub keys: Vec<String>,
    /// The outputs.
    pub outputs: Outputs,
    /// Notes about the input for the user.
    pub notes: Vec<String>,
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Predictions {
    /// Number of predicted rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no row was predicted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The predictions as CSV: `key,prediction,p_<class>…` for classes (probabilities with
    /// 6 decimals; the prediction is the threshold's decision when the model has one, and a
    /// last `set` column lists the conformal prediction set, `|`-separated, when it has
    /// one), `key,prediction` (or `prediction_<name>…`) for values (then `lower,upper`, or
    /// `lower_<name>,upper_<name>…`, with conformal intervals), `row,user,item,rating,fallback`
    /// for ratings (4 decimals). Fields are quoted when they must be.
    pub fn to_csv(&self) -> String {
        let mut text = format!("{},", self.key);
        match &self.outputs {
            Outputs::Classes {
                classes,
                probabilities,
                sets,
                ..
            } => {
                text.push_str("prediction");
                for c in classes {
                    text.push(',');
                    text.push_str(&csv_field(&format!("p_{c}")));
                }
                if sets.is_some() {
                    text.push_str(",set");
                }
                text.push('\n');
                let rows = self.keys.iter().zip(probabilities.chunks(classes.len()));
                for (i, (key, p)) in rows.enumerate() {
                    text.push_str(&csv_field(key));
                    text.push(',');
                    let label = self.outputs.label(i).unwrap_or(0);
                    text.push_str(&csv_field(&classes[label]));
                    for v in p {
                        text.push_str(&format!(",{v:.6}"));
                    }
                    if let Some(sets) = sets {
                        let set: Vec<&str> = sets[i].iter().map(|&c| classes[c].as_str()).collect();
                        text.push(',');
                        text.push_str(&csv_field(&set.join("|")));
                    }
                    text.push('\n');
                }
            }
            Outputs::Values {
                names,
                values,
                intervals,
            } => {
                let header: Vec<String> = if names.len() == 1 {
                    vec!["prediction".into()]
                } else {
                    names
                        .iter()
                        .map(|n| csv_field(&format!("prediction_{n}")))
                        .collect()
                };
                text.push_str(&header.join(","));
                if intervals.is_some() {
                    if names.len() == 1 {
                        text.push_str(",lower,upper");
                    } else {
                        for n in names {
                            text.push_str(&format!(
                                ",{},{}",
                                csv_field(&format!("lower_{n}")),
                                csv_field(&format!("upper_{n}"))
                            ));
                        }
                    }
                }
                text.push('\n');
                let k = names.len().max(1);
                for (i, (key, v)) in self.keys.iter().zip(values.chunks(k)).enumerate() {
                    text.push_str(&csv_field(key));
                    for x in v {
                        text.push_str(&format!(",{x}"));
                    }
                    if let Some(intervals) = intervals {
                        for [lower, upper] in &intervals[i * k..(i + 1) * k] {
                            text.push_str(&format!(",{lower},{upper}"));
                        }
                    }
                    text.push('\n');
                }
            }
            Outputs::Ratings {
                users,
                items,
                ratings,
                fallback,
            } => {
                text.push_str("user,item,rating,fallback\n");
                for (i, key) in self.keys.iter().enumerate() {
                    text.push_str(&format!(
                        "{},{},{},{:.4},{}\n",
                        csv_field(key),
                        csv_field(&users[i]),
                        csv_field(&items[i]),
                        ratings[i],
                        fallback[i]
                    ));
                }
            }
        }
        text
    }
}

/// A model scored on labelled data: what `sora eval` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Rows scored.
    pub n: usize,
    /// The scores as an aligned text table.
    pub report: String,
    /// The headline scores by name (`accuracy`, `auroc`, `rmse`, …).
    pub scores: Vec<(String, f64)>,
    /// Notes about the input for the user (drift from the training data).
    pub notes: Vec<String>,
}

/// A model of some kind, read back from its directory by [`load_any`](crate::load_any):
/// every verb of the program goes through this trait.
///
/// The verbs a kind does not have answer [`JobError::Unsupported`], so every kind goes
/// through every verb or says why not.
pub trait Model: Send + Sync + Debug {
    /// What the model is.
    fn info(&self) -> &ModelInfo;

    /// Checks and encodes the rows of `input` for [`score`](Self::score). Bad input fails
    /// here, naming the file or the row and column.
    fn prepare(&self, input: &Input) -> Result<Batch> {
        let _ = input;
        Err(self.unsupported(Verb::Predict))
    }

    /// One forward pass over prepared rows (possibly several requests' batches,
    /// [`Batch::join`]ed).
    fn score(&self, batch: &Batch) -> Result<Outputs> {
        let _ = batch;
        Err(self.unsupported(Verb::Predict))
    }

    /// Predictions for the rows of `input`: [`prepare`](Self::prepare), then
    /// [`score`](Self::score).
    fn predict(&self, input: &Input) -> Result<Predictions> {
        let batch = self.prepare(input)?;
        let outputs = self.score(&batch)?;
        Ok(Predictions {
            key: batch.key,
            keys: batch.keys,
            outputs,
            notes: batch.notes,
        })
    }

    /// The rows of labelled `input` prepared for [`score`](Self::score), with their targets
    /// (what [`evaluate`](Self::evaluate) scores against).
    fn labelled(&self, input: &Input) -> Result<(Batch, sora_train::Targets)> {
        let _ = input;
        Err(self.unsupported(Verb::Evaluate))
    }

    /// Scores on labelled data.
    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let _ = input;
        Err(self.unsupported(Verb::Evaluate))
    }

    /// Attributions of some rows' predictions to their inputs.
    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        let _ = (input, request);
        Err(self.unsupported(Verb::Explain))
    }

    /// Writes text after a prompt, handing each piece to `on_piece` as it is drawn.
    fn generate(
        &self,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Generated> {
        let _ = (request, on_piece);
        Err(self.unsupported(Verb::Generate))
    }

    /// The `n` best items for each user (with up to `because` rated items supporting each).
    fn recommend(&self, users: &[String], n: usize, because: usize) -> Result<Vec<UserItems>> {
        let _ = (users, n, because);
        Err(self.unsupported(Verb::Recommend))
    }

    /// The refusal of `verb`, with the kind's hint of what to do instead.
    fn unsupported(&self, verb: Verb) -> JobError {
        JobError::Unsupported {
            dir: None,
            kind: self.info().kind.clone(),
            verb,
            hint: self.hint(verb),
        }
    }

    /// What to do instead of `verb`, starting with `; ` (empty: nothing to suggest).
    fn hint(&self, verb: Verb) -> String {
        let _ = verb;
        String::new()
    }
}
