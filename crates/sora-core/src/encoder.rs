//! The encoder contract, and the identity encoder of tabular inputs.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Int, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{LayerSummary, SpecError};

/// Maps a domain input (a batch of records, images, token ids, …) to features
/// `[batch, d_features]` that an [`Mlp`](crate::Mlp) head consumes.
///
/// Implement it for a new kind of input in an extension crate; the [`Model`](crate::Model),
/// the training loop and the explanation tools work with any encoder.
pub trait Encoder: Module + ModuleDisplay {
    /// A batch of inputs.
    type Input: Clone + Send;

    /// Width of the features this encoder produces, known before running it.
    fn d_features(&self) -> usize;

    /// Shape of one input sample, without the batch dimension (`[d_input]` for tables,
    /// `[channels, height, width]` for images).
    fn input_shape(&self) -> Vec<usize>;

    /// Encodes a batch.
    ///
    /// # Shapes
    /// - output: `[batch, d_features]`
    fn forward(&self, input: Self::Input) -> Tensor<2>;
}

/// An input that is one dense float tensor `[batch, …sample shape]`: a table, an image, a
/// spectrogram. Such inputs can travel flat, `[batch, Π sample shape]`, through code that
/// knows nothing of their layout (the explanation methods do).
pub trait DenseInput: Sized {
    /// Reshapes flat rows `[batch, Π shape]` into a batch of samples of `shape`.
    ///
    /// # Panics
    /// When `shape` does not have one dimension less than the tensor's rank, or its product
    /// differs from the width of `flat`: the caller passes the encoder's own
    /// [`input_shape`](Encoder::input_shape).
    fn from_flat(flat: Tensor<2>, shape: &[usize]) -> Self;
}

impl<const D: usize> DenseInput for Tensor<D> {
    fn from_flat(flat: Tensor<2>, shape: &[usize]) -> Self {
        assert_eq!(
            shape.len() + 1,
            D,
            "a sample shape of rank {} for a tensor of rank {D}",
            shape.len()
        );
        let mut dims = [0usize; D];
        dims[0] = flat.dims()[0];
        dims[1..].copy_from_slice(shape);
        flat.reshape(dims)
    }
}

/// An encoder whose forward pass can be cut after a layer with spatial feature maps, so that
/// the gradient of an output with respect to those maps can be taken (Grad-CAM).
///
/// Maps are `[batch, channels, height, width]`; one-dimensional encoders give `height = 1`.
pub trait FeatureMaps: Encoder {
    /// Names of the layers the pass can be cut after, in order (`encoder.blocks.0`, …).
    fn map_layers(&self) -> Vec<String>;

    /// Runs the encoder up to and including layer `layer` of [`map_layers`](Self::map_layers).
    ///
    /// # Shapes
    /// - output: `[batch, channels, height, width]`
    fn maps(&self, input: Self::Input, layer: usize) -> Tensor<4>;

    /// Runs the rest of the encoder on maps that [`maps`](Self::maps) returned for `layer`.
    ///
    /// # Shapes
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, d_features]`
    fn forward_from_maps(&self, maps: Tensor<4>, layer: usize) -> Tensor<2>;
}

/// What checking an encoder spec found: its input shape, the layers it will create, and the
/// width it hands to the head.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderPlan {
    /// Shape of one input sample (without the batch dimension).
    pub input_shape: Vec<usize>,
    /// One row per layer, in order (an encoder with no layers may give a single
    /// parameter-free row to show the input).
    pub layers: Vec<LayerSummary>,
    /// Width of the features.
    pub d_features: usize,
}

/// The declarative, serialisable spec of an [`Encoder`].
///
/// Extension crates implement it next to their encoder; a [`ModelSpec`](crate::ModelSpec)
/// is generic over it, so adding an encoder never touches this crate.
pub trait EncoderSpec: Clone + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The encoder this spec builds.
    type Encoder: Encoder;

    /// Validates every field and infers shapes, without allocating.
    ///
    /// Layer indices in errors start at `first_index` (the encoder's position in the model).
    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError>;

    /// Allocates the encoder on `device`. Call it only on a spec that passed [`check`](Self::check).
    fn init(&self, device: &Device) -> Self::Encoder;
}

/// The encoder of tabular data: features pass through unchanged.
#[derive(Module, Debug)]
pub struct Identity {
    /// Width of the input, which is also the width of the features.
    pub d_input: usize,
}

impl Encoder for Identity {
    type Input = Tensor<2>;

    fn d_features(&self) -> usize {
        self.d_input
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.d_input]
    }

    /// Returns the input.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_input]`
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        input
    }
}

/// Spec of the [`Identity`] encoder: `{ "kind": "identity", "d_input": 30 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// Always `"identity"`.
    pub kind: IdentityKind,
    /// Width of each input record (signed so that a negative width is reported by field).
    pub d_input: i64,
}

/// The `kind` tag of an [`IdentitySpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum IdentityKind {
    /// `"identity"`.
    #[default]
    #[serde(rename = "identity")]
    Identity,
}

impl IdentitySpec {
    /// An identity encoder for `d_input` features.
    pub fn new(d_input: usize) -> Self {
        Self {
            kind: IdentityKind::Identity,
            d_input: d_input as i64,
        }
    }
}

impl EncoderSpec for IdentitySpec {
    type Encoder = Identity;

    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError> {
        let d =
            crate::spec::positive_width(self.d_input, first_index, "Identity", "encoder.d_input")?;
        Ok(EncoderPlan {
            input_shape: vec![d],
            layers: vec![LayerSummary {
                name: "encoder".into(),
                kind: "Identity".into(),
                output_shape: vec![d],
                params: 0,
                trainable: 0,
            }],
            d_features: d,
        })
    }

    fn init(&self, _device: &Device) -> Identity {
        Identity {
            d_input: self.d_input as usize,
        }
    }
}

/// A batch of token sequences, padded to one length: the input of text encoders.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Token ids `[batch, length]` (padding positions hold the padding id, 0).
    pub ids: Tensor<2, Int>,
    /// 1 on real tokens, 0 on padding, `[batch, length]`.
    pub mask: Tensor<2>,
}
