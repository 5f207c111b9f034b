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
mod data;
pub mod explain;
mod model;
mod train;

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
use sora_train::{Fitted, History, Metrics, ModelDir, Targets, TokenData, TrainConfig, TrainError};

pub use baseline::tfidf_logistic;
pub use data::{TextData, load, load_csv};
pub use model::TextModel;
pub use train::{
    EncoderKind, SavedText, TextConfig, TextRun, model_spec, percentile_95, split, train,
};

use data::column;
use train::train_in;

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
    /// The seeded split left the validation or test part empty ([`JobError::EmptyPart`]).
    #[error(transparent)]
    Split(Box<crate::JobError>),
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
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--spec", common.spec.is_some()),
                ("--dropout", common.dropout.is_some()),
            ],
        )?;
        config.encoder = o.encoder;
        common.apply_holdout(&mut config.holdout);
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

    /// The documents and their classes; documents are not grouped.
    fn examples(
        config: &TextConfig,
        source: &TextSource,
        group: Option<&str>,
    ) -> crate::Result<crate::Examples> {
        if group.is_some() {
            return Err(JobError::OptionNotForKind {
                option: "--group".into(),
                reason: "text classifiers read the text and label columns only".into(),
            });
        }
        Ok(crate::Examples {
            n: source.data.len(),
            valid_fraction: config.holdout.valid_fraction,
            labels: Some(source.data.labels.clone()),
            groups: None,
        })
    }
}
