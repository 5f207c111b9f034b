//! # sora-kernels
//!
//! Fused CPU kernels registered with Burn as **backend extensions** (`#[backend_extension]`),
//! each with a handwritten backward pass for autodiff. Burn composes a recurrent step from many
//! small tensor operations, each a pass over memory with its own node in the autodiff graph;
//! the kernels here do the same arithmetic in one operation.
//!
//! | operation | what it replaces |
//! |---|---|
//! | [`recurrent::lstm_sequence`] | an LSTM's per-step matrix products, gate activations and state updates, and their backward pass through time |
//! | [`recurrent::gru_sequence`] | the same for a GRU (PyTorch's formulation) |
//! | [`linear::linear_act`] | `act(x · W + b)` as a product, a broadcast add and an activation pass, and their backward passes |
//! | [`mlp::forward_layers`] | scoring through a stack of linear layers one layer at a time, each writing its whole output: here each tile of rows goes through every layer in cache |
//! | [`conv::conv2d_act`] | a convolution (Burn's generic 3-D kernel), its bias add and activation, and their backward passes; 1-D convolutions as its one-row case |
//! | [`optim::sgd_step`], [`optim::adam_step`] | burn-optim's SGD, Adam and AdamW updates as chains of whole-tensor operations, each allocating its result: here one pass rewriting the parameter and its state in place |
//!
//! The kernels are registered for burn-flex and burn-ndarray (the `flex` and `ndarray`
//! features) and for autodiff over them. On any other device — LibTorch, which runs PyTorch's
//! own fused kernels — [`supported`] is false and callers use the unfused composition (for
//! instance [`recurrent::lstm_sequence_reference`]), which the tests hold the kernels to.
//!
//! ```
//! use burn::prelude::*;
//! use sora_kernels::recurrent::{lstm_sequence, lstm_sequence_reference};
//!
//! let device = Device::flex();
//! assert!(sora_kernels::supported(&device));
//! let (batch, steps, h) = (2, 3, 4);
//! let xp = Tensor::<3>::ones([batch, steps, 4 * h], &device) * 0.1;
//! let w_hh = Tensor::<2>::ones([h, 4 * h], &device) * 0.01;
//! let zeros = Tensor::<2>::zeros([batch, h], &device);
//! let fused = lstm_sequence(xp.clone(), w_hh.clone(), zeros.clone(), zeros.clone());
//! let reference = lstm_sequence_reference(xp, w_hh, zeros.clone(), zeros);
//! assert_eq!(fused.dims(), [batch, steps, 2 * h]);
//! fused.into_data().assert_approx_eq::<f32>(&reference.into_data(), Default::default());
//! ```

mod autodiff;
pub mod conv;
mod host;
pub mod linear;
pub mod mlp;
pub mod optim;
pub mod recurrent;

use burn::tensor::Device;

/// Whether the fused kernels run on `device` (with or without autodiff): true for burn-flex and
/// burn-ndarray when this crate is built with their features.
pub fn supported(device: &Device) -> bool {
    let inner = device.clone().inner();
    #[cfg(feature = "flex")]
    if inner == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it working.
    if inner == Device::ndarray() {
        return true;
    }
    let _ = inner;
    false
}
