//! The encoder contract, and the identity encoder of tabular inputs.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};
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

    /// Encodes a batch.
    ///
    /// # Shapes
    /// - output: `[batch, d_features]`
    fn forward(&self, input: Self::Input) -> Tensor<2>;
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
