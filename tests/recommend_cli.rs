//! `sora train --ratings`, `sora eval` and `sora predict` on a recommender's model directory,
//! on the ratings of MovieLens users 1–120 (a subset keeps each training to a few seconds;
//! the example's accuracy targets on the whole set are in tests/recommend.rs).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{device, fails, ok, sora};
use sora::jobs::recommend::{RatingRange, Ratings, RecommendConfig, RecommenderModel};
use sora::train::Progress;

const USERS: u32 = 120;

/// The bundled ratings of users 1..=USERS, with or without the timestamp column.
fn subset(dir: &Path, timestamps: bool) -> PathBuf {
    let all = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/movielens_small/ratings.csv"),
    )
    .unwrap();
    let mut out = String::new();
    for (n, line) in all.lines().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if n > 0 && fields[0].parse::<u32>().unwrap() > USERS {
            continue;
        }
        let keep = if timestamps { 4 } else { 3 };
        out.push_str(&fields[..keep].join(","));
        out.push('\n');
    }
    let path = dir.join(if timestamps {
        "ratings.csv"
    } else {
        "no_time.csv"
    });
    std::fs::write(&path, out).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn train(data: &Path, out: &Path) -> String {
    ok(&[
        "train",
        "--data",
        s(data),
        "--ratings",
        "--rating-range",
        "0.5-5",
        "--progress",
        "quiet",
        "--device",
        &device(),
        "--out",
        s(out),
    ])
}

/// Items user `user` rated in the file.
fn rated(data: &Path, user: &str) -> HashSet<String> {
    let ratings = Ratings::read_csv(data, None).unwrap();
    (0..ratings.len())
        .filter(|&r| ratings.users[r] == user)
        .map(|r| ratings.items[r].clone())
        .collect()
}

/// Data rows of a CSV output, split into fields (no field here holds a comma).
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn train_saves_a_recommender_that_predicts_as_trained() {
    let tmp = tempfile::tempdir().unwrap();
    let data = subset(tmp.path(), true);
    let dir = tmp.path().join("model");
    let out = train(&data, &dir);
    assert!(out.contains("RMSE") && out.contains("HR@10"), "{out}");
    for file in [
        "spec.json",
        "model.safetensors",
        "recommender.json",
        "ranking_spec.json",
        "ranking.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }

    // Top items: five, never one the user rated; each explained by items the user rated.
    let args = [
        "predict",
        "--model",
        s(&dir),
        "--user",
        "7",
        "--top",
        "5",
        "--device",
        &device(),
    ];
    let first = ok(&args);
    let top = rows(&first);
    assert_eq!(top.len(), 5, "{first}");
    let seen = rated(&data, "7");
    for row in &top {
        assert_eq!((row[0].as_str(), row[4].as_str()), ("7", "false"));
        assert!(!seen.contains(&row[2]), "{} was rated by user 7", row[2]);
        let because: Vec<&str> = row[5].split(';').collect();
        assert_eq!(because.len(), 3, "{row:?}");
        assert!(because.iter().all(|b| seen.contains(*b)), "{row:?}");
    }
    let scores: Vec<f32> = top.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(ok(&args), first, "the same model gives the same list");

    // The saved model equals the one trained in process with the same seed.
    let ratings = Ratings::read_csv(&data, Some(RatingRange { min: 0.5, max: 5.0 })).unwrap();
    let config = RecommendConfig {
        rating_range: Some(RatingRange { min: 0.5, max: 5.0 }),
        progress: Progress::Quiet,
        ..RecommendConfig::default()
    };
    let dev = sora::device::test_device();
    let (_, _, trained) = sora::jobs::recommend::train(&ratings, &config, &dev).unwrap();
    let loaded = RecommenderModel::load(&dir, &dev).unwrap();
    let (a, b) = (
        trained.recommend("7", 5).unwrap(),
        loaded.recommend("7", 5).unwrap(),
    );
    assert_eq!(a, b);
    for ((row, score), r) in top.iter().zip(&scores).zip(&a.items) {
        assert_eq!(row[2], r.item);
        assert!((score - r.score).abs() < 1e-6, "{score} vs {}", r.score);
    }
    let pairs = [("7", "1"), ("7", "no such item"), ("nobody", "1")];
    assert_eq!(
        trained.rating.predict(&pairs).unwrap(),
        loaded.rating.predict(&pairs).unwrap()
    );
    assert_eq!(trained.test, loaded.test);

    // An unknown user gets the most popular items, and is told so.
    let out = sora(&[
        "predict",
        "--model",
        s(&dir),
        "--user",
        "nobody",
        "--top",
        "3",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(rows(&stdout).iter().all(|r| r[4] == "true"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown to the model"));

    // Ratings of pairs: in range, unknown ids through the bias baseline (flagged).
    let pairs = tmp.path().join("pairs.csv");
    std::fs::write(&pairs, "user_id,item_id\n7,1\n7,no such item\nnobody,1\n").unwrap();
    let out = ok(&["predict", "--model", s(&dir), "--data", s(&pairs)]);
    let rated_rows = rows(&out);
    let flags: Vec<&str> = rated_rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(flags, ["false", "true", "true"], "{out}");
    for r in &rated_rows {
        let v: f32 = r[3].parse().unwrap();
        assert!((0.5..=5.0).contains(&v), "{out}");
    }

    // Evaluation on labelled ratings: the model beside its baselines.
    let out = ok(&["eval", "--model", s(&dir), "--data", s(&data)]);
    assert!(
        out.contains("model") && out.contains("global mean"),
        "{out}"
    );
}

#[test]
fn without_timestamps_items_are_ranked_by_predicted_rating() {
    let tmp = tempfile::tempdir().unwrap();
    let data = subset(tmp.path(), false);
    let dir = tmp.path().join("model");
    let out = train(&data, &dir);
    assert!(out.contains("no timestamp column"), "{out}");
    assert!(!dir.join("ranking.safetensors").exists());
    let out = ok(&["predict", "--model", s(&dir), "--user", "7", "--top", "4"]);
    let top = rows(&out);
    assert_eq!(top.len(), 4, "{out}");
    let seen = rated(&data, "7");
    let scores: Vec<f32> = top.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(top.iter().all(|r| !seen.contains(&r[2])), "{out}");
}

#[test]
fn bad_ratings_and_damaged_model_directories_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = subset(tmp.path(), false);
    let dir = tmp.path().join("model");
    train(&data, &dir);
    let saved = std::fs::read(dir.join("recommender.json")).unwrap();

    // A rating outside the declared range: an error naming the file and line; the model
    // directory is left as it was.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "user,item,rating\na,x,4\nb,y,7.5\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        s(&bad),
        "--ratings",
        "--rating-range",
        "0.5-5",
        "--out",
        s(&dir),
    ]);
    assert!(err.contains("bad.csv") && err.contains("line 3"), "{err}");
    assert_eq!(std::fs::read(dir.join("recommender.json")).unwrap(), saved);
    let err = fails(&["eval", "--model", s(&dir), "--data", s(&bad)]);
    assert!(err.contains("line 3") && err.contains("outside"), "{err}");
    let err = common::usage_error(&[
        "train",
        "--data",
        s(&data),
        "--ratings",
        "--rating-range",
        "5-1",
    ]);
    assert!(
        err.contains("--rating-range") && err.contains("MIN < MAX"),
        "{err}"
    );

    // A recommender.json that disagrees with the weights.
    let mut json: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    json["items"].as_array_mut().unwrap().pop();
    std::fs::write(dir.join("recommender.json"), json.to_string()).unwrap();
    let err = fails(&["predict", "--model", s(&dir), "--user", "7"]);
    assert!(
        err.contains("recommender.json") && err.contains("items"),
        "{err}"
    );
    std::fs::write(dir.join("recommender.json"), b"{ not json").unwrap();
    let err = fails(&["predict", "--model", s(&dir), "--user", "7"]);
    assert!(err.contains("recommender.json"), "{err}");
}
