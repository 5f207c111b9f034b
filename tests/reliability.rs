//! The last ways to lose or corrupt data, through the whole program: a model file that is not a
//! regular file is refused at once (never read into memory), `--out` never replaces a file the
//! user owns, and a negative learning rate is read as a value and refused by name.

mod common;

use common::{device, fails, ok};
use std::path::Path;
use std::time::{Duration, Instant};

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

fn train(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--epochs",
        "3",
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

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[cfg(unix)]
#[test]
fn a_model_file_linked_to_a_device_is_refused_before_it_is_read() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    ok(&strs(&train(&model, &[])));
    let weights = model.join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &weights).unwrap();

    let started = Instant::now();
    let stderr = fails(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    // Reading /dev/zero would never end (or end when memory does); the refusal is immediate.
    assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(stderr.contains("model.safetensors"), "{stderr}");
}

#[test]
fn out_naming_a_regular_file_is_refused_and_the_file_kept() {
    let root = tempfile::tempdir().unwrap();
    let notes = root.path().join("notes.txt");
    std::fs::write(&notes, "the user's own file\n").unwrap();

    let stderr = fails(&strs(&train(&notes, &[])));
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "the user's own file\n"
    );
    // Nothing hidden beside it: no staging folder, no moved-away copy.
    assert_eq!(entries(root.path()), ["notes.txt"]);
}

#[test]
fn a_negative_learning_rate_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    let stderr = fails(&strs(&train(&model, &["--lr", "-1"])));
    assert!(stderr.contains("lr"), "{stderr}");
    assert!(stderr.contains("-1"), "{stderr}");
    assert!(stderr.contains("positive"), "{stderr}");
    // Nothing left behind: no model, no checkpoint folder of a run that never trained.
    assert_eq!(entries(root.path()), Vec::<String>::new());
}

#[test]
fn classes_too_small_to_hold_out_are_named_with_what_to_do() {
    // 40 classes of 3 rows: a stratified 15 % holds out round(3 × 0.15) = 0 rows of each.
    let root = tempfile::tempdir().unwrap();
    let csv = root.path().join("rare.csv");
    let mut text = String::from("x,label\n");
    for i in 0..120 {
        text.push_str(&format!("{},c{}\n", i as f64 * 0.5, i / 3));
    }
    std::fs::write(&csv, text).unwrap();
    let stderr = fails(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "label",
        "--progress",
        "quiet",
        "--device",
        &device(),
        "--out",
        root.path().join("m").to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("validation part of the split is empty"),
        "{stderr}"
    );
    assert!(stderr.contains("40 classes of at most 3 rows"), "{stderr}");
    assert!(
        stderr.contains("fewer than 4 rows (40 of the 40 classes)"),
        "{stderr}"
    );
}
