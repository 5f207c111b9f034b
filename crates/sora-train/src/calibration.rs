//! Calibration of a classifier's probabilities on held-out rows: the expected calibration
//! error (ECE) with its reliability table, temperature scaling, Platt scaling, and the
//! reliability diagram as a PNG.
//!
//! Everything here works on host slices: row-major logits or probabilities (`n × n_classes`,
//! `f32`, as the model outputs them) and class labels (`usize`); sums are taken in `f64`.
//! The fits are deterministic: the same rows give the same parameters, bit for bit.
//!
//! ```
//! use sora_train::{CalibrationMethod, Calibrator, Reliability};
//! # fn main() -> Result<(), sora_train::CalibrationError> {
//! // Held-out logits of a two-class model (4 rows × 2 classes) and their labels.
//! let logits = [2.0, -2.0, -1.5, 1.5, 3.0, -3.0, 0.5, -0.5];
//! let labels = [0, 1, 0, 1];
//! let calibrator = Calibrator::fit(CalibrationMethod::Temperature, &logits, &labels, 2)?;
//! let probs = calibrator.apply(&logits, 2)?;
//! let table = Reliability::top_class(&probs, &labels, 2, 15)?;
//! assert_eq!(table.rows, 4);
//! assert!(table.ece >= 0.0 && table.ece <= 1.0);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::register_font;
use crate::metrics::argmax;

/// Bins of the reliability table by default: 15 equal-width bins of the confidence, as in
/// Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017).
pub const DEFAULT_BINS: usize = 15;

/// The most bins a reliability table may have.
pub const MAX_BINS: usize = 1000;

/// The smallest temperature [`Temperature::fit`] returns.
pub const MIN_TEMPERATURE: f64 = 1e-2;

/// The largest temperature [`Temperature::fit`] returns.
pub const MAX_TEMPERATURE: f64 = 1e2;

/// Why a calibration could not be measured, fitted, applied or drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// No held-out row was given.
    #[error("calibration: no held-out rows were given")]
    Empty,
    /// Fewer than two classes (or, for Platt scaling, not exactly two).
    #[error("calibration: {method} needs {expected}; the model has {n_classes}")]
    Classes {
        /// What needs them: `a reliability table`, `temperature scaling`, `Platt scaling`.
        method: &'static str,
        /// What it needs: `at least 2 classes` or `exactly 2 classes`.
        expected: &'static str,
        /// The classes given.
        n_classes: usize,
    },
    /// A flat slice does not split into rows of the class count.
    #[error("calibration: {found} {what} do not split into rows of {n_classes}")]
    Width {
        /// `logits` or `probabilities`.
        what: &'static str,
        /// Values given.
        found: usize,
        /// Values per row.
        n_classes: usize,
    },
    /// A slice has another number of rows than the labels.
    #[error("calibration: {found} rows of {what} but {labels} labels")]
    Rows {
        /// `logits`, `probabilities` or `scores`.
        what: &'static str,
        /// Rows given.
        found: usize,
        /// Labels given.
        labels: usize,
    },
    /// A label is not below the number of classes.
    #[error("calibration: row {row}: label {label} is out of range for {n_classes} classes")]
    Label {
        /// The row (0-based).
        row: usize,
        /// The label.
        label: usize,
        /// Classes of the task.
        n_classes: usize,
    },
    /// A logit or score is NaN or infinite.
    #[error("calibration: row {row}: {what} {value} is not finite")]
    NonFinite {
        /// `logit` or `score`.
        what: &'static str,
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// A probability is NaN or outside `[0, 1]`.
    #[error("calibration: row {row}: probability {value} is not in [0, 1]")]
    Probability {
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// The number of reliability bins is 0 or above [`MAX_BINS`].
    #[error("calibration: the number of reliability bins must be 1 to {MAX_BINS}, found {found}")]
    Bins {
        /// The number given.
        found: usize,
    },
    /// Platt scaling was asked for on held-out rows of one class only.
    #[error(
        "calibration: Platt scaling needs held-out rows of both classes; all {rows} are class {class}"
    )]
    OneClass {
        /// The only class present.
        class: usize,
        /// Rows given.
        rows: usize,
    },
    /// A calibrator's parameter (as loaded, or built by hand) is unusable.
    #[error("calibration: {what} {value} is not {expected}")]
    Parameter {
        /// `temperature`, `Platt slope a` or `Platt intercept b`.
        what: &'static str,
        /// The value.
        value: f64,
        /// `a finite number` or `a finite positive number`.
        expected: &'static str,
    },
    /// A calibration method's name is unknown.
    #[error("--calibrate `{found}`: expected `none`, `temperature` or `platt`")]
    UnknownMethod {
        /// The name given.
        found: String,
    },
    /// A file could not be written.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The reliability diagram could not be drawn.
    #[error("reliability diagram {}: {message}", .file.display())]
    Plot {
        /// The PNG file.
        file: PathBuf,
        /// The drawing backend's message.
        message: String,
    },
}

type Result<T, E = CalibrationError> = std::result::Result<T, E>;

/// What a [`Reliability`] table bins and measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliabilityKind {
    /// The confidence is the top-class probability; the accuracy is whether that class is the
    /// label.
    TopClass,
    /// The confidence is the probability of class 1 (binary); the "accuracy" is the fraction of
    /// the bin's rows whose label is 1.
    PositiveClass,
}

/// One equal-width bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge (excluded, except 0 for the first bin).
    pub lower: f64,
    /// Upper edge (included).
    pub upper: f64,
    /// Rows whose confidence falls in the bin.
    pub count: usize,
    /// Mean confidence of those rows (0 when the bin is empty).
    pub confidence: f64,
    /// Fraction of those rows that are right: for [`ReliabilityKind::TopClass`] the top class
    /// is the label, for [`ReliabilityKind::PositiveClass`] the label is 1 (0 when empty).
    pub accuracy: f64,
}

/// A reliability table: the held-out rows binned by confidence, with the expected and maximum
/// calibration errors.
///
/// With `B` bins `(b/B, (b+1)/B]` (the first also holds 0), `ECE = Σ_b (n_b / n) |acc_b −
/// conf_b|` and `MCE = max_b |acc_b − conf_b|` over non-empty bins (Guo et al. 2017; Naeini
/// et al. 2015).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// What is binned.
    pub kind: ReliabilityKind,
    /// Rows measured.
    pub rows: usize,
    /// Expected calibration error, in `[0, 1]`.
    pub ece: f64,
    /// Maximum calibration error over non-empty bins, in `[0, 1]`.
    pub mce: f64,
    /// The bins, from low to high confidence.
    pub bins: Vec<ReliabilityBin>,
}

impl Reliability {
    /// The top-class table of row-major probabilities (`n × n_classes`) and labels: each row's
    /// confidence is its largest probability (the first of equal ones, as
    /// [`argmax`]) and it is right when that class is the label.
    ///
    /// Rows are taken as given: they need not sum to 1 exactly.
    ///
    /// ```
    /// use sora_train::Reliability;
    /// # fn main() -> Result<(), sora_train::CalibrationError> {
    /// // Two rows at confidence 0.9, one right and one wrong: |0.5 − 0.9| = 0.4.
    /// let table = Reliability::top_class(&[0.9, 0.1, 0.9, 0.1], &[0, 1], 2, 10)?;
    /// assert!((table.ece - 0.4).abs() < 1e-6);
    /// assert_eq!(table.bins[8].count, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn top_class(
        probs: &[f32],
        labels: &[usize],
        n_classes: usize,
        n_bins: usize,
    ) -> Result<Self> {
        check_table(
            probs,
            labels,
            n_classes,
            "probabilities",
            "a reliability table",
        )?;
        check_probabilities(probs, n_classes)?;
        let points = probs.chunks_exact(n_classes).zip(labels).map(|(row, &y)| {
            let top = argmax(row);
            (row[top] as f64, top == y)
        });
        Self::from_points(ReliabilityKind::TopClass, points, labels.len(), n_bins)
    }

    /// The positive-class table of a binary classifier: `p_positive[i]` is row `i`'s
    /// probability of class 1, `labels[i]` its label (0 or 1); each bin's accuracy is the
    /// fraction of its rows labelled 1.
    ///
    /// ```
    /// use sora_train::Reliability;
    /// # fn main() -> Result<(), sora_train::CalibrationError> {
    /// // Four rows at 0.25, one of them positive: perfectly calibrated.
    /// let table = Reliability::positive_class(&[0.25; 4], &[0, 1, 0, 0], 4)?;
    /// assert_eq!(table.ece, 0.0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn positive_class(p_positive: &[f32], labels: &[usize], n_bins: usize) -> Result<Self> {
        check_rows(p_positive, labels, 1, "probabilities")?;
        check_labels(labels, 2)?;
        check_probabilities(p_positive, 1)?;
        let points = p_positive
            .iter()
            .zip(labels)
            .map(|(&p, &y)| (p as f64, y == 1));
        Self::from_points(ReliabilityKind::PositiveClass, points, labels.len(), n_bins)
    }

    fn from_points(
        kind: ReliabilityKind,
        points: impl Iterator<Item = (f64, bool)>,
        rows: usize,
        n_bins: usize,
    ) -> Result<Self> {
        if n_bins == 0 || n_bins > MAX_BINS {
            return Err(CalibrationError::Bins { found: n_bins });
        }
        let mut count = vec![0usize; n_bins];
        let mut confidence = vec![0.0f64; n_bins];
        let mut right = vec![0usize; n_bins];
        for (c, ok) in points {
            let b = bin_of(c, n_bins);
            count[b] += 1;
            confidence[b] += c;
            right[b] += usize::from(ok);
        }
        let (mut ece, mut mce) = (0.0f64, 0.0f64);
        let bins = (0..n_bins)
            .map(|b| {
                let n_b = count[b];
                let (conf, acc) = if n_b == 0 {
                    (0.0, 0.0)
                } else {
                    (confidence[b] / n_b as f64, right[b] as f64 / n_b as f64)
                };
                if n_b > 0 {
                    let gap = (acc - conf).abs();
                    ece += n_b as f64 / rows as f64 * gap;
                    mce = mce.max(gap);
                }
                ReliabilityBin {
                    lower: b as f64 / n_bins as f64,
                    upper: (b + 1) as f64 / n_bins as f64,
                    count: n_b,
                    confidence: conf,
                    accuracy: acc,
                }
            })
            .collect();
        Ok(Self {
            kind,
            rows,
            ece,
            mce,
            bins,
        })
    }
}

/// The bin `b` with `c ∈ (b/B, (b+1)/B]`; 0 goes to the first bin.
fn bin_of(c: f64, n_bins: usize) -> usize {
    let scaled = (c * n_bins as f64).ceil();
    (scaled as usize).saturating_sub(1).min(n_bins - 1)
}

/// Checks that at least two classes are given.
fn check_classes(n_classes: usize, method: &'static str) -> Result<()> {
    if n_classes < 2 {
        return Err(CalibrationError::Classes {
            method,
            expected: "at least 2 classes",
            n_classes,
        });
    }
    Ok(())
}

/// Checks that `values` (`width ≥ 1` per row) splits into one row per label, and that there is
/// at least one.
fn check_rows(values: &[f32], labels: &[usize], width: usize, what: &'static str) -> Result<()> {
    if labels.is_empty() {
        return Err(CalibrationError::Empty);
    }
    if !values.len().is_multiple_of(width) {
        return Err(CalibrationError::Width {
            what,
            found: values.len(),
            n_classes: width,
        });
    }
    if values.len() / width != labels.len() {
        return Err(CalibrationError::Rows {
            what,
            found: values.len() / width,
            labels: labels.len(),
        });
    }
    Ok(())
}

/// [`check_classes`], [`check_rows`] and [`check_labels`] of `n × n_classes` values.
fn check_table(
    values: &[f32],
    labels: &[usize],
    n_classes: usize,
    what: &'static str,
    method: &'static str,
) -> Result<()> {
    check_classes(n_classes, method)?;
    check_rows(values, labels, n_classes, what)?;
    check_labels(labels, n_classes)
}

fn check_labels(labels: &[usize], n_classes: usize) -> Result<()> {
    match labels.iter().position(|&y| y >= n_classes) {
        Some(row) => Err(CalibrationError::Label {
            row,
            label: labels[row],
            n_classes,
        }),
        None => Ok(()),
    }
}

fn check_probabilities(probs: &[f32], width: usize) -> Result<()> {
    match probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(i) => Err(CalibrationError::Probability {
            row: i / width,
            value: probs[i],
        }),
        None => Ok(()),
    }
}

fn check_finite(values: &[f32], width: usize, what: &'static str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(CalibrationError::NonFinite {
            what,
            row: i / width,
            value: values[i],
        }),
        None => Ok(()),
    }
}

/// `ln Σ exp(beta · z_j)` of one row, stably.
fn log_sum_exp(row: &[f32], beta: f64) -> f64 {
    let max = row
        .iter()
        .map(|&z| beta * z as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    max + row
        .iter()
        .map(|&z| (beta * z as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

/// Softmax of `beta · row`, written into `out`.
fn softmax_into(row: &[f32], beta: f64, out: &mut Vec<f32>) {
    let lse = log_sum_exp(row, beta);
    out.extend(row.iter().map(|&z| (beta * z as f64 - lse).exp() as f32));
}

/// Mean negative log-likelihood of `softmax(beta · z)`.
fn nll(logits: &[f32], labels: &[usize], n_classes: usize, beta: f64) -> f64 {
    let total: f64 = logits
        .chunks_exact(n_classes)
        .zip(labels)
        .map(|(row, &y)| log_sum_exp(row, beta) - beta * row[y] as f64)
        .sum();
    total / labels.len() as f64
}

/// First and second derivatives of [`nll`] in `beta`: the mean of `E_p[z] − z_y` and of
/// `Var_p[z]` under `p = softmax(beta · z)`.
fn nll_derivatives(logits: &[f32], labels: &[usize], n_classes: usize, beta: f64) -> (f64, f64) {
    let (mut first, mut second) = (0.0f64, 0.0f64);
    for (row, &y) in logits.chunks_exact(n_classes).zip(labels) {
        let lse = log_sum_exp(row, beta);
        let (mut mean, mut square) = (0.0f64, 0.0f64);
        for &z in row {
            let z = z as f64;
            let p = (beta * z - lse).exp();
            mean += p * z;
            square += p * z * z;
        }
        first += mean - row[y] as f64;
        second += (square - mean * mean).max(0.0);
    }
    let n = labels.len() as f64;
    (first / n, second / n)
}

/// Temperature scaling (Guo et al. 2017): probabilities `softmax(logits / t)`.
///
/// One parameter, so it changes confidence but never the arg-max class: accuracy is kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    /// The temperature, `> 0`: above 1 softens over-confident probabilities.
    pub t: f64,
}

impl Temperature {
    /// Fits `t` in [`MIN_TEMPERATURE`]`..=`[`MAX_TEMPERATURE`] minimising the mean negative
    /// log-likelihood of `softmax(logits / t)` on held-out logits (`n × n_classes`, row-major)
    /// and labels.
    ///
    /// The likelihood is convex in `1/t`, so a golden-section search on `ln t` over the whole
    /// range brackets the minimum; a few safeguarded Newton steps in `1/t` then polish it. A
    /// minimum beyond the range (e.g. separable rows, where the likelihood keeps improving as
    /// `t → 0`) gives the nearest end. When every row's logits are all equal the likelihood
    /// does not depend on `t`, and `t = 1`.
    ///
    /// ```
    /// use sora_train::Temperature;
    /// # fn main() -> Result<(), sora_train::CalibrationError> {
    /// let logits = [4.0, 0.0, 0.0, 4.0, 4.0, 0.0, 4.0, 0.0];
    /// let t = Temperature::fit(&logits, &[0, 1, 0, 1], 2)?;
    /// // Three of four right: p = 0.75 = sigmoid(4 / t), so t = 4 / ln 3.
    /// assert!((t.t - 4.0 / 3f64.ln()).abs() < 1e-6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit(logits: &[f32], labels: &[usize], n_classes: usize) -> Result<Self> {
        check_table(logits, labels, n_classes, "logits", "temperature scaling")?;
        check_finite(logits, n_classes, "logit")?;
        let flat = logits
            .chunks_exact(n_classes)
            .all(|row| row.iter().all(|&z| z == row[0]));
        if flat {
            return Ok(Self { t: 1.0 });
        }
        let f = |log_t: f64| nll(logits, labels, n_classes, (-log_t).exp());
        // Golden-section search on ln t: the bracket shrinks by 0.618 per step, so 80 steps
        // take its width of ln 1e4 ≈ 9.2 below 1e-15.
        let (mut lo, mut hi) = (MIN_TEMPERATURE.ln(), MAX_TEMPERATURE.ln());
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        let mut x1 = hi - ratio * (hi - lo);
        let mut x2 = lo + ratio * (hi - lo);
        let (mut f1, mut f2) = (f(x1), f(x2));
        for _ in 0..80 {
            if f1 <= f2 {
                hi = x2;
                x2 = x1;
                f2 = f1;
                x1 = hi - ratio * (hi - lo);
                f1 = f(x1);
            } else {
                lo = x1;
                x1 = x2;
                f1 = f2;
                x2 = lo + ratio * (hi - lo);
                f2 = f(x2);
            }
        }
        // The ends are candidates too: the minimum may lie on the boundary.
        let candidates = [
            (MIN_TEMPERATURE, f(MIN_TEMPERATURE.ln())),
            (x1.exp(), f1),
            (x2.exp(), f2),
            (MAX_TEMPERATURE, f(MAX_TEMPERATURE.ln())),
        ];
        let (mut t, _) =
            candidates.into_iter().fold(
                (1.0, f64::INFINITY),
                |best, c| {
                    if c.1 < best.1 { c } else { best }
                },
            );
        // Newton steps in beta = 1/t. The likelihood is convex in beta, so a step is kept while
        // it stays in range and shrinks the gradient (its value is too flat near the minimum
        // to compare in floating point).
        let (beta_lo, beta_hi) = (1.0 / MAX_TEMPERATURE, 1.0 / MIN_TEMPERATURE);
        let mut beta = 1.0 / t;
        let (mut g, mut h) = nll_derivatives(logits, labels, n_classes, beta);
        for _ in 0..8 {
            if h <= 0.0 || g == 0.0 {
                break;
            }
            let next = beta - g / h;
            if !(beta_lo..=beta_hi).contains(&next) {
                break;
            }
            let (g_next, h_next) = nll_derivatives(logits, labels, n_classes, next);
            if g_next.abs() >= g.abs() {
                break;
            }
            (beta, g, h) = (next, g_next, h_next);
            t = 1.0 / beta;
        }
        Ok(Self {
            t: t.clamp(MIN_TEMPERATURE, MAX_TEMPERATURE),
        })
    }

    /// The calibrated probabilities `softmax(logits / t)` of row-major logits
    /// (`n × n_classes`), row-major.
    pub fn apply(&self, logits: &[f32], n_classes: usize) -> Result<Vec<f32>> {
        if !(self.t.is_finite() && self.t > 0.0) {
            return Err(CalibrationError::Parameter {
                what: "temperature",
                value: self.t,
                expected: "a finite positive number",
            });
        }
        softmax_rows(logits, n_classes, 1.0 / self.t)
    }
}

/// `softmax(beta · row)` of every row, after checking the slice.
fn softmax_rows(logits: &[f32], n_classes: usize, beta: f64) -> Result<Vec<f32>> {
    if n_classes == 0 {
        return Err(CalibrationError::Classes {
            method: "a softmax",
            expected: "at least 1 class",
            n_classes,
        });
    }
    if !logits.len().is_multiple_of(n_classes) {
        return Err(CalibrationError::Width {
            what: "logits",
            found: logits.len(),
            n_classes,
        });
    }
    check_finite(logits, n_classes, "logit")?;
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(n_classes) {
        softmax_into(row, beta, &mut out);
    }
    Ok(out)
}

/// `ln(1 + e^x)`, stably.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Platt scaling of a binary classifier: `P(class 1 | s) = sigmoid(a · s + b)` of a score `s`
/// (for a two-logit model, the margin `z₁ − z₀`, which is the log-odds of class 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Slope on the score.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

impl Platt {
    /// Fits `(a, b)` on held-out scores and labels (0 or 1) by maximum likelihood against
    /// Platt's smoothed targets — `(N₊ + 1) / (N₊ + 2)` for class-1 rows and `1 / (N₋ + 2)` for
    /// class-0 rows — the loss and targets of scikit-learn's `_sigmoid_calibration`
    /// (scikit-learn writes `1 / (1 + exp(A·s + B))`, so `a = −A`, `b = −B`). It is minimised
    /// by Newton's method with a backtracking line search (Lin, Lin & Weng, "A note on
    /// Platt's probabilistic outputs for support vector machines", 2007), from `a = 0`,
    /// `b = ln((N₊ + 1) / (N₋ + 1))`.
    ///
    /// ```
    /// use sora_train::Platt;
    /// # fn main() -> Result<(), sora_train::CalibrationError> {
    /// let platt = Platt::fit(&[-2.0, -1.0, 1.0, 2.0, 0.5], &[0, 0, 1, 1, 0])?;
    /// assert!(platt.a > 0.0);
    /// assert!(platt.probability(2.0) > platt.probability(-2.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit(scores: &[f32], labels: &[usize]) -> Result<Self> {
        check_rows(scores, labels, 1, "scores")?;
        check_labels(labels, 2)?;
        check_finite(scores, 1, "score")?;
        let positives = labels.iter().filter(|&&y| y == 1).count();
        let negatives = labels.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(CalibrationError::OneClass {
                class: usize::from(positives > 0),
                rows: labels.len(),
            });
        }
        let (n_pos, n_neg) = (positives as f64, negatives as f64);
        let hi = (n_pos + 1.0) / (n_pos + 2.0);
        let lo = 1.0 / (n_neg + 2.0);
        let targets: Vec<f64> = labels
            .iter()
            .map(|&y| if y == 1 { hi } else { lo })
            .collect();
        let loss = |a: f64, b: f64| -> f64 {
            scores
                .iter()
                .zip(&targets)
                .map(|(&s, &t)| {
                    let f = a * s as f64 + b;
                    softplus(f) - t * f
                })
                .sum()
        };
        let (mut a, mut b) = (0.0, ((n_pos + 1.0) / (n_neg + 1.0)).ln());
        let mut value = loss(a, b);
        // Lin et al.'s settings: a tiny ridge keeps the Hessian invertible, the gradient
        // tolerance is on sums, and the line search gives up below a step of 1e-10.
        let (ridge, tolerance, min_step) = (1e-12, 1e-5, 1e-10);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, ridge, 0.0, ridge);
            for (&s, &t) in scores.iter().zip(&targets) {
                let s = s as f64;
                let p = sigmoid(a * s + b);
                let w = p * (1.0 - p);
                ga += (p - t) * s;
                gb += p - t;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            if ga.abs() < tolerance && gb.abs() < tolerance {
                break;
            }
            let det = haa * hbb - hab * hab;
            let da = -(hbb * ga - hab * gb) / det;
            let db = -(haa * gb - hab * ga) / det;
            let slope = ga * da + gb * db;
            let mut step = 1.0;
            let mut moved = false;
            while step >= min_step {
                let (na, nb) = (a + step * da, b + step * db);
                let next = loss(na, nb);
                if next.is_finite() && next < value + 1e-4 * step * slope {
                    (a, b, value) = (na, nb, next);
                    moved = true;
                    break;
                }
                step /= 2.0;
            }
            if !moved {
                break;
            }
        }
        Ok(Self { a, b })
    }

    /// `sigmoid(a · score + b)`: the calibrated probability of class 1.
    pub fn probability(&self, score: f64) -> f64 {
        sigmoid(self.a * score + self.b)
    }

    fn check(&self) -> Result<()> {
        for (what, value) in [("Platt slope a", self.a), ("Platt intercept b", self.b)] {
            if !value.is_finite() {
                return Err(CalibrationError::Parameter {
                    what,
                    value,
                    expected: "a finite number",
                });
            }
        }
        Ok(())
    }
}

/// A way to calibrate a classifier's probabilities, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// Leave the probabilities as the model gives them.
    #[default]
    None,
    /// [`Temperature`] scaling (any number of classes).
    Temperature,
    /// [`Platt`] scaling (two classes).
    Platt,
}

impl FromStr for CalibrationMethod {
    type Err = CalibrationError;

    /// Parses `none`, `temperature` or `platt`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "temperature" => Ok(Self::Temperature),
            "platt" => Ok(Self::Platt),
            _ => Err(CalibrationError::UnknownMethod {
                found: s.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for CalibrationMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Temperature => "temperature",
            Self::Platt => "platt",
        })
    }
}

/// A fitted calibration, saved beside a model's weights (JSON such as
/// `{"method":"temperature","t":2.1}`) and applied to its logits.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// The plain softmax of the logits.
    #[default]
    None,
    /// `softmax(logits / t)`.
    Temperature(Temperature),
    /// `P(class 1) = sigmoid(a · (z₁ − z₀) + b)` of a two-class model's logits.
    Platt(Platt),
}

impl Calibrator {
    /// Fits `method` on held-out row-major logits (`n × n_classes`) and labels.
    ///
    /// [`CalibrationMethod::Platt`] needs `n_classes == 2`; its score is the margin `z₁ − z₀`.
    ///
    /// ```
    /// use sora_train::{CalibrationMethod, Calibrator};
    /// # fn main() -> Result<(), sora_train::CalibrationError> {
    /// let logits = [1.0, -1.0, -1.0, 1.0, 0.5, 0.0];
    /// let calibrator = Calibrator::fit(CalibrationMethod::Platt, &logits, &[0, 1, 1], 2)?;
    /// let json = serde_json::to_string(&calibrator).unwrap();
    /// assert!(json.starts_with(r#"{"method":"platt""#));
    /// assert_eq!(serde_json::from_str::<Calibrator>(&json).unwrap(), calibrator);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit(
        method: CalibrationMethod,
        logits: &[f32],
        labels: &[usize],
        n_classes: usize,
    ) -> Result<Self> {
        match method {
            CalibrationMethod::None => {
                check_table(logits, labels, n_classes, "logits", "a softmax")?;
                check_finite(logits, n_classes, "logit")?;
                Ok(Self::None)
            }
            CalibrationMethod::Temperature => {
                Temperature::fit(logits, labels, n_classes).map(Self::Temperature)
            }
            CalibrationMethod::Platt => {
                if n_classes != 2 {
                    return Err(CalibrationError::Classes {
                        method: "Platt scaling",
                        expected: "exactly 2 classes",
                        n_classes,
                    });
                }
                check_table(logits, labels, 2, "logits", "Platt scaling")?;
                check_finite(logits, 2, "logit")?;
                Platt::fit(&margins(logits), labels).map(Self::Platt)
            }
        }
    }

    /// The method this calibrator was fitted with.
    pub fn method(&self) -> CalibrationMethod {
        match self {
            Self::None => CalibrationMethod::None,
            Self::Temperature(_) => CalibrationMethod::Temperature,
            Self::Platt(_) => CalibrationMethod::Platt,
        }
    }

    /// The calibrated probabilities of row-major logits (`n × n_classes`), row-major.
    pub fn apply(&self, logits: &[f32], n_classes: usize) -> Result<Vec<f32>> {
        match self {
            Self::None => softmax_rows(logits, n_classes, 1.0),
            Self::Temperature(t) => t.apply(logits, n_classes),
            Self::Platt(platt) => {
                platt.check()?;
                if n_classes != 2 {
                    return Err(CalibrationError::Classes {
                        method: "Platt scaling",
                        expected: "exactly 2 classes",
                        n_classes,
                    });
                }
                if !logits.len().is_multiple_of(2) {
                    return Err(CalibrationError::Width {
                        what: "logits",
                        found: logits.len(),
                        n_classes,
                    });
                }
                check_finite(logits, 2, "logit")?;
                Ok(margins(logits)
                    .into_iter()
                    .flat_map(|s| {
                        let p = platt.probability(s as f64);
                        [(1.0 - p) as f32, p as f32]
                    })
                    .collect())
            }
        }
    }
}

/// `z₁ − z₀` of each row of a two-class model's logits.
fn margins(logits: &[f32]) -> Vec<f32> {
    logits.chunks_exact(2).map(|r| r[1] - r[0]).collect()
}

/// Draws a reliability diagram into a PNG at `path`, written atomically (drawn into a
/// temporary file beside it, then renamed over it).
///
/// The diagonal is perfect calibration; each table's non-empty bins are drawn at (mean
/// confidence, accuracy). `after`, when given, is drawn over `before` (e.g. the same rows
/// after temperature scaling). The legend sits right of the chart, with each table's ECE.
///
/// ```
/// use sora_train::{Reliability, reliability_png};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let before = Reliability::top_class(&[0.9, 0.1, 0.8, 0.2, 0.3, 0.7], &[0, 1, 1], 2, 15)?;
/// let path = dir.path().join("reliability.png");
/// reliability_png(&path, &before, None, "Validation")?;
/// assert!(std::fs::metadata(&path)?.len() > 0);
/// # Ok(())
/// # }
/// ```
pub fn reliability_png(
    path: &Path,
    before: &Reliability,
    after: Option<&Reliability>,
    title: &str,
) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp.png", std::process::id()));
    let result = draw_reliability(&tmp, path, before, after, title).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| CalibrationError::Io {
            file: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Draws the diagram into `tmp` (errors name `path`, the file the user asked for).
fn draw_reliability(
    tmp: &Path,
    path: &Path,
    before: &Reliability,
    after: Option<&Reliability>,
    title: &str,
) -> Result<()> {
    register_font();
    let plot_err = |e: &dyn std::fmt::Display| CalibrationError::Plot {
        file: path.to_path_buf(),
        message: e.to_string(),
    };
    let (w, h) = (900u32, 600u32);
    let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let (plot_area, legend_area) = root.split_horizontally(600);
    let (x_desc, y_desc) = match before.kind {
        ReliabilityKind::TopClass => ("confidence (top-class probability)", "accuracy"),
        ReliabilityKind::PositiveClass => {
            ("predicted probability of class 1", "fraction of class 1")
        }
    };
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)
        .map_err(|e| plot_err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| plot_err(&e))?;
    let diagonal = BLACK.mix(0.5).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            diagonal,
        ))
        .map_err(|e| plot_err(&e))?;
    let series = |table: &Reliability| -> Vec<(f64, f64)> {
        table
            .bins
            .iter()
            .filter(|b| b.count > 0 && b.confidence.is_finite() && b.accuracy.is_finite())
            .map(|b| (b.confidence.clamp(0.0, 1.0), b.accuracy.clamp(0.0, 1.0)))
            .collect()
    };
    let mut legend = vec![(
        "perfect calibration".to_string(),
        diagonal,
        true, // dashed
    )];
    let tables = std::iter::once(("before", before, BLUE)).chain(after.map(|a| ("after", a, RED)));
    for (name, table, color) in tables {
        let points = series(table);
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(|e| plot_err(&e))?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| plot_err(&e))?;
        let label = if after.is_some() {
            format!("{name}: ECE {:.3}", table.ece)
        } else {
            format!("ECE {:.3}", table.ece)
        };
        legend.push((label, style, false));
    }
    let font = ("sans-serif", 16).into_font();
    let top = 60;
    for (i, (label, style, dashed)) in legend.iter().enumerate() {
        let y = top + 28 * i as i32;
        let segment = [(16, y), (52, y)];
        if *dashed {
            legend_area
                .draw(&DashedPathElement::new(segment, 6, 4, *style))
                .map_err(|e| plot_err(&e))?;
        } else {
            legend_area
                .draw(&PathElement::new(segment, *style))
                .map_err(|e| plot_err(&e))?;
            legend_area
                .draw(&Circle::new((34, y), 4, style.color.filled()))
                .map_err(|e| plot_err(&e))?;
        }
        legend_area
            .draw(&Text::new(label.as_str(), (62, y - 8), font.clone()))
            .map_err(|e| plot_err(&e))?;
    }
    let note = format!(
        "{} rows, {} equal-width bins",
        before.rows,
        before.bins.len()
    );
    let y = top + 28 * legend.len() as i32 + 12;
    legend_area
        .draw(&Text::new(note, (16, y), font))
        .map_err(|e| plot_err(&e))?;
    root.present().map_err(|e| plot_err(&e))?;
    Ok(())
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

    /// A perfectly calibrated model: logits `N(0, scale²)` per class, labels drawn from their
    /// softmax.
    fn calibrated(n: usize, n_classes: usize, scale: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut logits = Vec::with_capacity(n * n_classes);
        let mut labels = Vec::with_capacity(n);
        let mut probs = Vec::new();
        for _ in 0..n {
            let row: Vec<f32> = (0..n_classes)
                .map(|_| (scale * normal(&mut rng)) as f32)
                .collect();
            probs.clear();
            softmax_into(&row, 1.0, &mut probs);
            let u: f32 = rng.random();
            let mut acc = 0.0;
            let mut y = n_classes - 1;
            for (c, &p) in probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    y = c;
                    break;
                }
            }
            logits.extend(row);
            labels.push(y);
        }
        (logits, labels)
    }

    fn softmax(logits: &[f32], n_classes: usize) -> Vec<f32> {
        softmax_rows(logits, n_classes, 1.0).unwrap()
    }

    #[test]
    fn calibrated_model_has_small_ece() {
        let (logits, labels) = calibrated(20_000, 4, 2.0, 1);
        let table = Reliability::top_class(&softmax(&logits, 4), &labels, 4, DEFAULT_BINS).unwrap();
        // Sampling noise alone: about Σ_b (n_b/n) sqrt(p(1−p)/n_b) ≲ sqrt(B/n)/2 ≈ 0.014.
        assert!(table.ece < 0.02, "ECE {}", table.ece);
        assert_eq!(table.bins.iter().map(|b| b.count).sum::<usize>(), 20_000);
        // Top-class confidence is at least 1/4 with 4 classes: the first 3 bins are empty.
        assert!(table.bins[..3].iter().all(|b| b.count == 0));
    }

    #[test]
    fn temperature_recovers_the_overconfidence_factor() {
        let (logits, labels) = calibrated(5_000, 4, 1.5, 2);
        let hot: Vec<f32> = logits.iter().map(|z| 3.0 * z).collect();
        let before = Reliability::top_class(&softmax(&hot, 4), &labels, 4, DEFAULT_BINS).unwrap();
        let t = Temperature::fit(&hot, &labels, 4).unwrap();
        // The maximum-likelihood estimate of T = 3 from 5000 rows: the Fisher information of
        // 1/T is n · E[Var_p(z)] ≈ 5000 · 13 here, so the standard error of T is about
        // T² / sqrt(65 000) ≈ 0.04, and ±0.2 is five of them.
        assert!((t.t - 3.0).abs() < 0.2, "t = {}", t.t);
        let probs = t.apply(&hot, 4).unwrap();
        let after = Reliability::top_class(&probs, &labels, 4, DEFAULT_BINS).unwrap();
        assert!(before.ece > 0.1, "before {}", before.ece);
        assert!(
            after.ece < before.ece / 4.0,
            "{} → {}",
            before.ece,
            after.ece
        );
        // Temperature scaling keeps the arg-max class, so the accuracy.
        for (a, b) in hot.chunks(4).zip(probs.chunks(4)) {
            assert_eq!(argmax(a), argmax(b));
        }
    }

    #[test]
    fn temperature_fit_is_a_minimum_and_deterministic() {
        let (logits, labels) = calibrated(500, 3, 2.0, 3);
        let t = Temperature::fit(&logits, &labels, 3).unwrap();
        assert_eq!(t, Temperature::fit(&logits, &labels, 3).unwrap());
        let at = |t: f64| nll(&logits, &labels, 3, 1.0 / t);
        assert!(at(t.t) <= at(t.t * 1.01) && at(t.t) <= at(t.t / 1.01));
        let (g, _) = nll_derivatives(&logits, &labels, 3, 1.0 / t.t);
        assert!(g.abs() < 1e-9, "gradient {g}");
    }

    #[test]
    fn temperature_edge_cases() {
        // Separable rows: the likelihood improves as t → 0, so the lower end.
        let t = Temperature::fit(&[1.0, 0.0, 0.0, 1.0], &[0, 1], 2).unwrap();
        assert_eq!(t.t, MIN_TEMPERATURE);
        // Constant rows carry no information.
        let t = Temperature::fit(&[0.5, 0.5, 2.0, 2.0], &[0, 1], 2).unwrap();
        assert_eq!(t.t, 1.0);
    }

    #[test]
    fn platt_recovers_a_logistic_model() {
        let (a, b) = (1.5, -0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = 20_000;
        let scores: Vec<f32> = (0..n).map(|_| (2.0 * normal(&mut rng)) as f32).collect();
        let labels: Vec<usize> = scores
            .iter()
            .map(|&s| usize::from(rng.random::<f64>() < sigmoid(a * s as f64 + b)))
            .collect();
        let platt = Platt::fit(&scores, &labels).unwrap();
        // Standard errors of the MLE at n = 20 000 are about 0.03 (a) and 0.02 (b); the
        // smoothed targets shift the fit by O(1/n).
        assert!((platt.a - a).abs() < 0.1, "a = {}", platt.a);
        assert!((platt.b - b).abs() < 0.1, "b = {}", platt.b);
    }

    #[test]
    fn platt_through_the_calibrator_uses_the_margin() {
        // Margins z₁ − z₀ exact in f32: 2, −2, 0.25, 1.25.
        let logits = [0.0, 2.0, 1.0, -1.0, 0.25, 0.5, -0.5, 0.75];
        let labels = [1, 0, 1, 1];
        let calibrator = Calibrator::fit(CalibrationMethod::Platt, &logits, &labels, 2).unwrap();
        let direct = Platt::fit(&[2.0, -2.0, 0.25, 1.25], &labels).unwrap();
        assert_eq!(calibrator, Calibrator::Platt(direct));
        let probs = calibrator.apply(&logits, 2).unwrap();
        assert!((probs[1] as f64 - direct.probability(2.0)).abs() < 1e-6);
        assert!((probs[0] + probs[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn calibrator_round_trips_through_json() {
        for calibrator in [
            Calibrator::None,
            Calibrator::Temperature(Temperature { t: 2.5 }),
            Calibrator::Platt(Platt { a: 1.25, b: -0.5 }),
        ] {
            let json = serde_json::to_string(&calibrator).unwrap();
            assert_eq!(
                serde_json::from_str::<Calibrator>(&json).unwrap(),
                calibrator
            );
        }
        assert_eq!(
            serde_json::to_string(&Calibrator::Temperature(Temperature { t: 2.5 })).unwrap(),
            r#"{"method":"temperature","t":2.5}"#
        );
        assert_eq!(
            "temperature".parse::<CalibrationMethod>().unwrap(),
            CalibrationMethod::Temperature
        );
        assert!(matches!(
            "isotonic".parse::<CalibrationMethod>(),
            Err(CalibrationError::UnknownMethod { found }) if found == "isotonic"
        ));
    }

    #[test]
    fn bins_are_half_open_on_the_left() {
        assert_eq!(bin_of(0.0, 10), 0);
        assert_eq!(bin_of(0.1, 10), 0);
        assert_eq!(bin_of(0.100001, 10), 1);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(1.0, 1), 0);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(matches!(
            Reliability::top_class(&[], &[], 2, 15),
            Err(CalibrationError::Empty)
        ));
        assert!(matches!(
            Temperature::fit(&[1.0, 2.0, 3.0], &[0], 2),
            Err(CalibrationError::Width {
                found: 3,
                n_classes: 2,
                ..
            })
        ));
        assert!(matches!(
            Temperature::fit(&[1.0, 2.0, 3.0, 4.0], &[0], 2),
            Err(CalibrationError::Rows {
                found: 2,
                labels: 1,
                ..
            })
        ));
        let err = Temperature::fit(&[1.0, 2.0, 3.0, 4.0], &[0, 2], 2).unwrap_err();
        assert!(matches!(
            err,
            CalibrationError::Label {
                row: 1,
                label: 2,
                n_classes: 2
            }
        ));
        assert_eq!(
            err.to_string(),
            "calibration: row 1: label 2 is out of range for 2 classes"
        );
        assert!(matches!(
            Temperature::fit(&[1.0, f32::NAN], &[0], 2),
            Err(CalibrationError::NonFinite { row: 0, .. })
        ));
        assert!(matches!(
            Reliability::top_class(&[0.5, 1.5], &[0], 2, 15),
            Err(CalibrationError::Probability { row: 0, .. })
        ));
        assert!(matches!(
            Reliability::top_class(&[0.5, 0.5], &[0], 2, 0),
            Err(CalibrationError::Bins { found: 0 })
        ));
        assert!(matches!(
            Reliability::top_class(&[0.5, 0.5], &[0], 2, MAX_BINS + 1),
            Err(CalibrationError::Bins { .. })
        ));
        assert!(matches!(
            Reliability::positive_class(&[0.5, 0.5], &[0, 2], 15),
            Err(CalibrationError::Label { row: 1, .. })
        ));
        assert!(matches!(
            Calibrator::fit(CalibrationMethod::Platt, &[0.0; 6], &[0, 1], 3),
            Err(CalibrationError::Classes { n_classes: 3, .. })
        ));
        assert!(matches!(
            Temperature::fit(&[0.0; 2], &[0, 0], 1),
            Err(CalibrationError::Classes { n_classes: 1, .. })
        ));
        assert!(matches!(
            Platt::fit(&[0.1, 0.2], &[1, 1]),
            Err(CalibrationError::OneClass { class: 1, rows: 2 })
        ));
        assert!(matches!(
            Temperature { t: -1.0 }.apply(&[0.0, 1.0], 2),
            Err(CalibrationError::Parameter { .. })
        ));
    }

    #[test]
    fn reliability_png_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let (logits, labels) = calibrated(400, 3, 2.0, 5);
        let hot: Vec<f32> = logits.iter().map(|z| 3.0 * z).collect();
        let before = Reliability::top_class(&softmax(&hot, 3), &labels, 3, 10).unwrap();
        let t = Temperature::fit(&hot, &labels, 3).unwrap();
        let after = Reliability::top_class(&t.apply(&hot, 3).unwrap(), &labels, 3, 10).unwrap();
        let path = dir.path().join("reliability.png");
        reliability_png(&path, &before, Some(&after), "Validation").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Only the PNG is left: the temporary file was renamed.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // A directory that does not exist: an error naming the file, nothing left behind.
        let missing = dir.path().join("no/such/dir/reliability.png");
        let err = reliability_png(&missing, &before, None, "x").unwrap_err();
        assert!(err.to_string().contains("reliability.png"), "{err}");
    }
}
