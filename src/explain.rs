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

use crate::report::{PermutationImportance, Report, ReportFeature, ReportRow};
use crate::tabular::{TabularError, TabularModel};

/// An attribution method, as named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Integrated Gradients (Gauss–Legendre) with this many steps.
    IntegratedGradients {
        /// Steps of the path integral.
        steps: usize,
    },
    /// |gradient|.
    Saliency,
    /// input × gradient.
    InputXGradient,
    /// SmoothGrad over Integrated Gradients' cheaper cousin, the gradient (seeded noise).
    SmoothGrad {
        /// Noisy samples.
        samples: usize,
        /// Noise standard deviation, in standardised units.
        stdev: f32,
    },
    /// Occlusion of one model input at a time, replaced by the baseline 0.
    Occlusion,
    /// Feature ablation of each raw column's whole block of inputs.
    Ablation,
    /// Shapley values (exact up to 10 inputs, sampled beyond).
    Shapley,
}

impl Method {
    /// Parses a command-line name: `ig`, `saliency`, `input-x-gradient`, `smoothgrad`,
    /// `occlusion`, `ablation`, `shapley`.
    pub fn parse(name: &str, steps: usize) -> Option<Self> {
        Some(match name {
            "ig" | "integrated-gradients" => Method::IntegratedGradients { steps },
            "saliency" => Method::Saliency,
            "input-x-gradient" | "ixg" => Method::InputXGradient,
            "smoothgrad" => Method::SmoothGrad {
                samples: 25,
                stdev: 0.1,
            },
            "occlusion" => Method::Occlusion,
            "ablation" => Method::Ablation,
            "shapley" => Method::Shapley,
            _ => return None,
        })
    }

    /// What the report says about the method.
    pub fn describe(&self) -> String {
        match self {
            Method::IntegratedGradients { steps } => {
                format!("Integrated Gradients, Gauss–Legendre, {steps} steps")
            }
            Method::Saliency => "Saliency (absolute gradient)".into(),
            Method::InputXGradient => "Input × Gradient".into(),
            Method::SmoothGrad { samples, stdev } => {
                format!("SmoothGrad of the gradient, {samples} samples, noise σ = {stdev}")
            }
            Method::Occlusion => "Occlusion, window 1, baseline 0".into(),
            Method::Ablation => "Feature ablation of each raw column's inputs".into(),
            Method::Shapley => "Shapley values (exact ≤ 10 inputs, sampled beyond)".into(),
        }
    }
}

/// Which output to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explained {
    /// The class the model predicts for each row.
    Predicted,
    /// One named class for every row.
    Class(String),
}

/// Options of [`explain`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainOptions {
    /// The attribution method.
    pub method: Method,
    /// The explained output.
    pub target: Explained,
    /// Repeats of the permutation importance (0 skips it).
    pub permutation_repeats: usize,
    /// Run the model-randomisation sanity check.
    pub sanity_check: bool,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        Self {
            method: Method::IntegratedGradients { steps: 50 },
            target: Explained::Predicted,
            permutation_repeats: 5,
            sanity_check: false,
            seed: 0,
        }
    }
}

fn attribute(
    method: &Method,
    model: &sora_core::Model<sora_core::Identity>,
    inputs: &Inputs,
    target: &Target,
    groups: &[usize],
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<Attributions, TabularError> {
    let b = Baseline::Zeros;
    let result = match method {
        Method::IntegratedGradients { steps } => IntegratedGradients {
            n_steps: *steps,
            ..Default::default()
        }
        .attribute(model, inputs, &b, target, device),
        Method::Saliency => Saliency { abs: true }.attribute(model, inputs, &b, target, device),
        Method::InputXGradient => InputXGradient.attribute(model, inputs, &b, target, device),
        Method::SmoothGrad { samples, stdev } => NoiseTunnel {
            base: Saliency { abs: false },
            kind: NoiseKind::SmoothGrad,
            n_samples: *samples,
            stdev: *stdev,
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
    };
    result.map_err(|e| TabularError::Options(format!("explanation: {e}")))
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

/// Explains `rows` of `table` (data-row indices, 0-based) with `model`.
pub fn explain(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    options: &ExplainOptions,
) -> Result<Report, TabularError> {
    let device = model.device();
    let pipeline = &model.pipeline;
    let classes = pipeline
        .classes()
        .ok_or_else(|| TabularError::Options("explanations need a classification model".into()))?
        .to_vec();
    let t = pipeline.transform(table, rows)?;
    let inputs = Inputs::new(t.features.clone(), t.d)
        .map_err(|e| TabularError::Options(format!("explanation: {e}")))?;
    let (logits, k) = outputs(&model.model, &inputs, device)
        .map_err(|e| TabularError::Options(format!("explanation: {e}")))?;
    let probs: Vec<Vec<f32>> = logits.chunks(k).map(softmax).collect();
    let targets: Vec<usize> = match &options.target {
        Explained::Predicted => probs.iter().map(|p| sora_train::argmax(p)).collect(),
        Explained::Class(name) => {
            let c = classes.iter().position(|k| k == name).ok_or_else(|| {
                TabularError::Options(format!(
                    "--target: no class {name:?} (classes: {})",
                    classes.join(", ")
                ))
            })?;
            vec![c; t.rows.len()]
        }
    };
    let blocks = pipeline.column_map();
    let mut groups = vec![0usize; t.d];
    for (g, (_, r)) in blocks.iter().enumerate() {
        for i in r.clone() {
            groups[i] = g;
        }
    }
    let target = Target::PerExample(targets.clone());
    let a = attribute(
        &options.method,
        &model.model,
        &inputs,
        &target,
        &groups,
        options.seed,
        device,
    )?;
    let folded = fold(&a, &blocks);

    let report_rows: Vec<ReportRow> = t
        .rows
        .iter()
        .enumerate()
        .map(|(i, &row)| ReportRow {
            title: format!(
                "row {}: {} {} (p = {:.3})",
                row + 1,
                match options.target {
                    Explained::Predicted => "predicted",
                    Explained::Class(_) => "class",
                },
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
        if options.permutation_repeats > 0 && table.column_index(pipeline.target()).is_some() {
            Some(PermutationImportance {
                score: "accuracy".to_string(),
                columns: permutation_importance(model, table, options)?,
            })
        } else {
            None
        };
    let sanity = if options.sanity_check {
        let randomized = sora_train::seeded(device, options.seed ^ 0x5EED, || {
            let randomized = model.spec.init(device);
            sora_train::materialize(&randomized);
            randomized
        });
        let ra = attribute(
            &options.method,
            &randomized,
            &inputs,
            &target,
            &groups,
            options.seed,
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
    Ok(Report {
        title: format!("Explanation of `{}`", pipeline.target()),
        method: options.method.describe(),
        baseline: "all model inputs 0: the training mean of every numeric column, no category for categorical ones".into(),
        target: match &options.target {
            Explained::Predicted => "the predicted class's logit".into(),
            Explained::Class(c) => format!("the logit of class {c}"),
        },
        rows: report_rows,
        mean_abs,
        permutation,
        sanity,
    })
}

/// Accuracy drop when each raw column's block of inputs is shuffled across the labelled rows
/// of `table` (mean and standard deviation over the repeats).
fn permutation_importance(
    model: &TabularModel,
    table: &Table,
    options: &ExplainOptions,
) -> Result<Vec<(String, f64, f64)>, TabularError> {
    let pipeline = &model.pipeline;
    let all: Vec<usize> = (0..table.n_rows()).collect();
    let t = pipeline.transform(table, &all)?;
    let Some(sora_data::TargetValues::Classes(labels)) = &t.targets else {
        return Err(TabularError::Options(
            "permutation importance needs class labels".into(),
        ));
    };
    let device = model.device();
    let accuracy = |features: Vec<f32>| -> Result<f64, TabularError> {
        let inputs =
            Inputs::new(features, t.d).map_err(|e| TabularError::Options(e.to_string()))?;
        let (out, k) = outputs(&model.model, &inputs, device)
            .map_err(|e| TabularError::Options(e.to_string()))?;
        let right = out
            .chunks(k)
            .zip(labels)
            .filter(|(row, y)| sora_train::argmax(row) == **y)
            .count();
        Ok(right as f64 / labels.len().max(1) as f64)
    };
    let base = accuracy(t.features.clone())?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let n = t.rows.len();
    let mut result = Vec::new();
    for (name, range) in pipeline.column_map() {
        let mut drops = Vec::with_capacity(options.permutation_repeats);
        for _ in 0..options.permutation_repeats {
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
        let s = (drops.iter().map(|d| (d - m).powi(2)).sum::<f64>() / drops.len() as f64).sqrt();
        result.push((name, m, s));
    }
    Ok(result)
}
