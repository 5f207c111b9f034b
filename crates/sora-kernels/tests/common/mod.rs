//! Helpers shared by the parity tests of the fused kernels.
#![allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it tested.
#![allow(dead_code)] // each test binary uses its own subset

use burn::prelude::*;
use burn::tensor::Distribution;

/// Largest absolute difference, relative to the larger magnitude of the two (at least 1).
pub fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
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

pub fn flat<const D: usize>(t: Tensor<D>) -> Tensor<3> {
    let n = t.shape().num_elements();
    t.reshape([1, 1, n])
}

pub fn devices() -> Vec<Device> {
    vec![Device::flex().autodiff(), Device::ndarray().autodiff()]
}

/// Random inputs of the given shapes on `device`, tracked.
pub fn inputs(device: &Device, shapes: &[Vec<usize>], seed: u64) -> Vec<Tensor<3>> {
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
