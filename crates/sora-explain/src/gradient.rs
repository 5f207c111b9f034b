//! Gradient methods: saliency, input × gradient, integrated gradients.

use burn::tensor::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{forward_rows, gradient_rows, pick, plain};
use crate::types::check_targets;
use crate::{
    Attribution, Attributions, Baseline, ExplainError, Explainable, Inputs, Result, Target,
};

/// Gradients of each example's target output with respect to its inputs, `[n, d]`.
fn input_gradients<M: Explainable>(
    model: &M,
    inputs: &Inputs,
    targets: &[usize],
    device: &Device,
) -> Result<Vec<f32>> {
    let ad = plain(device).autodiff();
    let model = model.to_device(&ad);
    gradient_rows(&model, inputs.values.clone(), inputs.d, targets, &ad)
}

/// Saliency (Simonyan et al., 2013): the gradient of the target output with respect to the
/// input, `∂F_t/∂x`, in absolute value by default (Captum's `Saliency`). The baseline is
/// ignored.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, Inputs, Saliency, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(3), HeadSpec::new(&[8]), Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![0.1, 0.2, 0.3, -1.0, 0.0, 1.0], 3)?;
/// let a = Saliency::default().attribute(&model, &x, &Baseline::Zeros, &Target::Class(1), &device)?;
/// assert_eq!((a.n, a.d), (2, 3));
/// assert!(a.values.iter().all(|v| *v >= 0.0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saliency {
    /// Return `|∂F_t/∂x|` (Captum's default) rather than the signed gradient.
    pub abs: bool,
}

impl Default for Saliency {
    /// `abs = true`, as in Captum.
    fn default() -> Self {
        Self { abs: true }
    }
}

impl Attribution for Saliency {
    fn name(&self) -> &'static str {
        "saliency"
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
        let targets = target.resolve(inputs.n)?;
        let mut g = input_gradients(model, inputs, &targets, device)?;
        if self.abs {
            g.iter_mut().for_each(|v| *v = v.abs());
        }
        Ok(Attributions {
            values: g,
            n: inputs.n,
            d: inputs.d,
            targets,
            delta: None,
        })
    }
}

/// Input × gradient: `x_i · ∂F_t/∂x_i` (Captum's `InputXGradient`). The baseline is ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputXGradient;

impl Attribution for InputXGradient {
    fn name(&self) -> &'static str {
        "input_x_gradient"
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
        let targets = target.resolve(inputs.n)?;
        let mut g = input_gradients(model, inputs, &targets, device)?;
        g.iter_mut().zip(&inputs.values).for_each(|(g, x)| *g *= x);
        Ok(Attributions {
            values: g,
            n: inputs.n,
            d: inputs.d,
            targets,
            delta: None,
        })
    }
}

/// How integrated gradients approximates the path integral over `α ∈ [0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgMethod {
    /// Gauss–Legendre quadrature (Captum's default `gausslegendre`): the nodes of the
    /// Legendre polynomial `P_n` mapped to `[0, 1]`, weights halved.
    #[default]
    GaussLegendre,
    /// Left Riemann sum: `α_k = k/n`, weights `1/n`.
    RiemannLeft,
    /// Right Riemann sum: `α_k = (k+1)/n`, weights `1/n`.
    RiemannRight,
    /// Midpoint rule: `α_k = (k+½)/n`, weights `1/n`.
    RiemannMiddle,
    /// Trapezoid rule: `α_k = k/(n−1)` (n ≥ 2), weights `1/(n−1)` halved at both ends.
    ///
    /// Captum's `riemann_trapezoid` uses weights `1/n` (halved at the ends), which sum to
    /// `(n−1)/n`; here the weights sum to 1, so completeness holds as `n` grows.
    RiemannTrapezoid,
}

impl IgMethod {
    /// The `(α_k, w_k)` pairs of an `n`-step rule, in `f64`.
    ///
    /// ```
    /// use sora_explain::IgMethod;
    ///
    /// # fn main() -> Result<(), sora_explain::ExplainError> {
    /// let rule = IgMethod::GaussLegendre.steps(3)?;
    /// let total: f64 = rule.iter().map(|(_, w)| w).sum();
    /// assert!((total - 1.0).abs() < 1e-12);
    /// // Exact for polynomials of degree ≤ 5: ∫₀¹ α⁵ dα = 1/6.
    /// let q: f64 = rule.iter().map(|(a, w)| w * a.powi(5)).sum();
    /// assert!((q - 1.0 / 6.0).abs() < 1e-12);
    /// # Ok(())
    /// # }
    /// ```
    pub fn steps(self, n: usize) -> Result<Vec<(f64, f64)>> {
        let min = if self == IgMethod::RiemannTrapezoid {
            2
        } else {
            1
        };
        if n < min {
            return Err(ExplainError::InvalidParameter {
                method: "IntegratedGradients",
                parameter: "n_steps",
                expected: format!("at least {min} for {self:?}"),
                found: n.to_string(),
            });
        }
        let nf = n as f64;
        Ok(match self {
            IgMethod::GaussLegendre => gauss_legendre(n)
                .into_iter()
                .map(|(x, w)| (0.5 * (x + 1.0), 0.5 * w))
                .collect(),
            IgMethod::RiemannLeft => (0..n).map(|k| (k as f64 / nf, 1.0 / nf)).collect(),
            IgMethod::RiemannRight => (0..n).map(|k| ((k + 1) as f64 / nf, 1.0 / nf)).collect(),
            IgMethod::RiemannMiddle => (0..n).map(|k| ((k as f64 + 0.5) / nf, 1.0 / nf)).collect(),
            IgMethod::RiemannTrapezoid => {
                let h = 1.0 / (nf - 1.0);
                (0..n)
                    .map(|k| {
                        let w = if k == 0 || k == n - 1 { 0.5 * h } else { h };
                        (k as f64 * h, w)
                    })
                    .collect()
            }
        })
    }
}

/// Nodes (ascending, in `[-1, 1]`) and weights of the `n`-point Gauss–Legendre rule, by Newton
/// iteration on `P_n` from Tricomi's initial guesses.
fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut rule = Vec::with_capacity(n);
    for i in 0..n {
        // The i-th largest root is close to cos(π (i + 3/4) / (n + 1/2)).
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre(n, x);
            dp = d;
            let step = p / d;
            x -= step;
            if step.abs() < 1e-15 {
                break;
            }
        }
        let (_, d) = legendre(n, x);
        if d.is_finite() {
            dp = d;
        }
        rule.push((x, 2.0 / ((1.0 - x * x) * dp * dp)));
    }
    rule.reverse();
    rule
}

/// `(P_n(x), P_n'(x))` by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let kf = k as f64;
        let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
        p0 = p1;
        p1 = p2;
    }
    // P_n'(x) = n (x P_n − P_{n−1}) / (x² − 1).
    let d = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, d)
}

/// Integrated gradients (Sundararajan et al., 2017), with Captum's semantics:
/// `attr_i = (x_i − x′_i) · Σ_k w_k ∂F_t/∂x_i(x′ + α_k (x − x′))`.
///
/// The `n · n_steps` points on the paths are evaluated in chunks of `internal_batch_size`
/// rows, so memory stays bounded; the chunks are spread over the cores (one copy of the model per
/// worker), and summed in order, so the result does not depend on the number of cores. `delta` always holds the completeness gap
/// `Σ_i attr_i − (F_t(x) − F_t(x′))` per example.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{Activation, HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Attribution, Baseline, Inputs, IntegratedGradients, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let head = HeadSpec::new(&[8]).with_activation(Activation::Tanh);
/// let model = ModelSpec::new(IdentitySpec::new(3), head, Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![0.5, -1.0, 2.0], 3)?;
/// let ig = IntegratedGradients::default();
/// let a = ig.attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &device)?;
/// assert!(a.max_abs_delta().unwrap() < 1e-3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegratedGradients {
    /// Number of points on each path (≥ 1; ≥ 2 for the trapezoid rule).
    pub n_steps: usize,
    /// The quadrature rule.
    pub method: IgMethod,
    /// Path points per forward/backward pass (≥ 1).
    pub internal_batch_size: usize,
}

impl Default for IntegratedGradients {
    /// 50 Gauss–Legendre steps, 512 points per pass (Captum's defaults, with a batch bound).
    fn default() -> Self {
        Self {
            n_steps: 50,
            method: IgMethod::GaussLegendre,
            internal_batch_size: 512,
        }
    }
}

impl Attribution for IntegratedGradients {
    fn name(&self) -> &'static str {
        "integrated_gradients"
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
        if self.n_steps == 0 {
            return Err(ExplainError::InvalidParameter {
                method: "IntegratedGradients",
                parameter: "n_steps",
                expected: "at least 1".into(),
                found: "0".into(),
            });
        }
        if self.internal_batch_size == 0 {
            return Err(ExplainError::InvalidParameter {
                method: "IntegratedGradients",
                parameter: "internal_batch_size",
                expected: "at least 1".into(),
                found: "0".into(),
            });
        }
        let (n, d) = (inputs.n, inputs.d);
        let rule = self.method.steps(self.n_steps)?;
        let base = baseline.resolve(n, d)?;
        let targets = target.resolve(n)?;

        // F_t at the inputs and at the baselines, for the completeness delta.
        let plain_device = plain(device);
        let plain_model = model.to_device(&plain_device);
        let mut both = inputs.values.clone();
        both.extend_from_slice(&base);
        let (out, k) = forward_rows(&plain_model, &both, d, &plain_device)?;
        check_targets(&targets, k)?;
        let two_targets: Vec<usize> = targets.iter().chain(&targets).copied().collect();
        let f = pick(&out, k, &two_targets);

        let ad = plain_device.autodiff();
        let n_steps = rule.len();
        let total = n * n_steps;
        let chunk = self.internal_batch_size;
        let n_chunks = total.div_ceil(chunk);
        // Row r is example r / n_steps at step r % n_steps.
        let chunk_gradients = |c: usize, model: &M| -> Result<Vec<f32>> {
            let (start, end) = (c * chunk, ((c + 1) * chunk).min(total));
            let mut points = Vec::with_capacity((end - start) * d);
            let mut chunk_targets = Vec::with_capacity(end - start);
            for r in start..end {
                let (i, s) = (r / n_steps, r % n_steps);
                let alpha = rule[s].0 as f32;
                let (x, b) = (inputs.row(i), &base[i * d..(i + 1) * d]);
                points.extend(x.iter().zip(b).map(|(x, b)| b + alpha * (x - b)));
                chunk_targets.push(targets[i]);
            }
            gradient_rows(model, points, d, &chunk_targets, &ad)
        };
        // The chunks are independent graphs: one worker per thread of the pool takes every
        // `workers`-th chunk with its own copy of the model, and the sums below run in chunk
        // order, so the result does not depend on the number of workers. (The pool's own
        // threads, not new ones: idle pool threads spin for a while and would take the cores
        // from threads outside the pool.)
        let workers = rayon::current_num_threads().min(n_chunks).max(1);
        let models: Vec<M> = (0..workers).map(|_| model.to_device(&ad)).collect();
        let per_worker: Vec<Vec<(usize, Result<Vec<f32>>)>> = models
            .into_par_iter()
            .enumerate()
            .map(|(w, ad_model)| {
                (w..n_chunks)
                    .step_by(workers)
                    .map(|c| (c, chunk_gradients(c, &ad_model)))
                    .collect()
            })
            .collect();
        let mut gradients: Vec<Option<Result<Vec<f32>>>> = (0..n_chunks).map(|_| None).collect();
        for (c, g) in per_worker.into_iter().flatten() {
            gradients[c] = Some(g);
        }
        let mut sum_grad = vec![0.0f64; n * d];
        for (c, g) in gradients.into_iter().enumerate() {
            let g = g.expect("every chunk evaluated")?;
            for (row, r) in (c * chunk..((c + 1) * chunk).min(total)).enumerate() {
                let (i, s) = (r / n_steps, r % n_steps);
                let w = rule[s].1;
                for j in 0..d {
                    sum_grad[i * d + j] += w * f64::from(g[row * d + j]);
                }
            }
        }

        let mut values = vec![0.0f32; n * d];
        let mut delta = Vec::with_capacity(n);
        for i in 0..n {
            let mut total = 0.0f64;
            for j in 0..d {
                let idx = i * d + j;
                let a = f64::from(inputs.values[idx] - base[idx]) * sum_grad[idx];
                values[idx] = a as f32;
                total += a;
            }
            delta.push((total - (f64::from(f[i]) - f64::from(f[n + i]))) as f32);
        }
        Ok(Attributions {
            values,
            n,
            d,
            targets,
            delta: Some(delta),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_matches_known_rules() {
        // n = 2: nodes ±1/√3, weights 1.
        let r = gauss_legendre(2);
        assert!((r[0].0 + 1.0 / 3f64.sqrt()).abs() < 1e-14);
        assert!((r[1].0 - 1.0 / 3f64.sqrt()).abs() < 1e-14);
        assert!((r[0].1 - 1.0).abs() < 1e-14 && (r[1].1 - 1.0).abs() < 1e-14);
        // n = 3: 0, ±√(3/5); weights 8/9, 5/9.
        let r = gauss_legendre(3);
        assert!(r[1].0.abs() < 1e-14 && (r[1].1 - 8.0 / 9.0).abs() < 1e-14);
        assert!((r[2].0 - 0.6f64.sqrt()).abs() < 1e-14 && (r[2].1 - 5.0 / 9.0).abs() < 1e-14);
        // Exactness on degree 2n − 1 for a large n, and ascending order.
        for n in [1, 7, 50, 300] {
            let r = IgMethod::GaussLegendre.steps(n).unwrap();
            assert!(r.windows(2).all(|w| w[0].0 < w[1].0));
            let deg = 2 * n - 1;
            let q: f64 = r.iter().map(|(a, w)| w * a.powi(deg as i32)).sum();
            assert!((q - 1.0 / (deg as f64 + 1.0)).abs() < 1e-10, "n = {n}: {q}");
        }
    }

    #[test]
    fn riemann_rules_follow_captum_alphas() {
        let l = IgMethod::RiemannLeft.steps(4).unwrap();
        assert_eq!(
            l.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.0, 0.25, 0.5, 0.75]
        );
        let r = IgMethod::RiemannRight.steps(4).unwrap();
        assert_eq!(
            r.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.25, 0.5, 0.75, 1.0]
        );
        let m = IgMethod::RiemannMiddle.steps(4).unwrap();
        assert_eq!(
            m.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.125, 0.375, 0.625, 0.875]
        );
        let t = IgMethod::RiemannTrapezoid.steps(5).unwrap();
        assert_eq!(
            t.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            t.iter().map(|p| p.1).collect::<Vec<_>>(),
            [0.125, 0.25, 0.25, 0.25, 0.125]
        );
        for rule in [l, r, m, t] {
            assert!((rule.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(IgMethod::RiemannTrapezoid.steps(1).is_err());
        assert!(IgMethod::RiemannLeft.steps(0).is_err());
    }
}
