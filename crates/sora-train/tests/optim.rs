//! Sora's in-place optimizers against burn-optim's, step after step: the same parameters and
//! states to the bit, for SGD (plain, weight decay, momentum, Nesterov), Adam (with and without
//! its L2 penalty) and AdamW, on tensors of odd sizes and two ranks.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use sora_train::optim::{FusedAdam, FusedSgd};

/// Runs both optimizers for six steps on the same parameter and gradients; asserts equal bits
/// after every step. `shape` has rank `D`.
fn same_steps<const D: usize, A: Optimizer, B: Optimizer>(
    name: &str,
    ours: &A,
    theirs: &B,
    shape: [usize; D],
) {
    let device = sora_device::test_device();
    device.seed(3);
    let start = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let (mut p_ours, mut p_theirs) = (start.clone(), start.clone());
    let (mut s_ours, mut s_theirs) = (None, None);
    for step in 0..6 {
        let grad = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        // A schedule that changes the learning rate between steps.
        let lr = 0.05 / (1.0 + step as f64);
        let (p, s) = ours.step(lr, p_ours, grad.clone(), s_ours);
        (p_ours, s_ours) = (p, s);
        let (p, s) = theirs.step(lr, p_theirs, grad, s_theirs);
        (p_theirs, s_theirs) = (p, s);
        assert_eq!(
            p_ours.clone().into_data(),
            p_theirs.clone().into_data(),
            "{name} {shape:?}: parameters differ after step {}",
            step + 1
        );
    }
    // The parameters moved (two optimizers that did nothing would also agree).
    let moved = (p_ours - start).abs().max().into_scalar::<f32>();
    assert!(
        moved > 1e-3,
        "{name} {shape:?}: the parameters moved by {moved}"
    );
    assert!(s_ours.is_some() && s_theirs.is_some());
}

fn both_shapes<A: Optimizer, B: Optimizer>(name: &str, ours: A, theirs: B) {
    same_steps(name, &ours, &theirs, [1]);
    same_steps(name, &ours, &theirs, [1037]);
    same_steps(name, &ours, &theirs, [17, 33]);
}

#[test]
fn sgd_matches_burn_optim_to_the_bit() {
    both_shapes(
        "sgd",
        FusedSgd {
            momentum: None,
            weight_decay: None,
        },
        SgdConfig::new().build(),
    );
    both_shapes(
        "sgd + weight decay",
        FusedSgd {
            momentum: None,
            weight_decay: Some(1e-3),
        },
        SgdConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(1e-3)))
            .build(),
    );
    for nesterov in [false, true] {
        both_shapes(
            &format!("sgd momentum (nesterov {nesterov}) + weight decay"),
            FusedSgd {
                momentum: Some((0.9, 0.0, nesterov)),
                weight_decay: Some(5e-4),
            },
            SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new()
                        .with_momentum(0.9)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov),
                ))
                .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
                .build(),
        );
    }
    both_shapes(
        "sgd momentum with dampening",
        FusedSgd {
            momentum: Some((0.8, 0.1, false)),
            weight_decay: None,
        },
        SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new().with_momentum(0.8).with_dampening(0.1),
            ))
            .build(),
    );
}

#[test]
fn adam_and_adamw_match_burn_optim_to_the_bit() {
    let adam = |weight_decay: Option<f32>| FusedAdam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay,
        decoupled_weight_decay: None,
    };
    both_shapes(
        "adam",
        adam(None),
        AdamConfig::new().with_epsilon(1e-8).build(),
    );
    both_shapes(
        "adam + weight decay",
        adam(Some(1e-2)),
        AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
            .build(),
    );
    both_shapes(
        "adamw",
        FusedAdam {
            beta_1: 0.85,
            beta_2: 0.99,
            epsilon: 1e-6,
            weight_decay: None,
            decoupled_weight_decay: Some(0.01),
        },
        AdamWConfig::new()
            .with_beta_1(0.85)
            .with_beta_2(0.99)
            .with_epsilon(1e-6)
            .with_weight_decay(0.01)
            .build(),
    );
}
