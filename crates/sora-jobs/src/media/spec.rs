//! The convolutional model specs of images and audio, and the default model of each.

use std::path::Path;

use sora_conv::{Conv1dSpec, Conv2dSpec, ConvBlockSpec, GlobalPool, Pool};
use sora_core::{HeadSpec, ModelSpec, SpecError, Task};

use crate::Result;

/// A convolutional model spec of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ConvSpec {
    /// Images and spectrograms.
    Conv2d(ModelSpec<Conv2dSpec>),
    /// Waveforms and frames of features.
    Conv1d(ModelSpec<Conv1dSpec>),
}

impl ConvSpec {
    /// The `encoder.kind` of a spec file (JSON, or TOML by extension), when it has one.
    pub fn encoder_kind(path: &Path) -> Result<Option<String>> {
        let text = sora_core::weights::read_bounded_text(path, sora_core::weights::MAX_JSON_BYTES)
            .map_err(|source| SpecError::Io {
                file: path.to_path_buf(),
                source,
            })?;
        Ok(if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str::<toml::Value>(&text)
                .ok()
                .and_then(|v| Some(v.get("encoder")?.get("kind")?.as_str()?.to_string()))
        } else {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| Some(v["encoder"]["kind"].as_str()?.to_string()))
        })
    }

    /// Reads a spec file (JSON, or TOML by extension); `encoder.kind` picks the kind.
    pub fn from_file(path: &Path) -> Result<ConvSpec> {
        let kind = Self::encoder_kind(path)?;
        match kind.as_deref() {
            Some("conv1d") => Ok(ConvSpec::Conv1d(ModelSpec::from_file(path)?)),
            Some("conv2d") => Ok(ConvSpec::Conv2d(ModelSpec::from_file(path)?)),
            other => Err(super::MediaError::NotConvSpec {
                file: path.to_path_buf(),
                found: other.map(str::to_string),
            }
            .into()),
        }
    }

    /// The spec as pretty JSON.
    pub fn to_json_string(&self) -> String {
        match self {
            ConvSpec::Conv2d(s) => s.to_json_string(),
            ConvSpec::Conv1d(s) => s.to_json_string(),
        }
    }

    /// The model's layer summary (checks the spec).
    pub fn summary(&self) -> Result<sora_core::Summary> {
        Ok(match self {
            ConvSpec::Conv2d(s) => s.check()?.summary().clone(),
            ConvSpec::Conv1d(s) => s.check()?.summary().clone(),
        })
    }

    /// Shape of one input sample, as the encoder takes it.
    pub(super) fn input_shape(&self) -> Result<Vec<usize>> {
        Ok(match self {
            ConvSpec::Conv2d(s) => s.check()?.encoder_plan().input_shape.clone(),
            ConvSpec::Conv1d(s) => s.check()?.encoder_plan().input_shape.clone(),
        })
    }
}

/// The default model for samples of `shape` and `n_classes` classes.
///
/// - `[c, h, w]` (images): blocks of 3×3 convolution, batch norm, ReLU and 2×2 max pooling,
///   32 → 64 channels, and a third of 128 when the image is at least 24 pixels on its shorter
///   side; global average pooling; a head with one hidden layer of 64.
/// - `[rows, frames]` (audio features): 1-D convolutions along time with the mel bands (or
///   coefficients) as channels — widths 5, 5, 3 to 32 → 64 → 64 channels, ReLU, max pooling
///   after the first two — and the maximum over time of each channel; waveforms
///   `[1, samples]` get 1-D blocks of width 9 with batch norm and 4× pooling instead.
pub fn default_spec(shape: &[usize], n_classes: usize) -> ConvSpec {
    let task = Task::Classification {
        n_classes: n_classes as i64,
    };
    let block = |c| {
        ConvBlockSpec::new(c, 3)
            .with_batch_norm(true)
            .with_pool(Pool::Max, 2)
    };
    let head = HeadSpec::new(&[64]);
    match shape {
        [c, h, w] => {
            let mut blocks = vec![block(32), block(64)];
            if (*h).min(*w) >= 24 {
                blocks.push(block(128));
            }
            ConvSpec::Conv2d(ModelSpec::new(
                Conv2dSpec::new([*c, *h, *w], blocks),
                head,
                task,
            ))
        }
        [1, samples] => {
            let wave = |c| {
                ConvBlockSpec::new(c, 9)
                    .with_batch_norm(true)
                    .with_pool(Pool::Max, 4)
            };
            let blocks = vec![wave(16), wave(32), wave(64), wave(64)];
            ConvSpec::Conv1d(ModelSpec::new(
                Conv1dSpec::new([1, *samples], blocks).with_global_pool(GlobalPool::Avg),
                head,
                task,
            ))
        }
        [rows, frames] => {
            let frames_block = |c, k| ConvBlockSpec::new(c, k).with_pool(Pool::Max, 2);
            let blocks = vec![
                frames_block(32, 5),
                frames_block(64, 5),
                ConvBlockSpec::new(64, 3),
            ];
            ConvSpec::Conv1d(ModelSpec::new(
                Conv1dSpec::new([*rows, *frames], blocks).with_global_pool(GlobalPool::Max),
                head,
                task,
            ))
        }
        _ => unreachable!("samples are images [c, h, w] or features [rows, frames]"),
    }
}
