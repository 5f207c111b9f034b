//! The multilayer-perceptron head.

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sora_kernels::linear::{Act, forward_layer};
use sora_kernels::mlp::forward_layers;

use crate::Activation;

/// Normalisation applied after each hidden linear layer, before the activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch normalisation over the batch (running statistics for evaluation).
    Batch,
    /// Layer normalisation over the features of each sample.
    Layer,
}

impl Norm {
    /// The PyTorch class of the layer, used in summaries.
    pub fn layer_kind(self) -> &'static str {
        match self {
            Norm::Batch => "BatchNorm1d",
            Norm::Layer => "LayerNorm",
        }
    }

    /// The spec name (`"batch"` or `"layer"`).
    pub fn name(self) -> &'static str {
        match self {
            Norm::Batch => "batch",
            Norm::Layer => "layer",
        }
    }
}

/// Configuration of an [`Mlp`]: `d_input → d_hidden[0] → … → d_output`.
///
/// Each hidden layer is `Linear → [norm] → activation → [dropout]`; the output layer is a
/// plain `Linear` (logits for classification, values for regression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Width of the input features.
    pub d_input: usize,
    /// Widths of the hidden layers, in order (may be empty: a linear model).
    pub d_hidden: Vec<usize>,
    /// Width of the output.
    pub d_output: usize,
    /// Activation after each hidden layer.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout probability after each hidden activation (0 disables it).
    #[serde(default)]
    pub dropout: f64,
    /// Optional normalisation after each hidden linear layer.
    #[serde(default)]
    pub norm: Option<Norm>,
}

impl MlpConfig {
    /// A ReLU MLP without dropout or normalisation.
    pub fn new(d_input: usize, d_hidden: Vec<usize>, d_output: usize) -> Self {
        Self {
            d_input,
            d_hidden,
            d_output,
            activation: Activation::Relu,
            dropout: 0.0,
            norm: None,
        }
    }

    /// Sets the hidden activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets the normalisation.
    pub fn with_norm(mut self, norm: Option<Norm>) -> Self {
        self.norm = norm;
        self
    }

    /// Allocates the MLP on `device`. Widths are assumed valid: build the config through a
    /// checked [`ModelSpec`](crate::ModelSpec) to get typed errors instead of Burn's panics.
    pub fn init(&self, device: &Device) -> Mlp {
        let mut d_in = self.d_input;
        let hidden = self
            .d_hidden
            .iter()
            .map(|&d| {
                let block = MlpBlock {
                    linear: LinearConfig::new(d_in, d).init(device),
                    batch_norm: (self.norm == Some(Norm::Batch))
                        .then(|| BatchNormConfig::new(d).init(device)),
                    layer_norm: (self.norm == Some(Norm::Layer))
                        .then(|| LayerNormConfig::new(d).init(device)),
                    dropout: (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init()),
                    activation: self.activation,
                };
                d_in = d;
                block
            })
            .collect();
        Mlp {
            hidden,
            output: LinearConfig::new(d_in, self.d_output).init(device),
        }
    }
}

/// One hidden layer of an [`Mlp`]: `Linear → [norm] → activation → [dropout]`.
#[derive(Module, Debug)]
pub struct MlpBlock {
    /// The affine map (`weight` stored `[d_in, d_out]`; exported transposed, as PyTorch does).
    pub linear: Linear,
    /// Batch normalisation, when the config asks for it.
    pub batch_norm: Option<BatchNorm>,
    /// Layer normalisation, when the config asks for it.
    pub layer_norm: Option<LayerNorm>,
    /// Dropout, when its probability is positive.
    pub dropout: Option<Dropout>,
    /// The activation (no parameters).
    #[module(skip)]
    pub activation: Activation,
}

impl MlpBlock {
    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, d_in]`
    /// - output: `[batch, d_out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        // Without a norm between them, the product, the bias and the activation are one fused
        // operation (`sora_kernels::linear`); with one, the activation follows the norm.
        let x = match (&self.batch_norm, &self.layer_norm) {
            (None, None) => forward_layer(&self.linear, x, self.activation.fused()),
            (batch_norm, layer_norm) => {
                let mut x = forward_layer(&self.linear, x, Act::Identity);
                if let Some(norm) = batch_norm {
                    x = norm.forward(x);
                }
                if let Some(norm) = layer_norm {
                    x = norm.forward(x);
                }
                self.activation.forward(x)
            }
        };
        match &self.dropout {
            Some(dropout) => dropout.forward(x),
            None => x,
        }
    }
}

/// A multilayer perceptron: the head of every Sora model.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{Activation, MlpConfig};
///
/// let device = Device::flex();
/// let mlp = MlpConfig::new(4, vec![16, 8], 3)
///     .with_activation(Activation::Gelu)
///     .init(&device);
/// let y = mlp.forward(Tensor::<2>::ones([5, 4], &device));
/// assert_eq!(y.dims(), [5, 3]);
/// ```
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers, in order.
    pub hidden: Vec<MlpBlock>,
    /// Output layer (no activation).
    pub output: Linear,
}

impl Mlp {
    /// Applies the MLP.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        // Scoring (no autodiff: dropout is the identity) through blocks without norms is one
        // operation for the whole stack: each tile of rows through every layer while in cache.
        let plain = !x.device().is_autodiff()
            && self
                .hidden
                .iter()
                .all(|b| b.batch_norm.is_none() && b.layer_norm.is_none());
        if plain {
            let layers: Vec<(&Linear, Act)> = self
                .hidden
                .iter()
                .map(|b| (&b.linear, b.activation.fused()))
                .chain([(&self.output, Act::Identity)])
                .collect();
            return forward_layers(x, &layers);
        }
        let x = self.hidden.iter().fold(x, |x, block| block.forward(x));
        forward_layer(&self.output, x, Act::Identity)
    }
}
