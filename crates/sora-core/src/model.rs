//! A Sora model: an encoder followed by an MLP head.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::{Encoder, Mlp};

/// An [`Encoder`] composed with an [`Mlp`] head: a classifier (the head outputs logits, one per
/// class) or a regressor (the head outputs values), as its [`Task`](crate::Task) says.
///
/// Parameter names follow the fields: `encoder.…`, `head.hidden.{i}.linear.weight`,
/// `head.output.bias`, …
#[derive(Module, Debug)]
pub struct Model<E: Module> {
    /// The domain encoder.
    pub encoder: E,
    /// The MLP head.
    pub head: Mlp,
}

impl<E: Encoder> Model<E> {
    /// Encodes a batch and applies the head.
    ///
    /// # Shapes
    /// - input: a batch of the encoder's input (`[batch, d_input]` for tables)
    /// - output: `[batch, d_output]` (logits for classification)
    pub fn forward(&self, input: E::Input) -> Tensor<2> {
        self.head.forward(self.encoder.forward(input))
    }
}
