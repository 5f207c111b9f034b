//! Implicit feedback: the leave-last-out ranker, beside popularity.

#[allow(unused_imports)]
use super::*;

/// The `n` items with the most interactions, scored by their share of `n_users`.
pub(super) fn popular(
    items: &IdIndex,
    count: &[usize],
    n_users: usize,
    n: usize,
) -> Recommendations {
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
pub(super) fn top_n(
    items: &IdIndex,
    candidates: &[usize],
    scores: &[f32],
    n: usize,
) -> Recommendations {
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
pub(super) fn rank_of_first(scores: &[f32]) -> usize {
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
    pub(super) spec: CheckedSpec<RatingsSpec>,
    pub(super) model: Model<RatingsEncoder>,
    pub(super) users: IdIndex,
    pub(super) items: IdIndex,
    pub(super) seen: Vec<HashSet<usize>>,
    pub(super) popularity: Vec<usize>,
    pub(super) n_users_total: usize,
    pub(super) device: Device,
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
/// [module](super) documentation for the protocol).
pub fn fit_ranking(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RankingReport, Recommender)> {
    fit_ranking_in(ratings, config, &RunContext::quiet(device.clone()))
}

/// [`fit_ranking`] in a run's context: its device and checkpoints (phase `ranking`).
pub(super) fn fit_ranking_in(
    ratings: &Ratings,
    config: &RecommendConfig,
    ctx: &RunContext,
) -> Result<(RankingReport, Recommender)> {
    let device = &ctx.device;
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
    let trainer = ctx.trainer("ranking", train_config)?;
    let fitted = trainer.fit_or_resume(trainer.init(&spec), &fit_data, Some(&valid_data))?;
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
