//! `sora inspect | train | eval | predict` on the real tabular files, and bad input through the
//! whole command: a typed message naming file and row/column, exit code 1, no panic, and an
//! existing model directory left untouched.

mod common;

use common::{device, fails, ok, sora};
use std::path::{Path, PathBuf};

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

fn train_heart(out: &Path) -> String {
    let out = out.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--target-above",
        "0",
        "--seed",
        "42",
        "--progress",
        "quiet",
        "--out",
        out,
        "--device",
        &device(),
    ])
}

fn accuracy(dir: &Path) -> f64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    m["accuracy"].as_f64().unwrap()
}

#[test]
fn inspect_shows_schema_and_missing_values() {
    let out = ok(&["inspect", "--data", HEART, "--target", "num"]);
    assert!(out.contains("303 rows, 14 columns"), "{out}");
    for col in ["ca", "thal"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(col)),
            "{out}"
        );
    }
    assert!(out.contains("target `num`: 5 distinct values"), "{out}");
}

#[test]
fn train_eval_predict_heart_disease() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("heart");
    let out = train_heart(&dir);
    assert!(out.contains("Total params"), "{out}");
    assert!(out.contains("accuracy"), "{out}");
    for file in [
        "spec.json",
        "model.safetensors",
        "pipeline.json",
        "metrics.json",
        "curves.png",
        "train.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let acc = accuracy(&dir);
    assert!(acc >= 0.75, "heart disease test accuracy {acc}");

    // The same seed gives the same model directory contents.
    let again = root.path().join("again");
    train_heart(&again);
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).unwrap().len(),
        std::fs::read(again.join("model.safetensors"))
            .unwrap()
            .len()
    );
    assert_eq!(accuracy(&again), acc);

    // eval on the whole labelled file prints the metrics table.
    let d = dir.to_str().unwrap();
    let eval = ok(&["eval", "--model", d, "--data", HEART, "--device", &device()]);
    assert!(
        eval.contains("accuracy") && eval.contains("confusion matrix"),
        "{eval}"
    );

    // predict: a row per data row (missing values are imputed), probabilities sum to 1.
    let pred = ok(&[
        "predict",
        "--model",
        d,
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    let lines: Vec<&str> = pred.lines().collect();
    assert_eq!(lines[0], "row,prediction,p_0,p_1");
    assert_eq!(lines.len(), 1 + 303);
    for line in &lines[1..] {
        let cells: Vec<&str> = line.split(',').collect();
        let p: f32 = cells[2..].iter().map(|c| c.parse::<f32>().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-4, "{line}");
    }
    // Save → load → predict is deterministic and matches the file written with --out.
    let csv = root.path().join("pred.csv");
    ok(&[
        "predict",
        "--model",
        d,
        "--data",
        HEART,
        "--out",
        csv.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), pred);
}

#[test]
fn predict_rows_with_missing_values_and_unseen_categories() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("german");
    ok(&[
        "train",
        "--data",
        "data/german_credit/german_credit.csv",
        "--target",
        "class",
        "--seed",
        "1",
        "--epochs",
        "30",
        "--progress",
        "quiet",
        "--out",
        dir.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let text = std::fs::read_to_string("data/german_credit/german_credit.csv").unwrap();
    let mut lines: Vec<String> = text.lines().take(4).map(str::to_string).collect();
    // Row 2: a purpose never seen in training; row 3: a missing duration and a missing category.
    lines[1] = lines[1].replacen("radio/tv", "space travel", 1);
    let mut cells: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    cells[1] = String::new();
    cells[0] = "NA".into();
    lines[2] = cells.join(",");
    let new_rows = root.path().join("new.csv");
    std::fs::write(&new_rows, lines.join("\n") + "\n").unwrap();
    let out = sora(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        new_rows.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(
        stderr.contains("1 cells held categories not seen"),
        "{stderr}"
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_input_is_a_typed_error_and_keeps_the_old_model() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    train_heart(&model);
    let before = std::fs::read(model.join("model.safetensors")).unwrap();
    let m = model.to_str().unwrap();
    let d = root.path();
    let cases: Vec<(PathBuf, &str, Vec<&str>)> = vec![
        (write(d, "empty.csv", b""), "t", vec!["empty.csv", "empty"]),
        (
            write(d, "header.csv", b"a,b,t\n"),
            "t",
            vec!["header.csv", "no data rows"],
        ),
        (
            write(d, "ragged.csv", b"a,b,t\n1,2,0\n1,2\n"),
            "t",
            vec!["ragged.csv", "3"],
        ),
        (
            write(d, "quote.csv", b"a,b,t\n1,\"2,0\n"),
            "t",
            vec!["quote.csv"],
        ),
        (
            write(d, "utf8.csv", b"a,b,t\n1,\xff\xfe,0\n"),
            "t",
            vec!["utf8.csv", "UTF-8"],
        ),
        (
            write(d, "dup.csv", b"a,a,t\n1,2,0\n3,4,1\n"),
            "t",
            vec!["dup.csv", "a"],
        ),
        (
            write(d, "inf.csv", b"a,b,t\n1,2,0\n1,inf,1\n3,4,0\n4,5,1\n"),
            "t",
            vec!["inf.csv", "b"],
        ),
        (
            write(d, "oneclass.csv", b"a,b,t\n1,2,0\n3,4,0\n5,6,0\n7,8,0\n"),
            "t",
            vec!["oneclass.csv", "class"],
        ),
        (
            write(d, "notarget.csv", b"a,b,t\n1,2,0\n3,4,1\n"),
            "nope",
            vec!["notarget.csv", "nope"],
        ),
        (
            write(d, "allmissing.csv", b"a,b,t\n1,2,\n3,4,\n"),
            "t",
            vec!["allmissing.csv", "t"],
        ),
        (
            write(d, "nofeatures.csv", b"t\n0\n1\n0\n1\n"),
            "t",
            vec!["nofeatures.csv", "feature"],
        ),
    ];
    for (file, target, needles) in cases {
        let err = fails(&[
            "train",
            "--data",
            file.to_str().unwrap(),
            "--target",
            target,
            "--out",
            m,
            "--progress",
            "quiet",
        ]);
        for needle in needles {
            assert!(
                err.contains(needle),
                "{}: expected {needle:?} in: {err}",
                file.display()
            );
        }
    }
    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        before
    );
    // A BOM, CRLF line ends and quoted commas are not errors.
    let good = write(
        d,
        "bom.csv",
        "\u{feff}a,b,t\r\n1,\"x,y\",0\r\n2,\"x,y\",1\r\n3,z,0\r\n4,z,1\r\n5,z,0\r\n6,\"x,y\",1\r\n7,z,0\r\n8,z,1\r\n9,z,0\r\n10,z,1\r\n".as_bytes(),
    );
    let out = ok(&["inspect", "--data", good.to_str().unwrap()]);
    assert!(out.contains("10 rows, 3 columns"), "{out}");
}
