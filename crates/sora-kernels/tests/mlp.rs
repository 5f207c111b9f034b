//! A stack of linear layers scored in one pass (`sora_kernels::mlp::forward_layers`) against
//! the same layers as Burn operations one by one (a product, a broadcast bias add, the
//! activation): on every compiled CPU backend without autodiff (the one-pass path) and with it
//! (the layer-by-layer path), for every activation, over odd shapes (one and two rows, which
//! sweep the weights, row counts around the tile of 64, widths that are not a multiple of the
//! vector width or wider than one 64-column panel, an output of one unit, a deep stack).
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.

mod common;

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use common::{flat, max_diff};
use sora_kernels::linear::{Act, linear_act_reference};
use sora_kernels::mlp::forward_layers;

const ACTS: [Act; 7] = [
    Act::Identity,
    Act::Relu,
    Act::LeakyRelu(0.01),
    Act::Tanh,
    Act::Sigmoid,
    Act::Gelu,
    Act::Silu,
];

/// Float32 tolerance, relative to the larger magnitude (at least 1), as for the fused linear
/// layer: the products accumulate in another order than Burn's.
const TOL: f32 = 1e-5;

/// Layer widths, input first.
const STACKS: [&[usize]; 5] = [
    &[64, 128, 64, 10],
    &[7, 33, 65, 1],
    &[1, 1],
    &[130, 17, 200, 3],
    &[12, 16, 16, 16, 16, 16, 5],
];

const ROWS: [usize; 7] = [1, 2, 3, 63, 64, 65, 1030];

fn stack(widths: &[usize], device: &Device) -> Vec<Linear> {
    widths
        .windows(2)
        .map(|w| LinearConfig::new(w[0], w[1]).init(device))
        .collect()
}

fn reference(x: Tensor<2>, layers: &[(&Linear, Act)]) -> Tensor<2> {
    layers.iter().fold(x, |x, (layer, act)| {
        let b = layer.bias.as_ref().expect("a bias").val();
        linear_act_reference(x, layer.weight.val(), b, *act)
    })
}

#[test]
fn one_pass_matches_the_layers_one_by_one() {
    for device in [
        Device::flex(),
        Device::ndarray(),
        Device::flex().autodiff(),
        Device::ndarray().autodiff(),
    ] {
        for (s, widths) in STACKS.iter().enumerate() {
            device.seed(10 + s as u64);
            let layers = stack(widths, &device);
            for (r, &rows) in ROWS.iter().enumerate() {
                let x =
                    Tensor::<2>::random([rows, widths[0]], Distribution::Normal(0.0, 1.0), &device);
                // Every activation somewhere in the stack; the last layer of each stack
                // without one, as an MLP head's output.
                let acts: Vec<(&Linear, Act)> = layers
                    .iter()
                    .enumerate()
                    .map(|(l, layer)| {
                        let act = if l + 1 == layers.len() {
                            Act::Identity
                        } else {
                            ACTS[(l + r + s) % ACTS.len()]
                        };
                        (layer, act)
                    })
                    .collect();
                let fused = forward_layers(x.clone(), &acts);
                assert_eq!(fused.dims(), [rows, *widths.last().unwrap()]);
                let diff = max_diff(flat(fused), flat(reference(x, &acts)));
                assert!(
                    diff <= TOL,
                    "{device:?}, widths {widths:?}, {rows} rows: {diff:e}"
                );
            }
        }
    }
}

#[test]
fn the_rows_of_a_batch_score_as_they_do_alone() {
    // Tiles and threads split a batch by rows only: each row's output is the same bits whether
    // it is scored alone, in a small batch or in a batch large enough for several threads.
    let device = Device::flex();
    device.seed(3);
    let layers = stack(&[20, 48, 24, 4], &device);
    let acts: Vec<(&Linear, Act)> = layers
        .iter()
        .zip([Act::Relu, Act::Tanh, Act::Identity])
        .collect();
    let x = Tensor::<2>::random([2000, 20], Distribution::Normal(0.0, 1.0), &device);
    let all = forward_layers(x.clone(), &acts).into_data();
    let all = all.as_slice::<f32>().unwrap();
    for (start, len) in [(0, 3), (64, 64), (1000, 700), (1999, 1)] {
        let part = forward_layers(x.clone().slice([start..start + len, 0..20]), &acts);
        let part = part.into_data();
        // One or two rows are swept row by row instead of through the tiles' kernel, which
        // accumulates in the same order but may round a fused multiply-add differently.
        let tol = if len <= 2 { 1e-5 } else { 0.0 };
        for (i, v) in part.as_slice::<f32>().unwrap().iter().enumerate() {
            let w = all[start * 4 + i];
            assert!(
                (v - w).abs() <= tol * w.abs().max(1.0),
                "row {start}+{i}: {v} vs {w}"
            );
        }
    }
}

#[test]
fn a_layer_without_a_bias_runs_layer_by_layer() {
    let device = Device::flex();
    device.seed(4);
    let a = LinearConfig::new(5, 9).with_bias(false).init(&device);
    let b = LinearConfig::new(9, 2).init(&device);
    let x = Tensor::<2>::random([70, 5], Distribution::Normal(0.0, 1.0), &device);
    let fused = forward_layers(x.clone(), &[(&a, Act::Relu), (&b, Act::Identity)]);
    let by_hand = b.forward(a.forward(x).clamp_min(0.0));
    assert!(max_diff(flat(fused), flat(by_hand)) <= TOL);
}
