//! Activation functions of the [`Mlp`](crate::Mlp) head.

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};
use sora_kernels::linear::Act;

/// An element-wise activation, named in specs in snake case (`"relu"`, `"leaky_relu"`, …).
///
/// Parameter-free apart from the leaky ReLU slope, so it is stored by value in the layer
/// and carries no weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)` — the default.
    #[default]
    Relu,
    /// Gaussian error linear unit (exact, erf-based; PyTorch's default `GELU`).
    Gelu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// `x` for `x > 0`, `0.01 x` otherwise (PyTorch's default negative slope).
    LeakyRelu,
    /// `x · sigmoid(x)`, also called swish.
    Silu,
}

impl Activation {
    /// Every activation, in the order they are documented.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::LeakyRelu,
        Activation::Silu,
    ];

    /// The spec name (`"relu"`, `"leaky_relu"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Silu => "silu",
        }
    }

    /// Parses a spec name; `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The PyTorch class of the same function, used in summaries.
    pub fn layer_kind(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Gelu => "GELU",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::LeakyRelu => "LeakyReLU",
            Activation::Silu => "SiLU",
        }
    }

    /// Applies the activation element-wise.
    ///
    /// # Shapes
    /// - input: any shape `[...]`
    /// - output: the same shape
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
            Activation::Silu => activation::silu(x),
        }
    }
}

impl Activation {
    /// The same function as the epilogue of a fused linear layer (`sora_kernels::linear`).
    pub fn fused(self) -> Act {
        match self {
            Activation::Relu => Act::Relu,
            Activation::Gelu => Act::Gelu,
            Activation::Tanh => Act::Tanh,
            Activation::Sigmoid => Act::Sigmoid,
            Activation::LeakyRelu => Act::LeakyRelu(0.01),
            Activation::Silu => Act::Silu,
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
