//! An image or audio model read back from its directory, and its verbs.

use std::path::Path;

use burn::tensor::Device;
use sora_conv::audio::FeatureExtractor;
use sora_conv::images::{ChannelMode, ImageOptions};
use sora_conv::{Conv1dSpec, Conv2dSpec};
use sora_train::{Metrics, ModelDir};

use super::train::data_for;
use super::{
    Audio, ConvNet, ConvSpec, INPUT_FILE, Image, InputPipeline, LoadOptions, MediaError, Samples,
    SavedInput, Source, load,
};
use crate::explain::{ExplainRequest, Explanation};
use crate::kind::Kind;
use crate::model::{
    Batch, Evaluation, Input, InputSchema, Medium, ModelInfo, NamedFile, OutputKind, Outputs,
    PREDICTION_BATCH, Rows,
};
use crate::{JobError, Result};

/// File extensions read as one sample (an image or a WAV clip) rather than as IDX data.
const SINGLE_FILES: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "wav"];

/// An image or audio model read back from its directory.
#[derive(Debug, Clone)]
pub struct MediaModel {
    /// The input side.
    pub input: SavedInput,
    /// The spec.
    pub spec: ConvSpec,
    /// The model.
    pub net: ConvNet,
    info: ModelInfo,
    device: Device,
}

/// What an image or audio model is.
pub(super) fn describe(
    input: &SavedInput,
    spec: &ConvSpec,
    parameters: usize,
) -> Result<ModelInfo> {
    let (kind, medium, reading) = match &input.pipeline {
        InputPipeline::Image {
            channels,
            height,
            width,
        } => (
            Image::NAME,
            Medium::Image,
            format!(
                "{} converted to {}, resized to {height}×{width}",
                "PNG, JPEG, BMP or GIF",
                if *channels == 1 { "gray" } else { "RGB" }
            ),
        ),
        InputPipeline::Audio { features } => (
            Audio::NAME,
            Medium::Audio,
            format!(
                "mono PCM WAV resampled to {} Hz, {} samples, {:?} features",
                features.sample_rate, features.clip_samples, features.kind
            ),
        ),
    };
    Ok(ModelInfo {
        kind: kind.to_string(),
        output: OutputKind::Classes {
            classes: input.classes.clone(),
        },
        target: None,
        input: InputSchema::Files {
            medium,
            shape: sample_shape(&input.pipeline),
            reading,
        },
        summary: spec.summary()?.to_string(),
        parameters,
    })
}

/// Shape of one sample as the pipeline makes it.
fn sample_shape(pipeline: &InputPipeline) -> Vec<usize> {
    match pipeline {
        InputPipeline::Image {
            channels,
            height,
            width,
        } => vec![*channels, *height, *width],
        InputPipeline::Audio { features } => features.output_shape().to_vec(),
    }
}

impl MediaModel {
    /// A model from its parts, running on `device`.
    pub fn new(input: SavedInput, spec: ConvSpec, net: ConvNet, device: &Device) -> Result<Self> {
        let info = describe(&input, &spec, net.num_params())?;
        Ok(Self {
            input,
            spec,
            net,
            info,
            device: device.clone(),
        })
    }

    /// Reads a model directory written by [`MediaRun::save`](super::MediaRun::save).
    pub fn load(dir: &Path, device: &Device) -> Result<MediaModel> {
        let model_dir = ModelDir::new(dir);
        let input: SavedInput =
            model_dir
                .read_json(INPUT_FILE)?
                .ok_or_else(|| MediaError::NoInputFile {
                    dir: dir.to_path_buf(),
                })?;
        if let InputPipeline::Audio { features } = &input.pipeline {
            // Bounded before anything is sized from it (a crafted clip length would make
            // every prediction allocate it).
            features.check().map_err(|e| JobError::Parse {
                file: dir.join(INPUT_FILE),
                message: e.to_string(),
                source: e.into(),
            })?;
        }
        let spec = ConvSpec::from_file(&dir.join(sora_train::files::SPEC))?;
        let net = match &spec {
            ConvSpec::Conv2d(_) => ConvNet::Conv2d(model_dir.load::<Conv2dSpec>(device)?.model),
            ConvSpec::Conv1d(_) => ConvNet::Conv1d(model_dir.load::<Conv1dSpec>(device)?.model),
        };
        let d: usize = spec.input_shape()?.iter().product();
        let sample = sample_shape(&input.pipeline);
        if sample.iter().product::<usize>() != d || input.mean.len() != sample[0] {
            return Err(MediaError::InputMismatch {
                dir: dir.to_path_buf(),
                sample,
                channels: input.mean.len(),
            }
            .into());
        }
        Self::new(input, spec, net, device)
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Shape of one sample as the pipeline makes it.
    pub fn sample_shape(&self) -> Vec<usize> {
        sample_shape(&self.input.pipeline)
    }

    fn trained_on(&self) -> &'static str {
        match self.input.pipeline {
            InputPipeline::Image { .. } => "images",
            InputPipeline::Audio { .. } => "audio clips",
        }
    }

    /// Reads data the way the model was trained: images converted and resized to the model's
    /// size (IDX images must have it already), clips through the saved features.
    pub fn load_data(&self, source: &Source) -> Result<Samples> {
        let options = match &self.input.pipeline {
            InputPipeline::Image {
                channels,
                height,
                width,
            } => LoadOptions {
                image: ImageOptions {
                    channels: if *channels == 1 {
                        ChannelMode::Gray
                    } else {
                        ChannelMode::Rgb
                    },
                    size: Some((*height, *width)),
                    ..ImageOptions::default()
                },
                ..LoadOptions::default()
            },
            InputPipeline::Audio { features } => LoadOptions {
                features: features.clone(),
                ..LoadOptions::default()
            },
        };
        let kind_fits = matches!(
            (&self.input.pipeline, source.is_audio()),
            (InputPipeline::Image { .. }, false) | (InputPipeline::Audio { .. }, true)
        );
        if !kind_fits {
            return Err(MediaError::WrongMedium {
                what: format!("{source:?}"),
                trained: self.trained_on(),
            }
            .into());
        }
        let (mut samples, _) = load(source, &options)?;
        if samples.shape != self.sample_shape() {
            return Err(MediaError::WrongShape {
                what: format!("{source:?}"),
                found: samples.shape.clone(),
                expected: self.sample_shape(),
            }
            .into());
        }
        self.relabel(&mut samples)?;
        Ok(samples)
    }

    /// Maps the data's class names onto the model's class indices.
    fn relabel(&self, samples: &mut Samples) -> Result<()> {
        if samples.classes.is_empty() || samples.classes == self.input.classes {
            return Ok(());
        }
        let map = samples
            .classes
            .iter()
            .map(|c| {
                self.input
                    .classes
                    .iter()
                    .position(|k| k == c)
                    .ok_or_else(|| {
                        JobError::from(MediaError::UnknownClass {
                            class: c.clone(),
                            classes: self.input.classes.clone(),
                        })
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        samples.labels.iter_mut().for_each(|l| *l = map[*l]);
        samples.classes = self.input.classes.clone();
        Ok(())
    }

    /// Reads one unlabelled file: an image (converted and resized to the model's input) or a
    /// WAV clip (through the saved features).
    pub fn load_file(&self, path: &Path) -> Result<Samples> {
        let values = match &self.input.pipeline {
            InputPipeline::Image {
                channels,
                height,
                width,
            } => sora_conv::images::read_image_file(path, *channels, (*height, *width))?,
            InputPipeline::Audio { features } => {
                let clip = sora_conv::audio::read_wav(path)?;
                FeatureExtractor::new(features.clone())?.extract(&clip)?
            }
        };
        Ok(self.unlabelled(values, vec![path.display().to_string()]))
    }

    /// Decodes uploaded files (images, or WAV clips) the way the model was trained.
    pub fn load_files(&self, files: &[NamedFile]) -> Result<Samples> {
        let mut values = Vec::new();
        for file in files {
            match &self.input.pipeline {
                InputPipeline::Image {
                    channels,
                    height,
                    width,
                } => values.extend(sora_conv::images::read_image_bytes(
                    &file.name,
                    &file.bytes,
                    *channels,
                    (*height, *width),
                )?),
                InputPipeline::Audio { features } => {
                    let clip = sora_conv::audio::read_wav_bytes(&file.name, &file.bytes)?;
                    values.extend(FeatureExtractor::new(features.clone())?.extract(&clip)?);
                }
            }
        }
        let sources = files.iter().map(|f| f.name.clone()).collect();
        Ok(self.unlabelled(values, sources))
    }

    fn unlabelled(&self, values: Vec<f32>, sources: Vec<String>) -> Samples {
        Samples {
            values,
            shape: self.sample_shape(),
            labels: vec![0; sources.len()],
            classes: Vec::new(),
            sources,
        }
    }

    /// The samples of an input: one image or WAV file, a class-folder tree or IDX files named
    /// by a path, or uploaded files.
    pub fn samples(&self, input: &Input) -> Result<Samples> {
        match input {
            Input::Path { data, labels } => {
                let single = data.is_file()
                    && labels.is_none()
                    && data
                        .extension()
                        .is_some_and(|e| SINGLE_FILES.iter().any(|x| e.eq_ignore_ascii_case(x)));
                if single {
                    return self.load_file(data);
                }
                let source = Source::detect(data, labels.as_deref()).ok_or_else(|| {
                    MediaError::NotMedia {
                        path: data.to_path_buf(),
                    }
                })?;
                self.load_data(&source)
            }
            Input::Files(files) => self.load_files(files),
            Input::Table(_) => Err(input.wrong(
                &self.info.kind,
                &format!("{} (files or a folder)", self.trained_on()),
            )),
        }
    }

    /// Class probabilities `[n, classes]` row-major for raw (unstandardised) samples.
    pub fn predict(&self, samples: &Samples) -> Result<Vec<f32>> {
        let mut s = samples.clone();
        self.input.normalize(&mut s);
        self.forward(s.values)
    }

    /// Class probabilities for standardised sample values, row-major.
    fn forward(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        let n = values.len() / self.sample_shape().iter().product::<usize>().max(1);
        let s = Samples {
            values,
            shape: self.sample_shape(),
            labels: vec![0; n],
            classes: Vec::new(),
            sources: Vec::new(),
        };
        let n_classes = self.input.classes.len();
        Ok(match &self.net {
            ConvNet::Conv2d(m) => sora_train::predict(
                m,
                &data_for::<4>(&s, n_classes)?,
                PREDICTION_BATCH,
                &self.device,
            )?,
            ConvNet::Conv1d(m) => sora_train::predict(
                m,
                &data_for::<3>(&s, n_classes)?,
                PREDICTION_BATCH,
                &self.device,
            )?,
        })
    }

    /// Metrics on raw labelled samples.
    pub fn evaluate(&self, samples: &Samples) -> Result<Metrics> {
        let mut s = samples.clone();
        self.input.normalize(&mut s);
        let n_classes = self.input.classes.len();
        Ok(match &self.net {
            ConvNet::Conv2d(m) => sora_train::evaluate(
                m,
                &data_for::<4>(&s, n_classes)?,
                PREDICTION_BATCH,
                &self.device,
            )?,
            ConvNet::Conv1d(m) => sora_train::evaluate(
                m,
                &data_for::<3>(&s, n_classes)?,
                PREDICTION_BATCH,
                &self.device,
            )?,
        })
    }
}

impl crate::Model for MediaModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> Result<Batch> {
        let mut samples = self.samples(input)?;
        self.input.normalize(&mut samples);
        Ok(Batch {
            key: "source",
            keys: samples.sources,
            rows: Rows::Dense {
                d: samples.shape.iter().product(),
                values: samples.values,
            },
            notes: Vec::new(),
            drift: None,
        })
    }

    fn score(&self, batch: &Batch) -> Result<Outputs> {
        let Rows::Dense { values, .. } = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: self.info.kind.clone(),
                expected: "standardised samples".into(),
            });
        };
        Ok(Outputs::classes(
            self.input.classes.clone(),
            self.forward(values.clone())?,
        ))
    }

    fn labelled(&self, input: &Input) -> Result<(Batch, sora_train::Targets)> {
        let mut samples = self.samples(input)?;
        if samples.classes.is_empty() {
            return Err(MediaError::Unlabelled {
                what: input.describe(),
            }
            .into());
        }
        let targets = sora_train::Targets::Classes {
            labels: samples.labels.clone(),
            n_classes: self.input.classes.len(),
        };
        self.input.normalize(&mut samples);
        let batch = Batch {
            key: "source",
            keys: samples.sources,
            rows: Rows::Dense {
                d: samples.shape.iter().product(),
                values: samples.values,
            },
            notes: Vec::new(),
            drift: None,
        };
        Ok((batch, targets))
    }

    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let samples = self.samples(input)?;
        if samples.classes.is_empty() {
            return Err(MediaError::Unlabelled {
                what: input.describe(),
            }
            .into());
        }
        let metrics = MediaModel::evaluate(self, &samples)?;
        Ok(crate::evaluation(
            &metrics,
            Some(&self.input.classes),
            samples.len(),
        ))
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        let samples = self.samples(input)?;
        let rows = request.rows(samples.len())?;
        self.explain_samples(&samples.subset(&rows), request)
    }
}
