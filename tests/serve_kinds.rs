//! `sora serve` over every model kind, not only tables and text: image and audio models take
//! uploaded files (a raw body or base64 JSON) and answer as `sora predict` does on the same
//! file; a language model streams `POST /v1/generate` as `sora generate` writes; a
//! recommender answers `POST /v1/recommend` and rating rows as `sora predict` does. A route
//! the kind does not have is a 422 that says which does; bad uploads are 4xx naming the field.

mod common;

use std::path::Path;

use common::http::{Serve, http, http_with, parse, unchunk};
use common::media::{bars, tones};
use common::{device, ok};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sora::jobs::base64::encode as base64;

/// `sora predict`'s probabilities for one file.
fn cli_probabilities(model: &Path, file: &Path) -> Vec<f64> {
    let out = ok(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        file.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let line = out.lines().nth(1).unwrap();
    line.split(',')
        .skip(2)
        .map(|v| v.parse().unwrap())
        .collect()
}

fn assert_close(server: &Value, cli: &[f64]) {
    let p: Vec<f64> = server["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), cli.len());
    for (a, b) in p.iter().zip(cli) {
        // The CLI prints 6 decimals.
        assert!((a - b).abs() < 1e-6, "{p:?} vs {cli:?}");
    }
}

#[test]
fn image_models_take_uploaded_files() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("bars");
    bars(&data, 30, 1);
    let model = root.path().join("model");
    ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "4",
        "--progress",
        "quiet",
        "--out",
        model.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let file = data.join("down/003.png");
    let bytes = std::fs::read(&file).unwrap();
    let cli = cli_probabilities(&model, &file);
    let server = Serve::start(&model, &[]);
    let (_, info) = server.get("/v1/model");
    let info = parse(&info);
    assert_eq!(
        (info["kind"].as_str(), info["input"]["medium"].as_str()),
        (Some("image"), Some("image"))
    );
    assert_eq!(info["input"]["shape"], json!([1, 12, 12]));

    // A raw upload, named by its header.
    let (status, text) = http_with(
        server.addr,
        "/v1/predict",
        "image/png",
        "X-File-Name: bar.png\r\n",
        &bytes,
    );
    assert_eq!(status, 200, "{text}");
    let answer = parse(&text);
    let prediction = &answer["predictions"][0];
    assert_eq!(prediction["source"], "bar.png");
    assert_close(prediction, &cli);
    assert_eq!(answer["classes"], json!(["across", "down"]));

    // Base64 in JSON, several at once.
    let other = std::fs::read(data.join("across/004.png")).unwrap();
    let body = json!({"files": [
        {"name": "a.png", "base64": base64(&bytes)},
        {"name": "b.png", "base64": base64(&other)},
    ]});
    let (status, answer) = server.post("/v1/predict", &body);
    assert_eq!(status, 200, "{answer}");
    assert_close(&answer["predictions"][0], &cli);
    assert_eq!(answer["predictions"][1]["source"], "b.png");

    // Grad-CAM over the upload: one 12×12 map, non-negative.
    let body = json!({"file": {"name": "a.png", "base64": base64(&bytes)}, "method": "gradcam"});
    let (status, answer) = server.post("/v1/explain", &body);
    assert_eq!(status, 200, "{answer}");
    let map = &answer["explanations"][0]["attributions"];
    assert_eq!(
        (map["height"].as_u64(), map["width"].as_u64()),
        (Some(12), Some(12))
    );
    assert!(
        map["heat"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64().unwrap() >= 0.0)
    );
    assert!(
        answer["method"]
            .as_str()
            .unwrap()
            .starts_with("Grad-CAM on encoder.blocks")
    );

    // Bad uploads: 4xx naming what is wrong.
    let (status, answer) = server.post(
        "/v1/predict",
        &json!({"file": {"name": "x.png", "base64": "not base64!"}}),
    );
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("base64")),
        "{answer}"
    );
    let (status, text) = http_with(server.addr, "/v1/predict", "image/png", "", b"not a png");
    assert_eq!(status, 422, "{text}");
    assert!(
        parse(&text)["error"].as_str().unwrap().contains("upload"),
        "{text}"
    );
    let (status, answer) = server.post("/v1/predict", &json!({"row": {"x": 1}}));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("unknown field"),
        "{answer}"
    );
    let (status, answer) = server.post(
        "/v1/explain",
        &json!({"file": {"base64": base64(&bytes)}, "method": "shapley"}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("gradcam"),
        "{answer}"
    );
    // Routes of other kinds say which kind has them.
    let (status, answer) = server.post("/v1/generate", &json!({"prompt": "hi"}));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("language models"),
        "{answer}"
    );
    let (status, answer) = server.post("/v1/recommend", &json!({"user": "1"}));
    assert_eq!(status, 422, "{answer}");
}

#[test]
fn audio_models_take_uploaded_clips() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("tones");
    tones(&data, 20, 2);
    let model = root.path().join("model");
    ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--clip-seconds",
        "0.25",
        "--epochs",
        "4",
        "--progress",
        "quiet",
        "--out",
        model.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let file = data.join("high/002.wav");
    let cli = cli_probabilities(&model, &file);
    let server = Serve::start(&model, &[]);
    let (status, text) = http_with(
        server.addr,
        "/v1/predict",
        "audio/wav",
        "",
        &std::fs::read(&file).unwrap(),
    );
    assert_eq!(status, 200, "{text}");
    let answer = parse(&text);
    assert_close(&answer["predictions"][0], &cli);
    assert_eq!(answer["predictions"][0]["source"], "upload");
    let info = parse(&server.get("/v1/model").1);
    assert_eq!(info["kind"], "audio");
}

#[test]
fn language_models_stream_what_sora_generate_writes() {
    let root = tempfile::tempdir().unwrap();
    let text = root.path().join("text.txt");
    std::fs::write(
        &text,
        "the cat sat on the mat\nthe dog sat on the log\n".repeat(20),
    )
    .unwrap();
    let model = root.path().join("lm");
    let m = model.to_str().unwrap();
    ok(&[
        "train",
        "--task",
        "generate",
        "--text",
        text.to_str().unwrap(),
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--embed",
        "8",
        "--progress",
        "quiet",
        "--out",
        m,
        "--device",
        &device(),
    ]);
    let cli = ok(&[
        "generate",
        "--model",
        m,
        "--prompt",
        "the ",
        "--max-tokens",
        "30",
        "--seed",
        "4",
        "--device",
        &device(),
    ]);
    let server = Serve::start(&model, &[]);
    let body = json!({"prompt": "the ", "max_tokens": 30, "seed": 4});
    let (status, raw) = http(
        server.addr,
        "POST",
        "/v1/generate",
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{raw}");
    let lines: Vec<Value> = unchunk(&raw).lines().map(parse).collect();
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true, "{lines:?}");
    assert_eq!(last["tokens"], 30);
    let pieces: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, last["text"].as_str().unwrap());
    // `sora generate` prints the prompt, the text, and a line break when the text has none.
    assert_eq!(
        cli.trim_end_matches('\n'),
        format!("the {pieces}").trim_end_matches('\n')
    );

    let (status, answer) = server.post("/v1/generate", &json!({"temperature": -1}));
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("temperature")),
        "{answer}"
    );
    let (status, answer) = server.post("/v1/generate", &json!({"promt": "x"}));
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server.post("/v1/predict", &json!({"row": {"text": "the"}}));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("prompt"),
        "{answer}"
    );
}

#[test]
fn recommenders_answer_recommend_and_rating_rows() {
    let root = tempfile::tempdir().unwrap();
    let ratings = root.path().join("ratings.csv");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut csv = String::from("userId,movieId,rating,timestamp\n");
    for u in 0..40 {
        for k in 0..12 {
            let item = (u * 7 + k * 3) % 50;
            let rating = if (item + u) % 3 == 0 { 4.5 } else { 2.0 } + rng.random_range(0.0..0.5);
            csv.push_str(&format!("{u},{item},{rating:.1},{}\n", 1000 + k));
        }
    }
    std::fs::write(&ratings, csv).unwrap();
    let model = root.path().join("rec");
    let m = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        ratings.to_str().unwrap(),
        "--ratings",
        "--rating-range",
        "0.5-5",
        "--epochs",
        "3",
        "--progress",
        "quiet",
        "--out",
        m,
        "--device",
        &device(),
    ]);
    let cli = ok(&[
        "predict",
        "--model",
        m,
        "--user",
        "3,nobody",
        "--top",
        "4",
        "--device",
        &device(),
    ]);
    let pairs = root.path().join("pairs.csv");
    std::fs::write(&pairs, "user,item\n3,7\n3,999\n").unwrap();
    let cli_pairs = ok(&[
        "predict",
        "--model",
        m,
        "--data",
        pairs.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    let server = Serve::start(&model, &[]);

    let (status, answer) = server.post(
        "/v1/recommend",
        &json!({"users": ["3", "nobody"], "top": 4}),
    );
    assert_eq!(status, 200, "{answer}");
    let lists = answer["recommendations"].as_array().unwrap();
    assert_eq!(lists[1]["popularity_fallback"], true);
    let mut lines = cli.lines().skip(1);
    for list in lists {
        for (rank, item) in list["items"].as_array().unwrap().iter().enumerate() {
            let line = lines.next().unwrap();
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields[0], list["user"].as_str().unwrap());
            assert_eq!(fields[1], (rank + 1).to_string());
            assert_eq!(fields[2], item["item"].as_str().unwrap());
            let score: f64 = fields[3].parse().unwrap();
            assert!(
                (score - item["score"].as_f64().unwrap()).abs() < 1e-6,
                "{line} vs {item}"
            );
        }
    }

    let (status, answer) = server.post(
        "/v1/predict",
        &json!({"rows": [{"user": "3", "item": "7"}, {"user": 3, "item": 999}]}),
    );
    assert_eq!(status, 200, "{answer}");
    for (prediction, line) in answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cli_pairs.lines().skip(1))
    {
        let fields: Vec<&str> = line.split(',').collect();
        let rating: f64 = fields[3].parse().unwrap();
        assert!(
            (rating - prediction["rating"].as_f64().unwrap()).abs() < 1e-4,
            "{line} vs {prediction}"
        );
        assert_eq!(fields[4], prediction["fallback"].to_string());
    }

    let (status, answer) = server.post("/v1/recommend", &json!({"users": [["3"]]}));
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("users")),
        "{answer}"
    );
    let (status, answer) = server.post("/v1/recommend", &json!({"user": "3", "top": 0}));
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("top")),
        "{answer}"
    );
    let (status, answer) = server.post("/v1/explain", &json!({"row": {"user": "3", "item": "7"}}));
    assert_eq!(status, 422, "{answer}");
}
