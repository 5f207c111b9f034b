//! Writes the generated seeds of the corpus (`fuzz/corpus/`):
//!
//! - `model_dir/<kind>`: one tiny model of every kind, trained through the registry as `sora
//!   train` trains it (the same options, parsed by the same command), saved, and packed into
//!   one input ([`sora_fuzz::pack`]);
//! - `spec/<kind>.json`: the `spec.json` of those models that have one, behind the `spec`
//!   target's format byte;
//! - `image/*`: small PNG, JPEG, BMP and GIF files, behind the `image` target's option byte.
//!
//! `cargo fuzz build` builds this beside the targets; `scripts/fuzz.sh --seeds` runs it.

use std::path::Path;

use burn::tensor::Device;
use clap::{Args, Command, FromArgMatches};
use sora_conv::audio::{Clip, write_wav};
use sora_jobs::{CommonOptions, Registry, RunContext};

// Built with the targets' coverage instrumentation, this program needs libFuzzer's runtime
// (its coverage callbacks), which in turn asks for the test function of a target. Its own
// `main` runs; libFuzzer never does, and this function is never called.
extern crate libfuzzer_sys;

#[unsafe(no_mangle)]
#[allow(improper_ctypes_definitions)] // as libfuzzer-sys declares it: Rust calls Rust
extern "C" fn rust_fuzzer_test_input(_input: &[u8]) -> i32 {
    0
}

/// Files the loaders only check for: kept, but empty, so the seeds stay small and the same
/// from one run to the next (`timings.json` holds wall-clock seconds).
const EMPTIED: &[&str] = &["curves.png", "timings.json"];

fn main() {
    let out = std::env::args().nth(1).expect("usage: seeds CORPUS_DIR");
    let out = std::path::absolute(&out).expect("the output folder");
    let out = out.as_path();
    for target in ["model_dir", "spec", "image"] {
        std::fs::create_dir_all(out.join(target)).expect("the output folder");
    }
    write_images(&out.join("image"));
    let work = tempfile::tempdir().expect("a scratch folder");
    let data = work.path();
    write_data(data);
    // Relative paths, so that nothing of the scratch folder's name ends up in a model (the
    // pipeline records the file it was fitted on): the same seeds from every run.
    std::env::set_current_dir(data).expect("the scratch folder");
    let d = |name: &str| name.to_string();

    let image_spec = r#"{ "encoder": { "kind": "conv2d", "input": [1, 8, 8],
        "blocks": [ { "channels": 4, "kernel": 3, "pool": "max" } ], "global_pool": "flatten" },
        "head": { "d_hidden": [8] }, "task": { "kind": "classification", "n_classes": 2 } }"#;
    let audio_spec = r#"{ "encoder": { "kind": "conv2d", "input": [1, 8, 26],
        "blocks": [ { "channels": 4, "kernel": 3, "pool": "max" } ], "global_pool": "flatten" },
        "head": { "d_hidden": [8] }, "task": { "kind": "classification", "n_classes": 2 } }"#;
    std::fs::write(data.join("image_spec.json"), image_spec).expect("spec");
    std::fs::write(data.join("audio_spec.json"), audio_spec).expect("spec");

    let runs: [(&str, Vec<String>); 6] = [
        (
            "tabular",
            args(&[
                "--data",
                &d("table.csv"),
                "--target",
                "label",
                "--hidden",
                "4",
            ]),
        ),
        (
            "image",
            args(&[
                "--data",
                &d("images"),
                "--image-size",
                "8x8",
                "--spec",
                &d("image_spec.json"),
            ]),
        ),
        (
            "audio",
            args(&[
                "--data",
                &d("clips"),
                "--clip-seconds",
                "0.25",
                "--mels",
                "8",
                "--mfcc",
                "4",
                "--spec",
                &d("audio_spec.json"),
            ]),
        ),
        (
            "text",
            args(&[
                "--data",
                &d("text.csv"),
                "--text",
                "text",
                "--target",
                "label",
                "--embed",
                "4",
                "--hidden",
                "4",
            ]),
        ),
        (
            "generate",
            args(&[
                "--task",
                "generate",
                "--text",
                &d("corpus.txt"),
                "--embed",
                "4",
                "--hidden",
                "4",
                "--seq-len",
                "8",
            ]),
        ),
        (
            "recommend",
            args(&["--data", &d("ratings.csv"), "--ratings"]),
        ),
    ];
    let registry = Registry::builtin();
    let device = Device::flex();
    for (name, argv) in runs {
        let command = registry.augment_train(CommonOptions::augment_args(Command::new("train")));
        let matches = command
            .try_get_matches_from(argv)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let common = CommonOptions::from_arg_matches(&matches).expect("the shared options");
        let kind = registry.infer(&common).expect("a kind");
        let run = kind
            .train(&common, &matches, &RunContext::quiet(device.clone()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = work.path().join(format!("model-{name}"));
        run.save(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let seed = pack_dir(&dir);
        std::fs::write(out.join("model_dir").join(name), &seed).expect("the seed is written");
        if let Ok(json) = std::fs::read(dir.join("spec.json")) {
            let spec = [&[0u8][..], &json].concat(); // an even first byte: JSON
            std::fs::write(out.join("spec").join(format!("{name}.json")), spec).expect("a seed");
        }
        println!("{name}: {} bytes", seed.len());
    }
}

fn args(rest: &[&str]) -> Vec<String> {
    ["train", "--epochs", "1", "--progress", "quiet"]
        .iter()
        .chain(rest)
        .map(|s| s.to_string())
        .collect()
}

/// A directory's files, sorted by name, packed into one input.
fn pack_dir(dir: &Path) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("the model folder")
        .map(|e| {
            let path = e.expect("an entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = match EMPTIED.contains(&name.as_str()) {
                true => Vec::new(),
                false => std::fs::read(&path).expect("a model file"),
            };
            (name, bytes)
        })
        .collect();
    files.sort();
    sora_fuzz::pack(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

/// Tiny data of every kind: two classes that a model can tell apart.
fn write_data(dir: &Path) {
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).expect("data");
    let mut table = String::from("x,y,colour,label\n");
    let mut text = String::from("text,label\n");
    let mut ratings = String::from("user,item,rating\n");
    for i in 0..40 {
        let class = i % 2;
        let colour = ["red", "blue", "green"][i % 3];
        table.push_str(&format!(
            "{},{:.1},{colour},{}\n",
            i,
            class as f64 * 2.0 + 0.1 * i as f64,
            ["no", "yes"][class]
        ));
        let words = ["a dull grey day", "a bright happy day"][class];
        text.push_str(&format!("{words} {i},{}\n", ["sad", "glad"][class]));
        ratings.push_str(&format!("u{},i{},{}\n", i % 8, i % 5, 1 + (i * 7) % 5));
    }
    write("table.csv", table);
    write("text.csv", text);
    write("ratings.csv", ratings);
    write(
        "corpus.txt",
        "the cat sat on the mat. the dog sat on the log. ".repeat(8),
    );

    for (class, label) in ["a", "b"].iter().enumerate() {
        let images = dir.join("images").join(label);
        let clips = dir.join("clips").join(label);
        std::fs::create_dir_all(&images).expect("image folder");
        std::fs::create_dir_all(&clips).expect("clip folder");
        for i in 0..6u32 {
            let image = image::GrayImage::from_fn(8, 8, |x, y| {
                let lit = if class == 0 { x < 4 } else { y < 4 };
                image::Luma([if lit { 200 + i as u8 } else { 20 }])
            });
            image.save(images.join(format!("{i}.png"))).expect("a png");
            let hz = [300.0, 1200.0][class] + 10.0 * i as f32;
            let samples = (0..2000)
                .map(|t| 0.5 * (2.0 * std::f32::consts::PI * hz * t as f32 / 8000.0).sin())
                .collect();
            let clip = Clip {
                samples,
                sample_rate: 8000,
            };
            write_wav(clips.join(format!("{i}.wav")), &clip).expect("a wav");
        }
    }
}

/// One small image per format and layout; the first byte is the `image` target's options
/// (bit 0: three channels; the next bits: the size).
fn write_images(dir: &Path) {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    let rgb = RgbImage::from_fn(6, 5, |x, y| Rgb([40 * x as u8, 50 * y as u8, 128]));
    let rgb = DynamicImage::ImageRgb8(rgb);
    let gray = DynamicImage::ImageLuma8(rgb.to_luma8());
    let alpha = DynamicImage::ImageRgba8(rgb.to_rgba8());
    let wide = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(3, 2, |x, y| {
        image::Luma([(x * 20000 + y * 9000) as u16])
    }));
    let files: [(&str, u8, &DynamicImage, ImageFormat); 7] = [
        ("gray.png", 0, &gray, ImageFormat::Png),
        ("rgb.png", 3, &rgb, ImageFormat::Png),
        ("rgba.png", 1, &alpha, ImageFormat::Png),
        ("gray16.png", 4, &wide, ImageFormat::Png),
        ("rgb.jpg", 1, &rgb, ImageFormat::Jpeg),
        ("rgb.bmp", 5, &rgb, ImageFormat::Bmp),
        ("rgba.gif", 6, &alpha, ImageFormat::Gif),
    ];
    for (name, options, image, format) in files {
        let mut bytes = std::io::Cursor::new(vec![options]);
        bytes.set_position(1);
        image
            .write_to(&mut bytes, format)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::write(dir.join(name), bytes.into_inner()).expect("an image seed");
    }
}
