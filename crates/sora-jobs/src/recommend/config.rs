//! The settings of the recommendation job.

#[allow(unused_imports)]
use super::*;

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

pub(super) fn fraction(field: &str, v: f64) -> Result<()> {
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
