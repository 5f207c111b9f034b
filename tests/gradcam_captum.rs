//! Grad-CAM against Captum's `LayerGradCam` on the ReLU after the convolution of Captum's own
//! `BasicModel_ConvNet_One_Conv` (captum `tests/helpers/basic_models.py`): `conv1` has weight
//! `ones(2, 1, 3, 3)` and bias `[-50, -75]`, then ReLU, a flatten to 8, and `fc1` with weight
//! `[1, 1, 1, 1, 1, -1, -1, -1]` in every row and bias 0 (Captum's `relu2` after `fc1` is left
//! out: the explained outputs are positive, so it changes nothing).
//!
//! Expected values from captum 0.9.0 / torch 2.9.0:
//!
//! ```python
//! inp = torch.stack([torch.arange(16).view(1, 4, 4).float(),
//!                    torch.arange(16).flip(0).view(1, 4, 4).float() * 0.5 + 20])
//! LayerGradCam(net, net.relu1).attribute(inp, target=[0, 3], relu_attributions=False)
//! # [0.0, 4.0, 28.0, 32.5, 100.0, 97.75, 91.0, 88.75]
//! ```

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use sora::conv::{Conv2dSpec, ConvBlockSpec, GlobalPool};
use sora::core::{HeadSpec, ModelSpec, Task};
use sora::explain_methods::{GradCam, Inputs, Target};

#[test]
fn grad_cam_matches_captum_layer_grad_cam() {
    let device = sora::device::test_device();
    let encoder = Conv2dSpec::new([1, 4, 4], vec![ConvBlockSpec::new(2, 3).with_padding(0)])
        .with_global_pool(GlobalPool::Flatten);
    let mut model = ModelSpec::new(
        encoder,
        HeadSpec::new(&[]),
        Task::Classification { n_classes: 4 },
    )
    .check()
    .unwrap()
    .init(&device);
    let conv = &mut model.encoder.blocks[0].conv;
    conv.weight = Param::from_tensor(Tensor::ones([2, 1, 3, 3], &device));
    conv.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![-50.0f32, -75.0], [2]),
        &device,
    )));
    // Burn stores a linear weight [d_in, d_out]: input i has weight 1 for i < 5, else -1.
    let weight: Vec<f32> = (0..8)
        .flat_map(|i| [if i < 5 { 1.0f32 } else { -1.0 }; 4])
        .collect();
    model.head.output.weight =
        Param::from_tensor(Tensor::from_data(TensorData::new(weight, [8, 4]), &device));
    model.head.output.bias = Some(Param::from_tensor(Tensor::zeros([4], &device)));

    let mut x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    x.extend((0..16).rev().map(|v| v as f32 * 0.5 + 20.0));
    let inputs = Inputs::new(x, 16).unwrap();
    let target = Target::PerExample(vec![0, 3]);
    let expected = [0.0, 4.0, 28.0, 32.5, 100.0, 97.75, 91.0, 88.75];
    for relu in [false, true] {
        let cam = GradCam { layer: None, relu }
            .attribute(&model, &inputs, &target, &device)
            .unwrap();
        assert_eq!((cam.n, cam.height, cam.width), (2, 2, 2));
        assert_eq!(cam.layer, "encoder.blocks.0");
        for (found, want) in cam.values.iter().zip(expected) {
            assert!((found - want).abs() < 1e-4, "{:?}", cam.values);
        }
    }
    // Upsampled to the input: constant maps stay constant, and the corners keep their values.
    let cam = GradCam::default()
        .attribute(&model, &inputs, &target, &device)
        .unwrap()
        .upsample(4, 4);
    assert_eq!(cam.map(0)[0], 0.0);
    assert_eq!(cam.map(1)[15], 88.75);
}
