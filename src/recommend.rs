//! The recommendation job: ratings `user,item,rating[,timestamp]` → a rating predictor
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
//! an unknown user gets the most popular items, and says so.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sora_core::{CheckedSpec, HeadSpec, Model, ModelSpec, SpecError, Task};
use sora_data::{DataError, Table};
use sora_text::recommend::{Interaction, Pairs, RatingsEncoder, RatingsSpec};
use sora_train::{OptimizerConfig, Progress, Targets, TrainConfig, TrainData, TrainError, Trainer};

/// What can go wrong in the recommendation job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecommendError {
    /// The CSV file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A required column is absent from the header.
    #[error(
        "{file}: line 1: no `{column}` column (accepted names: {accepted}); the header has {found:?}"
    )]
    MissingColumn {
        /// The file.
        file: String,
        /// The column's role (`user`, `item`, `rating`).
        column: String,
        /// The names accepted for it.
        accepted: String,
        /// The header.
        found: Vec<String>,
    },
    /// A rating is not a number.
    #[error("{file}: line {line}: rating `{value}` is not a number")]
    BadRating {
        /// The file.
        file: String,
        /// Line of the row (the header is line 1).
        line: u64,
        /// The cell.
        value: String,
    },
    /// A rating lies outside the declared range.
    #[error("{file}: line {line}: rating {value} is outside the declared range {min}–{max}")]
    RatingOutOfRange {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The rating.
        value: f32,
        /// Lowest allowed rating.
        min: f32,
        /// Highest allowed rating.
        max: f32,
    },
    /// A timestamp is not an integer.
    #[error("{file}: line {line}: timestamp `{value}` is not a number")]
    BadTimestamp {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// The cell.
        value: String,
    },
    /// A user or item id is empty.
    #[error("{file}: line {line}: the {column} id is empty")]
    EmptyId {
        /// The file.
        file: String,
        /// Line of the row.
        line: u64,
        /// `user` or `item`.
        column: String,
    },
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
    /// Too little data for the split.
    #[error("{0}")]
    TooFew(String),
    /// An item id the model never saw.
    #[error("item {item:?} is not one the model knows")]
    UnknownItem {
        /// The id.
        item: String,
    },
    /// The backend could not hand a tensor back.
    #[error("backend: {0}")]
    Backend(String),
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

/// The allowed ratings, inclusive (`0.5-5`, `0.5..5` or `0.5,5` as text).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingRange {
    /// Lowest rating.
    pub min: f32,
    /// Highest rating.
    pub max: f32,
}

impl FromStr for RatingRange {
    type Err = RecommendError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let parts = if let Some((a, b)) = s.split_once("..") {
            Some((a, b))
        } else if let Some((a, b)) = s.split_once(',') {
            Some((a, b))
        } else {
            // A `-` after the first character separates (the first may be a sign).
            s.char_indices()
                .skip(1)
                .find(|&(_, c)| c == '-')
                .map(|(i, _)| (&s[..i], &s[i + 1..]))
        };
        let bad = || RecommendError::Config {
            field: "rating_range".into(),
            expected: "`MIN-MAX` with MIN < MAX (e.g. `0.5-5`)".into(),
            found: s.into(),
        };
        let (a, b) = parts.ok_or_else(bad)?;
        let min: f32 = a.trim().parse().map_err(|_| bad())?;
        let max: f32 = b.trim().parse().map_err(|_| bad())?;
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(bad());
        }
        Ok(Self { min, max })
    }
}

/// Names accepted for the user column.
pub const USER_COLUMNS: &[&str] = &["user", "user_id", "userId", "userid"];
/// Names accepted for the item column.
pub const ITEM_COLUMNS: &[&str] = &["item", "item_id", "itemId", "movieId", "movie_id"];
const RATING_NAMES: &[&str] = &["rating", "score"];
const TIME_NAMES: &[&str] = &["timestamp", "time"];

/// Ratings as read: one entry per row, ids as written.
#[derive(Debug, Clone)]
pub struct Ratings {
    /// The file the rows came from (for messages).
    pub source: String,
    /// User id of each row.
    pub users: Vec<String>,
    /// Item id of each row.
    pub items: Vec<String>,
    /// Rating of each row.
    pub ratings: Vec<f32>,
    /// Timestamp of each row, when the file has them.
    pub timestamps: Option<Vec<i64>>,
    /// The range: the declared one, or the data's own minimum and maximum.
    pub range: RatingRange,
}

impl Ratings {
    /// Reads a ratings CSV (`user,item,rating[,timestamp]`, columns found by name:
    /// `user`/`user_id`/`userId`, `item`/`item_id`/`itemId`/`movieId`, `rating`,
    /// `timestamp`). With a declared `range`, a rating outside it is an error naming the file
    /// and line; without one, the range is the data's minimum and maximum.
    pub fn read_csv(path: &Path, range: Option<RatingRange>) -> Result<Self> {
        Self::from_table(&Table::read_csv(path)?, range)
    }

    /// The ratings of a table already read (see [`read_csv`](Self::read_csv)).
    pub fn from_table(table: &Table, range: Option<RatingRange>) -> Result<Self> {
        let file = table.source().to_string();
        let find = |role: &str, names: &[&str]| -> Result<usize> {
            names
                .iter()
                .find_map(|n| table.column_index(n))
                .ok_or_else(|| RecommendError::MissingColumn {
                    file: file.clone(),
                    column: role.into(),
                    accepted: names.join(", "),
                    found: table.headers().to_vec(),
                })
        };
        let (cu, ci, cr) = (
            find("user", USER_COLUMNS)?,
            find("item", ITEM_COLUMNS)?,
            find("rating", RATING_NAMES)?,
        );
        let ct = TIME_NAMES.iter().find_map(|n| table.column_index(n));
        let n = table.n_rows();
        let (mut users, mut items, mut ratings) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut times = ct.map(|_| Vec::with_capacity(n));
        for row in 0..n {
            let line = table.line(row);
            for (col, role) in [(cu, "user"), (ci, "item")] {
                if table.cell(row, col).is_empty() {
                    return Err(RecommendError::EmptyId {
                        file,
                        line,
                        column: role.into(),
                    });
                }
            }
            let cell = table.cell(row, cr);
            let value: f32 = match cell.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    return Err(RecommendError::BadRating {
                        file,
                        line,
                        value: cell.into(),
                    });
                }
            };
            if let Some(r) = range
                && !(r.min..=r.max).contains(&value)
            {
                return Err(RecommendError::RatingOutOfRange {
                    file,
                    line,
                    value,
                    min: r.min,
                    max: r.max,
                });
            }
            if let (Some(ct), Some(times)) = (ct, times.as_mut()) {
                let cell = table.cell(row, ct);
                let t = cell
                    .parse::<i64>()
                    .ok()
                    .or_else(|| {
                        cell.parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite())
                            .map(|v| v as i64)
                    })
                    .ok_or_else(|| RecommendError::BadTimestamp {
                        file: file.clone(),
                        line,
                        value: cell.into(),
                    })?;
                times.push(t);
            }
            users.push(table.cell(row, cu).to_string());
            items.push(table.cell(row, ci).to_string());
            ratings.push(value);
        }
        let range = range.unwrap_or_else(|| RatingRange {
            min: ratings.iter().copied().fold(f32::INFINITY, f32::min),
            max: ratings.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        });
        Ok(Self {
            source: file,
            users,
            items,
            ratings,
            timestamps: times,
            range,
        })
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    /// Whether there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// Number of distinct users.
    pub fn n_users(&self) -> usize {
        self.users.iter().collect::<HashSet<_>>().len()
    }

    /// Number of distinct items.
    pub fn n_items(&self) -> usize {
        self.items.iter().collect::<HashSet<_>>().len()
    }

    /// The ratings of the first `n` users (in order of first appearance): a smaller set with
    /// every kept user's full history.
    pub fn first_users(&self, n: usize) -> Self {
        let mut kept = HashSet::new();
        let mut rows = Vec::new();
        for (r, u) in self.users.iter().enumerate() {
            if kept.contains(u) || kept.len() < n {
                kept.insert(u.clone());
                rows.push(r);
            }
        }
        Self {
            source: self.source.clone(),
            users: rows.iter().map(|&r| self.users[r].clone()).collect(),
            items: rows.iter().map(|&r| self.items[r].clone()).collect(),
            ratings: rows.iter().map(|&r| self.ratings[r]).collect(),
            timestamps: self
                .timestamps
                .as_ref()
                .map(|t| rows.iter().map(|&r| t[r]).collect()),
            range: self.range,
        }
    }
}

/// Reads a ratings CSV with the config's declared range (see [`Ratings::read_csv`]).
pub fn read_ratings(path: &Path, config: &RecommendConfig) -> Result<Ratings> {
    Ratings::read_csv(path, config.rating_range)
}

/// Ids → dense indices `0..len`, in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl IdIndex {
    /// Indexes the ids, in order of first appearance.
    pub fn build<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Self::default();
        for id in ids {
            if !out.index.contains_key(id) {
                out.index.insert(id.to_string(), out.names.len());
                out.names.push(id.to_string());
            }
        }
        out
    }

    /// The index of `id`, if it was seen.
    pub fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The id at `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no id was indexed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The ids, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of ids given in index order (as [`names`](Self::names) returns them);
    /// `None` when an id repeats.
    pub fn from_names(names: Vec<String>) -> Option<Self> {
        let index: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        (index.len() == names.len()).then_some(Self { names, index })
    }
}

/// (user, item) pairs with targets: the training data of recommendation models.
#[derive(Debug, Clone, PartialEq)]
pub struct PairData {
    users: Vec<usize>,
    items: Vec<usize>,
    targets: Targets,
}

impl PairData {
    /// One target per pair (ratings as `Targets::Values { d: 1 }`, interactions as two
    /// classes). Fails when the lengths differ.
    pub fn new(users: Vec<usize>, items: Vec<usize>, targets: Targets) -> Result<Self> {
        if users.len() != items.len() || targets.len() != users.len() {
            return Err(RecommendError::TooFew(format!(
                "{} users, {} items and {} targets: one of each per pair expected",
                users.len(),
                items.len(),
                targets.len()
            )));
        }
        Ok(Self {
            users,
            items,
            targets,
        })
    }
}

impl TrainData for PairData {
    type Input = Pairs;

    fn len(&self) -> usize {
        self.users.len()
    }

    /// # Shapes
    /// - output: users and items `[indices.len()]`
    fn inputs(&self, indices: &[usize], device: &Device) -> Pairs {
        let ids = |v: &[usize]| {
            let data: Vec<i64> = indices.iter().map(|&i| v[i] as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(data, [indices.len()]), device)
        };
        Pairs {
            users: ids(&self.users),
            items: ids(&self.items),
        }
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }
}

/// The damped user + item bias baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BiasBaseline {
    /// Mean training rating.
    pub mean: f32,
    /// Bias of each user.
    pub user: Vec<f32>,
    /// Bias of each item.
    pub item: Vec<f32>,
    /// The damping λ.
    pub damping: f32,
}

impl BiasBaseline {
    /// Fits `b_i = Σ(r − μ)/(n_i + λ)`, then `b_u = Σ(r − μ − b_i)/(n_u + λ)`.
    pub fn fit(
        users: &[usize],
        items: &[usize],
        ratings: &[f32],
        n_users: usize,
        n_items: usize,
        damping: f32,
    ) -> Self {
        let mean =
            (ratings.iter().map(|&r| r as f64).sum::<f64>() / ratings.len().max(1) as f64) as f32;
        let mut sum = vec![0f64; n_items];
        let mut count = vec![0f64; n_items];
        for (&i, &r) in items.iter().zip(ratings) {
            sum[i] += (r - mean) as f64;
            count[i] += 1.0;
        }
        let item: Vec<f32> = (0..n_items)
            .map(|i| (sum[i] / (count[i] + damping as f64)) as f32)
            .collect();
        let mut sum = vec![0f64; n_users];
        let mut count = vec![0f64; n_users];
        for ((&u, &i), &r) in users.iter().zip(items).zip(ratings) {
            sum[u] += (r - mean - item[i]) as f64;
            count[u] += 1.0;
        }
        let user = (0..n_users)
            .map(|u| (sum[u] / (count[u] + damping as f64)) as f32)
            .collect();
        Self {
            mean,
            user,
            item,
            damping,
        }
    }

    /// The prediction for a pair; an unknown user or item adds no bias.
    pub fn predict(&self, user: Option<usize>, item: Option<usize>) -> f32 {
        self.mean + user.map_or(0.0, |u| self.user[u]) + item.map_or(0.0, |i| self.item[i])
    }
}

/// RMSE and MAE of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorScores {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
}

impl ErrorScores {
    /// Scores `predictions` against `targets`.
    pub fn compute(predictions: &[f32], targets: &[f32]) -> Self {
        let n = targets.len().max(1) as f64;
        let (mut se, mut ae) = (0f64, 0f64);
        for (&p, &t) in predictions.iter().zip(targets) {
            let e = (p - t) as f64;
            se += e * e;
            ae += e.abs();
        }
        Self {
            rmse: (se / n).sqrt(),
            mae: ae / n,
        }
    }
}

/// Settings of the job. Defaults: those of `examples/recommender.rs` on MovieLens, chosen on
/// the validation part (seed 42; validation RMSE of the kept epoch): Adam lr 1e-3, weight
/// decay 3e-4, `init_std` 0.02, d 32 → 0.8557; against weight decay 1e-4 (0.869, overfits
/// by epoch 4), 5e-4 (0.8608), 1e-3 (0.8716, stuck at the baseline), `init_std` 0.05
/// (0.8582), d 64 (0.8547, twice the time) and trained biases (0.868).
#[derive(Debug, Clone)]
pub struct RecommendConfig {
    /// The declared range of ratings (`--rating-range 0.5-5`): a rating outside it is an
    /// error naming the file and line; `None` takes the data's own minimum and maximum.
    /// Predictions are clipped to the range.
    pub rating_range: Option<RatingRange>,
    /// Seed of the splits, negative sampling, initialisation and shuffling.
    pub seed: u64,
    /// Share of the ratings held out for testing (explicit).
    pub test_fraction: f64,
    /// Share of the training part used for validation.
    pub valid_fraction: f64,
    /// Bias damping λ; `None` chooses it on the validation part among 5, 10, 15, 20, 25.
    pub damping: Option<f32>,
    /// Embedding width of the rating model.
    pub d_embed: usize,
    /// Epochs (upper bound; early stopping on the validation part).
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// The optimizer of the rating model (its weight decay is the L2 penalty on every
    /// embedding and bias).
    pub optimizer: OptimizerConfig,
    /// Standard deviation of the initial embeddings of the rating model.
    pub init_std: f64,
    /// Train the user and item biases of the rating model from their warm start; when
    /// `false` they stay the damped baseline's (and after training are replaced by the
    /// baseline fitted on the whole training part, validation included).
    pub train_biases: bool,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// The ranking model's settings.
    pub ranking: RankingConfig,
    /// Progress display of training.
    pub progress: Progress,
}

/// Settings of the implicit-feedback ranking. Defaults chosen on the validation loss
/// (seed 42, cross-entropy on held-out sampled pairs): `Dot` with weight decay 3e-5 → 0.2690,
/// against weight decay 0 (0.2879) and 1e-4 (0.2721), and `Mlp` (64, 32) without weight decay
/// (0.3282). (`Mlp` with weight decay 1e-4 ranks about as well as the default but trains
/// ten times as long, ≈ 60 s.)
#[derive(Debug, Clone)]
pub struct RankingConfig {
    /// Negative samples per positive.
    pub negatives: usize,
    /// Sampled items the held-out item is ranked among.
    pub candidates: usize,
    /// The cut-off `k` of HR@k and NDCG@k.
    pub k: usize,
    /// Embedding width.
    pub d_embed: usize,
    /// `Mlp`: concatenated embeddings into the MLP head; `Dot`: dot product plus biases into
    /// a 1→2 head (`hidden` ignored).
    pub interaction: Interaction,
    /// Standard deviation of the initial embeddings.
    pub init_std: f64,
    /// Hidden widths of the MLP head.
    pub hidden: Vec<usize>,
    /// Epochs (upper bound; early stopping).
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam's (L2) weight decay.
    pub weight_decay: f64,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        Self {
            rating_range: None,
            seed: 42,
            test_fraction: 0.2,
            valid_fraction: 0.1,
            damping: None,
            d_embed: 32,
            epochs: 30,
            batch_size: 256,
            lr: 1e-3,
            optimizer: adam(3e-4),
            init_std: 0.02,
            train_biases: false,
            patience: 3,
            ranking: RankingConfig::default(),
            progress: Progress::Plain,
        }
    }
}

impl Default for RankingConfig {
    fn default() -> Self {
        Self {
            negatives: 4,
            candidates: 100,
            k: 10,
            d_embed: 32,
            interaction: Interaction::Dot,
            init_std: 0.05,
            hidden: vec![64, 32],
            epochs: 10,
            batch_size: 1024,
            lr: 1e-3,
            weight_decay: 3e-5,
        }
    }
}

fn fraction(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(RecommendError::Config {
            field: field.into(),
            expected: "a fraction in (0, 1)".into(),
            found: v.to_string(),
        })
    }
}

/// What [`fit_ratings`] measured on the test part.
#[derive(Debug, Clone)]
pub struct RatingsReport {
    /// Ratings used to train, validate and test.
    pub n_train: usize,
    /// Validation ratings (part of the training 1 − `test_fraction`).
    pub n_valid: usize,
    /// Test ratings.
    pub n_test: usize,
    /// Test ratings whose user or item never occurs in training (predicted by the bias
    /// baseline).
    pub n_fallback: usize,
    /// The damping λ used.
    pub damping: f32,
    /// The global mean rating's scores.
    pub global_mean: ErrorScores,
    /// The damped bias baseline's scores (fitted on the whole training part).
    pub bias: ErrorScores,
    /// The matrix factorisation's scores.
    pub model: ErrorScores,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// The model's validation RMSE at that epoch (the measure every choice was made on).
    pub valid_rmse: f64,
    /// The model's layers, output shapes and parameters.
    pub summary: sora_core::Summary,
    /// Training time in seconds.
    pub seconds: f64,
}

fn split(n: usize, fraction: f64, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let n_held = ((n as f64) * fraction).round() as usize;
    let held = order[..n_held].to_vec();
    (order[n_held..].to_vec(), held)
}

fn adam(weight_decay: f64) -> OptimizerConfig {
    match OptimizerConfig::adam() {
        OptimizerConfig::Adam {
            beta_1,
            beta_2,
            epsilon,
            ..
        } => OptimizerConfig::Adam {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        },
        other => other,
    }
}

/// Trains and tests biased matrix factorisation on explicit ratings (see the
/// [module](self) documentation for the protocol).
pub fn fit_ratings(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RatingsReport, RatingModel)> {
    fraction("test_fraction", config.test_fraction)?;
    fraction("valid_fraction", config.valid_fraction)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (train, test) = split(ratings.len(), config.test_fraction, &mut rng);
    let (fit, valid) = split(train.len(), config.valid_fraction, &mut rng);
    let fit: Vec<usize> = fit.iter().map(|&i| train[i]).collect();
    let valid: Vec<usize> = valid.iter().map(|&i| train[i]).collect();
    if fit.is_empty() || valid.is_empty() || test.is_empty() {
        return Err(RecommendError::TooFew(format!(
            "{}: {} ratings are too few for a training, validation and test part",
            ratings.source,
            ratings.len()
        )));
    }
    let users = IdIndex::build(train.iter().map(|&r| ratings.users[r].as_str()));
    let items = IdIndex::build(train.iter().map(|&r| ratings.items[r].as_str()));
    let (nu, ni) = (users.len(), items.len());
    // Every validation id is in `users`/`items` (they index the whole training part).
    let idx = |rows: &[usize]| -> (Vec<usize>, Vec<usize>, Vec<f32>) {
        let u = rows
            .iter()
            .map(|&r| users.get(&ratings.users[r]).expect("training id"))
            .collect();
        let i = rows
            .iter()
            .map(|&r| items.get(&ratings.items[r]).expect("training id"))
            .collect();
        (u, i, rows.iter().map(|&r| ratings.ratings[r]).collect())
    };
    let (fu, fi, fr) = idx(&fit);
    let (vu, vi, vr) = idx(&valid);
    let (tu, ti, tr) = idx(&train);
    let clamp = |p: f32| p.clamp(ratings.range.min, ratings.range.max);
    let score_valid = |b: &BiasBaseline| {
        let p: Vec<f32> = vu
            .iter()
            .zip(&vi)
            .map(|(&u, &i)| clamp(b.predict(Some(u), Some(i))))
            .collect();
        ErrorScores::compute(&p, &vr).rmse
    };
    let damping = match config.damping {
        Some(d) => d,
        None => [5.0, 10.0, 15.0, 20.0, 25.0]
            .into_iter()
            .map(|d| (d, score_valid(&BiasBaseline::fit(&fu, &fi, &fr, nu, ni, d))))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(d, _)| d)
            .expect("a non-empty grid"),
    };
    let warm = BiasBaseline::fit(&fu, &fi, &fr, nu, ni, damping);
    let full = BiasBaseline::fit(&tu, &ti, &tr, nu, ni, damping);

    let start = Instant::now();
    let spec = ModelSpec::new(
        RatingsSpec {
            init_std: config.init_std,
            ..RatingsSpec::dot(nu, ni, config.d_embed)
        },
        HeadSpec::new(&[]),
        Task::Regression { n_targets: 1 },
    )
    .check()?;
    let train_config = TrainConfig::new(config.epochs, config.batch_size, config.lr)
        .with_optimizer(config.optimizer.clone())
        .with_early_stopping(config.patience, 0.0)
        .with_seed(config.seed)
        .with_progress(config.progress);
    let trainer = Trainer::new(train_config.clone(), device);
    let mut model = trainer.init(&spec);
    model.encoder = model
        .encoder
        .with_biases(&warm.user, &warm.item, config.train_biases);
    let dev = trainer.train_device();
    model.head.output.weight = Param::from_tensor(Tensor::ones([1, 1], &dev));
    model.head.output.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![warm.mean], [1]),
        &dev,
    )));
    let values = |r: Vec<f32>| Targets::Values { values: r, d: 1 };
    let fit_data = PairData::new(fu, fi, values(fr))?;
    let valid_data = PairData::new(vu, vi, values(vr))?;
    let mut fitted = trainer.fit(model, &fit_data, Some(&valid_data))?;
    let seconds = start.elapsed().as_secs_f64();
    let valid_rmse = fitted
        .history
        .epochs
        .get(fitted.best_epoch.saturating_sub(1))
        .and_then(|e| e.valid_loss)
        .map_or(f64::NAN, f64::sqrt);
    if !config.train_biases {
        // The fixed biases are the baseline's; after early stopping, the baseline fitted on
        // the whole training part (validation included) takes their place.
        fitted.model.encoder = fitted
            .model
            .encoder
            .with_biases(&full.user, &full.item, false);
    }

    // Test: known pairs through the model, the rest through the bias baseline.
    let targets: Vec<f32> = test.iter().map(|&r| ratings.ratings[r]).collect();
    let ids: Vec<(Option<usize>, Option<usize>)> = test
        .iter()
        .map(|&r| (users.get(&ratings.users[r]), items.get(&ratings.items[r])))
        .collect();
    let known: Vec<usize> = (0..test.len())
        .filter(|&k| ids[k].0.is_some() && ids[k].1.is_some())
        .collect();
    let known_data = PairData::new(
        known.iter().map(|&k| ids[k].0.unwrap()).collect(),
        known.iter().map(|&k| ids[k].1.unwrap()).collect(),
        values(vec![0.0; known.len()]),
    )?;
    let predicted = trainer.predict(&fitted.model, &known_data)?;
    let mut model_pred: Vec<f32> = ids
        .iter()
        .map(|&(u, i)| clamp(full.predict(u, i)))
        .collect();
    for (&k, &p) in known.iter().zip(&predicted) {
        model_pred[k] = clamp(p);
    }
    let bias_pred: Vec<f32> = ids
        .iter()
        .map(|&(u, i)| clamp(full.predict(u, i)))
        .collect();
    let mean_pred = vec![full.mean; test.len()];
    let mut rated = vec![Vec::new(); nu];
    for (&u, &i) in tu.iter().zip(&ti) {
        rated[u].push(i);
    }
    for list in &mut rated {
        list.sort_unstable();
        list.dedup();
    }
    let report = RatingsReport {
        n_train: fit.len(),
        n_valid: valid.len(),
        n_test: test.len(),
        n_fallback: test.len() - known.len(),
        damping,
        global_mean: ErrorScores::compute(&mean_pred, &targets),
        bias: ErrorScores::compute(&bias_pred, &targets),
        model: ErrorScores::compute(&model_pred, &targets),
        best_epoch: fitted.best_epoch,
        valid_rmse,
        summary: spec.summary().clone(),
        seconds,
    };
    let model = RatingModel {
        spec,
        model: fitted.model,
        users,
        items,
        rated,
        baseline: full,
        range: ratings.range,
        train_config,
        device: device.clone().without_autodiff(),
    };
    Ok((report, model))
}

/// A predicted rating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingPrediction {
    /// The rating, clipped to the model's range.
    pub value: f32,
    /// `true` when the user or the item never occurred in training, so the value is the
    /// bias baseline's (global mean plus the known side's bias).
    pub fallback: bool,
}

/// A trained rating model (biased matrix factorisation) with its ids and bias baseline.
#[derive(Debug)]
pub struct RatingModel {
    spec: CheckedSpec<RatingsSpec>,
    model: Model<RatingsEncoder>,
    users: IdIndex,
    items: IdIndex,
    /// Items each user rated in training, sorted, by index.
    rated: Vec<Vec<usize>>,
    baseline: BiasBaseline,
    range: RatingRange,
    train_config: TrainConfig,
    device: Device,
}

impl RatingModel {
    /// The declared (or observed) rating range; predictions are clipped to it.
    pub fn range(&self) -> RatingRange {
        self.range
    }

    /// The damped bias baseline fitted on the training part.
    pub fn baseline(&self) -> &BiasBaseline {
        &self.baseline
    }

    /// Predicted ratings of `(user, item)` pairs: known pairs through the model, pairs with
    /// an unknown user or item through the bias baseline (flagged `fallback`).
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<RatingPrediction>> {
        let ids: Vec<(Option<usize>, Option<usize>)> = pairs
            .iter()
            .map(|(u, i)| (self.users.get(u), self.items.get(i)))
            .collect();
        let clamp = |p: f32| p.clamp(self.range.min, self.range.max);
        let mut out: Vec<RatingPrediction> = ids
            .iter()
            .map(|&(u, i)| RatingPrediction {
                value: clamp(self.baseline.predict(u, i)),
                fallback: true,
            })
            .collect();
        let known: Vec<(usize, usize, usize)> = ids
            .iter()
            .enumerate()
            .filter_map(|(k, &(u, i))| Some((k, u?, i?)))
            .collect();
        if known.is_empty() {
            return Ok(out);
        }
        let data = PairData::new(
            known.iter().map(|&(_, u, _)| u).collect(),
            known.iter().map(|&(_, _, i)| i).collect(),
            Targets::Values {
                values: vec![0.0; known.len()],
                d: 1,
            },
        )?;
        let values = sora_train::predict(&self.model, &data, 4096, &self.device)?;
        for (&(k, _, _), &v) in known.iter().zip(&values) {
            out[k] = RatingPrediction {
                value: clamp(v),
                fallback: false,
            };
        }
        Ok(out)
    }

    /// Scores a labelled set of ratings: the model (unknown pairs through the baseline,
    /// counted), the bias baseline and the global mean, like the test part of
    /// [`fit_ratings`].
    pub fn evaluate(&self, ratings: &Ratings) -> Result<RatingsEvaluation> {
        let pairs: Vec<(&str, &str)> = ratings
            .users
            .iter()
            .zip(&ratings.items)
            .map(|(u, i)| (u.as_str(), i.as_str()))
            .collect();
        let predicted = self.predict(&pairs)?;
        let model: Vec<f32> = predicted.iter().map(|p| p.value).collect();
        let clamp = |p: f32| p.clamp(self.range.min, self.range.max);
        let bias: Vec<f32> = pairs
            .iter()
            .map(|(u, i)| clamp(self.baseline.predict(self.users.get(u), self.items.get(i))))
            .collect();
        let mean = vec![clamp(self.baseline.mean); pairs.len()];
        Ok(RatingsEvaluation {
            n: pairs.len(),
            n_fallback: predicted.iter().filter(|p| p.fallback).count(),
            model: ErrorScores::compute(&model, &ratings.ratings),
            bias: ErrorScores::compute(&bias, &ratings.ratings),
            global_mean: ErrorScores::compute(&mean, &ratings.ratings),
        })
    }

    /// The items `user` rated in training whose learned vectors lie closest to `item`'s
    /// (see [`Recommender::supporting_items`]).
    pub fn supporting_items(&self, user: &str, item: &str, k: usize) -> Result<Vec<Recommended>> {
        let Some(u) = self.users.get(user) else {
            return Ok(Vec::new());
        };
        supporting(
            &self.model,
            &self.items,
            self.rated[u].iter().copied(),
            item,
            k,
        )
    }

    /// The `n` unrated items with the highest predicted rating for `user`; an unknown user
    /// gets the most rated items (`popularity_fallback`, scored by their share of users).
    pub fn recommend(&self, user: &str, n: usize) -> Result<Recommendations> {
        let Some(u) = self.users.get(user) else {
            let mut count = vec![0usize; self.items.len()];
            for list in &self.rated {
                for &i in list {
                    count[i] += 1;
                }
            }
            return Ok(popular(&self.items, &count, self.users.len(), n));
        };
        let candidates: Vec<usize> = (0..self.items.len())
            .filter(|i| self.rated[u].binary_search(i).is_err())
            .collect();
        let data = PairData::new(
            vec![u; candidates.len()],
            candidates.clone(),
            Targets::Values {
                values: vec![0.0; candidates.len()],
                d: 1,
            },
        )?;
        let scores = sora_train::predict(&self.model, &data, 4096, &self.device)?;
        Ok(top_n(&self.items, &candidates, &scores, n))
    }
}

/// The items among `history` whose learned vectors (the model's item table) lie closest to
/// `item`'s, by cosine similarity, best first.
fn supporting(
    model: &Model<RatingsEncoder>,
    items: &IdIndex,
    history: impl Iterator<Item = usize>,
    item: &str,
    k: usize,
) -> Result<Vec<Recommended>> {
    let target = items.get(item).ok_or_else(|| RecommendError::UnknownItem {
        item: item.to_string(),
    })?;
    let table = model
        .encoder
        .item
        .weight
        .val()
        .try_into_vec_as::<f32>()
        .map_err(|e| RecommendError::Backend(format!("cannot read the item table: {e:?}")))?;
    let d = table.len() / items.len().max(1);
    let vector = |i: usize| &table[i * d..(i + 1) * d];
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let t = vector(target);
    let mut support: Vec<Recommended> = history
        .filter(|&j| j != target)
        .map(|j| {
            let v = vector(j);
            let dot: f32 = t.iter().zip(v).map(|(a, b)| a * b).sum();
            Recommended {
                item: items.name(j).to_string(),
                score: dot / (norm(t) * norm(v)),
            }
        })
        .collect();
    support.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    support.truncate(k);
    Ok(support)
}

/// A saved rating model scored on a labelled set ([`RatingModel::evaluate`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingsEvaluation {
    /// Ratings scored.
    pub n: usize,
    /// Of which predicted by the bias baseline (unknown user or item).
    pub n_fallback: usize,
    /// The model's scores.
    pub model: ErrorScores,
    /// The damped bias baseline's scores.
    pub bias: ErrorScores,
    /// The global mean's scores.
    pub global_mean: ErrorScores,
}

/// The `n` items with the most interactions, scored by their share of `n_users`.
fn popular(items: &IdIndex, count: &[usize], n_users: usize, n: usize) -> Recommendations {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| count[b].cmp(&count[a]).then(a.cmp(&b)));
    Recommendations {
        items: order
            .into_iter()
            .take(n)
            .map(|i| Recommended {
                item: items.name(i).to_string(),
                score: count[i] as f32 / n_users.max(1) as f32,
            })
            .collect(),
        popularity_fallback: true,
    }
}

/// The `n` best-scored `candidates` (ties by index).
fn top_n(items: &IdIndex, candidates: &[usize], scores: &[f32], n: usize) -> Recommendations {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    Recommendations {
        items: order
            .into_iter()
            .take(n)
            .map(|k| Recommended {
                item: items.name(candidates[k]).to_string(),
                score: scores[k],
            })
            .collect(),
        popularity_fallback: false,
    }
}

/// Ranking quality: hit rate and NDCG at `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankScores {
    /// Share of users whose held-out item ranks in the top `k`.
    pub hit_rate: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
}

impl RankScores {
    /// Scores the ranks (0-based) of held-out items at cut-off `k`.
    pub fn compute(ranks: &[usize], k: usize) -> Self {
        let n = ranks.len().max(1) as f64;
        let hits = ranks.iter().filter(|&&r| r < k).count() as f64;
        let ndcg: f64 = ranks
            .iter()
            .filter(|&&r| r < k)
            .map(|&r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        Self {
            hit_rate: hits / n,
            ndcg: ndcg / n,
        }
    }
}

/// The rank of `scores[0]` (the held-out item) among all `scores`; ties count against it.
fn rank_of_first(scores: &[f32]) -> usize {
    scores[1..].iter().filter(|&&s| s >= scores[0]).count()
}

/// What [`fit_ranking`] measured.
#[derive(Debug, Clone)]
pub struct RankingReport {
    /// Training interactions (positives).
    pub n_positives: usize,
    /// Training samples, positives and negatives.
    pub n_samples: usize,
    /// Users evaluated.
    pub n_users_tested: usize,
    /// Users skipped: their held-out item never occurs in training.
    pub n_users_skipped: usize,
    /// The cut-off.
    pub k: usize,
    /// Candidates per user (held-out item included).
    pub n_candidates: usize,
    /// The model's scores.
    pub model: RankScores,
    /// The popularity ranking's scores.
    pub popularity: RankScores,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// The model's layers, output shapes and parameters.
    pub summary: sora_core::Summary,
    /// Training time in seconds.
    pub seconds: f64,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended {
    /// The item id, as in the data.
    pub item: String,
    /// The model's probability of interaction (for popularity: the share of users).
    pub score: f32,
}

/// A user's top-N list.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    /// Best first.
    pub items: Vec<Recommended>,
    /// `true` when the user is unknown and the list is the most popular items.
    pub popularity_fallback: bool,
}

/// A trained ranking model with what it needs to recommend.
#[derive(Debug)]
pub struct Recommender {
    spec: CheckedSpec<RatingsSpec>,
    model: Model<RatingsEncoder>,
    users: IdIndex,
    items: IdIndex,
    seen: Vec<HashSet<usize>>,
    popularity: Vec<usize>,
    n_users_total: usize,
    device: Device,
}

impl Recommender {
    /// The `n` best items for `user` among those they have not rated in training. An unknown
    /// user gets the `n` most popular items (`popularity_fallback`).
    pub fn predict(&self, user: &str, n: usize) -> Result<Recommendations> {
        let Some(u) = self.users.get(user) else {
            return Ok(popular(
                &self.items,
                &self.popularity,
                self.n_users_total,
                n,
            ));
        };
        let candidates: Vec<usize> = (0..self.items.len())
            .filter(|i| !self.seen[u].contains(i))
            .collect();
        let scores = self.scores(u, &candidates)?;
        Ok(top_n(&self.items, &candidates, &scores, n))
    }

    /// The items `user` rated in training that most support recommending `item`: the `k`
    /// whose learned item vectors are closest to `item`'s (cosine similarity), best first —
    /// the model scores items by their vectors, so items it places near the recommendation
    /// and that the user chose are what the recommendation leans on. Empty for an unknown
    /// user; an unknown item is an error.
    pub fn supporting_items(&self, user: &str, item: &str, k: usize) -> Result<Vec<Recommended>> {
        let Some(u) = self.users.get(user) else {
            return Ok(Vec::new());
        };
        supporting(
            &self.model,
            &self.items,
            self.seen[u].iter().copied(),
            item,
            k,
        )
    }

    /// Probability of interaction for `user` (an index) with each of `items`.
    fn scores(&self, user: usize, items: &[usize]) -> Result<Vec<f32>> {
        let data = PairData::new(
            vec![user; items.len()],
            items.to_vec(),
            Targets::Classes {
                labels: vec![0; items.len()],
                n_classes: 2,
            },
        )?;
        let probs = sora_train::predict(&self.model, &data, 4096, &self.device)?;
        Ok(probs.chunks(2).map(|p| p[1]).collect())
    }
}

/// Trains the implicit-feedback ranker and measures it against popularity (see the
/// [module](self) documentation for the protocol).
pub fn fit_ranking(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RankingReport, Recommender)> {
    let rc = &config.ranking;
    fraction("valid_fraction", config.valid_fraction)?;
    let times = ratings
        .timestamps
        .as_ref()
        .ok_or_else(|| RecommendError::NoTimestamps {
            file: ratings.source.clone(),
        })?;
    // Each user's rows, ordered by time (then by row).
    let mut by_user: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut user_order = Vec::new();
    for (r, u) in ratings.users.iter().enumerate() {
        by_user
            .entry(u.as_str())
            .or_insert_with(|| {
                user_order.push(u.as_str());
                Vec::new()
            })
            .push(r);
    }
    let mut train_rows = Vec::new();
    let mut held = Vec::new();
    for u in &user_order {
        let rows = by_user.get_mut(u).expect("indexed");
        rows.sort_by_key(|&r| (times[r], r));
        if rows.len() >= 2 {
            held.push(*rows.last().expect("non-empty"));
            train_rows.extend_from_slice(&rows[..rows.len() - 1]);
        } else {
            train_rows.extend_from_slice(rows);
        }
    }
    let users = IdIndex::build(train_rows.iter().map(|&r| ratings.users[r].as_str()));
    let items = IdIndex::build(train_rows.iter().map(|&r| ratings.items[r].as_str()));
    let (nu, ni) = (users.len(), items.len());
    // Items each user rated anywhere (training or held out), by training index.
    let mut seen = vec![HashSet::new(); nu];
    let mut popularity = vec![0usize; ni];
    for r in 0..ratings.len() {
        if let (Some(u), Some(i)) = (users.get(&ratings.users[r]), items.get(&ratings.items[r])) {
            seen[u].insert(i);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5EED_F4A4);
    let sample_unseen = |u: usize, rng: &mut ChaCha8Rng| loop {
        let i = rng.random_range(0..ni);
        if !seen[u].contains(&i) {
            return i;
        }
    };
    let (mut su, mut si, mut sl) = (Vec::new(), Vec::new(), Vec::new());
    for &r in &train_rows {
        let u = users.get(&ratings.users[r]).expect("training id");
        let i = items.get(&ratings.items[r]).expect("training id");
        popularity[i] += 1;
        su.push(u);
        si.push(i);
        sl.push(1);
        if seen[u].len() < ni {
            for _ in 0..rc.negatives {
                su.push(u);
                si.push(sample_unseen(u, &mut rng));
                sl.push(0);
            }
        }
    }
    let n_samples = sl.len();
    let (fit, valid) = split(n_samples, config.valid_fraction.min(0.05), &mut rng);
    let part = |rows: &[usize]| {
        PairData::new(
            rows.iter().map(|&k| su[k]).collect(),
            rows.iter().map(|&k| si[k]).collect(),
            Targets::Classes {
                labels: rows.iter().map(|&k| sl[k]).collect(),
                n_classes: 2,
            },
        )
    };
    let (fit_data, valid_data) = (part(&fit)?, part(&valid)?);

    let start = Instant::now();
    let hidden: &[usize] = match rc.interaction {
        Interaction::Mlp => &rc.hidden,
        Interaction::Dot => &[],
    };
    let spec = ModelSpec::new(
        RatingsSpec {
            model: rc.interaction,
            init_std: rc.init_std,
            ..RatingsSpec::mlp(nu, ni, rc.d_embed)
        },
        HeadSpec::new(hidden),
        Task::Classification { n_classes: 2 },
    )
    .check()?;
    let train_config = TrainConfig::new(rc.epochs, rc.batch_size, rc.lr)
        .with_optimizer(adam(rc.weight_decay))
        .with_early_stopping(config.patience, 0.0)
        .with_seed(config.seed)
        .with_progress(config.progress);
    let trainer = Trainer::new(train_config, device);
    let fitted = trainer.fit(trainer.init(&spec), &fit_data, Some(&valid_data))?;
    let seconds = start.elapsed().as_secs_f64();
    let recommender = Recommender {
        spec: spec.clone(),
        model: fitted.model,
        users,
        items,
        seen,
        popularity,
        n_users_total: user_order.len(),
        device: device.clone().without_autodiff(),
    };

    // Evaluation: the held-out item first, then `candidates` sampled unseen items.
    let mut eval_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xE7A1);
    let (mut model_ranks, mut pop_ranks) = (Vec::new(), Vec::new());
    let mut skipped = 0;
    let mut lists = Vec::new();
    for &r in &held {
        let u = recommender
            .users
            .get(&ratings.users[r])
            .expect("users with a held-out item train");
        let Some(target) = recommender.items.get(&ratings.items[r]) else {
            skipped += 1;
            continue;
        };
        let unseen = ni - recommender.seen[u].len();
        let mut list = vec![target];
        let mut chosen = HashSet::new();
        while chosen.len() < rc.candidates.min(unseen) {
            let i = eval_rng.random_range(0..ni);
            if !recommender.seen[u].contains(&i) && chosen.insert(i) {
                list.push(i);
            }
        }
        lists.push((u, list));
    }
    for (u, list) in &lists {
        let scores = recommender.scores(*u, list)?;
        model_ranks.push(rank_of_first(&scores));
        let pop: Vec<f32> = list
            .iter()
            .map(|&i| recommender.popularity[i] as f32)
            .collect();
        pop_ranks.push(rank_of_first(&pop));
    }
    let report = RankingReport {
        n_positives: train_rows.len(),
        n_samples,
        n_users_tested: lists.len(),
        n_users_skipped: skipped,
        k: rc.k,
        n_candidates: rc.candidates + 1,
        model: RankScores::compute(&model_ranks, rc.k),
        popularity: RankScores::compute(&pop_ranks, rc.k),
        best_epoch: fitted.best_epoch,
        summary: spec.summary().clone(),
        seconds,
    };
    Ok((report, recommender))
}

/// The file of a recommender's model directory that holds its ids, histories, baselines
/// and test scores (its presence marks the directory as a recommender's).
pub const RECOMMENDER_FILE: &str = "recommender.json";
/// The ranking model's spec inside a recommender's model directory.
pub const RANKING_SPEC_FILE: &str = "ranking_spec.json";
/// The ranking model's weights inside a recommender's model directory.
pub const RANKING_WEIGHTS_FILE: &str = "ranking.safetensors";

/// What the saved models scored on the test part when they were trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestScores {
    /// The rating model on the held-out ratings, beside its baselines.
    pub ratings: RatingsEvaluation,
    /// The ranking model on each user's last interaction, beside popularity.
    pub ranking: Option<RankingTest>,
}

/// The ranking model's leave-last-out test scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankingTest {
    /// The cut-off.
    pub k: usize,
    /// Users evaluated.
    pub n_users: usize,
    /// The model's HR@k and NDCG@k.
    pub model: RankScores,
    /// The popularity ranking's.
    pub popularity: RankScores,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRecommender {
    range: RatingRange,
    users: Vec<String>,
    items: Vec<String>,
    rated: Vec<Vec<usize>>,
    baseline: BiasBaseline,
    test: TestScores,
    ranking: Option<SavedRanking>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRanking {
    users: Vec<String>,
    items: Vec<String>,
    seen: Vec<Vec<usize>>,
    popularity: Vec<usize>,
    n_users_total: usize,
}

/// A recommender as the `sora` program trains, saves and loads it: the rating model and,
/// when the ratings have timestamps, the ranking model.
///
/// The model directory is a rating model's [`ModelDir`](sora_train::ModelDir) (`spec.json`,
/// `model.safetensors`, `train.json`) plus [`RECOMMENDER_FILE`] and, with a ranking model,
/// [`RANKING_SPEC_FILE`] and [`RANKING_WEIGHTS_FILE`]; an existing directory is replaced only
/// once everything has been written.
#[derive(Debug)]
pub struct RecommenderModel {
    /// Predicts ratings; ranks items when there is no ranking model.
    pub rating: RatingModel,
    /// Ranks unseen items by probability of interaction.
    pub ranking: Option<Recommender>,
    /// Test scores at training time.
    pub test: TestScores,
}

/// Trains what [`RecommenderModel`] holds: [`fit_ratings`], then [`fit_ranking`] when the
/// ratings have timestamps.
pub fn train(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RatingsReport, Option<RankingReport>, RecommenderModel)> {
    let (report, rating) = fit_ratings(ratings, config, device)?;
    let (ranking_report, ranking) = match ratings.timestamps {
        Some(_) => {
            let (r, m) = fit_ranking(ratings, config, device)?;
            (Some(r), Some(m))
        }
        None => (None, None),
    };
    let test = TestScores {
        ratings: RatingsEvaluation {
            n: report.n_test,
            n_fallback: report.n_fallback,
            model: report.model,
            bias: report.bias,
            global_mean: report.global_mean,
        },
        ranking: ranking_report.as_ref().map(|r| RankingTest {
            k: r.k,
            n_users: r.n_users_tested,
            model: r.model,
            popularity: r.popularity,
        }),
    };
    let model = RecommenderModel {
        rating,
        ranking,
        test,
    };
    Ok((report, ranking_report, model))
}

impl RecommenderModel {
    /// Whether `dir` holds a recommender (it has [`RECOMMENDER_FILE`]).
    pub fn is_recommender_model(dir: &Path) -> bool {
        dir.join(RECOMMENDER_FILE).is_file()
    }

    /// The `n` best unseen items for `user`: by the ranking model when there is one, else by
    /// predicted rating; an unknown user gets the most popular items.
    pub fn recommend(&self, user: &str, n: usize) -> Result<Recommendations> {
        match &self.ranking {
            Some(r) => r.predict(user, n),
            None => self.rating.recommend(user, n),
        }
    }

    /// The items `user` chose that most support recommending `item` (see
    /// [`Recommender::supporting_items`]), from the model that ranks.
    pub fn supporting_items(&self, user: &str, item: &str, k: usize) -> Result<Vec<Recommended>> {
        match &self.ranking {
            Some(r) => r.supporting_items(user, item, k),
            None => self.rating.supporting_items(user, item, k),
        }
    }

    /// Saves the model directory (see the type's documentation).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let r = &self.rating;
        let saved = SavedRecommender {
            range: r.range,
            users: r.users.names().to_vec(),
            items: r.items.names().to_vec(),
            rated: r.rated.clone(),
            baseline: r.baseline.clone(),
            test: self.test.clone(),
            ranking: self.ranking.as_ref().map(|k| SavedRanking {
                users: k.users.names().to_vec(),
                items: k.items.names().to_vec(),
                seen: k
                    .seen
                    .iter()
                    .map(|s| {
                        let mut v: Vec<usize> = s.iter().copied().collect();
                        v.sort_unstable();
                        v
                    })
                    .collect(),
                popularity: k.popularity.clone(),
                n_users_total: k.n_users_total,
            }),
        };
        let mut extra = vec![(
            RECOMMENDER_FILE,
            serde_json::to_vec(&saved).expect("plain data serialises to JSON"),
        )];
        if let Some(k) = &self.ranking {
            extra.push((
                RANKING_SPEC_FILE,
                k.spec.spec().to_json_string().into_bytes(),
            ));
            extra.push((
                RANKING_WEIGHTS_FILE,
                sora_core::weights::to_safetensors_bytes(&k.model)?,
            ));
        }
        sora_train::ModelDir::new(dir).save(
            &r.spec,
            &r.model,
            &r.train_config,
            None,
            None,
            &extra,
        )?;
        Ok(())
    }

    /// Reads a model directory written by [`save`](Self::save), checking that its files
    /// agree (id counts against the specs' table sizes).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = sora_train::ModelDir::new(dir);
        let bad = |message: String| RecommendError::ModelDir {
            dir: dir.display().to_string(),
            message,
        };
        let saved: SavedRecommender = model_dir
            .read_json(RECOMMENDER_FILE)?
            .ok_or_else(|| bad(format!("no {RECOMMENDER_FILE}: not a recommender")))?;
        let loaded = model_dir.load::<RatingsSpec>(device)?;
        let ids = |names: Vec<String>, what: &str| {
            IdIndex::from_names(names).ok_or_else(|| bad(format!("{what} ids repeat")))
        };
        let fits = |spec: &RatingsSpec, users: &IdIndex, items: &IdIndex, rows: usize| {
            if spec.n_users as usize != users.len() || spec.n_items as usize != items.len() {
                return Err(bad(format!(
                    "the spec takes {} users and {} items, {RECOMMENDER_FILE} lists {} and {}",
                    spec.n_users,
                    spec.n_items,
                    users.len(),
                    items.len()
                )));
            }
            if rows != users.len() {
                return Err(bad(format!(
                    "{RECOMMENDER_FILE}: {rows} item histories for {} users",
                    users.len()
                )));
            }
            Ok(())
        };
        let in_range = |lists: &[Vec<usize>], n: usize| {
            if lists.iter().flatten().any(|&i| i >= n) {
                return Err(bad(format!(
                    "{RECOMMENDER_FILE}: an item history names an item beyond the {n} known"
                )));
            }
            Ok(())
        };
        let (users, items) = (ids(saved.users, "user")?, ids(saved.items, "item")?);
        fits(
            &loaded.spec.spec().encoder,
            &users,
            &items,
            saved.rated.len(),
        )?;
        in_range(&saved.rated, items.len())?;
        if saved.baseline.user.len() != users.len() || saved.baseline.item.len() != items.len() {
            return Err(bad(format!(
                "{RECOMMENDER_FILE}: the baseline's sizes disagree"
            )));
        }
        let device = device.clone().without_autodiff();
        let rating = RatingModel {
            spec: loaded.spec,
            model: loaded.model,
            users,
            items,
            rated: saved.rated,
            baseline: saved.baseline,
            range: saved.range,
            train_config: loaded
                .train_config
                .unwrap_or_else(|| TrainConfig::new(1, 1, 1e-3)),
            device: device.clone(),
        };
        let ranking = match saved.ranking {
            None => None,
            Some(k) => {
                let spec =
                    ModelSpec::<RatingsSpec>::from_file(dir.join(RANKING_SPEC_FILE))?.check()?;
                let model = sora_core::weights::load_safetensors(
                    spec.init(&device),
                    &dir.join(RANKING_WEIGHTS_FILE),
                )?;
                let (users, items) = (ids(k.users, "ranking user")?, ids(k.items, "ranking item")?);
                fits(&spec.spec().encoder, &users, &items, k.seen.len())?;
                in_range(&k.seen, items.len())?;
                if k.popularity.len() != items.len() {
                    return Err(bad(format!(
                        "{RECOMMENDER_FILE}: popularity of {} items for {} items",
                        k.popularity.len(),
                        items.len()
                    )));
                }
                Some(Recommender {
                    spec,
                    model,
                    users,
                    items,
                    seen: k
                        .seen
                        .into_iter()
                        .map(|v| v.into_iter().collect())
                        .collect(),
                    popularity: k.popularity,
                    n_users_total: k.n_users_total,
                    device: device.clone(),
                })
            }
        };
        Ok(Self {
            rating,
            ranking,
            test: saved.test,
        })
    }
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
