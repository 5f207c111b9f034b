//! Credit risk: Taiwan credit-card default (30,000 clients, 22 % default) and German credit
//! (1,000 applicants, 13 categorical features, 30 % bad). For each, the same MLP is trained
//! with and without balanced class weights, and a decision threshold is chosen on the
//! validation split (the one that maximises the minority class's F1) and applied to the test
//! split.
//!
//! ```text
//! cargo run --release --example credit_risk [-- --device ndarray --seed 42]
//! ```

use anyhow::Result;
use sora::data::Table;
use sora::jobs::explain::{ExplainRequest, Rows};
use sora::jobs::tabular::{ClassWeights, Prepared, TabularConfig, prepare, train_prepared};
use sora::train::{Metrics, Progress, Targets, TrainData, auroc, average_precision, predict};

/// Minority-class scores at a decision threshold on its probability.
#[derive(Debug, Clone, Copy)]
struct AtThreshold {
    threshold: f32,
    precision: f64,
    recall: f64,
    f1: f64,
}

fn at_threshold(p: &[f32], positive: &[bool], threshold: f32) -> AtThreshold {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&p, &y) in p.iter().zip(positive) {
        match (p >= threshold, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let precision = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let recall = if tp + fn_ > 0 {
        tp as f64 / (tp + fn_) as f64
    } else {
        0.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    AtThreshold {
        threshold,
        precision,
        recall,
        f1,
    }
}

/// The threshold among 0.01, 0.02, …, 0.99 with the best minority F1 on `p`.
fn best_threshold(p: &[f32], positive: &[bool]) -> AtThreshold {
    (1..100)
        .map(|t| at_threshold(p, positive, t as f32 / 100.0))
        .max_by(|a, b| a.f1.total_cmp(&b.f1))
        .expect("99 candidates")
}

/// Probability of class `c` for every row of `data`, and whether each row is of class `c`.
fn scores(
    model: &sora::core::Model<sora::core::Identity>,
    data: &sora::train::TabularData,
    c: usize,
    device: &burn::tensor::Device,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let probs = predict(model, data, 1024, device)?;
    let Targets::Classes { labels, n_classes } = data.targets() else {
        unreachable!("classification")
    };
    let p = probs.chunks(*n_classes).map(|row| row[c]).collect();
    Ok((p, labels.iter().map(|&y| y == c).collect()))
}

/// The table rows of the test split.
fn prepared_rows(p: &Prepared) -> Vec<usize> {
    p.split.test.clone()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut device_name, mut seed) = ("flex".to_string(), 42u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device_name = args.next().unwrap_or_default(),
            "--seed" => seed = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?} (expected --device NAME, --seed N)"),
        }
    }
    let device = sora::device::device(&device_name)?;
    let cases = [
        (
            "Taiwan credit default",
            "credit_default_taiwan/credit_default.csv",
            "default_payment_next_month",
            "1",
        ),
        (
            "German credit",
            "german_credit/german_credit.csv",
            "class",
            "bad",
        ),
    ];
    for (name, file, target, minority) in cases {
        let table = Table::read_csv(&sora::datasets::data_dir().join(file))?;
        let mut config = TabularConfig::new(target);
        config.train = config.train.with_seed(seed).with_progress(Progress::Quiet);
        let prepared: Prepared = prepare(&table, &config)?;
        let classes = prepared
            .pipeline
            .classes()
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        let c = classes
            .iter()
            .position(|k| k == minority)
            .expect("minority class present");
        println!(
            "\n=== {name} — {} rows, target `{target}`, minority class `{minority}`",
            table.n_rows()
        );
        for w in prepared.pipeline.warnings() {
            println!("note: {w}");
        }
        let counts = prepared.train.targets().class_counts().unwrap_or_default();
        println!(
            "split (stratified, seed {seed}): {} train / {} validation / {} test; training classes {:?} = {counts:?}; {} model inputs",
            prepared.train.len(),
            prepared.valid.len(),
            prepared.test.len(),
            classes,
            prepared.pipeline.d_input()
        );
        println!(
            "{:<18} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} │ {:>9} {:>8} {:>7} {:>7}",
            "class weights",
            "weights",
            "accuracy",
            "recall",
            "F1",
            "AUROC",
            "PR-AUC",
            "threshold",
            "precision",
            "recall",
            "F1"
        );
        let mut last_run = None;
        for mode in [ClassWeights::None, ClassWeights::Balanced] {
            let mut config = config.clone();
            config.class_weights = mode;
            let weights = prepared.class_weights(mode);
            let run = train_prepared(prepared.clone(), &config, &device)?;
            let Some(Metrics::Classification(m)) = &run.test else {
                unreachable!("a classifier with a test part (`prepare` holds one out)")
            };
            let (pv, yv) = scores(&run.fitted.model, &prepared.valid, c, &device)?;
            let chosen = best_threshold(&pv, &yv);
            let (pt, yt) = scores(&run.fitted.model, &prepared.test, c, &device)?;
            let test = at_threshold(&pt, &yt, chosen.threshold);
            println!(
                "{:<18} {:>7} {:>8.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} │ {:>9.2} {:>8.4} {:>7.4} {:>7.4}",
                format!("{mode:?}").to_lowercase(),
                weights.map_or("—".to_string(), |w| format!("{:.2}", w[c])),
                m.accuracy,
                m.per_class[c].recall,
                m.per_class[c].f1,
                auroc(&pt, &yt).unwrap_or(f64::NAN),
                average_precision(&pt, &yt).unwrap_or(f64::NAN),
                test.threshold,
                test.precision,
                test.recall,
                test.f1
            );
            last_run = Some(run);
        }
        // Why the weighted model decides as it does: three test rows and global importance.
        let run = last_run.expect("two runs");
        let request = ExplainRequest {
            rows: Some(Rows::indices(&prepared_rows(&prepared)[..3])),
            top: 4,
            ..ExplainRequest::default()
        };
        let explanation = run.to_model(&device).explain(&table, &request)?;
        print!("\n{}", explanation.terminal);
        std::fs::create_dir_all("target/examples")?;
        let file = format!(
            "target/examples/{}.html",
            name.split(' ').next().unwrap_or("credit")
        );
        if let Some(report) = &explanation.document {
            sora::core::weights::write_atomic(std::path::Path::new(&file), &report.bytes)?;
        }
        println!("report with global importance: {file}");
    }
    println!(
        "\nLeft: test metrics at the arg-max decision (recall and F1 of the minority class; AUROC and\n\
         PR-AUC of the minority class's probability). Right: the threshold on that probability that\n\
         maximised the minority F1 on the validation split, and the test scores it gives."
    );
    Ok(())
}
