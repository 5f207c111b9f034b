//! Choosing the decision threshold of a binary classifier on held-out rows.
//!
//! A row is predicted positive when its probability of class 1 is `≥` the threshold. The
//! candidate thresholds are the distinct probabilities of the held-out rows themselves (not
//! midpoints between them), so every candidate predicts at least one row positive and the
//! lowest predicts every row positive; "predict no row positive" is never chosen.
//!
//! ```
//! use sora_train::{Objective, TradeOff};
//! # fn main() -> Result<(), sora_train::ThresholdError> {
//! let probs = [0.875, 0.75, 0.625, 0.375, 0.25, 0.125];
//! let labels = [1, 1, 0, 1, 0, 0];
//! let trade_off = TradeOff::compute(&probs, &labels)?;
//! assert_eq!(trade_off.curve.len(), 6);
//! let chosen = trade_off.choose("precision>=0.9".parse::<Objective>()?)?;
//! assert_eq!(chosen.point.threshold, 0.75);
//! assert_eq!((chosen.point.precision, chosen.point.recall), (1.0, 2.0 / 3.0));
//! assert!(chosen.predict(0.8) && !chosen.predict(0.7));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the chosen threshold optimises, as `--threshold` writes it (see [`FromStr`] and
/// [`Display`](fmt::Display)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The highest F1 (`f1`).
    MaxF1,
    /// The highest recall among thresholds whose precision is at least this (`precision>=P`,
    /// `0 < P ≤ 1`).
    PrecisionAtLeast(f64),
    /// The highest precision among thresholds whose recall is at least this (`recall>=R`,
    /// `0 < R ≤ 1`).
    RecallAtLeast(f64),
    /// The lowest total cost `false_positive · FP + false_negative · FN`
    /// (`cost:FP,FN`; both finite, `≥ 0`, not both 0).
    Cost {
        /// The cost of one false positive.
        false_positive: f64,
        /// The cost of one false negative.
        false_negative: f64,
    },
}

impl Objective {
    /// Checks the objective's numbers (they are public, so may come from anywhere).
    pub fn check(&self) -> Result<(), ThresholdError> {
        match *self {
            Objective::MaxF1 => Ok(()),
            Objective::PrecisionAtLeast(bound) | Objective::RecallAtLeast(bound) => {
                if bound > 0.0 && bound <= 1.0 {
                    Ok(())
                } else {
                    Err(ThresholdError::Bound {
                        objective: *self,
                        value: bound,
                    })
                }
            }
            Objective::Cost {
                false_positive,
                false_negative,
            } => {
                let ok = |c: f64| c.is_finite() && c >= 0.0;
                if ok(false_positive)
                    && ok(false_negative)
                    && (false_positive > 0.0 || false_negative > 0.0)
                {
                    Ok(())
                } else {
                    Err(ThresholdError::Costs {
                        false_positive,
                        false_negative,
                    })
                }
            }
        }
    }
}

impl fmt::Display for Objective {
    /// The objective as `--threshold` takes it: `f1`, `precision>=0.9`, `recall>=0.8`,
    /// `cost:1,5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objective::MaxF1 => f.write_str("f1"),
            Objective::PrecisionAtLeast(p) => write!(f, "precision>={p}"),
            Objective::RecallAtLeast(r) => write!(f, "recall>={r}"),
            Objective::Cost {
                false_positive,
                false_negative,
            } => write!(f, "cost:{false_positive},{false_negative}"),
        }
    }
}

impl FromStr for Objective {
    type Err = ThresholdError;

    /// Parses `f1`, `precision>=P`, `recall>=R` or `cost:FP,FN` (spaces around the parts are
    /// allowed) and [checks](Objective::check) the numbers.
    fn from_str(s: &str) -> Result<Self, ThresholdError> {
        let text = s.trim();
        let number = |part: &str| -> Result<f64, ThresholdError> {
            part.trim()
                .parse::<f64>()
                .map_err(|source| ThresholdError::Number {
                    input: s.to_string(),
                    number: part.trim().to_string(),
                    source,
                })
        };
        let objective = if text == "f1" {
            Objective::MaxF1
        } else if let Some(p) = text.strip_prefix("precision>=") {
            Objective::PrecisionAtLeast(number(p)?)
        } else if let Some(r) = text.strip_prefix("recall>=") {
            Objective::RecallAtLeast(number(r)?)
        } else if let Some(costs) = text.strip_prefix("cost:") {
            let Some((fp, fn_)) = costs.split_once(',') else {
                return Err(ThresholdError::Unknown {
                    input: s.to_string(),
                });
            };
            Objective::Cost {
                false_positive: number(fp)?,
                false_negative: number(fn_)?,
            }
        } else {
            return Err(ThresholdError::Unknown {
                input: s.to_string(),
            });
        };
        objective.check()?;
        Ok(objective)
    }
}

/// Why a threshold could not be parsed or chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The objective is none of the known forms.
    #[error("--threshold `{input}`: expected `f1`, `precision>=P`, `recall>=R` or `cost:FP,FN`")]
    Unknown {
        /// The text given.
        input: String,
    },
    /// A number of the objective does not parse.
    #[error("--threshold `{input}`: `{number}` is not a number")]
    Number {
        /// The whole text given.
        input: String,
        /// The part that is not a number.
        number: String,
        /// The cause.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A precision or recall bound is outside `(0, 1]`.
    #[error("--threshold {objective}: the bound {value} is not in (0, 1]")]
    Bound {
        /// The objective.
        objective: Objective,
        /// The bound.
        value: f64,
    },
    /// Costs that are negative, not finite, or both zero.
    #[error(
        "--threshold cost:{false_positive},{false_negative}: costs must be finite, at least 0 and not both 0"
    )]
    Costs {
        /// The false-positive cost given.
        false_positive: f64,
        /// The false-negative cost given.
        false_negative: f64,
    },
    /// No held-out row was given.
    #[error("threshold: no validation rows were given")]
    Empty,
    /// Probabilities and labels differ in length.
    #[error("threshold: {probabilities} probabilities but {labels} labels")]
    Lengths {
        /// Probabilities given.
        probabilities: usize,
        /// Labels given.
        labels: usize,
    },
    /// A label is neither 0 nor 1.
    #[error("threshold: row {row}: label {label} is not 0 or 1")]
    Label {
        /// The row (0-based).
        row: usize,
        /// The label.
        label: usize,
    },
    /// A probability is NaN or outside `[0, 1]`.
    #[error("threshold: row {row}: probability {value} is not in [0, 1]")]
    Probability {
        /// The row (0-based).
        row: usize,
        /// The value.
        value: f32,
    },
    /// The validation rows hold one class only, so precision or recall is undefined.
    #[error(
        "threshold: the validation rows need both classes; found {positives} positive and {negatives} negative"
    )]
    OneClass {
        /// Rows labelled 1.
        positives: usize,
        /// Rows labelled 0.
        negatives: usize,
    },
    /// No candidate threshold meets the objective's constraint.
    #[error(
        "--threshold {objective}: no threshold reaches it; the highest {measure} on the validation rows is {best:.4} at {other} {at:.4} (threshold {threshold})"
    )]
    Unreachable {
        /// The objective.
        objective: Objective,
        /// `precision` or `recall`: what the constraint bounds.
        measure: &'static str,
        /// The highest value of `measure` any candidate reaches.
        best: f64,
        /// `recall` or `precision`: the other measure.
        other: &'static str,
        /// The other measure where `best` is reached.
        at: f64,
        /// The threshold where `best` is reached.
        threshold: f64,
    },
}

/// Precision, recall and F1 at one candidate threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The threshold: rows with a probability `≥` it are predicted positive.
    pub threshold: f64,
    /// `TP / (TP + FP)`.
    pub precision: f64,
    /// `TP / (TP + FN)`.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Positive rows predicted positive.
    pub true_positives: usize,
    /// Negative rows predicted positive.
    pub false_positives: usize,
    /// Negative rows predicted negative.
    pub true_negatives: usize,
    /// Positive rows predicted negative.
    pub false_negatives: usize,
}

/// The precision–recall trade-off of held-out rows: one [`CurvePoint`] per distinct
/// probability, by increasing threshold (so decreasing recall), for plotting and choosing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeOff {
    /// Rows labelled 1.
    pub positives: usize,
    /// Rows labelled 0.
    pub negatives: usize,
    /// The curve, by increasing threshold.
    pub curve: Vec<CurvePoint>,
}

/// A chosen decision threshold and what it gives on the rows it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// What it was chosen for.
    pub objective: Objective,
    /// The point of the trade-off curve chosen: the threshold (predict positive when the
    /// probability of class 1 is `≥` it) and what it gives on the rows it was chosen on.
    #[serde(flatten)]
    pub point: CurvePoint,
    /// For [`Objective::Cost`], the mean cost per row; `None` otherwise.
    pub cost_per_row: Option<f64>,
    /// Rows it was chosen on.
    pub rows: usize,
}

impl Threshold {
    /// Whether a row with probability `p` of class 1 is predicted positive (`p ≥` the threshold).
    pub fn predict(&self, p: f32) -> bool {
        p as f64 >= self.point.threshold
    }
}

impl TradeOff {
    /// The curve of held-out probabilities of class 1 and labels (0 or 1). Both classes must
    /// be present.
    pub fn compute(probs: &[f32], labels: &[usize]) -> Result<Self, ThresholdError> {
        if probs.len() != labels.len() {
            return Err(ThresholdError::Lengths {
                probabilities: probs.len(),
                labels: labels.len(),
            });
        }
        if labels.is_empty() {
            return Err(ThresholdError::Empty);
        }
        if let Some(row) = labels.iter().position(|&y| y > 1) {
            return Err(ThresholdError::Label {
                row,
                label: labels[row],
            });
        }
        if let Some(row) = probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Err(ThresholdError::Probability {
                row,
                value: probs[row],
            });
        }
        let positives = labels.iter().filter(|&&y| y == 1).count();
        let negatives = labels.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(ThresholdError::OneClass {
                positives,
                negatives,
            });
        }
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut curve = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let score = probs[order[i]];
            while i < order.len() && probs[order[i]] == score {
                if labels[order[i]] == 1 {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            let precision = tp as f64 / (tp + fp) as f64;
            let recall = tp as f64 / positives as f64;
            let f1 = if tp == 0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            curve.push(CurvePoint {
                threshold: score as f64,
                precision,
                recall,
                f1,
                true_positives: tp,
                false_positives: fp,
                true_negatives: negatives - fp,
                false_negatives: positives - tp,
            });
        }
        curve.reverse();
        Ok(Self {
            positives,
            negatives,
            curve,
        })
    }

    /// The threshold that best meets `objective`.
    ///
    /// Ties on the objective go to the higher F1, then to the higher threshold (fewer rows
    /// predicted positive).
    ///
    /// ```
    /// use sora_train::{Objective, ThresholdError, TradeOff};
    /// # fn main() -> Result<(), ThresholdError> {
    /// let trade_off = TradeOff::compute(&[0.875, 0.5, 0.25], &[0, 1, 1])?;
    /// let err = trade_off.choose(Objective::PrecisionAtLeast(0.99)).unwrap_err();
    /// assert!(matches!(err, ThresholdError::Unreachable { .. }));
    /// // Missing a positive costs ten false alarms: predict every row positive.
    /// let cheap = trade_off.choose("cost:1,10".parse()?)?;
    /// assert_eq!(cheap.point.threshold, 0.25);
    /// # Ok(())
    /// # }
    /// ```
    pub fn choose(&self, objective: Objective) -> Result<Threshold, ThresholdError> {
        objective.check()?;
        // The objective's score of a point (larger is better), `None` where a constraint fails.
        let score = |p: &CurvePoint| -> Option<f64> {
            match objective {
                Objective::MaxF1 => Some(p.f1),
                Objective::PrecisionAtLeast(bound) => (p.precision >= bound).then_some(p.recall),
                Objective::RecallAtLeast(bound) => (p.recall >= bound).then_some(p.precision),
                Objective::Cost {
                    false_positive,
                    false_negative,
                } => Some(
                    -(false_positive * p.false_positives as f64
                        + false_negative * p.false_negatives as f64),
                ),
            }
        };
        let mut best: Option<(&CurvePoint, f64)> = None;
        for point in &self.curve {
            let Some(s) = score(point) else { continue };
            // The curve runs by increasing threshold: `>=` on F1 lets a later (higher)
            // threshold win a full tie.
            let better = best.is_none_or(|(b, bs)| s > bs || (s == bs && point.f1 >= b.f1));
            if better {
                best = Some((point, s));
            }
        }
        let Some((point, _)) = best else {
            return Err(self.unreachable(objective));
        };
        let rows = self.positives + self.negatives;
        let cost_per_row = match objective {
            Objective::Cost {
                false_positive,
                false_negative,
            } => Some(
                (false_positive * point.false_positives as f64
                    + false_negative * point.false_negatives as f64)
                    / rows as f64,
            ),
            _ => None,
        };
        Ok(Threshold {
            objective,
            point: point.clone(),
            cost_per_row,
            rows,
        })
    }

    /// The error for a constraint no candidate meets: the best the rows reach instead.
    fn unreachable(&self, objective: Objective) -> ThresholdError {
        let precision_bound = matches!(objective, Objective::PrecisionAtLeast(_));
        let measure = |p: &CurvePoint| {
            if precision_bound {
                p.precision
            } else {
                p.recall
            }
        };
        let other = |p: &CurvePoint| {
            if precision_bound {
                p.recall
            } else {
                p.precision
            }
        };
        // The curve is never empty here (compute needs rows); ties go to the better other
        // measure.
        let best = self.curve.iter().fold(&self.curve[0], |b, p| {
            if measure(p) > measure(b) || (measure(p) == measure(b) && other(p) > other(b)) {
                p
            } else {
                b
            }
        });
        ThresholdError::Unreachable {
            objective,
            measure: if precision_bound {
                "precision"
            } else {
                "recall"
            },
            best: measure(best),
            other: if precision_bound {
                "recall"
            } else {
                "precision"
            },
            at: other(best),
            threshold: best.threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Eight rows, by decreasing probability, and the hand-counted curve (TP, FP at each
    // threshold; 4 positives, 4 negatives):
    //   0.95 y=1 → (1,0) P 1    R .25
    //   0.85 y=1 → (2,0) P 1    R .5
    //   0.75 y=0 → (2,1) P .667 R .5
    //   0.65 y=1 → (3,1) P .75  R .75
    //   0.50 y=0 → (3,2) P .6   R .75
    //   0.50 y=1 → (4,2) P .667 R 1     (tied with the row above: one threshold)
    //   0.30 y=0 → (4,3) P .571 R 1
    //   0.10 y=0 → (4,4) P .5   R 1
    const PROBS: [f32; 8] = [0.5, 0.95, 0.1, 0.75, 0.85, 0.5, 0.3, 0.65];
    const LABELS: [usize; 8] = [1, 1, 0, 0, 1, 0, 0, 1];

    fn trade_off() -> TradeOff {
        TradeOff::compute(&PROBS, &LABELS).unwrap()
    }

    #[test]
    fn curve_groups_ties_and_runs_by_increasing_threshold() {
        let t = trade_off();
        let thresholds: Vec<f64> = t.curve.iter().map(|p| p.threshold).collect();
        let expected: Vec<f64> = [0.1f32, 0.3, 0.5, 0.65, 0.75, 0.85, 0.95]
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_eq!(thresholds, expected);
        let at_half = &t.curve[2];
        assert_eq!((at_half.true_positives, at_half.false_positives), (4, 2));
        assert_eq!((at_half.true_negatives, at_half.false_negatives), (2, 0));
        assert_eq!(at_half.recall, 1.0);
    }

    #[test]
    fn max_f1() {
        // F1: 0.95 → .4, 0.85 → .667, 0.75 → .571, 0.65 → .75, 0.5 → .8, 0.3 → .727, 0.1 → .667.
        let chosen = trade_off().choose(Objective::MaxF1).unwrap();
        assert_eq!(chosen.point.threshold, 0.5f32 as f64);
        assert!((chosen.point.f1 - 0.8).abs() < 1e-12);
        assert_eq!(chosen.cost_per_row, None);
        assert_eq!(chosen.rows, 8);
    }

    #[test]
    fn precision_at_least() {
        // Precision ≥ 0.7: thresholds 0.95, 0.85 (P 1) and 0.65 (P .75); best recall at 0.65.
        let chosen = trade_off()
            .choose(Objective::PrecisionAtLeast(0.7))
            .unwrap();
        assert_eq!(chosen.point.threshold, 0.65f32 as f64);
        assert_eq!((chosen.point.precision, chosen.point.recall), (0.75, 0.75));
        // Precision 1: 0.85 and 0.95 qualify; 0.85 recalls more.
        let chosen = trade_off()
            .choose(Objective::PrecisionAtLeast(1.0))
            .unwrap();
        assert_eq!(chosen.point.threshold, 0.85f32 as f64);
    }

    #[test]
    fn recall_at_least() {
        // Recall 1 at 0.5 (P .667), 0.3 (P .571), 0.1 (P .5): 0.5 is the most precise.
        let chosen = trade_off().choose(Objective::RecallAtLeast(1.0)).unwrap();
        assert_eq!(chosen.point.threshold, 0.5f32 as f64);
        // Recall ≥ 0.5: 0.85 (P 1) beats 0.75 (P .667).
        let chosen = trade_off().choose(Objective::RecallAtLeast(0.5)).unwrap();
        assert_eq!(chosen.point.threshold, 0.85f32 as f64);
    }

    #[test]
    fn cost() {
        // Cost FP + 5·FN: 0.95 → 15, 0.85 → 10, 0.75 → 11, 0.65 → 6, 0.5 → 2, 0.3 → 3, 0.1 → 4.
        let chosen = trade_off()
            .choose(Objective::Cost {
                false_positive: 1.0,
                false_negative: 5.0,
            })
            .unwrap();
        assert_eq!(chosen.point.threshold, 0.5f32 as f64);
        assert_eq!(chosen.cost_per_row, Some(2.0 / 8.0));
        // False positives only: 0.95 and 0.85 cost 0; 0.85 has the higher F1.
        let chosen = trade_off()
            .choose(Objective::Cost {
                false_positive: 1.0,
                false_negative: 0.0,
            })
            .unwrap();
        assert_eq!(chosen.point.threshold, 0.85f32 as f64);
        assert_eq!(chosen.cost_per_row, Some(0.0));
    }

    #[test]
    fn ties_go_to_higher_f1_then_higher_threshold() {
        // Cost FP·1 + FN·1 ties 0.85 (FN 2) with 0.65 (FP 1, FN 1) and 0.5 (FP 2); F1 breaks
        // the tie: .667, .75, .8 → 0.5.
        let chosen = trade_off()
            .choose(Objective::Cost {
                false_positive: 1.0,
                false_negative: 1.0,
            })
            .unwrap();
        assert_eq!(chosen.point.threshold, 0.5f32 as f64);
        // Equal scores under a constraint: precision 1 at
        // 0.95 and 0.85 under RecallAtLeast(0.25); 0.85 has the higher F1.
        let chosen = trade_off().choose(Objective::RecallAtLeast(0.25)).unwrap();
        assert_eq!(chosen.point.threshold, 0.85f32 as f64);
    }

    #[test]
    fn predict_is_at_or_above() {
        let chosen = trade_off().choose(Objective::MaxF1).unwrap();
        assert!(chosen.predict(0.5));
        assert!(!chosen.predict(0.499_999));
        let predicted = PROBS.iter().filter(|&&p| chosen.predict(p)).count();
        assert_eq!(
            predicted,
            chosen.point.true_positives + chosen.point.false_positives
        );
    }

    #[test]
    fn unreachable_precision_names_the_best() {
        let probs = [0.9, 0.8, 0.7, 0.6];
        let labels = [0, 1, 0, 1];
        // Precision: 0.9 → 0, 0.8 → .5, 0.7 → .333, 0.6 → .5 (recall 1).
        let err = TradeOff::compute(&probs, &labels)
            .unwrap()
            .choose("precision>=0.99".parse().unwrap())
            .unwrap_err();
        match &err {
            ThresholdError::Unreachable {
                best,
                at,
                threshold,
                ..
            } => {
                assert_eq!(*best, 0.5);
                assert_eq!(*at, 1.0);
                assert_eq!(*threshold, 0.6f32 as f64);
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string().starts_with(
                "--threshold precision>=0.99: no threshold reaches it; the highest precision on \
                 the validation rows is 0.5000 at recall 1.0000"
            ),
            "{err}"
        );
    }

    #[test]
    fn parses_and_displays_objectives() {
        let cases = [
            ("f1", Objective::MaxF1),
            ("precision>=0.9", Objective::PrecisionAtLeast(0.9)),
            (" recall>= 0.8 ", Objective::RecallAtLeast(0.8)),
            (
                "cost:1,5",
                Objective::Cost {
                    false_positive: 1.0,
                    false_negative: 5.0,
                },
            ),
        ];
        for (text, objective) in cases {
            assert_eq!(text.parse::<Objective>().unwrap(), objective, "{text}");
            let shown = objective.to_string();
            assert_eq!(shown.parse::<Objective>().unwrap(), objective);
        }
        let json = serde_json::to_string(&Objective::PrecisionAtLeast(0.9)).unwrap();
        assert_eq!(json, r#"{"precision_at_least":0.9}"#);
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            "accuracy".parse::<Objective>(),
            Err(ThresholdError::Unknown { input }) if input == "accuracy"
        ));
        assert!(matches!(
            "precision>=high".parse::<Objective>(),
            Err(ThresholdError::Number { number, .. }) if number == "high"
        ));
        assert!(matches!(
            "recall>=1.5".parse::<Objective>(),
            Err(ThresholdError::Bound { value, .. }) if value == 1.5
        ));
        assert!(matches!(
            "precision>=0".parse::<Objective>(),
            Err(ThresholdError::Bound { .. })
        ));
        assert!(matches!(
            "precision>=NaN".parse::<Objective>(),
            Err(ThresholdError::Bound { .. })
        ));
        assert!(matches!(
            "cost:1".parse::<Objective>(),
            Err(ThresholdError::Unknown { .. })
        ));
        assert!(matches!(
            "cost:-1,5".parse::<Objective>(),
            Err(ThresholdError::Costs { .. })
        ));
        assert!(matches!(
            "cost:0,0".parse::<Objective>(),
            Err(ThresholdError::Costs { .. })
        ));
        assert_eq!(
            "cost:1,x".parse::<Objective>().unwrap_err().to_string(),
            "--threshold `cost:1,x`: `x` is not a number"
        );
    }

    #[test]
    fn input_errors() {
        assert!(matches!(
            TradeOff::compute(&[], &[]),
            Err(ThresholdError::Empty)
        ));
        assert!(matches!(
            TradeOff::compute(&[0.5], &[1, 0]),
            Err(ThresholdError::Lengths {
                probabilities: 1,
                labels: 2
            })
        ));
        assert!(matches!(
            TradeOff::compute(&[0.5, 0.2], &[1, 2]),
            Err(ThresholdError::Label { row: 1, label: 2 })
        ));
        assert!(matches!(
            TradeOff::compute(&[0.5, f32::NAN], &[1, 0]),
            Err(ThresholdError::Probability { row: 1, .. })
        ));
        assert!(matches!(
            TradeOff::compute(&[0.5, 0.2], &[1, 1]),
            Err(ThresholdError::OneClass {
                positives: 2,
                negatives: 0
            })
        ));
        assert!(matches!(
            trade_off().choose(Objective::RecallAtLeast(-0.1)),
            Err(ThresholdError::Bound { .. })
        ));
    }
}
