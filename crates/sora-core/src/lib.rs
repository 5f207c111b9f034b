//! # sora-core
//!
//! The small, stable core of Sora: the [`Mlp`] head and its activations, the [`Encoder`]
//! contract, the [`Model`] that composes an encoder with a head, the declarative
//! [`ModelSpec`] that is checked up front (shape inference and parameter counts without
//! running anything), the Keras-like [`Summary`], and PyTorch-compatible safetensors weights.
//!
//! Library code never chooses a backend: every constructor takes a `&Device`.
//!
//! ```
//! use burn::prelude::*;
//! use sora_core::{IdentitySpec, ModelSpec};
//!
//! # fn main() -> Result<(), sora_core::SpecError> {
//! let spec: ModelSpec<IdentitySpec> = ModelSpec::from_json_str(r#"{
//!     "encoder": { "kind": "identity", "d_input": 4 },
//!     "head": { "d_hidden": [8], "activation": "relu" },
//!     "task": { "kind": "classification", "n_classes": 3 }
//! }"#)?;
//! let checked = spec.check()?;
//! assert_eq!(checked.summary().total_params, 4 * 8 + 8 + 8 * 3 + 3);
//!
//! let device = Device::flex();
//! let model = checked.init(&device);
//! let logits = model.forward(Tensor::<2>::zeros([2, 4], &device));
//! assert_eq!(logits.dims(), [2, 3]);
//! # Ok(())
//! # }
//! ```

mod activation;
mod encoder;
mod error;
mod mlp;
mod model;
mod spec;
mod summary;
pub mod weights;

pub use activation::Activation;
pub use encoder::{
    DenseInput, Encoder, EncoderPlan, EncoderSpec, FeatureMaps, Identity, IdentityKind,
    IdentitySpec, Tokens,
};
pub use error::{Result, SpecError, WeightsError};
pub use mlp::{Mlp, MlpBlock, MlpConfig, Norm};
pub use model::Model;
pub use spec::{
    CheckedSpec, DEFAULT_MAX_PARAMS, HeadSpec, ModelSpec, SpecLimits, Task, positive_width,
};
pub use summary::{LayerSummary, Summary};
