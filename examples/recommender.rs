//! Recommendations from MovieLens ml-latest-small (`data/movielens_small/`, GroupLens
//! research licence: non-commercial use only, see its README.txt): the same user and item
//! embedding tables serve
//!
//! 1. rating prediction — biased matrix factorisation on a seeded random 80/20 split (a 10 %
//!    validation part carved from the 80 % for λ and early stopping), RMSE and MAE beside the
//!    global mean and the damped user + item bias baseline;
//! 2. top-N ranking — matrix factorisation (dot product plus biases, 1→2 head) trained as a
//!    classifier of interactions against 4 sampled negatives per positive, leave-last-out by timestamp, HR@10 and NDCG@10 of the held-out item among
//!    100 sampled unrated items, beside popularity;
//!
//! and prints a user's top 10 with titles (and what an unknown user gets).
//!
//! ```text
//! cargo run --release --example recommender [-- --device ndarray --seed 42 --users N --rating-range 0.5-5]
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sora::data::Table;
use sora::jobs::recommend::{
    RankingReport, RatingRange, RatingsReport, RecommendConfig, Recommender, fit_ranking,
    fit_ratings, read_ratings,
};

/// The bundled ratings.
pub const RATINGS: &str = "data/movielens_small/ratings.csv";
/// The bundled titles.
pub const MOVIES: &str = "data/movielens_small/movies.csv";

/// What a run produced.
pub struct Run {
    /// Rating prediction on the test part.
    pub ratings: RatingsReport,
    /// Ranking against popularity.
    pub ranking: RankingReport,
    /// The trained ranker.
    pub recommender: Recommender,
}

/// The example's settings: the library's defaults with `seed` and MovieLens's range of
/// ratings, 0.5–5 (half stars), declared.
pub fn settings(seed: u64) -> RecommendConfig {
    RecommendConfig {
        seed,
        rating_range: Some(RatingRange { min: 0.5, max: 5.0 }),
        ..RecommendConfig::default()
    }
}

/// Reads the bundled ratings with the config's declared range, keeping the first `users` users when
/// given, and runs both tasks.
pub fn run(
    config: &RecommendConfig,
    users: Option<usize>,
    device: &burn::tensor::Device,
) -> Result<Run> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RATINGS);
    let mut ratings = read_ratings(&path, config)?;
    if let Some(n) = users {
        ratings = ratings.first_users(n);
    }
    println!(
        "movielens: {} ratings, {} users, {} items, range {}–{}",
        ratings.len(),
        ratings.n_users(),
        ratings.n_items(),
        ratings.range.min,
        ratings.range.max
    );
    let (ratings_report, _) = fit_ratings(&ratings, config, device)?;
    let (ranking, recommender) = fit_ranking(&ratings, config, device)?;
    Ok(Run {
        ratings: ratings_report,
        ranking,
        recommender,
    })
}

/// Item id → title, from movies.csv.
pub fn titles() -> Result<HashMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(MOVIES);
    let table = Table::read_csv(&path)?;
    let (Some(id), Some(title)) = (table.column_index("item_id"), table.column_index("title"))
    else {
        bail!("{}: expected `item_id` and `title` columns", path.display());
    };
    Ok((0..table.n_rows())
        .map(|r| {
            (
                table.cell(r, id).to_string(),
                table.cell(r, title).to_string(),
            )
        })
        .collect())
}

fn parse_args() -> Result<(String, u64, Option<usize>, Option<RatingRange>)> {
    let (mut device, mut seed, mut users, mut range) = ("flex".to_string(), 42u64, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => device = value()?,
            "--seed" => seed = value()?.parse()?,
            "--users" => users = Some(value()?.parse()?),
            "--rating-range" => range = Some(value()?.parse()?),
            other => bail!(
                "unknown argument {other} (expected --device, --seed, --users, --rating-range)"
            ),
        }
    }
    Ok((device, seed, users, range))
}

fn main() -> Result<()> {
    let start = Instant::now();
    let (device_name, seed, users, range) = parse_args()?;
    let device = sora::device::device(&device_name)?;
    let mut config = settings(seed);
    if range.is_some() {
        config.rating_range = range;
    }
    let run = run(&config, users, &device)?;

    let r = &run.ratings;
    println!("\nrating model:\n{}", r.summary);
    println!(
        "\nrating prediction (seeded random split: {} train, {} validation, {} test; λ = {}):",
        r.n_train, r.n_valid, r.n_test, r.damping
    );
    println!("  {:<34} {:>6} {:>6}", "model", "RMSE", "MAE");
    for (name, s) in [
        ("global mean", r.global_mean),
        ("damped user + item bias", r.bias),
        ("matrix factorisation (d = 32)", r.model),
    ] {
        println!("  {name:<34} {:>6.4} {:>6.4}", s.rmse, s.mae);
    }
    println!(
        "  MF: best epoch {} (validation RMSE {:.4}), trained in {:.1} s; the user and item \
         biases stay the damped baseline's (not trained); {} test ratings with an id unseen in \
         training got the bias baseline's prediction",
        r.best_epoch, r.valid_rmse, r.seconds, r.n_fallback
    );

    let k = &run.ranking;
    println!("\nranking model:\n{}", k.summary);
    println!(
        "\nranking (leave-last-out by timestamp; held-out item among {} candidates = it + {} \
         sampled unrated items; {} users, {} skipped as their item is new):",
        k.n_candidates,
        k.n_candidates - 1,
        k.n_users_tested,
        k.n_users_skipped
    );
    println!("  {:<34} {:>6} {:>7}", "model", "HR@10", "NDCG@10");
    for (name, s) in [
        ("popularity", k.popularity),
        ("matrix factorisation (d = 32)", k.model),
    ] {
        println!("  {name:<34} {:>6.4} {:>7.4}", s.hit_rate, s.ndcg);
    }
    println!(
        "  {} positives + sampled negatives = {} samples; best epoch {}, trained in {:.1} s",
        k.n_positives, k.n_samples, k.best_epoch, k.seconds
    );

    let titles = titles()?;
    for user in ["1", "unknown-user"] {
        let recs = run.recommender.predict(user, 10)?;
        let how = if recs.popularity_fallback {
            "unknown user: the most popular items"
        } else {
            "items the user has not rated"
        };
        println!("\ntop 10 for user {user} ({how}):");
        for (n, rec) in recs.items.iter().enumerate() {
            let title = titles.get(&rec.item).map_or("?", String::as_str);
            println!("  {:>2}. {title} ({:.3})", n + 1, rec.score);
        }
        if let Some(first) = recs.items.first().filter(|_| !recs.popularity_fallback) {
            let title = |id: &str| titles.get(id).map_or("?", String::as_str).to_string();
            println!(
                "  why {}: the user's rated items closest to it",
                title(&first.item)
            );
            for s in run.recommender.supporting_items(user, &first.item, 3)? {
                println!("      {} (cosine {:.3})", title(&s.item), s.score);
            }
        }
    }
    println!("\ntotal {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
