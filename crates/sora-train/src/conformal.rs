//! Split-conformal prediction: prediction sets for a classifier and intervals for a
//! regressor that hold the true value with at least the asked-for probability, whatever the
//! model, as long as the calibration rows and the new rows are exchangeable (e.g. drawn from
//! the same distribution).
//!
//! Calibration scores each held-out row's nonconformity `s_i`; with `n` rows and coverage
//! `1 − α`, `q̂` is the `k`-th smallest score, `k = ⌈(n + 1)(1 − α)⌉`. A new row's set (or
//! interval) holds every value whose score is `≤ q̂`, which covers the truth with probability
//! at least `1 − α` (Vovk et al. 2005; Angelopoulos & Bates, "A Gentle Introduction to
//! Conformal Prediction", 2021). `k` is computed as `⌈(n + 1)(1 − α) − 10⁻⁹⌉` so that decimal
//! coverages such as 0.9 give the exact integer despite rounding in binary.
//!
//! When `k > n` — fewer than `1/α − 1` calibration rows — the quantile is infinite and every
//! set would be every class (what MAPIE returns, with a warning), every interval unbounded.
//! Here calibration refuses instead, with [`ConformalError::TooFewRows`] naming how many rows
//! the coverage needs.
//!
//! ```
//! use sora_train::{ConformalClassifier, ConformalScore};
//! # fn main() -> Result<(), sora_train::ConformalError> {
//! // Held-out probabilities (9 rows × 2 classes) and labels.
//! let probs = [
//!     0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.6, 0.4, 0.2, 0.8, //
//!     0.7, 0.3, 0.4, 0.6, 0.95, 0.05, 0.1, 0.9,
//! ];
//! let labels = [0, 0, 1, 1, 1, 0, 1, 0, 1];
//! let conformal = ConformalClassifier::calibrate(&probs, &labels, 2, 0.9, ConformalScore::Lac)?;
//! // 9 rows at 90 %: q̂ is the 9th smallest score, the largest, 1 − 0.4.
//! assert!((conformal.q_hat - 0.6).abs() < 1e-6);
//! let sets = conformal.predict_sets(&[0.99, 0.01, 0.5, 0.5])?;
//! assert_eq!(sets, vec![vec![0], vec![0, 1]]);
//! # Ok(())
//! # }
//! ```

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::argmax;

/// Slack when rounding `(n + 1)(1 − α)` up, so that e.g. `10 × 0.9` is 9 and not 10.
const RANK_SLACK: f64 = 1e-9;

/// Why a conformal predictor could not be calibrated or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformalError {
    /// The coverage is not strictly between 0 and 1.
    #[error("--coverage {value}: expected a number strictly between 0 and 1")]
    Coverage {
        /// The coverage given.
        value: f64,
    },
    /// Too few calibration rows for a finite quantile at the coverage.
    #[error(
        "--coverage {coverage}: a finite conformal quantile needs at least {needed} calibration rows \
         (1/α − 1 with α = {alpha:.6}); found {rows}"
    )]
    TooFewRows {
        /// The coverage asked for.
        coverage: f64,
        /// `α = 1 − coverage`.
        alpha: f64,
        /// The fewest rows that give a finite quantile.
        needed: usize,
        /// Rows given.
        rows: usize,
    },
    /// Fewer than two classes, or no regression target.
    #[error("conformal: expected {expected}, found {found}")]
    Width {
        /// What was expected, e.g. `at least 2 classes`.
        expected: &'static str,
        /// The number given.
        found: usize,
    },
    /// A flat slice does not split into rows.
    #[error("conformal: {found} {what} do not split into rows of {width}")]
    Split {
        /// `probabilities`, `predictions` or `targets`.
        what: &'static str,
        /// Values given.
        found: usize,
        /// Values per row.
        width: usize,
    },
    /// Two slices that should match in length do not.
    #[error("conformal: {found} {what} for {expected} {against}")]
    Lengths {
        /// What was counted, e.g. `rows of probabilities`.
        what: &'static str,
        /// How many.
        found: usize,
        /// What they should match, e.g. `labels`.
        against: &'static str,
        /// How many of those.
        expected: usize,
    },
    /// A label is not below the number of classes.
    #[error("conformal: row {row}: label {label} is out of range for {n_classes} classes")]
    Label {
        /// The row (0-based).
        row: usize,
        /// The label.
        label: usize,
        /// Classes of the task.
        n_classes: usize,
    },
    /// A probability is NaN or outside `[0, 1]`.
    #[error("conformal: row {row}: probability {value} is not in [0, 1]")]
    Probability {
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// A prediction or target is NaN or infinite.
    #[error("conformal: row {row}: {what} {value} is not finite")]
    NonFinite {
        /// `prediction` or `target`.
        what: &'static str,
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// A fitted predictor's field (as loaded, or built by hand) is unusable.
    #[error("conformal: {what} {value} is not {expected}")]
    Fitted {
        /// The field, e.g. `q_hat`.
        what: &'static str,
        /// Its value.
        value: f64,
        /// What it should be.
        expected: &'static str,
    },
    /// A nonconformity score's name is unknown.
    #[error("--conformal-score `{found}`: expected `lac` or `aps`")]
    UnknownScore {
        /// The name given.
        found: String,
    },
}

type Result<T, E = ConformalError> = std::result::Result<T, E>;

/// Checks that `coverage` is strictly between 0 and 1.
fn check_coverage(coverage: f64) -> Result<()> {
    if coverage > 0.0 && coverage < 1.0 {
        Ok(())
    } else {
        Err(ConformalError::Coverage { value: coverage })
    }
}

/// `k = ⌈(n + 1) · coverage⌉` (at least 1): the rank of `q̂` among `n` sorted scores.
fn quantile_rank(n: usize, coverage: f64) -> usize {
    (((n + 1) as f64 * coverage - RANK_SLACK).ceil().max(1.0)) as usize
}

/// The fewest calibration rows whose conformal quantile at `coverage` is finite: the smallest
/// `n` with `⌈(n + 1) · coverage⌉ ≤ n`, i.e. `n ≥ 1/α − 1` with `α = 1 − coverage` (9 at 0.9,
/// 19 at 0.95, 99 at 0.99).
///
/// ```
/// use sora_train::conformal::min_calibration_rows;
/// # fn main() -> Result<(), sora_train::ConformalError> {
/// assert_eq!(min_calibration_rows(0.9)?, 9);
/// assert_eq!(min_calibration_rows(0.95)?, 19);
/// assert!(min_calibration_rows(1.0).is_err());
/// # Ok(())
/// # }
/// ```
pub fn min_calibration_rows(coverage: f64) -> Result<usize> {
    check_coverage(coverage)?;
    let estimate = (coverage / (1.0 - coverage) - RANK_SLACK).ceil().max(1.0);
    let mut n = if estimate < usize::MAX as f64 {
        estimate as usize
    } else {
        usize::MAX / 2
    };
    while quantile_rank(n, coverage) > n {
        n += 1;
    }
    while n > 1 && quantile_rank(n - 1, coverage) < n {
        n -= 1;
    }
    Ok(n)
}

/// `q̂`: the `⌈(n + 1) · coverage⌉`-th smallest score, or [`ConformalError::TooFewRows`].
fn conformal_quantile(mut scores: Vec<f64>, coverage: f64) -> Result<f64> {
    check_coverage(coverage)?;
    let n = scores.len();
    let k = quantile_rank(n, coverage);
    if k > n {
        return Err(ConformalError::TooFewRows {
            coverage,
            alpha: 1.0 - coverage,
            needed: min_calibration_rows(coverage)?,
            rows: n,
        });
    }
    scores.sort_by(f64::total_cmp);
    Ok(scores[k - 1])
}

/// The nonconformity score of a classifier's row and a candidate class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConformalScore {
    /// Least ambiguous set-valued classifier (LAC, MAPIE's `"score"` method; Sadinle et al.
    /// 2019): `1 − p(class)`. The smallest sets on average.
    #[default]
    Lac,
    /// Adaptive prediction sets (APS; Romano et al. 2020), not randomised: the total
    /// probability of the classes ranked strictly above the class (by decreasing probability,
    /// ties by class index). A set is the top classes down to the one whose preceding mass
    /// reaches `q̂`, so it grows where the model is unsure and always holds the top class.
    ///
    /// This is Romano et al.'s randomised score `Σ_{above} p + u · p(class)` with `u = 0`,
    /// used alike in calibration and prediction, so the guarantee holds with coverage close
    /// to the target. (With `u = 1` — mass up to and including the class — a confident
    /// row's set is empty whenever its top probability exceeds `q̂`.) The top class always
    /// scores 0: when it alone is right more often than the coverage, `q̂ = 0`, every set is
    /// the top class, and coverage is the accuracy.
    Aps,
}

impl FromStr for ConformalScore {
    type Err = ConformalError;

    /// Parses `lac` (or `score`, MAPIE's name) or `aps`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lac" | "score" => Ok(Self::Lac),
            "aps" => Ok(Self::Aps),
            _ => Err(ConformalError::UnknownScore {
                found: s.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for ConformalScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lac => "lac",
            Self::Aps => "aps",
        })
    }
}

impl ConformalScore {
    /// Every class's score for one row of probabilities, in class order.
    fn scores(self, row: &[f32]) -> Vec<f64> {
        match self {
            Self::Lac => row.iter().map(|&p| 1.0 - p as f64).collect(),
            Self::Aps => {
                let mut order: Vec<usize> = (0..row.len()).collect();
                // Stable sort: equal probabilities keep class order.
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                let mut scores = vec![0.0; row.len()];
                let mut above = 0.0f64;
                for c in order {
                    scores[c] = above;
                    above += row[c] as f64;
                }
                scores
            }
        }
    }
}

/// A split-conformal classifier: turns a row of class probabilities into the set of classes
/// that holds the true one with probability at least `coverage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformalClassifier {
    /// The nonconformity score.
    pub score: ConformalScore,
    /// The coverage asked for, `1 − α`.
    pub coverage: f64,
    /// The calibrated quantile of the scores: a class is in the set when its score is `≤` it.
    pub q_hat: f64,
    /// Classes of the task.
    pub n_classes: usize,
    /// Calibration rows it was fitted on.
    pub calibration_rows: usize,
    /// Whether a row's set may be empty (no class reaches `q̂`): the sets then hold the
    /// coverage asked for rather than more, as MAPIE's LAC sets do. Otherwise such a row's
    /// set is its arg-max class, and a classifier right more often than the coverage covers
    /// as often as it is right.
    #[serde(default)]
    pub allow_empty: bool,
}

impl ConformalClassifier {
    /// The same classifier, letting sets be empty ([`allow_empty`](Self::allow_empty)).
    pub fn allowing_empty(self) -> Self {
        Self {
            allow_empty: true,
            ..self
        }
    }

    /// Calibrates on held-out row-major probabilities (`n × n_classes`) and labels, which must
    /// not have been used to train or select the model.
    pub fn calibrate(
        probs: &[f32],
        labels: &[usize],
        n_classes: usize,
        coverage: f64,
        score: ConformalScore,
    ) -> Result<Self> {
        check_coverage(coverage)?;
        check_probabilities(probs, n_classes)?;
        let rows = probs.len() / n_classes;
        if rows != labels.len() {
            return Err(ConformalError::Lengths {
                what: "rows of probabilities",
                found: rows,
                against: "labels",
                expected: labels.len(),
            });
        }
        if let Some(row) = labels.iter().position(|&y| y >= n_classes) {
            return Err(ConformalError::Label {
                row,
                label: labels[row],
                n_classes,
            });
        }
        let scores = probs
            .chunks_exact(n_classes)
            .zip(labels)
            .map(|(row, &y)| score.scores(row)[y])
            .collect();
        Ok(Self {
            score,
            coverage,
            q_hat: conformal_quantile(scores, coverage)?,
            n_classes,
            calibration_rows: rows,
            allow_empty: false,
        })
    }

    /// The prediction set of each row of row-major probabilities (`n × n_classes`): the
    /// classes whose score is `≤ q_hat`, in increasing class order.
    ///
    /// Unless [`allow_empty`](Self::allow_empty), a set is never empty. An
    /// [`Aps`](ConformalScore::Aps) set always holds the top class;
    /// for [`Lac`](ConformalScore::Lac), when no class qualifies (a row so unsure that even
    /// its top probability `p` has `1 − p > q_hat`), the arg-max class (the first of equal
    /// ones) is the set. This only raises coverage.
    pub fn predict_sets(&self, probs: &[f32]) -> Result<Vec<Vec<usize>>> {
        if self.q_hat.is_nan() {
            return Err(ConformalError::Fitted {
                what: "q_hat",
                value: self.q_hat,
                expected: "a number",
            });
        }
        check_probabilities(probs, self.n_classes)?;
        Ok(probs
            .chunks_exact(self.n_classes)
            .map(|row| {
                let set: Vec<usize> = self
                    .score
                    .scores(row)
                    .iter()
                    .enumerate()
                    .filter(|&(_, &s)| s <= self.q_hat)
                    .map(|(c, _)| c)
                    .collect();
                if set.is_empty() && !self.allow_empty {
                    vec![argmax(row)]
                } else {
                    set
                }
            })
            .collect())
    }
}

/// Checks `n_classes ≥ 2`, that `probs` splits into rows of it, and that each is in `[0, 1]`.
fn check_probabilities(probs: &[f32], n_classes: usize) -> Result<()> {
    if n_classes < 2 {
        return Err(ConformalError::Width {
            expected: "at least 2 classes",
            found: n_classes,
        });
    }
    if !probs.len().is_multiple_of(n_classes) {
        return Err(ConformalError::Split {
            what: "probabilities",
            found: probs.len(),
            width: n_classes,
        });
    }
    match probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(i) => Err(ConformalError::Probability {
            row: i / n_classes,
            value: probs[i],
        }),
        None => Ok(()),
    }
}

/// A closed prediction interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

impl Interval {
    /// Whether `value` lies in the interval (ends included).
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

/// A split-conformal regressor: turns a prediction `ŷ` into the interval `ŷ ± q̂` that holds
/// the true value with probability at least `coverage`, with one `q̂` per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformalRegressor {
    /// The coverage asked for, `1 − α`, of each target.
    pub coverage: f64,
    /// Per target, the calibrated quantile of the absolute residuals `|y − ŷ|`.
    pub q_hat: Vec<f64>,
    /// Calibration rows it was fitted on.
    pub calibration_rows: usize,
}

impl ConformalRegressor {
    /// Calibrates on held-out row-major predictions and targets (`n × d_output` each), which
    /// must not have been used to train or select the model. Each target gets its own `q̂`,
    /// so each is covered at `coverage` (marginally, not jointly).
    ///
    /// ```
    /// use sora_train::ConformalRegressor;
    /// # fn main() -> Result<(), sora_train::ConformalError> {
    /// let predictions = [1.0, 2.0, 3.0, 4.0];
    /// let targets = [1.5, 1.0, 3.25, 4.0];
    /// // 4 rows at 80 %: q̂ is the ⌈5 × 0.8⌉ = 4th smallest residual, 1.
    /// let conformal = ConformalRegressor::calibrate(&predictions, &targets, 1, 0.8)?;
    /// assert_eq!(conformal.q_hat, vec![1.0]);
    /// let interval = conformal.intervals(&[10.0])?[0];
    /// assert_eq!((interval.lower, interval.upper), (9.0, 11.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn calibrate(
        predictions: &[f32],
        targets: &[f32],
        d_output: usize,
        coverage: f64,
    ) -> Result<Self> {
        check_coverage(coverage)?;
        check_values(predictions, d_output, "predictions", "prediction")?;
        check_values(targets, d_output, "targets", "target")?;
        if predictions.len() != targets.len() {
            return Err(ConformalError::Lengths {
                what: "predictions",
                found: predictions.len(),
                against: "targets",
                expected: targets.len(),
            });
        }
        let rows = targets.len() / d_output;
        let q_hat = (0..d_output)
            .map(|j| {
                let residuals = (0..rows)
                    .map(|i| {
                        let k = i * d_output + j;
                        (targets[k] as f64 - predictions[k] as f64).abs()
                    })
                    .collect();
                conformal_quantile(residuals, coverage)
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(Self {
            coverage,
            q_hat,
            calibration_rows: rows,
        })
    }

    /// The interval of each row-major prediction (`n × d_output`), in the same layout.
    pub fn intervals(&self, predictions: &[f32]) -> Result<Vec<Interval>> {
        let d_output = self.q_hat.len();
        if let Some(&q) = self.q_hat.iter().find(|q| !(q.is_finite() && **q >= 0.0)) {
            return Err(ConformalError::Fitted {
                what: "q_hat",
                value: q,
                expected: "a finite number at least 0",
            });
        }
        check_values(predictions, d_output, "predictions", "prediction")?;
        Ok(predictions
            .iter()
            .zip(self.q_hat.iter().cycle())
            .map(|(&y, &q)| Interval {
                lower: y as f64 - q,
                upper: y as f64 + q,
            })
            .collect())
    }
}

/// Checks `width ≥ 1`, that `values` splits into rows of it, and that each is finite.
fn check_values(values: &[f32], width: usize, what: &'static str, one: &'static str) -> Result<()> {
    if width == 0 {
        return Err(ConformalError::Width {
            expected: "at least 1 target",
            found: width,
        });
    }
    if !values.len().is_multiple_of(width) {
        return Err(ConformalError::Split {
            what,
            found: values.len(),
            width,
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(ConformalError::NonFinite {
            what: one,
            row: i / width,
            value: values[i],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Rows of a 5-class model: softmax of `N(0, 1.5²)` logits, labels drawn from them.
    fn classification(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        const K: usize = 5;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut probs = Vec::with_capacity(n * K);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let z: Vec<f64> = (0..K).map(|_| 1.5 * normal(&mut rng)).collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            let row: Vec<f32> = e.iter().map(|v| (v / sum) as f32).collect();
            let u: f32 = rng.random();
            let (mut acc, mut y) = (0.0, K - 1);
            for (c, &p) in row.iter().enumerate() {
                acc += p;
                if u < acc {
                    y = c;
                    break;
                }
            }
            probs.extend(row);
            labels.push(y);
        }
        (probs, labels)
    }

    fn coverage_of(sets: &[Vec<usize>], labels: &[usize]) -> f64 {
        let hits = sets
            .iter()
            .zip(labels)
            .filter(|(s, y)| s.contains(y))
            .count();
        hits as f64 / labels.len() as f64
    }

    fn mean_size(sets: &[Vec<usize>]) -> f64 {
        sets.iter().map(Vec::len).sum::<usize>() as f64 / sets.len() as f64
    }

    // With 10 000 calibration and 10 000 test rows the test coverage has a standard deviation
    // of about sqrt(2 c(1−c) / 10 000) ≤ 0.006 around a mean within 1/(n+1) above c: ±0.02 is
    // over three of them (and the seeds are fixed).
    #[test]
    fn classification_sets_cover_as_advertised() {
        let (cal_probs, cal_labels) = classification(10_000, 10);
        let (test_probs, test_labels) = classification(10_000, 11);
        for score in [ConformalScore::Lac, ConformalScore::Aps] {
            let mut previous: Option<Vec<Vec<usize>>> = None;
            for coverage in [0.8, 0.9, 0.95] {
                let conformal =
                    ConformalClassifier::calibrate(&cal_probs, &cal_labels, 5, coverage, score)
                        .unwrap();
                let sets = conformal.predict_sets(&test_probs).unwrap();
                let got = coverage_of(&sets, &test_labels);
                assert!(
                    (got - coverage).abs() < 0.02,
                    "{score} at {coverage}: coverage {got}"
                );
                assert!(sets.iter().all(|s| !s.is_empty()));
                // Larger coverage, larger q̂: the sets are nested and grow on average.
                if let Some(smaller) = &previous {
                    for (a, b) in smaller.iter().zip(&sets) {
                        assert!(a.iter().all(|c| b.contains(c)), "{score}: {a:?} ⊄ {b:?}");
                    }
                    assert!(mean_size(&sets) > mean_size(smaller));
                }
                previous = Some(sets);
            }
        }
    }

    #[test]
    fn regression_intervals_cover_as_advertised() {
        // Two targets, noise N(0, 1) and N(0, 3²) around the prediction.
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut draw = |n: usize| -> (Vec<f32>, Vec<f32>) {
            let mut predictions = Vec::with_capacity(2 * n);
            let mut targets = Vec::with_capacity(2 * n);
            for _ in 0..n {
                for sigma in [1.0, 3.0] {
                    let y_hat = 10.0 * normal(&mut rng);
                    predictions.push(y_hat as f32);
                    targets.push((y_hat + sigma * normal(&mut rng)) as f32);
                }
            }
            (predictions, targets)
        };
        let (cal_pred, cal_target) = draw(10_000);
        let (test_pred, test_target) = draw(10_000);
        // Two-sided normal quantiles: 1.2816, 1.6449, 1.9600.
        for (coverage, z) in [(0.8, 1.2816), (0.9, 1.6449), (0.95, 1.9600)] {
            let conformal =
                ConformalRegressor::calibrate(&cal_pred, &cal_target, 2, coverage).unwrap();
            for (j, sigma) in [1.0, 3.0].into_iter().enumerate() {
                // The empirical quantile of 10 000 half-normal draws has a standard error of
                // under 1 % of the true one: ±5 % is over five of them.
                let q = conformal.q_hat[j];
                assert!(
                    (q / (z * sigma) - 1.0).abs() < 0.05,
                    "q̂ {q} vs {}",
                    z * sigma
                );
            }
            let intervals = conformal.intervals(&test_pred).unwrap();
            for j in 0..2 {
                let hits = (0..10_000)
                    .filter(|i| intervals[i * 2 + j].contains(test_target[i * 2 + j] as f64))
                    .count();
                let got = hits as f64 / 10_000.0;
                assert!(
                    (got - coverage).abs() < 0.02,
                    "target {j} at {coverage}: {got}"
                );
            }
        }
    }

    #[test]
    fn quantile_rank_and_minimum_rows() {
        assert_eq!(quantile_rank(9, 0.9), 9);
        assert_eq!(quantile_rank(100, 0.9), 91);
        assert_eq!(quantile_rank(19, 0.95), 19);
        assert_eq!(quantile_rank(1, 0.1), 1);
        for (coverage, needed) in [(0.5, 1), (0.8, 4), (0.9, 9), (0.95, 19), (0.99, 99)] {
            assert_eq!(
                min_calibration_rows(coverage).unwrap(),
                needed,
                "{coverage}"
            );
            assert!(quantile_rank(needed, coverage) <= needed);
            if needed > 1 {
                assert!(quantile_rank(needed - 1, coverage) > needed - 1);
            }
        }
        // 1/α − 1 need not be an integer: at 0.85 it is 5.67, so 6 rows.
        assert_eq!(min_calibration_rows(0.85).unwrap(), 6);
    }

    #[test]
    fn lac_sets_are_never_empty() {
        // Every calibration row gives its label 0.99: q̂ = 0.01 (up to f32 rounding).
        let probs = [0.99, 0.01, 0.01, 0.99, 0.99, 0.01, 0.01, 0.99];
        let conformal =
            ConformalClassifier::calibrate(&probs, &[0, 1, 0, 1], 2, 0.5, ConformalScore::Lac)
                .unwrap();
        assert!(conformal.q_hat < 0.02);
        // 0.6 scores 0.4 > q̂: no class qualifies, so the arg-max is the set.
        let sets = conformal.predict_sets(&[0.4, 0.6, 0.5, 0.5]).unwrap();
        assert_eq!(sets, vec![vec![1], vec![0]]);
        // Allowed to, the sets are empty.
        let sets = conformal
            .allowing_empty()
            .predict_sets(&[0.4, 0.6, 0.5, 0.5])
            .unwrap();
        assert_eq!(sets, vec![Vec::<usize>::new(), Vec::new()]);
    }

    #[test]
    fn aps_scores_accumulate_by_rank() {
        // Ranked 1, 2, 0: class 1 has nothing above it, class 2 has 0.5, class 0 has 0.8.
        let scores = ConformalScore::Aps.scores(&[0.2, 0.5, 0.3]);
        let expected = [0.8, 0.0, 0.5];
        for (s, e) in scores.iter().zip(expected) {
            assert!((s - e).abs() < 1e-6, "{scores:?}");
        }
        // Ties go by class index: class 0 ranks first.
        let scores = ConformalScore::Aps.scores(&[0.5, 0.5]);
        assert_eq!(scores, vec![0.0, 0.5]);
    }

    #[test]
    fn fitted_objects_round_trip_through_json() {
        let classifier = ConformalClassifier {
            score: ConformalScore::Aps,
            coverage: 0.9,
            q_hat: 0.8125,
            n_classes: 3,
            calibration_rows: 120,
            allow_empty: true,
        };
        let json = serde_json::to_string(&classifier).unwrap();
        assert!(json.contains(r#""score":"aps""#), "{json}");
        assert_eq!(
            serde_json::from_str::<ConformalClassifier>(&json).unwrap(),
            classifier
        );
        let regressor = ConformalRegressor {
            coverage: 0.95,
            q_hat: vec![1.5, 0.25],
            calibration_rows: 40,
        };
        let json = serde_json::to_string(&regressor).unwrap();
        assert_eq!(
            serde_json::from_str::<ConformalRegressor>(&json).unwrap(),
            regressor
        );
        assert_eq!(
            "score".parse::<ConformalScore>().unwrap(),
            ConformalScore::Lac
        );
        assert!(matches!(
            "raps".parse::<ConformalScore>(),
            Err(ConformalError::UnknownScore { .. })
        ));
    }

    #[test]
    fn errors_name_the_numbers() {
        let probs = [0.5f32; 8];
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let err = ConformalClassifier::calibrate(&probs, &[0; 4], 2, bad, ConformalScore::Lac)
                .unwrap_err();
            assert!(
                matches!(err, ConformalError::Coverage { .. }),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            ConformalError::Coverage { value: 1.5 }.to_string(),
            "--coverage 1.5: expected a number strictly between 0 and 1"
        );
        let err = ConformalClassifier::calibrate(&probs, &[0; 4], 2, 0.9, ConformalScore::Lac)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConformalError::TooFewRows {
                    needed: 9,
                    rows: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("at least 9 calibration rows"),
            "{err}"
        );
        assert!(err.to_string().contains("found 4"), "{err}");
        assert!(matches!(
            ConformalClassifier::calibrate(&[], &[], 2, 0.5, ConformalScore::Lac),
            Err(ConformalError::TooFewRows {
                rows: 0,
                needed: 1,
                ..
            })
        ));
        assert!(matches!(
            ConformalClassifier::calibrate(&probs, &[0, 2, 0, 0], 2, 0.5, ConformalScore::Lac),
            Err(ConformalError::Label {
                row: 1,
                label: 2,
                n_classes: 2
            })
        ));
        assert!(matches!(
            ConformalClassifier::calibrate(&probs, &[0; 3], 2, 0.5, ConformalScore::Lac),
            Err(ConformalError::Lengths {
                found: 4,
                expected: 3,
                ..
            })
        ));
        assert!(matches!(
            ConformalClassifier::calibrate(&probs[..7], &[0; 3], 2, 0.5, ConformalScore::Lac),
            Err(ConformalError::Split {
                found: 7,
                width: 2,
                ..
            })
        ));
        assert!(matches!(
            ConformalClassifier::calibrate(&[0.5, f32::NAN], &[0], 2, 0.5, ConformalScore::Lac),
            Err(ConformalError::Probability { row: 0, .. })
        ));
        assert!(matches!(
            ConformalClassifier::calibrate(&probs, &[0; 8], 1, 0.5, ConformalScore::Lac),
            Err(ConformalError::Width { found: 1, .. })
        ));
        assert!(matches!(
            ConformalRegressor::calibrate(&[1.0, 2.0], &[1.0], 1, 0.5),
            Err(ConformalError::Lengths {
                found: 2,
                expected: 1,
                ..
            })
        ));
        assert!(matches!(
            ConformalRegressor::calibrate(&[1.0, 2.0], &[1.0, f32::INFINITY], 1, 0.5),
            Err(ConformalError::NonFinite {
                what: "target",
                row: 1,
                ..
            })
        ));
        assert!(matches!(
            ConformalRegressor::calibrate(&[1.0; 10], &[1.0; 10], 1, 0.95),
            Err(ConformalError::TooFewRows {
                needed: 19,
                rows: 10,
                ..
            })
        ));
        let broken = ConformalRegressor {
            coverage: 0.9,
            q_hat: vec![f64::NAN],
            calibration_rows: 10,
        };
        assert!(matches!(
            broken.intervals(&[1.0]),
            Err(ConformalError::Fitted { what: "q_hat", .. })
        ));
    }
}
