//! Explanations of anomaly scores on raw columns: each column's share of a row's
//! reconstruction error.
//!
//! A row's score is `(1/d) Σᵢ (xᵢ − x̂ᵢ)²` over its `d` model inputs. The share of a raw
//! column is the same sum over the inputs that come from it (its one-hot block, its missing
//! indicator; [`FittedPipeline::column_map`](sora_data::FittedPipeline::column_map)), so the
//! shares of a row add up to its score exactly — no baseline, no sampling.

use sora_data::Table;

use super::{AnomalyError, AnomalyModel, CLASSES};
use crate::Result;
use crate::explain::report::{Report, ReportFeature, ReportRow};
use crate::explain::{
    Attributions, ColumnAttribution, Document, ExplainRequest, ExplainedRow, Explanation, Target,
};

impl AnomalyModel {
    /// Explains rows of `table` (`request.rows`, default the first five): each raw column's
    /// share of the row's score. `--method`, `--target normal` and `--sanity-check` do not
    /// apply and are refused.
    pub fn explain(&self, table: &Table, request: &ExplainRequest) -> Result<Explanation> {
        if let Some(method) = request.method {
            return Err(AnomalyError::ExplainOption {
                option: format!("--method {}", method.name()),
                what: "attribution method to choose",
            }
            .into());
        }
        if let Target::Class(c) = &request.target
            && c != CLASSES[1]
        {
            return Err(AnomalyError::ExplainOption {
                option: format!("--target {c}"),
                what: "other output than the score of `anomaly` to explain",
            }
            .into());
        }
        if request.sanity_check {
            return Err(AnomalyError::ExplainOption {
                option: "--sanity-check".into(),
                what: "gradient attributions to check against a re-initialised model",
            }
            .into());
        }
        let rows = request.rows(table.n_rows())?;
        let pipeline = &self.pipeline;
        let t = pipeline.transform(table, &rows)?;
        let d = t.d;
        let reconstructed = self.reconstruct(&t.features)?;
        let blocks = pipeline.column_map();
        let threshold = self.detector.threshold;
        let mut explained = Vec::with_capacity(t.rows.len());
        let mut report_rows = Vec::with_capacity(t.rows.len());
        for (i, &row) in t.rows.iter().enumerate() {
            let x = &t.features[i * d..(i + 1) * d];
            let y = &reconstructed[i * d..(i + 1) * d];
            let squared: Vec<f64> = x
                .iter()
                .zip(y)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .collect();
            let score = (squared.iter().sum::<f64>() / d as f64) as f32;
            let features: Vec<ReportFeature> = blocks
                .iter()
                .map(|(name, range)| {
                    let share = squared[range.clone()].iter().sum::<f64>() / d as f64;
                    let value = table
                        .column_index(name)
                        .map_or("", |c| table.cell(row, c))
                        .to_string();
                    ReportFeature {
                        imputed: pipeline.is_missing_cell(name, &value),
                        name: name.clone(),
                        value,
                        attribution: share as f32,
                    }
                })
                .collect();
            let outputs = self.outputs(&[score]);
            let label = CLASSES[outputs.label(0).unwrap_or(0)].to_string();
            report_rows.push(ReportRow {
                title: format!(
                    "row {}: {label}, score {score:.6} ({:.2} × the threshold)",
                    row + 1,
                    score / threshold.max(f32::MIN_POSITIVE)
                ),
                features: features.clone(),
                delta: None,
            });
            explained.push((row, score, label, outputs.predictions().to_vec(), features));
        }
        let method = format!(
            "each raw column's share of the anomaly score (the squared reconstruction errors of \
             its model inputs over all {d}; the shares sum to the score)"
        );
        let mut terminal = format!(
            "{method}\nthreshold {threshold:.6}: a row whose score is at least this is an \
             anomaly\n"
        );
        for (row, score, label, probabilities, features) in &explained {
            terminal.push_str(&format!(
                "\nrow {}: {label}, score {score:.6} ({:.2} × the threshold, p_anomaly {:.4})\n",
                row + 1,
                score / threshold.max(f32::MIN_POSITIVE),
                probabilities[1]
            ));
            let mut order: Vec<&ReportFeature> = features.iter().collect();
            order.sort_by(|a, b| b.attribution.total_cmp(&a.attribution));
            let shown = request.top.max(1).min(order.len());
            let percent = |v: f32| {
                if *score > 0.0 {
                    format!("{:5.1} %", 100.0 * v / score)
                } else {
                    "    - ".to_string()
                }
            };
            for f in &order[..shown] {
                terminal.push_str(&format!(
                    "  {:>10.6}  {}  {} = {}{}\n",
                    f.attribution,
                    percent(f.attribution),
                    f.name,
                    f.value,
                    if f.imputed { " (missing, imputed)" } else { "" }
                ));
            }
            if shown < order.len() {
                let rest: f32 = order[shown..].iter().map(|f| f.attribution).sum();
                terminal.push_str(&format!(
                    "  {rest:>10.6}  {}  the other {} columns\n",
                    percent(rest),
                    order.len() - shown
                ));
            }
        }
        let document = if request.document {
            let n = report_rows.len().max(1) as f64;
            let mean_abs = blocks
                .iter()
                .enumerate()
                .map(|(c, (name, _))| {
                    let total: f64 = report_rows
                        .iter()
                        .map(|r| f64::from(r.features[c].attribution))
                        .sum();
                    (name.clone(), total / n)
                })
                .collect();
            let report = Report {
                title: "Anomaly scores by column".into(),
                method: method.clone(),
                baseline: "a perfect reconstruction (score 0)".into(),
                target: format!(
                    "the anomaly score, the mean squared reconstruction error (threshold \
                     {threshold:.6})"
                ),
                rows: report_rows,
                mean_abs,
                permutation: None,
                sanity: None,
            };
            Some(Document {
                extension: "html",
                bytes: report.to_html().map_err(AnomalyError::from)?.into_bytes(),
            })
        } else {
            None
        };
        let rows = explained
            .into_iter()
            .map(|(row, _, label, probabilities, features)| ExplainedRow {
                key: (row + 1).to_string(),
                label,
                probabilities,
                explained: CLASSES[1].to_string(),
                attributions: Attributions::Columns(
                    features
                        .into_iter()
                        .map(|f| ColumnAttribution {
                            column: f.name,
                            value: f.value,
                            imputed: f.imputed,
                            attribution: f.attribution,
                        })
                        .collect(),
                ),
                delta: None,
            })
            .collect();
        Ok(Explanation {
            method,
            classes: CLASSES.map(String::from).to_vec(),
            rows,
            terminal,
            document,
        })
    }
}
