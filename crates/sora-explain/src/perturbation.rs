//! Perturbation methods: occlusion, feature ablation, feature permutation, and the shared
//! machinery that streams perturbed rows through the model in bounded chunks.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{FORWARD_CHUNK, forward_rows, pick, plain};
use crate::types::check_targets;
use crate::{
    Attribution, Attributions, Baseline, ExplainError, Explainable, Inputs, Result, Target,
};

/// A model in evaluation mode on a plain device, for methods that need no gradient.
pub(crate) struct Evaluator<M> {
    model: M,
    device: Device,
}

impl<M: Explainable> Evaluator<M> {
    pub(crate) fn new(model: &M, device: &Device) -> Self {
        let device = plain(device);
        Self {
            model: model.to_device(&device),
            device,
        }
    }

    /// `F_t(x)` for each row of `inputs`, after checking the targets against the outputs.
    pub(crate) fn targets_at(
        &self,
        values: &[f32],
        d: usize,
        targets: &[usize],
    ) -> Result<Vec<f32>> {
        let (out, k) = forward_rows(&self.model, values, d, &self.device)?;
        check_targets(targets, k)?;
        Ok(pick(&out, k, targets))
    }

    /// Streams `count` perturbed rows through the model, `FORWARD_CHUNK` at a time: `make(idx,
    /// buf)` appends row `idx` (`d` values) to `buf` and returns its target output; `take(idx,
    /// value)` receives `F_target` of that row, in order.
    pub(crate) fn stream(
        &self,
        d: usize,
        count: usize,
        mut make: impl FnMut(usize, &mut Vec<f32>) -> usize,
        mut take: impl FnMut(usize, f32),
    ) -> Result<()> {
        let mut start = 0;
        let mut buf = Vec::with_capacity(FORWARD_CHUNK.min(count) * d);
        let mut targets = Vec::with_capacity(FORWARD_CHUNK.min(count));
        while start < count {
            let end = (start + FORWARD_CHUNK).min(count);
            buf.clear();
            targets.clear();
            for idx in start..end {
                targets.push(make(idx, &mut buf));
            }
            let values = self.targets_at(&buf, d, &targets)?;
            for (idx, v) in (start..end).zip(values) {
                take(idx, v);
            }
            start = end;
        }
        Ok(())
    }
}

/// Feature groups from an optional mask: the sorted distinct group ids and, for each, its
/// features.
fn groups(mask: Option<&[usize]>, d: usize) -> Result<Vec<Vec<usize>>> {
    let Some(mask) = mask else {
        return Ok((0..d).map(|j| vec![j]).collect());
    };
    if mask.len() != d {
        return Err(ExplainError::Length {
            what: format!("feature mask (one group id per feature, [{d}])"),
            expected: d,
            found: mask.len(),
        });
    }
    let mut ids: Vec<usize> = mask.to_vec();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids
        .into_iter()
        .map(|g| (0..d).filter(|&j| mask[j] == g).collect())
        .collect())
}

fn parameter(
    method: &'static str,
    parameter: &'static str,
    expected: &str,
    found: impl ToString,
) -> ExplainError {
    ExplainError::InvalidParameter {
        method,
        parameter,
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// Occlusion (Zeiler & Fergus, 2014) over the feature axis, with Captum's semantics: a window
/// of `window` features slides with step `stride` (positions `0, stride, 2·stride, …`, as many
/// as `⌈(d − window) / stride⌉ + 1`, the last one clipped at the end of the row); each
/// position is set to `baseline` and `F_t(x) − F_t(x occluded)` is credited to every feature
/// under the window. A feature's attribution is the mean over the windows covering it (Captum
/// divides the summed differences by that count). As in Captum, `stride` may exceed `window`
/// only when the window spans every feature, so every feature is covered.
///
/// The [`Baseline`] argument is ignored: the occluding value is the `baseline` field.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, Inputs, Occlusion, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(6), HeadSpec::new(&[]), Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![1.0; 6], 6)?;
/// let occlusion = Occlusion { window: 2, stride: 2, baseline: 0.0 };
/// let a = occlusion.attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &device)?;
/// // Features 0 and 1 share a window, so they share its difference.
/// assert_eq!(a.values[0], a.values[1]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occlusion {
    /// Width of the occluding window, in features (1 ≤ window ≤ d).
    pub window: usize,
    /// Step between window positions (≥ 1).
    pub stride: usize,
    /// The value written under the window.
    pub baseline: f32,
}

impl Default for Occlusion {
    /// One feature at a time, occluded with 0.
    fn default() -> Self {
        Self {
            window: 1,
            stride: 1,
            baseline: 0.0,
        }
    }
}

impl Attribution for Occlusion {
    fn name(&self) -> &'static str {
        "occlusion"
    }

    fn attribute<M: Explainable>(
        &self,
        model: &M,
        inputs: &Inputs,
        _baseline: &Baseline,
        target: &Target,
        device: &Device,
    ) -> Result<Attributions> {
        inputs.check()?;
        let (n, d) = (inputs.n, inputs.d);
        if self.window == 0 || self.window > d {
            return Err(parameter(
                "Occlusion",
                "window",
                &format!("1 ..= {d} (the number of features)"),
                self.window,
            ));
        }
        if self.stride == 0 || (self.stride > self.window && self.window < d) {
            return Err(parameter(
                "Occlusion",
                "stride",
                &format!(
                    "1 ..= {} (the window, unless it spans all {d} features)",
                    self.window
                ),
                self.stride,
            ));
        }
        let targets = target.resolve(n)?;
        let eval = Evaluator::new(model, device);
        let f = eval.targets_at(&inputs.values, d, &targets)?;
        // Window k covers [k·stride, min(k·stride + window, d)).
        let windows: Vec<(usize, usize)> = (0..=(d - self.window).div_ceil(self.stride))
            .map(|k| (k * self.stride, (k * self.stride + self.window).min(d)))
            .collect();
        let mut total = vec![0.0f64; n * d];
        let mut count = vec![0u32; d];
        for &(a, b) in &windows {
            count[a..b].iter_mut().for_each(|c| *c += 1);
        }
        // Row idx: window idx / n, example idx % n.
        eval.stream(
            d,
            windows.len() * n,
            |idx, buf| {
                let ((a, b), i) = (windows[idx / n], idx % n);
                let at = buf.len();
                buf.extend_from_slice(inputs.row(i));
                buf[at + a..at + b].fill(self.baseline);
                targets[i]
            },
            |idx, v| {
                let ((a, b), i) = (windows[idx / n], idx % n);
                let diff = f64::from(f[i]) - f64::from(v);
                total[i * d + a..i * d + b]
                    .iter_mut()
                    .for_each(|t| *t += diff);
            },
        )?;
        let values = total
            .iter()
            .enumerate()
            .map(|(idx, t)| match count[idx % d] {
                0 => 0.0,
                c => (t / f64::from(c)) as f32,
            })
            .collect();
        Ok(Attributions {
            values,
            n,
            d,
            targets,
            delta: None,
        })
    }
}

/// Feature ablation (Captum's `FeatureAblation`): each group of features is replaced by its
/// baseline values and every feature of the group is credited `F_t(x) − F_t(x ablated)`.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, FeatureAblation, Inputs, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(4), HeadSpec::new(&[8]), Task::Classification { n_classes: 3 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![1.0, 2.0, 3.0, 4.0], 4)?;
/// // Features 0 and 1 form one group, 2 and 3 another.
/// let ablation = FeatureAblation { mask: Some(vec![0, 0, 1, 1]) };
/// let a = ablation.attribute(&model, &x, &Baseline::Zeros, &Target::Class(2), &device)?;
/// assert_eq!(a.values[0], a.values[1]);
/// assert_eq!(a.values[2], a.values[3]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureAblation {
    /// Group id per feature (`d` ids); `None` (the default) makes each feature its own group.
    pub mask: Option<Vec<usize>>,
}

impl Attribution for FeatureAblation {
    fn name(&self) -> &'static str {
        "feature_ablation"
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
        let groups = groups(self.mask.as_deref(), d)?;
        let base = baseline.resolve(n, d)?;
        let targets = target.resolve(n)?;
        let eval = Evaluator::new(model, device);
        let f = eval.targets_at(&inputs.values, d, &targets)?;
        let mut values = vec![0.0f32; n * d];
        eval.stream(
            d,
            groups.len() * n,
            |idx, buf| {
                let (g, i) = (&groups[idx / n], idx % n);
                let at = buf.len();
                buf.extend_from_slice(inputs.row(i));
                for &j in g {
                    buf[at + j] = base[i * d + j];
                }
                targets[i]
            },
            |idx, v| {
                let (g, i) = (&groups[idx / n], idx % n);
                for &j in g {
                    values[i * d + j] = f[i] - v;
                }
            },
        )?;
        Ok(Attributions {
            values,
            n,
            d,
            targets,
            delta: None,
        })
    }
}

/// A random permutation of `0..n` that is not the identity (`n ≥ 2`), as Captum draws.
fn derangement_free_perm(rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    loop {
        perm.shuffle(rng);
        if perm.iter().enumerate().any(|(i, &p)| i != p) {
            return perm;
        }
    }
}

/// Feature permutation (Captum's `FeaturePermutation`): for each group of features, the
/// group's values are permuted across the rows of the batch (one random permutation per
/// group, never the identity) and each example's features in the group are credited
/// `F_t(x) − F_t(x permuted)`. Needs at least 2 rows. The [`Baseline`] is ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeaturePermutation {
    /// Group id per feature (`d` ids); `None` (the default) makes each feature its own group.
    pub mask: Option<Vec<usize>>,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Attribution for FeaturePermutation {
    fn name(&self) -> &'static str {
        "feature_permutation"
    }

    fn attribute<M: Explainable>(
        &self,
        model: &M,
        inputs: &Inputs,
        _baseline: &Baseline,
        target: &Target,
        device: &Device,
    ) -> Result<Attributions> {
        inputs.check()?;
        let (n, d) = (inputs.n, inputs.d);
        if n < 2 {
            return Err(ExplainError::InvalidParameter {
                method: "FeaturePermutation",
                parameter: "inputs.n",
                expected: "at least 2 rows to permute across".into(),
                found: n.to_string(),
            });
        }
        let groups = groups(self.mask.as_deref(), d)?;
        let targets = target.resolve(n)?;
        let eval = Evaluator::new(model, device);
        let f = eval.targets_at(&inputs.values, d, &targets)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let perms: Vec<Vec<usize>> = groups
            .iter()
            .map(|_| derangement_free_perm(&mut rng, n))
            .collect();
        let mut values = vec![0.0f32; n * d];
        eval.stream(
            d,
            groups.len() * n,
            |idx, buf| {
                let (gi, i) = (idx / n, idx % n);
                let at = buf.len();
                buf.extend_from_slice(inputs.row(i));
                let src = perms[gi][i];
                for &j in &groups[gi] {
                    buf[at + j] = inputs.values[src * d + j];
                }
                targets[i]
            },
            |idx, v| {
                let (gi, i) = (idx / n, idx % n);
                for &j in &groups[gi] {
                    values[i * d + j] = f[i] - v;
                }
            },
        )?;
        Ok(Attributions {
            values,
            n,
            d,
            targets,
            delta: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_the_mask() {
        assert_eq!(groups(None, 3).unwrap(), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(
            groups(Some(&[5, 1, 5, 1]), 4).unwrap(),
            vec![vec![1, 3], vec![0, 2]]
        );
        assert!(matches!(
            groups(Some(&[0, 1]), 3),
            Err(ExplainError::Length {
                expected: 3,
                found: 2,
                ..
            })
        ));
    }

    #[test]
    fn permutations_are_never_the_identity() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..200 {
            let p = derangement_free_perm(&mut rng, 2);
            assert_eq!(p, [1, 0]);
        }
    }
}
