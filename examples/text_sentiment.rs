//! Sentence sentiment: the 2,000 Amazon and Yelp review sentences of
//! `data/sentiment_sentences/sentences.csv` split 80/20 (stratified, seeded; validation for
//! early stopping is 10 % of all sentences, taken from the training part). Two neural models —
//! a bag of embeddings and a bidirectional LSTM — beside a TF-IDF (word 1–2-grams) + logistic
//! regression reference fitted on the same training sentences (training and validation parts)
//! and tested on the same test sentences.
//!
//! ```text
//! cargo run --release --example text_sentiment [-- --device ndarray --seed 42]
//! ```

use std::time::Instant;

use anyhow::{Context, Result, bail};
use sora::jobs::text::{EncoderKind, TextConfig, TextRun, load_csv, tfidf_logistic, train};
use sora::text::SeqPool;
use sora::train::{Metrics, Progress};

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Device name (`flex`, `ndarray`).
    pub device: String,
    /// Seed of the split, the initial weights and the shuffling.
    pub seed: u64,
    /// Training progress display.
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            device: "flex".into(),
            seed: 42,
            progress: Progress::Auto,
        }
    }
}

/// Test accuracies of the three models.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Bag of embeddings.
    pub bag: f64,
    /// Bidirectional LSTM.
    pub lstm: f64,
    /// TF-IDF + logistic regression.
    pub tfidf: f64,
}

/// The neural settings: lower-cased words, 64-wide embeddings; the bag pools by mean, the
/// LSTM (32 per direction) by max.
pub fn config(options: &Options, encoder: EncoderKind) -> TextConfig {
    let mut config = TextConfig {
        encoder,
        d_embed: 64,
        d_hidden: 32,
        pool: match encoder {
            EncoderKind::Bag => SeqPool::Mean,
            _ => SeqPool::Max,
        },
        dropout: 0.3,
        ..TextConfig::default()
    };
    config.train = config
        .train
        .with_seed(options.seed)
        .with_progress(options.progress);
    config
}

fn accuracy(run: &TextRun) -> Result<f64> {
    match &run.test {
        Some(Metrics::Classification(m)) => Ok(m.accuracy),
        _ => bail!("a classifier with a test part has classification metrics"),
    }
}

/// Trains the three models and prints their test accuracies.
pub fn run(options: &Options) -> Result<Outcome> {
    let device = sora::device::device(&options.device)?;
    let path = sora::datasets::data_dir().join("sentiment_sentences/sentences.csv");
    let data = load_csv(&path, "text", Some("label"))?;

    let mut accuracies = Vec::new();
    let mut last = None;
    for (name, encoder) in [
        ("bag of embeddings", EncoderKind::Bag),
        ("BiLSTM", EncoderKind::Lstm),
    ] {
        let start = Instant::now();
        let run = train(&data, ("text", "label"), &config(options, encoder), &device)?;
        let acc = accuracy(&run)?;
        println!(
            "{name:<18} test accuracy {acc:.4}  (best epoch {} of {}, {:.1} s)",
            run.best_epoch,
            run.history.epochs.len(),
            start.elapsed().as_secs_f64()
        );
        accuracies.push(acc);
        last = Some(run);
    }
    let run = last.context("two runs")?;

    let start = Instant::now();
    let mut fit_rows = run.split.train.clone();
    fit_rows.extend(&run.split.valid);
    let test = data.subset(&run.split.test);
    let predicted = tfidf_logistic(&data.subset(&fit_rows), &test, data.classes.len(), 1.0)?;
    let correct = predicted
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p == l)
        .count();
    let tfidf = correct as f64 / test.len() as f64;
    println!(
        "{:<18} test accuracy {tfidf:.4}  ({:.1} s)",
        "TF-IDF + logistic",
        start.elapsed().as_secs_f64()
    );
    println!(
        "sentiment_sentences: {} train, {} validation, {} test sentences; {} tokens in the vocabulary, length {} (seed {}, device {})",
        run.split.train.len(),
        run.split.valid.len(),
        run.split.test.len(),
        run.text.vocabulary.len(),
        run.text.seq_len,
        options.seed,
        options.device
    );
    Ok(Outcome {
        bag: accuracies[0],
        lstm: accuracies[1],
        tfidf,
    })
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--device" => options.device = value()?,
            "--seed" => options.seed = value()?.parse().context("--seed takes an integer")?,
            other => bail!("unknown argument {other:?} (expected --device NAME, --seed N)"),
        }
    }
    let start = Instant::now();
    run(&options)?;
    println!("total time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
