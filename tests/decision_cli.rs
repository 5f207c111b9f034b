//! What a trained classifier or regressor decides, through the whole program: calibration on
//! by default, `--threshold` and `--coverage` fitted on held-out predictions, saved in the
//! model directory and used by `predict`, `eval` and `serve` alike; conformal coverage on
//! rows the model never saw within sampling error of the target, on real data; and bad
//! options as typed errors naming the option and the numbers.

mod common;

use std::path::Path;

use common::http::Serve;
use common::{device, fails, ok};
use serde_json::{Value, json};

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";
const DIGITS: &str = "data/digits/digits.csv";
const GERMAN: &str = "data/german_credit/german_credit.csv";

fn train(data: &str, target: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--data",
        data,
        "--target",
        target,
        "--progress",
        "quiet",
        "--device",
        Box::leak(device().into_boxed_str()),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The rows of a CSV file as header and cells (no quoted commas in these files).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// Writes the header and rows `range` of `data`, in an order shuffled once (seeded), to
/// `path`: both parts drawn from the same rows at random, as conformal prediction assumes
/// (the files are ordered — digits by writer — and a tail of them is another population).
fn part(data: &str, range: std::ops::Range<usize>, path: &Path) {
    let text = std::fs::read_to_string(data).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut order: Vec<usize> = (1..lines.len()).collect();
    // Fisher–Yates with a 64-bit LCG (Knuth's constants), seeded.
    let mut state: u64 = 0x5eed;
    for i in (1..order.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    let mut out = format!("{}\n", lines[0]);
    for &i in &order[range] {
        out.push_str(lines[i]);
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn calibration_threshold_and_sets_reach_predict_eval_and_serve() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("heart");
    let options = [
        "--target-above",
        "0",
        "--threshold",
        "f1",
        "--coverage",
        "0.9",
    ];
    let out = train(HEART, "num", &dir, &options);
    assert!(out.contains("calibration: temperature scaling"), "{out}");
    assert!(out.contains("threshold (f1)"), "{out}");
    assert!(out.contains("prediction sets at 90.0 % coverage"), "{out}");
    let decision = json_file(&dir.join("decision.json"));
    assert_eq!(decision["calibration"]["method"], "temperature");
    let t = decision["threshold"]["threshold"].as_f64().unwrap();
    let q_hat = decision["sets"]["q_hat"].as_f64().unwrap();
    assert!(
        t > 0.0 && t < 1.0 && q_hat > 0.0 && q_hat < 1.0,
        "{decision}"
    );
    let test = &decision["test"];
    let [before, after] = [0, 1].map(|i| test["ece"][i].as_f64().unwrap());
    assert!((0.0..=1.0).contains(&before) && (0.0..=1.0).contains(&after));
    let png = std::fs::read(dir.join("reliability.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // The same seed writes the same decision and diagram, byte for byte.
    let again = root.path().join("again");
    train(HEART, "num", &again, &options);
    for file in ["decision.json", "reliability.png"] {
        assert_eq!(
            std::fs::read(dir.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }

    // predict: the label is the threshold's decision, the set the classes within q̂.
    let csv = root.path().join("predictions.csv");
    ok(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    let (header, rows) = read_csv(&csv);
    assert_eq!(header, ["row", "prediction", "p_0", "p_1", "set"]);
    let mut against_argmax = 0;
    for r in &rows {
        let p: Vec<f64> = r[2..4].iter().map(|v| v.parse().unwrap()).collect();
        let decided = if p[1] >= t { "1" } else { "0" };
        assert_eq!(r[1], decided, "{r:?} at threshold {t}");
        against_argmax += usize::from((p[1] > p[0]) != (decided == "1"));
        // A class is in the set when 1 − p ≤ q̂; a set may be empty.
        let set: Vec<&str> = ["0", "1"]
            .into_iter()
            .zip(&p)
            .filter(|(_, p)| 1.0 - **p <= q_hat + 1e-6)
            .map(|(c, _)| c)
            .collect();
        assert_eq!(r[4], set.join("|"), "{r:?} with q̂ {q_hat}");
    }
    assert!(
        against_argmax > 0,
        "a threshold of {t} decides some row otherwise than the most probable class"
    );

    // eval scores the decided model: the threshold's and the sets' figures are reported.
    let eval = ok(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    assert!(eval.contains("on the rows given: coverage"), "{eval}");
    assert!(eval.contains("on the rows given: precision"), "{eval}");

    // serve answers as predict does, with the label's probability and the set.
    let server = Serve::start(&dir, &[]);
    let table = std::fs::read_to_string(HEART).unwrap();
    let mut lines = table.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    let request: Vec<Value> = lines
        .take(4)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let mut row = serde_json::Map::new();
            for (n, c) in names.iter().zip(cells) {
                if *n != "num" {
                    row.insert(n.to_string(), json!(c.parse::<f64>().ok()));
                }
            }
            Value::Object(row)
        })
        .collect();
    let (status, answer) = server.post("/v1/predict", &json!({ "rows": request }));
    assert_eq!(status, 200, "{answer}");
    for (i, got) in answer["predictions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(got["label"], rows[i][1], "{got}");
        let label: usize = rows[i][1].parse().unwrap();
        let p = got["probabilities"].as_array().unwrap();
        assert!((p[1].as_f64().unwrap() - rows[i][3].parse::<f64>().unwrap()).abs() < 1e-5);
        assert_eq!(got["probability"], p[label], "{got}");
        let set: Vec<&str> = got["set"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(set.join("|"), rows[i][4], "{got}");
    }
}

/// `|coverage − target|` within three standard errors of split-conformal coverage: the
/// calibration quantile's own spread (`n_cal` rows) and the checked rows' (`n_test`).
fn assert_covered(coverage: f64, target: f64, n_cal: usize, n_test: usize, what: &str) {
    let se = (target * (1.0 - target) * (1.0 / n_cal as f64 + 1.0 / n_test as f64)).sqrt();
    assert!(
        (coverage - target).abs() <= 3.0 * se,
        "{what}: coverage {coverage:.4} of {n_test} rows, {n_cal} calibration rows, target \
         {target} ± {:.4}",
        3.0 * se
    );
}

#[test]
fn conformal_sets_and_intervals_cover_rows_never_seen_at_the_target_rate() {
    let root = tempfile::tempdir().unwrap();
    // Digits: ten classes; the model sees 1,300 rows drawn at random, the other 497 check it.
    let (fit, held) = (root.path().join("fit.csv"), root.path().join("held.csv"));
    part(DIGITS, 0..1300, &fit);
    part(DIGITS, 1300..1797, &held);
    let dir = root.path().join("digits");
    train(
        fit.to_str().unwrap(),
        "label",
        &dir,
        &["--coverage", "0.9", "--calibration", "none"],
    );
    let decision = json_file(&dir.join("decision.json"));
    let n_cal = decision["sets"]["calibration_rows"].as_u64().unwrap() as usize;
    let csv = root.path().join("digits.csv");
    ok(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        held.to_str().unwrap(),
        "--device",
        &device(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    let (header, rows) = read_csv(&csv);
    assert_eq!(header.last().unwrap(), "set");
    let (_, truth) = read_csv(&held);
    let covered = rows
        .iter()
        .zip(&truth)
        .filter(|(r, t)| r.last().unwrap().split('|').any(|c| c == t.last().unwrap()))
        .count();
    let coverage = covered as f64 / rows.len() as f64;
    assert_covered(coverage, 0.9, n_cal, rows.len(), "digits sets");
    let size = rows
        .iter()
        .map(|r| r.last().unwrap().split('|').count())
        .sum::<usize>() as f64
        / rows.len() as f64;
    assert!(
        size < 2.0,
        "sets of {size:.2} classes on average: no better than guessing"
    );
    // Sets may be empty (no class likely enough at this coverage): that is how they hold 90 %
    // and not the classifier's accuracy.
    assert!(
        rows.iter().any(|r| r.last().unwrap().is_empty()),
        "no empty set"
    );

    // German credit amounts: intervals around a regressor's values.
    let (fit, held) = (root.path().join("gfit.csv"), root.path().join("gheld.csv"));
    part(GERMAN, 0..750, &fit);
    part(GERMAN, 750..1000, &held);
    let dir = root.path().join("amount");
    train(
        fit.to_str().unwrap(),
        "credit_amount",
        &dir,
        &["--coverage", "0.8"],
    );
    let decision = json_file(&dir.join("decision.json"));
    let n_cal = decision["intervals"]["calibration_rows"].as_u64().unwrap() as usize;
    let csv = root.path().join("amount.csv");
    ok(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        held.to_str().unwrap(),
        "--device",
        &device(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    let (header, rows) = read_csv(&csv);
    assert_eq!(header, ["row", "prediction", "lower", "upper"]);
    let (names, truth) = read_csv(&held);
    let amount = names.iter().position(|n| n == "credit_amount").unwrap();
    let covered = rows
        .iter()
        .zip(&truth)
        .filter(|(r, t)| {
            let [lo, hi, y] = [&r[2], &r[3], &t[amount]].map(|v| v.parse::<f64>().unwrap());
            lo <= y && y <= hi
        })
        .count();
    assert_covered(
        covered as f64 / rows.len() as f64,
        0.8,
        n_cal,
        rows.len(),
        "credit amount intervals",
    );
}

#[test]
fn bad_decision_options_are_typed_errors_naming_the_option_and_the_numbers() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("m");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--data",
            DIGITS,
            "--target",
            "label",
            "--epochs",
            "2",
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
    };
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["--coverage", "1.5"],
            &["--coverage 1.5", "between 0 and 1"],
        ),
        (&["--coverage", "0"], &["--coverage 0"]),
        (&["--threshold", "f1"], &["--threshold", "10 classes"]),
        (
            &["--threshold", "precision>=2"],
            &["precision>=2", "(0, 1]"],
        ),
        (&["--threshold", "best"], &["--threshold `best`", "f1"]),
        (
            &["--calibration", "platt"],
            &["--calibration platt", "10 classes"],
        ),
        (
            &["--calibration", "isotonic"],
            &["--calibration", "isotonic"],
        ),
    ];
    for (extra, needles) in cases {
        let args = base(extra);
        let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        for n in needles {
            assert!(e.contains(n), "{extra:?}: {e}");
        }
        assert!(!out.exists(), "{extra:?} wrote a model");
    }
    // A regressor has no class probability to calibrate or threshold.
    let e = fails(&[
        "train",
        "--data",
        GERMAN,
        "--target",
        "credit_amount",
        "--epochs",
        "2",
        "--threshold",
        "f1",
        "--progress",
        "quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("--threshold") && e.contains("predicts values"),
        "{e}"
    );
    assert!(!out.exists());
    // A language model has neither: refused before it trains.
    let e = fails(&[
        "train",
        "--task",
        "generate",
        "--data",
        "data/sentiment_sentences/ORIGINAL_README.txt",
        "--coverage",
        "0.9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("--coverage") && e.contains("generate"), "{e}");
    assert!(!out.exists());
}
