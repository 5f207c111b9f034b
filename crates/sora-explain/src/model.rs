//! The model contract, and the forward and gradient passes every method stands on.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use sora_core::{DenseInput, Encoder, Model};

use crate::types::check_targets;
use crate::{ExplainError, Inputs, Result};

/// Rows sent to the model at once by the perturbation methods and [`outputs`].
pub(crate) const FORWARD_CHUNK: usize = 4096;

/// A model attributions can be computed for: inputs `[batch, n_features]` → outputs
/// `[batch, n_outputs]`.
///
/// Implemented for every [`Model`] whose encoder takes one dense float tensor
/// ([`DenseInput`]): tables as they are, images and spectrograms as flat rows
/// `[batch, Π input_shape]` (row-major, as the encoder's `input_shape` lays them out).
///
/// `Send`, because methods that evaluate many independent batches (integrated gradients' path
/// points) give each worker thread its own copy of the model.
pub trait Explainable: Send {
    /// Runs the model.
    ///
    /// # Shapes
    /// - input: `[batch, n_features]`
    /// - output: `[batch, n_outputs]` (logits for a classifier, values for a regressor)
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;

    /// The same model with its parameters on `device`, in evaluation mode (used to move it to
    /// `device.autodiff()` for input gradients, and back to a plain device for perturbations).
    fn to_device(&self, device: &Device) -> Self
    where
        Self: Sized;
}

impl<E: Encoder> Explainable for Model<E>
where
    E::Input: DenseInput,
{
    /// # Shapes
    /// - input: `[batch, Π input_shape]`
    /// - output: `[batch, d_output]`
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let shape = self.encoder.input_shape();
        Model::forward(self, E::Input::from_flat(x, &shape))
    }

    /// A validation snapshot (`Module::valid`: no dropout, batch norm on running statistics,
    /// no parameter gradients) forked onto `device`.
    fn to_device(&self, device: &Device) -> Self {
        self.valid().fork(device)
    }
}

/// The plain (non-autodiff) version of `device`.
pub(crate) fn plain(device: &Device) -> Device {
    device.clone().without_autodiff()
}

fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| ExplainError::Backend(format!("cannot read a tensor back: {e:?}")))
}

fn check_output(dims: [usize; 2], rows: usize) -> Result<usize> {
    if dims[0] != rows || dims[1] == 0 {
        return Err(ExplainError::OutputShape {
            expected_rows: rows,
            found: dims.to_vec(),
        });
    }
    Ok(dims[1])
}

/// Runs a model already on `device` over row-major `[rows, d]` values, in chunks; returns the
/// outputs `[rows, k]` row-major and `k`.
pub(crate) fn forward_rows<M: Explainable>(
    model: &M,
    values: &[f32],
    d: usize,
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    let rows = values.len() / d;
    let mut out = Vec::new();
    let mut k = 0;
    for chunk in values.chunks(FORWARD_CHUNK * d) {
        let m = chunk.len() / d;
        let x = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [m, d]), device);
        let y = model.forward(x);
        k = check_output(y.dims(), m)?;
        out.extend(read(y)?);
    }
    check_output([out.len() / k.max(1), k], rows)?;
    Ok((out, k))
}

/// `F_t(x)` for each row: the target column of `[rows, k]` outputs.
pub(crate) fn pick(outputs: &[f32], k: usize, targets: &[usize]) -> Vec<f32> {
    targets
        .iter()
        .enumerate()
        .map(|(r, &t)| outputs[r * k + t])
        .collect()
}

/// Gradients `∂F_{t_r}/∂x_r` of row-major `[rows, d]` points, with a model already on the
/// autodiff device `ad`: one backward pass of `Σ_r F(x)[r, t_r]`. Targets are checked against
/// the model's outputs before the backward pass.
pub(crate) fn gradient_rows<M: Explainable>(
    model: &M,
    points: Vec<f32>,
    d: usize,
    targets: &[usize],
    ad: &Device,
) -> Result<Vec<f32>> {
    let rows = points.len() / d;
    let x = Tensor::<2>::from_data(TensorData::new(points, [rows, d]), ad).require_grad();
    let y = model.forward(x.clone());
    let k = check_output(y.dims(), rows)?;
    check_targets(targets, k)?;
    let mut mask = vec![0.0f32; rows * k];
    for (r, &t) in targets.iter().enumerate() {
        mask[r * k + t] = 1.0;
    }
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, k]), ad);
    let grads = (y * mask).sum().backward();
    let g = x
        .grad(&grads)
        .ok_or_else(|| ExplainError::Backend("no gradient reached the inputs".into()))?;
    read(g)
}

/// Model outputs for host inputs: `[n, n_outputs]` row-major (no softmax), and `n_outputs`.
///
/// The model runs in evaluation mode on the plain version of `device`, in chunks of rows.
///
/// ```
/// use burn::prelude::*;
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
/// use sora_explain::{Inputs, outputs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let model = ModelSpec::new(IdentitySpec::new(3), HeadSpec::new(&[4]), Task::Classification { n_classes: 2 })
///     .check()?
///     .init(&device);
/// let x = Inputs::new(vec![0.5; 6], 3)?;
/// let (y, k) = outputs(&model, &x, &device)?;
/// assert_eq!((y.len(), k), (4, 2));
/// # Ok(())
/// # }
/// ```
pub fn outputs<M: Explainable>(
    model: &M,
    inputs: &Inputs,
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    inputs.check()?;
    let device = plain(device);
    let model = model.to_device(&device);
    forward_rows(&model, &inputs.values, inputs.d, &device)
}
