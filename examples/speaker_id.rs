//! Speaker identification: which of FSDD's four speakers says the digit, from the same clips,
//! features and network as `speech_digits` (the label is the speaker in the file name
//! `<digit>_<speaker>_<take>.wav`, not the digit folder).
//!
//! Trains on takes 5–49 of every speaker and digit (a stratified, seeded 10 % of them held out
//! for early stopping), tests on takes 0–4, prints the confusion matrix and saves the model.
//!
//! ```text
//! cargo run --release --example speaker_id [-- --device ndarray --out target/speaker-id-model --seed 42]
//! ```

#[path = "speech_digits.rs"]
#[allow(dead_code)] // that example's `main`
mod speech_digits;

use std::time::Instant;

use anyhow::Result;
use sora::train::Metrics;
use speech_digits::{Fsdd, fit_valid, parse_args, settings};

fn main() -> Result<()> {
    let start = Instant::now();
    let (device_name, out, seed) = parse_args("target/speaker-id-model")?;
    let device = sora::device::device(&device_name)?;

    let fsdd = Fsdd::load()?;
    let samples = fsdd.by_speaker();
    let per_speaker: Vec<String> = samples
        .classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let n = samples.labels.iter().filter(|&&l| l == c).count();
            format!("{name} {n}")
        })
        .collect();
    println!(
        "fsdd: {} clips of {} speakers ({}); MFCC {:?} per clip (device {device_name})",
        samples.len(),
        samples.classes.len(),
        per_speaker.join(", "),
        samples.shape
    );
    let (train, test) = fsdd.take_split();
    let (fit, valid) = fit_valid(&samples, &train, seed);
    let test = samples.subset(&test);
    println!(
        "take split: {} train, {} validation (takes 5–49), {} test (takes 0–4)",
        fit.len(),
        valid.len(),
        test.len()
    );

    let config = settings(&samples.shape, samples.classes.len(), seed);
    if let Some(spec) = &config.spec {
        println!("{}", spec.summary()?);
    }
    let run =
        sora::jobs::media::train_split(&fit, Some(&valid), &test, fsdd.pipeline, &config, &device)?;
    let Some(Metrics::Classification(m)) = &run.test else {
        unreachable!("a classifier")
    };
    println!(
        "\ntest accuracy {:.4}  macro F1 {:.4}  (best epoch {})",
        m.accuracy, m.macro_f1, run.best_epoch
    );
    println!(
        "confusion matrix (rows: true speaker, columns: predicted):\n{}",
        m.confusion_table(&samples.classes)
    );
    run.save(&out)?;
    println!("saved {}", out.display());
    println!("\ndone in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
