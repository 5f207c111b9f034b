//! The last ways to lose or corrupt data, through the whole program: a model file that is not a
//! regular file is refused at once (never read into memory), `--out` never replaces a file the
//! user owns, and a negative learning rate is read as a value and refused by name.

mod common;

use common::{device, entries, fails, ok};
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

fn read_json(file: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// Rewrites a JSON file of a model directory, as a user editing it by hand would.
fn edit_json(file: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = read_json(file);
    edit(&mut value);
    std::fs::write(file, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
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

/// Heart-disease rows as another source might send them: `ca`, `thal` and `slope` empty in
/// all but the first 20 rows, `chol` in another unit (×2.6), in every row.
fn another_hospital(path: &Path) {
    let text = std::fs::read_to_string(HEART).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ca, thal, slope, chol) = (at("ca"), at("thal"), at("slope"), at("chol"));
    let mut out = vec![header.join(",")];
    for (i, line) in lines.enumerate() {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        if i >= 20 {
            for c in [ca, thal, slope] {
                cells[c].clear();
            }
        }
        cells[chol] = format!("{:.1}", cells[chol].parse::<f64>().unwrap() * 2.6);
        out.push(cells.join(","));
    }
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

#[test]
fn eval_and_predict_say_which_columns_differ_from_the_training_data() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    ok(&strs(&train(&model, &[])));
    let model = model.to_str().unwrap();

    // The training file itself: nothing to say.
    let same = common::sora(&["eval", "--model", model, "--data", HEART]);
    assert!(same.status.success());
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert!(!stderr.contains("drift"), "{stderr}");

    let other = root.path().join("other.csv");
    another_hospital(&other);
    let other = other.to_str().unwrap();
    for verb in ["eval", "predict"] {
        let out = common::sora(&[verb, "--model", model, "--data", other]);
        assert!(out.status.success(), "{verb}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for column in ["ca", "thal", "slope"] {
            let line = stderr
                .lines()
                .find(|l| l.contains(&format!("drift: `{column}`:")))
                .unwrap_or_else(|| panic!("{verb}: no drift line for {column}:\n{stderr}"));
            assert!(line.contains("283 of 303 rows missing (93.4%;"), "{line}");
        }
        let chol = stderr
            .lines()
            .find(|l| l.contains("drift: `chol`:"))
            .unwrap();
        assert!(chol.contains("outside the training range"), "{chol}");
        assert!(
            stderr.contains(
                "drift: 4 of 13 columns differ from the training data; 849 missing cells"
            ),
            "{stderr}"
        );
    }
}

/// A CSV of `n` rows: `x` numbers but for two text cells, `y` a class.
fn stray_text(path: &Path, n: usize) {
    let mut csv = String::from("x,z,y\n");
    for i in 0..n {
        let x = match i {
            7 => "unknown".to_string(),
            40 => "-".to_string(),
            _ => format!("{:.2}", i as f64 * 0.37),
        };
        csv.push_str(&format!("{x},{},{}\n", (i * 7) % 11, u8::from(i % 3 == 0)));
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn text_cells_among_numbers_are_refused_naming_them_until_told_what_they_mean() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("mixed.csv");
    stray_text(&data, 120);
    let data = data.to_str().unwrap();
    let out = root.path().join("model");
    let args = |extra: &[&'static str]| {
        let mut a = vec!["train", "--data", data, "--target", "y", "--epochs", "2"];
        a.extend(["--progress", "quiet", "--out", out.to_str().unwrap()]);
        a.extend_from_slice(extra);
        a
    };
    let stderr = fails(&args(&[]));
    assert!(
        stderr.contains(
            "column `x` holds 2 text cell(s) among 118 numbers (line 9: `unknown`, line 42: `-`)"
        ),
        "{stderr}"
    );
    assert!(!out.exists());

    let said = ok(&args(&["--text-cells", "missing"]));
    assert!(
        said.contains("`x`: 2 text cell(s) read as missing"),
        "{said}"
    );
    let model = out.to_str().unwrap();
    // The model reads x as a number: 1 input for x, 10 one-hot for z.
    assert_eq!(
        read_json(&out.join("pipeline.json"))["feature_names"][0],
        "x"
    );
    let predicted = ok(&["predict", "--model", model, "--data", data]);
    assert_eq!(predicted.lines().count(), 121);
}

#[test]
fn an_identifier_target_is_refused_before_training() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("ids.csv");
    let mut csv = String::from("row,x,label\n");
    for i in 0..80 {
        csv.push_str(&format!("{},{},{}\n", 1000 + i, i % 9, i % 2));
    }
    std::fs::write(&data, csv).unwrap();
    let data = data.to_str().unwrap();
    let out = root.path().join("model");
    let out = out.to_str().unwrap();
    let stderr = fails(&["train", "--data", data, "--target", "row", "--out", out]);
    assert!(
        stderr.contains("the target `row` looks like a row identifier (80 whole numbers, all distinct, counting 1000 .. 1079)"),
        "{stderr}"
    );
    assert!(stderr.contains("columns: row, x, label"), "{stderr}");
    // The real target trains.
    ok(&[
        "train",
        "--data",
        data,
        "--target",
        "label",
        "--epochs",
        "2",
        "--progress",
        "quiet",
        "--out",
        out,
    ]);
}

#[test]
fn a_pipeline_with_a_column_removed_is_refused_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    ok(&strs(&train(&model, &[])));
    edit_json(&model.join("pipeline.json"), |pipeline| {
        let features = pipeline["features"].as_array_mut().unwrap();
        let at = features.iter().position(|f| f["name"] == "thal").unwrap();
        features.remove(at);
    });
    let stderr = fails(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        HEART,
    ]);
    assert!(stderr.contains("pipeline.json"), "{stderr}");
    assert!(stderr.contains("no feature makes `thal`"), "{stderr}");
}

/// Text and images split through the same check as tables: a held-out part left empty by
/// classes too small to hold out says so, with what to do, before training.
#[test]
fn text_and_image_classes_too_small_to_hold_out_are_named() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("model");
    let out = out.to_str().unwrap();

    let texts = root.path().join("texts.csv");
    let mut csv = String::from("text,label\n");
    for class in 0..30 {
        for doc in 0..2 {
            csv.push_str(&format!("word{class} thing{doc} other words,c{class}\n"));
        }
    }
    std::fs::write(&texts, csv).unwrap();
    let texts = texts.to_str().unwrap();
    let stderr = fails(&[
        "train", "--data", texts, "--text", "text", "--target", "label", "--out", out,
    ]);
    assert!(
        stderr.contains(
            "the validation part of the split is empty: 60 rows, in 30 classes of at most 2 rows"
        ),
        "{stderr}"
    );

    let images = root.path().join("images");
    common::media::bars(&images, 2, 1);
    let stderr = fails(&["train", "--data", images.to_str().unwrap(), "--out", out]);
    assert!(
        stderr.contains(
            "the test part of the split is empty: 4 rows, in 2 classes of at most 2 rows"
        ),
        "{stderr}"
    );
    assert_eq!(entries(root.path()), ["images", "texts.csv"]);
}

/// A model directory whose `input.json` names an absurd clip length is refused when it is
/// read, naming the file and the field, before any buffer is sized from it.
#[test]
fn an_audio_model_with_a_crafted_clip_length_is_refused_on_loading() {
    let root = tempfile::tempdir().unwrap();
    let clips = root.path().join("clips");
    common::media::tones(&clips, 8, 2);
    let model = root.path().join("model");
    let model_s = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        clips.to_str().unwrap(),
        "--epochs",
        "1",
        "--progress",
        "quiet",
        "--device",
        &device(),
        "--out",
        model_s,
    ]);
    edit_json(&model.join("input.json"), |input| {
        input["pipeline"]["features"]["clip_samples"] = 1_000_000_000_000u64.into();
    });
    let stderr = fails(&[
        "predict",
        "--model",
        model_s,
        "--data",
        clips.to_str().unwrap(),
    ]);
    assert!(stderr.contains("input.json"), "{stderr}");
    assert!(
        stderr.contains(
            "`clip_samples`: expected 1 to 4800000 samples (600 s at 8000 Hz), found 1000000000000"
        ),
        "{stderr}"
    );
}
