//! Shapley values: exact by enumerating coalitions, or sampled over permutations.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::perturbation::Evaluator;
use crate::{
    Attribution, Attributions, Baseline, ExplainError, Explainable, Inputs, Result, Target,
};

/// The most features the exact mode enumerates (`2^d` model rows per example).
pub const MAX_EXACT_FEATURES: usize = 20;

/// Shapley values of the features, where a feature outside the coalition takes its baseline
/// value: `φ_i = Σ_{S ⊆ N∖{i}} |S|! (d−|S|−1)! / d! · (F_t(x_S ∪ i) − F_t(x_S))`.
///
/// With `d ≤ max_exact_features` every coalition is evaluated (`2^d` rows per example) and
/// efficiency holds exactly: `Σ_i φ_i = F_t(x) − F_t(x′)`. Otherwise Captum's
/// `ShapleyValueSampling` is used: `n_samples` seeded random feature orders, each feature
/// credited the change in `F_t` when it joins the features before it. The sampled values
/// also sum to `F_t(x) − F_t(x′)` (the sum telescopes), and converge to the exact ones.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{Activation, HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, Inputs, ShapleyValues, Target, outputs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let head = HeadSpec::new(&[8]).with_activation(Activation::Tanh);
/// let model = ModelSpec::new(IdentitySpec::new(4), head, Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![1.0, -2.0, 0.5, 3.0], 4)?;
/// let phi = ShapleyValues::default().attribute(&model, &x, &Baseline::Zeros, &Target::Class(1), &device)?;
/// let (fx, _) = outputs(&model, &x, &device)?;
/// let (f0, _) = outputs(&model, &Inputs::new(vec![0.0; 4], 4)?, &device)?;
/// let sum: f32 = phi.values.iter().sum();
/// assert!((sum - (fx[1] - f0[1])).abs() < 1e-4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapleyValues {
    /// Exact enumeration when `d` is at most this (capped at [`MAX_EXACT_FEATURES`]).
    pub max_exact_features: usize,
    /// Feature orders drawn in the sampling mode (≥ 1).
    pub n_samples: usize,
    /// Seed of the feature orders.
    pub seed: u64,
}

impl Default for ShapleyValues {
    /// Exact up to 10 features, otherwise 25 sampled orders (Captum's default), seed 0.
    fn default() -> Self {
        Self {
            max_exact_features: 10,
            n_samples: 25,
            seed: 0,
        }
    }
}

impl Attribution for ShapleyValues {
    fn name(&self) -> &'static str {
        "shapley_values"
    }

    fn attribute<M: Explainable>(
        &self,
        model: &M,
        inputs: &Inputs,
        baseline: &Baseline,
        target: &Target,
        device: &Device,
    ) -> Result<Attributions> {
        inputs.check()?;
        let (n, d) = (inputs.n, inputs.d);
        let base = baseline.resolve(n, d)?;
        let targets = target.resolve(n)?;
        let eval = Evaluator::new(model, device);
        // Checks the targets against the outputs, naming the example at fault.
        eval.targets_at(&inputs.values, d, &targets)?;
        let values = if d <= self.max_exact_features.min(MAX_EXACT_FEATURES) {
            exact(&eval, inputs, &base, &targets)?
        } else {
            if self.n_samples == 0 {
                return Err(ExplainError::InvalidParameter {
                    method: "ShapleyValues",
                    parameter: "n_samples",
                    expected: "at least 1".into(),
                    found: "0".into(),
                });
            }
            sampled(&eval, inputs, &base, &targets, self.n_samples, self.seed)?
        };
        Ok(Attributions {
            values,
            n,
            d,
            targets,
            delta: None,
        })
    }
}

fn exact<M: Explainable>(
    eval: &Evaluator<M>,
    inputs: &Inputs,
    base: &[f32],
    targets: &[usize],
) -> Result<Vec<f32>> {
    let (n, d) = (inputs.n, inputs.d);
    let m = 1usize << d;
    // Row idx: example idx / m, coalition (bit j = feature j present) idx % m.
    let mut f = vec![0.0f64; n * m];
    eval.stream(
        d,
        n * m,
        |idx, buf| {
            let (i, s) = (idx / m, idx % m);
            buf.extend((0..d).map(|j| {
                if s >> j & 1 == 1 {
                    inputs.values[i * d + j]
                } else {
                    base[i * d + j]
                }
            }));
            targets[i]
        },
        |idx, v| f[idx] = f64::from(v),
    )?;
    let weight = coalition_weights(d);
    let mut values = vec![0.0f32; n * d];
    for i in 0..n {
        let fi = &f[i * m..(i + 1) * m];
        for j in 0..d {
            let bit = 1usize << j;
            let phi: f64 = (0..m)
                .filter(|s| s & bit == 0)
                .map(|s| weight[s.count_ones() as usize] * (fi[s | bit] - fi[s]))
                .sum();
            values[i * d + j] = phi as f32;
        }
    }
    Ok(values)
}

/// `w[s] = s! (d − s − 1)! / d!` for coalitions of `s` other features, built by ratios
/// (`1/d · 1/C(d−1, s)`) so no factorial overflows.
fn coalition_weights(d: usize) -> Vec<f64> {
    (0..d)
        .map(|s| {
            let mut w = 1.0 / d as f64;
            for k in 0..s {
                w *= (k + 1) as f64 / (d - 1 - k) as f64;
            }
            w
        })
        .collect()
}

fn sampled<M: Explainable>(
    eval: &Evaluator<M>,
    inputs: &Inputs,
    base: &[f32],
    targets: &[usize],
    n_samples: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let (n, d) = (inputs.n, inputs.d);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let orders: Vec<Vec<usize>> = (0..n_samples)
        .map(|_| {
            let mut p: Vec<usize> = (0..d).collect();
            p.shuffle(&mut rng);
            p
        })
        .collect();
    let f0: Vec<f64> = eval
        .targets_at(base, d, targets)?
        .into_iter()
        .map(f64::from)
        .collect();
    let mut total = vec![0.0f64; n * d];
    let mut prev = 0.0f64;
    // Row idx: order idx / (n d), example (idx / d) % n, position idx % d. The rows of one
    // example and order are consecutive, so `prev` is the value one position earlier.
    eval.stream(
        d,
        n_samples * n * d,
        |idx, buf| {
            let (o, i, pos) = (idx / (n * d), (idx / d) % n, idx % d);
            let at = buf.len();
            buf.extend_from_slice(&base[i * d..(i + 1) * d]);
            for &j in &orders[o][..=pos] {
                buf[at + j] = inputs.values[i * d + j];
            }
            targets[i]
        },
        |idx, v| {
            let (o, i, pos) = (idx / (n * d), (idx / d) % n, idx % d);
            let before = if pos == 0 { f0[i] } else { prev };
            let v = f64::from(v);
            total[i * d + orders[o][pos]] += v - before;
            prev = v;
        },
    )?;
    Ok(total
        .into_iter()
        .map(|t| (t / n_samples as f64) as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::coalition_weights;

    #[test]
    fn coalition_weights_match_factorials_and_sum_to_one() {
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        for d in 1..=12usize {
            let w = coalition_weights(d);
            let mut total = 0.0;
            for (s, w) in w.iter().enumerate() {
                let expect = fact(s) * fact(d - s - 1) / fact(d);
                assert!(
                    (w - expect).abs() <= 1e-15 * expect.max(1.0),
                    "d = {d}, s = {s}"
                );
                // C(d−1, s) coalitions of size s.
                total += w * fact(d - 1) / (fact(s) * fact(d - 1 - s));
            }
            assert!((total - 1.0).abs() < 1e-12, "d = {d}: {total}");
        }
    }
}
