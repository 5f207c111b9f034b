//! The `ratings` kind: ratings `user,item,rating[,timestamp]` → a rating predictor
//! (explicit feedback) and a top-N ranker (implicit feedback), each beside its baselines.
//!
//! - **Explicit ratings** ([`fit_ratings`]): a seeded random split, `test_fraction` (20 %)
//!   held out; a validation part (`valid_fraction` of the rest) is carved from the training
//!   part and used for every choice (the bias damping λ, early stopping); the test part is
//!   touched once. Ids (any strings) become dense indices from the training part only. The
//!   model is biased matrix factorisation ([`RatingsSpec::dot`] + a 1→1 head), trained with
//!   MSE and warm-started from the damped bias baseline (biases = the baseline's, head bias =
//!   the training mean, head weight = 1, small random embeddings), so it starts as the
//!   baseline and early stopping keeps only what the interactions add. By default the biases
//!   stay fixed (`train_biases`: trained freely they overfit within an epoch) and, after
//!   early stopping, are replaced by the baseline refitted on the whole training part; the
//!   summary still counts them as trainable. Predictions are clipped to the rating range.
//!   Test pairs with a user or
//!   item never seen in training get the bias baseline's prediction (counted in the report).
//!   Reported beside the global mean and the damped user + item bias baseline
//!   (`b_i = Σ(r − μ)/(n_i + λ)`, then `b_u = Σ(r − μ − b_i)/(n_u + λ)`).
//! - **Implicit ranking** ([`fit_ranking`]): every rating counts as an interaction. Each
//!   user's last interaction by timestamp is held out (leave-last-out); the model
//!   ([`RatingsSpec::dot`] + a 1→2 head by default, or [`RatingsSpec::mlp`] + an MLP head;
//!   two classes) learns interactions against
//!   `negatives` seeded negative samples per positive (items the user never rated).
//!   Protocol: the held-out item is ranked among `candidates` (100) items sampled (seeded)
//!   from the items the user never rated; ties count against it. HR@k (held out in the top
//!   k) and NDCG@k (`1 / log2(rank + 2)` when in the top k), beside the popularity ranking
//!   (number of training interactions). Users whose held-out item never occurs in training
//!   are skipped (counted).
//!
//! [`Recommender::predict`] gives a user's top-N items among those they have not rated;
//! an unknown user gets the most popular items, and says so. [`RecommenderModel`] holds both
//! models as one saved directory; the ratings file is read by [`sora_data::Ratings`].

mod config;
mod data;
mod model;
mod ranking;
mod rating;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sora_core::{CheckedSpec, HeadSpec, Model, ModelSpec, SpecError, Task};
use sora_data::DataError;
use sora_text::recommend::{Interaction, Pairs, RatingsEncoder, RatingsSpec};
use sora_train::{OptimizerConfig, Progress, Targets, TrainConfig, TrainData, TrainError};

pub use config::*;
pub use data::*;
pub use model::*;
pub use ranking::*;
pub use rating::*;
pub use sora_data::{ITEM_COLUMNS, RatingRange, Ratings, USER_COLUMNS};

use crate::{JobError, RunContext};

/// What can go wrong in the recommendation job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecommendError {
    /// The CSV file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Ranking needs timestamps (leave-last-out).
    #[error("{file}: no `timestamp` column: leave-last-out ranking needs one")]
    NoTimestamps {
        /// The file.
        file: String,
    },
    /// A configuration value is out of range.
    #[error("recommend config: field `{field}`: expected {expected}, found {found}")]
    Config {
        /// The field.
        field: String,
        /// What was expected.
        expected: String,
        /// What was given.
        found: String,
    },
    /// Too few ratings for a training, validation and test part.
    #[error("{file}: {n} ratings are too few for a training, validation and test part")]
    TooFew {
        /// The file.
        file: String,
        /// Ratings in it.
        n: usize,
    },
    /// Pairs and targets of different lengths (a bug of the caller).
    #[error("{users} users, {items} items and {targets} targets: one of each per pair expected")]
    LengthMismatch {
        /// Users given.
        users: usize,
        /// Items given.
        items: usize,
        /// Targets given.
        targets: usize,
    },
    /// An item id the model never saw.
    #[error("item {item:?} is not one the model knows")]
    UnknownItem {
        /// The id.
        item: String,
    },
    /// The backend could not hand the item table back.
    #[error("the backend could not read the item table: {message}")]
    Backend {
        /// The backend's message.
        message: String,
    },
    /// A model directory is not a recommender's, or its files disagree.
    #[error("{dir}: {message}")]
    ModelDir {
        /// The directory.
        dir: String,
        /// What is wrong.
        message: String,
    },
    /// Weights could not be written or read.
    #[error(transparent)]
    Weights(#[from] sora_core::WeightsError),
    /// The model spec failed its check.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// The job's result alias.
pub type Result<T, E = RecommendError> = std::result::Result<T, E>;

impl From<RecommendError> for JobError {
    fn from(e: RecommendError) -> Self {
        JobError::kind(e)
    }
}

/// Reads a ratings CSV with the config's declared range (see [`Ratings::read_csv`]).
pub fn read_ratings(path: &Path, config: &RecommendConfig) -> Result<Ratings> {
    Ok(Ratings::read_csv(path, config.rating_range)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_baseline_is_damped_item_then_user() {
        // Two users, two items: ratings (u0,i0)=5, (u0,i1)=3, (u1,i0)=4; mean 4.
        let b = BiasBaseline::fit(&[0, 0, 1], &[0, 1, 0], &[5.0, 3.0, 4.0], 2, 2, 1.0);
        assert_eq!(b.mean, 4.0);
        // b_i0 = (1 + 0) / (2 + 1), b_i1 = -1 / (1 + 1).
        assert!((b.item[0] - 1.0 / 3.0).abs() < 1e-6 && (b.item[1] + 0.5).abs() < 1e-6);
        // b_u0 = ((5 - 4 - 1/3) + (3 - 4 + 1/2)) / (2 + 1).
        let u0 = ((1.0 - 1.0 / 3.0) + (-0.5)) / 3.0;
        assert!((b.user[0] - u0).abs() < 1e-6, "{} vs {u0}", b.user[0]);
        // Unknown ids add no bias.
        assert_eq!(b.predict(None, None), 4.0);
        let ids = IdIndex::build(["x", "y", "x"]);
        assert_eq!((ids.len(), ids.get("x"), ids.get("z")), (2, Some(0), None));
    }

    #[test]
    fn ranges_parse_and_ranks_count_ties_against_the_held_out_item() {
        let r: RatingRange = "0.5-5".parse().unwrap();
        assert_eq!((r.min, r.max), (0.5, 5.0));
        let r: RatingRange = "-1..1".parse().unwrap();
        assert_eq!((r.min, r.max), (-1.0, 1.0));
        assert!("5-1".parse::<RatingRange>().is_err());
        assert_eq!(rank_of_first(&[0.5, 0.9, 0.5, 0.1]), 2);
        let s = RankScores::compute(&[0, 12], 10);
        assert_eq!((s.hit_rate, s.ndcg), (0.5, 0.5));
    }
}
