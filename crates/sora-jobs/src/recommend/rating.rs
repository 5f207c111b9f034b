//! Explicit ratings: biased matrix factorisation, beside its baselines.

#[allow(unused_imports)]
use super::*;

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

pub(super) fn split(n: usize, fraction: f64, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let n_held = ((n as f64) * fraction).round() as usize;
    let held = order[..n_held].to_vec();
    (order[n_held..].to_vec(), held)
}

pub(super) fn adam(weight_decay: f64) -> OptimizerConfig {
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
/// [module](super) documentation for the protocol).
pub fn fit_ratings(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RatingsReport, RatingModel)> {
    fit_ratings_in(ratings, config, &RunContext::quiet(device.clone()))
}

/// [`fit_ratings`] in a run's context: its device and checkpoints (phase `rating`).
pub(super) fn fit_ratings_in(
    ratings: &Ratings,
    config: &RecommendConfig,
    ctx: &RunContext,
) -> Result<(RatingsReport, RatingModel)> {
    let device = &ctx.device;
    fraction("test_fraction", config.test_fraction)?;
    fraction("valid_fraction", config.valid_fraction)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (train, test) = split(ratings.len(), config.test_fraction, &mut rng);
    let (fit, valid) = split(train.len(), config.valid_fraction, &mut rng);
    let fit: Vec<usize> = fit.iter().map(|&i| train[i]).collect();
    let valid: Vec<usize> = valid.iter().map(|&i| train[i]).collect();
    if fit.is_empty() || valid.is_empty() || test.is_empty() {
        return Err(RecommendError::TooFew {
            file: ratings.source.clone(),
            n: ratings.len(),
        });
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
    let trainer = ctx.trainer("rating", train_config.clone())?;
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
    let mut fitted = trainer.fit_or_resume(model, &fit_data, Some(&valid_data))?;
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
    pub(super) spec: CheckedSpec<RatingsSpec>,
    pub(super) model: Model<RatingsEncoder>,
    pub(super) users: IdIndex,
    pub(super) items: IdIndex,
    /// Items each user rated in training, sorted, by index.
    pub(super) rated: Vec<Vec<usize>>,
    pub(super) baseline: BiasBaseline,
    pub(super) range: RatingRange,
    pub(super) train_config: TrainConfig,
    pub(super) device: Device,
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
pub(super) fn supporting(
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
        .map_err(|e| RecommendError::Backend {
            message: format!("{e:?}"),
        })?;
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
