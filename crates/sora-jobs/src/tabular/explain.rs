//! Explanations of tabular models on raw columns: attributions from `sora-explain`, folded
//! back from the model's inputs (one-hot blocks, missing indicators) onto the columns of the
//! file, with imputed cells marked, global importance, and an optional model-randomisation
//! sanity check.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sora_data::Table;
use sora_explain::{
    Attribution, Attributions, Baseline, FeatureAblation, InputXGradient, Inputs,
    IntegratedGradients, NoiseKind, NoiseTunnel, Occlusion, Saliency, ShapleyValues, Target,
    outputs,
};

use super::{Tabular, TabularError, TabularModel};
use crate::Result;
use crate::explain::report::{PermutationImportance, Report, ReportFeature, ReportRow};
use crate::explain::{
    Attributions as Attributed, ColumnAttribution, Document, ExplainRequest, ExplainedRow,
    Explanation, Method,
};
use crate::kind::Kind;

/// The methods tables are explained by.
pub const METHODS: [Method; 7] = [
    Method::Ig,
    Method::Saliency,
    Method::InputXGradient,
    Method::Smoothgrad,
    Method::Occlusion,
    Method::Ablation,
    Method::Shapley,
];

/// SmoothGrad's noisy samples and their standard deviation, in standardised units.
const SMOOTHGRAD: (usize, f32) = (25, 0.1);

/// What the report says about the method.
fn describe(method: Method, steps: usize) -> String {
    match method {
        Method::Ig => format!("Integrated Gradients, Gauss–Legendre, {steps} steps"),
        Method::Saliency => "Saliency (absolute gradient)".into(),
        Method::InputXGradient => "Input × Gradient".into(),
        Method::Smoothgrad => format!(
            "SmoothGrad of the gradient, {} samples, noise σ = {}",
            SMOOTHGRAD.0, SMOOTHGRAD.1
        ),
        Method::Occlusion => "Occlusion, window 1, baseline 0".into(),
        Method::Ablation => "Feature ablation of each raw column's inputs".into(),
        Method::Shapley => "Shapley values (exact ≤ 10 inputs, sampled beyond)".into(),
        Method::Gradcam => unreachable!("checked against METHODS"),
    }
}

fn attribute(
    method: Method,
    request: &ExplainRequest,
    model: &sora_core::Model<sora_core::Identity>,
    inputs: &Inputs,
    target: &Target,
    groups: &[usize],
    device: &burn::tensor::Device,
) -> Result<Attributions> {
    let b = Baseline::Zeros;
    let (steps, seed) = (request.steps, request.seed);
    Ok(match method {
        Method::Ig => IntegratedGradients {
            n_steps: steps,
            ..Default::default()
        }
        .attribute(model, inputs, &b, target, device),
        Method::Saliency => Saliency { abs: true }.attribute(model, inputs, &b, target, device),
        Method::InputXGradient => InputXGradient.attribute(model, inputs, &b, target, device),
        Method::Smoothgrad => NoiseTunnel {
            base: Saliency { abs: false },
            kind: NoiseKind::SmoothGrad,
            n_samples: SMOOTHGRAD.0,
            stdev: SMOOTHGRAD.1,
            seed,
        }
        .attribute(model, inputs, &b, target, device),
        Method::Occlusion => Occlusion {
            window: 1,
            stride: 1,
            baseline: 0.0,
        }
        .attribute(model, inputs, &b, target, device),
        Method::Ablation => FeatureAblation {
            mask: Some(groups.to_vec()),
        }
        .attribute(model, inputs, &b, target, device),
        Method::Shapley => ShapleyValues {
            seed,
            ..Default::default()
        }
        .attribute(model, inputs, &b, target, device),
        Method::Gradcam => unreachable!("checked against METHODS"),
    }?)
}

/// Sums model-input attributions over each raw column's block: `[n, d]` → `[n, columns]`.
fn fold(a: &Attributions, blocks: &[(String, std::ops::Range<usize>)]) -> Vec<Vec<f32>> {
    (0..a.n)
        .map(|i| {
            let row = a.row(i);
            blocks
                .iter()
                .map(|(_, r)| row[r.clone()].iter().sum())
                .collect()
        })
        .collect()
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

impl TabularModel {
    /// Explains rows of `table` (all of `request`: rows, method, target, permutation
    /// importance over the labelled rows, the sanity check, the HTML report).
    pub fn explain(&self, table: &Table, request: &ExplainRequest) -> Result<Explanation> {
        self.explain_with_report(table, request)
            .map(|(explanation, _)| explanation)
    }

    /// [`explain`](Self::explain), with the report it is drawn from: the global importance
    /// (mean |attribution| over the explained rows, permutation importance over the labelled
    /// rows) and the sanity check's result, as numbers and text rather than HTML.
    pub fn explain_with_report(
        &self,
        table: &Table,
        request: &ExplainRequest,
    ) -> Result<(Explanation, Report)> {
        request.check()?;
        let method = request.method(Tabular::NAME, Method::Ig, &METHODS)?;
        let rows = request.rows(table.n_rows())?;
        let device = self.device();
        let pipeline = &self.pipeline;
        let classes = pipeline
            .classes()
            .ok_or(TabularError::NeedsClasses {
                what: "explanations",
            })?
            .to_vec();
        let t = pipeline.transform(table, &rows)?;
        let inputs = Inputs::new(t.features.clone(), t.d)?;
        let (logits, k) = outputs(&self.model, &inputs, device)?;
        let probs: Vec<Vec<f32>> = logits.chunks(k).map(softmax).collect();
        let targets = request.target.classes(&classes, &probs.concat())?;
        let blocks = pipeline.column_map();
        let mut groups = vec![0usize; t.d];
        for (g, (_, r)) in blocks.iter().enumerate() {
            for i in r.clone() {
                groups[i] = g;
            }
        }
        let target = Target::PerExample(targets.clone());
        let steps = request.steps;
        let a = attribute(
            method,
            request,
            &self.model,
            &inputs,
            &target,
            &groups,
            device,
        )?;
        let folded = fold(&a, &blocks);
        let named = matches!(request.target, crate::explain::Target::Class(_));

        let report_rows: Vec<ReportRow> = t
            .rows
            .iter()
            .enumerate()
            .map(|(i, &row)| ReportRow {
                title: format!(
                    "row {}: {} {} (p = {:.3})",
                    row + 1,
                    if named { "class" } else { "predicted" },
                    classes[targets[i]],
                    probs[i][targets[i]]
                ),
                features: blocks
                    .iter()
                    .zip(&folded[i])
                    .map(|((name, _), &attribution)| {
                        let cell = table
                            .column_index(name)
                            .map_or("", |c| table.cell(row, c))
                            .to_string();
                        ReportFeature {
                            imputed: pipeline.is_missing_cell(name, &cell),
                            name: name.clone(),
                            value: cell,
                            attribution,
                        }
                    })
                    .collect(),
                delta: a.delta.as_ref().map(|d| d[i]),
            })
            .collect();
        let n = report_rows.len().max(1) as f64;
        let mean_abs: Vec<(String, f64)> = blocks
            .iter()
            .enumerate()
            .map(|(c, (name, _))| {
                (
                    name.clone(),
                    folded.iter().map(|r| f64::from(r[c].abs())).sum::<f64>() / n,
                )
            })
            .collect();

        let permutation =
            if request.permutation_repeats > 0 && table.column_index(pipeline.target()).is_some() {
                Some(PermutationImportance {
                    score: "accuracy".to_string(),
                    columns: self.permutation_importance(table, request)?,
                })
            } else {
                None
            };
        let sanity = if request.sanity_check {
            let randomized = sora_train::seeded(device, request.seed ^ 0x5EED, || {
                let randomized = self.spec.init(device);
                sora_train::materialize(&randomized);
                randomized
            });
            let ra = attribute(
                method,
                request,
                &randomized,
                &inputs,
                &target,
                &groups,
                device,
            )?;
            let rf = fold(&ra, &blocks);
            let (mut diff, mut norm) = (0.0f64, 0.0f64);
            for (x, y) in folded.iter().flatten().zip(rf.iter().flatten()) {
                diff += f64::from((x - y).abs());
                norm += f64::from(x.abs());
            }
            let rel = diff / norm.max(1e-12);
            Some(format!(
                "with re-initialised weights the attributions change by {:.0} % of their size \
                 (mean |difference| / mean |attribution|); {}",
                100.0 * rel,
                if rel > 0.3 {
                    "they depend on what the model learned"
                } else {
                    "WARNING: they barely depend on the learned weights"
                }
            ))
        } else {
            None
        };
        let report = Report {
            title: format!("Explanation of `{}`", pipeline.target()),
            method: describe(method, steps),
            baseline: "all model inputs 0: the training mean of every numeric column, no category for categorical ones".into(),
            target: match &request.target {
                crate::explain::Target::Predicted => "the predicted class's logit".into(),
                crate::explain::Target::Class(c) => format!("the logit of class {c}"),
            },
            rows: report_rows,
            mean_abs,
            permutation,
            sanity,
        };
        let explained_rows = t
            .rows
            .iter()
            .zip(&report.rows)
            .enumerate()
            .map(|(i, (&row, r))| ExplainedRow {
                key: (row + 1).to_string(),
                label: classes[sora_train::argmax(&probs[i])].clone(),
                probabilities: probs[i].clone(),
                explained: classes[targets[i]].clone(),
                attributions: Attributed::Columns(
                    r.features
                        .iter()
                        .map(|f| ColumnAttribution {
                            column: f.name.clone(),
                            value: f.value.clone(),
                            imputed: f.imputed,
                            attribution: f.attribution,
                        })
                        .collect(),
                ),
                delta: r.delta,
            })
            .collect();
        let document = if request.document {
            Some(Document {
                extension: "html",
                bytes: report.to_html().map_err(TabularError::from)?.into_bytes(),
            })
        } else {
            None
        };
        let explanation = Explanation {
            method: report.method.clone(),
            classes,
            rows: explained_rows,
            terminal: report.terminal_summary(request.top),
            document,
        };
        Ok((explanation, report))
    }

    /// Accuracy drop when each raw column's block of inputs is shuffled across the labelled
    /// rows of `table` (mean and standard deviation over the repeats).
    fn permutation_importance(
        &self,
        table: &Table,
        request: &ExplainRequest,
    ) -> Result<Vec<(String, f64, f64)>> {
        let pipeline = &self.pipeline;
        let all: Vec<usize> = (0..table.n_rows()).collect();
        let t = pipeline.transform(table, &all)?;
        let Some(sora_data::TargetValues::Classes(labels)) = &t.targets else {
            return Err(TabularError::NeedsClasses {
                what: "permutation importance",
            }
            .into());
        };
        let device = self.device();
        let accuracy = |features: Vec<f32>| -> Result<f64> {
            let inputs = Inputs::new(features, t.d)?;
            let (out, k) = outputs(&self.model, &inputs, device)?;
            let right = out
                .chunks(k)
                .zip(labels)
                .filter(|(row, y)| sora_train::argmax(row) == **y)
                .count();
            Ok(right as f64 / labels.len().max(1) as f64)
        };
        let base = accuracy(t.features.clone())?;
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let n = t.rows.len();
        let mut result = Vec::new();
        for (name, range) in pipeline.column_map() {
            let mut drops = Vec::with_capacity(request.permutation_repeats);
            for _ in 0..request.permutation_repeats {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let mut f = t.features.clone();
                for (i, &j) in order.iter().enumerate() {
                    for c in range.clone() {
                        f[i * t.d + c] = t.features[j * t.d + c];
                    }
                }
                drops.push(base - accuracy(f)?);
            }
            let m = drops.iter().sum::<f64>() / drops.len() as f64;
            let s =
                (drops.iter().map(|d| (d - m).powi(2)).sum::<f64>() / drops.len() as f64).sqrt();
            result.push((name, m, s));
        }
        Ok(result)
    }
}
