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
use sora_train::{EpochRecord, History, ModelDir, Progress, TrainError, files};

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

/// Lines of text to learn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The lines, without their line breaks.
    pub lines: Vec<String>,
    /// Where they came from (a file, or `file:column`).
    pub source: String,
}

/// Reads a plain UTF-8 text file into lines (`\n` or `\r\n` line ends).
pub fn load_text(path: &Path) -> Result<Corpus> {
    let bytes = std::fs::read(path).map_err(|source| GenerateError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| GenerateError::NotUtf8 {
        file: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })?;
    Ok(Corpus {
        lines: text.lines().map(str::to_string).collect(),
        source: path.display().to_string(),
    })
}

/// Reads one column of a CSV file, one row per line (line breaks inside a field become
/// spaces).
pub fn load_csv_column(path: &Path, column: &str) -> Result<Corpus> {
    let table = Table::read_csv(path)?;
    let col = table
        .column_index(column)
        .ok_or_else(|| GenerateError::MissingColumn {
            file: table.source().to_string(),
            column: column.to_string(),
            found: table.headers().join(", "),
        })?;
    Ok(Corpus {
        lines: table
            .column(col)
            .map(|cell| cell.replace("\r\n", " ").replace(['\n', '\r'], " "))
            .collect(),
        source: format!("{}:{column}", table.source()),
    })
}

/// How text becomes tokens, and back.
#[derive(Debug, Clone, PartialEq)]
struct Tokens {
    kind: TokenKind,
    words: Tokenizer,
}

impl Tokens {
    fn new(kind: TokenKind, tokenizer: &TokenizerConfig) -> Result<Self> {
        Ok(Self {
            kind,
            words: Tokenizer::new(tokenizer.clone())?,
        })
    }

    /// The tokens of one line, without its line break.
    fn line(&self, line: &str) -> Vec<String> {
        match self.kind {
            TokenKind::Char => line.chars().map(String::from).collect(),
            TokenKind::Word => self.words.tokenize(line),
        }
    }

    /// The tokens of text that may span lines: each line break is the line-break token.
    fn text(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                tokens.push(LINE_BREAK.to_string());
            }
            tokens.extend(self.line(line.strip_suffix('\r').unwrap_or(line)));
        }
        tokens
    }

    /// The text of `token` written after `previous`.
    fn piece(&self, previous: Option<&str>, token: &str) -> String {
        match self.kind {
            TokenKind::Char => token.to_string(),
            TokenKind::Word => match previous {
                None | Some(LINE_BREAK) => token.to_string(),
                Some(_) if token == LINE_BREAK => token.to_string(),
                Some(_) => format!(" {token}"),
            },
        }
    }
}

/// Everything [`train`] needs besides the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Characters or words.
    pub tokens: TokenKind,
    /// The word tokenizer (used with [`TokenKind::Word`]).
    pub tokenizer: TokenizerConfig,
    /// Keep tokens seen at least this many times in the training part (others read as
    /// `<unk>`).
    pub min_count: usize,
    /// Embedding width.
    pub d_embed: usize,
    /// Hidden width of each recurrent layer.
    pub d_hidden: usize,
    /// Stacked recurrent layers.
    pub layers: usize,
    /// The recurrent cell.
    pub cell: Cell,
    /// Dropout on the embeddings, between layers and before the projection.
    pub dropout: f64,
    /// Tokens per chunk of truncated back-propagation through time.
    pub seq_len: usize,
    /// Streams read side by side (fewer when the text is short: each needs 2 tokens).
    pub batch_size: usize,
    /// Epochs (passes over the training text).
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Gradients are scaled down to at most this global L2 norm.
    pub clip_norm: f64,
    /// Fraction of the tokens, at the end of the text, held out for evaluation, in
    /// `(0, 0.5]`.
    pub valid_fraction: f64,
    /// Seed of the initial weights and of dropout.
    pub seed: u64,
    /// Per-epoch lines on standard output (anything but [`Progress::Quiet`]) or nothing.
    pub progress: Progress,
}

impl Default for GenerateConfig {
    /// Characters; a one-layer LSTM, 64-wide embeddings, 256 hidden units, dropout 0.1;
    /// chunks of 64 tokens, 32 streams, 10 epochs, Adam at 3e-3 with gradients clipped to
    /// norm 1; the last 10 % of the text held out; seed 42.
    fn default() -> Self {
        Self {
            tokens: TokenKind::Char,
            tokenizer: TokenizerConfig {
                lowercase: true,
                char_ngrams: None,
                keep_punctuation: true,
            },
            min_count: 1,
            d_embed: 64,
            d_hidden: 256,
            layers: 1,
            cell: Cell::Lstm,
            dropout: 0.1,
            seq_len: 64,
            batch_size: 32,
            epochs: 10,
            lr: 3e-3,
            clip_norm: 1.0,
            valid_fraction: 0.1,
            seed: 42,
            progress: Progress::Plain,
        }
    }
}

impl GenerateConfig {
    /// Checks the job's own options (the model's are checked by
    /// [`LanguageModelConfig::check`]); the error names the first one out of range.
    pub fn check(&self) -> Result<()> {
        for (field, value) in [
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("epochs", self.epochs),
        ] {
            if value == 0 {
                return Err(invalid(field, "at least 1", value));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", "a positive learning rate", self.lr));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(invalid("clip_norm", "a positive norm", self.clip_norm));
        }
        if !(self.valid_fraction > 0.0 && self.valid_fraction <= 0.5) {
            return Err(invalid(
                "valid_fraction",
                "a fraction in (0, 0.5]",
                self.valid_fraction,
            ));
        }
        Ok(())
    }

    /// The model's shape for a vocabulary of `vocab_size` tokens.
    pub fn model(&self, vocab_size: usize) -> LanguageModelConfig {
        LanguageModelConfig::new(vocab_size)
            .with_d_embed(self.d_embed)
            .with_d_hidden(self.d_hidden)
            .with_layers(self.layers)
            .with_cell(self.cell)
            .with_dropout(self.dropout)
    }
}

/// What a held-out evaluation measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LmMetrics {
    /// Mean next-token cross-entropy, in nats per token.
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// `loss / ln 2` for a character model (bits per character); `None` for words.
    pub bits_per_char: Option<f64>,
    /// Tokens predicted.
    pub tokens: usize,
}

impl LmMetrics {
    fn new(loss: f64, tokens: usize, kind: TokenKind) -> Self {
        Self {
            loss,
            perplexity: loss.exp(),
            bits_per_char: (kind == TokenKind::Char).then(|| loss / LN_2),
            tokens,
        }
    }
}

/// The n-gram references of a run, on the same held-out tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Add-one-smoothed unigram model.
    pub unigram: LmMetrics,
    /// Add-one-smoothed bigram model.
    pub bigram: LmMetrics,
}

/// Held-out cross-entropy of add-one-smoothed unigram and bigram models fitted on `train`.
///
/// Over `V = vocab_size − 1` outcomes (every token but `<pad>`, which never occurs):
/// `p(w) = (c(w) + 1) / (N + V)` and `p(w | v) = (c(v w) + 1) / (c(v ·) + V)`, where `c(v ·)`
/// counts `v` followed by any token. Every held-out token after the first is predicted (its
/// predecessor is its context), so both models score the same `held_out.len() − 1` tokens.
///
/// ```
/// use sora_jobs::generate::{TokenKind, ngram_baselines};
///
/// // Tokens 2 and 3 alternate; a bigram model sees it, a unigram model cannot.
/// let train: Vec<usize> = (0..100).map(|i| 2 + i % 2).collect();
/// let held_out = [2, 3, 2, 3, 2, 3];
/// let b = ngram_baselines(&train, &held_out, 4, TokenKind::Word);
/// assert!((b.unigram.perplexity - 103.0 / 51.0).abs() < 1e-9);
/// assert!(b.bigram.perplexity < 1.1);
/// assert_eq!(b.bigram.tokens, 5);
/// ```
pub fn ngram_baselines(
    train: &[usize],
    held_out: &[usize],
    vocab_size: usize,
    kind: TokenKind,
) -> Baselines {
    let v = vocab_size.saturating_sub(1).max(1) as f64;
    let mut unigram = vec![0usize; vocab_size];
    let mut context = vec![0usize; vocab_size];
    let mut bigram = std::collections::HashMap::new();
    for &id in train {
        unigram[id] += 1;
    }
    for pair in train.windows(2) {
        context[pair[0]] += 1;
        *bigram.entry((pair[0], pair[1])).or_insert(0usize) += 1;
    }
    let n = train.len() as f64;
    let (mut uni, mut bi) = (0.0, 0.0);
    for pair in held_out.windows(2) {
        let (prev, id) = (pair[0], pair[1]);
        uni -= ((unigram[id] as f64 + 1.0) / (n + v)).ln();
        let pair_count = bigram.get(&(prev, id)).copied().unwrap_or(0) as f64;
        bi -= ((pair_count + 1.0) / (context[prev] as f64 + v)).ln();
    }
    let count = held_out.len().saturating_sub(1);
    let per = count.max(1) as f64;
    Baselines {
        unigram: LmMetrics::new(uni / per, count, kind),
        bigram: LmMetrics::new(bi / per, count, kind),
    }
}

/// The saved text side of a language model: how text becomes tokens and the model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGenerator {
    /// Characters or words.
    pub tokens: TokenKind,
    /// The word tokenizer.
    pub tokenizer: TokenizerConfig,
    /// The vocabulary of the training text (the line break included).
    pub vocabulary: Vocabulary,
    /// The model's shape.
    pub model: LanguageModelConfig,
}

/// A finished run of [`train`].
#[derive(Debug)]
pub struct GenerateRun {
    /// The options as run.
    pub config: GenerateConfig,
    /// The text side, saved with the model.
    pub saved: SavedGenerator,
    /// The trained model (the best epoch's weights), without autodiff.
    pub model: LanguageModel,
    /// Per-epoch training and held-out loss.
    pub history: History,
    /// The epoch kept (1-based): the lowest held-out loss.
    pub best_epoch: usize,
    /// The kept model on the held-out tokens.
    pub held_out: LmMetrics,
    /// Unigram and bigram references on the same held-out tokens.
    pub baselines: Baselines,
    /// Tokens trained on.
    pub train_tokens: usize,
    /// Held-out tokens.
    pub held_out_tokens: usize,
    /// Streams read side by side.
    pub streams: usize,
}

/// What `metrics.json` of a language model holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMetrics {
    /// The model on the held-out tokens.
    pub held_out: LmMetrics,
    /// The n-gram references on the same tokens.
    pub baselines: Baselines,
    /// The epoch kept.
    pub best_epoch: usize,
}

/// `ids` laid out as `streams` contiguous rows of equal length (the remainder dropped).
fn streams(ids: &[usize], streams: usize) -> (Vec<i64>, usize) {
    let len = ids.len() / streams;
    let data = ids[..len * streams].iter().map(|&id| id as i64).collect();
    (data, len)
}

/// A `[rows, cols]` block of a row-major `[rows, len]` id matrix, from column `start`.
fn block(data: &[i64], rows: usize, len: usize, start: usize, cols: usize) -> Vec<i64> {
    (0..rows)
        .flat_map(|r| {
            data[r * len + start..r * len + start + cols]
                .iter()
                .copied()
        })
        .collect()
}

/// Mean next-token cross-entropy (nats) of `model` over `ids`, read as `n_streams` streams in
/// chunks of `seq_len` with the state carried; returns it with the number of tokens predicted.
fn evaluate(
    model: &LanguageModel,
    ids: &[usize],
    n_streams: usize,
    seq_len: usize,
    device: &Device,
) -> (f64, usize) {
    let n_streams = n_streams.clamp(1, (ids.len() / 2).max(1));
    let (data, len) = streams(ids, n_streams);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut state: Option<LmState> = None;
    let mut total = 0.0f64;
    let mut count = 0usize;
    let mut start = 0;
    while start + 1 < len {
        let t = seq_len.min(len - 1 - start);
        let input = Tensor::<2, Int>::from_data(
            TensorData::new(block(&data, n_streams, len, start, t), [n_streams, t]),
            device,
        );
        let target = Tensor::<1, Int>::from_data(
            TensorData::new(block(&data, n_streams, len, start + 1, t), [n_streams * t]),
            device,
        );
        let (logits, next) = model.forward(input, state);
        let vocab = model.vocab_size;
        let loss = loss_fn.forward(logits.reshape([n_streams * t, vocab]), target);
        total += loss.into_scalar::<f32>() as f64 * (n_streams * t) as f64;
        count += n_streams * t;
        state = Some(next);
        start += t;
    }
    (total / count.max(1) as f64, count)
}

/// Tokenizes `corpus`, holds out the end of it, trains a language model on the rest and
/// evaluates it (and the n-gram references) on the held-out part.
///
/// The held-out tokens are read as the same number of side-by-side streams as the training
/// tokens (each stream's first token is context only, so [`LmMetrics::tokens`] is the
/// held-out count less one per stream); the n-gram references score every held-out token
/// after the first.
///
/// Fails with [`GenerateError::EmptyText`] when the text has nothing but white space, with
/// [`GenerateError::TooShort`] when it has fewer than 4 tokens (line breaks included), and
/// with [`GenerateError::InvalidOption`] or [`GenerateError::Lm`] naming an option out of
/// range.
pub fn train(corpus: &Corpus, config: &GenerateConfig, device: &Device) -> Result<GenerateRun> {
    config.check()?;
    if corpus.lines.iter().all(|line| line.trim().is_empty()) {
        return Err(GenerateError::EmptyText {
            origin: corpus.source.clone(),
        });
    }
    let tokens = Tokens::new(config.tokens, &config.tokenizer)?;
    let mut stream: Vec<String> = Vec::new();
    for line in &corpus.lines {
        stream.extend(tokens.line(line));
        stream.push(LINE_BREAK.to_string());
    }
    let n_held = ((stream.len() as f64 * config.valid_fraction).round() as usize).max(2);
    const NEEDED: usize = 4;
    if stream.len() < n_held + 2 {
        return Err(GenerateError::TooShort {
            origin: corpus.source.clone(),
            tokens: stream.len(),
            kind: config.tokens,
            needed: NEEDED.max(n_held + 2),
        });
    }
    let (train_tokens, held_tokens) = stream.split_at(stream.len() - n_held);
    let vocab_config = VocabConfig {
        min_count: config.min_count,
        max_size: None,
    };
    let vocabulary = Vocabulary::build([train_tokens], &vocab_config);
    let train_ids = vocabulary.encode(train_tokens);
    let held_ids = vocabulary.encode(held_tokens);
    let lm_config = config.model(vocabulary.len());
    lm_config.check()?;

    let train_device = device.clone().autodiff();
    // The device's generator is shared by the process: no other run seeds it or draws from
    // it between the seed and the last initial weight.
    let mut model = sora_train::seeded(&train_device, config.seed, || {
        let model = lm_config.init(&train_device)?;
        sora_train::materialize(&model);
        Ok::<_, GenerateError>(model)
    })?;
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.clip_norm as f32)))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let n_streams = config.batch_size.min(train_ids.len() / 2).max(1);
    let (data, len) = streams(&train_ids, n_streams);
    let vocab = vocabulary.len();
    let show = config.progress != Progress::Quiet;

    let mut history = History::default();
    let mut best: Option<(f64, usize, LanguageModel)> = None;
    for epoch in 0..config.epochs {
        let started = Instant::now();
        // Dropout masks derive from (seed, epoch) alone, as in sora-train's loop, through a
        // generator of this run's own.
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut state: Option<LmState> = None;
        let mut loss_sum = Tensor::<1>::zeros([1], &train_device);
        let mut count = 0usize;
        let mut start = 0;
        while start + 1 < len {
            let t = config.seq_len.min(len - 1 - start);
            let input = Tensor::<2, Int>::from_data(
                TensorData::new(block(&data, n_streams, len, start, t), [n_streams, t]),
                &train_device,
            );
            let target = Tensor::<1, Int>::from_data(
                TensorData::new(block(&data, n_streams, len, start + 1, t), [n_streams * t]),
                &train_device,
            );
            let (logits, next) = model.forward_train(input, state, &mut rng);
            let loss = loss_fn.forward(logits.reshape([n_streams * t, vocab]), target);
            loss_sum = loss_sum + loss.clone().detach() * (n_streams * t) as f32;
            count += n_streams * t;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.lr, model, grads);
            state = Some(next.detach());
            start += t;
        }
        let train_loss = loss_sum.into_scalar::<f32>() as f64 / count.max(1) as f64;
        let valid = model.valid();
        let (held_loss, _) = evaluate(&valid, &held_ids, n_streams, config.seq_len, device);
        let seconds = started.elapsed().as_secs_f64();
        let improved = best.as_ref().is_none_or(|(loss, _, _)| held_loss < *loss);
        if show {
            let metrics = LmMetrics::new(held_loss, 0, config.tokens);
            let bits = metrics
                .bits_per_char
                .map(|b| format!("  bits/char {b:.3}"))
                .unwrap_or_default();
            println!(
                "epoch {:>3}/{}  train loss {train_loss:.4}  held-out loss {held_loss:.4}  perplexity {:.3}{bits}  {seconds:.1}s{}",
                epoch + 1,
                config.epochs,
                metrics.perplexity,
                if improved { "  *" } else { "" }
            );
        }
        history.epochs.push(EpochRecord {
            epoch: epoch + 1,
            lr: config.lr,
            train_loss,
            valid_loss: Some(held_loss),
            valid_accuracy: None,
            seconds,
        });
        if improved {
            best = Some((held_loss, epoch + 1, valid));
        }
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    let (held_loss, held_count) = evaluate(&model, &held_ids, n_streams, config.seq_len, device);
    let baselines = ngram_baselines(&train_ids, &held_ids, vocab, config.tokens);
    Ok(GenerateRun {
        config: config.clone(),
        saved: SavedGenerator {
            tokens: config.tokens,
            tokenizer: config.tokenizer.clone(),
            vocabulary,
            model: lm_config,
        },
        model,
        history,
        best_epoch,
        held_out: LmMetrics::new(held_loss, held_count, config.tokens),
        baselines,
        train_tokens: train_ids.len(),
        held_out_tokens: held_ids.len(),
        streams: n_streams,
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("plain data serialises to JSON")
}

impl GenerateRun {
    /// Saves the model directory ([`GENERATOR_FILE`], weights, options, held-out metrics,
    /// history and learning curves); an existing directory is replaced only once everything
    /// has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let metrics = SavedMetrics {
            held_out: self.held_out,
            baselines: self.baselines,
            best_epoch: self.best_epoch,
        };
        let info = describe(&self.saved, self.model.num_params());
        ModelDir::new(dir).save_with(&info.manifest(), |staging| {
            let write = |file: &str, bytes: &[u8]| {
                let path = staging.join(file);
                write_atomic(&path, bytes).map_err(|source| TrainError::Io { file: path, source })
            };
            write(GENERATOR_FILE, &to_json(&self.saved))?;
            save_safetensors(&self.model, &staging.join(files::WEIGHTS))?;
            write(files::TRAIN, &to_json(&self.config))?;
            write(files::METRICS, &to_json(&metrics))?;
            self.history.save_json(&staging.join(files::HISTORY))?;
            self.history.plot_png(&staging.join(files::CURVES))?;
            Ok(())
        })?;
        Ok(())
    }

    /// The trained model with its text side, as [`Generator::load`] would read it back.
    pub fn to_generator(&self, device: &Device) -> Result<Generator> {
        Generator::new(self.saved.clone(), self.model.clone(), device)
    }
}

/// A language model read back from its directory, ready to write.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The text side.
    pub saved: SavedGenerator,
    /// The model, without autodiff.
    pub model: LanguageModel,
    tokens: Tokens,
    line_break: usize,
    info: ModelInfo,
}

impl Generator {
    /// A generator from its parts; the model is moved to `device`.
    pub fn new(saved: SavedGenerator, model: LanguageModel, device: &Device) -> Result<Self> {
        let tokens = Tokens::new(saved.tokens, &saved.tokenizer)?;
        let line_break = saved.vocabulary.id(LINE_BREAK);
        let info = describe(&saved, model.num_params());
        Ok(Self {
            model: model.to_device(&device.clone().without_autodiff()),
            saved,
            tokens,
            line_break,
            info,
        })
    }

    /// Reads a model directory written by [`GenerateRun::save`], checking the weights'
    /// names and shapes against the saved model shape.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = ModelDir::new(dir);
        let saved: SavedGenerator =
            model_dir
                .read_json(GENERATOR_FILE)?
                .ok_or_else(|| GenerateError::BadModelDir {
                    dir: dir.to_path_buf(),
                    reason: format!("no {GENERATOR_FILE}: not a language model directory"),
                })?;
        if saved.model.vocab_size != saved.vocabulary.len() {
            return Err(GenerateError::BadModelDir {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{GENERATOR_FILE}: the vocabulary has {} tokens, the model {}",
                    saved.vocabulary.len(),
                    saved.model.vocab_size
                ),
            });
        }
        let plain = device.clone().without_autodiff();
        let model = saved.model.init(&plain)?;
        let model = load_safetensors(model, &dir.join(files::WEIGHTS))
            .map_err(|e| GenerateError::Train(e.into()))?;
        Self::new(saved, model, &plain)
    }

    /// The prompt's token ids, after the line-break token, and how many of them the
    /// vocabulary lacks (read as `<unk>`).
    pub fn encode_prompt(&self, prompt: &str) -> (Vec<usize>, usize) {
        let tokens = self.tokens.text(prompt);
        let mut ids = vec![self.line_break];
        ids.extend(self.saved.vocabulary.encode(&tokens));
        let unknown = ids.iter().filter(|&&id| id == Vocabulary::UNK).count();
        (ids, unknown)
    }

    /// Writes a continuation of `prompt`, handing each piece of text to `on_piece` as soon
    /// as its token is drawn (to stream it).
    ///
    /// The prompt is read as the start of a line, and may be of any length; see the module
    /// documentation.
    pub fn generate(
        &self,
        prompt: &str,
        options: &GenerateRequest,
        mut on_piece: impl FnMut(&str),
    ) -> crate::Result<Generated> {
        options.check()?;
        let sampling = SamplingConfig {
            temperature: options.temperature,
            top_k: options.top_k.map(|k| k as usize),
            top_p: options.top_p,
            max_tokens: options.max_tokens,
            stop_tokens: Vec::new(),
            seed: options.seed,
        };
        let mut sampler = Sampler::new(sampling).map_err(GenerateError::from)?;
        let (ids, unknown) = self.encode_prompt(prompt);
        let mut previous: Option<String> = match self.tokens.kind {
            // Words: a word that continues the prompt's last word is spaced from it.
            TokenKind::Word => ids
                .last()
                .and_then(|&id| self.saved.vocabulary.token(id))
                .map(str::to_string),
            TokenKind::Char => None,
        };
        let mut text = String::new();
        let mut stopped = false;
        let written = self
            .model
            .generate(&ids, &mut sampler, |id| {
                let token = self.saved.vocabulary.token(id).unwrap_or_default();
                let piece = self.tokens.piece(previous.as_deref(), token);
                on_piece(&piece);
                text.push_str(&piece);
                previous = Some(token.to_string());
                if options.stop.iter().any(|s| text.ends_with(s.as_str())) {
                    stopped = true;
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(GenerateError::from)?;
        Ok(Generated {
            text,
            tokens: written.len(),
            unknown,
            stopped,
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
    /// Dropout on the embeddings, between layers and before the projection.
    #[arg(long, default_value_t = GenerateConfig::default().dropout)]
    pub dropout: f64,
}

impl Kind for Generate {
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
        config.dropout = o.dropout;
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
        let run = train(&corpus, config, &ctx.device)?;
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

impl Generator {
    /// The model's perplexity on a text (a plain UTF-8 file), read as it was trained: lines of
    /// tokens, each followed by the line break, in one stream with the state carried.
    pub fn evaluate_text(&self, corpus: &Corpus) -> Result<LmMetrics> {
        let mut ids = vec![self.line_break];
        for line in &corpus.lines {
            ids.extend(self.saved.vocabulary.encode(&self.tokens.line(line)));
            ids.push(self.line_break);
        }
        let device = self.model.embedding.weight.device();
        let (loss, count) = evaluate(&self.model, &ids, 1, 64, &device);
        Ok(LmMetrics::new(loss, count, self.saved.tokens))
    }
}

impl crate::Model for Generator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn evaluate(&self, input: &Input) -> crate::Result<Evaluation> {
        let Input::Path { data, .. } = input else {
            return Err(input.wrong(Self::NAME_OF, "a plain UTF-8 text file"));
        };
        let corpus = load_text(data)?;
        let m = self.evaluate_text(&corpus)?;
        let bits = m
            .bits_per_char
            .map_or_else(String::new, |b| format!("   bits/char {b:.4}"));
        let mut scores = vec![
            ("loss".to_string(), m.loss),
            ("perplexity".to_string(), m.perplexity),
        ];
        scores.extend(m.bits_per_char.map(|b| ("bits_per_char".to_string(), b)));
        Ok(Evaluation {
            n: m.tokens,
            report: format!(
                "{} {} tokens predicted\nloss {:.4} nats/token   perplexity {:.4}{bits}\n",
                m.tokens, self.saved.tokens, m.loss, m.perplexity
            ),
            scores,
        })
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&str),
    ) -> crate::Result<Generated> {
        Generator::generate(self, &request.prompt, request, on_piece)
    }

    fn hint(&self, verb: Verb) -> String {
        match verb {
            Verb::Predict | Verb::Explain => {
                "; a language model writes text with `sora generate --model DIR`".into()
            }
            _ => String::new(),
        }
    }
}

impl Generator {
    const NAME_OF: &'static str = Generate::NAME;
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
