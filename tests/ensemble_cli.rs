//! `--ensemble N` and `--cv K --cv-ensemble` through the whole program: the members on one
//! split (member 1 is the plain run's model, weight for weight), one directory that predict,
//! eval, explain and serve read as one model scoring the mean of its members, the fold
//! models kept as the final model after cross-validation, and bad options refused by name.

mod common;

use std::path::Path;

use common::http::Serve;
use common::{device, fails, ok};
use serde_json::{Value, json};

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

fn train(out: &Path, extra: &[&str]) -> String {
    let dev = device();
    let mut args = vec![
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
        &dev,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// The class-1 probability of every row as `sora predict` writes it for `model`.
fn p_sick(model: &Path, out: &Path) -> Vec<f64> {
    ok(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == "p_1").unwrap();
    lines
        .map(|l| l.split(',').nth(c).unwrap().parse().unwrap())
        .collect()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn an_ensemble_is_one_model_for_every_verb() {
    let root = tempfile::tempdir().unwrap();
    let single = root.path().join("single");
    let dir = root.path().join("ensemble");
    let plain = ["--calibration", "none"];
    train(&single, &plain);
    let out = train(&dir, &["--ensemble", "3", "--calibration", "none"]);
    assert!(
        out.contains("ensemble of 3 members (seeds 42, 43, 44)"),
        "{out}"
    );
    assert!(out.contains("members: test accuracy"), "{out}");
    assert!(out.contains("ensemble test metrics:"), "{out}");
    let file = json_file(&dir.join("ensemble.json"));
    assert_eq!(file["origin"]["seeds"], json!([42, 43, 44]));
    // Member 1 is the plain run's model: the same split and seed, the same weights.
    assert_eq!(
        std::fs::read(dir.join("members/0/model.safetensors")).unwrap(),
        std::fs::read(single.join("model.safetensors")).unwrap()
    );
    assert_ne!(
        std::fs::read(dir.join("members/1/model.safetensors")).unwrap(),
        std::fs::read(single.join("model.safetensors")).unwrap()
    );
    // The ensemble's probability is the mean of its members'.
    let members: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            p_sick(
                &dir.join(format!("members/{i}")),
                &root.path().join(format!("m{i}.csv")),
            )
        })
        .collect();
    let mean = p_sick(&dir, &root.path().join("mean.csv"));
    assert_eq!(mean.len(), 303);
    for (r, m) in mean.iter().enumerate() {
        let expected = members.iter().map(|p| p[r]).sum::<f64>() / 3.0;
        assert!((m - expected).abs() < 2e-6, "row {r}: {m} vs {expected}");
    }
    // eval and summary read it as one model.
    let eval = ok(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    assert!(eval.contains("accuracy"), "{eval}");
    let summary = ok(&["summary", "--model", dir.to_str().unwrap()]);
    assert!(
        summary.contains("ensemble of 3 tabular models"),
        "{summary}"
    );
    // explain: the members' attributions of the ensemble's predicted class, averaged.
    let report = root.path().join("why.html");
    let why = ok(&[
        "explain",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--rows",
        "1-3",
        "--device",
        &device(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(why.contains("the mean over the 3 members"), "{why}");
    assert!(why.contains("row 3:"), "{why}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("Row 2"),
        "{html}"
    );
    // serve scores the same means, for requests batched together.
    let server = Serve::start(&dir, &[]);
    let table = std::fs::read_to_string(HEART).unwrap();
    let mut lines = table.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Value> = lines
        .take(3)
        .map(|l| {
            let mut row = serde_json::Map::new();
            for (n, c) in names.iter().zip(l.split(',')) {
                if *n != "num" {
                    row.insert(n.to_string(), json!(c.parse::<f64>().ok()));
                }
            }
            Value::Object(row)
        })
        .collect();
    let (status, answer) = server.post("/v1/predict", &json!({ "rows": rows }));
    assert_eq!(status, 200, "{answer}");
    for (i, got) in answer["predictions"].as_array().unwrap().iter().enumerate() {
        let p = got["probabilities"][1].as_f64().unwrap();
        assert!((p - mean[i]).abs() < 2e-6, "row {i}: {p} vs {}", mean[i]);
    }
    let (status, answer) =
        server.post("/v1/explain", &json!({ "rows": [rows[0]], "method": "ig" }));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn cross_validation_can_keep_its_fold_models_as_the_final_model() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("folds");
    let out = train(&dir, &["--cv", "3", "--cv-ensemble"]);
    assert!(
        out.contains("final model: the fold models' ensemble"),
        "{out}"
    );
    let file = json_file(&dir.join("ensemble.json"));
    assert_eq!(file["origin"], json!({"from": "folds", "k": 3}));
    assert_eq!(file["members"].as_array().unwrap().len(), 3);
    assert!(dir.join("cv.json").is_file());
    // Its calibration is fitted on the out-of-fold predictions: every row once.
    let decision = json_file(&dir.join("decision.json"));
    assert_eq!(decision["fit_rows"], 303);
    assert!(
        decision["fitted_on"]
            .as_str()
            .unwrap()
            .contains("out-of-fold"),
        "{decision}"
    );
    let eval = ok(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    assert!(eval.contains("accuracy"), "{eval}");
}

#[test]
fn bad_ensembles_are_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("m");
    let args = |n: &str| {
        vec![
            "train".to_string(),
            "--data".into(),
            HEART.into(),
            "--target".into(),
            "num".into(),
            "--ensemble".into(),
            n.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    for n in ["1", "65"] {
        let a = args(n);
        let e = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains("--ensemble") && e.contains(n), "{e}");
    }
    let e = fails(&[
        "train",
        "--task",
        "generate",
        "--data",
        "data/sentiment_sentences/ORIGINAL_README.txt",
        "--ensemble",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("--ensemble") && e.contains("generate"), "{e}");
    assert!(!out.exists());
}
