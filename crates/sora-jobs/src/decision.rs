//! What a classifier or a regressor decides from its outputs, for every kind that has
//! them: fitted once training ends on held-out predictions ([`HeldOut`]), saved beside the
//! model ([`DECISION_FILE`]), and applied by every verb that scores rows (`predict`, `eval`,
//! `serve`) through [`Decided`].
//!
//! - **Calibration** (`--calibration`, on by default): temperature scaling of the
//!   probabilities (or Platt scaling of two classes), fitted on the validation part. The
//!   expected calibration error before and after is measured on the test part and drawn as a
//!   reliability diagram ([`RELIABILITY_FILE`]).
//! - **A decision threshold** (`--threshold f1 | precision>=P | recall>=R | cost:FP,FN`, two
//!   classes): the class-1 probability above which a row is predicted class 1, chosen on the
//!   validation part's calibrated probabilities.
//! - **Conformal prediction** (`--coverage 0.9`): split-conformal prediction sets of classes
//!   (LAC score) or intervals around predicted values, calibrated on the validation part, so
//!   that the true class or value is in the set with probability at least the coverage. The
//!   test part shows the coverage reached.
//!
//! The validation part also chose the epoch kept (early stopping); one number fitted on it
//! (the temperature) adds little, and the test part — untouched by all of it — is where each
//! claim is checked. After cross-validation, the pooled out-of-fold predictions of the first
//! repeat (every example once, each predicted by a model that never saw it) are what the
//! decision is fitted on.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sora_core::{Encoder, Model as Net};
use sora_train::{
    CalibrationMethod, Calibrator, ClassificationMetrics, ConformalClassifier, ConformalRegressor,
    ConformalScore, Metrics, Objective, RegressionMetrics, Reliability, Targets, Threshold,
    TradeOff, TrainData, Trainer,
};

use crate::explain::{ExplainRequest, Explanation};
use crate::generation::{GenerateRequest, Generated};
use crate::recommendation::UserItems;
use crate::{Batch, Evaluation, Input, JobError, Model, ModelInfo, Outputs, Result, Trained, Verb};

/// File of the fitted decision inside a model directory.
pub const DECISION_FILE: &str = "decision.json";
/// The reliability diagram (before and after calibration) inside a model directory.
pub const RELIABILITY_FILE: &str = "reliability.png";
/// Equal-width bins of the reliability tables (as Guo et al. 2017).
pub const RELIABILITY_BINS: usize = 15;
/// The smallest probability a logit is taken of (`ln` of it is a finite logit).
const PROBABILITY_FLOOR: f32 = 1e-30;

/// Predictions of held-out examples, and their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Class probabilities or values, row-major (`n × d`).
    pub predictions: Vec<f32>,
    /// The targets.
    pub targets: Targets,
}

impl Scored {
    /// The predictions of `model` on `data` (in evaluation mode, on the trainer's device).
    pub fn of<E, D>(
        trainer: &Trainer,
        model: &Net<E>,
        data: &D,
    ) -> std::result::Result<Self, sora_train::TrainError>
    where
        E: Encoder,
        D: TrainData<Input = E::Input>,
    {
        Ok(Self {
            predictions: trainer.predict(model, data)?,
            targets: data.targets().clone(),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Every metric, with bootstrap confidence intervals.
    pub fn metrics(&self) -> Metrics {
        let metrics = match &self.targets {
            Targets::Classes { labels, n_classes } => Metrics::Classification(
                ClassificationMetrics::compute(&self.predictions, labels, *n_classes),
            ),
            Targets::Values { values, d } => {
                Metrics::Regression(RegressionMetrics::compute(&self.predictions, values, *d))
            }
        };
        metrics.with_intervals(&self.predictions, &self.targets)
    }

    /// The examples of several parts one after the other (`None` for no part, or parts of
    /// different tasks).
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Scored>) -> Option<Scored> {
        let mut iter = parts.into_iter();
        let mut out = iter.next()?.clone();
        for part in iter {
            out.predictions.extend_from_slice(&part.predictions);
            match (&mut out.targets, &part.targets) {
                (
                    Targets::Classes { labels, n_classes },
                    Targets::Classes {
                        labels: l,
                        n_classes: k,
                    },
                ) if n_classes == k => labels.extend_from_slice(l),
                (Targets::Values { values, d }, Targets::Values { values: v, d: e }) if d == e => {
                    values.extend_from_slice(v)
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// The mean prediction of several models on the same examples (an ensemble's), or `None`
    /// when they are not the same examples.
    pub fn mean(members: &[Scored]) -> Option<Scored> {
        let first = members.first()?;
        if members
            .iter()
            .any(|m| m.targets != first.targets || m.predictions.len() != first.predictions.len())
        {
            return None;
        }
        let parts: Vec<&[f32]> = members.iter().map(|m| m.predictions.as_slice()).collect();
        Some(Scored {
            predictions: mean_of(&parts)?,
            targets: first.targets.clone(),
        })
    }

    fn classes(&self) -> Option<(&[usize], usize)> {
        match &self.targets {
            Targets::Classes { labels, n_classes } => Some((labels, *n_classes)),
            Targets::Values { .. } => None,
        }
    }
}

/// The element-wise mean of equally long slices (an ensemble's members' outputs), summed in
/// member order; `None` for none, or slices of different lengths.
pub fn mean_of(parts: &[&[f32]]) -> Option<Vec<f32>> {
    let first = parts.first()?;
    if parts.iter().any(|p| p.len() != first.len()) {
        return None;
    }
    let n = parts.len() as f32;
    Some(
        (0..first.len())
            .map(|i| parts.iter().map(|p| p[i]).sum::<f32>() / n)
            .collect(),
    )
}

/// A run's held-out predictions: what the decision is fitted on, and what checks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldOut {
    /// Predictions the decision is fitted on (the validation part, or out-of-fold
    /// predictions after cross-validation).
    pub fit: Option<Scored>,
    /// What [`fit`](Self::fit) is, in words (`the validation part`, …).
    pub fit_name: String,
    /// Predictions of the test part, which checks the decision.
    pub test: Option<Scored>,
    /// The classes of a classifier, in output order.
    pub classes: Option<Vec<String>>,
}

impl HeldOut {
    /// The validation and test parts of a plain run.
    pub fn parts(valid: Option<Scored>, test: Option<Scored>) -> Self {
        Self {
            fit: valid.filter(|v| !v.is_empty()),
            fit_name: "the validation part".into(),
            test: test.filter(|t| !t.is_empty()),
            classes: None,
        }
    }
}

/// How to calibrate (`--calibration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CalibrationChoice {
    /// Temperature scaling of a classifier when there is a validation part.
    #[default]
    Auto,
    /// One method, required.
    Method(CalibrationMethod),
}

/// The decision a run is asked for on the command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionOptions {
    /// `--calibration`.
    pub calibration: CalibrationChoice,
    /// `--threshold`.
    pub threshold: Option<Objective>,
    /// `--coverage`.
    pub coverage: Option<f64>,
}

impl DecisionOptions {
    /// Parses and checks the options' text (`--calibration auto|none|temperature|platt`,
    /// `--threshold OBJECTIVE`, `--coverage C`), naming the option at fault.
    pub fn parse(
        calibration: Option<&str>,
        threshold: Option<&str>,
        coverage: Option<f64>,
    ) -> Result<Self> {
        let calibration = match calibration {
            None | Some("auto") => CalibrationChoice::Auto,
            Some(text) => CalibrationChoice::Method(text.parse().map_err(|_| {
                JobError::invalid(
                    "--calibration",
                    "auto, none, temperature or platt",
                    format!("{text:?}"),
                )
            })?),
        };
        let threshold = threshold
            .map(|t| t.parse::<Objective>())
            .transpose()
            .map_err(JobError::Threshold)?;
        if let Some(c) = coverage {
            sora_train::conformal::min_calibration_rows(c).map_err(JobError::Conformal)?;
        }
        Ok(Self {
            calibration,
            threshold,
            coverage,
        })
    }

    /// Whether any option was given (the default fits calibration only where it can).
    fn asked(&self) -> bool {
        self.calibration != CalibrationChoice::Auto
            || self.threshold.is_some()
            || self.coverage.is_some()
    }

    /// Refuses every option for a kind whose outputs are neither classes nor values.
    pub fn refuse(&self, kind: &str) -> Result<()> {
        let given = [
            ("--calibration", self.calibration != CalibrationChoice::Auto),
            ("--threshold", self.threshold.is_some()),
            ("--coverage", self.coverage.is_some()),
        ];
        crate::CommonOptions::refuse(kind, &given)
    }
}

/// A fitted decision, as saved in [`DECISION_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// How a classifier's probabilities are calibrated (`none` for a regressor).
    pub calibration: Calibrator,
    /// A two-class decision threshold on the calibrated probability of class 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// The precision–recall trade-off the threshold was chosen from (every candidate
    /// threshold on the fitted-on rows' calibrated probabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_off: Option<TradeOff>,
    /// Conformal prediction sets of classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sets: Option<ConformalClassifier>,
    /// Conformal intervals around predicted values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<ConformalRegressor>,
    /// Why calibration was asked for (or on by default) and not fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_note: Option<String>,
    /// What it was fitted on, in words, and how many examples.
    pub fitted_on: String,
    /// Rows it was fitted on.
    pub fit_rows: usize,
    /// Expected calibration error of the fitted-on rows, before and after calibration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_ece: Option<[f64; 2]>,
    /// How it does on the test part, when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Check>,
}

/// How a decision does on labelled rows it was not fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Rows checked.
    pub rows: usize,
    /// Expected calibration error before and after calibration (classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece: Option<[f64; 2]>,
    /// At the threshold: precision, recall, F1 and accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_threshold: Option<AtThreshold>,
    /// The fraction of rows whose class (or every value) is in its set (or interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Mean number of classes in a set, or mean interval width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_size: Option<f64>,
}

/// A threshold's scores on labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    /// `TP / (TP + FP)` (0 with no row predicted positive).
    pub precision: f64,
    /// `TP / (TP + FN)`.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Fraction of rows right.
    pub accuracy: f64,
}

/// A decision fitted at the end of a run, with what is saved beside it.
#[derive(Debug, Clone)]
pub struct FittedDecision {
    /// The decision.
    pub decision: Decision,
    /// The reliability diagram (PNG), for a calibrated classifier.
    pub reliability: Option<Vec<u8>>,
}

fn logits(probs: &[f32]) -> Vec<f32> {
    probs
        .iter()
        .map(|p| p.max(PROBABILITY_FLOOR).ln())
        .collect()
}

fn ece(probs: &[f32], labels: &[usize], k: usize) -> Result<Reliability> {
    Ok(Reliability::top_class(probs, labels, k, RELIABILITY_BINS)?)
}

impl Decision {
    /// Fits what `options` asks on `held.fit` (calibration by default for a classifier),
    /// and checks it on `held.test`. `None` when there is nothing to fit: a regressor without
    /// `--coverage`, `--calibration none` alone, or a run without held-out predictions and no
    /// option given (given options without them are an error).
    pub fn fit(options: &DecisionOptions, held: &HeldOut) -> Result<Option<FittedDecision>> {
        let Some(fit) = &held.fit else {
            if options.asked() {
                return Err(JobError::OptionNotForKind {
                    option: "--calibration/--threshold/--coverage".into(),
                    reason: "they are fitted on a run's held-out predictions of classes or \
                             values, and this run has none (no validation part, or a kind \
                             that predicts neither)"
                        .into(),
                });
            }
            return Ok(None);
        };
        let mut decision = Decision {
            calibration: Calibrator::None,
            threshold: None,
            trade_off: None,
            sets: None,
            intervals: None,
            calibration_note: None,
            fitted_on: format!("{} ({} rows)", held.fit_name, fit.len()),
            fit_rows: fit.len(),
            fit_ece: None,
            test: None,
        };
        let mut reliability = None;
        match fit.classes() {
            Some((labels, k)) => {
                let method = match options.calibration {
                    CalibrationChoice::Auto => CalibrationMethod::Temperature,
                    CalibrationChoice::Method(m) => m,
                };
                if method == CalibrationMethod::Platt && k != 2 {
                    return Err(JobError::invalid(
                        "--calibration platt",
                        "a model of two classes",
                        format!("{k} classes"),
                    ));
                }
                decision.calibration =
                    Calibrator::fit(method, &logits(&fit.predictions), labels, k)?;
                // A temperature at the end of its range is no estimate: the likelihood keeps
                // improving towards it, as on rows the model separates perfectly (t → 0 would
                // make every probability 0 or 1, and rows unlike these would be scored by
                // ties). Such a fit is left out.
                if let Calibrator::Temperature(t) = decision.calibration {
                    let at_end = t.t <= sora_train::calibration::MIN_TEMPERATURE * 1.001
                        || t.t >= sora_train::calibration::MAX_TEMPERATURE / 1.001;
                    if at_end {
                        decision.calibration = Calibrator::None;
                        decision.calibration_note = Some(format!(
                            "temperature scaling left out: on {} the likelihood improves up to \
                             the end of the temperature's range (t = {:.3}), as when the model \
                             separates those rows perfectly; no temperature is estimated from \
                             them",
                            held.fit_name, t.t
                        ));
                    }
                }
                let calibrated = decision.calibrate(&fit.predictions, k)?;
                decision.fit_ece = Some([
                    ece(&fit.predictions, labels, k)?.ece,
                    ece(&calibrated, labels, k)?.ece,
                ]);
                if let Some(objective) = options.threshold {
                    if k != 2 {
                        return Err(JobError::invalid(
                            "--threshold",
                            "a model of two classes",
                            format!("{k} classes"),
                        ));
                    }
                    let positive: Vec<f32> = calibrated.chunks_exact(2).map(|r| r[1]).collect();
                    let curve = TradeOff::compute(&positive, labels)?;
                    decision.threshold = Some(curve.choose(objective)?);
                    decision.trade_off = Some(curve);
                }
                if let Some(coverage) = options.coverage {
                    // Sets may be empty, so that they hold the coverage asked for rather than
                    // the accuracy when the model is right more often than that.
                    decision.sets = Some(
                        ConformalClassifier::calibrate(
                            &calibrated,
                            labels,
                            k,
                            coverage,
                            ConformalScore::Lac,
                        )?
                        .allowing_empty(),
                    );
                }
                if decision.calibration == Calibrator::None
                    && decision.calibration_note.is_none()
                    && decision.threshold.is_none()
                    && decision.sets.is_none()
                {
                    return Ok(None);
                }
                // The diagram: the test part when there is one (rows nothing was fitted on).
                let (rows, name) = match &held.test {
                    Some(test) => (test, "test part"),
                    None => (fit, "rows fitted on"),
                };
                if let (Some((labels, k)), true) =
                    (rows.classes(), decision.calibration != Calibrator::None)
                {
                    let before = ece(&rows.predictions, labels, k)?;
                    let after = ece(&decision.calibrate(&rows.predictions, k)?, labels, k)?;
                    reliability = Some(reliability_png(&before, &after, name)?);
                }
            }
            None => {
                if options.calibration != CalibrationChoice::Auto {
                    return Err(JobError::OptionNotForKind {
                        option: "--calibration".into(),
                        reason: "it calibrates class probabilities; this model predicts values"
                            .into(),
                    });
                }
                if options.threshold.is_some() {
                    return Err(JobError::OptionNotForKind {
                        option: "--threshold".into(),
                        reason: "it is a threshold on a class probability; this model \
                                 predicts values"
                            .into(),
                    });
                }
                let Some(coverage) = options.coverage else {
                    return Ok(None);
                };
                let Targets::Values { values, d } = &fit.targets else {
                    unreachable!("a scored part without classes has values")
                };
                decision.intervals = Some(ConformalRegressor::calibrate(
                    &fit.predictions,
                    values,
                    *d,
                    coverage,
                )?);
            }
        }
        if let Some(test) = &held.test {
            decision.test = Some(decision.check(test)?);
        }
        Ok(Some(FittedDecision {
            decision,
            reliability,
        }))
    }

    /// Calibrated probabilities (`n × k`).
    pub fn calibrate(&self, probs: &[f32], k: usize) -> Result<Vec<f32>> {
        Ok(match self.calibration {
            Calibrator::None => probs.to_vec(),
            c => c.apply(&logits(probs), k)?,
        })
    }

    /// The decision applied to a model's outputs: calibrated probabilities, the class each
    /// row is given at the threshold, prediction sets, intervals.
    pub fn apply(&self, outputs: Outputs) -> Result<Outputs> {
        Ok(match outputs {
            Outputs::Classes {
                classes,
                probabilities,
                ..
            } => {
                let k = classes.len();
                let probabilities = self.calibrate(&probabilities, k)?;
                let labels = self.threshold.as_ref().map(|t| {
                    probabilities
                        .chunks_exact(k)
                        .map(|r| usize::from(t.predict(r[1])))
                        .collect()
                });
                let sets = self
                    .sets
                    .as_ref()
                    .map(|s| s.predict_sets(&probabilities))
                    .transpose()?;
                Outputs::Classes {
                    classes,
                    probabilities,
                    labels,
                    sets,
                }
            }
            Outputs::Values { names, values, .. } => {
                let intervals = self
                    .intervals
                    .as_ref()
                    .map(|c| c.intervals(&values))
                    .transpose()?
                    .map(|i| i.iter().map(|i| [i.lower as f32, i.upper as f32]).collect());
                Outputs::Values {
                    names,
                    values,
                    intervals,
                }
            }
            other => other,
        })
    }

    /// How the decision does on labelled predictions it was not fitted on (raw, as the
    /// model gives them).
    pub fn check(&self, rows: &Scored) -> Result<Check> {
        let n = rows.len();
        let mut check = Check {
            rows: n,
            ece: None,
            at_threshold: None,
            coverage: None,
            mean_size: None,
        };
        match &rows.targets {
            Targets::Classes { labels, n_classes } => {
                let k = *n_classes;
                let calibrated = self.calibrate(&rows.predictions, k)?;
                check.ece = Some([
                    ece(&rows.predictions, labels, k)?.ece,
                    ece(&calibrated, labels, k)?.ece,
                ]);
                if let Some(t) = &self.threshold {
                    let [mut tp, mut fp, mut fn_, mut tn] = [0usize; 4];
                    for (r, &y) in calibrated.chunks_exact(k).zip(labels) {
                        match (t.predict(r[1]), y == 1) {
                            (true, true) => tp += 1,
                            (true, false) => fp += 1,
                            (false, true) => fn_ += 1,
                            (false, false) => tn += 1,
                        }
                    }
                    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
                    let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
                    let f1 = if precision + recall > 0.0 {
                        2.0 * precision * recall / (precision + recall)
                    } else {
                        0.0
                    };
                    check.at_threshold = Some(AtThreshold {
                        precision,
                        recall,
                        f1,
                        accuracy: ratio(tp + tn, n),
                    });
                }
                if let Some(s) = &self.sets {
                    let sets = s.predict_sets(&calibrated)?;
                    let covered = sets.iter().zip(labels).filter(|(s, y)| s.contains(y));
                    check.coverage = Some(covered.count() as f64 / n.max(1) as f64);
                    check.mean_size =
                        Some(sets.iter().map(Vec::len).sum::<usize>() as f64 / n.max(1) as f64);
                }
            }
            Targets::Values { values, d } => {
                if let Some(c) = &self.intervals {
                    let intervals = c.intervals(&rows.predictions)?;
                    let rows_covered = values
                        .chunks_exact(*d)
                        .zip(intervals.chunks_exact(*d))
                        .filter(|(v, i)| v.iter().zip(*i).all(|(&v, i)| i.contains(v as f64)))
                        .count();
                    check.coverage = Some(rows_covered as f64 / n.max(1) as f64);
                    check.mean_size = Some(
                        intervals.iter().map(|i| i.upper - i.lower).sum::<f64>()
                            / intervals.len().max(1) as f64,
                    );
                }
            }
        }
        Ok(check)
    }

    /// What the decision is, and how it does on `check` (its `name`d rows), as the program
    /// prints it.
    pub fn describe(&self, classes: Option<&[String]>, check: Option<(&Check, &str)>) -> String {
        let mut out = String::new();
        let class = |i: usize| {
            classes
                .and_then(|c| c.get(i))
                .cloned()
                .unwrap_or_else(|| i.to_string())
        };
        match self.calibration {
            Calibrator::None => {}
            Calibrator::Temperature(t) => out.push_str(&format!(
                "calibration: temperature scaling, t = {:.3}, fitted on {}\n",
                t.t, self.fitted_on
            )),
            Calibrator::Platt(p) => out.push_str(&format!(
                "calibration: Platt scaling, a = {:.3}, b = {:.3}, fitted on {}\n",
                p.a, p.b, self.fitted_on
            )),
        }
        if let Some(note) = &self.calibration_note {
            out.push_str(&format!("calibration: {note}\n"));
        }
        let calibrated = self.calibration != Calibrator::None;
        if let (Some([before, after]), true) = (self.fit_ece, calibrated) {
            out.push_str(&format!(
                "  expected calibration error there: {before:.4} → {after:.4}\n"
            ));
        }
        if let (Some((c, name)), true) = (check, calibrated)
            && let Some([before, after]) = c.ece
        {
            out.push_str(&format!(
                "  expected calibration error on the {name} ({} rows, {RELIABILITY_BINS} bins): \
                 {before:.4} → {after:.4}\n",
                c.rows
            ));
        }
        if let Some(t) = &self.threshold {
            out.push_str(&format!(
                "threshold ({}): `{}` when P({}) ≥ {:.4}, chosen on {}: precision {:.4}, \
                 recall {:.4}, F1 {:.4}\n",
                t.objective,
                class(1),
                class(1),
                t.point.threshold,
                self.fitted_on,
                t.point.precision,
                t.point.recall,
                t.point.f1
            ));
            if let Some((
                Check {
                    at_threshold: Some(a),
                    ..
                },
                name,
            )) = check
            {
                out.push_str(&format!(
                    "  on the {name}: precision {:.4}, recall {:.4}, F1 {:.4}, accuracy {:.4}\n",
                    a.precision, a.recall, a.f1, a.accuracy
                ));
            }
        }
        let conformal = match (&self.sets, &self.intervals) {
            (Some(s), _) => Some(("prediction sets", s.coverage, s.q_hat, "classes per set")),
            (None, Some(i)) => Some((
                "prediction intervals",
                i.coverage,
                i.q_hat.first().copied().unwrap_or(0.0),
                "mean width",
            )),
            (None, None) => None,
        };
        if let Some((what, coverage, q_hat, size)) = conformal {
            out.push_str(&format!(
                "{what} at {:.1} % coverage (split conformal, q̂ = {q_hat:.4}), calibrated on {}\n",
                coverage * 100.0,
                self.fitted_on
            ));
            if let Some((
                Check {
                    coverage: Some(c),
                    mean_size: Some(m),
                    rows,
                    ..
                },
                name,
            )) = check
            {
                out.push_str(&format!(
                    "  on the {name}: coverage {c:.4} of {rows} rows, {size} {m:.3}\n"
                ));
            }
        }
        out
    }

    /// Reads a model directory's decision, if it has one.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let file = dir.join(DECISION_FILE);
        if !file.is_file() {
            return Ok(None);
        }
        let bytes = sora_core::weights::read_bounded(&file, sora_core::weights::MAX_JSON_BYTES)
            .map_err(JobError::io(&file))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JobError::Parse {
                file: file.clone(),
                message: e.to_string(),
                source: e.into(),
            })
    }

    /// The JSON saved in [`DECISION_FILE`].
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a decision serialises")
    }
}

/// The reliability diagram as PNG bytes.
fn reliability_png(before: &Reliability, after: &Reliability, rows: &str) -> Result<Vec<u8>> {
    static DRAWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = DRAWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("sora-reliability-{}-{n}.png", std::process::id()));
    let drawn = sora_train::reliability_png(
        &path,
        before,
        Some(after),
        &format!("Reliability on the {rows} ({} rows)", before.rows),
    );
    let bytes = drawn
        .map_err(JobError::from)
        .and_then(|()| std::fs::read(&path).map_err(JobError::io(&path)));
    let _ = std::fs::remove_file(&path);
    bytes
}

/// A run with its decision: prints it after the run's report, saves it beside the model.
pub struct Finished {
    run: Box<dyn Trained>,
    fitted: FittedDecision,
    classes: Option<Vec<String>>,
}

impl Finished {
    /// Fits the decision `options` ask for on `run`'s held-out predictions; the run as it is
    /// when there is nothing to fit.
    pub fn wrap(run: Box<dyn Trained>, options: &DecisionOptions) -> Result<Box<dyn Trained>> {
        let held = run.held_out();
        Ok(match Decision::fit(options, &held)? {
            Some(fitted) => Box::new(Finished {
                run,
                fitted,
                classes: held.classes,
            }),
            None => run,
        })
    }
}

impl Trained for Finished {
    fn report(&self) -> String {
        let d = &self.fitted.decision;
        format!(
            "{}\n{}",
            self.run.report(),
            d.describe(
                self.classes.as_deref(),
                d.test.as_ref().map(|c| (c, "test part"))
            )
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, &[])
    }

    fn save_with(&self, dir: &Path, extra: &[(String, Vec<u8>)]) -> Result<()> {
        let mut files = extra.to_vec();
        files.push((DECISION_FILE.into(), self.fitted.decision.to_json()));
        if let Some(png) = &self.fitted.reliability {
            files.push((RELIABILITY_FILE.into(), png.clone()));
        }
        self.run.save_with(dir, &files)
    }

    fn test_metrics(&self) -> Option<&Metrics> {
        self.run.test_metrics()
    }

    fn held_out(&self) -> HeldOut {
        self.run.held_out()
    }
}

/// A loaded model with its decision applied to every row it scores.
#[derive(Debug)]
pub struct Decided {
    inner: Box<dyn Model>,
    decision: Decision,
}

impl Decided {
    /// `inner` with `decision` applied.
    pub fn new(inner: Box<dyn Model>, decision: Decision) -> Self {
        Self { inner, decision }
    }

    /// The decision.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

impl Model for Decided {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn prepare(&self, input: &Input) -> Result<Batch> {
        self.inner.prepare(input)
    }

    fn score(&self, batch: &Batch) -> Result<Outputs> {
        self.decision.apply(self.inner.score(batch)?)
    }

    fn labelled(&self, input: &Input) -> Result<(Batch, Targets)> {
        self.inner.labelled(input)
    }

    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let (batch, targets) = self.inner.labelled(input)?;
        let raw = self.inner.score(&batch)?;
        let scored = Scored {
            predictions: raw.predictions().to_vec(),
            targets,
        };
        let calibrated = Scored {
            predictions: self.decision.apply(raw)?.predictions().to_vec(),
            targets: scored.targets.clone(),
        };
        let mut evaluation = crate::evaluation(
            &calibrated.metrics(),
            self.info().classes(),
            calibrated.len(),
        );
        let check = self.decision.check(&scored)?;
        evaluation.report.push('\n');
        evaluation.report.push_str(
            &self
                .decision
                .describe(self.info().classes(), Some((&check, "rows given"))),
        );
        if let Some(c) = check.coverage {
            evaluation.scores.push(("coverage".into(), c));
        }
        if let Some(a) = &check.at_threshold {
            evaluation
                .scores
                .push(("accuracy_at_threshold".into(), a.accuracy));
            evaluation.scores.push(("f1_at_threshold".into(), a.f1));
        }
        if let Some([_, after]) = check.ece {
            evaluation.scores.push(("ece".into(), after));
        }
        // The batch's notes: unseen categories and drift from the training rows.
        evaluation.notes = batch.notes;
        Ok(evaluation)
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        let mut explanation = self.inner.explain(input, request)?;
        // The rows' probabilities and labels are the decided ones, as predict gives them.
        let k = explanation.classes.len();
        for row in &mut explanation.rows {
            if row.probabilities.len() != k || k < 2 {
                continue;
            }
            let outputs = self.decision.apply(Outputs::classes(
                explanation.classes.clone(),
                row.probabilities.clone(),
            ))?;
            row.probabilities = outputs.predictions().to_vec();
            if let Some(label) = outputs.label(0) {
                row.label = explanation.classes[label].clone();
            }
        }
        Ok(explanation)
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Generated> {
        self.inner.generate(request, on_piece)
    }

    fn recommend(&self, users: &[String], n: usize, because: usize) -> Result<Vec<UserItems>> {
        self.inner.recommend(users, n, because)
    }

    fn hint(&self, verb: Verb) -> String {
        self.inner.hint(verb)
    }
}
