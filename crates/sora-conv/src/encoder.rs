//! Convolution encoders: blocks of `conv → [batch norm] → activation → [pool] → [dropout]`,
//! then a global pooling (or a flatten) into the MLP head.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool1d, AvgPool1dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sora_core::{
    Activation, Encoder, EncoderPlan, EncoderSpec, FeatureMaps, LayerSummary, SpecError,
    positive_width,
};
use sora_kernels::conv::{forward_conv1d, forward_conv2d};
use sora_kernels::linear::Act;

/// Pooling inside a block (window = stride = `pool_size`) or at the end of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Maximum over the window.
    Max,
    /// Mean over the window.
    Avg,
}

/// How the last block's maps become the features the head consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GlobalPool {
    /// Mean over every position: `d_features = channels`.
    #[default]
    Avg,
    /// Maximum over every position: `d_features = channels`.
    Max,
    /// All positions, in order: `d_features = channels × positions`.
    Flatten,
}

/// One convolution block of a spec.
///
/// `{ "channels": 16, "kernel": 3, "pool": "max" }` is a 3×3 (or width-3) convolution to 16
/// channels with "same" padding and stride 1, ReLU, then 2×2 max pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvBlockSpec {
    /// Output channels of the convolution.
    pub channels: i64,
    /// Kernel size (square for images).
    pub kernel: i64,
    /// Stride of the convolution (1 when absent).
    #[serde(default = "one")]
    pub stride: i64,
    /// Zero padding on every side; absent means `kernel / 2` ("same" size for odd kernels at
    /// stride 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<i64>,
    /// Activation after the convolution (and batch norm): `relu` (default), `gelu`, `tanh`, …
    #[serde(default = "relu")]
    pub activation: String,
    /// Batch normalisation between the convolution and the activation.
    #[serde(default)]
    pub batch_norm: bool,
    /// Pooling after the activation, with window and stride `pool_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    /// Pooling window (2 when absent).
    #[serde(default = "two")]
    pub pool_size: i64,
    /// Dropout probability at the end of the block, in `[0, 1)`.
    #[serde(default)]
    pub dropout: f64,
}

fn one() -> i64 {
    1
}

fn two() -> i64 {
    2
}

fn relu() -> String {
    Activation::Relu.name().to_string()
}

impl ConvBlockSpec {
    /// A block of `channels` outputs with a `kernel`-wide kernel, "same" padding, ReLU and
    /// no pooling.
    pub fn new(channels: usize, kernel: usize) -> Self {
        Self {
            channels: channels as i64,
            kernel: kernel as i64,
            stride: 1,
            padding: None,
            activation: relu(),
            batch_norm: false,
            pool: None,
            pool_size: 2,
            dropout: 0.0,
        }
    }

    /// Adds pooling of window `size`.
    pub fn with_pool(mut self, pool: Pool, size: usize) -> Self {
        self.pool = Some(pool);
        self.pool_size = size as i64;
        self
    }

    /// Sets the zero padding.
    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = Some(padding as i64);
        self
    }

    /// Sets the stride.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride as i64;
        self
    }

    /// Turns batch normalisation on or off.
    pub fn with_batch_norm(mut self, on: bool) -> Self {
        self.batch_norm = on;
        self
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation.name().to_string();
        self
    }
}

/// A block that passed its checks, with sizes resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Block {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    activation: Activation,
    batch_norm: bool,
    pool: Option<(Pool, usize)>,
    dropout: f64,
}

/// Checks blocks over `spatial` input dims (one for audio, two for images), appends their
/// summary rows, and returns the resolved blocks with the last maps' shape `[c, …spatial]`.
fn plan_blocks(
    blocks: &[ConvBlockSpec],
    input: &[usize],
    first_index: usize,
    rows: &mut Vec<LayerSummary>,
) -> Result<(Vec<Block>, Vec<usize>), SpecError> {
    let rank = input.len() - 1;
    let suffix = if rank == 1 { "1d" } else { "2d" };
    let mut c = input[0];
    let mut spatial = input[1..].to_vec();
    let mut resolved = Vec::with_capacity(blocks.len());
    for (b, spec) in blocks.iter().enumerate() {
        let at = |field: &str| format!("encoder.blocks[{b}].{field}");
        let conv_kind = format!("Conv{suffix}");
        let index = first_index + rows.len();
        let invalid = |field: &str, expected: String, found: String| SpecError::InvalidField {
            index,
            kind: conv_kind.clone(),
            field: at(field),
            expected,
            found,
        };
        let c_out = positive_width(spec.channels, index, &conv_kind, &at("channels"))?;
        let kernel = positive_width(spec.kernel, index, &conv_kind, &at("kernel"))?;
        let stride = positive_width(spec.stride, index, &conv_kind, &at("stride"))?;
        let padding = match spec.padding {
            None => kernel / 2,
            Some(p) if (0..=spec.kernel).contains(&p) => p as usize,
            Some(p) => {
                return Err(invalid(
                    "padding",
                    format!("0 ..= {kernel} (the kernel)"),
                    p.to_string(),
                ));
            }
        };
        for (axis, len) in spatial.iter_mut().enumerate() {
            let padded = *len + 2 * padding;
            if padded < kernel {
                return Err(invalid(
                    "kernel",
                    format!("at most {padded} (input size {len} plus padding, axis {axis})"),
                    kernel.to_string(),
                ));
            }
            *len = (padded - kernel) / stride + 1;
        }
        let params = (c * kernel.pow(rank as u32) * c_out + c_out) as u64;
        push(
            rows,
            format!("encoder.blocks.{b}.conv"),
            &conv_kind,
            c_out,
            &spatial,
            params,
            params,
        );
        let activation =
            Activation::from_name(&spec.activation).ok_or_else(|| SpecError::InvalidField {
                index: first_index + rows.len(),
                kind: "activation".into(),
                field: at("activation"),
                expected: format!(
                    "one of {}",
                    Activation::ALL.map(Activation::name).join(", ")
                ),
                found: format!("{:?}", spec.activation),
            })?;
        if spec.batch_norm {
            let (all, trainable) = (4 * c_out as u64, 2 * c_out as u64);
            let kind = format!("BatchNorm{suffix}");
            push(
                rows,
                format!("encoder.blocks.{b}.norm"),
                &kind,
                c_out,
                &spatial,
                all,
                trainable,
            );
        }
        let name = format!("encoder.blocks.{b}.activation");
        push(rows, name, activation.layer_kind(), c_out, &spatial, 0, 0);
        let pool = match spec.pool {
            None => None,
            Some(kind) => {
                let layer = match kind {
                    Pool::Max => format!("MaxPool{suffix}"),
                    Pool::Avg => format!("AvgPool{suffix}"),
                };
                let index = first_index + rows.len();
                let size = positive_width(spec.pool_size, index, &layer, &at("pool_size"))?;
                for (axis, len) in spatial.iter_mut().enumerate() {
                    if *len < size {
                        return Err(SpecError::InvalidField {
                            index,
                            kind: layer,
                            field: at("pool_size"),
                            expected: format!("at most {len} (the maps' size on axis {axis})"),
                            found: size.to_string(),
                        });
                    }
                    *len /= size;
                }
                push(
                    rows,
                    format!("encoder.blocks.{b}.pool"),
                    &layer,
                    c_out,
                    &spatial,
                    0,
                    0,
                );
                Some((kind, size))
            }
        };
        if !(spec.dropout.is_finite() && (0.0..1.0).contains(&spec.dropout)) {
            return Err(SpecError::InvalidField {
                index: first_index + rows.len(),
                kind: "Dropout".into(),
                field: at("dropout"),
                expected: "a probability in [0, 1)".into(),
                found: spec.dropout.to_string(),
            });
        }
        if spec.dropout > 0.0 {
            let name = format!("encoder.blocks.{b}.dropout");
            push(rows, name, "Dropout", c_out, &spatial, 0, 0);
        }
        resolved.push(Block {
            c_in: c,
            c_out,
            kernel,
            stride,
            padding,
            activation,
            batch_norm: spec.batch_norm,
            pool,
            dropout: spec.dropout,
        });
        c = c_out;
    }
    let mut shape = vec![c];
    shape.extend(spatial);
    Ok((resolved, shape))
}

fn push(
    rows: &mut Vec<LayerSummary>,
    name: String,
    kind: &str,
    channels: usize,
    spatial: &[usize],
    params: u64,
    trainable: u64,
) {
    let mut output_shape = vec![channels];
    output_shape.extend_from_slice(spatial);
    rows.push(LayerSummary {
        name,
        kind: kind.to_string(),
        output_shape,
        params,
        trainable,
    });
}

/// Checks the input shape, the blocks and the global pooling; the plan of a conv encoder.
fn plan(
    input: &[i64],
    blocks: &[ConvBlockSpec],
    global_pool: GlobalPool,
    first_index: usize,
    rank: usize,
) -> Result<(Vec<Block>, EncoderPlan), SpecError> {
    let kind = if rank == 1 { "Conv1d" } else { "Conv2d" };
    let names = if rank == 1 {
        "[channels, length]"
    } else {
        "[channels, height, width]"
    };
    if input.len() != rank + 1 {
        return Err(SpecError::InvalidField {
            index: first_index,
            kind: kind.into(),
            field: "encoder.input".into(),
            expected: format!("{} sizes {names}", rank + 1),
            found: format!("{input:?}"),
        });
    }
    let input = input
        .iter()
        .enumerate()
        .map(|(i, &d)| positive_width(d, first_index, kind, &format!("encoder.input[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if blocks.is_empty() {
        return Err(SpecError::InvalidField {
            index: first_index,
            kind: kind.into(),
            field: "encoder.blocks".into(),
            expected: "at least one block".into(),
            found: "[]".into(),
        });
    }
    let mut rows = Vec::new();
    let (resolved, last) = plan_blocks(blocks, &input, first_index, &mut rows)?;
    let d_features = match global_pool {
        GlobalPool::Avg | GlobalPool::Max => last[0],
        GlobalPool::Flatten => last.iter().product(),
    };
    let pool_kind = match (global_pool, rank) {
        (GlobalPool::Avg, 1) => "AdaptiveAvgPool1d",
        (GlobalPool::Avg, _) => "AdaptiveAvgPool2d",
        (GlobalPool::Max, 1) => "AdaptiveMaxPool1d",
        (GlobalPool::Max, _) => "AdaptiveMaxPool2d",
        (GlobalPool::Flatten, _) => "Flatten",
    };
    rows.push(LayerSummary {
        name: "encoder.global_pool".into(),
        kind: pool_kind.into(),
        output_shape: vec![d_features],
        params: 0,
        trainable: 0,
    });
    Ok((
        resolved,
        EncoderPlan {
            input_shape: input,
            layers: rows,
            d_features,
        },
    ))
}

/// Spec of a [`Conv2dEncoder`], for images and spectrograms:
///
/// ```json
/// { "kind": "conv2d", "input": [1, 28, 28],
///   "blocks": [ { "channels": 16, "kernel": 3, "pool": "max" },
///               { "channels": 32, "kernel": 3 } ],
///   "global_pool": "avg" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    /// Always `"conv2d"`.
    pub kind: Conv2dKind,
    /// Shape of one input: `[channels, height, width]`.
    pub input: Vec<i64>,
    /// The blocks, in order (at least one).
    pub blocks: Vec<ConvBlockSpec>,
    /// How the last maps become features (`avg` when absent).
    #[serde(default)]
    pub global_pool: GlobalPool,
}

/// The `kind` tag of a [`Conv2dSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Conv2dKind {
    /// `"conv2d"`.
    #[default]
    #[serde(rename = "conv2d")]
    Conv2d,
}

impl Conv2dSpec {
    /// A spec over inputs `[channels, height, width]`, with global average pooling.
    pub fn new(input: [usize; 3], blocks: Vec<ConvBlockSpec>) -> Self {
        Self {
            kind: Conv2dKind::Conv2d,
            input: input.iter().map(|&d| d as i64).collect(),
            blocks,
            global_pool: GlobalPool::Avg,
        }
    }

    /// Sets the global pooling.
    pub fn with_global_pool(mut self, pool: GlobalPool) -> Self {
        self.global_pool = pool;
        self
    }
}

/// Spec of a [`Conv1dEncoder`], for waveforms and frames of audio features:
///
/// ```json
/// { "kind": "conv1d", "input": [13, 101],
///   "blocks": [ { "channels": 64, "kernel": 5, "pool": "max" } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dSpec {
    /// Always `"conv1d"`.
    pub kind: Conv1dKind,
    /// Shape of one input: `[channels, length]`.
    pub input: Vec<i64>,
    /// The blocks, in order (at least one).
    pub blocks: Vec<ConvBlockSpec>,
    /// How the last maps become features (`avg` when absent).
    #[serde(default)]
    pub global_pool: GlobalPool,
}

/// The `kind` tag of a [`Conv1dSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Conv1dKind {
    /// `"conv1d"`.
    #[default]
    #[serde(rename = "conv1d")]
    Conv1d,
}

impl Conv1dSpec {
    /// A spec over inputs `[channels, length]`, with global average pooling.
    pub fn new(input: [usize; 2], blocks: Vec<ConvBlockSpec>) -> Self {
        Self {
            kind: Conv1dKind::Conv1d,
            input: input.iter().map(|&d| d as i64).collect(),
            blocks,
            global_pool: GlobalPool::Avg,
        }
    }

    /// Sets the global pooling.
    pub fn with_global_pool(mut self, pool: GlobalPool) -> Self {
        self.global_pool = pool;
        self
    }
}

/// One block of a [`Conv2dEncoder`].
#[derive(Module, Debug)]
pub struct ConvBlock2d {
    /// The convolution.
    pub conv: Conv2d,
    /// Optional batch normalisation.
    pub norm: Option<BatchNorm>,
    /// Optional max pooling.
    pub max_pool: Option<MaxPool2d>,
    /// Optional average pooling.
    pub avg_pool: Option<AvgPool2d>,
    /// Optional dropout.
    pub dropout: Option<Dropout>,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
}

impl ConvBlock2d {
    fn new(b: &Block, device: &Device) -> Self {
        let p = b.padding;
        let pool = |kind| b.pool.filter(|(k, _)| *k == kind).map(|(_, s)| [s, s]);
        Self {
            conv: Conv2dConfig::new([b.c_in, b.c_out], [b.kernel, b.kernel])
                .with_stride([b.stride, b.stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(device),
            norm: b
                .batch_norm
                .then(|| BatchNormConfig::new(b.c_out).init(device)),
            max_pool: pool(Pool::Max).map(|s| MaxPool2dConfig::new(s).init()),
            avg_pool: pool(Pool::Avg).map(|s| AvgPool2dConfig::new(s).init()),
            dropout: (b.dropout > 0.0).then(|| DropoutConfig::new(b.dropout).init()),
            activation: b.activation,
        }
    }

    /// Convolution, normalisation and activation: the block's feature maps.
    fn maps(&self, x: Tensor<4>) -> Tensor<4> {
        // Without a norm, the convolution, the bias and the activation are one fused operation
        // (`sora_kernels::conv`); with one, the activation follows the norm.
        match &self.norm {
            None => forward_conv2d(&self.conv, x, self.activation.fused()),
            Some(norm) => {
                let x = forward_conv2d(&self.conv, x, Act::Identity);
                self.activation.forward(norm.forward(x))
            }
        }
    }

    /// Pooling and dropout after the maps.
    fn finish(&self, mut x: Tensor<4>) -> Tensor<4> {
        if let Some(pool) = &self.max_pool {
            x = pool.forward(x);
        }
        if let Some(pool) = &self.avg_pool {
            x = pool.forward(x);
        }
        match &self.dropout {
            Some(dropout) => dropout.forward(x),
            None => x,
        }
    }
}

/// Images (or spectrograms) `[batch, channels, height, width]` → features.
#[derive(Module, Debug)]
pub struct Conv2dEncoder {
    /// The blocks, in order.
    pub blocks: Vec<ConvBlock2d>,
    /// The global pooling.
    #[module(skip)]
    pub global_pool: GlobalPool,
    /// Shape of one input `[channels, height, width]`.
    #[module(skip)]
    pub input: [usize; 3],
    /// Width of the features.
    #[module(skip)]
    pub d_features: usize,
}

impl Conv2dEncoder {
    fn pool(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        match self.global_pool {
            GlobalPool::Avg => x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]),
            GlobalPool::Max => x.reshape([b, c, h * w]).max_dim(2).reshape([b, c]),
            GlobalPool::Flatten => x.reshape([b, c * h * w]),
        }
    }
}

impl Encoder for Conv2dEncoder {
    type Input = Tensor<4>;

    fn d_features(&self) -> usize {
        self.d_features
    }

    fn input_shape(&self) -> Vec<usize> {
        self.input.to_vec()
    }

    /// # Shapes
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, d_features]`
    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for block in &self.blocks {
            x = block.finish(block.maps(x));
        }
        self.pool(x)
    }
}

impl FeatureMaps for Conv2dEncoder {
    fn map_layers(&self) -> Vec<String> {
        (0..self.blocks.len())
            .map(|b| format!("encoder.blocks.{b}"))
            .collect()
    }

    /// # Panics
    /// When `layer` is not below the number of blocks.
    fn maps(&self, mut x: Tensor<4>, layer: usize) -> Tensor<4> {
        for block in &self.blocks[..layer] {
            x = block.finish(block.maps(x));
        }
        self.blocks[layer].maps(x)
    }

    fn forward_from_maps(&self, maps: Tensor<4>, layer: usize) -> Tensor<2> {
        let mut x = self.blocks[layer].finish(maps);
        for block in &self.blocks[layer + 1..] {
            x = block.finish(block.maps(x));
        }
        self.pool(x)
    }
}

impl EncoderSpec for Conv2dSpec {
    type Encoder = Conv2dEncoder;

    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError> {
        Ok(plan(&self.input, &self.blocks, self.global_pool, first_index, 2)?.1)
    }

    fn init(&self, device: &Device) -> Conv2dEncoder {
        let (blocks, plan) = plan(&self.input, &self.blocks, self.global_pool, 0, 2)
            .expect("init is called on a checked spec");
        let i = &plan.input_shape;
        Conv2dEncoder {
            blocks: blocks.iter().map(|b| ConvBlock2d::new(b, device)).collect(),
            global_pool: self.global_pool,
            input: [i[0], i[1], i[2]],
            d_features: plan.d_features,
        }
    }
}

/// One block of a [`Conv1dEncoder`].
#[derive(Module, Debug)]
pub struct ConvBlock1d {
    /// The convolution.
    pub conv: Conv1d,
    /// Optional batch normalisation.
    pub norm: Option<BatchNorm>,
    /// Optional max pooling.
    pub max_pool: Option<MaxPool1d>,
    /// Optional average pooling.
    pub avg_pool: Option<AvgPool1d>,
    /// Optional dropout.
    pub dropout: Option<Dropout>,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
}

impl ConvBlock1d {
    fn new(b: &Block, device: &Device) -> Self {
        let p = b.padding;
        let pool = |kind| b.pool.filter(|(k, _)| *k == kind).map(|(_, s)| s);
        Self {
            conv: Conv1dConfig::new(b.c_in, b.c_out, b.kernel)
                .with_stride(b.stride)
                .with_padding(PaddingConfig1d::Explicit(p, p))
                .init(device),
            norm: b
                .batch_norm
                .then(|| BatchNormConfig::new(b.c_out).init(device)),
            max_pool: pool(Pool::Max).map(|s| MaxPool1dConfig::new(s).init()),
            avg_pool: pool(Pool::Avg).map(|s| AvgPool1dConfig::new(s).init()),
            dropout: (b.dropout > 0.0).then(|| DropoutConfig::new(b.dropout).init()),
            activation: b.activation,
        }
    }

    fn maps(&self, x: Tensor<3>) -> Tensor<3> {
        // As `ConvBlock2d::maps`: fused unless a norm sits between convolution and activation.
        match &self.norm {
            None => forward_conv1d(&self.conv, x, self.activation.fused()),
            Some(norm) => {
                let x = forward_conv1d(&self.conv, x, Act::Identity);
                self.activation.forward(norm.forward(x))
            }
        }
    }

    fn finish(&self, mut x: Tensor<3>) -> Tensor<3> {
        if let Some(pool) = &self.max_pool {
            x = pool.forward(x);
        }
        if let Some(pool) = &self.avg_pool {
            x = pool.forward(x);
        }
        match &self.dropout {
            Some(dropout) => dropout.forward(x),
            None => x,
        }
    }
}

/// Sequences (waveforms, frames of audio features) `[batch, channels, length]` → features.
#[derive(Module, Debug)]
pub struct Conv1dEncoder {
    /// The blocks, in order.
    pub blocks: Vec<ConvBlock1d>,
    /// The global pooling.
    #[module(skip)]
    pub global_pool: GlobalPool,
    /// Shape of one input `[channels, length]`.
    #[module(skip)]
    pub input: [usize; 2],
    /// Width of the features.
    #[module(skip)]
    pub d_features: usize,
}

impl Conv1dEncoder {
    fn pool(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, c, l] = x.dims();
        match self.global_pool {
            GlobalPool::Avg => x.mean_dim(2).reshape([b, c]),
            GlobalPool::Max => x.max_dim(2).reshape([b, c]),
            GlobalPool::Flatten => x.reshape([b, c * l]),
        }
    }
}

impl Encoder for Conv1dEncoder {
    type Input = Tensor<3>;

    fn d_features(&self) -> usize {
        self.d_features
    }

    fn input_shape(&self) -> Vec<usize> {
        self.input.to_vec()
    }

    /// # Shapes
    /// - input: `[batch, channels, length]`
    /// - output: `[batch, d_features]`
    fn forward(&self, mut x: Tensor<3>) -> Tensor<2> {
        for block in &self.blocks {
            x = block.finish(block.maps(x));
        }
        self.pool(x)
    }
}

impl FeatureMaps for Conv1dEncoder {
    fn map_layers(&self) -> Vec<String> {
        (0..self.blocks.len())
            .map(|b| format!("encoder.blocks.{b}"))
            .collect()
    }

    /// Maps `[batch, channels, 1, length]`.
    ///
    /// # Panics
    /// When `layer` is not below the number of blocks.
    fn maps(&self, mut x: Tensor<3>, layer: usize) -> Tensor<4> {
        for block in &self.blocks[..layer] {
            x = block.finish(block.maps(x));
        }
        self.blocks[layer].maps(x).unsqueeze_dim::<4>(2)
    }

    fn forward_from_maps(&self, maps: Tensor<4>, layer: usize) -> Tensor<2> {
        let mut x = self.blocks[layer].finish(maps.squeeze_dim::<3>(2));
        for block in &self.blocks[layer + 1..] {
            x = block.finish(block.maps(x));
        }
        self.pool(x)
    }
}

impl EncoderSpec for Conv1dSpec {
    type Encoder = Conv1dEncoder;

    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError> {
        Ok(plan(&self.input, &self.blocks, self.global_pool, first_index, 1)?.1)
    }

    fn init(&self, device: &Device) -> Conv1dEncoder {
        let (blocks, plan) = plan(&self.input, &self.blocks, self.global_pool, 0, 1)
            .expect("init is called on a checked spec");
        let i = &plan.input_shape;
        Conv1dEncoder {
            blocks: blocks.iter().map(|b| ConvBlock1d::new(b, device)).collect(),
            global_pool: self.global_pool,
            input: [i[0], i[1]],
            d_features: plan.d_features,
        }
    }
}
