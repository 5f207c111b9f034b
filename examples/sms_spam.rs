//! SMS spam filtering: the 5,574 messages of `data/sms_spam/sms_spam.csv` split 80/20
//! (stratified, seeded; validation for early stopping is 10 % of all messages, taken from the
//! training part), a bag of word and punctuation embeddings with max pooling, test
//! accuracy, spam F1 and the confusion matrix, and a few predictions of new messages.
//!
//! ```text
//! cargo run --release --example sms_spam [-- --device ndarray --seed 42]
//! ```
//!
//! `tests/text.rs` includes this file as a module and runs [`run`] with the same settings.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use sora::jobs::text::{EncoderKind, TextConfig, TextRun, load_csv, train};
use sora::text::SeqPool;
use sora::text::tokenize::TokenizerConfig;
use sora::train::{Metrics, Progress, argmax};

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

/// The settings of the example: lower-cased words with punctuation kept as tokens (spam is
/// full of `!`, `£` and `&`), every training token in the vocabulary, a 64-wide embedding
/// table, max pooling over the message (one strong spam word is enough), a linear head.
pub fn config(options: &Options) -> TextConfig {
    let mut config = TextConfig {
        tokenizer: TokenizerConfig {
            keep_punctuation: true,
            ..TokenizerConfig::default()
        },
        encoder: EncoderKind::Bag,
        d_embed: 64,
        pool: SeqPool::Max,
        dropout: 0.1,
        ..TextConfig::default()
    };
    config.train = config
        .train
        .with_seed(options.seed)
        .with_progress(options.progress);
    config
}

/// Trains and evaluates; prints the split, the test metrics and example predictions.
pub fn run(options: &Options) -> Result<TextRun> {
    let device = sora::device::device(&options.device)?;
    let path = sora::datasets::data_dir().join("sms_spam/sms_spam.csv");
    let data = load_csv(&path, "text", Some("label"))?;
    let config = config(options);
    let start = Instant::now();
    let run = train(&data, ("text", "label"), &config, &device)?;
    println!(
        "sms_spam: {} train, {} validation, {} test messages; {} tokens in the vocabulary, length {} ({} training messages cut); classes {:?} (seed {}, device {})",
        run.split.train.len(),
        run.split.valid.len(),
        run.split.test.len(),
        run.text.vocabulary.len(),
        run.text.seq_len,
        run.truncated,
        run.text.classes,
        options.seed,
        options.device
    );
    println!(
        "best epoch {} of {} ({:.1} s)",
        run.best_epoch,
        run.history.epochs.len(),
        start.elapsed().as_secs_f64()
    );
    let Some(Metrics::Classification(m)) = &run.test else {
        bail!("a classifier has classification metrics")
    };
    let spam = run
        .text
        .classes
        .iter()
        .position(|c| c == "spam")
        .context("a spam class")?;
    println!(
        "test accuracy {:.4}, spam precision {:.3} recall {:.3} F1 {:.3}",
        m.accuracy, m.per_class[spam].precision, m.per_class[spam].recall, m.per_class[spam].f1
    );
    println!("{}", m.confusion_table(&run.text.classes));
    let model = run.to_model(&device);
    let messages: Vec<String> = [
        "Are we still meeting for lunch tomorrow?",
        "URGENT! You have won a 1 week FREE membership. Txt WIN to 80086 now! T&C apply",
        "Sorry, I'll call you later, in a meeting",
        "Congratulations, you've been selected for a £1000 cash prize. Call 09061701461",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let probabilities = model.predict(&messages)?;
    for (text, p) in messages
        .iter()
        .zip(probabilities.chunks(run.text.classes.len()))
    {
        let best = argmax(p);
        println!("{:>5} ({:.3})  {text}", run.text.classes[best], p[best]);
    }
    Ok(run)
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
