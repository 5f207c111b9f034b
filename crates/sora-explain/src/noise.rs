//! Noise tunnel: SmoothGrad, SmoothGrad², VarGrad around any attribution method.

use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{
    Attribution, Attributions, Baseline, ExplainError, Explainable, Inputs, Result, Target,
};

/// How a [`NoiseTunnel`] aggregates the attributions of its noisy samples (Captum's
/// `nt_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// The mean (Smilkov et al., 2017).
    #[default]
    SmoothGrad,
    /// The mean of the squares.
    SmoothGradSq,
    /// The variance: mean of the squares minus the square of the mean (Adebayo et al., 2018).
    VarGrad,
}

/// Draws from N(0, 1) by the Box–Muller transform.
pub(crate) struct Gaussian {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl Gaussian {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    pub(crate) fn sample(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2 = self.rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// Runs a base method on `n_samples` noisy copies of the inputs (`x + ε`, `ε ~ N(0, stdev²)`
/// per value, from a seeded ChaCha8 generator) and aggregates the attributions as
/// [`NoiseKind`] says (Captum's `NoiseTunnel`). Baselines and targets are not perturbed.
/// `delta` is `None`: the base method's deltas belong to the noisy inputs.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, Inputs, NoiseKind, NoiseTunnel, Saliency, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(3), HeadSpec::new(&[8]), Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![0.3, -0.2, 0.9], 3)?;
/// let smooth = NoiseTunnel::new(Saliency::default(), NoiseKind::SmoothGrad);
/// let a = smooth.attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &device)?;
/// assert_eq!(a.values.len(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseTunnel<A: Attribution> {
    /// The method run on each noisy sample.
    pub base: A,
    /// The aggregation.
    pub kind: NoiseKind,
    /// Number of noisy samples (≥ 1).
    pub n_samples: usize,
    /// Standard deviation of the noise (≥ 0, finite).
    pub stdev: f32,
    /// Seed of the noise.
    pub seed: u64,
}

impl<A: Attribution> NoiseTunnel<A> {
    /// `base` wrapped with Captum's defaults: 5 samples, standard deviation 1, seed 0.
    pub fn new(base: A, kind: NoiseKind) -> Self {
        Self {
            base,
            kind,
            n_samples: 5,
            stdev: 1.0,
            seed: 0,
        }
    }
}

impl<A: Attribution> Attribution for NoiseTunnel<A> {
    fn name(&self) -> &'static str {
        match self.kind {
            NoiseKind::SmoothGrad => "smooth_grad",
            NoiseKind::SmoothGradSq => "smooth_grad_sq",
            NoiseKind::VarGrad => "var_grad",
        }
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
        if self.n_samples == 0 {
            return Err(ExplainError::InvalidParameter {
                method: "NoiseTunnel",
                parameter: "n_samples",
                expected: "at least 1".into(),
                found: "0".into(),
            });
        }
        if !(self.stdev.is_finite() && self.stdev >= 0.0) {
            return Err(ExplainError::InvalidParameter {
                method: "NoiseTunnel",
                parameter: "stdev",
                expected: "a finite value ≥ 0".into(),
                found: self.stdev.to_string(),
            });
        }
        let size = inputs.values.len();
        let mut sum = vec![0.0f64; size];
        let mut sum_sq = vec![0.0f64; size];
        let mut noise = Gaussian::new(self.seed);
        let stdev = f64::from(self.stdev);
        let mut targets = Vec::new();
        for _ in 0..self.n_samples {
            let noisy = Inputs {
                values: inputs
                    .values
                    .iter()
                    .map(|&x| (f64::from(x) + stdev * noise.sample()) as f32)
                    .collect(),
                n: inputs.n,
                d: inputs.d,
            };
            let a = self
                .base
                .attribute(model, &noisy, baseline, target, device)?;
            for ((s, q), v) in sum.iter_mut().zip(&mut sum_sq).zip(&a.values) {
                let v = f64::from(*v);
                *s += v;
                *q += v * v;
            }
            targets = a.targets;
        }
        let m = self.n_samples as f64;
        let values = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| {
                let (mean, mean_sq) = (s / m, q / m);
                (match self.kind {
                    NoiseKind::SmoothGrad => mean,
                    NoiseKind::SmoothGradSq => mean_sq,
                    NoiseKind::VarGrad => mean_sq - mean * mean,
                }) as f32
            })
            .collect();
        Ok(Attributions {
            values,
            n: inputs.n,
            d: inputs.d,
            targets,
            delta: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Gaussian;

    #[test]
    fn box_muller_has_unit_moments_and_is_seeded() {
        let mut g = Gaussian::new(3);
        let xs: Vec<f64> = (0..200_000).map(|_| g.sample()).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // Standard errors: 1/√n ≈ 0.0022 for the mean, √(2/n) ≈ 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        let within_1 = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / n;
        assert!((within_1 - 0.6827).abs() < 0.005, "P(|z| < 1) = {within_1}");
        let mut again = Gaussian::new(3);
        assert!(xs[..10].iter().all(|x| *x == again.sample()));
    }
}
