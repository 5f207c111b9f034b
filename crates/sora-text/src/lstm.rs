//! A fused LSTM layer: the whole sequence as one operation.
//!
//! Burn's [`burn::nn::lstm::Lstm`] keeps a pair of [`burn::nn::Linear`] per gate, so each time
//! step runs eight small matrix multiplies and a dozen element-wise passes, each a node of the
//! autodiff graph. [`FusedLstm`] holds the same numbers in one weight matrix and runs:
//!
//! ```text
//! xp = x · W_ih + (b_ih + b_hh)            one product over every step
//! for each step:  z = xp_t + h · W_hh      one small product
//!                 [i, f, o] = σ(z[.., 0..3H])   g = tanh(z[.., 3H..4H])
//!                 c = f ⊙ c + i ⊙ g        h = o ⊙ tanh(c)
//! ```
//!
//! with the steps, the gates and their backward pass through time in one kernel
//! ([`sora_kernels::recurrent::lstm_sequence`], a Burn backend extension) on burn-flex and
//! burn-ndarray. On other devices (LibTorch) the same arithmetic runs as Burn tensor operations
//! ([`sora_kernels::recurrent::lstm_sequence_reference`]).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::nn::lstm::LstmState;
use burn::prelude::s;
use burn::tensor::{Device, Tensor};
use sora_kernels::linear::linear;
use sora_kernels::recurrent::{lstm_sequence, lstm_sequence_reference};

/// Configuration of a [`FusedLstm`].
#[derive(Config, Debug)]
pub struct FusedLstmConfig {
    /// Width of the input features.
    pub d_input: usize,
    /// Width of the hidden (and cell) state.
    pub d_hidden: usize,
}

impl FusedLstmConfig {
    /// A layer with every parameter drawn uniformly from `±1/√d_hidden`, as PyTorch's
    /// `nn.LSTM` does.
    pub fn init(&self, device: &Device) -> FusedLstm {
        let bound = 1.0 / (self.d_hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let gates = 4 * self.d_hidden;
        FusedLstm {
            weight: init.init([self.d_input + self.d_hidden, gates], device),
            bias_ih: init.init([gates], device),
            bias_hh: init.init([gates], device),
            d_input: self.d_input,
            d_hidden: self.d_hidden,
        }
    }
}

/// A unidirectional LSTM with its input and hidden weights fused into one matrix.
///
/// Parameters (`H` = `d_hidden`, `D` = `d_input`):
/// - `weight`: `[D + H, 4H]`; rows `0..D` multiply the input, rows `D..D+H` the previous hidden
///   state; column blocks of width `H` are the gates in the order **input, forget, output,
///   cell** (`i, f, o, g`), so the three sigmoid gates are contiguous. (PyTorch orders them
///   `i, f, g, o` and stores `weight_ih` and `weight_hh` separately, transposed.)
/// - `bias_ih`, `bias_hh`: `[4H]` each, same gate order, added together: PyTorch's two bias
///   vectors, so the layer has PyTorch's (and Burn's `Lstm`'s) parameter count,
///   `4·(D·H + H·H + 2H)`, and its weights map one to one.
///
/// ```
/// use burn::prelude::*;
/// use sora_text::lstm::FusedLstmConfig;
///
/// let device = Device::flex();
/// let lstm = FusedLstmConfig::new(3, 5).init(&device);
/// let x = Tensor::<3>::ones([2, 4, 3], &device);
/// let (states, last) = lstm.forward(x, None);
/// assert_eq!(states.dims(), [2, 4, 5]);
/// assert_eq!(last.hidden.dims(), [2, 5]);
/// ```
#[derive(Module, Debug)]
pub struct FusedLstm {
    /// Input and hidden weights, `[d_input + d_hidden, 4 · d_hidden]`, gates `i, f, o, g`.
    pub weight: Param<Tensor<2>>,
    /// Input-side bias, `[4 · d_hidden]`, gates `i, f, o, g`.
    pub bias_ih: Param<Tensor<1>>,
    /// Hidden-side bias, `[4 · d_hidden]`, gates `i, f, o, g`.
    pub bias_hh: Param<Tensor<1>>,
    /// Width of the input features.
    pub d_input: usize,
    /// Width of the hidden state.
    pub d_hidden: usize,
}

impl FusedLstm {
    /// Runs the sequence from `state` (zeros when `None`) and returns every hidden state and
    /// the final state.
    ///
    /// # Shapes
    /// - input: `[batch, seq_len, d_input]`, `seq_len ≥ 1`
    /// - state: cell and hidden `[batch, d_hidden]`
    /// - output: `[batch, seq_len, d_hidden]`, and the final cell and hidden `[batch, d_hidden]`
    ///
    /// # Panics
    /// If `seq_len` is 0.
    pub fn forward(&self, x: Tensor<3>, state: Option<LstmState<2>>) -> (Tensor<3>, LstmState<2>) {
        let [batch, seq_len, d_input] = x.dims();
        assert!(seq_len > 0, "FusedLstm needs at least one time step");
        let h = self.d_hidden;
        let device = x.device();
        let (cell, hidden) = match state {
            Some(s) => (s.cell, s.hidden),
            None => {
                let zeros = Tensor::<2>::zeros([batch, h], &device);
                (zeros.clone(), zeros)
            }
        };
        let weight = self.weight.val();
        let w_ih = weight.clone().slice(s![0..d_input]);
        let w_hh = weight.slice(s![d_input..d_input + h]);
        let bias = self.bias_ih.val() + self.bias_hh.val();
        let xp = linear(x.reshape([batch * seq_len, d_input]), w_ih, bias).reshape([
            batch,
            seq_len,
            4 * h,
        ]);
        let out = if sora_kernels::supported(&device) {
            lstm_sequence(xp, w_hh, hidden, cell)
        } else {
            lstm_sequence_reference(xp, w_hh, hidden, cell)
        };
        let last = out
            .clone()
            .slice(s![.., seq_len - 1..seq_len])
            .reshape([batch, 2 * h]);
        let state = LstmState::new(
            last.clone().slice(s![.., h..2 * h]),
            last.slice(s![.., 0..h]),
        );
        (out.slice(s![.., .., 0..h]), state)
    }
}

/// Configuration of a [`FusedBiLstm`].
#[derive(Config, Debug)]
pub struct FusedBiLstmConfig {
    /// Width of the input features.
    pub d_input: usize,
    /// Width of each direction's hidden state.
    pub d_hidden: usize,
}

impl FusedBiLstmConfig {
    /// Two [`FusedLstm`] directions, initialised as [`FusedLstmConfig::init`].
    pub fn init(&self, device: &Device) -> FusedBiLstm {
        let config = FusedLstmConfig::new(self.d_input, self.d_hidden);
        FusedBiLstm {
            forward: config.init(device),
            reverse: config.init(device),
        }
    }
}

/// A bidirectional [`FusedLstm`]: the reverse direction runs the time-flipped sequence and its
/// states are flipped back, then both directions are concatenated (forward first).
///
/// ```
/// use burn::prelude::*;
/// use sora_text::lstm::FusedBiLstmConfig;
///
/// let device = Device::flex();
/// let lstm = FusedBiLstmConfig::new(3, 5).init(&device);
/// let (states, last) = lstm.forward(Tensor::<3>::ones([2, 4, 3], &device), None);
/// assert_eq!(states.dims(), [2, 4, 10]);
/// assert_eq!(last.cell.dims(), [2, 2, 5]);
/// ```
#[derive(Module, Debug)]
pub struct FusedBiLstm {
    /// The left-to-right direction.
    pub forward: FusedLstm,
    /// The right-to-left direction.
    pub reverse: FusedLstm,
}

impl FusedBiLstm {
    /// Runs both directions from `state` (zeros when `None`).
    ///
    /// # Shapes
    /// - input: `[batch, seq_len, d_input]`, `seq_len ≥ 1`
    /// - state: cell and hidden `[2, batch, d_hidden]` (forward, reverse)
    /// - output: `[batch, seq_len, 2 · d_hidden]`, and the final cell and hidden
    ///   `[2, batch, d_hidden]`; the reverse direction's final state is the one after the first
    ///   time step
    ///
    /// # Panics
    /// If `seq_len` is 0.
    pub fn forward(&self, x: Tensor<3>, state: Option<LstmState<3>>) -> (Tensor<3>, LstmState<3>) {
        let (state_fwd, state_rev) = match state {
            Some(s) => {
                let part = |t: Tensor<3>, i: usize| t.slice(s![i..i + 1]).squeeze_dim::<2>(0);
                (
                    Some(LstmState::new(
                        part(s.cell.clone(), 0),
                        part(s.hidden.clone(), 0),
                    )),
                    Some(LstmState::new(part(s.cell, 1), part(s.hidden, 1))),
                )
            }
            None => (None, None),
        };
        let (out_fwd, last_fwd) = self.forward.forward(x.clone(), state_fwd);
        let (out_rev, last_rev) = self.reverse.forward(x.flip([1]), state_rev);
        let output = Tensor::cat(vec![out_fwd, out_rev.flip([1])], 2);
        let state = LstmState::new(
            Tensor::stack(vec![last_fwd.cell, last_rev.cell], 0),
            Tensor::stack(vec![last_fwd.hidden, last_rev.hidden], 0),
        );
        (output, state)
    }
}
