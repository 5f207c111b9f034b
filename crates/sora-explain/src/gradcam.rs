//! Grad-CAM: where in the feature maps of a convolution layer a prediction comes from.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sora_core::{DenseInput, FeatureMaps, Model};

use crate::model::plain;
use crate::types::check_targets;
use crate::{ExplainError, Inputs, Result, Target};

/// Images sent through the model at once.
const CHUNK: usize = 64;

/// Grad-CAM (Selvaraju et al., 2017): the feature maps `A` of a layer, weighted per channel by
/// the spatial mean of `∂F_t/∂A`, summed over channels, and (by default) rectified —
/// Captum's `LayerGradCam` with `relu_attributions = True`.
///
/// The maps have the layer's resolution; [`CamMaps::upsample`] brings them to the input's
/// (Captum's `LayerAttribution.interpolate`, bilinear).
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{DenseInput, Encoder, EncoderPlan, EncoderSpec, FeatureMaps, HeadSpec, ModelSpec, Task};
/// # use burn::module::Module;
/// # use sora_core::{LayerSummary, SpecError};
/// # use serde::{Deserialize, Serialize};
/// use sora_explain::{GradCam, Inputs, Target};
///
/// // An encoder whose "maps" are its input image, globally averaged into features.
/// #[derive(Module, Debug)]
/// struct Pixels { side: usize }
/// impl Encoder for Pixels {
///     type Input = Tensor<4>;
///     fn d_features(&self) -> usize { 1 }
///     fn input_shape(&self) -> Vec<usize> { vec![1, self.side, self.side] }
///     fn forward(&self, x: Tensor<4>) -> Tensor<2> { self.forward_from_maps(x, 0) }
/// }
/// impl FeatureMaps for Pixels {
///     fn map_layers(&self) -> Vec<String> { vec!["encoder".into()] }
///     fn maps(&self, x: Tensor<4>, _: usize) -> Tensor<4> { x }
///     fn forward_from_maps(&self, maps: Tensor<4>, _: usize) -> Tensor<2> {
///         let [b, c, h, w] = maps.dims();
///         maps.reshape([b, c * h * w]).mean_dim(1)
///     }
/// }
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # struct PixelsSpec { side: usize }
/// # impl EncoderSpec for PixelsSpec {
/// #     type Encoder = Pixels;
/// #     fn check(&self, _: usize) -> Result<EncoderPlan, SpecError> {
/// #         Ok(EncoderPlan { input_shape: vec![1, self.side, self.side], d_features: 1,
/// #             layers: vec![LayerSummary { name: "encoder".into(), kind: "Pixels".into(),
/// #                 output_shape: vec![1], params: 0, trainable: 0 }] })
/// #     }
/// #     fn init(&self, _: &Device) -> Pixels { Pixels { side: self.side } }
/// # }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(PixelsSpec { side: 2 }, HeadSpec::new(&[]), Task::Regression { n_targets: 1 })
///     .check()?
///     .init(&device);
/// let image = Inputs::new(vec![0.0, 1.0, 2.0, 3.0], 4)?;
/// let cam = GradCam::default().attribute(&model, &image, &Target::Class(0), &device)?;
/// assert_eq!((cam.n, cam.height, cam.width), (1, 2, 2));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradCam {
    /// The layer whose maps are weighted: an index into the encoder's
    /// [`map_layers`](FeatureMaps::map_layers); `None` takes the last one (the usual choice).
    pub layer: Option<usize>,
    /// Keep only the positive evidence (`ReLU` of the weighted sum), as in the paper.
    pub relu: bool,
}

impl Default for GradCam {
    /// The last map layer, rectified.
    fn default() -> Self {
        Self {
            layer: None,
            relu: true,
        }
    }
}

/// Class-activation maps, one `[height, width]` map per example.
#[derive(Debug, Clone, PartialEq)]
pub struct CamMaps {
    /// Row-major `[n, height, width]`.
    pub values: Vec<f32>,
    /// Number of examples.
    pub n: usize,
    /// Map height (1 for one-dimensional encoders).
    pub height: usize,
    /// Map width.
    pub width: usize,
    /// The explained output of each example.
    pub targets: Vec<usize>,
    /// The layer the maps come from (`encoder.blocks.1`, …).
    pub layer: String,
}

impl CamMaps {
    /// The map of example `i`, `[height, width]` row-major.
    pub fn map(&self, i: usize) -> &[f32] {
        let d = self.height * self.width;
        &self.values[i * d..(i + 1) * d]
    }

    /// The maps resized to `height × width` by bilinear interpolation (pixel centres
    /// aligned, as PyTorch's `interpolate(mode="bilinear", align_corners=False)`).
    pub fn upsample(&self, height: usize, width: usize) -> CamMaps {
        let mut values = Vec::with_capacity(self.n * height * width);
        for i in 0..self.n {
            values.extend(bilinear(
                self.map(i),
                self.height,
                self.width,
                height,
                width,
            ));
        }
        CamMaps {
            values,
            n: self.n,
            height,
            width,
            targets: self.targets.clone(),
            layer: self.layer.clone(),
        }
    }
}

/// Source coordinate and weight pairs of one output axis (`align_corners = False`).
fn axis(from: usize, to: usize) -> Vec<(usize, usize, f32)> {
    let scale = from as f32 / to as f32;
    (0..to)
        .map(|o| {
            let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (x.floor() as usize).min(from - 1);
            let i1 = (i0 + 1).min(from - 1);
            (i0, i1, x - i0 as f32)
        })
        .collect()
}

fn bilinear(map: &[f32], h: usize, w: usize, to_h: usize, to_w: usize) -> Vec<f32> {
    let (rows, cols) = (axis(h, to_h), axis(w, to_w));
    let mut out = Vec::with_capacity(to_h * to_w);
    for &(r0, r1, fr) in &rows {
        for &(c0, c1, fc) in &cols {
            let top = map[r0 * w + c0] * (1.0 - fc) + map[r0 * w + c1] * fc;
            let bottom = map[r1 * w + c0] * (1.0 - fc) + map[r1 * w + c1] * fc;
            out.push(top * (1.0 - fr) + bottom * fr);
        }
    }
    out
}

fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| ExplainError::Backend(format!("cannot read a tensor back: {e:?}")))
}

impl GradCam {
    /// The class-activation maps of `model`'s `target` outputs for `inputs` (flat rows of the
    /// encoder's `input_shape`), at the chosen layer's resolution.
    ///
    /// Fails when the layer does not exist, the inputs do not have the encoder's input size,
    /// or a target is not an output of the model.
    pub fn attribute<E>(
        &self,
        model: &Model<E>,
        inputs: &Inputs,
        target: &Target,
        device: &Device,
    ) -> Result<CamMaps>
    where
        E: FeatureMaps,
        E::Input: DenseInput,
    {
        inputs.check()?;
        let layers = model.encoder.map_layers();
        let layer = match self.layer {
            None => layers.len().checked_sub(1),
            Some(l) => (l < layers.len()).then_some(l),
        }
        .ok_or_else(|| ExplainError::InvalidParameter {
            method: "GradCam",
            parameter: "layer",
            expected: format!("a layer index below {}", layers.len()),
            found: format!("{:?}", self.layer),
        })?;
        let shape = model.encoder.input_shape();
        let d: usize = shape.iter().product();
        if inputs.d != d {
            return Err(ExplainError::Length {
                what: format!("input rows (the encoder's input {shape:?})"),
                expected: d,
                found: inputs.d,
            });
        }
        let targets = target.resolve(inputs.n)?;
        let ad = plain(device).autodiff();
        let model = model.valid().fork(&ad);
        let (mut values, mut hw) = (Vec::new(), (0, 0));
        for (chunk, chunk_targets) in inputs.values.chunks(CHUNK * d).zip(targets.chunks(CHUNK)) {
            let rows = chunk_targets.len();
            let flat = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, d]), &ad);
            let maps = model
                .encoder
                .maps(E::Input::from_flat(flat, &shape), layer)
                .detach()
                .require_grad();
            let [_, c, h, w] = maps.dims();
            let y = model
                .head
                .forward(model.encoder.forward_from_maps(maps.clone(), layer));
            let [_, k] = y.dims();
            check_targets(chunk_targets, k)?;
            let mut mask = vec![0.0f32; rows * k];
            for (r, &t) in chunk_targets.iter().enumerate() {
                mask[r * k + t] = 1.0;
            }
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, k]), &ad);
            let grads = (y * mask).sum().backward();
            let g = maps
                .grad(&grads)
                .ok_or_else(|| ExplainError::Backend("no gradient reached the maps".into()))?;
            let (g, a) = (read(g)?, read(maps.detach())?);
            for r in 0..rows {
                let mut cam = vec![0.0f32; h * w];
                for ch in 0..c {
                    let at = (r * c + ch) * h * w;
                    let weight = g[at..at + h * w].iter().sum::<f32>() / (h * w) as f32;
                    for (out, v) in cam.iter_mut().zip(&a[at..at + h * w]) {
                        *out += weight * v;
                    }
                }
                if self.relu {
                    cam.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                values.extend(cam);
            }
            hw = (h, w);
        }
        Ok(CamMaps {
            values,
            n: inputs.n,
            height: hw.0,
            width: hw.1,
            targets,
            layer: layers[layer].clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_interpolates_between_centres() {
        let up = bilinear(&[2.0; 4], 2, 2, 5, 7);
        assert!(up.iter().all(|v| (v - 2.0).abs() < 1e-6));
        // 1×2 → 1×4 with centres aligned: [0, 1] → [0, 0.25, 0.75, 1].
        let up = bilinear(&[0.0, 1.0], 1, 2, 1, 4);
        let expected = [0.0, 0.25, 0.75, 1.0];
        for (u, e) in up.iter().zip(expected) {
            assert!((u - e).abs() < 1e-6, "{up:?}");
        }
    }
}
