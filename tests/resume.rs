//! `sora train --resume`: a run killed with SIGKILL at random moments, and resumed each
//! time, ends with the files of the run that was never interrupted; every kind continues
//! from its checkpoints.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::media::{bars, tones};
use common::{device, entries};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sora binary runs")
}

/// Every file of a model directory but `timings.json` (wall-clock seconds), by name.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != "timings.json" {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

fn assert_same_model(resumed: &Path, reference: &Path) {
    let (a, b) = (files(resumed), files(reference));
    let names = |f: &[(PathBuf, Vec<u8>)]| f.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    assert!(a.iter().any(|(p, _)| p.ends_with("model.safetensors")));
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{} differs from the uninterrupted run's",
            path.display()
        );
    }
}

/// The epochs a phase's last checkpoint holds, or 0.
fn epochs_done(state: &Path) -> u64 {
    std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_run_killed_ten_times_ends_with_the_uninterrupted_weights() {
    let root = tempfile::tempdir().unwrap();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/heart_cleveland/heart_cleveland.csv");
    let dev = device();
    let args = |out: &'static str| {
        vec![
            "train".to_string(),
            "--data".into(),
            data.to_str().unwrap().into(),
            "--target".into(),
            "num".into(),
            "--epochs".into(),
            "400".into(),
            "--patience".into(),
            "100".into(),
            "--checkpoint-every".into(),
            "1".into(),
            "--progress".into(),
            "quiet".into(),
            "--out".into(),
            out.into(),
            "--device".into(),
            dev.clone(),
        ]
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = spawn(&args, root.path()).wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&args("reference"));
    assert!(!root.path().join(".reference.checkpoints").exists());

    // Kill the run ten times, resuming it each time (bounded: 90 s). Each kill waits for the
    // checkpoint to reach a random epoch (ten targets, rising, below 100: patience 100 keeps
    // the run going past epoch 100) and then for a random few milliseconds more, so kills land
    // in the middle of epochs and of checkpoint writes; every third start is instead killed
    // a random 1–40 ms after it starts, mostly before it has trained anything. Progress, not the
    // clock, decides when to kill, so a faster or slower machine sees the same ten kills.
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut targets: Vec<u64> = (0..10).map(|_| rng.random_range(2..96)).collect();
    targets.sort_unstable();
    let started = Instant::now();
    let limit = Duration::from_secs(90);
    let state = root.path().join(".model.checkpoints/train/state.json");
    let (mut kills, mut starts, mut progress) = (0, 0, Vec::new());
    let resume = ["train".to_string(), "--resume".into(), "model".into()];
    let mut next: Vec<String> = args("model");
    let mut finished = false;
    while progress.len() < 10 && started.elapsed() < limit {
        let argv: Vec<&str> = next.iter().map(String::as_str).collect();
        let mut child = spawn(&argv, root.path());
        starts += 1;
        if starts % 3 == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(1..40)));
        } else {
            let target = targets[progress.len()].max(epochs_done(&state) + 1);
            while epochs_done(&state) < target
                && child.try_wait().unwrap().is_none()
                && started.elapsed() < limit
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..8)));
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if starts % 3 != 0 {
                    progress.push(epochs_done(&state));
                }
            }
        }
        next = resume.to_vec();
    }
    assert!(
        progress.len() >= 10 || finished,
        "{kills} kills in {starts} starts, {:?}",
        started.elapsed()
    );
    assert!(
        progress.len() >= 10,
        "the run ended after {kills} kills: {progress:?}"
    );
    if !finished {
        run(&resume);
    }
    eprintln!("{kills} kills in {starts} starts; epochs checkpointed at each kill: {progress:?}");
    // The checkpoints advanced across the kills: each resumed run went on from the last.
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.last() > progress.first(), "{progress:?}");
    assert_same_model(&root.path().join("model"), &root.path().join("reference"));
    // Nothing left beside the two models (no checkpoint folder, no staging folder).
    assert_eq!(entries(root.path()), ["model", "reference"]);
}

/// Trains `args` to the end as `reference`; then again as `model`, killed once its
/// checkpoint in `phase` holds an epoch, and resumed; the two must be the same files.
fn resumes_to_the_same_model(root: &Path, args: &[&str], phase: &str) {
    let with = |out: &str| {
        let mut all: Vec<String> = vec!["train".into()];
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(
            [
                "--checkpoint-every",
                "1",
                "--progress",
                "plain",
                "--device",
                &device(),
                "--out",
                out,
            ]
            .map(String::from),
        );
        all
    };
    let run = |argv: &[String]| {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = spawn(&argv, root).wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "sora {argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&with("reference"));

    let model = with("model");
    let argv: Vec<&str> = model.iter().map(String::as_str).collect();
    let mut child = spawn(&argv, root);
    let state = root
        .join(".model.checkpoints")
        .join(phase)
        .join("state.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while epochs_done(&state) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its `{phase}` checkpoint was seen"
        );
        assert!(
            Instant::now() < deadline,
            "no `{phase}` checkpoint in 120 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(["train", "--resume", "model"])
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It went on from the checkpoint rather than from the start.
    assert!(
        stdout.contains("continuing from the checkpoint of epoch"),
        "{stdout}"
    );
    let first = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("epoch"))
        .and_then(|l| l.trim_start().split('/').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(first.is_none_or(|n| n > 1), "{stdout}");
    assert_same_model(&root.join("model"), &root.join("reference"));
    assert!(!root.join(".model.checkpoints").exists());
}

#[test]
fn image_runs_resume() {
    let root = tempfile::tempdir().unwrap();
    bars(&root.path().join("bars"), 30, 3);
    resumes_to_the_same_model(root.path(), &["--data", "bars", "--epochs", "6"], "train");
}

#[test]
fn audio_runs_resume() {
    let root = tempfile::tempdir().unwrap();
    tones(&root.path().join("tones"), 20, 4);
    resumes_to_the_same_model(
        root.path(),
        &["--data", "tones", "--clip-seconds", "0.25", "--epochs", "6"],
        "train",
    );
}

#[test]
fn text_runs_resume() {
    let root = tempfile::tempdir().unwrap();
    let sms = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sms_spam/sms_spam.csv");
    let text = std::fs::read_to_string(sms).unwrap();
    let head: Vec<&str> = text.lines().take(801).collect();
    std::fs::write(root.path().join("sms.csv"), head.join("\n") + "\n").unwrap();
    resumes_to_the_same_model(
        root.path(),
        &[
            "--data",
            "sms.csv",
            "--text",
            "text",
            "--target",
            "label",
            "--encoder",
            "gru",
            "--embed",
            "16",
            "--epochs",
            "5",
        ],
        "train",
    );
}

/// A recommender trains a rating model, then a ranker: killed in the second phase, the run
/// keeps the first phase's result and continues the second.
#[test]
fn recommender_runs_resume_in_their_second_phase() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut csv = String::from("userId,movieId,rating,timestamp\n");
    for u in 0..60 {
        for k in 0..15 {
            let item = (u * 7 + k * 3) % 70;
            let rating = if (item + u) % 3 == 0 { 4.5 } else { 2.0 } + rng.random_range(0.0..0.5);
            csv.push_str(&format!("{u},{item},{rating:.1},{}\n", 1000 + k));
        }
    }
    std::fs::write(root.path().join("ratings.csv"), csv).unwrap();
    resumes_to_the_same_model(
        root.path(),
        &[
            "--data",
            "ratings.csv",
            "--ratings",
            "--rating-range",
            "0.5-5",
            "--epochs",
            "8",
        ],
        "ranking",
    );
}

#[test]
fn language_model_runs_resume() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("text.txt"),
        "the cat sat on the mat\nthe dog sat on the log\n".repeat(60),
    )
    .unwrap();
    resumes_to_the_same_model(
        root.path(),
        &[
            "--task", "generate", "--text", "text.txt", "--epochs", "5", "--hidden", "32",
            "--embed", "8",
        ],
        "train",
    );
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let root = tempfile::tempdir().unwrap();
    let csv = root.path().join("toy.csv");
    let mut text = String::from("x,y\n");
    for i in 0..80 {
        text.push_str(&format!("{},{}\n", i as f64 / 10.0, u8::from(i % 3 == 0)));
    }
    std::fs::write(&csv, &text).unwrap();
    let cwd = root.path().to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sora"))
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    // Nothing to continue.
    let out = run(&["train", "--resume", "nothing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no interrupted run"), "{stderr}");
    // --resume takes the run's own options, no others.
    let out = run(&["train", "--resume", "m", "--epochs", "3"]);
    assert_eq!(out.status.code(), Some(2));
    // An interrupted run whose data changed is not continued on other data.
    let ck = root.path().join(".m.checkpoints");
    std::fs::create_dir_all(&ck).unwrap();
    let started = serde_json::json!({
        "args": ["--data", "toy.csv", "--target", "y", "--out", "m"],
        "cwd": cwd,
        "inputs": [{"path": "toy.csv", "bytes": 1, "modified_ns": 0}],
    });
    std::fs::write(ck.join("command.json"), started.to_string()).unwrap();
    let out = run(&["train", "--resume", "m"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("toy.csv has changed"), "{stderr}");
    // A folder in the way of the checkpoints that is not one is left alone.
    std::fs::remove_file(ck.join("command.json")).unwrap();
    std::fs::write(ck.join("mine.txt"), "keep").unwrap();
    let out = run(&["train", "--data", "toy.csv", "--target", "y", "--out", "m"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a checkpoint directory"), "{stderr}");
    assert!(ck.join("mine.txt").is_file());
    // Without it, a short run writes no checkpoints that outlive it.
    std::fs::remove_dir_all(&ck).unwrap();
    let out = run(&[
        "train",
        "--data",
        "toy.csv",
        "--target",
        "y",
        "--out",
        "m",
        "--progress",
        "quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ck.exists());
}
