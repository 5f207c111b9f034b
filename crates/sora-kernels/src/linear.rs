//! A fused linear layer, `y = x · W + b`: the bias written into the output before the product
//! accumulates onto it (one pass, where Burn's `Linear` runs the product and then a broadcast
//! add), and a backward pass that forms `dx = dy · Wᵀ`, `dW = xᵀ · dy` and `db = Σ dy` with the
//! parallel kernel of the recurrent operations.

// burn-ndarray is deprecated upstream; Sora keeps it working (the generated dispatch names it).
#![allow(deprecated)]

use burn::Tensor;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use crate::host::{self, par_matmul};

/// The fused linear operation, registered for the CPU backends Sora's kernels support and for
/// autodiff over them.
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait LinearOps: Backend {
    /// `x · w + b`: `x` `[n, d_in]`, `w` `[d_in, d_out]`, `b` `[d_out]` → `[n, d_out]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl LinearOps for burn::backend::Flex {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b)
    }
}

#[cfg(feature = "ndarray")]
impl LinearOps for burn::backend::NdArray {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b)
    }
}

impl<B: Backend, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LinearBackward;

        impl<B: Backend> Backward<B, 3> for LinearBackward {
            /// `x` and `w`.
            type State = [FloatTensor<B>; 2];

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let [x, w] = ops.state;
                let [dx, dw, db] = backward::<B>(
                    grad,
                    x,
                    w,
                    [node_x.is_some(), node_w.is_some(), node_b.is_some()],
                );
                for (node, grad) in [(node_x, dx), (node_w, dw), (node_b, db)] {
                    if let (Some(node), Some(grad)) = (node, grad) {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        match LinearBackward
            .prepare::<C>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), w.primitive().clone());
                let out = forward::<B>(xp.clone(), wp.clone(), b.into_primitive());
                prep.finish([xp, wp], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward::<B>(
                x.into_primitive(),
                w.into_primitive(),
                b.into_primitive(),
            )),
        }
    }
}

/// `x · w + b` as one fused operation where [`crate::supported`] is true, Burn's `matmul` and a
/// broadcast add elsewhere.
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    let [_, d_in] = x.dims();
    let [w_in, d_out] = w.dims();
    assert_eq!(
        d_in, w_in,
        "fused_linear: x has {d_in} columns, w {w_in} rows"
    );
    assert_eq!(b.dims(), [d_out], "fused_linear: bias shape");
    if !crate::supported(&x.device()) {
        return linear_reference(x, w, b);
    }
    Tensor::from_dispatch(<Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// [`linear`] as Burn operations.
pub fn linear_reference(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    x.matmul(w) + b.unsqueeze_dim::<2>(0)
}

fn forward<B: Backend>(x: FloatTensor<B>, w: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    let device = x.device();
    let [n, d_in] = x.shape().dims();
    let d_out = w.shape().dims::<2>()[1];
    let (x, w, b) = (host::read::<B>(x), host::read::<B>(w), host::read::<B>(b));
    let bias = host::values(&b);
    let mut out = Vec::with_capacity(n * d_out);
    for _ in 0..n {
        out.extend_from_slice(bias);
    }
    // SAFETY: `out` is `[n, d_out]`, `x` `[n, d_in]`, `w` `[d_in, d_out]`.
    unsafe {
        par_matmul(
            (n, d_out, d_in),
            out.as_mut_ptr(),
            true,
            (host::values(&x).as_ptr(), d_in, 1),
            (host::values(&w).as_ptr(), d_out),
        );
    }
    host::write::<B>(TensorData::new(out, [n, d_out]), &device)
}

/// The gradients of `x`, `w` and `b` (those `wanted`).
fn backward<B: Backend>(
    grad: FloatTensor<B>,
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    wanted: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let device = grad.device();
    let [n, d_in] = x.shape().dims();
    let d_out = w.shape().dims::<2>()[1];
    let dy = host::read::<B>(grad);
    let dyv = host::values(&dy);
    let dx = wanted[0].then(|| {
        let w = host::read::<B>(w);
        let w_t = transpose(host::values(&w), d_in, d_out);
        let mut dx = vec![0.0f32; n * d_in];
        // SAFETY: `dx` is `[n, d_in]`, `dy` `[n, d_out]`, `w_t` `[d_out, d_in]`.
        unsafe {
            par_matmul(
                (n, d_in, d_out),
                dx.as_mut_ptr(),
                false,
                (dyv.as_ptr(), d_out, 1),
                (w_t.as_ptr(), d_in),
            );
        }
        host::write::<B>(TensorData::new(dx, [n, d_in]), &device)
    });
    let dw = wanted[1].then(|| {
        let x = host::read::<B>(x);
        let mut dw = vec![0.0f32; d_in * d_out];
        // SAFETY: `dw` is `[d_in, d_out]`; `x` read transposed (`[n, d_in]`); `dy` `[n, d_out]`.
        unsafe {
            par_matmul(
                (d_in, d_out, n),
                dw.as_mut_ptr(),
                false,
                (host::values(&x).as_ptr(), 1, d_in),
                (dyv.as_ptr(), d_out),
            );
        }
        host::write::<B>(TensorData::new(dw, [d_in, d_out]), &device)
    });
    let db = wanted[2].then(|| {
        let mut db = vec![0.0f32; d_out];
        for row in dyv.chunks_exact(d_out) {
            for (a, v) in db.iter_mut().zip(row) {
                *a += v;
            }
        }
        host::write::<B>(TensorData::new(db, [d_out]), &device)
    });
    [dx, dw, db]
}

/// The transpose of the row-major `rows × cols` matrix `a`.
pub(crate) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for (i, row) in a.chunks_exact(cols).enumerate() {
        for (j, v) in row.iter().enumerate() {
            t[j * rows + i] = *v;
        }
    }
    t
}
