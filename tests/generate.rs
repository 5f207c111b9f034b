//! Text generation: a character LSTM trained briefly on the bundled review sentences beats the
//! add-one unigram model on the held-out end of the text and round-trips through its model
//! directory; sampling with temperature → 0 is greedy, the same seed writes the same text and
//! different seeds differ; prompts with unknown characters and prompts longer than a chunk are
//! read; the same seed trains the same model; and `sora train --task generate` / `sora
//! generate` end to end, with every kind of bad input a clear error (exit 1, no panic).

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{device, fails, ok, sora};
use sora::jobs::GenerateRequest;
use sora::jobs::generate::{
    Corpus, GenerateConfig, GenerateError, GenerateRun, Generator, TokenKind, load_csv_column,
    train,
};
use sora::text::Cell;
use sora::text::lm::PROMPT_CHUNK;
use sora::text::tokenize::Vocabulary;
use sora::train::Progress;

/// A small character LSTM, two epochs over the review sentences (held-out: the last 10 %).
fn trained() -> &'static GenerateRun {
    static RUN: OnceLock<GenerateRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let path = sora::datasets::data_dir().join("sentiment_sentences/sentences.csv");
        let corpus = load_csv_column(&path, "text").unwrap();
        let config = GenerateConfig {
            d_embed: 16,
            d_hidden: 64,
            seq_len: 32,
            epochs: 2,
            seed: 7,
            progress: Progress::Quiet,
            ..GenerateConfig::default()
        };
        train(&corpus, &config, &sora::device::test_device()).unwrap()
    })
}

fn generator() -> Generator {
    trained()
        .to_generator(&sora::device::test_device())
        .unwrap()
}

fn sample(generator: &Generator, prompt: &str, temperature: f64, seed: u64) -> String {
    let options = GenerateRequest {
        temperature,
        max_tokens: 80,
        seed,
        ..GenerateRequest::default()
    };
    generator.generate(prompt, &options, |_| {}).unwrap().text
}

#[test]
fn trained_model_beats_the_unigram_baseline_and_round_trips() {
    let run = trained();
    let (model, unigram, bigram) = (
        run.held_out,
        run.baselines.unigram.perplexity,
        run.baselines.bigram.perplexity,
    );
    println!(
        "held-out perplexity: LSTM {:.3}, unigram {unigram:.3}, bigram {bigram:.3}",
        model.perplexity
    );
    assert!(
        model.perplexity < unigram,
        "LSTM {} ≥ unigram {unigram}",
        model.perplexity
    );
    // The baselines themselves: a bigram model knows more than a unigram one.
    assert!(bigram < unigram, "bigram {bigram} ≥ unigram {unigram}");
    // Bits per character and perplexity are the same loss.
    let bits = model.bits_per_char.unwrap();
    assert!((2f64.powf(bits) - model.perplexity).abs() < 1e-9 * model.perplexity);
    assert_eq!(run.history.epochs.len(), 2);
    assert_eq!(run.held_out_tokens + run.train_tokens, 115_542);

    // Saved and read back, the model writes the same text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm");
    run.save(&path).unwrap();
    for file in [
        "generator.json",
        "model.safetensors",
        "train.json",
        "metrics.json",
        "history.json",
        "curves.png",
    ] {
        assert!(path.join(file).is_file(), "{file} missing");
    }
    let loaded = Generator::load(&path, &sora::device::test_device()).unwrap();
    assert_eq!(loaded.saved, run.saved);
    let in_memory = generator();
    assert_eq!(
        sample(&loaded, "The ", 1.0, 11),
        sample(&in_memory, "The ", 1.0, 11)
    );
}

#[test]
fn temperature_towards_zero_is_greedy() {
    let generator = generator();
    let greedy = sample(&generator, "This ", 0.0, 0);
    assert_eq!(greedy.chars().count(), 80);
    for seed in [1, 2, 3] {
        assert_eq!(sample(&generator, "This ", 1e-6, seed), greedy);
        // The greedy text does not depend on the seed either.
        assert_eq!(sample(&generator, "This ", 0.0, seed), greedy);
    }
    // At temperature 1 the draws do depend on it.
    assert_ne!(sample(&generator, "This ", 1.0, 1), greedy);
}

#[test]
fn same_seed_same_text_and_different_seeds_differ() {
    let generator = generator();
    let a = sample(&generator, "Great", 1.0, 42);
    assert_eq!(a, sample(&generator, "Great", 1.0, 42));
    assert_ne!(a, sample(&generator, "Great", 1.0, 43));
    // Top-k 1 is greedy whatever the temperature.
    let top1 = GenerateRequest {
        temperature: 1.5,
        top_k: Some(1),
        max_tokens: 80,
        seed: 9,
        ..GenerateRequest::default()
    };
    let written = generator.generate("Great", &top1, |_| {}).unwrap();
    assert_eq!(written.text, sample(&generator, "Great", 0.0, 0));
}

#[test]
fn prompts_with_unknown_characters_and_of_any_length_are_read() {
    let generator = generator();
    let vocabulary = &generator.saved.vocabulary;
    // '☃' never occurs in the reviews: it reads as <unk>, counted, and generation goes on.
    let (ids, unknown) = generator.encode_prompt("a☃b");
    assert_eq!(unknown, 1);
    assert_eq!(
        ids,
        [
            vocabulary.id("\n"),
            vocabulary.id("a"),
            Vocabulary::UNK,
            vocabulary.id("b")
        ]
    );
    let options = GenerateRequest {
        temperature: 0.0,
        max_tokens: 20,
        ..GenerateRequest::default()
    };
    let written = generator.generate("a☃b", &options, |_| {}).unwrap();
    assert_eq!((written.unknown, written.tokens), (1, 20));

    // A prompt of several chunks is read whole (the state carried from chunk to chunk), and
    // the pieces handed out as they are drawn make up the text.
    let long = "The food was good. ".repeat(3 * PROMPT_CHUNK / 19 + 1);
    assert!(long.chars().count() > 2 * PROMPT_CHUNK);
    let mut pieces = Vec::new();
    let written = generator
        .generate(&long, &options, |p| pieces.push(p.to_string()))
        .unwrap();
    assert_eq!(written.tokens, 20);
    assert_eq!(pieces.concat(), written.text);

    // Stop strings end generation after the text that completes them, which is kept.
    let stop = GenerateRequest {
        max_tokens: 400,
        seed: 5,
        stop: vec![" ".into()],
        ..GenerateRequest::default()
    };
    let written = generator.generate("The", &stop, |_| {}).unwrap();
    assert!(
        written.stopped && written.text.ends_with(' '),
        "{written:?}"
    );
    assert_eq!(written.text.matches(' ').count(), 1);
}

/// Lines of a small repeating language, for fast runs.
fn tiny_corpus() -> Corpus {
    let words = [
        "red", "green", "blue", "cat", "dog", "sat", "ran", "on", "mat",
    ];
    let lines = (0..120)
        .map(|i| {
            (0..5)
                .map(|j| words[(i * 7 + j * j * 3 + j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Corpus {
        lines,
        source: "tiny".into(),
    }
}

fn tiny_config(seed: u64, cell: Cell, tokens: TokenKind) -> GenerateConfig {
    GenerateConfig {
        tokens,
        d_embed: 8,
        d_hidden: 16,
        layers: 2,
        cell,
        seq_len: 16,
        batch_size: 4,
        epochs: 2,
        seed,
        progress: Progress::Quiet,
        ..GenerateConfig::default()
    }
}

#[test]
fn the_same_seed_trains_the_same_model() {
    let device = sora::device::test_device();
    let corpus = tiny_corpus();
    for (cell, tokens) in [(Cell::Lstm, TokenKind::Char), (Cell::Gru, TokenKind::Word)] {
        let a = train(&corpus, &tiny_config(5, cell, tokens), &device).unwrap();
        let b = train(&corpus, &tiny_config(5, cell, tokens), &device).unwrap();
        let c = train(&corpus, &tiny_config(6, cell, tokens), &device).unwrap();
        let losses = |r: &GenerateRun| {
            r.history
                .epochs
                .iter()
                .map(|e| (e.train_loss, e.valid_loss))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&a), losses(&b), "{cell:?} {tokens:?}");
        assert_eq!(a.held_out, b.held_out);
        assert_ne!(losses(&a), losses(&c), "{cell:?} {tokens:?}");
        let write = |r: &GenerateRun| {
            let g = r.to_generator(&device).unwrap();
            sample(&g, "red", 1.0, 3)
        };
        assert_eq!(write(&a), write(&b));
        // Words come back separated by spaces.
        let words = write(&a);
        assert!(
            tokens == TokenKind::Char || words.starts_with(' ') || words.starts_with('\n'),
            "{words:?}"
        );
    }
}

#[test]
fn too_little_text_is_a_typed_error() {
    let device = sora::device::test_device();
    let config = tiny_config(1, Cell::Lstm, TokenKind::Char);
    let corpus = |lines: &[&str]| Corpus {
        lines: lines.iter().map(|l| l.to_string()).collect(),
        source: "given".into(),
    };
    match train(&corpus(&[]), &config, &device).unwrap_err() {
        GenerateError::EmptyText { origin } => assert_eq!(origin, "given"),
        other => panic!("expected EmptyText, got {other}"),
    }
    assert!(matches!(
        train(&corpus(&["  ", ""]), &config, &device).unwrap_err(),
        GenerateError::EmptyText { .. }
    ));
    match train(&corpus(&["a"]), &config, &device).unwrap_err() {
        e @ GenerateError::TooShort { .. } => {
            assert_eq!(
                e.to_string(),
                "given: 2 character tokens (line breaks included); a language model needs at least 4: 2 to train on and 2 held out"
            );
        }
        other => panic!("expected TooShort, got {other}"),
    }
    // Four tokens are enough.
    assert!(train(&corpus(&["abc"]), &config, &device).is_ok());
}

/// The first `n` review sentences as a plain text file.
fn reviews_txt(path: &Path, n: usize) {
    let csv = sora::datasets::data_dir().join("sentiment_sentences/sentences.csv");
    let corpus = load_csv_column(&csv, "text").unwrap();
    std::fs::write(path, corpus.lines[..n].join("\n") + "\n").unwrap();
}

#[test]
fn cli_trains_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("reviews.txt");
    reviews_txt(&text, 400);
    let model = dir.path().join("lm");
    let (text_s, model_s) = (text.to_str().unwrap(), model.to_str().unwrap());
    let device = device();
    let out = ok(&[
        "train",
        "--task",
        "generate",
        "--text",
        text_s,
        "--epochs",
        "2",
        "--hidden",
        "48",
        "--embed",
        "16",
        "--seq-len",
        "32",
        "--cell",
        "gru",
        "--layers",
        "2",
        "--out",
        model_s,
        "--device",
        &device,
    ]);
    assert!(out.contains("epoch   2/2"), "{out}");
    assert!(
        out.contains("unigram (add-one)") && out.contains("bigram (add-one)"),
        "{out}"
    );
    assert!(out.contains("bits/char"), "{out}");
    let manifest = sora::train::Manifest::read(&model).unwrap().unwrap();
    assert_eq!(
        (manifest.kind.as_str(), manifest.task.as_str()),
        ("generate", "generation")
    );

    let write = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            model_s,
            "--prompt",
            "The ",
            "--max-tokens",
            "40",
            "--device",
            &device,
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    let a = write(&["--seed", "3"]);
    assert!(a.starts_with("The "), "{a:?}");
    assert!(a.chars().count() >= 40, "{a:?}");
    assert_eq!(a, write(&["--seed", "3"]));
    assert_ne!(a, write(&["--seed", "4"]));
    assert_eq!(
        write(&["--temperature", "0"]),
        write(&["--temperature", "0.000001", "--seed", "8"])
    );
    // Nucleus and top-k sampling run, and stop at the first line break when asked (400
    // characters would hold several lines otherwise).
    let stopped = ok(&[
        "generate",
        "--model",
        model_s,
        "--max-tokens",
        "400",
        "--top-p",
        "0.9",
        "--top-k",
        "5",
        "--stop",
        "\\n",
        "--seed",
        "1",
        "--device",
        &device,
    ]);
    assert_eq!(stopped.matches('\n').count(), 1, "{stopped:?}");
    assert!(stopped.ends_with('\n'), "{stopped:?}");
    // Unknown characters are noted on standard error; a prompt of any length is read.
    let out = sora(&[
        "generate",
        "--model",
        model_s,
        "--prompt",
        "☃☃ good",
        "--max-tokens",
        "5",
        "--device",
        &device,
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 prompt token(s) not in the model's vocabulary"),
        "{stderr}"
    );
    let long = "It was great. ".repeat(200);
    let out = ok(&[
        "generate",
        "--model",
        model_s,
        "--prompt",
        &long,
        "--max-tokens",
        "5",
        "--device",
        &device,
    ]);
    assert!(out.starts_with(&long));

    // Word tokens from a CSV column.
    let csv = sora::datasets::data_dir().join("sentiment_sentences/sentences.csv");
    let words = dir.path().join("words");
    let out = ok(&[
        "train",
        "--task",
        "generate",
        "--data",
        csv.to_str().unwrap(),
        "--text",
        "text",
        "--tokens",
        "word",
        "--min-count",
        "2",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--embed",
        "16",
        "--out",
        words.to_str().unwrap(),
        "--device",
        &device,
    ]);
    assert!(out.contains("sentences.csv:text: 2000 lines"), "{out}");
    let written = ok(&[
        "generate",
        "--model",
        words.to_str().unwrap(),
        "--prompt",
        "the food",
        "--max-tokens",
        "6",
        "--temperature",
        "0",
        "--device",
        &device,
    ]);
    assert!(written.starts_with("the food "), "{written:?}");
    assert!(written.split_whitespace().count() >= 4, "{written:?}");
}

#[test]
fn cli_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let out = dir.path().join("m");
    let out = out.to_str().unwrap();
    let train_err = |text: &str, extra: &[&str]| {
        let mut args = vec!["train", "--task", "generate", "--text", text, "--out", out];
        args.extend_from_slice(extra);
        fails(&args)
    };
    let empty = file("empty.txt", b"");
    assert!(train_err(&empty, &[]).contains("no text to learn from"));
    let blank = file("blank.txt", b"  \n\n\t\n");
    assert!(train_err(&blank, &[]).contains("no text to learn from"));
    let one = file("one.txt", b"a");
    let e = train_err(&one, &[]);
    assert!(
        e.contains("2 character tokens") && e.contains("at least 4"),
        "{e}"
    );
    let latin1 = file("latin1.txt", b"caf\xe9 au lait\n");
    let e = train_err(&latin1, &[]);
    assert!(e.contains("latin1.txt") && e.contains("not UTF-8"), "{e}");
    let e = train_err(&dir.path().join("none.txt").to_string_lossy(), &[]);
    assert!(e.contains("none.txt"), "{e}");
    let good = file("good.txt", b"some text to learn from\nand more of it\n");
    // Closed choices are checked by the argument parser (exit 2, the choices listed).
    for (flags, message) in [
        (["--tokens", "byte"], "[possible values: char, word]"),
        (["--cell", "rnn"], "[possible values: lstm, gru]"),
    ] {
        let mut args = vec!["train", "--task", "generate", "--text", &good, "--out", out];
        args.extend_from_slice(&flags);
        let run = sora(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    for (flags, message) in [
        (
            &["--seq-len", "0"],
            "--seq-len: expected at least 1, found 0",
        ),
        (&["--hidden", "0"], "--hidden: expected at least 1, found 0"),
        (
            &["--hidden", "8,8"],
            "--hidden: a language model takes one hidden width",
        ),
        (&["--layers", "0"], "--layers: expected at least 1, found 0"),
        (
            &["--dropout", "1"],
            "--dropout: expected a probability in [0, 1)",
        ),
        (&["--lr", "0"], "--lr: expected a positive learning rate"),
        (&["--target", "label"], "--target: a language model"),
    ] {
        let e = train_err(&good, flags);
        assert!(e.contains(message), "{flags:?}: {e}");
    }
    let e = fails(&["train", "--task", "generate", "--out", out]);
    assert!(e.contains("--text: --task generate needs the text"), "{e}");
    let e = common::usage_error(&["train", "--task", "poetry", "--text", &good]);
    assert!(
        e.contains(
            "[possible values: auto, tabular, image, audio, text, generate, ratings, anomaly]"
        ),
        "{e}"
    );
    let csv = file("rows.csv", b"label,body\n1,hello\n");
    let e = fails(&[
        "train", "--task", "generate", "--data", &csv, "--text", "text", "--out", out,
    ]);
    assert!(e.contains("no column `text`") && e.contains("body"), "{e}");

    // Sampling options fail before the model is read, naming the flag.
    let model = dir.path().join("model");
    let model_s = model.to_str().unwrap();
    ok(&[
        "train", "--task", "generate", "--text", &good, "--epochs", "1", "--hidden", "8",
        "--embed", "4", "--out", model_s,
    ]);
    for (flags, message) in [
        (
            &["--temperature", "-1"][..],
            "--temperature: expected a finite value >= 0",
        ),
        (
            &["--temperature", "nan"],
            "--temperature: expected a finite value >= 0",
        ),
        (
            &["--top-p", "0"],
            "--top-p: expected a value in (0, 1], found 0",
        ),
        (
            &["--top-p", "1.5"],
            "--top-p: expected a value in (0, 1], found 1.5",
        ),
        (&["--top-k", "0"], "--top-k: expected at least 1, found 0"),
        (&["--top-k", "-2"], "--top-k: expected at least 1, found -2"),
        (&["--stop", ""], "--stop: expected a non-empty string"),
    ] {
        let mut args = vec!["generate", "--model", model_s, "--prompt", "so"];
        args.extend_from_slice(flags);
        let e = fails(&args);
        assert!(e.contains(message), "{flags:?}: {e}");
    }
    let e = fails(&["generate", "--model", dir.path().to_str().unwrap()]);
    assert!(e.contains("not a Sora model directory"), "{e}");
    // The classifier verbs point to `sora generate`; `eval` scores a text.
    for command in ["predict", "explain"] {
        let e = fails(&[command, "--model", model_s, "--data", &good]);
        assert!(
            e.contains("generate models")
                && e.contains("a language model writes text with `sora generate"),
            "{e}"
        );
    }
    let eval = ok(&["eval", "--model", model_s, "--data", &good]);
    assert!(eval.contains("perplexity"), "{eval}");
    // A tabular model does not write text.
    let heart = dir.path().join("heart");
    ok(&[
        "train",
        "--data",
        "data/heart_cleveland/heart_cleveland.csv",
        "--target",
        "num",
        "--epochs",
        "2",
        "--progress",
        "quiet",
        "--out",
        heart.to_str().unwrap(),
    ]);
    let e = fails(&["generate", "--model", heart.to_str().unwrap()]);
    assert!(e.contains("tabular models do not write text"), "{e}");
}
