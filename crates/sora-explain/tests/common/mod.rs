//! Deterministic test models: every weight is written from a seeded generator (or by hand),
//! so no test depends on Burn's global random state or on the order tests run in.

#![allow(dead_code)]

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sora_core::{Activation, HeadSpec, Identity, IdentitySpec, Model, ModelSpec, Task};

/// The device every test runs on.
pub fn device() -> Device {
    sora_device::test_device()
}

/// Overwrites a linear layer: `weight` row-major `[d_in, d_out]` (Burn's layout), `bias [d_out]`.
pub fn set_linear(linear: &mut Linear, weight: &[f32], bias: &[f32], device: &Device) {
    let [d_in, d_out] = linear.weight.val().dims();
    assert_eq!(weight.len(), d_in * d_out);
    assert_eq!(bias.len(), d_out);
    linear.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight.to_vec(), [d_in, d_out]),
        device,
    ));
    linear.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias.to_vec(), [d_out]),
        device,
    )));
}

/// Reads a linear layer's `(weight [d_in, d_out] row-major, bias)`.
pub fn get_linear(linear: &Linear) -> (Vec<f32>, Vec<f32>) {
    let w = linear.weight.val().try_into_vec_as::<f32>().unwrap();
    let b = linear
        .bias
        .as_ref()
        .unwrap()
        .val()
        .try_into_vec_as::<f32>()
        .unwrap();
    (w, b)
}

/// An MLP classifier `d → hidden → k` with weights `U(−a, a)`, `a = 1.5/√d_in`, and biases
/// `U(−0.5, 0.5)` drawn from `seed`.
pub fn mlp(
    d: usize,
    hidden: &[usize],
    activation: Activation,
    k: usize,
    seed: u64,
) -> Model<Identity> {
    let device = device();
    let mut model = ModelSpec::new(
        IdentitySpec::new(d),
        HeadSpec::new(hidden).with_activation(activation),
        Task::Classification {
            n_classes: k as i64,
        },
    )
    .check()
    .unwrap()
    .init(&device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fill = |linear: &mut Linear| {
        let [d_in, d_out] = linear.weight.val().dims();
        let a = 1.5 / (d_in as f32).sqrt();
        let w: Vec<f32> = (0..d_in * d_out).map(|_| rng.random_range(-a..a)).collect();
        let b: Vec<f32> = (0..d_out).map(|_| rng.random_range(-0.5..0.5)).collect();
        set_linear(linear, &w, &b, &device);
    };
    for block in &mut model.head.hidden {
        fill(&mut block.linear);
    }
    fill(&mut model.head.output);
    model
}

/// A linear classifier `F(x) = x W + b` (no hidden layer) with seeded weights.
pub fn linear(d: usize, k: usize, seed: u64) -> Model<Identity> {
    mlp(d, &[], Activation::Relu, k, seed)
}

/// `n` rows of `d` values `U(lo, hi)` from `seed`.
pub fn random_rows(n: usize, d: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(lo..hi)).collect()
}

/// Largest absolute difference between two equally long slices.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Largest absolute value.
pub fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}
