//! Dataset-level permutation importance.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::model::{forward_rows, plain};
use crate::{ExplainError, Explainable, Inputs, Result};

/// Permutation feature importance (Breiman, 2001; scikit-learn's `permutation_importance`):
/// for each feature, the drop `score(x) − score(x with that column permuted across rows)`,
/// over `n_repeats` seeded permutations. Returns per feature the mean and the (population,
/// `ddof = 0`) standard deviation of the drops.
///
/// `score` receives the model's outputs `[n, k]` row-major (no softmax) and `k`; higher is
/// better (accuracy, negative loss, …).
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Inputs, permutation_importance};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(2), HeadSpec::new(&[]), Task::Regression { n_targets: 1 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new((0..20).map(|v| v as f32 / 10.0).collect(), 2)?;
/// // The score is the mean output: permuting a column does not change it.
/// let mean = |y: &[f32], _k: usize| y.iter().map(|v| f64::from(*v)).sum::<f64>() / y.len() as f64;
/// let importance = permutation_importance(&model, &x, mean, 3, 0, &device)?;
/// assert_eq!(importance.len(), 2);
/// assert!(importance.iter().all(|(m, _)| m.abs() < 1e-5));
/// # Ok(())
/// # }
/// ```
pub fn permutation_importance<M: Explainable>(
    model: &M,
    inputs: &Inputs,
    score: impl Fn(&[f32], usize) -> f64,
    n_repeats: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<(f64, f64)>> {
    inputs.check()?;
    let (n, d) = (inputs.n, inputs.d);
    if n < 2 {
        return Err(ExplainError::InvalidParameter {
            method: "permutation_importance",
            parameter: "inputs.n",
            expected: "at least 2 rows to permute across".into(),
            found: n.to_string(),
        });
    }
    if n_repeats == 0 {
        return Err(ExplainError::InvalidParameter {
            method: "permutation_importance",
            parameter: "n_repeats",
            expected: "at least 1".into(),
            found: "0".into(),
        });
    }
    let device = plain(device);
    let model = model.to_device(&device);
    let (out, k) = forward_rows(&model, &inputs.values, d, &device)?;
    let reference = score(&out, k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut x = inputs.values.clone();
    let mut result = Vec::with_capacity(d);
    for j in 0..d {
        let mut drops = Vec::with_capacity(n_repeats);
        for _ in 0..n_repeats {
            perm.shuffle(&mut rng);
            for (i, &p) in perm.iter().enumerate() {
                x[i * d + j] = inputs.values[p * d + j];
            }
            let (out, k) = forward_rows(&model, &x, d, &device)?;
            drops.push(reference - score(&out, k));
        }
        for i in 0..n {
            x[i * d + j] = inputs.values[i * d + j];
        }
        let mean = drops.iter().sum::<f64>() / n_repeats as f64;
        let var = drops.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n_repeats as f64;
        result.push((mean, var.sqrt()));
    }
    Ok(result)
}
