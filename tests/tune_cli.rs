//! `sora tune` through the whole program: successive halving scored by cross-validation on a
//! real table, the table of trials and the winner saved as a model every verb reads, an
//! interrupted search continued from its state file, and bad options refused by name.

mod common;

use std::path::Path;

use common::{device, fails, ok};
use serde_json::Value;

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";

fn tune_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "tune",
        "--data",
        HEART,
        "--target",
        "num",
        "--target-above",
        "0",
        "--cv",
        "3",
        "--trials",
        "3",
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

fn run(args: &[String]) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn tune_searches_by_cross_validation_and_saves_the_winner() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("tuned");
    // Every option of the search but the epochs is drawn; `--lr` is fixed by the user.
    let args = tune_args(&out, &["--budget", "8s", "--lr", "0.005"]);
    let text = run(&args);
    assert!(
        text.contains("scored by 3-fold cross-validation × 2 repeats"),
        "{text}"
    );
    assert!(text.contains("bracket 1 rung 1/2"), "{text}");
    assert!(text.contains("bracket 1 rung 2/2"), "{text}");
    assert!(text.contains("best: configuration"), "{text}");
    let tune: Value =
        serde_json::from_slice(&std::fs::read(out.join("tune.json")).unwrap()).unwrap();
    let trials = tune["trials"].as_array().unwrap();
    assert!(
        trials.len() >= 4,
        "3 configurations, then the best of them: {tune}"
    );
    for t in trials {
        let args: Vec<&str> = t["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            !args.contains(&"--lr"),
            "a fixed option is not drawn: {args:?}"
        );
        for flag in [
            "--hidden",
            "--dropout",
            "--weight-decay",
            "--optimizer",
            "--class-weights",
            "--valid-fraction",
        ] {
            assert!(args.contains(&flag), "{flag} drawn: {args:?}");
        }
    }
    // The winner is the lowest cross-validated loss of the last rung it reached.
    let best = &tune["best"];
    let rung = best["rung"].as_u64().unwrap();
    let finished: Vec<&Value> = trials
        .iter()
        .filter(|t| t["rung"].as_u64() == Some(rung))
        .collect();
    let lowest = finished
        .iter()
        .map(|t| t["loss"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best["loss"].as_f64().unwrap(), lowest, "{tune}");
    assert!(
        rung >= 1,
        "the best of the first bracket's last rung: {tune}"
    );
    // The saved model is the winner's: its options are in the spec and training config.
    let spec: Value =
        serde_json::from_slice(&std::fs::read(out.join("spec.json")).unwrap()).unwrap();
    let best_args: Vec<String> = best["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let hidden = &best_args[best_args.iter().position(|a| a == "--hidden").unwrap() + 1];
    let widths: Vec<i64> = hidden.split(',').map(|w| w.parse().unwrap()).collect();
    assert_eq!(
        spec["head"]["d_hidden"],
        serde_json::json!(widths),
        "{spec}"
    );
    let eval = ok(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        HEART,
        "--device",
        &device(),
    ]);
    assert!(eval.contains("accuracy"), "{eval}");
    // The state file is gone once the model is saved.
    assert!(!root.path().join(".tuned.tune.json").exists());

    // An interrupted search — its state file left beside --out — continues: the trials
    // done are not run again.
    std::fs::copy(out.join("tune.json"), root.path().join(".tuned.tune.json")).unwrap();
    let again = run(&args);
    assert!(
        again.contains(&format!("{} trials done", trials.len())),
        "{again}"
    );
    assert!(!again.contains("bracket 1 rung 1/2"), "{again}");
}

#[test]
fn bad_searches_are_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("m");
    let check = |extra: &[&str], needles: &[&str]| {
        let args = tune_args(&out, extra);
        let out_ = common::sora(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out_.stderr).into_owned();
        assert!(!out_.status.success(), "{extra:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{extra:?}: {stderr}");
        }
    };
    check(&["--budget", "0s"], &["--budget", "positive"]);
    check(&["--budget", "5 parsecs"], &["--budget"]);
    check(&["--trials", "0"], &["--trials"]);
    let e = fails(&[
        "tune",
        "--task",
        "generate",
        "--data",
        "data/sentiment_sentences/ORIGINAL_README.txt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("generate models are not cross-validated"), "{e}");
    // A state file of another search is not continued.
    std::fs::write(
        root.path().join(".m.tune.json"),
        r#"{"base": ["--data", "other.csv"], "seed": 42, "budget_seconds": 60, "trials": []}"#,
    )
    .unwrap();
    let args = tune_args(&out, &["--budget", "5s"]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains(".m.tune.json") && e.contains("another search"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn tune_without_cv_scores_by_repeated_five_fold_and_trains_the_winner_plainly() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("plain");
    let text = ok(&[
        "tune",
        "--data",
        HEART,
        "--target",
        "num",
        "--target-above",
        "0",
        "--trials",
        "1",
        "--budget",
        "4s",
        "--device",
        &device(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("scored by 5-fold cross-validation × 2 repeats"),
        "{text}"
    );
    // The winner is trained as a plain run: a test part, no cross-validation report.
    assert!(text.contains("test metrics:"), "{text}");
    assert!(out.join("tune.json").is_file() && !out.join("cv.json").exists());
}
