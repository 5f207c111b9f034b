//! The fused recurrent kernels against the unfused composition of Burn operations: outputs and
//! the gradients of every input, on every compiled CPU backend, over odd shapes (one sample, one
//! step, hidden sizes that are not a multiple of the vector width, batches split into several
//! parallel chunks).
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.

use burn::prelude::*;
use burn::tensor::Distribution;
use sora_kernels::recurrent::{
    gru_sequence, gru_sequence_reference, lstm_sequence, lstm_sequence_reference,
};

/// `(batch, steps, hidden)`: one sample and one step; a hidden size of 13 (not a multiple of 4,
/// 8 or 16); 17 and 40 rows (two and three parallel chunks); a longer sequence.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 5),
    (1, 9, 3),
    (3, 7, 13),
    (17, 4, 8),
    (40, 3, 16),
    (5, 64, 32),
];

/// Largest absolute difference, relative to the larger magnitude of the two (at least 1).
fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
    let (a, b) = (
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let scale = a.iter().chain(&b).fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<3> {
    let n = t.shape().num_elements();
    t.reshape([1, 1, n])
}

fn devices() -> Vec<Device> {
    vec![Device::flex().autodiff(), Device::ndarray().autodiff()]
}

/// Random inputs of the given shapes on `device`, tracked.
fn inputs(device: &Device, shapes: &[Vec<usize>], seed: u64) -> Vec<Tensor<3>> {
    Device::flex().seed(seed);
    shapes
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            // Drawn on flex and copied, so every backend sees the same numbers.
            let values = Tensor::<1>::random([n], Distribution::Normal(0.0, 0.7), &Device::flex())
                .into_data();
            Tensor::<1>::from_data(values, device)
                .reshape([1, 1, n])
                .require_grad()
        })
        .collect()
}

#[test]
fn fused_lstm_matches_the_composition_in_values_and_gradients() {
    for device in devices() {
        for (seed, &(batch, steps, h)) in SHAPES.iter().enumerate() {
            let shapes = [
                vec![batch, steps, 4 * h],
                vec![h, 4 * h],
                vec![batch, h],
                vec![batch, h],
                vec![batch, steps, 2 * h],
            ];
            let t = inputs(&device, &shapes, seed as u64);
            let run = |fused: bool| {
                let xp = t[0].clone().reshape([batch, steps, 4 * h]);
                // Hidden weights at the scale of an initialised layer (±1/√H): larger ones make the
                // recurrence chaotic, and any two float implementations drift apart.
                let w = t[1].clone().reshape([h, 4 * h]) / (h as f32).sqrt();
                let h0 = t[2].clone().reshape([batch, h]);
                let c0 = t[3].clone().reshape([batch, h]);
                let out = if fused {
                    lstm_sequence(xp, w, h0, c0)
                } else {
                    lstm_sequence_reference(xp, w, h0, c0)
                };
                // A loss that weighs every hidden and cell state differently.
                let weights = t[4].clone().detach().reshape([batch, steps, 2 * h]);
                let grads = (out.clone() * weights).sum().backward();
                let g: Vec<Tensor<3>> = t[..4]
                    .iter()
                    .map(|x| flat(x.grad(&grads).expect("a gradient")))
                    .collect();
                (out.inner(), g)
            };
            let (out_f, grads_f) = run(true);
            let (out_r, grads_r) = run(false);
            let what = format!("{device:?} batch {batch} steps {steps} hidden {h}");
            let d = max_diff(out_f, out_r);
            assert!(d < 2e-6, "{what}: output differs by {d}");
            for (name, (a, b)) in ["xp", "w_hh", "h0", "c0"]
                .iter()
                .zip(grads_f.into_iter().zip(grads_r))
            {
                let d = max_diff(a, b);
                assert!(d < 1e-5, "{what}: gradient of {name} differs by {d}");
            }
        }
    }
}

#[test]
fn fused_gru_matches_the_composition_in_values_and_gradients() {
    for device in devices() {
        for (seed, &(batch, steps, h)) in SHAPES.iter().enumerate() {
            let shapes = [
                vec![batch, steps, 3 * h],
                vec![h, 3 * h],
                vec![3 * h],
                vec![batch, h],
                vec![batch, steps, h],
            ];
            let t = inputs(&device, &shapes, 100 + seed as u64);
            let run = |fused: bool| {
                let xp = t[0].clone().reshape([batch, steps, 3 * h]);
                let w = t[1].clone().reshape([h, 3 * h]) / (h as f32).sqrt();
                let b = t[2].clone().reshape([3 * h]);
                let h0 = t[3].clone().reshape([batch, h]);
                let out = if fused {
                    gru_sequence(xp, w, b, h0)
                } else {
                    gru_sequence_reference(xp, w, b, h0)
                };
                let weights = t[4].clone().detach().reshape([batch, steps, h]);
                let grads = (out.clone() * weights).sum().backward();
                let g: Vec<Tensor<3>> = t[..4]
                    .iter()
                    .map(|x| flat(x.grad(&grads).expect("a gradient")))
                    .collect();
                (out.inner(), g)
            };
            let (out_f, grads_f) = run(true);
            let (out_r, grads_r) = run(false);
            let what = format!("{device:?} batch {batch} steps {steps} hidden {h}");
            let d = max_diff(out_f, out_r);
            assert!(d < 2e-6, "{what}: output differs by {d}");
            for (name, (a, b)) in ["xp", "w_hh", "b_hh", "h0"]
                .iter()
                .zip(grads_f.into_iter().zip(grads_r))
            {
                let d = max_diff(a, b);
                assert!(d < 1e-5, "{what}: gradient of {name} differs by {d}");
            }
        }
    }
}

#[test]
fn without_autodiff_the_kernels_give_the_same_values() {
    let device = Device::flex();
    let (batch, steps, h) = (4, 6, 7);
    let xp = Tensor::<3>::random(
        [batch, steps, 4 * h],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let w = Tensor::<2>::random([h, 4 * h], Distribution::Normal(0.0, 0.3), &device);
    let z = Tensor::<2>::zeros([batch, h], &device);
    let plain = lstm_sequence(xp.clone(), w.clone(), z.clone(), z.clone());
    let tracked_device = device.clone().autodiff();
    let tracked = lstm_sequence(
        Tensor::from_data(xp.into_data(), &tracked_device).require_grad(),
        Tensor::from_data(w.into_data(), &tracked_device).require_grad(),
        Tensor::from_data(z.clone().into_data(), &tracked_device),
        Tensor::from_data(z.into_data(), &tracked_device),
    );
    assert_eq!(plain.into_data(), tracked.inner().into_data());
}

#[test]
fn same_inputs_give_the_same_bits() {
    let device = Device::flex().autodiff();
    let (batch, steps, h) = (33, 10, 24);
    Device::flex().seed(7);
    let xp = Tensor::<3>::random(
        [batch, steps, 3 * h],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .require_grad();
    let w = Tensor::<2>::random([h, 3 * h], Distribution::Normal(0.0, 0.3), &device).require_grad();
    let b = Tensor::<1>::random([3 * h], Distribution::Normal(0.0, 0.3), &device);
    let z = Tensor::<2>::zeros([batch, h], &device);
    let run = || {
        let out = gru_sequence(xp.clone(), w.clone(), b.clone(), z.clone());
        let grads = out.clone().sum().backward();
        (out.inner().into_data(), w.grad(&grads).unwrap().into_data())
    };
    assert_eq!(run(), run());
}

#[test]
fn fused_linear_matches_the_composition_in_values_and_gradients() {
    use sora_kernels::linear::{linear, linear_reference};
    for device in devices() {
        for (seed, &(n, d_in, d_out)) in [
            (1, 1, 1),
            (3, 5, 7),
            (300, 64, 512),
            (2048, 64, 384),
            (257, 130, 65),
        ]
        .iter()
        .enumerate()
        {
            let shapes = [
                vec![n, d_in],
                vec![d_in, d_out],
                vec![d_out],
                vec![n, d_out],
            ];
            let t = inputs(&device, &shapes, 200 + seed as u64);
            let run = |fused: bool| {
                let x = t[0].clone().reshape([n, d_in]);
                let w = t[1].clone().reshape([d_in, d_out]);
                let b = t[2].clone().reshape([d_out]);
                let out = if fused {
                    linear(x, w, b)
                } else {
                    linear_reference(x, w, b)
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
            let what = format!("{device:?} linear {n}×{d_in}→{d_out}");
            let d = max_diff(out_f, out_r);
            assert!(d < 1e-5, "{what}: output differs by {d}");
            for (name, (a, b)) in ["x", "w", "b"].iter().zip(grads_f.into_iter().zip(grads_r)) {
                let d = max_diff(a, b);
                assert!(d < 1e-5, "{what}: gradient of {name} differs by {d}");
            }
        }
    }
}
