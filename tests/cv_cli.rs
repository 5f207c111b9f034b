//! `sora train --cv K [--repeats R] [--group COL]` on a real table: every fold and the mean ±
//! sd in `cv.json`, the folds a partition of the rows (stratified by class; no group in two
//! folds), the same file for the same seed, the final model refitted on every row and usable
//! by `eval`, and bad options as typed errors naming the option and the numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{device, fails, ok};

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

/// `sora train` on the heart-disease table into `out`, with `extra` options.
fn train_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--target-above",
        "0",
        "--progress",
        "quiet",
        "--device",
        &device(),
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn train(out: &Path, extra: &[&str]) -> String {
    let args = train_args(out, extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn cv_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("cv.json")).unwrap()).unwrap()
}

/// The heart table's column `name`, and whether each row has the disease (`num` > 0).
fn column(name: &str) -> (Vec<String>, Vec<bool>) {
    let text = std::fs::read_to_string(HEART).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (c, t) = (
        header.iter().position(|h| *h == name).unwrap(),
        header.iter().position(|h| *h == "num").unwrap(),
    );
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[c].to_string(), cells[t].parse::<f64>().unwrap() > 0.0)
        })
        .unzip()
}

#[test]
fn repeated_stratified_cross_validation_of_heart_disease() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cv");
    let out = train(&dir, &["--cv", "5", "--repeats", "2"]);
    assert!(
        out.contains("cross-validation: 5 folds × 2 repeats, stratified"),
        "{out}"
    );
    assert!(out.contains("mean±sd"), "{out}");
    let cv = cv_json(&dir);
    let folds = cv["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 10);
    let (_, sick) = column("num");
    let share = sick.iter().filter(|&&s| s).count() as f64 / sick.len() as f64;
    for repeat in 0..2 {
        // Each repeat's test parts are a partition of the 303 rows, each fold within one row
        // of the table's share of each class.
        let mut seen = BTreeSet::new();
        for f in folds.iter().filter(|f| f["repeat"] == repeat) {
            let test: Vec<usize> = serde_json::from_value(f["test"].clone()).unwrap();
            assert_eq!(f["n_test"], test.len());
            let positives = test.iter().filter(|&&i| sick[i]).count() as f64;
            assert!((positives - share * test.len() as f64).abs() <= 1.0, "{f}");
            assert!(test.iter().all(|&i| seen.insert(i)), "a row in two folds");
        }
        assert_eq!(seen.len(), 303);
    }
    // The summary is the folds' mean and sample standard deviation.
    let acc: Vec<f64> = folds
        .iter()
        .map(|f| f["metrics"]["accuracy"].as_f64().unwrap())
        .collect();
    let mean = acc.iter().sum::<f64>() / 10.0;
    let sd = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
    let summary = cv["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "accuracy")
        .unwrap();
    assert!((summary["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((summary["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
    // Heart disease, 13 clinical columns: well above the majority class (54 %).
    assert!(mean > 0.75, "mean accuracy {mean}");
    // The final model is a model directory like any other.
    let eval = ok(&["eval", "--model", dir.to_str().unwrap(), "--data", HEART]);
    assert!(eval.contains("accuracy"), "{eval}");
    // The same seed gives the same file, byte for byte.
    let again = root.path().join("again");
    train(&again, &["--cv", "5", "--repeats", "2"]);
    assert_eq!(
        std::fs::read(dir.join("cv.json")).unwrap(),
        std::fs::read(again.join("cv.json")).unwrap()
    );
}

#[test]
fn grouped_cross_validation_keeps_each_group_in_one_fold() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cv");
    let out = train(&dir, &["--cv", "4", "--group", "age"]);
    assert!(out.contains("grouped by `age`"), "{out}");
    let (age, _) = column("age");
    let mut fold_of: BTreeMap<String, usize> = BTreeMap::new();
    let folds = cv_json(&dir)["folds"].as_array().unwrap().clone();
    assert_eq!(folds.len(), 4);
    for (f, fold) in folds.iter().enumerate() {
        let test: Vec<usize> = serde_json::from_value(fold["test"].clone()).unwrap();
        for i in test {
            assert_eq!(
                *fold_of.entry(age[i].clone()).or_insert(f),
                f,
                "age {}",
                age[i]
            );
        }
    }
    assert_eq!(fold_of.len(), age.iter().collect::<BTreeSet<_>>().len());
}

#[test]
fn bad_cross_validation_options_are_typed_errors() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    let run = |extra: &[&str]| {
        let args = train_args(&dir, extra);
        fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let e = run(&["--cv", "200"]);
    assert!(e.contains("--cv 200") && e.contains("139"), "{e}");
    let e = run(&["--cv", "1"]);
    assert!(e.contains("--cv") && e.contains('1'), "{e}");
    let e = run(&["--cv", "5", "--group", "nope"]);
    assert!(
        e.contains("--group") && e.contains("nope") && e.contains("thal"),
        "{e}"
    );
    let e = run(&["--cv", "5", "--group", "sex"]);
    assert!(e.contains("--group") && e.contains("2 groups"), "{e}");
    let e = run(&["--cv", "3", "--repeats", "0"]);
    assert!(e.contains("--repeats"), "{e}");
    assert!(!dir.exists(), "nothing written on an error");
}

#[test]
fn audio_cross_validation_by_speaker() {
    // The Free Spoken Digit clips are named `{digit}_{speaker}_{take}.wav`: grouped by the
    // speaker, every fold's clips come from speakers the fold's model never heard.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cv");
    let device = device();
    let args = |group: &'static str, out: &Path| -> Vec<String> {
        [
            "train",
            "--data",
            "data/fsdd",
            "--task",
            "audio",
            "--cv",
            "2",
            "--group",
            group,
            "--epochs",
            "2",
            "--progress",
            "quiet",
            "--device",
            &device,
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args("name:1", &dir);
    let out = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("grouped by `name:1`"), "{out}");
    let cv = cv_json(&dir);
    let folds = cv["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    assert_eq!(
        folds
            .iter()
            .map(|f| f["n_test"].as_u64().unwrap())
            .sum::<u64>(),
        2000
    );
    let bad = args("speaker", &root.path().join("bad"));
    let e = fails(&bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--group") && e.contains("name:N"), "{e}");
}

#[test]
fn test_metrics_carry_bootstrap_intervals() {
    // A plain run: the 61 test rows' metrics with 95 % bootstrap intervals, printed and saved,
    // and `sora eval` reports them too.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    let out = train(&dir, &[]);
    assert!(out.contains("percentile-bootstrap intervals"), "{out}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    let acc = m["accuracy"].as_f64().unwrap();
    let i = &m["intervals"]["accuracy"];
    let (low, high) = (i["low"].as_f64().unwrap(), i["high"].as_f64().unwrap());
    assert!(low <= acc && acc <= high && low < high, "{i}");
    // 61 rows: a binomial standard error of about 0.05, so a 95 % interval some 0.2 wide.
    assert!((0.1..0.35).contains(&(high - low)), "{i}");
    assert_eq!(i["estimate"].as_f64().unwrap(), acc);
    let eval = ok(&["eval", "--model", dir.to_str().unwrap(), "--data", HEART]);
    assert!(eval.contains("percentile-bootstrap intervals"), "{eval}");
    // The history records the epoch kept (which the learning curves mark) as printed.
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap();
    let best = h["best_epoch"].as_u64().unwrap();
    let epochs = h["epochs"].as_array().unwrap().len();
    assert!(
        out.contains(&format!("best epoch {best} of {epochs}")),
        "{out}"
    );
    // Each fold of a cross-validation has its own.
    let cv = root.path().join("cv");
    train(&cv, &["--cv", "3"]);
    for f in cv_json(&cv)["folds"].as_array().unwrap() {
        assert!(f["metrics"]["intervals"]["auroc"]["low"].is_f64(), "{f}");
    }
}

#[test]
fn the_split_fractions_are_options_checked_by_name() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    let out = train(
        &dir,
        &["--valid-fraction", "0.1", "--test-fraction", "0.25"],
    );
    // 303 rows, 164 healthy and 139 sick, stratified: round(0.25 × n) of each class for the
    // test part (41 + 35), round(0.1 × n) for validation (16 + 14).
    assert!(
        out.contains("rows: 197 train, 30 validation, 76 test"),
        "{out}"
    );
    for (flag, value) in [("--valid-fraction", "0.7"), ("--test-fraction", "0")] {
        let args = train_args(&root.path().join("bad"), &[flag, value]);
        let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(flag) && e.contains(value), "{e}");
    }
    let e = fails(&[
        "train",
        "--task",
        "generate",
        "--data",
        "data/sentiment_sentences/ORIGINAL_README.txt",
        "--valid-fraction",
        "0.1",
        "--out",
        root.path().join("lm").to_str().unwrap(),
    ]);
    assert!(
        e.contains("--valid-fraction") && e.contains("generate"),
        "{e}"
    );
}
