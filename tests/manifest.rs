//! Every model directory records what it is in `manifest.json`, and every verb reads it
//! through one loader: a directory of Sora 0.1 (no manifest) still loads, with a note saying
//! how to upgrade it, and `sora upgrade` adds the manifest; a manifest of a newer format, of
//! an unknown kind, or listing a file the directory lacks is a typed error naming the file,
//! exit 1; a verb that does not fit the kind is one typed refusal.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{device, fails, ok, sora};
use serde_json::Value;

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

/// A heart-disease model trained once for the whole file.
fn heart() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep().join("heart");
        ok(&[
            "train",
            "--data",
            HEART,
            "--target",
            "num",
            "--target-above",
            "0",
            "--epochs",
            "5",
            "--progress",
            "quiet",
            "--out",
            dir.to_str().unwrap(),
            "--device",
            &device(),
        ]);
        dir
    })
}

/// A copy of the model directory `dir`, to damage.
fn copy(dir: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), root.path().join(entry.file_name())).unwrap();
    }
    root
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn predict(dir: &Path) -> std::process::Output {
    sora(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ])
}

#[test]
fn the_manifest_records_the_kind_the_input_and_every_file() {
    let m = manifest(heart());
    assert_eq!(m["format"], "sora-model");
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["kind"], "tabular");
    assert_eq!(m["task"], "classification");
    assert_eq!(m["sora_version"], env!("CARGO_PKG_VERSION"));
    let fields: Vec<&str> = m["input"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 13);
    assert!(
        fields.contains(&"thal") && !fields.contains(&"num"),
        "{fields:?}"
    );
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(heart())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json")
        .collect();
    on_disk.sort();
    assert_eq!(files, on_disk);
    let summary = ok(&["summary", "--model", heart().to_str().unwrap()]);
    assert!(
        summary.starts_with("tabular model, classification"),
        "{summary}"
    );
    assert!(summary.contains("Total params"), "{summary}");
}

#[test]
fn a_directory_without_a_manifest_loads_and_upgrades() {
    let old = copy(heart());
    std::fs::remove_file(old.path().join("manifest.json")).unwrap();
    let before = predict(heart());
    let after = predict(old.path());
    assert!(after.status.success());
    // The same predictions, and a note on how to upgrade.
    assert_eq!(before.stdout, after.stdout);
    let note = String::from_utf8_lossy(&after.stderr);
    assert!(
        note.contains("has no manifest.json (written by Sora 0.1); read as a `tabular` model")
            && note.contains("sora upgrade --model"),
        "{note}"
    );
    let upgraded = ok(&["upgrade", "--model", old.path().to_str().unwrap()]);
    assert!(upgraded.contains("wrote"), "{upgraded}");
    assert_eq!(manifest(old.path()), manifest(heart()));
    let again = predict(old.path());
    assert!(String::from_utf8_lossy(&again.stderr).is_empty());
    assert_eq!(again.stdout, before.stdout);
    let twice = ok(&["upgrade", "--model", old.path().to_str().unwrap()]);
    assert!(twice.contains("nothing to do"), "{twice}");
}

#[test]
fn a_manifest_that_does_not_fit_is_a_typed_error_naming_the_file() {
    let edit = |change: &dyn Fn(&mut Value)| {
        let dir = copy(heart());
        let mut m = manifest(dir.path());
        change(&mut m);
        std::fs::write(dir.path().join("manifest.json"), m.to_string()).unwrap();
        let before = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let e = fails(&[
            "predict",
            "--model",
            dir.path().to_str().unwrap(),
            "--data",
            HEART,
        ]);
        // Nothing is written on the way.
        assert_eq!(
            std::fs::read(dir.path().join("model.safetensors")).unwrap(),
            before
        );
        (dir, e)
    };
    let (dir, e) = edit(&|m| m["format_version"] = 7.into());
    assert!(
        e.contains(&format!(
            "{}: format version 7 is newer",
            dir.path().join("manifest.json").display()
        )),
        "{e}"
    );
    let (_, e) = edit(&|m| m["kind"] = "hologram".into());
    assert!(
        e.contains("manifest.json: unknown model kind `hologram` (known kinds: tabular, image, audio, text, generate, ratings, anomaly)"),
        "{e}"
    );
    let (_, e) = edit(&|m| m["files"].as_array_mut().unwrap().push("extra.bin".into()));
    assert!(
        e.contains("manifest.json: lists `extra.bin`, which is not in the directory"),
        "{e}"
    );
    let (_, e) = edit(&|m| m["format"] = "keras".into());
    assert!(
        e.contains("format `keras` is not a Sora model directory"),
        "{e}"
    );
    // A manifest of another kind than the files: the kind's loader names what is missing.
    let (_, e) = edit(&|m| m["kind"] = "text".into());
    assert!(
        e.contains("no text.json: not a text model directory"),
        "{e}"
    );
    let (dir, e) = edit(&|m| m["task"] = Value::Null);
    assert!(
        e.contains(&dir.path().join("manifest.json").display().to_string()),
        "{e}"
    );
    // Not a model directory at all.
    let empty = tempfile::tempdir().unwrap();
    let e = fails(&[
        "eval",
        "--model",
        empty.path().to_str().unwrap(),
        "--data",
        HEART,
    ]);
    assert!(e.contains("not a Sora model directory"), "{e}");
}

#[test]
fn a_verb_that_does_not_fit_the_kind_is_one_typed_refusal() {
    let m = heart().to_str().unwrap();
    let e = fails(&["generate", "--model", m, "--prompt", "x"]);
    assert!(e.contains("tabular models do not write text"), "{e}");
    let e = fails(&["predict", "--model", m, "--user", "1"]);
    assert!(e.contains("tabular models do not recommend items"), "{e}");
    // Options of another kind are refused, naming the kind that has them.
    let out = tempfile::tempdir().unwrap();
    let e = fails(&[
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--hflip",
        "--out",
        out.path().join("m").to_str().unwrap(),
    ]);
    assert!(
        e.contains("--hflip: an option of image models; this run trains a tabular model"),
        "{e}"
    );
    assert!(!out.path().join("m").exists());
}
