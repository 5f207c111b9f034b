//! The conv encoders: specs checked up front (errors name layer and field), summaries that
//! match the allocated modules, shapes through both encoders, and the Grad-CAM cut.

use burn::module::Module;
use burn::prelude::*;
use sora_conv::{Conv1dSpec, Conv2dSpec, ConvBlockSpec, GlobalPool, Pool};
use sora_core::{Encoder, FeatureMaps, HeadSpec, ModelSpec, SpecError, Task};

fn classify(n: i64) -> Task {
    Task::Classification { n_classes: n }
}

#[test]
fn summary_counts_what_the_model_allocates() {
    let device = sora_device::test_device();
    let encoder = Conv2dSpec::new(
        [3, 16, 12],
        vec![
            ConvBlockSpec::new(8, 3)
                .with_batch_norm(true)
                .with_pool(Pool::Max, 2),
            ConvBlockSpec::new(16, 5)
                .with_padding(0)
                .with_stride(2)
                .with_dropout(0.1),
        ],
    )
    .with_global_pool(GlobalPool::Flatten);
    let checked = ModelSpec::new(encoder, HeadSpec::new(&[10]), classify(4))
        .check()
        .unwrap();
    let summary = checked.summary();
    // 16×12 → same padding → pool 2 → 8×6 → 5×5 valid, stride 2 → 2×1.
    let conv = summary.layers.iter().rfind(|l| l.kind == "Conv2d").unwrap();
    assert_eq!(conv.output_shape, vec![16, 2, 1]);
    assert_eq!(checked.encoder_plan().d_features, 32);
    let model = checked.init(&device);
    assert_eq!(summary.total_params, model.num_params() as u64);
    let y = model.forward(Tensor::<4>::zeros([5, 3, 16, 12], &device));
    assert_eq!(y.dims(), [5, 4]);
    let text = summary.to_string();
    assert!(
        text.contains("encoder.blocks.0.norm (BatchNorm2d)"),
        "{text}"
    );
    assert!(text.contains("encoder.global_pool (Flatten)"), "{text}");
}

#[test]
fn bad_specs_name_layer_and_field() {
    let err = |spec: Conv2dSpec| -> String {
        ModelSpec::new(spec, HeadSpec::new(&[]), classify(2))
            .check()
            .unwrap_err()
            .to_string()
    };
    let big_kernel = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(4, 7).with_padding(0)]);
    let e = err(big_kernel);
    assert!(
        e.contains("layer 0 (Conv2d)") && e.contains("encoder.blocks[0].kernel"),
        "{e}"
    );
    let big_pool = Conv2dSpec::new(
        [1, 4, 4],
        vec![
            ConvBlockSpec::new(4, 3).with_pool(Pool::Max, 2),
            ConvBlockSpec::new(4, 3).with_pool(Pool::Avg, 4),
        ],
    );
    let e = err(big_pool);
    assert!(
        e.contains("(AvgPool2d)") && e.contains("encoder.blocks[1].pool_size"),
        "{e}"
    );
    let mut bad_activation = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(4, 3)]);
    bad_activation.blocks[0].activation = "swish!".into();
    assert!(err(bad_activation).contains("encoder.blocks[0].activation"));
    let negative = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(4, 3)]);
    let mut negative = negative;
    negative.blocks[0].channels = -3;
    assert!(err(negative).contains("encoder.blocks[0].channels"));
    let mut wrong_rank = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(4, 3)]);
    wrong_rank.input = vec![4, 4];
    assert!(err(wrong_rank).contains("encoder.input"));
    let no_blocks = Conv2dSpec::new([1, 4, 4], vec![]);
    assert!(err(no_blocks).contains("encoder.blocks"));
    let dropout = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(4, 3).with_dropout(1.0)]);
    assert!(err(dropout).contains("encoder.blocks[0].dropout"));
}

#[test]
fn specs_read_from_json_with_defaults_and_reject_unknown_fields() {
    let spec: ModelSpec<Conv1dSpec> = ModelSpec::from_json_str(
        r#"{ "encoder": { "kind": "conv1d", "input": [13, 50],
               "blocks": [ { "channels": 8, "kernel": 5, "pool": "max" } ] },
             "head": { "d_hidden": [] },
             "task": { "kind": "classification", "n_classes": 3 } }"#,
    )
    .unwrap();
    let block = &spec.encoder.blocks[0];
    assert_eq!((block.stride, block.padding, block.pool_size), (1, None, 2));
    assert_eq!(spec.encoder.global_pool, GlobalPool::Avg);
    let again: ModelSpec<Conv1dSpec> = ModelSpec::from_json_str(&spec.to_json_string()).unwrap();
    assert_eq!(again, spec);
    let typo = ModelSpec::<Conv1dSpec>::from_json_str(
        r#"{ "encoder": { "kind": "conv1d", "input": [13, 50],
               "blocks": [ { "channels": 8, "kernal": 5 } ] },
             "head": {}, "task": { "kind": "classification", "n_classes": 3 } }"#,
    );
    assert!(matches!(typo, Err(SpecError::Parse { .. })));
}

#[test]
fn conv1d_shapes_and_the_grad_cam_cut_agree_with_forward() {
    let device = sora_device::test_device();
    let encoder = Conv1dSpec::new(
        [4, 30],
        vec![
            ConvBlockSpec::new(6, 5).with_pool(Pool::Max, 3),
            ConvBlockSpec::new(8, 3).with_batch_norm(true),
        ],
    )
    .with_global_pool(GlobalPool::Max);
    let checked = ModelSpec::new(encoder, HeadSpec::new(&[]), classify(2))
        .check()
        .unwrap();
    assert_eq!(
        checked.summary().total_params,
        checked.init(&device).num_params() as u64
    );
    let model = checked.init(&device);
    let x = Tensor::<3>::random([3, 4, 30], burn::tensor::Distribution::Default, &device);
    let features = model.encoder.forward(x.clone());
    assert_eq!(features.dims(), [3, 8]);
    assert_eq!(
        model.encoder.map_layers(),
        ["encoder.blocks.0", "encoder.blocks.1"]
    );
    for layer in 0..2 {
        let maps = model.encoder.maps(x.clone(), layer);
        assert_eq!(maps.dims()[..3], [3, [6, 8][layer], 1]);
        let again = model.encoder.forward_from_maps(maps, layer);
        let diff = (again - features.clone()).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "layer {layer}: {diff}");
    }
}
