//! The text job: a CSV file with a text column and a label column in; a trained, evaluated,
//! saved text classifier out.
//!
//! [`load`] reads the two columns (errors name the file and the column). The file must be
//! UTF-8: sora-data's [`Table`] refuses text that is not, naming the file, the line and the
//! field. [`train`] splits the
//! documents (stratified, seeded), builds the tokenizer's [`Vocabulary`] from the **training**
//! documents only, pads or truncates every document to one length (by default the 95th
//! percentile of the training lengths, capped at [`DEFAULT_MAX_SEQ_LEN`]), trains a
//! [`TextEncoder`] model (bag of embeddings, LSTM or GRU) with early stopping on the
//! validation part and evaluates it on the test part. [`TextRun::save`] writes a model
//! directory with [`TEXT_FILE`] (tokenizer, vocabulary, length, class names);
//! [`TextModel`] reads it back to predict and evaluate raw text.
//!
//! [`tfidf_logistic`] is the linear reference: TF-IDF over word 1–2-grams (sublinear term
//! frequency, smoothed IDF, L2-normalised rows, as scikit-learn's `TfidfVectorizer`) and an
//! L2-regularised multinomial logistic regression fitted by accelerated full-batch gradient
//! descent.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sora_core::{HeadSpec, Model, ModelSpec, SpecError, Task};
use sora_data::{DataError, Split, Table, stratified_split};
use sora_text::tokenize::{
    TextError, Tokenizer, TokenizerConfig, Truncate, VocabConfig, Vocabulary, pad_batch,
};
use sora_text::{Cell, SeqPool, TextEncoder, TextSpec};
use sora_train::{
    Fitted, History, Metrics, ModelDir, Targets, TokenData, TrainConfig, TrainError, Trainer,
};

/// File name of the saved text pipeline inside a model directory.
pub const TEXT_FILE: &str = "text.json";
/// Longest default sequence length (the 95th percentile of training lengths is capped here).
pub const DEFAULT_MAX_SEQ_LEN: usize = 64;
/// Default maximum epochs (early stopping usually ends sooner).
pub const DEFAULT_EPOCHS: usize = 40;
/// Default documents per step.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Default learning rate (Adam).
pub const DEFAULT_LR: f64 = 2e-3;
/// Default early-stopping patience, in epochs.
pub const DEFAULT_PATIENCE: usize = 5;

/// Why the text job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextJobError {
    /// The CSV file could not be read (this includes text that is not UTF-8, reported with
    /// its row).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Tokenizer or vocabulary error.
    #[error(transparent)]
    Text(#[from] TextError),
    /// Training, evaluation or the model directory failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The model spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A named column is not in the file.
    #[error("{file}: no column `{column}` (columns: {found})")]
    MissingColumn {
        /// The CSV file.
        file: String,
        /// The column asked for.
        column: String,
        /// The file's columns, comma-separated.
        found: String,
    },
    /// Every document of the text column is empty (or has no tokens).
    #[error("{file}: column `{column}` has no text in any row")]
    NoText {
        /// The CSV file.
        file: String,
        /// The text column.
        column: String,
    },
    /// The label column holds fewer than two classes.
    #[error(
        "{file}: column `{column}` has {n_classes} class(es) ({classes:?}); a classifier needs at least 2"
    )]
    TooFewClasses {
        /// The CSV file.
        file: String,
        /// The label column.
        column: String,
        /// How many classes it has.
        n_classes: usize,
        /// Their names.
        classes: Vec<String>,
    },
    /// A label of the data is not one of the model's classes.
    #[error("{file}: row {row}: label {label:?} is not one of the model's classes {classes:?}")]
    UnknownClass {
        /// The CSV file.
        file: String,
        /// The 1-based data row.
        row: usize,
        /// The label found.
        label: String,
        /// The model's classes.
        classes: Vec<String>,
    },
    /// The options do not fit the data, or a model directory is not a text model.
    #[error("{0}")]
    Options(String),
}

/// Result type of the text job.
pub type Result<T, E = TextJobError> = std::result::Result<T, E>;

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

fn column(table: &Table, name: &str) -> Result<usize> {
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
/// use sora::data::Table;
/// use sora::textclf::{TextJobError, load};
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

/// The encoder architecture of the default model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// A bag of embeddings (pooled embeddings, no recurrence).
    #[default]
    Bag,
    /// A bidirectional LSTM over the embeddings.
    Lstm,
    /// A bidirectional GRU over the embeddings.
    Gru,
}

impl EncoderKind {
    /// Parses `bag`, `lstm` or `gru`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "bag" => EncoderKind::Bag,
            "lstm" => EncoderKind::Lstm,
            "gru" => EncoderKind::Gru,
            _ => return None,
        })
    }
}

/// Everything [`train`] needs besides the documents.
#[derive(Debug, Clone)]
pub struct TextConfig {
    /// How documents become tokens.
    pub tokenizer: TokenizerConfig,
    /// How the vocabulary is built from the training documents.
    pub vocab: VocabConfig,
    /// Tokens per document (`None`: the 95th percentile of training lengths, capped at
    /// `max_seq_len`).
    pub seq_len: Option<usize>,
    /// The cap of the automatic sequence length.
    pub max_seq_len: usize,
    /// Which end of a long document is kept.
    pub truncate: Truncate,
    /// The encoder.
    pub encoder: EncoderKind,
    /// Embedding width.
    pub d_embed: usize,
    /// Hidden width of each recurrent direction.
    pub d_hidden: usize,
    /// Pooling over time.
    pub pool: SeqPool,
    /// Dropout on the embeddings.
    pub dropout: f64,
    /// Hidden widths of the head.
    pub head: Vec<usize>,
    /// The training loop.
    pub train: TrainConfig,
    /// Fraction held out for validation (early stopping).
    pub valid_fraction: f64,
    /// Fraction held out for the final test.
    pub test_fraction: f64,
    /// Data-parallel training over several devices or processes (none by default).
    pub parallel: sora_train::Parallel,
}

impl Default for TextConfig {
    /// Lower-cased words, every training token kept, 95th-percentile length capped at 64, a
    /// bag of 64-wide embeddings (mean pooling, dropout 0.25) and a linear head; Adam
    /// (learning rate 2e-3), batch 32, up to 40 epochs with early stopping (patience 5) on a
    /// 10 % validation split, 20 % test split.
    fn default() -> Self {
        Self {
            tokenizer: TokenizerConfig::default(),
            vocab: VocabConfig::default(),
            seq_len: None,
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
            truncate: Truncate::Head,
            encoder: EncoderKind::Bag,
            d_embed: 64,
            d_hidden: 64,
            pool: SeqPool::Mean,
            dropout: 0.25,
            head: Vec::new(),
            train: TrainConfig::new(DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE, DEFAULT_LR)
                .with_optimizer(sora_train::OptimizerConfig::adam())
                .with_early_stopping(DEFAULT_PATIENCE, 1e-4),
            valid_fraction: 0.1,
            test_fraction: 0.2,
            parallel: sora_train::Parallel::None,
        }
    }
}

/// The saved text side of a model: tokenizer, vocabulary, length, class names and columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedText {
    /// How documents become tokens.
    pub tokenizer: TokenizerConfig,
    /// The vocabulary of the training documents.
    pub vocabulary: Vocabulary,
    /// Tokens per document.
    pub seq_len: usize,
    /// Which end of a long document is kept.
    pub truncate: Truncate,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
    /// The text column the model was trained on.
    pub text_column: String,
    /// The label column the model was trained on.
    pub target_column: String,
}

impl SavedText {
    /// Token ids and mask of `texts`, ready for the encoder, with `labels` (zeros when
    /// empty) as targets.
    pub fn encode(&self, texts: &[String], labels: &[usize]) -> Result<TokenData> {
        let tokenizer = Tokenizer::new(self.tokenizer.clone())?;
        let ids: Vec<Vec<usize>> = texts
            .iter()
            .map(|t| self.vocabulary.encode(&tokenizer.tokenize(t)))
            .collect();
        let batch = pad_batch(&ids, self.seq_len, self.truncate)?;
        let labels = if labels.is_empty() {
            vec![0; texts.len()]
        } else {
            labels.to_vec()
        };
        Ok(TokenData::new(
            batch.ids,
            batch.mask,
            batch.len,
            Targets::Classes {
                labels,
                n_classes: self.classes.len(),
            },
        )?)
    }
}

/// The 95th percentile of `lengths` (nearest rank), at least 1 and at most `cap`.
pub fn percentile_95(lengths: &[usize], cap: usize) -> usize {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let at = ((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(at).copied().unwrap_or(1).clamp(1, cap.max(1))
}

/// The default model spec for a vocabulary of `vocab_size` and `n_classes` classes.
pub fn model_spec(
    config: &TextConfig,
    vocab_size: usize,
    seq_len: usize,
    n_classes: usize,
) -> ModelSpec<TextSpec> {
    let mut encoder = TextSpec::bag(vocab_size, seq_len, config.d_embed)
        .with_pool(config.pool)
        .with_dropout(config.dropout);
    match config.encoder {
        EncoderKind::Bag => {}
        EncoderKind::Lstm => encoder = encoder.with_rnn(Cell::Lstm, config.d_hidden, 1, true),
        EncoderKind::Gru => encoder = encoder.with_rnn(Cell::Gru, config.d_hidden, 1, true),
    }
    ModelSpec::new(
        encoder,
        HeadSpec::new(&config.head),
        Task::Classification {
            n_classes: n_classes as i64,
        },
    )
}

/// A finished run of the job.
#[derive(Debug)]
pub struct TextRun {
    /// The spec trained.
    pub spec: ModelSpec<TextSpec>,
    /// The trained model (the best epoch's weights).
    pub model: Model<TextEncoder>,
    /// Per-epoch history.
    pub history: History,
    /// Best epoch (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Metrics on the test documents.
    pub test: Metrics,
    /// The text side, saved with the model.
    pub text: SavedText,
    /// The training config as run.
    pub train_config: TrainConfig,
    /// The split of the documents (indices into the data given to [`train`]).
    pub split: Split,
    /// Training documents cut to the sequence length.
    pub truncated: usize,
}

/// The stratified, seeded split [`train`] uses.
pub fn split(data: &TextData, config: &TextConfig) -> Split {
    stratified_split(
        &data.labels,
        config.valid_fraction,
        config.test_fraction,
        config.train.seed,
    )
}

/// Splits `data` (stratified, seeded by the training seed), trains on the training part with
/// early stopping on the validation part and evaluates on the test part. `text_column` and
/// `target_column` are recorded in [`TEXT_FILE`].
pub fn train(
    data: &TextData,
    columns: (&str, &str),
    config: &TextConfig,
    device: &Device,
) -> Result<TextRun> {
    if data.classes.len() < 2 {
        return Err(TextJobError::TooFewClasses {
            file: data.source.clone(),
            column: columns.1.to_string(),
            n_classes: data.classes.len(),
            classes: data.classes.clone(),
        });
    }
    let split = split(data, config);
    let tokenizer = Tokenizer::new(config.tokenizer.clone())?;
    let train_tokens: Vec<Vec<String>> = split
        .train
        .iter()
        .map(|&i| tokenizer.tokenize(&data.texts[i]))
        .collect();
    let vocabulary = Vocabulary::build(train_tokens.iter().map(Vec::as_slice), &config.vocab);
    let lengths: Vec<usize> = train_tokens.iter().map(Vec::len).collect();
    let seq_len = config
        .seq_len
        .unwrap_or_else(|| percentile_95(&lengths, config.max_seq_len))
        .max(1);
    let truncated = lengths.iter().filter(|&&l| l > seq_len).count();
    let text = SavedText {
        tokenizer: config.tokenizer.clone(),
        vocabulary,
        seq_len,
        truncate: config.truncate,
        classes: data.classes.clone(),
        text_column: columns.0.to_string(),
        target_column: columns.1.to_string(),
    };
    let part = |rows: &[usize]| {
        let sub = data.subset(rows);
        text.encode(&sub.texts, &sub.labels)
    };
    let train_data = part(&split.train)?;
    let valid_data = (!split.valid.is_empty())
        .then(|| part(&split.valid))
        .transpose()?;
    let test_data = part(&split.test)?;
    let spec = model_spec(config, text.vocabulary.len(), seq_len, data.classes.len());
    let checked = spec.check()?;
    let mut train_config = config.train.clone();
    if valid_data.is_none() {
        train_config.early_stopping = None;
    }
    let trainer =
        Trainer::new(train_config.clone(), device).with_parallel(config.parallel.clone())?;
    let fitted = trainer.fit(trainer.init(&checked), &train_data, valid_data.as_ref())?;
    let test = trainer.evaluate(&fitted.model, &test_data)?;
    let Fitted {
        model,
        history,
        best_epoch,
        stopped_early,
    } = fitted;
    Ok(TextRun {
        spec,
        model,
        history,
        best_epoch,
        stopped_early,
        test,
        text,
        train_config,
        split,
        truncated,
    })
}

impl TextRun {
    /// Saves the model directory: spec, weights, [`TEXT_FILE`], training config, test
    /// metrics, history and learning curves; an existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(&self.text).expect("the text pipeline serialises");
        ModelDir::new(dir).save(
            &self.spec.check()?,
            &self.model,
            &self.train_config,
            Some(&self.test),
            Some(&self.history),
            &[(TEXT_FILE, text)],
        )?;
        Ok(())
    }

    /// The trained model with its text side, as [`TextModel::load`] would read it back.
    pub fn to_model(&self, device: &Device) -> TextModel {
        TextModel {
            text: self.text.clone(),
            model: self.model.clone(),
            // The spec was checked before training; a failure cannot happen here.
            summary: self
                .spec
                .check()
                .map(|c| c.summary().to_string())
                .unwrap_or_default(),
            device: device.clone(),
        }
    }
}

/// A text model read back from its directory.
#[derive(Debug, Clone)]
pub struct TextModel {
    /// The text side.
    pub text: SavedText,
    /// The model.
    pub model: Model<TextEncoder>,
    /// The checked spec's summary: layers, output shapes, parameters.
    pub summary: String,
    device: Device,
}

impl TextModel {
    /// Whether `dir` holds a text model (it has [`TEXT_FILE`]).
    pub fn is_text_model(dir: &Path) -> bool {
        dir.join(TEXT_FILE).is_file()
    }

    /// Reads a model directory written by [`TextRun::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<TextModel> {
        let model_dir = ModelDir::new(dir);
        let text: SavedText = model_dir.read_json(TEXT_FILE)?.ok_or_else(|| {
            TextJobError::Options(format!(
                "{}: no {TEXT_FILE}: not a text model directory",
                dir.display()
            ))
        })?;
        let loaded = model_dir.load::<TextSpec>(device)?;
        let spec = &loaded.spec.spec().encoder;
        if spec.vocab_size != text.vocabulary.len() as i64 || spec.seq_len != text.seq_len as i64 {
            return Err(TextJobError::Options(format!(
                "{}: {TEXT_FILE} has {} tokens and length {}, spec.json takes {} and {}",
                dir.display(),
                text.vocabulary.len(),
                text.seq_len,
                spec.vocab_size,
                spec.seq_len
            )));
        }
        Ok(TextModel {
            text,
            model: loaded.model,
            summary: loaded.spec.summary().to_string(),
            device: device.clone(),
        })
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Reads the model's text column (and its label column, when `labelled`) from a CSV
    /// file; labels are mapped onto the model's classes.
    pub fn load_csv(&self, path: &Path, labelled: bool) -> Result<TextData> {
        let table = Table::read_csv(path)?;
        let text_col = column(&table, &self.text.text_column)?;
        let texts: Vec<String> = table.column(text_col).map(str::to_string).collect();
        let mut labels = Vec::new();
        if labelled {
            let col = column(&table, &self.text.target_column)?;
            for (row, label) in table.column(col).enumerate() {
                let label = label.trim();
                let class = self
                    .text
                    .classes
                    .iter()
                    .position(|c| c == label)
                    .ok_or_else(|| TextJobError::UnknownClass {
                        file: table.source().to_string(),
                        row: row + 1,
                        label: label.to_string(),
                        classes: self.text.classes.clone(),
                    })?;
                labels.push(class);
            }
        }
        Ok(TextData {
            texts,
            labels,
            classes: if labelled {
                self.text.classes.clone()
            } else {
                Vec::new()
            },
            source: table.source().to_string(),
        })
    }

    /// Class probabilities `[n, classes]` row-major for raw documents.
    pub fn predict(&self, texts: &[String]) -> Result<Vec<f32>> {
        let data = self.text.encode(texts, &[])?;
        Ok(sora_train::predict(&self.model, &data, 256, &self.device)?)
    }

    /// Metrics on labelled documents (labels are class indices of the model).
    pub fn evaluate(&self, texts: &[String], labels: &[usize]) -> Result<Metrics> {
        let data = self.text.encode(texts, labels)?;
        Ok(sora_train::evaluate(&self.model, &data, 256, &self.device)?)
    }
}

/// Accuracy of the linear reference on a split: TF-IDF over word 1–2-grams of the default
/// tokenizer (vocabulary and IDF from `train` only; sublinear term frequency `1 + ln tf`,
/// smoothed IDF `ln((1 + n) / (1 + df)) + 1`, L2-normalised rows) and a multinomial logistic
/// regression with L2 penalty `‖W‖² / (2C)` on the summed log-loss (scikit-learn's `C`),
/// fitted by Nesterov-accelerated full-batch gradient descent until the gradient's norm is
/// below `1e-6` (or 5,000 iterations).
///
/// Returns the test predictions (class indices).
pub fn tfidf_logistic(
    train: &TextData,
    test: &TextData,
    n_classes: usize,
    c: f64,
) -> Result<Vec<usize>> {
    let tokenizer = Tokenizer::new(TokenizerConfig::default())?;
    let grams = |text: &str| -> Vec<String> {
        let words = tokenizer.tokenize(text);
        let mut out = words.clone();
        out.extend(words.windows(2).map(|w| format!("{} {}", w[0], w[1])));
        out
    };
    let train_grams: Vec<Vec<String>> = train.texts.iter().map(|t| grams(t)).collect();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut df: Vec<f64> = Vec::new();
    for doc in &train_grams {
        let mut seen = std::collections::HashSet::new();
        for g in doc {
            if seen.insert(g.as_str()) {
                let next = index.len();
                let id = *index.entry(g.clone()).or_insert(next);
                if id == df.len() {
                    df.push(0.0);
                }
                df[id] += 1.0;
            }
        }
    }
    let n = train.len() as f64;
    let idf: Vec<f64> = df
        .iter()
        .map(|&d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
        .collect();
    let vectorize = |doc: &[String]| -> Vec<(usize, f64)> {
        let mut tf: HashMap<usize, f64> = HashMap::new();
        for g in doc {
            if let Some(&id) = index.get(g) {
                *tf.entry(id).or_default() += 1.0;
            }
        }
        let mut row: Vec<(usize, f64)> = tf
            .into_iter()
            .map(|(id, t)| (id, (1.0 + t.ln()) * idf[id]))
            .collect();
        row.sort_unstable_by_key(|&(id, _)| id);
        let norm = row.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    };
    let x_train: Vec<Vec<(usize, f64)>> = train_grams.iter().map(|d| vectorize(d)).collect();
    let d = index.len();
    let k = n_classes;
    // Weights `[d + 1, k]` (the last row is the unpenalised intercept); objective is the mean
    // log-loss plus `‖W‖² / (2 C n)`.
    let lambda = 1.0 / (c * n);
    let logits = |w: &[f64], row: &[(usize, f64)]| -> Vec<f64> {
        let mut z: Vec<f64> = w[d * k..].to_vec();
        for &(j, v) in row {
            for (zc, wc) in z.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                *zc += v * wc;
            }
        }
        z
    };
    let gradient = |w: &[f64]| -> Vec<f64> {
        let mut g = vec![0.0; (d + 1) * k];
        for (row, &label) in x_train.iter().zip(&train.labels) {
            let mut p = logits(w, row);
            let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            p.iter_mut().for_each(|z| *z = (*z - max).exp());
            let sum: f64 = p.iter().sum();
            p.iter_mut().for_each(|z| *z /= sum);
            p[label] -= 1.0;
            for &(j, v) in row {
                for (gc, pc) in g[j * k..(j + 1) * k].iter_mut().zip(&p) {
                    *gc += v * pc / n;
                }
            }
            for (gc, pc) in g[d * k..].iter_mut().zip(&p) {
                *gc += pc / n;
            }
        }
        for (gc, wc) in g[..d * k].iter_mut().zip(&w[..d * k]) {
            *gc += lambda * wc;
        }
        g
    };
    // Rows have unit norm (plus the intercept's 1), so the Hessian of the mean softmax loss
    // is bounded by 0.5 · 2 = 1; the penalty adds λ.
    let step = 1.0 / (1.0 + lambda);
    let mut w = vec![0.0; (d + 1) * k];
    let mut y = w.clone();
    let mut t = 1.0f64;
    for _ in 0..5000 {
        let g = gradient(&y);
        if g.iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-6 {
            w = y;
            break;
        }
        let next: Vec<f64> = y.iter().zip(&g).map(|(yi, gi)| yi - step * gi).collect();
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let momentum = (t - 1.0) / t_next;
        y = next
            .iter()
            .zip(&w)
            .map(|(n, o)| n + momentum * (n - o))
            .collect();
        w = next;
        t = t_next;
    }
    Ok(test
        .texts
        .iter()
        .map(|text| {
            let z = logits(&w, &vectorize(&grams(text)));
            (0..k).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap_or(0)
        })
        .collect())
}
