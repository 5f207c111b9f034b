//! # sora-explain
//!
//! Attributions for Sora models, with Captum's semantics: which input features a prediction
//! rests on, per example and per output.
//!
//! - gradient methods: [`Saliency`], [`InputXGradient`], [`IntegratedGradients`] (with its
//!   completeness delta);
//! - perturbation methods: [`Occlusion`], [`FeatureAblation`], [`FeaturePermutation`],
//!   [`ShapleyValues`] (exact or sampled);
//! - [`NoiseTunnel`] (SmoothGrad, SmoothGrad², VarGrad) around any of them;
//! - layer maps: [`GradCam`] on a convolution layer of any [`sora_core::FeatureMaps`] encoder,
//!   drawn over the images (or spectrograms) by [`save_overlays`];
//! - dataset level: [`permutation_importance`].
//!
//! Every method implements [`Attribution`] for any [`Explainable`] model (every
//! [`sora_core::Model`] over dense inputs: tables, and images or spectrograms as flat rows). Inputs, baselines and attributions live on the
//! host as row-major `[n, d]` buffers; the model runs on the `&Device` given (gradients on its
//! autodiff version), in evaluation mode.
//!
//! ```
//! use burn::prelude::*;
//! use sora_core::{Activation, HeadSpec, IdentitySpec, ModelSpec, Task};
//! use sora_explain::{Attribution, Baseline, Inputs, IntegratedGradients, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::flex();
//! let head = HeadSpec::new(&[16]).with_activation(Activation::Tanh);
//! let model = ModelSpec::new(IdentitySpec::new(4), head, Task::Classification { n_classes: 3 })
//!     .check()?
//!     .init(&device);
//! let x = Inputs::new(vec![0.1, 0.5, -0.3, 2.0, 1.0, 0.0, 0.0, -1.0], 4)?;
//! let ig = IntegratedGradients::default();
//! let a = ig.attribute(&model, &x, &Baseline::Zeros, &Target::PerExample(vec![0, 2]), &device)?;
//! assert_eq!((a.n, a.d), (2, 4));
//! // Completeness: each row sums to F_t(x) − F_t(0), up to the quadrature error.
//! assert!(a.max_abs_delta().unwrap() < 1e-3);
//! # Ok(())
//! # }
//! ```

mod error;
mod gradcam;
mod gradient;
mod heatmap;
mod importance;
mod model;
mod noise;
mod perturbation;
mod shapley;
mod types;

pub use error::{ExplainError, Result};
pub use gradcam::{CamMaps, GradCam};
pub use gradient::{IgMethod, InputXGradient, IntegratedGradients, Saliency};
pub use heatmap::{Overlay, overlays_png, save_overlays};
pub use importance::permutation_importance;
pub use model::{Explainable, outputs};
pub use noise::{NoiseKind, NoiseTunnel};
pub use perturbation::{FeatureAblation, FeaturePermutation, Occlusion};
pub use shapley::{MAX_EXACT_FEATURES, ShapleyValues};
pub use types::{Attributions, Baseline, Inputs, Target};

use burn::tensor::Device;

/// An attribution method: scores per example and feature for one output of the model.
pub trait Attribution {
    /// A short snake-case name (`"integrated_gradients"`, `"occlusion"`, …).
    fn name(&self) -> &'static str;

    /// Attributions of `model`'s `target` outputs to `inputs`, relative to `baseline` where the
    /// method uses one, computed on `device`.
    ///
    /// Fails, without panicking, when the shapes of `inputs`, `baseline` or `target` disagree,
    /// when a target is not an output of the model, or when a method parameter is out of
    /// range.
    fn attribute<M: Explainable>(
        &self,
        model: &M,
        inputs: &Inputs,
        baseline: &Baseline,
        target: &Target,
        device: &Device,
    ) -> Result<Attributions>;
}

/// Every class in one call: one [`Attributions`] per class `0..n_classes`, in order.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Baseline, Inputs, Saliency, attribute_all_classes};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(2), HeadSpec::new(&[4]), Task::Classification { n_classes: 3 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![1.0, 2.0], 2)?;
/// let all = attribute_all_classes(&Saliency::default(), &model, &x, &Baseline::Zeros, 3, &device)?;
/// assert_eq!(all.len(), 3);
/// assert_eq!(all[2].targets, vec![2]);
/// # Ok(())
/// # }
/// ```
pub fn attribute_all_classes<A: Attribution, M: Explainable>(
    method: &A,
    model: &M,
    inputs: &Inputs,
    baseline: &Baseline,
    n_classes: usize,
    device: &Device,
) -> Result<Vec<Attributions>> {
    if n_classes == 0 {
        return Err(ExplainError::InvalidParameter {
            method: "attribute_all_classes",
            parameter: "n_classes",
            expected: "at least 1".into(),
            found: "0".into(),
        });
    }
    (0..n_classes)
        .map(|c| method.attribute(model, inputs, baseline, &Target::Class(c), device))
        .collect()
}
