//! `sora train | eval | predict | explain` on image folders, IDX files and audio folders
//! (generated here, small enough to learn in seconds), and bad media input through the whole
//! command: a typed message naming the file, exit code 1, no panic, the old model kept.

mod common;

use common::media::{bars, tones};
use common::{device, fails, ok};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn accuracy(model: &Path) -> f64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("metrics.json")).unwrap()).unwrap();
    m["accuracy"].as_f64().unwrap()
}

fn train_args<'a>(data: &'a str, out: &'a str, device: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--epochs",
        "12",
        "--seed",
        "3",
        "--progress",
        "quiet",
        "--device",
        device,
    ]
}

#[test]
fn images_train_eval_predict_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars");
    bars(&data, 40, 1);
    let model = dir.path().join("model");
    let (data_s, model_s, dev) = (data.to_str().unwrap(), model.to_str().unwrap(), device());
    let mut args = train_args(data_s, model_s, &dev);
    args.extend(["--crop-padding", "1", "--translate", "1"]);
    let out = ok(&args);
    assert!(
        out.contains("80 samples of shape [1, 12, 12], 2 classes (across, down)"),
        "{out}"
    );
    assert!(out.contains("encoder.blocks.0.conv (Conv2d)"), "{out}");
    assert!(accuracy(&model) >= 0.9, "{out}");
    for file in ["spec.json", "model.safetensors", "input.json", "curves.png"] {
        assert!(model.join(file).is_file(), "{file}");
    }

    let eval = ok(&[
        "eval", "--model", model_s, "--data", data_s, "--device", &dev,
    ]);
    assert!(eval.contains("accuracy"), "{eval}");

    // One file: a vertical bar at column 5.
    let one = dir.path().join("one.png");
    image::GrayImage::from_fn(12, 12, |x, _| image::Luma([if x == 5 { 230 } else { 10 }]))
        .save(&one)
        .unwrap();
    let predicted = ok(&[
        "predict",
        "--model",
        model_s,
        "--data",
        one.to_str().unwrap(),
    ]);
    let line = predicted.lines().nth(1).unwrap();
    assert!(line.contains(",down,"), "{predicted}");

    // Grad-CAM over the same image: the evidence lies on the bar.
    let picture = dir.path().join("cam.png");
    let explained = ok(&[
        "explain",
        "--model",
        model_s,
        "--data",
        one.to_str().unwrap(),
        "--rows",
        "1",
        "--picture",
        picture.to_str().unwrap(),
    ]);
    assert!(
        explained.contains("Grad-CAM on encoder.blocks.1"),
        "{explained}"
    );
    // The bar is column 5; the last block's maps are 3×3, so a third of the width is the
    // resolution Grad-CAM has.
    let column: usize = explained
        .split("column ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!((3..=7).contains(&column), "{explained}");
    let png = image::open(&picture).unwrap();
    assert!(png.width() > 2 * 12 && png.height() > 12);
    for method in ["saliency", "occlusion", "ig"] {
        let out = ok(&[
            "explain",
            "--model",
            model_s,
            "--data",
            data_s,
            "--rows",
            "1,41",
            "--method",
            method,
            "--picture",
            picture.to_str().unwrap(),
        ]);
        assert_eq!(out.matches("predicted").count(), 2, "{out}");
    }
}

#[test]
fn idx_files_train_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..80 {
        let label = (i % 2) as u8;
        let at = rng.random_range(2..8);
        for y in 0..10 {
            for x in 0..10 {
                let on = if label == 1 { x == at } else { y == at };
                pixels.push(if on { 220 } else { rng.random_range(0..50) });
            }
        }
        labels.push(label);
    }
    let images = dir.path().join("images-idx3-ubyte.gz");
    let labels_file = dir.path().join("labels-idx1-ubyte.gz");
    sora::conv::images::write_idx_images(&images, &pixels, 80, 10, 10, true).unwrap();
    sora::conv::images::write_idx_labels(&labels_file, &labels, true).unwrap();
    let model = dir.path().join("model");
    let (images_s, labels_s, model_s, dev) = (
        images.to_str().unwrap(),
        labels_file.to_str().unwrap(),
        model.to_str().unwrap(),
        device(),
    );
    let mut args = train_args(images_s, model_s, &dev);
    args.extend(["--labels", labels_s]);
    ok(&args);
    assert!(accuracy(&model) >= 0.9);
    let eval = ok(&[
        "eval", "--model", model_s, "--data", images_s, "--labels", labels_s,
    ]);
    assert!(eval.contains("accuracy"), "{eval}");
    let predicted = ok(&["predict", "--model", model_s, "--data", images_s]);
    assert_eq!(predicted.lines().count(), 81, "{predicted}");
}

#[test]
fn audio_folders_train_predict_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tones");
    tones(&data, 24, 2);
    let model = dir.path().join("model");
    let (data_s, model_s, dev) = (data.to_str().unwrap(), model.to_str().unwrap(), device());
    let mut args = train_args(data_s, model_s, &dev);
    args.extend(["--clip-seconds", "0.25", "--mask-time", "4"]);
    let out = ok(&args);
    assert!(
        out.contains("48 samples of shape [40, 26], 2 classes (high, low)"),
        "{out}"
    );
    assert!(accuracy(&model) >= 0.9, "{out}");

    let one = data.join("high").join("000.wav");
    let predicted = ok(&[
        "predict",
        "--model",
        model_s,
        "--data",
        one.to_str().unwrap(),
    ]);
    assert!(
        predicted.lines().nth(1).unwrap().contains(",high,"),
        "{predicted}"
    );
    let picture = dir.path().join("spectrogram.png");
    let explained = ok(&[
        "explain",
        "--model",
        model_s,
        "--data",
        one.to_str().unwrap(),
        "--rows",
        "1",
        "--picture",
        picture.to_str().unwrap(),
    ]);
    assert!(explained.contains("maps 40×26"), "{explained}");
    assert!(picture.is_file());

    // MFCC frames through a one-dimensional encoder from a spec file.
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{ "encoder": { "kind": "conv1d", "input": [13, 26],
              "blocks": [ { "channels": 32, "kernel": 5, "pool": "max" } ] },
             "head": { "d_hidden": [16] },
             "task": { "kind": "classification", "n_classes": 2 } }"#,
    )
    .unwrap();
    let model1 = dir.path().join("model1d");
    let mut args = train_args(data_s, model1.to_str().unwrap(), &dev);
    let spec_s = spec.to_str().unwrap();
    args.extend([
        "--clip-seconds",
        "0.25",
        "--features",
        "mfcc",
        "--spec",
        spec_s,
    ]);
    let out = ok(&args);
    assert!(out.contains("encoder.blocks.0.conv (Conv1d)"), "{out}");
    assert!(accuracy(&model1) >= 0.9, "{out}");
    // The same spec on log-mel frames [40, 26]: refused before training, naming the field.
    let mut args = train_args(data_s, model1.to_str().unwrap(), &dev);
    args.extend([
        "--clip-seconds",
        "0.25",
        "--features",
        "log-mel",
        "--spec",
        spec_s,
    ]);
    let err = fails(&args);
    assert!(
        err.contains("encoder.input") && err.contains("[40, 26]"),
        "{err}"
    );

    // The log-mel spectrogram as a one-channel picture through a 2-D encoder, and Grad-CAM
    // over it: maps with both a frequency and a time axis.
    let spec2d = dir.path().join("spec2d.json");
    std::fs::write(
        &spec2d,
        r#"{ "encoder": { "kind": "conv2d", "input": [1, 40, 26],
              "blocks": [ { "channels": 8, "kernel": 3, "pool": "max" },
                          { "channels": 16, "kernel": 3 } ],
              "global_pool": "flatten" },
             "head": { "d_hidden": [16] },
             "task": { "kind": "classification", "n_classes": 2 } }"#,
    )
    .unwrap();
    let model2 = dir.path().join("model2d");
    let mut args = train_args(data_s, model2.to_str().unwrap(), &dev);
    // 38 training clips are one batch: 12 steps of Adam at 1e-3 are too few for this net.
    args.extend([
        "--lr",
        "0.01",
        "--clip-seconds",
        "0.25",
        "--spec",
        spec2d.to_str().unwrap(),
    ]);
    let out = ok(&args);
    assert!(out.contains("encoder.blocks.1.conv (Conv2d)"), "{out}");
    assert!(accuracy(&model2) >= 0.9, "{out}");
    let explained = ok(&[
        "explain",
        "--model",
        model2.to_str().unwrap(),
        "--data",
        one.to_str().unwrap(),
        "--picture",
        picture.to_str().unwrap(),
    ]);
    assert!(
        explained.contains("Grad-CAM on encoder.blocks.1: 1 sample(s), maps 40×26"),
        "{explained}"
    );
}

/// A WAV file's bytes: a 44-byte header and 16-bit (or 32-bit float) samples.
fn wav_bytes(channels: u16, format: u16, bits: u16, frames: usize) -> Vec<u8> {
    let block = channels * bits / 8;
    let data_len = (frames * block as usize) as u32;
    let mut b = Vec::new();
    b.extend(b"RIFF");
    b.extend((36 + data_len).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(format.to_le_bytes());
    b.extend(channels.to_le_bytes());
    b.extend(8000u32.to_le_bytes());
    b.extend((8000 * u32::from(block)).to_le_bytes());
    b.extend(block.to_le_bytes());
    b.extend(bits.to_le_bytes());
    b.extend(b"data");
    b.extend(data_len.to_le_bytes());
    b.resize(44 + data_len as usize, 0);
    b
}

#[test]
fn bad_media_input_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let dev = device();
    let model = dir.path().join("model");
    let model_s = model.to_str().unwrap();

    // A good model first: failed runs must leave it as it is.
    let good = dir.path().join("good");
    bars(&good, 10, 9);
    let mut args = train_args(good.to_str().unwrap(), model_s, &dev);
    args[6] = "1";
    ok(&args);
    let before = std::fs::read(model.join("model.safetensors")).unwrap();

    let bad = |name: &str| {
        let data = dir.path().join(name);
        bars(&data, 3, 4);
        data
    };
    // A corrupt PNG.
    let data = bad("corrupt");
    let corrupt = data.join("down").join("001.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n not really").unwrap();
    let err = fails(&train_args(data.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("001.png"), "{err}");
    // A truncated PNG.
    let data = bad("truncated");
    let file = data.join("across").join("002.png");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&train_args(data.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("002.png"), "{err}");
    // An unsupported format.
    let data = bad("webp");
    std::fs::write(data.join("down").join("x.webp"), b"RIFF").unwrap();
    let err = fails(&train_args(data.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("x.webp"), "{err}");
    // An empty folder, and a folder with one class.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(&train_args(empty.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("empty"), "{err}");
    let data = bad("one-class");
    std::fs::remove_dir_all(data.join("down")).unwrap();
    let err = fails(&train_args(data.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("across"), "{err}");

    // IDX: a wrong magic number, and a length that does not match the header.
    let idx = dir.path().join("images.idx");
    let labels = dir.path().join("labels.idx");
    sora::conv::images::write_idx_labels(&labels, &[0, 1], false).unwrap();
    let mut header = vec![0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    header.extend([0u8; 8]);
    std::fs::write(&idx, &header).unwrap();
    let mut args = train_args(idx.to_str().unwrap(), model_s, &dev);
    args.extend(["--labels", labels.to_str().unwrap()]);
    let err = fails(&args);
    assert!(err.contains("images.idx") && err.contains("2051"), "{err}");
    header[3] = 3;
    header.truncate(header.len() - 3);
    std::fs::write(&idx, &header).unwrap();
    let err = fails(&args);
    assert!(err.contains("images.idx"), "{err}");

    // WAV: not PCM (IEEE float), and stereo.
    let audio = dir.path().join("audio");
    tones(&audio, 3, 6);
    let float = audio.join("low").join("float.wav");
    std::fs::write(&float, wav_bytes(1, 3, 32, 100)).unwrap();
    let err = fails(&train_args(audio.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("float.wav"), "{err}");
    std::fs::remove_file(&float).unwrap();
    let stereo = audio.join("high").join("stereo.wav");
    std::fs::write(&stereo, wav_bytes(2, 1, 16, 100)).unwrap();
    let err = fails(&train_args(audio.to_str().unwrap(), model_s, &dev));
    assert!(err.contains("stereo.wav"), "{err}");

    // Augmentation of the other domain is refused, not ignored.
    let mut args = train_args(audio.to_str().unwrap(), model_s, &dev);
    args.push("--hflip");
    let err = fails(&args);
    assert!(err.contains("--hflip") && err.contains("audio"), "{err}");

    // An image model asked to predict a clip.
    let err = fails(&[
        "predict",
        "--model",
        model_s,
        "--data",
        audio.to_str().unwrap(),
    ]);
    assert!(err.contains("images"), "{err}");

    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        before
    );
}
