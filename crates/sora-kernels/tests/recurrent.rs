//! The fused recurrent kernels against the unfused composition of Burn operations: outputs and
//! the gradients of every input, on every compiled CPU backend, over odd shapes (one sample, one
//! step, hidden sizes that are not a multiple of the vector width, batches split into several
//! parallel chunks).
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.

mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use common::{devices, flat, inputs, max_diff};
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
