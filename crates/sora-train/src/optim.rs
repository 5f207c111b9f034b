//! The optimizers the trainer runs: SGD (momentum, Nesterov, weight decay), Adam and AdamW with
//! burn-optim's update rules, applied in place by one pass of `sora-kernels` per parameter
//! tensor (burn-optim's implementations chain whole-tensor operations, each allocating its
//! result). The results are burn-optim's to the bit; `tests/optim.rs` checks it step after step.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Int, Tensor, TensorData};
use sora_kernels::optim::{AdamStep, SgdStep, adam_step, sgd_step};

/// Stochastic gradient descent, with optional momentum (and Nesterov's variant) and an L2
/// penalty on the gradient: burn-optim's `Sgd`.
#[derive(Clone, Debug)]
pub struct FusedSgd {
    /// `(momentum, dampening, nesterov)`.
    pub momentum: Option<(f64, f64, bool)>,
    /// The L2 penalty.
    pub weight_decay: Option<f32>,
}

/// The state [`FusedSgd`] keeps per parameter.
#[derive(Clone, Debug)]
pub struct SgdState<const D: usize> {
    /// The velocity (with momentum).
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(v) = &self.velocity {
            out.push_tensor(prefix, "velocity", v.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        Some(Self {
            velocity: src
                .take_tensor(prefix, "velocity")
                .map(|data| Tensor::from_data(data, device)),
        })
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let step = SgdStep {
            lr: lr as f32,
            momentum: self.momentum.map(|(momentum, dampening, nesterov)| {
                (momentum as f32, (1.0 - dampening) as f32, nesterov)
            }),
            weight_decay: self.weight_decay,
        };
        let (param, velocity) = sgd_step(tensor, grad, state.and_then(|s| s.velocity), step);
        (param, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        SgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}

/// Adam (an L2 penalty on the gradient, burn-optim's `Adam`) or AdamW (decoupled weight decay,
/// burn-optim's `AdamW`).
#[derive(Clone, Debug)]
pub struct FusedAdam {
    /// `β₁`.
    pub beta_1: f32,
    /// `β₂`.
    pub beta_2: f32,
    /// `ε`.
    pub epsilon: f32,
    /// Adam's L2 penalty.
    pub weight_decay: Option<f32>,
    /// AdamW's decoupled weight decay.
    pub decoupled_weight_decay: Option<f32>,
}

/// The state [`FusedAdam`] keeps per parameter.
#[derive(Clone, Debug)]
pub struct AdamState<const D: usize> {
    /// Steps taken, counted from 1.
    pub time: usize,
    /// The first moment.
    pub moment_1: Tensor<D>,
    /// The second moment.
    pub moment_2: Tensor<D>,
}

impl<const D: usize> RecordState for AdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "time", TensorData::new(vec![self.time as i64], [1]));
        out.push_tensor(prefix, "moment_1", self.moment_1.clone().into_data());
        out.push_tensor(prefix, "moment_2", self.moment_2.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let time = Tensor::<1, Int>::from_data(src.take_tensor(prefix, "time")?, device)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .ok()?;
        Some(Self {
            time: usize::try_from(*time.first()?).ok()?,
            moment_1: Tensor::from_data(src.take_tensor(prefix, "moment_1")?, device),
            moment_2: Tensor::from_data(src.take_tensor(prefix, "moment_2")?, device),
        })
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let time = state.as_ref().map_or(1, |s| s.time + 1);
        let adamw = self.decoupled_weight_decay.is_some();
        let mut step = AdamStep::new(lr, self.beta_1, self.beta_2, self.epsilon, time, adamw);
        step.weight_decay = self.weight_decay;
        if let Some(decay) = self.decoupled_weight_decay {
            let rate = lr * decay as f64;
            step.decoupled_keep = (rate != 0.0).then_some((1.0 - rate) as f32);
        }
        let moments = state.map(|s| (s.moment_1, s.moment_2));
        let (param, moment_1, moment_2) = adam_step(tensor, grad, moments, step);
        (
            param,
            Some(AdamState {
                time,
                moment_1,
                moment_2,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamState {
            time: state.time,
            moment_1: state.moment_1.to_device(device),
            moment_2: state.moment_2.to_device(device),
        }
    }
}
