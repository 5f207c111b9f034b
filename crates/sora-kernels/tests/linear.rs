//! The fused linear layer against the unfused composition of Burn operations (a product, a
//! broadcast bias add, the activation): outputs and the gradients of the input, the weight and
//! the bias, for every activation, on every compiled CPU backend, over odd shapes (one row,
//! widths that are not a multiple of the vector width, outputs large enough to be swept by
//! several threads, the tall products of recurrent input projections).
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.

mod common;

use burn::nn::LinearConfig;
use burn::prelude::*;
use common::{devices, flat, inputs, max_diff};
use sora_kernels::linear::{Act, forward_layer, linear_act, linear_act_reference};

const ACTS: [Act; 7] = [
    Act::Identity,
    Act::Relu,
    Act::LeakyRelu(0.01),
    Act::Tanh,
    Act::Sigmoid,
    Act::Gelu,
    Act::Silu,
];

/// `(rows, d_in, d_out)`: one and two rows (the single-sample path, which sweeps the weights
/// instead of calling the matrix-multiply kernels), odd widths, a product split into parallel
/// tiles, a tall recurrent projection, a long `d_in` with a narrow output.
const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (2, 130, 65),
    (3, 5, 7),
    (300, 64, 512),
    (2048, 64, 384),
    (257, 130, 65),
    (33, 1024, 10),
];

/// Float32 tolerance, relative to the larger magnitude (at least 1): the products accumulate
/// up to 1,024 terms in another order than Burn's, and the activations are evaluated by other
/// formulas (`erfc`'s Chebyshev fit for GELU).
const TOL: f32 = 1e-5;

/// burn-ndarray's GELU gradient is Burn's default `gelu_backward`, the derivative of GELU's tanh
/// approximation rather than of the exact (erf) GELU its forward pass computes: the two differ
/// by up to about 1e-3. The fused derivative is the exact one (checked against a central
/// difference in the crate's unit tests, and against burn-flex here at [`TOL`]).
const TOL_NDARRAY_GELU_GRAD: f32 = 3e-3;

#[test]
fn fused_linear_matches_the_composition_in_values_and_gradients() {
    for device in devices() {
        for (seed, &(n, d_in, d_out)) in SHAPES.iter().enumerate() {
            let shapes = [
                vec![n, d_in],
                vec![d_in, d_out],
                vec![d_out],
                vec![n, d_out],
            ];
            let t = inputs(&device, &shapes, 200 + seed as u64);
            for act in ACTS {
                let run = |fused: bool| {
                    let x = t[0].clone().reshape([n, d_in]);
                    // Scaled as a layer is initialised, so the pre-activations are of order
                    // one and the activations are not all saturated.
                    let w = t[1].clone().reshape([d_in, d_out]) / (d_in as f32).sqrt();
                    let b = t[2].clone().reshape([d_out]);
                    let out = if fused {
                        linear_act(x, w, b, act)
                    } else {
                        linear_act_reference(x, w, b, act)
                    };
                    let weights = t[3].clone().detach().reshape([n, d_out]);
                    let grads = (out.clone() * weights).sum().backward();
                    let g: Vec<Tensor<3>> = t[..3]
                        .iter()
                        .map(|x| flat(x.grad(&grads).expect("a gradient")))
                        .collect();
                    (flat(out.inner()), g)
                };
                let (out_f, grads_f) = run(true);
                let (out_r, grads_r) = run(false);
                let what = format!("{device:?} linear {n}×{d_in}→{d_out} {act:?}");
                let d = max_diff(out_f, out_r);
                assert!(d < TOL, "{what}: output differs by {d}");
                let tol = if act == Act::Gelu && device.clone().inner() == Device::ndarray() {
                    TOL_NDARRAY_GELU_GRAD
                } else {
                    TOL
                };
                for (name, (a, b)) in ["x", "w", "b"].iter().zip(grads_f.into_iter().zip(grads_r)) {
                    let d = max_diff(a, b);
                    assert!(d < tol, "{what}: gradient of {name} differs by {d}");
                }
            }
        }
    }
}

#[test]
fn without_autodiff_and_with_untracked_inputs_the_values_are_the_same() {
    for device in devices() {
        let (n, d_in, d_out) = (70, 33, 129);
        let t = inputs(&device, &[vec![n, d_in], vec![d_in, d_out], vec![d_out]], 7);
        for act in ACTS {
            let tracked = linear_act(
                t[0].clone().reshape([n, d_in]),
                t[1].clone().reshape([d_in, d_out]),
                t[2].clone().reshape([d_out]),
                act,
            );
            // The inference path: the inner backend's kernel, no graph.
            let plain = linear_act(
                t[0].clone().inner().reshape([n, d_in]),
                t[1].clone().inner().reshape([d_in, d_out]),
                t[2].clone().inner().reshape([d_out]),
                act,
            );
            assert_eq!(
                tracked.inner().into_data(),
                plain.into_data(),
                "{device:?} {act:?}"
            );
        }
    }
}

#[test]
fn a_layer_runs_on_any_rank_and_without_a_bias() {
    for device in devices() {
        device.seed(3);
        for bias in [true, false] {
            let layer = LinearConfig::new(6, 4).with_bias(bias).init(&device);
            let x = Tensor::<3>::random(
                [2, 5, 6],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            )
            .require_grad();
            let fused = forward_layer(&layer, x.clone(), Act::Tanh);
            let reference = burn::tensor::activation::tanh(layer.forward(x.clone()));
            assert_eq!(fused.dims(), [2, 5, 4]);
            let d = max_diff(fused.clone(), reference.clone());
            assert!(d < TOL, "{device:?} bias {bias}: output differs by {d}");
            let g_fused = x.grad(&fused.sum().backward()).expect("a gradient");
            let g_ref = x.grad(&reference.sum().backward()).expect("a gradient");
            let d = max_diff(g_fused, g_ref);
            assert!(
                d < TOL,
                "{device:?} bias {bias}: input gradient differs by {d}"
            );
        }
    }
}

#[test]
fn same_inputs_give_the_same_bits() {
    let device = Device::flex().autodiff();
    let (n, d_in, d_out) = (512, 300, 200);
    let t = inputs(
        &device,
        &[vec![n, d_in], vec![d_in, d_out], vec![d_out]],
        11,
    );
    let run = || {
        let w = t[1].clone().reshape([d_in, d_out]);
        let out = linear_act(
            t[0].clone().reshape([n, d_in]),
            w,
            t[2].clone().reshape([d_out]),
            Act::Gelu,
        );
        let grads = out.clone().sum().backward();
        (
            out.inner().into_data(),
            t[1].grad(&grads).expect("a gradient").into_data(),
        )
    };
    assert_eq!(run(), run());
}
