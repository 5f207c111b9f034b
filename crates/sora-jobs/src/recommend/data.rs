//! Ids, (user, item) training pairs, the bias baseline and error scores.

#[allow(unused_imports)]
use super::*;

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
    pub(super) users: Vec<usize>,
    pub(super) items: Vec<usize>,
    pub(super) targets: Targets,
}

impl PairData {
    /// One target per pair (ratings as `Targets::Values { d: 1 }`, interactions as two
    /// classes). Fails when the lengths differ.
    pub fn new(users: Vec<usize>, items: Vec<usize>, targets: Targets) -> Result<Self> {
        if users.len() != items.len() || targets.len() != users.len() {
            return Err(RecommendError::LengthMismatch {
                users: users.len(),
                items: items.len(),
                targets: targets.len(),
            });
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
