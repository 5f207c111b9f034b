//! Model specs: parsing, up-front validation with named layers and fields, summaries whose
//! totals match what Burn allocates.

use burn::module::Module;
use sora::core::{
    Activation, HeadSpec, IdentitySpec, ModelSpec, Norm, SpecError, SpecLimits, Task,
};
use sora::device::test_device;

fn spec(json: &str) -> Result<ModelSpec, SpecError> {
    ModelSpec::from_json_str(json)
}

fn check_err(json: &str) -> String {
    spec(json)
        .and_then(|s| s.check().map(|_| ()))
        .unwrap_err()
        .to_string()
}

#[test]
fn summary_totals_equal_allocated_parameters() {
    let device = test_device();
    for norm in [None, Some(Norm::Batch), Some(Norm::Layer)] {
        for dropout in [0.0, 0.25] {
            let spec = ModelSpec::new(
                IdentitySpec::new(30),
                HeadSpec::new(&[64, 32, 16])
                    .with_activation(Activation::Silu)
                    .with_dropout(dropout)
                    .with_norm(norm),
                Task::Classification { n_classes: 3 },
            );
            let checked = spec.check().unwrap();
            let model = checked.init(&device);
            assert_eq!(
                checked.summary().total_params,
                model.num_params() as u64,
                "norm {norm:?}, dropout {dropout}"
            );
            let rows: u64 = checked.summary().layers.iter().map(|l| l.params).sum();
            assert_eq!(rows, checked.summary().total_params);
            // Batch norm's running statistics are allocated but not trained.
            let buffers = if norm == Some(Norm::Batch) {
                2 * (64 + 32 + 16)
            } else {
                0
            };
            assert_eq!(checked.summary().trainable_params + buffers, rows);
        }
    }
}

#[test]
fn summary_lists_layers_with_shapes() {
    let checked = ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[128, 64]).with_dropout(0.1),
        Task::Classification { n_classes: 10 },
    )
    .check()
    .unwrap();
    let s = checked.summary();
    let kinds: Vec<&str> = s.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Identity", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"
        ]
    );
    assert_eq!(s.layers[1].output_shape, vec![128]);
    assert_eq!(s.layers[1].params, 64 * 128 + 128);
    assert_eq!(s.layers.last().unwrap().output_shape, vec![10]);
    assert_eq!(
        s.total_params,
        64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    );
    let text = s.to_string();
    assert!(text.contains("head.hidden.0.linear (Linear)"), "{text}");
    assert!(text.contains("Total params: 17,226"), "{text}");
}

#[test]
fn json_and_toml_round_trip() {
    let spec = ModelSpec::new(
        IdentitySpec::new(8),
        HeadSpec::new(&[4])
            .with_norm(Some(Norm::Layer))
            .with_activation(Activation::LeakyRelu),
        Task::Regression { n_targets: 2 },
    );
    assert_eq!(
        ModelSpec::from_json_str(&spec.to_json_string()).unwrap(),
        spec
    );
    assert_eq!(
        ModelSpec::from_toml_str(&spec.to_toml_string()).unwrap(),
        spec
    );
}

#[test]
fn every_activation_runs() {
    let device = test_device();
    for activation in Activation::ALL {
        let checked = ModelSpec::new(
            IdentitySpec::new(3),
            HeadSpec::new(&[5]).with_activation(activation),
            Task::Classification { n_classes: 2 },
        )
        .check()
        .unwrap();
        let model = checked.init(&device);
        let y = model.forward(burn::tensor::Tensor::<2>::ones([4, 3], &device));
        assert_eq!(y.dims(), [4, 2], "{activation}");
        assert_eq!(Activation::from_name(activation.name()), Some(activation));
    }
}

const GOOD: &str = r#"{"encoder": {"kind": "identity", "d_input": 4},
  "head": {"d_hidden": [8, 6]}, "task": {"kind": "classification", "n_classes": 3}}"#;

#[test]
fn negative_and_zero_widths_name_layer_and_field() {
    assert!(spec(GOOD).unwrap().check().is_ok());
    let e = check_err(&GOOD.replace("[8, 6]", "[8, -3]"));
    assert!(
        e.contains("layer 3 (Linear)") && e.contains("head.d_hidden[1]") && e.contains("-3"),
        "{e}"
    );
    let e = check_err(&GOOD.replace("\"d_input\": 4", "\"d_input\": 0"));
    assert!(
        e.contains("layer 0 (Identity)") && e.contains("encoder.d_input"),
        "{e}"
    );
    let e = check_err(&GOOD.replace("\"n_classes\": 3", "\"n_classes\": 1"));
    assert!(
        e.contains("task.n_classes") && e.contains("at least 2"),
        "{e}"
    );
}

#[test]
fn unknown_activation_and_norm_are_named() {
    let e = check_err(&GOOD.replace(
        "\"d_hidden\": [8, 6]",
        "\"d_hidden\": [8], \"activation\": \"swish\"",
    ));
    assert!(
        e.contains("head.activation") && e.contains("\"swish\"") && e.contains("relu, gelu"),
        "{e}"
    );
    let e = check_err(&GOOD.replace(
        "\"d_hidden\": [8, 6]",
        "\"d_hidden\": [8], \"norm\": \"group\"",
    ));
    assert!(e.contains("head.norm") && e.contains("\"group\""), "{e}");
    let e = check_err(&GOOD.replace(
        "\"d_hidden\": [8, 6]",
        "\"d_hidden\": [8], \"dropout\": 1.5",
    ));
    assert!(e.contains("(Dropout)") && e.contains("head.dropout"), "{e}");
}

#[test]
fn mismatched_encoder_and_head_widths() {
    let e = check_err(&GOOD.replace("\"d_hidden\"", "\"d_input\": 5, \"d_hidden\""));
    assert!(
        e.contains("layer 1 (Linear)") && e.contains("head.d_input") && e.contains("expected 4"),
        "{e}"
    );
}

#[test]
fn parameter_limit_is_enforced_before_allocation() {
    // 10^6 × 10^6 weights would need 4 TB: this must fail in the check, not in an allocation.
    let huge = GOOD.replace("[8, 6]", "[1000000, 1000000]");
    let e = check_err(&huge);
    assert!(
        e.contains("layer 3 (Linear)") && e.contains("head.d_hidden[1]") && e.contains("limit"),
        "{e}"
    );
    let small_limit = SpecLimits { max_params: 30 };
    let e = spec(GOOD).unwrap().check_with(&small_limit).unwrap_err();
    assert!(
        matches!(e, SpecError::TooManyParams { index: 1, .. }),
        "{e}"
    );
}

#[test]
fn parse_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{\"encoder\": ").unwrap();
    let e = ModelSpec::<IdentitySpec>::from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.json"), "{e}");
    let path = dir.path().join("unknown.toml");
    std::fs::write(
        &path,
        "[encoder]\nkind = \"identity\"\nd_input = 3\nwidth = 2\n",
    )
    .unwrap();
    let e = ModelSpec::<IdentitySpec>::from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown.toml") && e.contains("width"), "{e}");
}
