//! The `generate` kind: text in; a trained, evaluated, saved recurrent language model out,
//! and text written by it.
//!
//! [`load_text`] reads a plain UTF-8 file, [`load_csv_column`] one column of a CSV file (one
//! row per line). [`train`] turns the lines into one token stream — characters or words
//! ([`TokenKind`]), each line followed by the line-break token `"\n"` — and holds out its end
//! (the last [`GenerateConfig::valid_fraction`] of the tokens). The [`Vocabulary`] comes from
//! the training tokens only; held-out tokens it lacks read as `<unk>`. The training stream is
//! cut into [`GenerateConfig::batch_size`] contiguous streams read side by side in chunks of
//! [`GenerateConfig::seq_len`] tokens, the recurrent state carried from chunk to chunk and
//! detached between them (truncated back-propagation through time), with next-token
//! cross-entropy, Adam and gradient-norm clipping. After every epoch the model is evaluated
//! on the held-out stream (loss in nats per token, perplexity, bits per character for a
//! character model); the epoch with the lowest held-out loss is kept. Beside it, the
//! add-one-smoothed unigram and bigram models of the same tokens ([`ngram_baselines`]).
//!
//! [`GenerateRun::save`] writes a model directory: [`GENERATOR_FILE`] (token kind, tokenizer,
//! vocabulary, model shape), `model.safetensors`, `train.json`, `metrics.json`,
//! `history.json` and `curves.png`, built aside and swapped in (see
//! [`ModelDir::save_with`]). [`Generator::load`] reads it back and [`Generator::generate`]
//! writes text after a prompt, piece by piece.
//!
//! Prompts: the prompt is read as the start of a line (the line-break token goes first, so an
//! empty prompt starts a new line); it may be of any length (the recurrent model has no fixed
//! context: it is read [`PROMPT_CHUNK`](sora_text::lm::PROMPT_CHUNK) tokens at a time); characters or words the
//! vocabulary lacks become `<unk>` and are counted in [`Generated::unknown`]. Generation
//! stops after `max_tokens` tokens, or once the written text ends with one of the stop
//! strings (kept in the output).
//!
//! The same seed on the same backend gives the same weights, metrics and written text: the
//! initial weights are drawn from the seeded device under a lock shared by the runs of this
//! job, dropout masks and samples from ChaCha8 generators of their own. (Another job drawing
//! from the device's generator in the same process, at the same moment as the initial
//! weights, would still change them.)

use std::f64::consts::LN_2;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sora_core::weights::{load_safetensors, save_safetensors, write_atomic};
use sora_data::{DataError, Table};
use sora_text::Cell;
use sora_text::lm::{
    LanguageModel, LanguageModelConfig, LmError, LmState, Sampler, SamplingConfig,
};
use sora_text::tokenize::{TextError, Tokenizer, TokenizerConfig, VocabConfig, Vocabulary};
use sora_train::checkpoint::{
    self, CheckpointFiles, load_module, read_optimizer, read_state, write_state,
};
use sora_train::{CheckpointEvery, EpochRecord, History, ModelDir, Progress, TrainError, files};

mod baseline;
mod corpus;
mod generator;
mod train;

pub use baseline::{Baselines, LmMetrics, ngram_baselines};
pub use corpus::{Corpus, load_csv_column, load_text};
pub use generator::Generator;
pub use train::{GenerateConfig, GenerateRun, SavedGenerator, SavedMetrics, train};

use corpus::Tokens;
use train::evaluate;

use crate::kind::{CommonOptions, DataSource, JobConfig, Kind, LoopDefaults, RunContext, Trained};
use crate::model::{Evaluation, Input, InputSchema, ModelInfo, OutputKind};
use crate::{GenerateRequest, Generated, JobError, Verb};

/// File name of the saved generator (token kind, tokenizer, vocabulary, model shape) inside a
/// model directory.
pub const GENERATOR_FILE: &str = "generator.json";
/// The line-break token: every line of the text ends with it.
pub const LINE_BREAK: &str = "\n";

/// Why the generation job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A file could not be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A text file is not UTF-8.
    #[error("{}: not UTF-8 text (invalid bytes after byte {valid_up_to})", file.display())]
    NotUtf8 {
        /// The file.
        file: PathBuf,
        /// Bytes of valid UTF-8 before the first invalid one.
        valid_up_to: usize,
    },
    /// The CSV file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A named column is not in the CSV file.
    #[error("{file}: no column `{column}` (columns: {found})")]
    MissingColumn {
        /// The CSV file.
        file: String,
        /// The column asked for.
        column: String,
        /// The file's columns, comma-separated.
        found: String,
    },
    /// Tokenizer or vocabulary error.
    #[error(transparent)]
    Text(#[from] TextError),
    /// Model or sampler configuration error.
    #[error(transparent)]
    Lm(#[from] LmError),
    /// The model directory could not be written or read.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The text has no characters other than white space.
    #[error("{origin}: no text to learn from (empty or only white space)")]
    EmptyText {
        /// Where the text came from.
        origin: String,
    },
    /// The text is too short to train on and hold out a part.
    #[error(
        "{origin}: {tokens} {kind} tokens (line breaks included); a language model needs at least {needed}: 2 to train on and 2 held out"
    )]
    TooShort {
        /// Where the text came from.
        origin: String,
        /// Tokens in the text.
        tokens: usize,
        /// The token kind.
        kind: TokenKind,
        /// The fewest tokens accepted.
        needed: usize,
    },
    /// A job option is out of range.
    #[error("{field}: expected {expected}, found {found}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What it accepts.
        expected: &'static str,
        /// The value given.
        found: String,
    },
    /// A model directory is not a language model or is inconsistent.
    #[error("{}: {reason}", dir.display())]
    BadModelDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result type of the generation job.
pub type Result<T, E = GenerateError> = std::result::Result<T, E>;

fn invalid(field: &'static str, expected: &'static str, found: impl ToString) -> GenerateError {
    GenerateError::InvalidOption {
        field,
        expected,
        found: found.to_string(),
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// One Unicode scalar value (`char`), case kept.
    #[default]
    Char,
    /// A word or punctuation mark of the [`Tokenizer`] (lower-cased), written back separated
    /// by spaces.
    Word,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenKind::Char => "character",
            TokenKind::Word => "word",
        })
    }
}

impl From<GenerateError> for JobError {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::InvalidOption {
                field,
                expected,
                found,
            } => JobError::invalid(flag_name(field), expected, found),
            GenerateError::Lm(LmError::InvalidField {
                field,
                expected,
                found,
            }) => JobError::invalid(flag_name(field), expected, found),
            other => JobError::kind(other),
        }
    }
}

/// The option a config field is set by (`d_hidden` by `hidden`, `d_embed` by `embed`).
fn flag_name(field: &str) -> &str {
    match field {
        "d_hidden" => "hidden",
        "d_embed" => "embed",
        other => other,
    }
}

/// What a language model is.
fn describe(saved: &SavedGenerator, parameters: usize) -> ModelInfo {
    let m = &saved.model;
    ModelInfo {
        kind: Generate::NAME.to_string(),
        output: OutputKind::Text {
            tokens: saved.tokens.to_string(),
        },
        target: None,
        input: InputSchema::Prompt {
            tokens: saved.tokens.to_string(),
            vocabulary: saved.vocabulary.len(),
        },
        summary: format!(
            "embedding {} × {} → {} {:?} layer(s) of {} → {} logits; {parameters} parameters",
            m.vocab_size, m.d_embed, m.layers, m.cell, m.d_hidden, m.vocab_size
        ),
        parameters,
    }
}

impl JobConfig for GenerateConfig {
    fn check(&self) -> crate::Result<()> {
        GenerateConfig::check(self)?;
        self.model(3).check().map_err(GenerateError::from)?;
        Ok(())
    }
}

/// The `generate` kind.
#[derive(Debug, Clone, Copy)]
pub struct Generate;

/// The recurrent cell, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellKind {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl From<CellKind> for Cell {
    fn from(c: CellKind) -> Self {
        match c {
            CellKind::Lstm => Cell::Lstm,
            CellKind::Gru => Cell::Gru,
        }
    }
}

/// The options of `sora train --task generate` (with `--text`, `--hidden`, `--embed`,
/// `--seq-len`, `--min-count` and the loop options from the shared options).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Language models (--task generate)")]
pub struct GenerateOptions {
    /// The tokens: char (characters, case kept) or word (lower-cased words and punctuation).
    #[arg(long, value_enum, default_value_t = GenerateConfig::default().tokens)]
    pub tokens: TokenKind,
    /// The recurrent cell.
    #[arg(long, value_enum, default_value_t = CellKind::Lstm)]
    pub cell: CellKind,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = GenerateConfig::default().layers)]
    pub layers: usize,
}

impl Kind for Generate {
    const ENSEMBLES: bool = false;
    const NAME: &'static str = "generate";
    const ABOUT: &'static str =
        "a text file (or a CSV column): a recurrent language model that writes";
    type Config = GenerateConfig;
    type Options = GenerateOptions;
    type Data = Corpus;
    type Run = GenerateRun;
    type Model = Generator;

    fn defaults() -> LoopDefaults {
        let c = GenerateConfig::default();
        LoopDefaults {
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            optimizer: None,
            patience: None,
        }
    }

    fn configure(
        mut config: GenerateConfig,
        common: &CommonOptions,
        o: GenerateOptions,
    ) -> crate::Result<GenerateConfig> {
        // No class probabilities or values to calibrate, threshold or cover.
        common.decision()?.refuse(Self::NAME)?;
        // The validation part is the end of the text (`valid_fraction` of the config).
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--valid-fraction", common.valid_fraction.is_some()),
                ("--test-fraction", common.test_fraction.is_some()),
            ],
        )?;
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--optimizer", common.optimizer.is_some()),
                ("--patience", common.patience.is_some()),
                ("--spec", common.spec.is_some()),
            ],
        )?;
        if common.target.is_some() {
            return Err(JobError::OptionNotForKind {
                option: "--target".into(),
                reason: "a language model predicts the next token of the text; it takes no \
                         target column"
                    .into(),
            });
        }
        config.tokens = o.tokens;
        config.cell = o.cell.into();
        config.layers = o.layers;
        if let Some(dropout) = common.dropout {
            config.dropout = dropout;
        }
        match common.hidden.as_deref() {
            None => {}
            Some(&[h]) => config.d_hidden = h,
            Some(other) => {
                return Err(JobError::OptionNotForKind {
                    option: "--hidden".into(),
                    reason: format!(
                        "a language model takes one hidden width (--layers sets the depth), found {other:?}"
                    ),
                });
            }
        }
        if let Some(embed) = common.embed {
            config.d_embed = embed;
        }
        if let Some(min_count) = common.min_count {
            config.min_count = min_count;
        }
        if let Some(seq_len) = common.seq_len {
            config.seq_len = seq_len;
        }
        config.batch_size = common.batch_size.unwrap_or(config.batch_size);
        config.epochs = common.epochs.unwrap_or(config.epochs);
        config.lr = common.lr.unwrap_or(config.lr);
        config.seed = common.seed;
        config.progress = match common.progress {
            crate::ProgressMode::Quiet => Progress::Quiet,
            _ => Progress::Plain,
        };
        Ok(config)
    }

    fn load_data(
        config: &GenerateConfig,
        source: &DataSource,
        ctx: &RunContext,
    ) -> crate::Result<Corpus> {
        ctx.single_device(Self::NAME)?;
        let text = source
            .text
            .as_deref()
            .ok_or_else(|| JobError::OptionNotForKind {
                option: "--text".into(),
                reason:
                    "--task generate needs the text: a plain text FILE, or a COLUMN of the CSV \
                     file --data"
                        .into(),
            })?;
        let corpus = match &source.data {
            Some(csv) => load_csv_column(csv, text)?,
            None => load_text(Path::new(text))?,
        };
        ctx.say(format!(
            "{}: {} lines; {} tokens, {} {} layer(s) of {}, chunks of {}",
            corpus.source,
            corpus.lines.len(),
            config.tokens,
            config.layers,
            format!("{:?}", config.cell).to_lowercase(),
            config.d_hidden,
            config.seq_len
        ));
        Ok(corpus)
    }

    fn train(
        config: &GenerateConfig,
        corpus: Corpus,
        ctx: &RunContext,
    ) -> crate::Result<GenerateRun> {
        let run = train::train_in(&corpus, config, ctx)?;
        ctx.say(format!(
            "{} training tokens in {} streams, {} held out (the end of the text); {} tokens in the vocabulary; {} parameters",
            run.train_tokens,
            run.streams,
            run.held_out_tokens,
            run.saved.vocabulary.len(),
            run.saved.model.n_params()
        ));
        Ok(run)
    }

    fn load(dir: &Path, device: &Device) -> crate::Result<Generator> {
        Ok(Generator::load(dir, device)?)
    }
}

impl Trained for GenerateRun {
    fn report(&self) -> String {
        let kind = self.config.tokens;
        let mut out = format!("\nheld-out {kind} tokens:\n");
        out.push_str(&format!(
            "  {:<20} {:>10} {:>10}\n",
            "model", "perplexity", "bits/char"
        ));
        let best = format!("{:?} (epoch {})", self.config.cell, self.best_epoch).to_lowercase();
        for (name, m) in [
            ("unigram (add-one)", self.baselines.unigram),
            ("bigram (add-one)", self.baselines.bigram),
            (best.as_str(), self.held_out),
        ] {
            let bits = m
                .bits_per_char
                .map_or_else(|| "-".to_string(), |b| format!("{b:.3}"));
            out.push_str(&format!("  {name:<20} {:>10.3} {bits:>10}\n", m.perplexity));
        }
        out
    }

    fn save(&self, dir: &Path) -> crate::Result<()> {
        Ok(GenerateRun::save(self, dir)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_lines() {
        let chars = Tokens::new(TokenKind::Char, &TokenizerConfig::default()).unwrap();
        assert_eq!(chars.text("ab\nc"), ["a", "b", "\n", "c"]);
        assert_eq!(chars.text("é\r\n"), ["é", "\n"]);
        let words = Tokens::new(TokenKind::Word, &GenerateConfig::default().tokenizer).unwrap();
        assert_eq!(
            words.text("Good food!\nBad"),
            ["good", "food", "!", "\n", "bad"]
        );
        assert_eq!(words.piece(None, "good"), "good");
        assert_eq!(words.piece(Some("good"), "food"), " food");
        assert_eq!(words.piece(Some("food"), "\n"), "\n");
        assert_eq!(words.piece(Some("\n"), "bad"), "bad");
    }

    #[test]
    fn options_are_checked() {
        let field = |config: GenerateConfig| match config.check().unwrap_err() {
            GenerateError::InvalidOption { field, .. } => field,
            other => panic!("{other}"),
        };
        let base = GenerateConfig::default();
        assert!(base.check().is_ok());
        assert_eq!(
            field(GenerateConfig {
                seq_len: 0,
                ..base.clone()
            }),
            "seq_len"
        );
        assert_eq!(
            field(GenerateConfig {
                lr: -1.0,
                ..base.clone()
            }),
            "lr"
        );
        assert_eq!(
            field(GenerateConfig {
                valid_fraction: 0.0,
                ..base.clone()
            }),
            "valid_fraction"
        );
    }

    #[test]
    fn bigram_baseline_counts() {
        // V = 3 (ids 1, 2, 3). Train 2 3 2: c(2)=2, c(3)=1, N=3; c(2 3)=1, c(3 2)=1.
        let b = ngram_baselines(&[2, 3, 2], &[2, 3], 4, TokenKind::Char);
        let unigram = -((1.0f64 + 1.0) / (3.0 + 3.0)).ln();
        let bigram = -((1.0f64 + 1.0) / (1.0 + 3.0)).ln();
        assert!((b.unigram.loss - unigram).abs() < 1e-12);
        assert!((b.bigram.loss - bigram).abs() < 1e-12);
        assert_eq!(b.unigram.bits_per_char, Some(unigram / LN_2));
    }
}
