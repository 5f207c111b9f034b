//! Percentile bootstrap confidence intervals of a metric over rows.
//!
//! A metric measured on a test set of `n` rows is one draw; resampling those rows with
//! replacement and measuring again shows how much it would move with other rows. The
//! interval at level `L` runs from the `(1 − L)/2` to the `(1 + L)/2` percentile of the
//! resampled values (the percentile bootstrap, Efron & Tibshirani 1993, §13.3).
//!
//! [`bootstrap_ci`] takes any statistic of a set of row indices; [`classification_intervals`]
//! and [`regression_intervals`] give the usual metrics of a model's predictions, computed as
//! [`ClassificationMetrics`](crate::ClassificationMetrics) and
//! [`RegressionMetrics`](crate::RegressionMetrics) compute them.
//!
//! ```
//! use sora_train::bootstrap::{BootstrapConfig, classification_intervals};
//!
//! # fn main() -> Result<(), sora_train::bootstrap::BootstrapError> {
//! // Two classes, 200 rows: rows are right when `i % 5 != 0`.
//! let labels: Vec<usize> = (0..200).map(|i| i % 2).collect();
//! let probs: Vec<f32> = labels
//!     .iter()
//!     .enumerate()
//!     .flat_map(|(i, &y)| {
//!         let p1 = if (y == 1) == (i % 5 != 0) { 0.8 } else { 0.3 };
//!         [1.0 - p1, p1]
//!     })
//!     .collect();
//! let ci = classification_intervals(&probs, &labels, 2, &BootstrapConfig::default())?;
//! let accuracy = ci.accuracy.unwrap();
//! assert_eq!(accuracy.estimate, 0.8);
//! assert!(accuracy.low < 0.8 && 0.8 < accuracy.high);
//! println!("accuracy {accuracy}");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::argmax;

/// Why a bootstrap could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// No resample was asked for.
    #[error("bootstrap resamples: expected at least 1, found 0")]
    NoResamples,
    /// The confidence level is not strictly between 0 and 1.
    #[error("confidence level: expected a number strictly between 0 and 1, found {level}")]
    Level {
        /// The level given.
        level: f64,
    },
    /// The class probabilities are not one row of `n_classes` per label.
    #[error(
        "probabilities: expected {n_labels} labels × {n_classes} classes = {} values, found \
         {found}", .n_labels * .n_classes
    )]
    ProbsLength {
        /// Number of labels.
        n_labels: usize,
        /// Number of classes.
        n_classes: usize,
        /// Number of probabilities.
        found: usize,
    },
    /// A label is not below the number of classes.
    #[error("labels: row {row}: class {class} is out of range for {n_classes} classes")]
    ClassOutOfRange {
        /// The row (0-based).
        row: usize,
        /// The label.
        class: usize,
        /// Number of classes.
        n_classes: usize,
    },
    /// Predictions and targets differ in number, or do not split into rows of `d_output`.
    #[error(
        "regression: {n_predictions} predictions and {n_targets} targets do not make rows of \
         {d_output} outputs each"
    )]
    RegressionLayout {
        /// Number of predicted values.
        n_predictions: usize,
        /// Number of target values.
        n_targets: usize,
        /// Targets per row.
        d_output: usize,
    },
}

/// Settings of a percentile bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootstrapConfig {
    /// Number of resamples of the rows (default 1000).
    pub resamples: usize,
    /// Confidence level of the interval, strictly between 0 and 1 (default 0.95).
    pub level: f64,
    /// Seed of the [`ChaCha8Rng`] that draws every resample (default 0).
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`BootstrapError::NoResamples`] when `resamples` is 0, [`BootstrapError::Level`] when
    /// `level` is not strictly between 0 and 1 (NaN included).
    pub fn check(&self) -> Result<(), BootstrapError> {
        if self.resamples == 0 {
            return Err(BootstrapError::NoResamples);
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(BootstrapError::Level { level: self.level });
        }
        Ok(())
    }
}

/// A confidence interval of a statistic: its value on all rows and the percentile interval of
/// its resampled values.
///
/// A percentile interval need not contain `estimate` (when the resampled values are skewed),
/// though it usually does. Shown as `0.842 [0.801, 0.879]`: three decimals, or the precision
/// given (`{:.2}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The statistic on all rows.
    pub estimate: f64,
    /// Lower end: the `(1 − level)/2` percentile of the resampled values.
    pub low: f64,
    /// Upper end: the `(1 + level)/2` percentile of the resampled values.
    pub high: f64,
    /// Confidence level.
    pub level: f64,
    /// Resamples on which the statistic was defined, and so used (at most the number asked
    /// for).
    pub resamples: usize,
}

impl fmt::Display for ConfidenceInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(3);
        write!(
            f,
            "{:.p$} [{:.p$}, {:.p$}]",
            self.estimate, self.low, self.high
        )
    }
}

/// The percentile bootstrap interval of `statistic` over rows `0..n_rows`.
///
/// `statistic` gets row indices: first `0..n_rows` (the estimate), then each resample, `n_rows`
/// indices drawn uniformly with replacement by one [`ChaCha8Rng`] seeded with `config.seed`,
/// so the same arguments give the same interval. It returns `None` (or NaN) where it is
/// undefined, e.g. AUROC on rows of one class; such resamples are skipped and
/// [`ConfidenceInterval::resamples`] counts the others. Percentiles interpolate linearly
/// between the sorted values (as `numpy.percentile`'s default).
///
/// `Ok(None)` when there are no rows, when the statistic is undefined on all rows, or when it
/// is undefined on every resample.
///
/// ```
/// use sora_train::bootstrap::{BootstrapConfig, bootstrap_ci};
///
/// # fn main() -> Result<(), sora_train::bootstrap::BootstrapError> {
/// let values: Vec<f64> = (0..400).map(|i| (i % 10) as f64).collect();
/// let mean = |rows: &[usize]| {
///     (!rows.is_empty()).then(|| rows.iter().map(|&i| values[i]).sum::<f64>() / rows.len() as f64)
/// };
/// let config = BootstrapConfig { resamples: 500, ..BootstrapConfig::default() };
/// let ci = bootstrap_ci(values.len(), &config, mean)?.unwrap();
/// assert_eq!((ci.estimate, ci.resamples, ci.level), (4.5, 500, 0.95));
/// // The standard error of the mean is about 2.87 / √400 ≈ 0.14, so ±1.96 × 0.14.
/// assert!((4.1..4.4).contains(&ci.low) && (4.6..4.9).contains(&ci.high), "{ci}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// When `config` does not pass [`BootstrapConfig::check`].
pub fn bootstrap_ci(
    n_rows: usize,
    config: &BootstrapConfig,
    statistic: impl Fn(&[usize]) -> Option<f64>,
) -> Result<Option<ConfidenceInterval>, BootstrapError> {
    let [interval] = intervals(n_rows, config, [&statistic as Statistic<'_>])?;
    Ok(interval)
}

/// Confidence intervals of a classifier's metrics, each `None` where undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationIntervals {
    /// Fraction of rows whose arg-max class is right.
    pub accuracy: Option<ConfidenceInterval>,
    /// Unweighted mean of the per-class F1 scores (over all `n_classes`).
    pub macro_f1: Option<ConfidenceInterval>,
    /// AUROC: of class 1 for two classes, the one-vs-rest macro average otherwise (classes
    /// without positives or negatives in a resample are left out of it).
    pub auroc: Option<ConfidenceInterval>,
    /// Mean cross-entropy of the true class (probabilities clamped at `1e-12`).
    pub log_loss: Option<ConfidenceInterval>,
}

/// Bootstrap intervals of accuracy, macro-F1, AUROC and log loss from row-major class
/// probabilities (`labels.len() × n_classes`) and labels.
///
/// The estimates equal what [`ClassificationMetrics::compute`](crate::ClassificationMetrics::compute)
/// gives on the same rows, and every metric is measured on the same resamples (drawn as in
/// [`bootstrap_ci`]).
///
/// # Errors
///
/// When `config` does not pass [`BootstrapConfig::check`],
/// [`BootstrapError::ProbsLength`] when `probs` is not `labels.len() × n_classes` values,
/// [`BootstrapError::ClassOutOfRange`] when a label is `>= n_classes`.
pub fn classification_intervals(
    probs: &[f32],
    labels: &[usize],
    n_classes: usize,
    config: &BootstrapConfig,
) -> Result<ClassificationIntervals, BootstrapError> {
    if probs.len() != labels.len() * n_classes {
        return Err(BootstrapError::ProbsLength {
            n_labels: labels.len(),
            n_classes,
            found: probs.len(),
        });
    }
    if let Some((row, &class)) = labels.iter().enumerate().find(|&(_, &y)| y >= n_classes) {
        return Err(BootstrapError::ClassOutOfRange {
            row,
            class,
            n_classes,
        });
    }
    let row = |i: usize| &probs[i * n_classes..(i + 1) * n_classes];
    let predicted: Vec<usize> = (0..labels.len()).map(|i| argmax(row(i))).collect();
    let nll: Vec<f64> = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -(row(i)[y] as f64).max(1e-12).ln())
        .collect();

    let accuracy = |rows: &[usize]| {
        let correct = rows.iter().filter(|&&i| predicted[i] == labels[i]).count();
        mean_of(correct as f64, rows.len())
    };
    let macro_f1 = |rows: &[usize]| {
        let (mut tp, mut as_class, mut support) = (
            vec![0usize; n_classes],
            vec![0usize; n_classes],
            vec![0usize; n_classes],
        );
        for &i in rows {
            let (y, p) = (labels[i], predicted[i]);
            support[y] += 1;
            as_class[p] += 1;
            if y == p {
                tp[y] += 1;
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let f1_sum: f64 = (0..n_classes)
            .map(|c| {
                let (precision, recall) = (ratio(tp[c], as_class[c]), ratio(tp[c], support[c]));
                if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                }
            })
            .sum();
        (!rows.is_empty() && n_classes > 0).then(|| f1_sum / n_classes as f64)
    };
    let classes: Vec<usize> = if n_classes == 2 {
        vec![1]
    } else {
        (0..n_classes).collect()
    };
    // Each class's rows are ranked once; a resample then only weighs them (see `Ranked`).
    let ranked: Vec<(usize, Ranked)> = classes
        .iter()
        .map(|&c| (c, Ranked::new(labels.len(), |i| probs[i * n_classes + c])))
        .collect();
    let auroc_stat = |rows: &[usize]| {
        let mut counts = vec![0u32; labels.len()];
        for &i in rows {
            counts[i] += 1;
        }
        let (mut sum, mut defined) = (0.0, 0usize);
        for (c, ranked) in &ranked {
            if let Some(area) = ranked.auroc(&counts, |i| labels[i] == *c) {
                sum += area;
                defined += 1;
            }
        }
        mean_of(sum, defined)
    };
    let log_loss = |rows: &[usize]| mean_of(rows.iter().map(|&i| nll[i]).sum(), rows.len());

    let [accuracy, macro_f1, auroc_ci, log_loss] = intervals(
        labels.len(),
        config,
        [&accuracy, &macro_f1, &auroc_stat, &log_loss],
    )?;
    Ok(ClassificationIntervals {
        accuracy,
        macro_f1,
        auroc: auroc_ci,
        log_loss,
    })
}

/// Confidence intervals of a regressor's metrics, each `None` where undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionIntervals {
    /// Root mean squared error over all targets.
    pub rmse: Option<ConfidenceInterval>,
    /// Mean absolute error over all targets.
    pub mae: Option<ConfidenceInterval>,
    /// Coefficient of determination `1 − SS_res / SS_tot`, per target, averaged.
    pub r2: Option<ConfidenceInterval>,
}

/// Bootstrap intervals of RMSE, MAE and R² from row-major predictions and targets
/// (`n_rows × d_output` each); rows are resampled whole.
///
/// The estimates equal what [`RegressionMetrics::compute`](crate::RegressionMetrics::compute)
/// gives on the same rows, but for one case: R² is undefined (`None`, and such resamples are
/// skipped) where a target's values are all equal, where `RegressionMetrics` counts it as 0.
///
/// ```
/// use sora_train::bootstrap::{BootstrapConfig, regression_intervals};
///
/// # fn main() -> Result<(), sora_train::bootstrap::BootstrapError> {
/// let targets: Vec<f32> = (0..100).map(|i| i as f32).collect();
/// let predictions: Vec<f32> = targets.iter().map(|t| t + if t % 2.0 == 0.0 { 1.0 } else { -1.0 }).collect();
/// let ci = regression_intervals(&predictions, &targets, 1, &BootstrapConfig::default())?;
/// // Every error is ±1, so every resample's MAE and RMSE are 1.
/// assert_eq!(ci.mae.unwrap().to_string(), "1.000 [1.000, 1.000]");
/// assert!(ci.r2.unwrap().low > 0.99);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// When `config` does not pass [`BootstrapConfig::check`],
/// [`BootstrapError::RegressionLayout`] when `predictions` and `targets` differ in length or
/// do not split into rows of `d_output` (or `d_output` is 0).
pub fn regression_intervals(
    predictions: &[f32],
    targets: &[f32],
    d_output: usize,
    config: &BootstrapConfig,
) -> Result<RegressionIntervals, BootstrapError> {
    let d = d_output;
    if predictions.len() != targets.len() || d == 0 || !targets.len().is_multiple_of(d) {
        return Err(BootstrapError::RegressionLayout {
            n_predictions: predictions.len(),
            n_targets: targets.len(),
            d_output,
        });
    }
    let n_rows = targets.len() / d;
    let (mut abs_error, mut sq_error) = (vec![0.0f64; n_rows], vec![0.0f64; n_rows]);
    for (k, (&p, &t)) in predictions.iter().zip(targets).enumerate() {
        let e = (p - t) as f64;
        abs_error[k / d] += e.abs();
        sq_error[k / d] += e * e;
    }
    let rmse = |rows: &[usize]| {
        mean_of(rows.iter().map(|&i| sq_error[i]).sum(), rows.len() * d).map(f64::sqrt)
    };
    let mae = |rows: &[usize]| mean_of(rows.iter().map(|&i| abs_error[i]).sum(), rows.len() * d);
    let r2 = |rows: &[usize]| {
        if rows.is_empty() {
            return None;
        }
        let mut sum = 0.0;
        for j in 0..d {
            let target = |i: usize| targets[i * d + j] as f64;
            let mean = rows.iter().map(|&i| target(i)).sum::<f64>() / rows.len() as f64;
            let ss_tot: f64 = rows.iter().map(|&i| (target(i) - mean).powi(2)).sum();
            if ss_tot <= 0.0 {
                return None;
            }
            let ss_res: f64 = rows
                .iter()
                .map(|&i| (target(i) - predictions[i * d + j] as f64).powi(2))
                .sum();
            sum += 1.0 - ss_res / ss_tot;
        }
        Some(sum / d as f64)
    };
    let [rmse, mae, r2] = intervals(n_rows, config, [&rmse, &mae, &r2])?;
    Ok(RegressionIntervals { rmse, mae, r2 })
}

/// Rows ranked once by descending score, in tie groups, so that the AUROC of any resample
/// is one pass over its row counts rather than a sort.
///
/// It is [`auroc`](crate::auroc) on the resample, term for term: a resample's tie groups are
/// the full ranking's groups restricted to its rows (a repeated row ties with itself), taken
/// in the same order, and a group the resample misses adds exactly zero.
struct Ranked {
    /// Rows by descending score (stable, `f32::total_cmp`), as `auroc` orders them.
    order: Vec<usize>,
    /// Where each tie group of `order` ends (exclusive).
    group_ends: Vec<usize>,
}

impl Ranked {
    fn new(n_rows: usize, score: impl Fn(usize) -> f32) -> Self {
        let mut order: Vec<usize> = (0..n_rows).collect();
        order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
        let mut group_ends = Vec::new();
        let mut first = 0;
        for (k, &row) in order.iter().enumerate().skip(1) {
            if score(row) != score(order[first]) {
                group_ends.push(k);
                first = k;
            }
        }
        if n_rows > 0 {
            group_ends.push(n_rows);
        }
        Self { order, group_ends }
    }

    /// AUROC of the rows counted `counts[row]` times; `None` without positives or negatives.
    fn auroc(&self, counts: &[u32], positive: impl Fn(usize) -> bool) -> Option<f64> {
        let (mut tp, mut fp, mut area) = (0.0f64, 0.0f64, 0.0f64);
        let mut start = 0;
        for &end in &self.group_ends {
            let (mut gp, mut gn) = (0u64, 0u64);
            for &row in &self.order[start..end] {
                if positive(row) {
                    gp += u64::from(counts[row]);
                } else {
                    gn += u64::from(counts[row]);
                }
            }
            let (gp, gn) = (gp as f64, gn as f64);
            area += gn * (tp + gp / 2.0);
            tp += gp;
            fp += gn;
            start = end;
        }
        (tp > 0.0 && fp > 0.0).then(|| area / (tp * fp))
    }
}

/// `sum / count`, `None` for no count.
fn mean_of(sum: f64, count: usize) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

/// A statistic of a set of row indices.
type Statistic<'a> = &'a dyn Fn(&[usize]) -> Option<f64>;

/// The intervals of several statistics, measured on the same resamples.
fn intervals<const N: usize>(
    n_rows: usize,
    config: &BootstrapConfig,
    statistics: [Statistic<'_>; N],
) -> Result<[Option<ConfidenceInterval>; N], BootstrapError> {
    config.check()?;
    let defined = |v: Option<f64>| v.filter(|v| !v.is_nan());
    let all: Vec<usize> = (0..n_rows).collect();
    let estimates = statistics.map(|s| (n_rows > 0).then(|| defined(s(&all))).flatten());
    let mut values: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    // A statistic undefined on all rows gets no interval; it is not measured again.
    let measured: Vec<usize> = (0..N).filter(|&s| estimates[s].is_some()).collect();
    if !measured.is_empty() {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut sample = vec![0; n_rows];
        for _ in 0..config.resamples {
            for slot in &mut sample {
                *slot = rng.random_range(0..n_rows);
            }
            for &s in &measured {
                if let Some(v) = defined(statistics[s](&sample)) {
                    values[s].push(v);
                }
            }
        }
    }
    let tail = (1.0 - config.level) / 2.0;
    let mut out = [None; N];
    for (s, mut v) in values.into_iter().enumerate() {
        let Some(estimate) = estimates[s] else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        v.sort_unstable_by(f64::total_cmp);
        out[s] = Some(ConfidenceInterval {
            estimate,
            low: percentile(&v, tail),
            high: percentile(&v, 1.0 - tail),
            level: config.level,
            resamples: v.len(),
        });
    }
    Ok(out)
}

/// The `q` quantile (`0 ≤ q ≤ 1`) of non-empty sorted `values`, interpolating linearly between
/// neighbours as `numpy.percentile(values, 100 q)` does by default.
fn percentile(values: &[f64], q: f64) -> f64 {
    let h = (values.len() - 1) as f64 * q;
    let below = h.floor() as usize;
    let above = (below + 1).min(values.len() - 1);
    values[below] + (h - below as f64) * (values[above] - values[below])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassificationMetrics, RegressionMetrics, auroc};

    fn mean_of_values(values: &[f64]) -> impl Fn(&[usize]) -> Option<f64> + '_ {
        move |rows| mean_of(rows.iter().map(|&i| values[i]).sum(), rows.len())
    }

    /// Uniform values in [0, 1) from a fixed seed.
    fn uniform(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f64>()).collect()
    }

    /// A binary classifier's probabilities: the true class gets `0.5 + U(-0.1, 0.4)`, so
    /// about 80 % of rows are right.
    fn binary_predictions(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..2)).collect();
        let probs = labels
            .iter()
            .flat_map(|&y| {
                let shift: f32 = rng.random_range(-0.1..0.4);
                let p1 = if y == 1 { 0.5 + shift } else { 0.5 - shift };
                [1.0 - p1, p1]
            })
            .collect();
        (probs, labels)
    }

    #[test]
    fn percentile_matches_numpy() {
        // numpy 2.x: np.percentile([1, 2, 3, 4], [0, 2.5, 50, 97.5, 100])
        //   == [1.0, 1.075, 2.5, 3.925, 4.0]
        let v = [1.0, 2.0, 3.0, 4.0];
        for (q, expected) in [
            (0.0, 1.0),
            (0.025, 1.075),
            (0.5, 2.5),
            (0.975, 3.925),
            (1.0, 4.0),
        ] {
            assert!((percentile(&v, q) - expected).abs() < 1e-12, "q {q}");
        }
        assert_eq!(percentile(&[7.0], 0.975), 7.0);
    }

    #[test]
    fn interval_contains_the_estimate() {
        let values = uniform(1000, 1);
        let ci = bootstrap_ci(1000, &BootstrapConfig::default(), mean_of_values(&values))
            .unwrap()
            .unwrap();
        assert!(ci.low < ci.estimate && ci.estimate < ci.high, "{ci}");
        assert_eq!((ci.resamples, ci.level), (1000, 0.95));
        // Uniform values: sd 1/√12, so the standard error is 0.0091 and the interval about
        // ±1.96 × 0.0091 = ±0.018 wide; 1000 resamples put its ends within a few percent.
        let half = (ci.high - ci.low) / 2.0;
        assert!((half - 0.0179).abs() < 0.003, "{half}");
    }

    #[test]
    fn width_shrinks_with_the_square_root_of_the_rows() {
        // Four times the rows, half the width: the standard error goes as 1/√n. Each width
        // is estimated from 1000 resamples (about ±5 % each), hence the slack.
        let config = BootstrapConfig::default();
        let width = |n: usize| {
            let values = uniform(n, 2);
            let ci = bootstrap_ci(n, &config, mean_of_values(&values))
                .unwrap()
                .unwrap();
            ci.high - ci.low
        };
        let ratio = width(2000) / width(500);
        assert!((0.4..0.6).contains(&ratio), "{ratio}");
    }

    #[test]
    fn same_seed_same_interval_other_seed_other_interval() {
        let values = uniform(300, 3);
        let ci = |seed| {
            let config = BootstrapConfig {
                seed,
                ..BootstrapConfig::default()
            };
            bootstrap_ci(300, &config, mean_of_values(&values)).unwrap()
        };
        assert_eq!(ci(5), ci(5));
        assert_ne!(ci(5), ci(6));
        assert_eq!(ci(5).unwrap().estimate, ci(6).unwrap().estimate);
    }

    #[test]
    fn undefined_statistics_give_none() {
        let config = BootstrapConfig::default();
        assert_eq!(bootstrap_ci(100, &config, |_| None).unwrap(), None);
        assert_eq!(
            bootstrap_ci(100, &config, |_| Some(f64::NAN)).unwrap(),
            None
        );
        assert_eq!(bootstrap_ci(0, &config, |_| Some(1.0)).unwrap(), None);
        // Defined on all rows (each once), never on a resample: 100 draws from 100 rows
        // miss a repeat with probability 100!/100^100 ≈ 1e-42.
        let distinct = |rows: &[usize]| {
            let mut r = rows.to_vec();
            r.sort_unstable();
            r.dedup();
            (r.len() == rows.len()).then_some(1.0)
        };
        assert_eq!(bootstrap_ci(100, &config, distinct).unwrap(), None);
    }

    #[test]
    fn undefined_resamples_are_skipped_and_counted() {
        // AUROC of 40 rows with 2 positives: a resample misses both with probability
        // (38/40)^40 ≈ 0.13, so about 130 of 1000 resamples are undefined.
        let mut labels = vec![0usize; 40];
        labels[3] = 1;
        labels[17] = 1;
        let scores: Vec<f32> = (0..40).map(|i| i as f32 / 40.0).collect();
        let statistic = |rows: &[usize]| {
            let s: Vec<f32> = rows.iter().map(|&i| scores[i]).collect();
            let p: Vec<bool> = rows.iter().map(|&i| labels[i] == 1).collect();
            auroc(&s, &p)
        };
        let ci = bootstrap_ci(40, &BootstrapConfig::default(), statistic)
            .unwrap()
            .unwrap();
        assert!((800..950).contains(&ci.resamples), "{}", ci.resamples);
    }

    #[test]
    fn ranked_auroc_is_auroc_on_the_resample() {
        // Scores on a grid of 8 values, so many rows tie, positives with negatives.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 300;
        let scores: Vec<f32> = (0..n)
            .map(|_| rng.random_range(0..8) as f32 / 8.0)
            .collect();
        let positive: Vec<bool> = scores.iter().map(|&s| rng.random::<f32>() < s).collect();
        let ranked = Ranked::new(n, |i| scores[i]);
        for size in [n, 40, 3, 1] {
            for _ in 0..50 {
                let rows: Vec<usize> = (0..size).map(|_| rng.random_range(0..n)).collect();
                let mut counts = vec![0u32; n];
                for &i in &rows {
                    counts[i] += 1;
                }
                let s: Vec<f32> = rows.iter().map(|&i| scores[i]).collect();
                let p: Vec<bool> = rows.iter().map(|&i| positive[i]).collect();
                // Exactly equal: the same terms summed in the same order.
                assert_eq!(ranked.auroc(&counts, |i| positive[i]), auroc(&s, &p));
            }
        }
        assert_eq!(Ranked::new(0, |_| 0.0).auroc(&[], |_| true), None);
    }

    #[test]
    fn classification_estimates_match_whole_set_metrics() {
        let (probs, labels) = binary_predictions(600, 4);
        let config = BootstrapConfig {
            resamples: 200,
            ..BootstrapConfig::default()
        };
        let ci = classification_intervals(&probs, &labels, 2, &config).unwrap();
        let m = ClassificationMetrics::compute(&probs, &labels, 2);
        let estimate = |i: Option<ConfidenceInterval>| i.unwrap().estimate;
        assert_eq!(estimate(ci.accuracy), m.accuracy);
        assert!((estimate(ci.macro_f1) - m.macro_f1).abs() < 1e-12);
        assert_eq!(estimate(ci.auroc), m.auroc.unwrap());
        assert!((estimate(ci.log_loss) - m.loss).abs() < 1e-12);
        for i in [ci.accuracy, ci.macro_f1, ci.auroc, ci.log_loss] {
            let i = i.unwrap();
            assert!(i.low <= i.estimate && i.estimate <= i.high, "{i}");
            assert_eq!(i.resamples, 200);
        }

        // Three classes: AUROC is the one-vs-rest macro average, as in the metrics.
        let probs3 = [
            0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.3, 0.3, 0.4, 0.1, 0.2, 0.7, 0.5, 0.4, 0.1, 0.2, 0.2,
            0.6,
        ];
        let labels3 = [0, 1, 2, 2, 1, 0];
        let ci = classification_intervals(&probs3, &labels3, 3, &config).unwrap();
        let m = ClassificationMetrics::compute(&probs3, &labels3, 3);
        assert!((estimate(ci.auroc) - m.auroc.unwrap()).abs() < 1e-12);
        assert!((estimate(ci.macro_f1) - m.macro_f1).abs() < 1e-12);
    }

    #[test]
    fn regression_estimates_match_whole_set_metrics() {
        let targets: Vec<f32> = uniform(400, 5).iter().map(|&v| v as f32 * 10.0).collect();
        let noise = uniform(400, 6);
        let predictions: Vec<f32> = targets
            .iter()
            .zip(&noise)
            .map(|(&t, &e)| t + (e as f32 - 0.5) * 3.0)
            .collect();
        let config = BootstrapConfig {
            resamples: 200,
            ..BootstrapConfig::default()
        };
        for d in [1, 2] {
            let ci = regression_intervals(&predictions, &targets, d, &config).unwrap();
            let m = RegressionMetrics::compute(&predictions, &targets, d);
            let estimate = |i: Option<ConfidenceInterval>| i.unwrap().estimate;
            assert!((estimate(ci.rmse) - m.rmse).abs() < 1e-12);
            assert!((estimate(ci.mae) - m.mae).abs() < 1e-12);
            assert!((estimate(ci.r2) - m.r2).abs() < 1e-12);
            for i in [ci.rmse, ci.mae, ci.r2] {
                let i = i.unwrap();
                assert!(i.low < i.estimate && i.estimate < i.high, "d {d}: {i}");
            }
        }
        // Constant targets: R² undefined, the errors still measured.
        let ci = regression_intervals(&[1.0, 2.0, 3.0], &[2.0; 3], 1, &config).unwrap();
        assert_eq!(ci.r2, None);
        assert_eq!(ci.mae.unwrap().estimate, 2.0 / 3.0);
    }

    #[test]
    fn config_errors() {
        let bad = |resamples, level| {
            let config = BootstrapConfig {
                resamples,
                level,
                seed: 0,
            };
            bootstrap_ci(10, &config, |_| Some(1.0))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(0, 0.95),
            "bootstrap resamples: expected at least 1, found 0"
        );
        for level in [0.0, 1.0, 95.0, -0.5] {
            assert_eq!(
                bad(10, level),
                format!(
                    "confidence level: expected a number strictly between 0 and 1, found {level}"
                )
            );
        }
        assert!(bad(10, f64::NAN).ends_with("found NaN"));
    }

    #[test]
    fn layout_errors() {
        let config = BootstrapConfig::default();
        let e = classification_intervals(&[0.5; 5], &[0, 1, 1], 2, &config).unwrap_err();
        assert_eq!(
            e.to_string(),
            "probabilities: expected 3 labels × 2 classes = 6 values, found 5"
        );
        let e = classification_intervals(&[0.5; 6], &[0, 2, 1], 2, &config).unwrap_err();
        assert_eq!(
            e.to_string(),
            "labels: row 1: class 2 is out of range for 2 classes"
        );
        for (p, t, d) in [(3, 4, 1), (4, 4, 0), (3, 3, 2)] {
            let e = regression_intervals(&vec![0.0; p], &vec![0.0; t], d, &config).unwrap_err();
            assert!(matches!(e, BootstrapError::RegressionLayout { .. }), "{e}");
        }
        assert_eq!(
            regression_intervals(&[0.0; 3], &[0.0; 4], 1, &config)
                .unwrap_err()
                .to_string(),
            "regression: 3 predictions and 4 targets do not make rows of 1 outputs each"
        );
    }

    #[test]
    fn display_and_serde() {
        let ci = ConfidenceInterval {
            estimate: 0.8421,
            low: 0.8009,
            high: 0.87949,
            level: 0.95,
            resamples: 1000,
        };
        assert_eq!(ci.to_string(), "0.842 [0.801, 0.879]");
        assert_eq!(format!("{ci:.1}"), "0.8 [0.8, 0.9]");
        let json = serde_json::to_string(&ci).unwrap();
        assert_eq!(
            serde_json::from_str::<ConfidenceInterval>(&json).unwrap(),
            ci
        );
        let config: BootstrapConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
        assert_eq!(
            config,
            BootstrapConfig {
                seed: 3,
                ..BootstrapConfig::default()
            }
        );
    }
}
