//! In-place optimizer updates: SGD (momentum, Nesterov, weight decay), Adam and AdamW, one pass
//! over each parameter tensor.
//!
//! burn-optim applies an update as a chain of whole-tensor operations (a scaled gradient, the
//! new momentum, the scaled step, the subtraction), each allocating its result. Here each
//! update is one sweep that rewrites the parameter and its state in their own buffers (on
//! burn-flex, when nothing else holds them; otherwise one copy first), computing every element
//! with burn-optim's own float32 expression in burn-optim's order — so the results are the same
//! bits (the tests check equality with burn-optim, step after step).
//!
//! On devices without the kernels ([`crate::supported`] false) the same expressions run as Burn
//! tensor operations.

// burn-ndarray is deprecated upstream; Sora keeps it working (the generated dispatch names it).
#![allow(deprecated)]

use burn::Tensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, TensorMetadata, backend_extension};

use crate::host::{self, multiversion};

/// One SGD update's constants, as burn-optim's `Sgd` turns its configuration into float32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// The learning rate.
    pub lr: f32,
    /// `Some((momentum, 1 − dampening, nesterov))` with momentum, `None` without.
    pub momentum: Option<(f32, f32, bool)>,
    /// The L2 penalty added to the gradient (`grad + penalty · param`).
    pub weight_decay: Option<f32>,
}

/// The bias correction of the moments: burn-optim's `Adam` folds it into two constants, its
/// `AdamW` divides each moment (the same in real arithmetic, not in float32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Correction {
    /// Adam: `m₁ · c / (√m₂ + ε')` with `c = √(1 − β₂ᵗ) / (1 − β₁ᵗ)`, `ε' = ε · √(1 − β₂ᵗ)`.
    Combined {
        /// `c`.
        factor: f32,
        /// `ε'`.
        epsilon: f32,
    },
    /// AdamW: `(m₁ / (1 − β₁ᵗ)) / (√(m₂ / (1 − β₂ᵗ)) + ε)`.
    Separate {
        /// `1 − β₁ᵗ`.
        first: f32,
        /// `1 − β₂ᵗ`.
        second: f32,
        /// `ε`.
        epsilon: f32,
    },
}

/// One Adam or AdamW update's constants, as burn-optim's `Adam`/`AdamW` compute them for step
/// `time` (counted from 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// The learning rate.
    pub lr: f32,
    /// `β₁`, `1 − β₁`, `β₂`, `1 − β₂`.
    pub betas: (f32, f32, f32, f32),
    /// How the moments are corrected for their bias.
    pub correction: Correction,
    /// Adam's L2 penalty added to the gradient.
    pub weight_decay: Option<f32>,
    /// AdamW's decoupled decay: the parameter is first multiplied by `1 − lr · decay`.
    pub decoupled_keep: Option<f32>,
    /// Whether this is the first step (no moments yet).
    pub first: bool,
}

impl AdamStep {
    /// The constants for step `time` (≥ 1), computed in burn-optim's precision and order:
    /// Adam's correction, or AdamW's when `adamw`.
    pub fn new(lr: f64, beta_1: f32, beta_2: f32, epsilon: f32, time: usize, adamw: bool) -> Self {
        let t = time as i32;
        let correction = if adamw {
            Correction::Separate {
                first: 1.0 - beta_1.powi(t),
                second: 1.0 - beta_2.powi(t),
                epsilon,
            }
        } else {
            let bias_correction2_sqrt = (1.0 - beta_2.powi(t)).sqrt();
            Correction::Combined {
                factor: bias_correction2_sqrt / (1.0 - beta_1.powi(t)),
                epsilon: epsilon * bias_correction2_sqrt,
            }
        };
        Self {
            lr: lr as f32,
            betas: (beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2),
            correction,
            weight_decay: None,
            decoupled_keep: None,
            first: time == 1,
        }
    }
}

/// A parameter and its momentum after an SGD update.
#[derive(ExtensionType)]
pub struct SgdTensors<B: Backend> {
    /// The updated parameter.
    pub param: FloatTensor<B>,
    /// The new velocity.
    pub velocity: FloatTensor<B>,
}

/// A parameter and its moments after an Adam update.
#[derive(ExtensionType)]
pub struct AdamTensors<B: Backend> {
    /// The updated parameter.
    pub param: FloatTensor<B>,
    /// The first moment.
    pub moment_1: FloatTensor<B>,
    /// The second moment.
    pub moment_2: FloatTensor<B>,
}

/// The in-place optimizer updates, registered for the CPU backends Sora's kernels support.
/// (Optimizers run outside autodiff: they receive the parameters' inner tensors.)
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"))]
pub trait OptimOps: Backend {
    /// SGD without momentum: `param − lr · (grad [+ penalty · param])`.
    fn fused_sgd(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        step: SgdStep,
    ) -> FloatTensor<Self>;

    /// SGD with momentum; `velocity` is `None` on the first step (it becomes the gradient).
    fn fused_sgd_momentum(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        first: bool,
        step: SgdStep,
    ) -> SgdTensors<Self>;

    /// Adam or AdamW; the moments are ignored on the first step.
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> AdamTensors<Self>;
}

macro_rules! cpu_impl {
    ($backend:ty) => {
        impl OptimOps for $backend {
            fn fused_sgd(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                step: SgdStep,
            ) -> FloatTensor<Self> {
                sgd::<Self>(param, grad, step)
            }

            fn fused_sgd_momentum(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                velocity: FloatTensor<Self>,
                first: bool,
                step: SgdStep,
            ) -> SgdTensors<Self> {
                sgd_momentum::<Self>(param, grad, velocity, first, step)
            }

            fn fused_adam(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                moment_1: FloatTensor<Self>,
                moment_2: FloatTensor<Self>,
                step: AdamStep,
            ) -> AdamTensors<Self> {
                adam::<Self>(param, grad, moment_1, moment_2, step)
            }
        }
    };
}

#[cfg(feature = "flex")]
cpu_impl!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
cpu_impl!(burn::backend::NdArray);

/// One SGD update of `param` (any rank) with `grad` and the previous velocity (`None` on the
/// first step, or without momentum): the updated parameter and, with momentum, the new velocity.
pub fn sgd_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
    step: SgdStep,
) -> (Tensor<D>, Option<Tensor<D>>) {
    if !crate::supported(&param.device()) {
        return sgd_reference(param, grad, velocity, step);
    }
    match step.momentum {
        None => {
            let out = <Dispatch as OptimOps>::fused_sgd(
                param.into_dispatch(),
                grad.into_dispatch(),
                step,
            );
            (Tensor::from_dispatch(out), None)
        }
        Some(_) => {
            let first = velocity.is_none();
            // On the first step the velocity input is only a placeholder.
            let velocity = velocity.unwrap_or_else(|| grad.clone());
            let out = <Dispatch as OptimOps>::fused_sgd_momentum(
                param.into_dispatch(),
                grad.into_dispatch(),
                velocity.into_dispatch(),
                first,
                step,
            );
            (
                Tensor::from_dispatch(out.param),
                Some(Tensor::from_dispatch(out.velocity)),
            )
        }
    }
}

/// One Adam/AdamW update: the updated parameter and the two moments (`None` on the first step).
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    assert_eq!(
        moments.is_none(),
        step.first,
        "moments exist exactly after the first step"
    );
    if !crate::supported(&param.device()) {
        return adam_reference(param, grad, moments, step);
    }
    let (m1, m2) = moments.unwrap_or_else(|| (grad.clone(), grad.clone()));
    let out = <Dispatch as OptimOps>::fused_adam(
        param.into_dispatch(),
        grad.into_dispatch(),
        m1.into_dispatch(),
        m2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(out.param),
        Tensor::from_dispatch(out.moment_1),
        Tensor::from_dispatch(out.moment_2),
    )
}

/// [`sgd_step`] as Burn tensor operations: burn-optim's `Sgd` step.
pub fn sgd_reference<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
    step: SgdStep,
) -> (Tensor<D>, Option<Tensor<D>>) {
    let grad = match step.weight_decay {
        Some(penalty) => param.clone().mul_scalar(penalty).add(grad),
        None => grad,
    };
    let (grad, velocity) = match step.momentum {
        None => (grad, None),
        Some((momentum, keep, nesterov)) => {
            let v = match velocity {
                Some(v) => grad.clone().mul_scalar(keep).add(v.mul_scalar(momentum)),
                None => grad.clone(),
            };
            let g = if nesterov {
                v.clone().mul_scalar(momentum).add(grad)
            } else {
                v.clone()
            };
            (g, Some(v))
        }
    };
    (param - grad.mul_scalar(step.lr), velocity)
}

/// [`adam_step`] as Burn tensor operations: burn-optim's `Adam`/`AdamW` step.
pub fn adam_reference<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (b1, f1, b2, f2) = step.betas;
    let grad = match step.weight_decay {
        Some(penalty) => param.clone().mul_scalar(penalty).add(grad),
        None => grad,
    };
    let (m1, m2) = match moments {
        Some((m1, m2)) => (
            m1.mul_scalar(b1).add(grad.clone().mul_scalar(f1)),
            m2.mul_scalar(b2).add(grad.square().mul_scalar(f2)),
        ),
        None => (grad.clone().mul_scalar(f1), grad.square().mul_scalar(f2)),
    };
    let update = match step.correction {
        Correction::Combined { factor, epsilon } => m1
            .clone()
            .mul_scalar(factor)
            .div(m2.clone().sqrt().add_scalar(epsilon)),
        Correction::Separate {
            first,
            second,
            epsilon,
        } => m1
            .clone()
            .div_scalar(first)
            .div(m2.clone().div_scalar(second).sqrt().add_scalar(epsilon)),
    };
    let param = match step.decoupled_keep {
        Some(keep) => param.mul_scalar(keep),
        None => param,
    };
    (param - update.mul_scalar(step.lr), m1, m2)
}

fn sgd<B: Backend>(param: FloatTensor<B>, grad: FloatTensor<B>, step: SgdStep) -> FloatTensor<B> {
    let device = param.device();
    let mut p = host::read::<B>(param);
    let g = host::read::<B>(grad);
    sgd_plain(
        host::values_mut(&mut p),
        host::values(&g),
        step.lr,
        step.weight_decay,
    );
    host::write::<B>(p, &device)
}

fn sgd_momentum<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    velocity: FloatTensor<B>,
    first: bool,
    step: SgdStep,
) -> SgdTensors<B> {
    let device = param.device();
    let (momentum, keep, nesterov) = step.momentum.expect("SGD with momentum");
    let mut p = host::read::<B>(param);
    // On the first step the velocity is the gradient: its buffer is the new velocity.
    let (g, mut v) = if first {
        drop(velocity);
        (None, host::read::<B>(grad))
    } else {
        (Some(host::read::<B>(grad)), host::read::<B>(velocity))
    };
    let constants = Momentum {
        lr: step.lr,
        momentum,
        keep,
        nesterov,
        weight_decay: step.weight_decay,
    };
    match &g {
        Some(g) => sgd_momentum_sweep(
            host::values_mut(&mut p),
            host::values(g),
            host::values_mut(&mut v),
            constants,
        ),
        None => sgd_first_sweep(
            host::values_mut(&mut p),
            host::values_mut(&mut v),
            constants,
        ),
    }
    SgdTensors {
        param: host::write::<B>(p, &device),
        velocity: host::write::<B>(v, &device),
    }
}

fn adam<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moment_1: FloatTensor<B>,
    moment_2: FloatTensor<B>,
    step: AdamStep,
) -> AdamTensors<B> {
    let (device, shape) = (param.device(), param.shape());
    let mut p = host::read::<B>(param);
    let g = host::read::<B>(grad);
    let (mut m1, mut m2) = if step.first {
        drop((moment_1, moment_2));
        (host::zeros(shape.clone()), host::zeros(shape))
    } else {
        (host::read::<B>(moment_1), host::read::<B>(moment_2))
    };
    adam_sweep(
        host::values_mut(&mut p),
        host::values(&g),
        host::values_mut(&mut m1),
        host::values_mut(&mut m2),
        step,
    );
    AdamTensors {
        param: host::write::<B>(p, &device),
        moment_1: host::write::<B>(m1, &device),
        moment_2: host::write::<B>(m2, &device),
    }
}

multiversion! {
    /// `p ← p − lr · (g [+ wd · p])`.
    fn sgd_plain(p: &mut [f32], g: &[f32], lr: f32, weight_decay: Option<f32>) {
        let g = &g[..p.len()];
        match weight_decay {
            Some(wd) => {
                for (p, g) in p.iter_mut().zip(g) {
                    *p -= (*p * wd + g) * lr;
                }
            }
            None => {
                for (p, g) in p.iter_mut().zip(g) {
                    *p -= g * lr;
                }
            }
        }
    }
}

/// The constants of an SGD-with-momentum sweep.
#[derive(Clone, Copy)]
struct Momentum {
    lr: f32,
    momentum: f32,
    keep: f32,
    nesterov: bool,
    weight_decay: Option<f32>,
}

multiversion! {
    /// The SGD-with-momentum sweep after the first step.
    fn sgd_momentum_sweep(
        p: &mut [f32],
        g: &[f32],
        v: &mut [f32],
        c: Momentum,
    ) {
        let Momentum { lr, momentum, keep, nesterov, weight_decay } = c;
        let n = p.len();
        let (g, v) = (&g[..n], &mut v[..n]);
        let wd = weight_decay.unwrap_or(0.0);
        let decay = weight_decay.is_some();
        for i in 0..n {
            let grad = if decay { p[i] * wd + g[i] } else { g[i] };
            let vel = grad * keep + v[i] * momentum;
            let update = if nesterov { vel * momentum + grad } else { vel };
            v[i] = vel;
            p[i] -= update * lr;
        }
    }
}

multiversion! {
    /// The first SGD-with-momentum step: `v` holds the gradient on entry and the velocity on
    /// return.
    fn sgd_first_sweep(
        p: &mut [f32],
        v: &mut [f32],
        c: Momentum,
    ) {
        let Momentum { lr, momentum, nesterov, weight_decay, .. } = c;
        let n = p.len();
        let v = &mut v[..n];
        let wd = weight_decay.unwrap_or(0.0);
        let decay = weight_decay.is_some();
        for i in 0..n {
            let grad = if decay { p[i] * wd + v[i] } else { v[i] };
            let update = if nesterov { grad * momentum + grad } else { grad };
            v[i] = grad;
            p[i] -= update * lr;
        }
    }
}

multiversion! {
    /// The Adam/AdamW sweep.
    fn adam_sweep(p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32], step: AdamStep) {
        let n = p.len();
        let (g, m1, m2) = (&g[..n], &mut m1[..n], &mut m2[..n]);
        let (b1, f1, b2, f2) = step.betas;
        let wd = step.weight_decay.unwrap_or(0.0);
        let decay = step.weight_decay.is_some();
        let keep = step.decoupled_keep.unwrap_or(1.0);
        let decoupled = step.decoupled_keep.is_some();
        for i in 0..n {
            let grad = if decay { p[i] * wd + g[i] } else { g[i] };
            let (a, b) = if step.first {
                (grad * f1, (grad * grad) * f2)
            } else {
                (m1[i] * b1 + grad * f1, m2[i] * b2 + (grad * grad) * f2)
            };
            m1[i] = a;
            m2[i] = b;
            let update = match step.correction {
                Correction::Combined { factor, epsilon } => (a * factor) / (b.sqrt() + epsilon),
                Correction::Separate { first, second, epsilon } => {
                    (a / first) / ((b / second).sqrt() + epsilon)
                }
            };
            let param = if decoupled { p[i] * keep } else { p[i] };
            p[i] = param - update * step.lr;
        }
    }
}
