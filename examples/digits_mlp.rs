//! Train an MLP on scikit-learn's 8×8 digits, evaluate it, save it, reload it.
//!
//! ```text
//! cargo run --release --example digits_mlp [-- --device ndarray --out target/digits-model]
//! ```

use std::path::PathBuf;

use anyhow::{Result, ensure};
use sora::core::{HeadSpec, IdentitySpec, ModelSpec, Task};
use sora::train::{
    InputSummary, Manifest, Metrics, ModelDir, TrainConfig, TrainData, Trainer, evaluate,
};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut device_name = "flex".to_string();
    let mut out = PathBuf::from("target/digits-model");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device_name = args.next().unwrap_or_default(),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            other => {
                anyhow::bail!("unknown argument {other:?} (expected --device NAME, --out DIR)")
            }
        }
    }
    let device = sora::device::device(&device_name)?;

    let digits = sora::datasets::bundled_digits()?;
    // Hold out every 10th training sample to validate on after each epoch.
    let (fit_idx, valid_idx): (Vec<usize>, Vec<usize>) =
        (0..digits.train.len()).partition(|i| i % 10 != 0);
    let fit = digits.train.subset(&fit_idx);
    let valid = digits.train.subset(&valid_idx);
    println!(
        "digits: {} train, {} validation, {} test samples, 64 features, 10 classes (device {device_name})",
        fit.len(),
        valid.len(),
        digits.test.len()
    );

    let spec = ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[128, 64]),
        Task::Classification { n_classes: 10 },
    )
    .check()?;
    println!("{}", spec.summary());

    let config = TrainConfig::new(20, 32, 0.05).with_seed(42);
    let trainer = Trainer::new(config.clone(), &device);
    let fitted = trainer.fit(trainer.init(&spec), &fit, Some(&valid))?;

    let metrics = trainer.evaluate(&fitted.model, &digits.test)?;
    let Metrics::Classification(m) = &metrics else {
        unreachable!("a classifier")
    };
    println!(
        "\ntest accuracy {:.4}  macro F1 {:.4}  macro AUROC {:.4}",
        m.accuracy,
        m.macro_f1,
        m.auroc.unwrap_or(f64::NAN)
    );
    let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    println!(
        "confusion matrix (rows: true digit, columns: predicted):\n{}",
        m.confusion_table(&names)
    );

    let dir = ModelDir::new(&out);
    // A bare model directory: spec and weights, no data pipeline (`ModelDir::load` reads it).
    let manifest = Manifest::new(
        "bare",
        "classification",
        InputSummary::new("64 standardised pixel values"),
    );
    dir.save(
        &manifest,
        &spec,
        &fitted.model,
        &config,
        Some(&metrics),
        Some(&fitted.history),
        &[],
    )?;
    println!("saved {}", out.display());

    let loaded = dir.load::<IdentitySpec>(&device)?;
    let again = evaluate(&loaded.model, &digits.test, 256, &device)?;
    println!(
        "reloaded: test accuracy {:.4}",
        again.accuracy().unwrap_or(f64::NAN)
    );
    ensure!(
        again == metrics,
        "the reloaded model evaluates differently from the trained one"
    );
    Ok(())
}
