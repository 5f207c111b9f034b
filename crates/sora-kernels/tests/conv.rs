//! The fused convolution against Burn's `conv2d` (after explicit zero padding) and the
//! activation: outputs and the gradients of the input, the weights and the bias, on every
//! compiled CPU backend, over odd geometries (one sample, one channel, strides, dilation,
//! padding that differs on the two sides, 1-D convolutions as one-row 2-D ones, batches large
//! enough to run on several threads).
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.

mod common;

use burn::nn::PaddingConfig1d;
use burn::nn::conv::Conv1dConfig;
use burn::prelude::*;
use common::{devices, flat, inputs, max_diff};
use sora_kernels::conv::{ConvSpec, conv2d_act, conv2d_act_reference, forward_conv1d};
use sora_kernels::linear::Act;

/// Float32 tolerance relative to the larger magnitude (at least 1): sums of up to a few hundred
/// products in another order than Burn's.
const TOL: f32 = 1e-5;

struct Case {
    x: [usize; 4],
    w: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 4],
    dilation: [usize; 2],
}

const fn case(x: [usize; 4], w: [usize; 4], stride: usize, pad: usize) -> Case {
    Case {
        x,
        w,
        stride: [stride, stride],
        padding: [pad; 4],
        dilation: [1, 1],
    }
}

#[test]
fn fused_convolution_matches_burn_in_values_and_gradients() {
    let cases = [
        // One sample, one channel, 3×3 "same".
        case([1, 1, 8, 8], [16, 1, 3, 3], 1, 1),
        // The second block of cnn-digits; 9 samples (three backward tasks, the last short).
        case([9, 16, 4, 4], [32, 16, 3, 3], 1, 1),
        // Stride 2, no padding, a kernel that is not square.
        case([3, 2, 9, 7], [5, 2, 3, 2], 2, 0),
        // Dilation 2 and padding that differs on each side.
        Case {
            x: [2, 3, 6, 10],
            w: [4, 3, 2, 3],
            stride: [1, 2],
            padding: [1, 0, 0, 2],
            dilation: [2, 2],
        },
        // A 1-D convolution as one row: the first block of the audio model, on enough samples
        // to run on several threads.
        Case {
            x: [32, 13, 1, 101],
            w: [32, 13, 1, 5],
            stride: [1, 1],
            padding: [0, 2, 0, 2],
            dilation: [1, 1],
        },
    ];
    let acts = [
        Act::Identity,
        Act::Relu,
        Act::LeakyRelu(0.01),
        Act::Tanh,
        Act::Sigmoid,
        Act::Gelu,
    ];
    for device in devices() {
        for (seed, c) in cases.iter().enumerate() {
            let t = inputs(
                &device,
                &[c.x.to_vec(), c.w.to_vec(), vec![c.w[0]]],
                300 + seed as u64,
            );
            for act in acts {
                let spec = ConvSpec {
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    act,
                };
                let run = |fused: bool| {
                    let x = t[0].clone().reshape(c.x);
                    let fan_in = (c.w[1] * c.w[2] * c.w[3]) as f32;
                    let w = t[1].clone().reshape(c.w) / fan_in.sqrt();
                    let b = t[2].clone().reshape([c.w[0]]);
                    let out = if fused {
                        conv2d_act(x, w, b, spec)
                    } else {
                        conv2d_act_reference(x, w, b, spec)
                    };
                    // A loss that weights every output differently.
                    let n = out.shape().num_elements();
                    let weights = Tensor::<1, Int>::arange(0..n as i64, &out.device())
                        .float()
                        .reshape(out.dims())
                        .cos();
                    let grads = (out.clone() * weights).sum().backward();
                    let g: Vec<Tensor<3>> = t
                        .iter()
                        .map(|x| flat(x.grad(&grads).expect("a gradient")))
                        .collect();
                    (flat(out.inner()), g)
                };
                let (out_f, grads_f) = run(true);
                let (out_r, grads_r) = run(false);
                let what = format!("{device:?} conv x {:?} w {:?} {act:?}", c.x, c.w);
                let d = max_diff(out_f, out_r);
                assert!(d < TOL, "{what}: output differs by {d}");
                for (name, (a, b)) in ["x", "w", "b"].iter().zip(grads_f.into_iter().zip(grads_r)) {
                    let d = max_diff(a, b);
                    assert!(d < TOL, "{what}: gradient of {name} differs by {d}");
                }
            }
        }
    }
}

#[test]
fn a_conv1d_layer_runs_through_the_kernel_as_burn_runs_it() {
    for device in devices() {
        device.seed(5);
        let layer = Conv1dConfig::new(4, 6, 5)
            .with_stride(2)
            .with_padding(PaddingConfig1d::Explicit(2, 1))
            .init(&device);
        let x = Tensor::<3>::random(
            [3, 4, 17],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let fused = forward_conv1d(&layer, x.clone(), Act::Relu);
        let reference = burn::tensor::activation::relu(layer.forward(x.clone()));
        assert_eq!(fused.dims(), [3, 6, 8]);
        assert_eq!(reference.dims(), [3, 6, 8]);
        let d = max_diff(fused.clone(), reference.clone());
        assert!(d < TOL, "{device:?}: output differs by {d}");
        let g_fused = x.grad(&fused.sum().backward()).expect("a gradient");
        let g_ref = x.grad(&reference.sum().backward()).expect("a gradient");
        let d = max_diff(g_fused, g_ref);
        assert!(d < TOL, "{device:?}: input gradient differs by {d}");
    }
}

#[test]
fn without_autodiff_the_values_are_the_same_and_repeat_bit_for_bit() {
    for device in devices() {
        let t = inputs(&device, &[vec![8, 3, 7, 7], vec![5, 3, 3, 3], vec![5]], 9);
        let spec = ConvSpec {
            stride: [1, 1],
            padding: [1; 4],
            dilation: [1, 1],
            act: Act::Relu,
        };
        let run = |plain: bool| {
            let (x, w, b) = (
                t[0].clone().reshape([8, 3, 7, 7]),
                t[1].clone().reshape([5, 3, 3, 3]),
                t[2].clone().reshape([5]),
            );
            if plain {
                conv2d_act(x.inner(), w.inner(), b.inner(), spec).into_data()
            } else {
                conv2d_act(x, w, b, spec).inner().into_data()
            }
        };
        assert_eq!(run(true), run(false), "{device:?}");
        assert_eq!(run(true), run(true), "{device:?}");
    }
}
