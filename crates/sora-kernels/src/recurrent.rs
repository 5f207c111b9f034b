//! Fused recurrent sequences: an LSTM or GRU run over every time step as one operation, with a
//! handwritten backward pass through time.
//!
//! The input projection of every step (`x · W_ih + b`) is one matrix product outside the
//! operation (a Burn `matmul`, whose gradient Burn computes as two large products). Inside it,
//! each step is one small product with the hidden weights and one pass over the gates, with
//! every batch chunk (16 rows at most) running the whole sequence on its own thread, so the
//! threads meet once per sequence rather than once per step. The backward pass walks the steps
//! in reverse with the saved gate activations and then forms the hidden weights' gradient as
//! one product over all steps (`Σₜ hₜ₋₁ᵀ · dzₜ`).
//!
//! Gate layouts (column blocks of width `H`, the order the weights are stored in):
//! - LSTM: `i, f, o, g` (the three sigmoid gates first, then the cell candidate);
//! - GRU: `r, z, n` — PyTorch's formulation, `n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`,
//!   `h' = (1 − z) ⊙ n + z ⊙ h`.

// burn-ndarray is deprecated upstream; Sora keeps it working (the generated dispatch names it).
#![allow(deprecated)]

use burn::Tensor;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{TensorData, s};
use rayon::prelude::*;

use crate::host::{
    self, Panels, Shared, chunks, multiversion, par_matmul, sigmoid, step_matmul, tanh,
};
use crate::linear::{column_sums, transpose};

/// The fused recurrent operations, registered for the CPU backends Sora's kernels support and
/// for autodiff over them.
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait RecurrentOps: Backend {
    /// An LSTM over a whole sequence.
    ///
    /// - `xp`: `[batch, steps, 4H]`, the input projection of every step with both biases added;
    /// - `w_hh`: `[H, 4H]`, the hidden weights; `h0`, `c0`: `[batch, H]`.
    ///
    /// Returns `[batch, steps, 2H]`: the hidden state `hₜ` in columns `0..H`, the cell state `cₜ`
    /// in `H..2H`.
    fn fused_lstm(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// A GRU over a whole sequence.
    ///
    /// - `xp`: `[batch, steps, 3H]`, the input projection of every step with `b_ih` added;
    /// - `w_hh`: `[H, 3H]`, `b_hh`: `[3H]`, the hidden weights and bias; `h0`: `[batch, H]`.
    ///
    /// Returns the hidden states, `[batch, steps, H]`.
    fn fused_gru(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl RecurrentOps for burn::backend::Flex {
    fn fused_lstm(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        lstm_forward::<Self>(xp, w_hh, h0, c0).0
    }

    fn fused_gru(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        gru_forward::<Self>(xp, w_hh, b_hh, h0).0
    }
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl RecurrentOps for burn::backend::NdArray {
    fn fused_lstm(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        lstm_forward::<Self>(xp, w_hh, h0, c0).0
    }

    fn fused_gru(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        gru_forward::<Self>(xp, w_hh, b_hh, h0).0
    }
}

impl<B: Backend, C: CheckpointStrategy> RecurrentOps for Autodiff<B, C> {
    fn fused_lstm(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LstmBackward;

        impl<B: Backend> Backward<B, 4> for LstmBackward {
            /// The gate activations, the output, `w_hh`, `h0`, `c0`.
            type State = [FloatTensor<B>; 5];

            fn backward(
                self,
                ops: Ops<Self::State, 4>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_xp, node_w, node_h0, node_c0] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let [gates, out, w_hh, h0, c0] = ops.state;
                let [dxp, dw, dh0, dc0] = lstm_backward::<B>(grad, gates, out, w_hh, h0, c0);
                for (node, grad) in [(node_xp, dxp), (node_w, dw), (node_h0, dh0), (node_c0, dc0)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        match LstmBackward
            .prepare::<C>([xp.node(), w_hh.node(), h0.node(), c0.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (w, h, c) = (
                    w_hh.primitive().clone(),
                    h0.primitive().clone(),
                    c0.primitive().clone(),
                );
                let (out, gates) =
                    lstm_forward::<B>(xp.into_primitive(), w.clone(), h.clone(), c.clone());
                prep.finish([gates, out.clone(), w, h, c], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                lstm_forward::<B>(
                    xp.into_primitive(),
                    w_hh.into_primitive(),
                    h0.into_primitive(),
                    c0.into_primitive(),
                )
                .0,
            ),
        }
    }

    fn fused_gru(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GruBackward;

        impl<B: Backend> Backward<B, 4> for GruBackward {
            /// The saved gate values, the output, `w_hh`, `h0`.
            type State = [FloatTensor<B>; 4];

            fn backward(
                self,
                ops: Ops<Self::State, 4>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_xp, node_w, node_b, node_h0] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let [saved, out, w_hh, h0] = ops.state;
                let [dxp, dw, db, dh0] = gru_backward::<B>(grad, saved, out, w_hh, h0);
                for (node, grad) in [(node_xp, dxp), (node_w, dw), (node_b, db), (node_h0, dh0)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        match GruBackward
            .prepare::<C>([xp.node(), w_hh.node(), b_hh.node(), h0.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (w, h) = (w_hh.primitive().clone(), h0.primitive().clone());
                let (out, saved) = gru_forward::<B>(
                    xp.into_primitive(),
                    w.clone(),
                    b_hh.into_primitive(),
                    h.clone(),
                );
                prep.finish([saved, out.clone(), w, h], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                gru_forward::<B>(
                    xp.into_primitive(),
                    w_hh.into_primitive(),
                    b_hh.into_primitive(),
                    h0.into_primitive(),
                )
                .0,
            ),
        }
    }
}

/// Runs an LSTM over a whole sequence as one fused operation (see [`RecurrentOps::fused_lstm`]
/// for the shapes). Only for devices where [`crate::supported`] is true.
///
/// # Panics
/// If the shapes disagree (the callers in Sora build them).
pub fn lstm_sequence(xp: Tensor<3>, w_hh: Tensor<2>, h0: Tensor<2>, c0: Tensor<2>) -> Tensor<3> {
    let [batch, _, gates] = xp.dims();
    let h = w_hh.dims()[0];
    assert_eq!(
        gates,
        4 * h,
        "fused_lstm: xp has {gates} columns for hidden size {h}"
    );
    assert_eq!(w_hh.dims(), [h, 4 * h], "fused_lstm: w_hh shape");
    assert_eq!(h0.dims(), [batch, h], "fused_lstm: h0 shape");
    assert_eq!(c0.dims(), [batch, h], "fused_lstm: c0 shape");
    Tensor::from_dispatch(<Dispatch as RecurrentOps>::fused_lstm(
        xp.into_dispatch(),
        w_hh.into_dispatch(),
        h0.into_dispatch(),
        c0.into_dispatch(),
    ))
}

/// Runs a GRU over a whole sequence as one fused operation (see [`RecurrentOps::fused_gru`] for
/// the shapes). Only for devices where [`crate::supported`] is true.
///
/// # Panics
/// If the shapes disagree.
pub fn gru_sequence(xp: Tensor<3>, w_hh: Tensor<2>, b_hh: Tensor<1>, h0: Tensor<2>) -> Tensor<3> {
    let [batch, _, gates] = xp.dims();
    let h = w_hh.dims()[0];
    assert_eq!(
        gates,
        3 * h,
        "fused_gru: xp has {gates} columns for hidden size {h}"
    );
    assert_eq!(w_hh.dims(), [h, 3 * h], "fused_gru: w_hh shape");
    assert_eq!(b_hh.dims(), [3 * h], "fused_gru: b_hh shape");
    assert_eq!(h0.dims(), [batch, h], "fused_gru: h0 shape");
    Tensor::from_dispatch(<Dispatch as RecurrentOps>::fused_gru(
        xp.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        h0.into_dispatch(),
    ))
}

/// The unfused composition of [`lstm_sequence`] in Burn tensor operations: the reference the
/// kernels are tested against, and the path on devices without the kernels.
pub fn lstm_sequence_reference(
    xp: Tensor<3>,
    w_hh: Tensor<2>,
    h0: Tensor<2>,
    c0: Tensor<2>,
) -> Tensor<3> {
    use burn::tensor::activation::{sigmoid, tanh};
    let [batch, steps, _] = xp.dims();
    let h = w_hh.dims()[0];
    let (mut hidden, mut cell) = (h0, c0);
    let mut outputs = Vec::with_capacity(steps);
    for t in 0..steps {
        let z = xp.clone().slice(s![.., t..t + 1]).reshape([batch, 4 * h])
            + hidden.clone().matmul(w_hh.clone());
        let i = sigmoid(z.clone().slice(s![.., 0..h]));
        let f = sigmoid(z.clone().slice(s![.., h..2 * h]));
        let o = sigmoid(z.clone().slice(s![.., 2 * h..3 * h]));
        let g = tanh(z.slice(s![.., 3 * h..4 * h]));
        cell = f * cell + i * g;
        hidden = o * tanh(cell.clone());
        outputs.push(Tensor::cat(vec![hidden.clone(), cell.clone()], 1));
    }
    Tensor::stack(outputs, 1)
}

/// The unfused composition of [`gru_sequence`] in Burn tensor operations.
pub fn gru_sequence_reference(
    xp: Tensor<3>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    h0: Tensor<2>,
) -> Tensor<3> {
    use burn::tensor::activation::{sigmoid, tanh};
    let [batch, steps, _] = xp.dims();
    let h = w_hh.dims()[0];
    let mut hidden = h0;
    let b_hh = b_hh.unsqueeze_dim::<2>(0);
    let mut outputs = Vec::with_capacity(steps);
    for t in 0..steps {
        let x = xp.clone().slice(s![.., t..t + 1]).reshape([batch, 3 * h]);
        let hp = hidden.clone().matmul(w_hh.clone()) + b_hh.clone();
        let r = sigmoid(x.clone().slice(s![.., 0..h]) + hp.clone().slice(s![.., 0..h]));
        let z = sigmoid(x.clone().slice(s![.., h..2 * h]) + hp.clone().slice(s![.., h..2 * h]));
        let n = tanh(x.slice(s![.., 2 * h..3 * h]) + r * hp.slice(s![.., 2 * h..3 * h]));
        hidden = (z.clone().neg() + 1.0) * n + z * hidden;
        outputs.push(hidden.clone());
    }
    Tensor::stack(outputs, 1)
}

// ---------------------------------------------------------------------------------------------
// LSTM kernels

/// Forward pass: returns the output `[batch, steps, 2H]` and the gate activations
/// `[batch, steps, 4H]` (written over `xp`'s buffer).
fn lstm_forward<B: Backend>(
    xp: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
    c0: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let device = xp.device();
    let [batch, steps, g4] = xp.shape().dims();
    let h = g4 / 4;
    let mut gates = host::read::<B>(xp);
    let (w_hh, h0, c0) = (
        host::view::<B>(w_hh),
        host::view::<B>(h0),
        host::view::<B>(c0),
    );
    let mut out = host::zeros([batch, steps, 2 * h]);
    {
        let gp = Shared(host::values_mut(&mut gates).as_mut_ptr());
        let op = Shared(host::values_mut(&mut out).as_mut_ptr());
        let panels = Panels::new(w_hh.values(), h, g4);
        let (w, h0v, c0v) = (&panels, h0.values(), c0.values());
        let run = |rows: std::ops::Range<usize>| {
            // SAFETY: each chunk reads and writes only the rows `rows` of the two buffers, which
            // hold `batch · steps` rows of `4H` and `2H` values.
            unsafe { lstm_forward_chunk(rows, gp, op, w, h0v, c0v, steps, h) }
        };
        run_chunks(batch, run);
    }
    (
        host::write::<B>(out, &device),
        host::write::<B>(gates, &device),
    )
}

/// One batch chunk of the forward pass, every step.
///
/// # Safety
/// `gates` and `out` point at `[batch, steps, 4H]` and `[batch, steps, 2H]` buffers, and no
/// other thread touches their rows `rows`.
#[allow(clippy::too_many_arguments)]
unsafe fn lstm_forward_chunk(
    rows: std::ops::Range<usize>,
    gates: Shared,
    out: Shared,
    w_hh: &Panels,
    h0: &[f32],
    c0: &[f32],
    steps: usize,
    h: usize,
) {
    let (g4, o2) = (4 * h, 2 * h);
    let (b0, bc) = (rows.start, rows.len());
    for t in 0..steps {
        // SAFETY: (the whole block) offsets stay inside this chunk's rows of the buffers.
        unsafe {
            let z = gates.0.add((b0 * steps + t) * g4);
            let hprev: (*const f32, usize) = if t == 0 {
                (h0.as_ptr().add(b0 * h), h)
            } else {
                (out.0.add((b0 * steps + t - 1) * o2), steps * o2)
            };
            step_matmul(bc, z, steps * g4, true, hprev, w_hh);
            for b in rows.clone() {
                let row = b * steps + t;
                let z = std::slice::from_raw_parts_mut(gates.0.add(row * g4), g4);
                let c_prev = if t == 0 {
                    &c0[b * h..(b + 1) * h]
                } else {
                    std::slice::from_raw_parts(out.0.add((row - 1) * o2 + h), h)
                };
                let hc = std::slice::from_raw_parts_mut(out.0.add(row * o2), o2);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    cells512::lstm(z, c_prev, hc);
                    continue;
                }
                lstm_cell(z, c_prev, hc);
            }
        }
    }
}

multiversion! {
    /// One row of one step: the gate pre-activations `z` (`i, f, o, g`) become the activations,
    /// and `hc` receives `[h, c]`.
    fn lstm_cell(z: &mut [f32], c_prev: &[f32], hc: &mut [f32]) {
        let h = c_prev.len();
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zo, zg) = rest.split_at_mut(h);
        let (hh, cc) = hc.split_at_mut(h);
        let (zg, hh, cc) = (&mut zg[..h], &mut hh[..h], &mut cc[..h]);
        for j in 0..h {
            let i = sigmoid(zi[j]);
            let f = sigmoid(zf[j]);
            let o = sigmoid(zo[j]);
            let g = tanh(zg[j]);
            let c = f * c_prev[j] + i * g;
            cc[j] = c;
            hh[j] = o * tanh(c);
            zi[j] = i;
            zf[j] = f;
            zo[j] = o;
            zg[j] = g;
        }
    }
}

/// The forward cells in AVX-512 intrinsics (the activations of [`host::act512`]), sixteen
/// hidden units at a time, the last group masked.
#[cfg(target_arch = "x86_64")]
mod cells512 {
    use std::arch::x86_64::*;

    use crate::host::act512::{sigmoid, tail, tanh};

    /// As [`super::lstm_cell`].
    #[target_feature(enable = "avx512f")]
    pub(super) fn lstm(z: &mut [f32], c_prev: &[f32], hc: &mut [f32]) {
        let h = c_prev.len();
        assert!(z.len() >= 4 * h && hc.len() >= 2 * h);
        let (zp, cp, hcp) = (z.as_mut_ptr(), c_prev.as_ptr(), hc.as_mut_ptr());
        let mut j = 0;
        while j < h {
            let m = tail(j, h);
            // SAFETY: lanes `j..min(j + 16, h)` of each block are inside the slices (checked
            // above); masked lanes are neither read nor written.
            unsafe {
                let i = sigmoid(_mm512_maskz_loadu_ps(m, zp.add(j)));
                let f = sigmoid(_mm512_maskz_loadu_ps(m, zp.add(h + j)));
                let o = sigmoid(_mm512_maskz_loadu_ps(m, zp.add(2 * h + j)));
                let g = tanh(_mm512_maskz_loadu_ps(m, zp.add(3 * h + j)));
                let c = _mm512_add_ps(
                    _mm512_mul_ps(f, _mm512_maskz_loadu_ps(m, cp.add(j))),
                    _mm512_mul_ps(i, g),
                );
                _mm512_mask_storeu_ps(hcp.add(h + j), m, c);
                _mm512_mask_storeu_ps(hcp.add(j), m, _mm512_mul_ps(o, tanh(c)));
                _mm512_mask_storeu_ps(zp.add(j), m, i);
                _mm512_mask_storeu_ps(zp.add(h + j), m, f);
                _mm512_mask_storeu_ps(zp.add(2 * h + j), m, o);
                _mm512_mask_storeu_ps(zp.add(3 * h + j), m, g);
            }
            j += 16;
        }
    }

    /// As [`super::gru_cell`].
    #[target_feature(enable = "avx512f")]
    pub(super) fn gru(x: &[f32], hp: &[f32], h_prev: &[f32], h_out: &mut [f32], saved: &mut [f32]) {
        let h = h_prev.len();
        assert!(x.len() >= 3 * h && hp.len() >= 3 * h && h_out.len() >= h && saved.len() >= 4 * h);
        let (xp, hpp, pp, op, sp) = (
            x.as_ptr(),
            hp.as_ptr(),
            h_prev.as_ptr(),
            h_out.as_mut_ptr(),
            saved.as_mut_ptr(),
        );
        let mut j = 0;
        while j < h {
            let m = tail(j, h);
            // SAFETY: as in `lstm`.
            unsafe {
                let load = |p: *const f32| _mm512_maskz_loadu_ps(m, p);
                let hn = load(hpp.add(2 * h + j));
                let r = sigmoid(_mm512_add_ps(load(xp.add(j)), load(hpp.add(j))));
                let z = sigmoid(_mm512_add_ps(load(xp.add(h + j)), load(hpp.add(h + j))));
                let n = tanh(_mm512_add_ps(load(xp.add(2 * h + j)), _mm512_mul_ps(r, hn)));
                let one_minus_z = _mm512_sub_ps(_mm512_set1_ps(1.0), z);
                let out = _mm512_add_ps(
                    _mm512_mul_ps(one_minus_z, n),
                    _mm512_mul_ps(z, load(pp.add(j))),
                );
                _mm512_mask_storeu_ps(op.add(j), m, out);
                _mm512_mask_storeu_ps(sp.add(j), m, r);
                _mm512_mask_storeu_ps(sp.add(h + j), m, z);
                _mm512_mask_storeu_ps(sp.add(2 * h + j), m, n);
                _mm512_mask_storeu_ps(sp.add(3 * h + j), m, hn);
            }
            j += 16;
        }
    }
}

/// Backward pass: the gradients of `xp`, `w_hh`, `h0` and `c0`.
fn lstm_backward<B: Backend>(
    grad: FloatTensor<B>,
    gates: FloatTensor<B>,
    out: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
    c0: FloatTensor<B>,
) -> [FloatTensor<B>; 4] {
    let device = gates.device();
    let [batch, steps, g4] = gates.shape().dims();
    let h = g4 / 4;
    let mut dz = host::read::<B>(gates);
    let (grad, out) = (host::view::<B>(grad), host::view::<B>(out));
    let (w_hh, h0, c0) = (
        host::view::<B>(w_hh),
        host::view::<B>(h0),
        host::view::<B>(c0),
    );
    let mut dh0 = host::zeros([batch, h]);
    let mut dc0 = host::zeros([batch, h]);
    {
        let zp = Shared(host::values_mut(&mut dz).as_mut_ptr());
        let (dh0p, dc0p) = (
            Shared(host::values_mut(&mut dh0).as_mut_ptr()),
            Shared(host::values_mut(&mut dc0).as_mut_ptr()),
        );
        let w_t = Panels::new(&transpose(w_hh.values(), h, g4), g4, h);
        let (g, o, w, c0v) = (grad.values(), out.values(), &w_t, c0.values());
        let run = |rows: std::ops::Range<usize>| {
            // SAFETY: each chunk touches only its rows of `dz`, `dh0` and `dc0`.
            unsafe { lstm_backward_chunk(rows, zp, dh0p, dc0p, g, o, w, c0v, steps, h) }
        };
        run_chunks(batch, run);
    }
    let hprev = previous_states(out.values(), h0.values(), batch, steps, h, 2 * h);
    let mut dw = host::zeros([h, g4]);
    // SAFETY: `hprev` is `[batch · steps, H]`, `dz` `[batch · steps, 4H]`, `dw` `[H, 4H]`.
    unsafe {
        par_matmul(
            (h, g4, batch * steps),
            host::values_mut(&mut dw).as_mut_ptr(),
            false,
            (hprev.as_ptr(), 1, h),
            (host::values(&dz).as_ptr(), g4),
        );
    }
    [
        host::write::<B>(dz, &device),
        host::write::<B>(dw, &device),
        host::write::<B>(dh0, &device),
        host::write::<B>(dc0, &device),
    ]
}

/// One batch chunk of the backward pass, every step in reverse.
///
/// # Safety
/// As [`lstm_forward_chunk`], for `dz` (`[batch, steps, 4H]`, the gate activations on entry),
/// `dh0` and `dc0` (`[batch, H]`).
#[allow(clippy::too_many_arguments)]
unsafe fn lstm_backward_chunk(
    rows: std::ops::Range<usize>,
    dz: Shared,
    dh0: Shared,
    dc0: Shared,
    grad: &[f32],
    out: &[f32],
    w_hh_t: &Panels,
    c0: &[f32],
    steps: usize,
    h: usize,
) {
    let (g4, o2) = (4 * h, 2 * h);
    let (b0, bc) = (rows.start, rows.len());
    let mut dh_next = vec![0.0f32; bc * h];
    let mut dc_next = vec![0.0f32; bc * h];
    for t in (0..steps).rev() {
        for (k, b) in rows.clone().enumerate() {
            let row = b * steps + t;
            // SAFETY: row `row` of `dz` belongs to this chunk.
            let z = unsafe { std::slice::from_raw_parts_mut(dz.0.add(row * g4), g4) };
            let c_prev = if t == 0 {
                &c0[b * h..(b + 1) * h]
            } else {
                &out[(row - 1) * o2 + h..row * o2]
            };
            lstm_cell_backward(
                z,
                &grad[row * o2..(row + 1) * o2],
                &out[row * o2 + h..(row + 1) * o2],
                c_prev,
                &dh_next[k * h..(k + 1) * h],
                &mut dc_next[k * h..(k + 1) * h],
            );
        }
        // dh_next = dz_t · W_hhᵀ
        // SAFETY: the chunk's rows of step `t` in `dz`; `w_hh_t` is `[4H, H]`.
        unsafe {
            step_matmul(
                bc,
                dh_next.as_mut_ptr(),
                h,
                false,
                (dz.0.add((b0 * steps + t) * g4), steps * g4),
                w_hh_t,
            );
        }
    }
    // SAFETY: rows `rows` of `dh0` and `dc0` belong to this chunk.
    unsafe {
        std::ptr::copy_nonoverlapping(dh_next.as_ptr(), dh0.0.add(b0 * h), bc * h);
        std::ptr::copy_nonoverlapping(dc_next.as_ptr(), dc0.0.add(b0 * h), bc * h);
    }
}

multiversion! {
    /// One row of one step backwards: `z` holds the activations `i, f, o, g` on entry and the
    /// gradients of their pre-activations on return; `dc_next` carries the cell gradient to the
    /// previous step.
    fn lstm_cell_backward(
        z: &mut [f32],
        grad: &[f32],
        c: &[f32],
        c_prev: &[f32],
        dh_next: &[f32],
        dc_next: &mut [f32],
    ) {
        let h = c.len();
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zo, zg) = rest.split_at_mut(h);
        let (gh, gc) = grad.split_at(h);
        let (zg, gc, c_prev, dh_next, dc_next) =
            (&mut zg[..h], &gc[..h], &c_prev[..h], &dh_next[..h], &mut dc_next[..h]);
        for j in 0..h {
            let (i, f, o, g) = (zi[j], zf[j], zo[j], zg[j]);
            let dh = gh[j] + dh_next[j];
            let tc = tanh(c[j]);
            let dc = gc[j] + dc_next[j] + dh * o * (1.0 - tc * tc);
            zi[j] = dc * g * i * (1.0 - i);
            zf[j] = dc * c_prev[j] * f * (1.0 - f);
            zo[j] = dh * tc * o * (1.0 - o);
            zg[j] = dc * i * (1.0 - g * g);
            dc_next[j] = dc * f;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GRU kernels

/// Forward pass: returns the output `[batch, steps, H]` and the saved values
/// `[batch, steps, 4H]` (`r, z, n` and the hidden side of the candidate, `h·W_hn + b_hn`).
fn gru_forward<B: Backend>(
    xp: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    b_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let device = xp.device();
    let [batch, steps, g3] = xp.shape().dims();
    let h = g3 / 3;
    let xp = host::view::<B>(xp);
    let (w_hh, b_hh, h0) = (
        host::view::<B>(w_hh),
        host::view::<B>(b_hh),
        host::view::<B>(h0),
    );
    let mut out = host::zeros([batch, steps, h]);
    let mut saved = host::zeros([batch, steps, 4 * h]);
    {
        let op = Shared(host::values_mut(&mut out).as_mut_ptr());
        let sp = Shared(host::values_mut(&mut saved).as_mut_ptr());
        let panels = Panels::new(w_hh.values(), h, g3);
        let (x, w, bias, h0v) = (xp.values(), &panels, b_hh.values(), h0.values());
        let run = |rows: std::ops::Range<usize>| {
            // SAFETY: each chunk writes only its rows of `out` and `saved`.
            unsafe { gru_forward_chunk(rows, op, sp, x, w, bias, h0v, steps, h) }
        };
        run_chunks(batch, run);
    }
    (
        host::write::<B>(out, &device),
        host::write::<B>(saved, &device),
    )
}

/// One batch chunk of the GRU forward pass.
///
/// # Safety
/// `out` and `saved` point at `[batch, steps, H]` and `[batch, steps, 4H]` buffers whose rows
/// `rows` no other thread touches.
#[allow(clippy::too_many_arguments)]
unsafe fn gru_forward_chunk(
    rows: std::ops::Range<usize>,
    out: Shared,
    saved: Shared,
    xp: &[f32],
    w_hh: &Panels,
    b_hh: &[f32],
    h0: &[f32],
    steps: usize,
    h: usize,
) {
    let (g3, g4) = (3 * h, 4 * h);
    let (b0, bc) = (rows.start, rows.len());
    let mut hp = vec![0.0f32; bc * g3];
    for t in 0..steps {
        for k in 0..bc {
            hp[k * g3..(k + 1) * g3].copy_from_slice(b_hh);
        }
        // SAFETY: (the whole block) offsets stay inside this chunk's rows.
        unsafe {
            let hprev: (*const f32, usize) = if t == 0 {
                (h0.as_ptr().add(b0 * h), h)
            } else {
                (out.0.add((b0 * steps + t - 1) * h), steps * h)
            };
            step_matmul(bc, hp.as_mut_ptr(), g3, true, hprev, w_hh);
            for (k, b) in rows.clone().enumerate() {
                let row = b * steps + t;
                let h_prev = if t == 0 {
                    &h0[b * h..(b + 1) * h]
                } else {
                    std::slice::from_raw_parts(out.0.add((row - 1) * h), h)
                };
                let (x, hp) = (&xp[row * g3..(row + 1) * g3], &hp[k * g3..(k + 1) * g3]);
                let h_out = std::slice::from_raw_parts_mut(out.0.add(row * h), h);
                let s = std::slice::from_raw_parts_mut(saved.0.add(row * g4), g4);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512f") {
                    cells512::gru(x, hp, h_prev, h_out, s);
                    continue;
                }
                gru_cell(x, hp, h_prev, h_out, s);
            }
        }
    }
}

multiversion! {
    /// One row of one GRU step.
    fn gru_cell(x: &[f32], hp: &[f32], h_prev: &[f32], h_out: &mut [f32], saved: &mut [f32]) {
        let h = h_prev.len();
        let (xr, rest) = x.split_at(h);
        let (xz, xn) = rest.split_at(h);
        let (hr, rest) = hp.split_at(h);
        let (hz, hn) = rest.split_at(h);
        let (sr, rest) = saved.split_at_mut(h);
        let (sz, rest) = rest.split_at_mut(h);
        let (sn, shn) = rest.split_at_mut(h);
        let (xn, hn, h_out, shn) = (&xn[..h], &hn[..h], &mut h_out[..h], &mut shn[..h]);
        for j in 0..h {
            let r = sigmoid(xr[j] + hr[j]);
            let z = sigmoid(xz[j] + hz[j]);
            let n = tanh(xn[j] + r * hn[j]);
            h_out[j] = (1.0 - z) * n + z * h_prev[j];
            sr[j] = r;
            sz[j] = z;
            sn[j] = n;
            shn[j] = hn[j];
        }
    }
}

/// GRU backward pass: the gradients of `xp`, `w_hh`, `b_hh` and `h0`.
fn gru_backward<B: Backend>(
    grad: FloatTensor<B>,
    saved: FloatTensor<B>,
    out: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
) -> [FloatTensor<B>; 4] {
    let device = saved.device();
    let [batch, steps, g4] = saved.shape().dims();
    let h = g4 / 4;
    let g3 = 3 * h;
    let mut saved = host::read::<B>(saved);
    let (grad, out) = (host::view::<B>(grad), host::view::<B>(out));
    let (w_hh, h0) = (host::view::<B>(w_hh), host::view::<B>(h0));
    let mut dxp = host::zeros([batch, steps, g3]);
    let mut dh0 = host::zeros([batch, h]);
    {
        let sp = Shared(host::values_mut(&mut saved).as_mut_ptr());
        let dp = Shared(host::values_mut(&mut dxp).as_mut_ptr());
        let dh0p = Shared(host::values_mut(&mut dh0).as_mut_ptr());
        let w_t = Panels::new(&transpose(w_hh.values(), h, g3), g3, h);
        let (g, o, w, h0v) = (grad.values(), out.values(), &w_t, h0.values());
        let run = |rows: std::ops::Range<usize>| {
            // SAFETY: each chunk touches only its rows of `saved`, `dxp` and `dh0`.
            unsafe { gru_backward_chunk(rows, sp, dp, dh0p, g, o, w, h0v, steps, h) }
        };
        run_chunks(batch, run);
    }
    // `saved` now holds the gradient of the hidden projection `h·W_hh + b_hh` in its first 3H
    // columns.
    let hprev = previous_states(out.values(), h0.values(), batch, steps, h, h);
    let dhp = host::values(&saved);
    let mut dw = host::zeros([h, g3]);
    // SAFETY: `hprev` is `[batch · steps, H]`, `dhp` `[batch · steps, 4H]` (first 3H columns),
    // `dw` `[H, 3H]`.
    unsafe {
        par_matmul(
            (h, g3, batch * steps),
            host::values_mut(&mut dw).as_mut_ptr(),
            false,
            (hprev.as_ptr(), 1, h),
            (dhp.as_ptr(), g4),
        );
    }
    let mut db = vec![0.0f32; g3];
    column_sums(&mut db, dhp, g4);
    [
        host::write::<B>(dxp, &device),
        host::write::<B>(dw, &device),
        host::write::<B>(TensorData::new(db, [g3]), &device),
        host::write::<B>(dh0, &device),
    ]
}

/// One batch chunk of the GRU backward pass, every step in reverse.
///
/// # Safety
/// As [`gru_forward_chunk`], for `saved` (`[batch, steps, 4H]`), `dxp` (`[batch, steps, 3H]`)
/// and `dh0` (`[batch, H]`).
#[allow(clippy::too_many_arguments)]
unsafe fn gru_backward_chunk(
    rows: std::ops::Range<usize>,
    saved: Shared,
    dxp: Shared,
    dh0: Shared,
    grad: &[f32],
    out: &[f32],
    w_hh_t: &Panels,
    h0: &[f32],
    steps: usize,
    h: usize,
) {
    let (g3, g4) = (3 * h, 4 * h);
    let (b0, bc) = (rows.start, rows.len());
    let mut dh_next = vec![0.0f32; bc * h];
    for t in (0..steps).rev() {
        for (k, b) in rows.clone().enumerate() {
            let row = b * steps + t;
            let h_prev = if t == 0 {
                &h0[b * h..(b + 1) * h]
            } else {
                &out[(row - 1) * h..row * h]
            };
            // SAFETY: row `row` of `saved` and `dxp` belongs to this chunk.
            let (s, dx) = unsafe {
                (
                    std::slice::from_raw_parts_mut(saved.0.add(row * g4), g4),
                    std::slice::from_raw_parts_mut(dxp.0.add(row * g3), g3),
                )
            };
            gru_cell_backward(
                s,
                dx,
                &grad[row * h..(row + 1) * h],
                h_prev,
                &mut dh_next[k * h..(k + 1) * h],
            );
        }
        // dh_next += dhp_t · W_hhᵀ
        // SAFETY: the chunk's rows of step `t` in `saved` (first 3H columns); `w_hh_t` is
        // `[3H, H]`.
        unsafe {
            step_matmul(
                bc,
                dh_next.as_mut_ptr(),
                h,
                true,
                (saved.0.add((b0 * steps + t) * g4), steps * g4),
                w_hh_t,
            );
        }
    }
    // SAFETY: rows `rows` of `dh0` belong to this chunk.
    unsafe { std::ptr::copy_nonoverlapping(dh_next.as_ptr(), dh0.0.add(b0 * h), bc * h) };
}

multiversion! {
    /// One row of one GRU step backwards: `saved` (`r, z, n, h·W_hn + b_hn`) becomes the
    /// gradient of the hidden projection in its first 3H values, `dx` receives the gradient of
    /// the input projection, and `dh` (the gradient reaching this step's state from later
    /// steps) becomes the part of the previous state's gradient that bypasses `W_hh`.
    fn gru_cell_backward(saved: &mut [f32], dx: &mut [f32], grad: &[f32], h_prev: &[f32], dh: &mut [f32]) {
        let h = h_prev.len();
        let (sr, rest) = saved.split_at_mut(h);
        let (sz, rest) = rest.split_at_mut(h);
        let (sn, shn) = rest.split_at_mut(h);
        let (dxr, rest) = dx.split_at_mut(h);
        let (dxz, dxn) = rest.split_at_mut(h);
        let (sn, shn, dxn, grad, dh) =
            (&mut sn[..h], &shn[..h], &mut dxn[..h], &grad[..h], &mut dh[..h]);
        for j in 0..h {
            let (r, z, n, hn) = (sr[j], sz[j], sn[j], shn[j]);
            let d = grad[j] + dh[j];
            let dn = d * (1.0 - z) * (1.0 - n * n);
            let dr = dn * hn * r * (1.0 - r);
            let dz = d * (h_prev[j] - n) * z * (1.0 - z);
            dxr[j] = dr;
            dxz[j] = dz;
            dxn[j] = dn;
            sr[j] = dr;
            sz[j] = dz;
            sn[j] = dn * r;
            dh[j] = d * z;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// Runs `run` over the batch chunks, in parallel when there is more than one.
fn run_chunks(batch: usize, run: impl Fn(std::ops::Range<usize>) + Send + Sync) {
    let chunks = chunks(batch);
    if chunks.len() == 1 {
        run(chunks[0].clone());
    } else {
        chunks.into_par_iter().for_each(run);
    }
}

/// `[batch · steps, H]`: row `(b, t)` is the state before step `t` (`h0` for `t = 0`), taken from
/// the first `H` of each `width`-wide row of `out`.
fn previous_states(
    out: &[f32],
    h0: &[f32],
    batch: usize,
    steps: usize,
    h: usize,
    width: usize,
) -> Vec<f32> {
    let mut prev = vec![0.0f32; batch * steps * h];
    for b in 0..batch {
        for t in 0..steps {
            let row = b * steps + t;
            let src = if t == 0 {
                &h0[b * h..(b + 1) * h]
            } else {
                &out[(row - 1) * width..(row - 1) * width + h]
            };
            prev[row * h..(row + 1) * h].copy_from_slice(src);
        }
    }
    prev
}
