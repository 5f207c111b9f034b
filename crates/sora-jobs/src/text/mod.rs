//! The `text` kind: a CSV file with a text column and a label column in; a trained,
//! evaluated, saved text classifier out.
//!
//! [`load`] reads the two columns (errors name the file and the column). The file must be
//! UTF-8: sora-data's [`Table`] refuses text that is not, naming the file, the line and the
//! field. [`train`] splits the
//! documents (stratified, seeded), builds the tokenizer's [`Vocabulary`] from the **training**
//! documents only, pads or truncates every document to one length (by default the 95th
//! percentile of the training lengths, capped at [`TextConfig::max_seq_len`], 64 by default), trains a
//! [`TextEncoder`] model (bag of embeddings, LSTM or GRU) with early stopping on the
//! validation part and evaluates it on the test part. [`TextRun::save`] writes a model
//! directory with [`TEXT_FILE`] (tokenizer, vocabulary, length, class names);
//! [`TextModel`] reads it back to predict and evaluate raw text.
//!
//! [`TextModel::explain_texts`] attributes a prediction to the tokens (integrated gradients,
//! saliency or input × gradient at the embedding output, or ablation of each token).
//!
//! [`tfidf_logistic`] is the linear reference: TF-IDF over word 1–2-grams (sublinear term
//! frequency, smoothed IDF, L2-normalised rows, as scikit-learn's `TfidfVectorizer`) and an
//! L2-regularised multinomial logistic regression fitted by accelerated full-batch gradient
//! descent.

mod baseline;
pub mod explain;
mod model;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sora_core::{HeadSpec, Model, ModelSpec, SpecError, Task};
use sora_data::{DataError, Split, Table};
use sora_text::tokenize::{
    TextError, Tokenizer, TokenizerConfig, Truncate, VocabConfig, Vocabulary, pad_batch,
};
use sora_text::{Cell, SeqPool, TextEncoder, TextSpec};
use sora_train::{
    Fitted, History, Metrics, ModelDir, Targets, TokenData, TrainConfig, TrainError, Trainer,
};

pub use baseline::tfidf_logistic;
pub use model::TextModel;

use crate::kind::{
    CommonOptions, DataSource, Holdout, JobConfig, Kind, LoopDefaults, RunContext, Trained,
};
use crate::{EARLY_STOPPING_MIN_DELTA, JobError};

/// File name of the saved text pipeline inside a model directory.
pub const TEXT_FILE: &str = "text.json";

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
    /// A model directory has no text pipeline.
    #[error("{}: no {TEXT_FILE}: not a text model directory", .dir.display())]
    NoTextFile {
        /// The directory.
        dir: PathBuf,
    },
    /// A model directory's text pipeline and spec disagree.
    #[error(
        "{}: {TEXT_FILE} has {tokens} tokens and length {seq_len}, spec.json takes {spec_tokens} \
         and {spec_seq_len}", .dir.display()
    )]
    TextMismatch {
        /// The directory.
        dir: PathBuf,
        /// Tokens of the saved vocabulary.
        tokens: usize,
        /// The saved sequence length.
        seq_len: usize,
        /// The spec's vocabulary size.
        spec_tokens: i64,
        /// The spec's sequence length.
        spec_seq_len: i64,
    },
    /// An attribution failed.
    #[error(transparent)]
    Explain(#[from] sora_explain::ExplainError),
}

impl From<TextJobError> for JobError {
    fn from(e: TextJobError) -> Self {
        JobError::kind(e)
    }
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

/// The encoder architecture of the default model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
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
    /// Fractions held out for validation (early stopping) and the final test.
    pub holdout: Holdout,
}

impl Default for TextConfig {
    /// Lower-cased words, every training token kept, 95th-percentile length capped at 64, a
    /// bag of 64-wide embeddings (mean pooling, dropout 0.25) and a linear head; Adam
    /// (learning rate 2e-3), batch 32, up to 40 epochs with early stopping (patience 5) on a
    /// 10 % validation split, 20 % test split, seed 42.
    fn default() -> Self {
        Self {
            tokenizer: TokenizerConfig::default(),
            vocab: VocabConfig::default(),
            seq_len: None,
            max_seq_len: 64,
            truncate: Truncate::Head,
            encoder: EncoderKind::Bag,
            d_embed: 64,
            d_hidden: 64,
            pool: SeqPool::Mean,
            dropout: 0.25,
            head: Vec::new(),
            train: TrainConfig::new(40, 32, 2e-3)
                .with_optimizer(sora_train::OptimizerConfig::adam())
                .with_early_stopping(5, EARLY_STOPPING_MIN_DELTA)
                .with_seed(crate::DEFAULT_SEED),
            holdout: Holdout {
                valid_fraction: 0.1,
                test_fraction: 0.2,
            },
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
    config.holdout.stratified(&data.labels, config.train.seed)
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
    train_in(data, columns, config, &RunContext::quiet(device.clone()))
}

fn train_in(
    data: &TextData,
    columns: (&str, &str),
    config: &TextConfig,
    ctx: &RunContext,
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
        Trainer::new(train_config.clone(), &ctx.device).with_parallel(ctx.parallel.clone())?;
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
    /// Saves the model directory: manifest, spec, weights, [`TEXT_FILE`], training config,
    /// test metrics, history and learning curves; an existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(&self.text).expect("the text pipeline serialises");
        let checked = self.spec.check()?;
        let info = model::describe(
            &self.text,
            &checked.summary().to_string(),
            self.model.num_params(),
        );
        ModelDir::new(dir).save(
            &info.manifest(),
            &checked,
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
        // The spec was checked before training; a failure cannot happen here.
        let summary = self
            .spec
            .check()
            .map(|c| c.summary().to_string())
            .unwrap_or_default();
        TextModel::new(self.text.clone(), self.model.clone(), summary, device)
    }
}

impl Trained for TextRun {
    fn report(&self) -> String {
        crate::outcome(
            self.best_epoch,
            self.history.epochs.len(),
            self.stopped_early,
            &self.test,
            Some(&self.text.classes),
        )
    }

    fn save(&self, dir: &Path) -> crate::Result<()> {
        Ok(TextRun::save(self, dir)?)
    }
}

impl JobConfig for TextConfig {
    fn check(&self) -> crate::Result<()> {
        self.holdout.check()?;
        for (field, value) in [
            ("seq_len", self.seq_len.unwrap_or(1)),
            ("embed", self.d_embed),
            ("max_seq_len", self.max_seq_len),
        ] {
            if value == 0 {
                return Err(JobError::invalid(field, "at least 1", value));
            }
        }
        Ok(())
    }
}

/// The `text` kind.
#[derive(Debug, Clone, Copy)]
pub struct Text;

/// The options of `sora train` for text classifiers (with `--text`, `--target`, `--seq-len`,
/// `--embed`, `--min-count` and `--hidden` from the shared options).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Text classifiers (--task text)")]
pub struct TextOptions {
    /// Text encoder: a bag of embeddings, or bidirectional LSTM or GRU layers.
    #[arg(long, value_enum, default_value_t = TextConfig::default().encoder)]
    pub encoder: EncoderKind,
}

/// The documents of a run and the columns they came from.
#[derive(Debug, Clone)]
pub struct TextSource {
    /// The documents with their labels.
    pub data: TextData,
    /// The text column.
    pub text_column: String,
    /// The label column.
    pub target_column: String,
}

impl Kind for Text {
    const NAME: &'static str = "text";
    const ABOUT: &'static str = "a CSV text column and a label column: a text classifier";
    type Config = TextConfig;
    type Options = TextOptions;
    type Data = TextSource;
    type Run = TextRun;
    type Model = TextModel;

    fn defaults() -> LoopDefaults {
        LoopDefaults::of(&TextConfig::default().train)
    }

    fn configure(
        mut config: TextConfig,
        common: &CommonOptions,
        o: TextOptions,
    ) -> crate::Result<TextConfig> {
        CommonOptions::refuse(Self::NAME, &[("--spec", common.spec.is_some())])?;
        config.encoder = o.encoder;
        if common.seq_len.is_some() {
            config.seq_len = common.seq_len;
        }
        if let Some(embed) = common.embed {
            config.d_embed = embed;
        }
        if let Some(min_count) = common.min_count {
            config.vocab.min_count = min_count;
        }
        if let Some(hidden) = &common.hidden {
            config.head = hidden.clone();
        }
        common.apply(&mut config.train);
        Ok(config)
    }

    fn load_data(
        _config: &TextConfig,
        source: &DataSource,
        ctx: &RunContext,
    ) -> crate::Result<TextSource> {
        let column = source
            .text
            .clone()
            .ok_or_else(|| JobError::OptionNotForKind {
                option: "--text".into(),
                reason: "a text classifier needs the CSV column holding the documents".into(),
            })?;
        let target = source.target("a text classifier")?.to_string();
        let path = source.data()?;
        let data = load_csv(path, &column, Some(&target))?;
        ctx.say(format!(
            "{}: {} documents, classes {:?}",
            path.display(),
            data.len(),
            data.classes
        ));
        Ok(TextSource {
            data,
            text_column: column,
            target_column: target,
        })
    }

    fn train(config: &TextConfig, source: TextSource, ctx: &RunContext) -> crate::Result<TextRun> {
        let run = train_in(
            &source.data,
            (&source.text_column, &source.target_column),
            config,
            ctx,
        )?;
        ctx.say(format!(
            "documents: {} train, {} validation, {} test (stratified, seed {}); {} tokens in the vocabulary, length {} ({} training documents cut)",
            run.split.train.len(),
            run.split.valid.len(),
            run.split.test.len(),
            config.train.seed,
            run.text.vocabulary.len(),
            run.text.seq_len,
            run.truncated
        ));
        ctx.say(format!("\n{}\n", run.spec.check()?.summary()));
        Ok(run)
    }

    fn load(dir: &Path, device: &Device) -> crate::Result<TextModel> {
        Ok(TextModel::load(dir, device)?)
    }
}
