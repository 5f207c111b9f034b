//! Explanations of image and audio models: a map per sample over the picture of its input
//! (the image, or the spectrogram), drawn beside it in a PNG.

use std::path::Path;

use super::{ConvNet, InputPipeline, MediaModel, Samples};
use crate::explain::{
    Attributions as Attributed, Document, ExplainRequest, ExplainedRow, Explanation, HeatMap,
    Method,
};
use crate::{JobError, Result};

/// The methods images and audio are explained by.
pub const METHODS: [Method; 5] = [
    Method::Gradcam,
    Method::Saliency,
    Method::InputXGradient,
    Method::Ig,
    Method::Occlusion,
];

/// Attribution maps of some samples, one `[height, width]` map per sample over the picture
/// of the input (the image, or the spectrogram `[rows, frames]`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaExplanation {
    /// Row-major `[n, height, width]`, non-negative (magnitudes).
    pub heat: Vec<f32>,
    /// Picture height.
    pub height: usize,
    /// Picture width.
    pub width: usize,
    /// The class each map explains.
    pub targets: Vec<usize>,
    /// Class probabilities `[n, classes]`.
    pub probabilities: Vec<f32>,
    /// The Grad-CAM layer, when the method has one.
    pub layer: Option<String>,
}

impl MediaExplanation {
    /// The map of sample `i`.
    pub fn map(&self, i: usize) -> &[f32] {
        let d = self.height * self.width;
        &self.heat[i * d..(i + 1) * d]
    }

    /// The position `(row, column)` of the largest value of map `i`.
    pub fn peak(&self, i: usize) -> (usize, usize) {
        let map = self.map(i);
        let at = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]))
            .unwrap_or(0);
        (at / self.width, at % self.width)
    }
}

impl MediaModel {
    /// Picture `[channels, height, width]` of a sample: the image, or the features as a
    /// one-channel picture `[1, rows, frames]`.
    fn picture_shape(&self) -> [usize; 3] {
        match self.sample_shape()[..] {
            [c, h, w] => [c, h, w],
            [rows, frames] => [1, rows, frames],
            _ => unreachable!("samples have two or three axes"),
        }
    }

    /// Explains the predictions for `samples` (raw, as [`load_data`](Self::load_data) reads
    /// them): for each, a map of where the evidence for `targets` (default: the predicted
    /// class) lies.
    pub fn explain(
        &self,
        samples: &Samples,
        method: Method,
        request: &ExplainRequest,
        targets: Option<Vec<usize>>,
    ) -> Result<MediaExplanation> {
        use sora_explain::{
            Attribution, Baseline, FeatureAblation, GradCam, InputXGradient, Inputs,
            IntegratedGradients, Saliency, Target,
        };
        let probabilities = self.predict(samples)?;
        let k = self.input.classes.len();
        let targets = targets.unwrap_or_else(|| {
            probabilities
                .chunks(k)
                .map(sora_train::argmax)
                .collect::<Vec<_>>()
        });
        let mut standardised = samples.clone();
        self.input.normalize(&mut standardised);
        let d = samples.sample_len();
        let inputs = Inputs::new(standardised.values, d)?;
        let target = Target::PerExample(targets.clone());
        let [c, h, w] = self.picture_shape();
        let device = self.device();
        let attribute = |a: &dyn Fn() -> Result<sora_explain::Attributions>| -> Result<Vec<f32>> {
            // Per-pixel magnitude, summed over channels.
            let a = a()?;
            let mut heat = vec![0.0f32; a.n * h * w];
            for (i, row) in a.values.chunks(d).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    heat[i * h * w + j % (h * w)] += v.abs();
                }
            }
            Ok(heat)
        };
        let gradient = |method: &dyn Fn(&ConvNet) -> Result<sora_explain::Attributions>| {
            attribute(&|| method(&self.net))
        };
        let mut layer = None;
        let heat = match method {
            Method::Gradcam => {
                let cam = GradCam {
                    layer: request.layer,
                    relu: true,
                };
                let maps = match &self.net {
                    ConvNet::Conv2d(m) => cam.attribute(m, &inputs, &target, device)?,
                    ConvNet::Conv1d(m) => cam.attribute(m, &inputs, &target, device)?,
                };
                layer = Some(maps.layer.clone());
                if maps.height == 1 && h > 1 {
                    // A 1-D encoder's maps run along time: the same weight for every row.
                    let up = maps.upsample(1, w);
                    up.values
                        .chunks(w)
                        .flat_map(|row| std::iter::repeat_n(row, h).flatten().copied())
                        .collect()
                } else {
                    maps.upsample(h, w).values
                }
            }
            Method::Saliency => gradient(&|net| {
                Ok(match net {
                    ConvNet::Conv2d(m) => Saliency::default().attribute(
                        m,
                        &inputs,
                        &Baseline::Zeros,
                        &target,
                        device,
                    )?,
                    ConvNet::Conv1d(m) => Saliency::default().attribute(
                        m,
                        &inputs,
                        &Baseline::Zeros,
                        &target,
                        device,
                    )?,
                })
            })?,
            Method::InputXGradient => gradient(&|net| {
                Ok(match net {
                    ConvNet::Conv2d(m) => {
                        InputXGradient.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                    }
                    ConvNet::Conv1d(m) => {
                        InputXGradient.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                    }
                })
            })?,
            Method::Ig => {
                let ig = IntegratedGradients {
                    n_steps: request.steps,
                    ..IntegratedGradients::default()
                };
                gradient(&|net| {
                    Ok(match net {
                        ConvNet::Conv2d(m) => {
                            ig.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                        ConvNet::Conv1d(m) => {
                            ig.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                    })
                })?
            }
            Method::Occlusion => {
                let patch = &request.patch;
                if *patch == 0 || *patch > h.max(w) {
                    return Err(JobError::invalid(
                        "patch",
                        format!("a side in 1 ..= {}", h.max(w)),
                        patch,
                    ));
                }
                let across = w.div_ceil(*patch);
                let mask: Vec<usize> = (0..c * h * w)
                    .map(|j| {
                        let (y, x) = ((j / w) % h, j % w);
                        (y / patch) * across + x / patch
                    })
                    .collect();
                let ablation = FeatureAblation { mask: Some(mask) };
                gradient(&|net| {
                    Ok(match net {
                        ConvNet::Conv2d(m) => {
                            ablation.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                        ConvNet::Conv1d(m) => {
                            ablation.attribute(m, &inputs, &Baseline::Zeros, &target, device)?
                        }
                    })
                })?
            }
            other => {
                return Err(other
                    .check(&self.info_kind(), &METHODS)
                    .expect_err("a method outside METHODS"));
            }
        };
        // Every channel adds the same patch value once; divide it back out.
        let heat = match method {
            Method::Occlusion => heat.iter().map(|v| v / c as f32).collect(),
            _ => heat,
        };
        Ok(MediaExplanation {
            heat,
            height: h,
            width: w,
            targets,
            probabilities,
            layer,
        })
    }

    /// Draws each sample beside its map blended over it, one row per sample, into a PNG
    /// (spectrograms with low frequencies at the bottom).
    pub fn picture(&self, samples: &Samples, explanation: &MediaExplanation) -> Result<Vec<u8>> {
        let [c, h, w] = self.picture_shape();
        let overlays: Vec<sora_explain::Overlay<'_>> = (0..samples.len())
            .map(|i| sora_explain::Overlay {
                image: samples.sample(i),
                channels: c,
                height: h,
                width: w,
                heat: explanation.map(i),
            })
            .collect();
        let is_audio = matches!(self.input.pipeline, InputPipeline::Audio { .. });
        let scale = (224 / h.max(w).max(1)).clamp(1, 8);
        Ok(sora_explain::overlays_png(&overlays, scale, is_audio)?)
    }

    /// [`picture`](Self::picture), written to `path` atomically.
    pub fn save_picture(
        &self,
        samples: &Samples,
        explanation: &MediaExplanation,
        path: &Path,
    ) -> Result<()> {
        let bytes = self.picture(samples, explanation)?;
        sora_core::weights::write_atomic(path, &bytes).map_err(JobError::io(path))
    }

    fn info_kind(&self) -> String {
        crate::Model::info(self).kind.clone()
    }

    /// Explains `samples` (raw, as read) as `request` asks: the method (Grad-CAM by default),
    /// the explained class, and the picture of the maps as the document.
    pub fn explain_samples(
        &self,
        samples: &Samples,
        request: &ExplainRequest,
    ) -> Result<Explanation> {
        request.check()?;
        let kind = self.info_kind();
        let method = request.method(&kind, Method::Gradcam, &METHODS)?;
        let classes = &self.input.classes;
        let targets = request
            .target
            .class_index(classes)?
            .map(|c| vec![c; samples.len()]);
        let explanation = self.explain(samples, method, request, targets)?;
        let k = classes.len();
        let mut terminal = format!(
            "{}{}: {} sample(s), maps {}×{}\n",
            method.label(),
            explanation
                .layer
                .as_ref()
                .map(|l| format!(" on {l}"))
                .unwrap_or_default(),
            samples.len(),
            explanation.height,
            explanation.width
        );
        let mut rows = Vec::with_capacity(samples.len());
        for i in 0..samples.len() {
            let p = &explanation.probabilities[i * k..(i + 1) * k];
            let predicted = sora_train::argmax(p);
            let truth = samples
                .classes
                .get(samples.labels[i])
                .map(|c| format!(", true {c}"))
                .unwrap_or_default();
            let (y, x) = explanation.peak(i);
            terminal.push_str(&format!(
                "  {}: predicted {} ({:.3}){truth}; explaining {}; strongest at row {y}, column {x}\n",
                samples.sources[i], classes[predicted], p[predicted], classes[explanation.targets[i]],
            ));
            rows.push(ExplainedRow {
                key: samples.sources[i].clone(),
                label: classes[predicted].clone(),
                probabilities: p.to_vec(),
                explained: classes[explanation.targets[i]].clone(),
                attributions: Attributed::Map(HeatMap::new(
                    explanation.height,
                    explanation.width,
                    explanation.map(i).to_vec(),
                )),
                delta: None,
            });
        }
        let document = if request.document {
            Some(Document {
                extension: "png",
                bytes: self.picture(samples, &explanation)?,
            })
        } else {
            None
        };
        Ok(Explanation {
            method: format!(
                "{}{}",
                method.label(),
                explanation
                    .layer
                    .as_ref()
                    .map(|l| format!(" on {l}"))
                    .unwrap_or_default()
            ),
            classes: classes.clone(),
            rows,
            terminal,
            document,
        })
    }
}
