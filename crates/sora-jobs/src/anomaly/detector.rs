//! The detector beside the autoencoder: which rows are normal, the threshold on the score,
//! and how scores fare on labelled rows.

use serde::{Deserialize, Serialize};

/// What an anomaly model directory records besides the network and the pipeline
/// ([`DETECTOR_FILE`](super::DETECTOR_FILE)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    /// The label column of the training file (`None`: every row was normal).
    pub target: Option<String>,
    /// Its value on normal rows.
    pub normal: Option<String>,
    /// The false-positive rate the threshold was chosen at.
    pub fpr: f64,
    /// The threshold on the score: a row is an anomaly when its score is at least this.
    pub threshold: f32,
    /// How the threshold was chosen, in words.
    pub threshold_from: String,
    /// Normal rows the autoencoder was trained on.
    pub train_rows: usize,
    /// Normal rows the threshold was chosen on (the validation part).
    pub validation_rows: usize,
    /// What the score is, in words.
    pub score: String,
    /// The figures on the run's test part (held-out normal rows and every anomaly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Evaluated>,
}

/// The `q` quantile of `values` (`q` in [0, 1]), interpolated linearly between order
/// statistics (NumPy's default): position `(n − 1)·q` of the sorted values. `None` for no
/// values.
///
/// ```
/// use sora_jobs::anomaly::quantile;
///
/// assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), Some(2.5));
/// assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 1.0), Some(4.0));
/// assert_eq!(quantile(&[], 0.5), None);
/// ```
pub fn quantile(values: &[f32], q: f64) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b) = (f64::from(sorted[lo]), f64::from(sorted[hi]));
    Some((a + (h - lo as f64) * (b - a)) as f32)
}

/// The probability-like output of score `s` at threshold `t`: `s / (s + t)`, so 0 for a
/// perfect reconstruction, ½ at the threshold and towards 1 far above it; `p ≥ ½ ⇔ s ≥ t`,
/// and `s = t · p / (1 − p)`. (With `s = t = 0`, ½.)
///
/// ```
/// use sora_jobs::anomaly::probability;
///
/// assert_eq!(probability(0.0, 2.0), 0.0);
/// assert_eq!(probability(2.0, 2.0), 0.5);
/// assert_eq!(probability(6.0, 2.0), 0.75);
/// ```
pub fn probability(score: f32, threshold: f32) -> f32 {
    let sum = score + threshold;
    if sum > 0.0 { score / sum } else { 0.5 }
}

/// How a detector's scores fare on labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluated {
    /// Normal rows scored.
    pub normal: usize,
    /// Anomalies scored.
    pub anomalies: usize,
    /// Area under the ROC curve of the score, anomaly the positive class (`None` without
    /// anomalies or without normal rows).
    pub auroc: Option<f64>,
    /// Average precision of the score (`None` without anomalies).
    pub average_precision: Option<f64>,
    /// The threshold applied.
    pub threshold: f32,
    /// Rows whose score is at least the threshold.
    pub flagged: usize,
    /// Anomalies among them.
    pub true_positives: usize,
    /// Normal rows among them.
    pub false_positives: usize,
    /// `true_positives / flagged` (`None` when nothing is flagged).
    pub precision: Option<f64>,
    /// `true_positives / anomalies` (`None` without anomalies).
    pub recall: Option<f64>,
    /// `false_positives / normal`: the false-positive rate reached (`None` without normal
    /// rows).
    pub false_positive_rate: Option<f64>,
    /// 95 % percentile-bootstrap intervals of AUROC, precision and recall over the rows
    /// (1,000 seeded resamples); absent where undefined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<AnomalyIntervals>,
}

/// Bootstrap intervals of a detector's figures ([`Evaluated::intervals`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyIntervals {
    /// Of the AUROC.
    pub auroc: Option<sora_train::ConfidenceInterval>,
    /// Of the precision at the threshold.
    pub precision: Option<sora_train::ConfidenceInterval>,
    /// Of the recall at the threshold.
    pub recall: Option<sora_train::ConfidenceInterval>,
}

impl AnomalyIntervals {
    /// The intervals of `scores` against `is_anomaly`, flagged at `threshold`.
    fn compute(scores: &[f32], is_anomaly: &[bool], threshold: f32) -> Option<Self> {
        let config = sora_train::BootstrapConfig::default();
        let pick = |rows: &[usize]| -> (Vec<f32>, Vec<bool>) {
            rows.iter().map(|&i| (scores[i], is_anomaly[i])).unzip()
        };
        let counts = |rows: &[usize]| {
            let (mut tp, mut fp, mut anomalies) = (0usize, 0usize, 0usize);
            for &i in rows {
                let flagged = scores[i] >= threshold;
                anomalies += usize::from(is_anomaly[i]);
                tp += usize::from(flagged && is_anomaly[i]);
                fp += usize::from(flagged && !is_anomaly[i]);
            }
            (tp, fp, anomalies)
        };
        let n = scores.len();
        let auroc = sora_train::bootstrap_ci(n, &config, |rows| {
            let (s, a) = pick(rows);
            sora_train::auroc(&s, &a)
        });
        let precision = sora_train::bootstrap_ci(n, &config, |rows| {
            let (tp, fp, _) = counts(rows);
            ratio(tp, tp + fp)
        });
        let recall = sora_train::bootstrap_ci(n, &config, |rows| {
            let (tp, _, anomalies) = counts(rows);
            ratio(tp, anomalies)
        });
        Some(Self {
            auroc: auroc.ok()?,
            precision: precision.ok()?,
            recall: recall.ok()?,
        })
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Evaluated {
    /// The figures of `scores`, row `i` an anomaly when `is_anomaly[i]`, flagged at
    /// `threshold`.
    pub fn compute(scores: &[f32], is_anomaly: &[bool], threshold: f32) -> Self {
        let anomalies = is_anomaly.iter().filter(|&&a| a).count();
        let normal = is_anomaly.len() - anomalies;
        let (mut tp, mut fp) = (0usize, 0usize);
        for (&s, &a) in scores.iter().zip(is_anomaly) {
            if s >= threshold {
                if a {
                    tp += 1;
                } else {
                    fp += 1;
                }
            }
        }
        Self {
            normal,
            anomalies,
            auroc: sora_train::auroc(scores, is_anomaly),
            average_precision: sora_train::average_precision(scores, is_anomaly),
            threshold,
            flagged: tp + fp,
            true_positives: tp,
            false_positives: fp,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, anomalies),
            false_positive_rate: ratio(fp, normal),
            intervals: AnomalyIntervals::compute(scores, is_anomaly, threshold),
        }
    }

    /// The headline figures by name, as `sora eval` returns them.
    pub fn scores(&self) -> Vec<(String, f64)> {
        [
            ("auroc", self.auroc),
            ("average_precision", self.average_precision),
            ("precision", self.precision),
            ("recall", self.recall),
            ("false_positive_rate", self.false_positive_rate),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name.to_string(), v)))
        .collect()
    }

    /// The figures as the program prints them, for rows described as `rows`.
    pub fn report(&self, rows: &str, fpr: f64) -> String {
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        let intervals = self.intervals.as_ref();
        // A figure with its interval, `0.9557 [0.9312, 0.9760]`, where there is one.
        let with = |v: Option<f64>, ci: Option<&sora_train::ConfidenceInterval>| match ci {
            Some(ci) => format!("{} [{:.4}, {:.4}]", opt(v), ci.low, ci.high),
            None => opt(v),
        };
        let mut out = format!(
            "{rows}: {} normal rows, {} anomalies\n",
            self.normal, self.anomalies
        );
        if self.anomalies > 0 && self.normal > 0 {
            out.push_str(&format!(
                "AUROC {}   average precision {}   (of the score; anomaly = positive)\n",
                with(self.auroc, intervals.and_then(|i| i.auroc.as_ref())),
                opt(self.average_precision)
            ));
        }
        out.push_str(&format!(
            "at the threshold {:.6}: {} rows flagged",
            self.threshold, self.flagged
        ));
        if self.anomalies > 0 {
            out.push_str(&format!(
                "; precision {}, recall {} ({} of {} anomalies)",
                with(self.precision, intervals.and_then(|i| i.precision.as_ref())),
                with(self.recall, intervals.and_then(|i| i.recall.as_ref())),
                self.true_positives,
                self.anomalies
            ));
        }
        out.push('\n');
        if self.normal > 0 {
            out.push_str(&format!(
                "false-positive rate on the normal rows {} ({} of {}; chosen at {fpr})\n",
                opt(self.false_positive_rate),
                self.false_positives,
                self.normal
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NumPy: `np.quantile([0.1, 0.7, 0.3, 0.9, 0.5], 0.95)` = 0.86.
    #[test]
    fn quantiles_interpolate_as_numpy() {
        let q = quantile(&[0.1, 0.7, 0.3, 0.9, 0.5], 0.95).unwrap();
        assert!((q - 0.86).abs() < 1e-6, "{q}");
        assert_eq!(quantile(&[5.0], 0.95), Some(5.0));
    }

    #[test]
    fn the_label_of_the_probability_is_the_threshold_s() {
        for (s, t) in [(0.5f32, 1.0f32), (1.0, 1.0), (3.0, 1.0), (0.0, 0.0)] {
            assert_eq!(probability(s, t) >= 0.5, s >= t, "{s} {t}");
        }
        let p = probability(3.0, 1.5);
        assert!((1.5 * p / (1.0 - p) - 3.0).abs() < 1e-5);
    }

    #[test]
    fn figures_at_the_threshold() {
        let scores = [0.1, 0.2, 0.3, 0.9, 0.8, 0.25];
        let anomaly = [false, false, false, true, true, true];
        let e = Evaluated::compute(&scores, &anomaly, 0.3);
        assert_eq!((e.flagged, e.true_positives, e.false_positives), (3, 2, 1));
        assert_eq!(e.precision, Some(2.0 / 3.0));
        assert_eq!(e.recall, Some(2.0 / 3.0));
        assert_eq!(e.false_positive_rate, Some(1.0 / 3.0));
        // Anomalies above every normal row but one (0.25 under 0.3): 8 of 9 pairs.
        assert!((e.auroc.unwrap() - 8.0 / 9.0).abs() < 1e-12);
        let none = Evaluated::compute(&[0.1, 0.2], &[false, false], 0.15);
        assert_eq!((none.auroc, none.recall), (None, None));
        assert_eq!(none.false_positive_rate, Some(0.5));
    }
}
