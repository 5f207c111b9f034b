//! Evaluation metrics computed exactly over a whole data set (not averaged per batch).

use serde::{Deserialize, Serialize};

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Of the samples predicted as this class, the fraction that are.
    pub precision: f64,
    /// Of the samples of this class, the fraction predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of samples of this class.
    pub support: usize,
}

/// Metrics of a classifier on a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Mean cross-entropy (unweighted, unsmoothed).
    pub loss: f64,
    /// Fraction of samples whose arg-max class is right.
    pub accuracy: f64,
    /// Per-class precision, recall, F1.
    pub per_class: Vec<ClassScores>,
    /// Unweighted mean of the per-class precisions.
    pub macro_precision: f64,
    /// Unweighted mean of the per-class recalls.
    pub macro_recall: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// Area under the ROC curve: of class 1 for two classes, the one-vs-rest macro average
    /// otherwise (classes without positives or negatives are left out). `None` when undefined.
    pub auroc: Option<f64>,
    /// Average precision (area under the precision–recall curve), same averaging as `auroc`.
    pub pr_auc: Option<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Bootstrap confidence intervals of accuracy, macro-F1, AUROC and the loss, where they
    /// were computed ([`Metrics::with_intervals`]: the final evaluations of a run, `sora eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<crate::ClassificationIntervals>,
}

/// Metrics of a regressor on a data set (over all targets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Mean squared error (the training loss).
    pub loss: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination, `1 - SS_res / SS_tot` (per target, averaged).
    pub r2: f64,
    /// Bootstrap confidence intervals of RMSE, MAE and R², where they were computed
    /// ([`Metrics::with_intervals`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<crate::RegressionIntervals>,
}

/// Metrics of either task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Metrics {
    /// A classifier's metrics.
    Classification(ClassificationMetrics),
    /// A regressor's metrics.
    Regression(RegressionMetrics),
}

impl Metrics {
    /// The loss.
    pub fn loss(&self) -> f64 {
        match self {
            Metrics::Classification(m) => m.loss,
            Metrics::Regression(m) => m.loss,
        }
    }

    /// Accuracy, for a classifier.
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            Metrics::Classification(m) => Some(m.accuracy),
            Metrics::Regression(_) => None,
        }
    }

    /// The same metrics with 95 % percentile-bootstrap confidence intervals (1,000 resamples
    /// of the rows, seeded, so the same rows give the same intervals) from the predictions
    /// they were computed from (class probabilities or values, row-major) and the targets.
    /// Intervals that cannot be computed (predictions that do not match the targets) are left
    /// out.
    ///
    /// ```
    /// use sora_train::{ClassificationMetrics, Metrics, Targets};
    ///
    /// let probs = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7];
    /// let targets = Targets::Classes { labels: vec![0, 1, 1, 1], n_classes: 2 };
    /// let Targets::Classes { labels, .. } = &targets else { unreachable!() };
    /// let m = Metrics::Classification(ClassificationMetrics::compute(&probs, labels, 2));
    /// let Metrics::Classification(c) = m.with_intervals(&probs, &targets) else { unreachable!() };
    /// let acc = c.intervals.unwrap().accuracy.unwrap();
    /// assert!(acc.low <= c.accuracy && c.accuracy <= acc.high);
    /// ```
    pub fn with_intervals(mut self, predictions: &[f32], targets: &crate::Targets) -> Self {
        let config = crate::BootstrapConfig::default();
        match (&mut self, targets) {
            (Metrics::Classification(m), crate::Targets::Classes { labels, n_classes }) => {
                m.intervals =
                    crate::classification_intervals(predictions, labels, *n_classes, &config).ok();
            }
            (Metrics::Regression(m), crate::Targets::Values { values, d }) => {
                m.intervals = crate::regression_intervals(predictions, values, *d, &config).ok();
            }
            _ => {}
        }
        self
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl ClassificationMetrics {
    /// Computes every metric from row-major class probabilities (`n × n_classes`) and labels.
    pub fn compute(probs: &[f32], labels: &[usize], n_classes: usize) -> Self {
        let n = labels.len();
        assert_eq!(
            probs.len(),
            n * n_classes,
            "probabilities do not match labels"
        );
        let mut confusion = vec![vec![0usize; n_classes]; n_classes];
        let mut loss = 0.0f64;
        for (i, &y) in labels.iter().enumerate() {
            let row = &probs[i * n_classes..(i + 1) * n_classes];
            let pred = argmax(row);
            confusion[y][pred] += 1;
            loss -= (row[y] as f64).max(1e-12).ln();
        }
        let correct: usize = (0..n_classes).map(|c| confusion[c][c]).sum();
        let per_class: Vec<ClassScores> = (0..n_classes)
            .map(|c| {
                let tp = confusion[c][c];
                let predicted: usize = (0..n_classes).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let mean = |f: fn(&ClassScores) -> f64| {
            per_class.iter().map(f).sum::<f64>() / n_classes.max(1) as f64
        };
        let one_vs_rest = |c: usize| -> (Vec<f32>, Vec<bool>) {
            let scores = (0..n).map(|i| probs[i * n_classes + c]).collect();
            let positive = labels.iter().map(|&y| y == c).collect();
            (scores, positive)
        };
        let classes: Vec<usize> = if n_classes == 2 {
            vec![1]
        } else {
            (0..n_classes).collect()
        };
        let average = |f: fn(&[f32], &[bool]) -> Option<f64>| {
            let values: Vec<f64> = classes
                .iter()
                .filter_map(|&c| {
                    let (s, p) = one_vs_rest(c);
                    f(&s, &p)
                })
                .collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        Self {
            loss: loss / n.max(1) as f64,
            accuracy: ratio(correct, n),
            macro_precision: mean(|s| s.precision),
            macro_recall: mean(|s| s.recall),
            macro_f1: mean(|s| s.f1),
            per_class,
            auroc: average(auroc),
            pr_auc: average(average_precision),
            confusion,
            intervals: None,
        }
    }

    /// The confusion matrix as aligned text, rows = true class, columns = predicted.
    pub fn confusion_table(&self, class_names: &[String]) -> String {
        let k = self.confusion.len();
        let names: Vec<String> = (0..k)
            .map(|c| class_names.get(c).cloned().unwrap_or_else(|| c.to_string()))
            .collect();
        let width = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .chain(names.iter().map(String::len))
            .max()
            .unwrap_or(1);
        let label_width = names.iter().map(String::len).max().unwrap_or(1).max(4);
        let mut out = format!("{:>label_width$} │", "true");
        for name in &names {
            out.push_str(&format!(" {name:>width$}"));
        }
        out.push('\n');
        out.push_str(&format!(
            "{}─┼{}\n",
            "─".repeat(label_width),
            "─".repeat(k * (width + 1))
        ));
        for (c, row) in self.confusion.iter().enumerate() {
            out.push_str(&format!("{:>label_width$} │", names[c]));
            for v in row {
                out.push_str(&format!(" {v:>width$}"));
            }
            out.push('\n');
        }
        out
    }
}

/// Index of the largest value (the first of equal ones).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Sorts indices by descending score and groups equal scores (ties share a threshold).
fn ranked_groups(scores: &[f32]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if scores[g[0]] == scores[i] => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// Area under the ROC curve (trapezoids over tied thresholds, as scikit-learn computes it).
/// `None` when there are no positives or no negatives.
pub fn auroc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let p = positive.iter().filter(|&&b| b).count() as f64;
    let n = positive.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        return None;
    }
    let (mut tp, mut fp, mut area) = (0.0f64, 0.0f64, 0.0f64);
    for group in ranked_groups(scores) {
        let gp = group.iter().filter(|&&i| positive[i]).count() as f64;
        let gn = group.len() as f64 - gp;
        area += gn * (tp + gp / 2.0);
        tp += gp;
        fp += gn;
    }
    debug_assert_eq!(fp, n);
    Some(area / (p * n))
}

/// Average precision: `Σ (R_k − R_{k−1}) P_k` over descending thresholds (scikit-learn's
/// definition). `None` when there are no positives.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let p = positive.iter().filter(|&&b| b).count() as f64;
    if p == 0.0 {
        return None;
    }
    let (mut tp, mut seen, mut ap) = (0.0f64, 0.0f64, 0.0f64);
    for group in ranked_groups(scores) {
        let gp = group.iter().filter(|&&i| positive[i]).count() as f64;
        tp += gp;
        seen += group.len() as f64;
        ap += (gp / p) * (tp / seen);
    }
    Some(ap)
}

impl RegressionMetrics {
    /// Computes the metrics from row-major predictions and targets (`n × d` each).
    pub fn compute(predictions: &[f32], targets: &[f32], d: usize) -> Self {
        assert_eq!(
            predictions.len(),
            targets.len(),
            "predictions do not match targets"
        );
        let count = targets.len().max(1) as f64;
        let (mut abs, mut sq) = (0.0f64, 0.0f64);
        for (p, t) in predictions.iter().zip(targets) {
            let e = (*p - *t) as f64;
            abs += e.abs();
            sq += e * e;
        }
        let n = targets.len() / d.max(1);
        let mut r2 = 0.0;
        for j in 0..d {
            let col = |v: &[f32], i: usize| v[i * d + j] as f64;
            let mean = (0..n).map(|i| col(targets, i)).sum::<f64>() / n.max(1) as f64;
            let ss_tot: f64 = (0..n).map(|i| (col(targets, i) - mean).powi(2)).sum();
            let ss_res: f64 = (0..n)
                .map(|i| (col(targets, i) - col(predictions, i)).powi(2))
                .sum();
            r2 += if ss_tot > 0.0 {
                1.0 - ss_res / ss_tot
            } else {
                0.0
            };
        }
        Self {
            loss: sq / count,
            mae: abs / count,
            rmse: (sq / count).sqrt(),
            r2: r2 / d.max(1) as f64,
            intervals: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.9.1:
    //   roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
    //   average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333333333333333
    #[test]
    fn auroc_and_average_precision_match_scikit_learn() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert!((auroc(&s, &y).unwrap() - 0.75).abs() < 1e-12);
        assert!((average_precision(&s, &y).unwrap() - 0.833_333_333_333_333_3).abs() < 1e-12);
    }

    #[test]
    fn ties_count_half() {
        // One positive and one negative at the same score: AUROC 0.5.
        assert_eq!(auroc(&[0.3, 0.3], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[0.3, 0.3], &[true, true]), None);
    }

    #[test]
    fn confusion_and_macro_scores() {
        // 3 classes; probabilities make predictions [0, 1, 1, 2].
        let probs = [
            0.8, 0.1, 0.1, //
            0.1, 0.8, 0.1, //
            0.2, 0.5, 0.3, //
            0.1, 0.1, 0.8,
        ];
        let m = ClassificationMetrics::compute(&probs, &[0, 1, 2, 2], 3);
        assert_eq!(
            m.confusion,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]
        );
        assert_eq!(m.accuracy, 0.75);
        assert_eq!(m.per_class[1].precision, 0.5);
        assert_eq!(m.per_class[2].recall, 0.5);
        assert!((m.macro_f1 - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let expected_loss = -(0.8f64.ln() + 0.8f64.ln() + 0.3f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((m.loss - expected_loss).abs() < 1e-6);
    }

    #[test]
    fn regression_metrics() {
        let m = RegressionMetrics::compute(&[1.0, 2.0, 3.0], &[1.0, 2.0, 5.0], 1);
        assert!((m.mae - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.loss - 4.0 / 3.0).abs() < 1e-12);
        // mean 8/3; SS_tot = (25+4+49)/9 = 78/9; SS_res = 4.
        assert!((m.r2 - (1.0 - 4.0 / (78.0 / 9.0))).abs() < 1e-12);
    }
}
