//! A fused GRU layer: the whole sequence as one operation, in PyTorch's formulation.
//!
//! ```text
//! xp = x · W_ih + b_ih                     one product over every step
//! for each step:  hp = h · W_hh + b_hh     one small product
//!                 r = σ(xp_r + hp_r)   z = σ(xp_z + hp_z)
//!                 n = tanh(xp_n + r ⊙ hp_n)
//!                 h = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! The steps, the gates and their backward pass through time are one kernel
//! ([`sora_kernels::recurrent::gru_sequence`], a Burn backend extension) on burn-flex and
//! burn-ndarray; on other devices (LibTorch) the same arithmetic runs as Burn tensor operations
//! ([`sora_kernels::recurrent::gru_sequence_reference`]).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::prelude::s;
use burn::tensor::{Device, Tensor};
use sora_kernels::linear::linear;
use sora_kernels::recurrent::{gru_sequence, gru_sequence_reference};

/// Configuration of a [`FusedGru`].
#[derive(Config, Debug)]
pub struct FusedGruConfig {
    /// Width of the input features.
    pub d_input: usize,
    /// Width of the hidden state.
    pub d_hidden: usize,
}

impl FusedGruConfig {
    /// A layer with every parameter drawn uniformly from `±1/√d_hidden`, as PyTorch's
    /// `nn.GRU` does.
    pub fn init(&self, device: &Device) -> FusedGru {
        let bound = 1.0 / (self.d_hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let gates = 3 * self.d_hidden;
        FusedGru {
            weight: init.init([self.d_input + self.d_hidden, gates], device),
            bias_ih: init.init([gates], device),
            bias_hh: init.init([gates], device),
            d_input: self.d_input,
            d_hidden: self.d_hidden,
        }
    }
}

/// A unidirectional GRU with its input and hidden weights in one matrix.
///
/// Parameters (`H` = `d_hidden`, `D` = `d_input`):
/// - `weight`: `[D + H, 3H]`; rows `0..D` multiply the input, rows `D..D+H` the previous hidden
///   state; column blocks of width `H` are the gates **reset, update, candidate** (`r, z, n`,
///   PyTorch's order; PyTorch stores `weight_ih` and `weight_hh` separately, transposed);
/// - `bias_ih`, `bias_hh`: `[3H]` each. They are not interchangeable: `b_hn` is inside the reset
///   gate's product, as in PyTorch. The parameter count is PyTorch's, `3·(D·H + H·H + 2H)`.
///
/// ```
/// use burn::prelude::*;
/// use sora_text::gru::FusedGruConfig;
///
/// let device = Device::flex();
/// let gru = FusedGruConfig::new(3, 5).init(&device);
/// let states = gru.forward(Tensor::<3>::ones([2, 4, 3], &device), None);
/// assert_eq!(states.dims(), [2, 4, 5]);
/// ```
#[derive(Module, Debug)]
pub struct FusedGru {
    /// Input and hidden weights, `[d_input + d_hidden, 3 · d_hidden]`, gates `r, z, n`.
    pub weight: Param<Tensor<2>>,
    /// Input-side bias, `[3 · d_hidden]`, gates `r, z, n`.
    pub bias_ih: Param<Tensor<1>>,
    /// Hidden-side bias, `[3 · d_hidden]`, gates `r, z, n`.
    pub bias_hh: Param<Tensor<1>>,
    /// Width of the input features.
    pub d_input: usize,
    /// Width of the hidden state.
    pub d_hidden: usize,
}

impl FusedGru {
    /// Runs the sequence from `state` (zeros when `None`) and returns every hidden state.
    ///
    /// # Shapes
    /// - input: `[batch, seq_len, d_input]`, `seq_len ≥ 1`; state: `[batch, d_hidden]`
    /// - output: `[batch, seq_len, d_hidden]`
    ///
    /// # Panics
    /// If `seq_len` is 0.
    pub fn forward(&self, x: Tensor<3>, state: Option<Tensor<2>>) -> Tensor<3> {
        let [batch, seq_len, d_input] = x.dims();
        assert!(seq_len > 0, "FusedGru needs at least one time step");
        let h = self.d_hidden;
        let device = x.device();
        let hidden = state.unwrap_or_else(|| Tensor::zeros([batch, h], &device));
        let weight = self.weight.val();
        let w_ih = weight.clone().slice(s![0..d_input]);
        let w_hh = weight.slice(s![d_input..d_input + h]);
        let xp = linear(
            x.reshape([batch * seq_len, d_input]),
            w_ih,
            self.bias_ih.val(),
        )
        .reshape([batch, seq_len, 3 * h]);
        if sora_kernels::supported(&device) {
            gru_sequence(xp, w_hh, self.bias_hh.val(), hidden)
        } else {
            gru_sequence_reference(xp, w_hh, self.bias_hh.val(), hidden)
        }
    }
}

/// Configuration of a [`FusedBiGru`].
#[derive(Config, Debug)]
pub struct FusedBiGruConfig {
    /// Width of the input features.
    pub d_input: usize,
    /// Width of each direction's hidden state.
    pub d_hidden: usize,
}

impl FusedBiGruConfig {
    /// Two [`FusedGru`] directions, initialised as [`FusedGruConfig::init`].
    pub fn init(&self, device: &Device) -> FusedBiGru {
        let config = FusedGruConfig::new(self.d_input, self.d_hidden);
        FusedBiGru {
            forward: config.init(device),
            reverse: config.init(device),
        }
    }
}

/// A bidirectional [`FusedGru`]: the reverse direction runs the time-flipped sequence and its
/// states are flipped back, then both directions are concatenated (forward first).
///
/// ```
/// use burn::prelude::*;
/// use sora_text::gru::FusedBiGruConfig;
///
/// let device = Device::flex();
/// let gru = FusedBiGruConfig::new(3, 5).init(&device);
/// let states = gru.forward(Tensor::<3>::ones([2, 4, 3], &device));
/// assert_eq!(states.dims(), [2, 4, 10]);
/// ```
#[derive(Module, Debug)]
pub struct FusedBiGru {
    /// The left-to-right direction.
    pub forward: FusedGru,
    /// The right-to-left direction.
    pub reverse: FusedGru,
}

impl FusedBiGru {
    /// Runs both directions from zero states.
    ///
    /// # Shapes
    /// - input: `[batch, seq_len, d_input]`, `seq_len ≥ 1`
    /// - output: `[batch, seq_len, 2 · d_hidden]`
    ///
    /// # Panics
    /// If `seq_len` is 0.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let out_fwd = self.forward.forward(x.clone(), None);
        let out_rev = self.reverse.forward(x.flip([1]), None);
        Tensor::cat(vec![out_fwd, out_rev.flip([1])], 2)
    }
}
