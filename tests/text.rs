//! The text job: the SMS spam targets of `examples/sms_spam.rs` run through the example's own
//! code (included below as a module, so the settings cannot drift) — test accuracy ≥ 0.97 and
//! spam F1 ≥ 0.90 —, a save/load round trip, `sora train --text | eval | predict` on a small
//! generated CSV file, the linear reference on separable data, and bad input: a missing
//! column, no text at all, a single class and text that is not UTF-8, each a typed error
//! naming the file.

#[path = "../examples/sms_spam.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod sms_spam;

mod common;

use common::{device, fails, ok};
use std::path::Path;

use sora::jobs::text::{TextData, TextJobError, TextModel, load_csv, tfidf_logistic};
use sora::text::tokenize::{Tokenizer, Vocabulary};
use sora::train::{Metrics, Progress};

#[test]
fn sms_spam_reaches_its_targets_and_round_trips() {
    let options = sms_spam::Options {
        device: device(),
        progress: Progress::Quiet,
        ..sms_spam::Options::default()
    };
    let run = sms_spam::run(&options).unwrap();
    let Some(Metrics::Classification(m)) = &run.test else {
        panic!("a classifier")
    };
    let spam = run.text.classes.iter().position(|c| c == "spam").unwrap();
    assert!(m.accuracy >= 0.97, "test accuracy {:.4} < 0.97", m.accuracy);
    assert!(
        m.per_class[spam].f1 >= 0.90,
        "spam F1 {:.4} < 0.90",
        m.per_class[spam].f1
    );
    // Saved and read back, the model gives the same probabilities and the same metrics.
    let device = sora::device::test_device();
    let dir = tempfile::tempdir().unwrap();
    run.save(dir.path()).unwrap();
    let loaded = TextModel::load(dir.path(), &device).unwrap();
    assert_eq!(loaded.text, run.text);
    let path = sora::datasets::data_dir().join("sms_spam/sms_spam.csv");
    let data = load_csv(&path, "text", Some("label")).unwrap();
    let test = data.subset(&run.split.test);
    // The vocabulary comes from the training messages only: rebuilt from them it is the
    // same, and built from every message it is not.
    let tokenizer = Tokenizer::new(run.text.tokenizer.clone()).unwrap();
    let vocab_of = |rows: &[usize]| {
        let docs: Vec<Vec<String>> = rows
            .iter()
            .map(|&i| tokenizer.tokenize(&data.texts[i]))
            .collect();
        let config = sms_spam::config(&options).vocab;
        Vocabulary::build(docs.iter().map(Vec::as_slice), &config)
    };
    assert_eq!(vocab_of(&run.split.train), run.text.vocabulary);
    let all: Vec<usize> = (0..data.len()).collect();
    assert_ne!(vocab_of(&all), run.text.vocabulary);
    let before = run.to_model(&device).predict(&test.texts).unwrap();
    let after = loaded.predict(&test.texts).unwrap();
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        // The weights round-trip exactly; the bound only allows for another summation order.
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    let Metrics::Classification(again) = loaded.evaluate(&test.texts, &test.labels).unwrap() else {
        panic!("a classifier")
    };
    assert_eq!(again.confusion, m.confusion);
}

#[test]
fn tfidf_reference_separates_separable_text() {
    let docs = |texts: &[&str], labels: &[usize]| TextData {
        texts: texts.iter().map(|t| t.to_string()).collect(),
        labels: labels.to_vec(),
        classes: vec!["neg".into(), "pos".into()],
        source: "inline".into(),
    };
    let train = docs(
        &[
            "good great lovely",
            "great fine good",
            "lovely good",
            "awful bad poor",
            "bad terrible",
            "poor awful terrible",
        ],
        &[1, 1, 1, 0, 0, 0],
    );
    let test = docs(&["good lovely", "terrible poor", "great"], &[1, 0, 1]);
    assert_eq!(tfidf_logistic(&train, &test, 2, 1.0).unwrap(), [1, 0, 1]);
}

/// 200 short reviews: positive ones use words of one set, negative ones of another, with
/// shared filler words, in a fixed pseudo-random order.
fn reviews_csv(path: &Path) {
    let good = ["great", "lovely", "excellent", "superb", "wonderful"];
    let bad = ["awful", "terrible", "broken", "poor", "horrible"];
    let filler = ["the", "phone", "food", "was", "really", "quite", "service"];
    let mut text = String::from("label,review\n");
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    for i in 0..200 {
        let positive = i % 2 == 0;
        let words = if positive { &good } else { &bad };
        let review = format!(
            "{} {} {}, {} {}!",
            filler[next(filler.len())],
            filler[next(filler.len())],
            words[next(words.len())],
            filler[next(filler.len())],
            words[next(words.len())]
        );
        let label = if positive { "pos" } else { "neg" };
        text.push_str(&format!("{label},\"{review}\"\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn cli_trains_evaluates_and_predicts_text() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    reviews_csv(&csv);
    let model = dir.path().join("model");
    let (csv_s, model_s) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let device = device();
    let stdout = ok(&[
        "train",
        "--data",
        csv_s,
        "--text",
        "review",
        "--target",
        "label",
        "--encoder",
        "bag",
        "--embed",
        "16",
        "--progress",
        "quiet",
        "--out",
        model_s,
        "--device",
        &device,
    ]);
    assert!(stdout.contains("Embedding"), "{stdout}");
    assert!(model.join("text.json").is_file());
    assert!(model.join("model.safetensors").is_file());

    let eval = ok(&[
        "eval", "--model", model_s, "--data", csv_s, "--device", &device,
    ]);
    let accuracy: f64 = eval
        .split_whitespace()
        .skip_while(|w| *w != "accuracy")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {eval}"));
    assert!(accuracy >= 0.95, "accuracy {accuracy} on separable reviews");

    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "review\nthe food was excellent and superb\n\"awful phone, really horrible\"\n\"\"\nzzz qqq\n",
    )
    .unwrap();
    let predictions = ok(&[
        "predict",
        "--model",
        model_s,
        "--data",
        new.to_str().unwrap(),
        "--device",
        &device,
    ]);
    let lines: Vec<&str> = predictions.lines().collect();
    assert_eq!(lines[0], "row,prediction,p_neg,p_pos", "{predictions}");
    assert!(lines[1].starts_with("1,pos,"), "{predictions}");
    assert!(lines[2].starts_with("2,neg,"), "{predictions}");
    // An empty document and one of unknown words still get probabilities that sum to 1.
    assert_eq!(lines.len(), 5, "{predictions}");
    for line in &lines[3..] {
        let p: Vec<f64> = line
            .split(',')
            .skip(2)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{line}");
    }

    // Token attributions: in "the food was excellent and superb" (cut to the model's five
    // tokens), the sentiment word carries the evidence for `pos`.
    let report = dir.path().join("tokens.html");
    let explained = ok(&[
        "explain",
        "--model",
        model_s,
        "--data",
        new.to_str().unwrap(),
        "--rows",
        "1",
        "--target",
        "pos",
        "--report",
        report.to_str().unwrap(),
        "--device",
        &device,
    ]);
    assert!(explained.contains("row 1: predicted pos"), "{explained}");
    let html = std::fs::read_to_string(&report).unwrap();
    let score = |word: &str| score_in(&html, word);
    assert!(
        explained.contains("beyond the model's length 5"),
        "{explained}"
    );
    for filler in ["the", "food", "was", "and"] {
        assert!(score("excellent") > score(filler), "{filler}: {html}");
    }
    // The other methods of text: the same word stands out when its embedding is ablated,
    // and by input × gradient; an image method is refused, naming those of text.
    for method in ["ablation", "input-x-gradient"] {
        let out = ok(&[
            "explain",
            "--model",
            model_s,
            "--data",
            new.to_str().unwrap(),
            "--rows",
            "1",
            "--target",
            "pos",
            "--method",
            method,
            "--report",
            report.to_str().unwrap(),
            "--device",
            &device,
        ]);
        assert!(!out.contains("completeness delta"), "{method}: {out}");
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(html.contains("at the embedding output"), "{html}");
        assert!(
            ["the", "was", "and"]
                .iter()
                .all(|w| score_in(&html, "excellent") > score_in(&html, w)),
            "{method}: {html}"
        );
    }
    let e = fails(&[
        "explain",
        "--model",
        model_s,
        "--data",
        new.to_str().unwrap(),
        "--method",
        "gradcam",
    ]);
    assert!(
        e.contains("text models are explained by ig, saliency, input-x-gradient, ablation"),
        "{e}"
    );

    // A recurrent encoder trains through the same command.
    let gru = dir.path().join("gru");
    ok(&[
        "train",
        "--data",
        csv_s,
        "--text",
        "review",
        "--target",
        "label",
        "--encoder",
        "gru",
        "--embed",
        "8",
        "--seq-len",
        "8",
        "--epochs",
        "2",
        "--progress",
        "quiet",
        "--out",
        gru.to_str().unwrap(),
        "--device",
        &device,
    ]);
    assert!(gru.join("text.json").is_file());

    // Bad input through the whole command: exit code 1, the file and the column named.
    let stderr = fails(&[
        "train", "--data", csv_s, "--text", "body", "--target", "label", "--out", model_s,
    ]);
    assert!(
        stderr.contains("reviews.csv") && stderr.contains("`body`"),
        "{stderr}"
    );
    let stderr = common::usage_error(&[
        "train",
        "--data",
        csv_s,
        "--text",
        "review",
        "--target",
        "label",
        "--encoder",
        "cnn",
    ]);
    assert!(
        stderr.contains("--encoder") && stderr.contains("[possible values: bag, lstm, gru]"),
        "{stderr}"
    );
    // The earlier model is untouched by the failed runs.
    assert!(model.join("text.json").is_file());
}

fn load_error(content: &[u8]) -> TextJobError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, content).unwrap();
    load_csv(&path, "text", Some("label")).unwrap_err()
}

#[test]
fn bad_text_input_is_a_typed_error_naming_the_file() {
    match load_error(b"label,body\na,hello\nb,bye\n") {
        e @ TextJobError::MissingColumn { .. } => {
            let message = e.to_string();
            assert!(message.contains("bad.csv"), "{message}");
            assert!(message.contains("`text`"), "{message}");
            assert!(message.contains("body"), "{message}");
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
    match load_error(b"text,body\nhello,x\n") {
        TextJobError::MissingColumn { column, .. } => assert_eq!(column, "label"),
        other => panic!("expected MissingColumn for the label, got {other:?}"),
    }
    match load_error(b"label,text\na,\nb,\"  \"\n") {
        e @ TextJobError::NoText { .. } => {
            assert!(e.to_string().contains("bad.csv"), "{e}");
            assert!(e.to_string().contains("`text`"), "{e}");
        }
        other => panic!("expected NoText, got {other:?}"),
    }
    match load_error(b"label,text\nspam,hello\nspam,bye\n") {
        TextJobError::TooFewClasses {
            n_classes, classes, ..
        } => {
            assert_eq!(n_classes, 1);
            assert_eq!(classes, ["spam"]);
        }
        other => panic!("expected TooFewClasses, got {other:?}"),
    }
    match load_error(b"label,text\nham,ok\nspam,caf\xe9 gratuit\n") {
        e @ TextJobError::Data(_) => {
            let message = e.to_string();
            assert!(message.contains("bad.csv"), "{message}");
            assert!(message.contains("UTF-8"), "{message}");
            assert!(message.contains("line 3"), "{message}");
        }
        other => panic!("expected a UTF-8 data error, got {other:?}"),
    }
}

/// The attribution of `word` in a token report (its span's `title`).
fn score_in(html: &str, word: &str) -> f64 {
    let at = html
        .find(&format!(">{word}</span>"))
        .unwrap_or_else(|| panic!("{word} not in {html}"));
    let title = html[..at].rfind("title=\"").unwrap() + 7;
    html[title..at - 1].parse().unwrap()
}
