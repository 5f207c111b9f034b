//! Reference values from Captum's own test suite, on `BasicModel_MultiLayer`
//! (captum `tests/helpers/basic_models.py`), which a Sora model expresses exactly:
//! `linear0` is the identity, `linear1` has weight `ones(4, 3)` and bias `[-10, 1, 1, 1]`,
//! then ReLU, `linear2` has weight `ones(2, 4)` and bias `[-1, 1]`. Target 0 throughout.
//!
//! The expected numbers are copied from pytorch/captum at commit
//! 05c9bb9176ba2bd2f95789900adab6c5c830d94f; every one is an integer or a ratio exact in
//! f32 up to rounding, so Captum's own tolerance (`assertTensorAlmostEqual`, 1e-4) is kept,
//! scaled by the magnitude for the values near 100.

mod common;

use common::{device, set_linear};
use sora_core::{Activation, HeadSpec, Identity, IdentitySpec, Model, ModelSpec, Task};
use sora_explain::{
    Attribution, Baseline, FeatureAblation, Inputs, Occlusion, ShapleyValues, Target,
};

fn basic_model_multilayer() -> Model<Identity> {
    let device = device();
    let mut model = ModelSpec::new(
        IdentitySpec::new(3),
        HeadSpec::new(&[4]).with_activation(Activation::Relu),
        Task::Classification { n_classes: 2 },
    )
    .check()
    .unwrap()
    .init(&device);
    set_linear(
        &mut model.head.hidden[0].linear,
        &[1.0; 12],
        &[-10.0, 1.0, 1.0, 1.0],
        &device,
    );
    set_linear(&mut model.head.output, &[1.0; 8], &[-1.0, 1.0], &device);
    model
}

fn assert_close(found: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(found.len(), expected.len());
    for (f, e) in found.iter().zip(expected) {
        assert!(
            (f - e).abs() <= tol * e.abs().max(1.0),
            "found {found:?}, expected {expected:?}"
        );
    }
}

fn single() -> Inputs {
    Inputs::new(vec![20.0, 50.0, 30.0], 3).unwrap()
}

fn two_rows() -> Inputs {
    Inputs::new(vec![2.0, 10.0, 3.0, 20.0, 50.0, 30.0], 3).unwrap()
}

fn run(method: &impl Attribution, x: &Inputs, baseline: &Baseline) -> Vec<f32> {
    method
        .attribute(
            &basic_model_multilayer(),
            x,
            baseline,
            &Target::Class(0),
            &device(),
        )
        .unwrap()
        .values
}

// captum tests/attr/test_feature_ablation.py
#[test]
fn feature_ablation_matches_captum() {
    let plain = FeatureAblation::default();
    // test_simple_ablation
    assert_close(
        &run(&plain, &single(), &Baseline::Zeros),
        &[80.0, 200.0, 120.0],
        1e-4,
    );
    // test_multi_sample_ablation
    assert_close(
        &run(&plain, &two_rows(), &Baseline::Zeros),
        &[8.0, 35.0, 12.0, 80.0, 200.0, 120.0],
        1e-4,
    );
    let grouped = FeatureAblation {
        mask: Some(vec![0, 0, 1]),
    };
    // test_simple_ablation_with_mask
    assert_close(
        &run(&grouped, &single(), &Baseline::Zeros),
        &[280.0, 280.0, 120.0],
        1e-4,
    );
    // test_simple_ablation_with_baselines (baselines=4)
    assert_close(
        &run(&grouped, &single(), &Baseline::PerFeature(vec![4.0; 3])),
        &[248.0, 248.0, 104.0],
        1e-4,
    );
}

// captum tests/attr/test_occlusion.py
#[test]
fn occlusion_matches_captum() {
    let one = Occlusion::default();
    // test_simple_input
    assert_close(
        &run(&one, &single(), &Baseline::Zeros),
        &[80.0, 200.0, 120.0],
        1e-4,
    );
    // test_multi_sample_ablation
    assert_close(
        &run(&one, &two_rows(), &Baseline::Zeros),
        &[8.0, 35.0, 12.0, 80.0, 200.0, 120.0],
        1e-4,
    );
    // test_simple_input_larger_shape: window 2, stride 1, baselines 10 (feature 1 is under
    // two windows and gets their mean).
    let wide = Occlusion {
        window: 2,
        stride: 1,
        baseline: 10.0,
    };
    assert_close(
        &run(&wide, &single(), &Baseline::Zeros),
        &[200.0, 220.0, 240.0],
        1e-4,
    );
    // test_simple_input_shape_with_stride: window 2, stride 2 (the second window is clipped
    // to feature 2).
    let strided = Occlusion {
        window: 2,
        stride: 2,
        baseline: 0.0,
    };
    assert_close(
        &run(&strided, &single(), &Baseline::Zeros),
        &[280.0, 280.0, 120.0],
        1e-4,
    );
}

// captum tests/attr/test_shapley.py, test_simple_shapley_sampling: Captum's expected values
// are the exact Shapley values (76 2/3, 196 2/3, 116 2/3), which the exact mode reproduces.
#[test]
fn exact_shapley_matches_captum() {
    let phi = run(&ShapleyValues::default(), &single(), &Baseline::Zeros);
    assert_close(&phi, &[76.66666, 196.66666, 116.66666], 1e-6);
}
