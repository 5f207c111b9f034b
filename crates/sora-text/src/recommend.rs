//! Recommendation encoders: user and item embedding tables over pairs of ids.
//!
//! A [`RatingsSpec`] declares the tables; its [`RatingsEncoder`] maps a batch of
//! [`Pairs`] (user and item ids, dense indices from the training data) to features:
//!
//! - `"dot"` — matrix factorisation: `features = ⟨p_u, q_i⟩ + b_u + b_i`, `[batch, 1]`.
//!   The model's head is then `HeadSpec::new(&[])`, one 1→1 linear: its bias is the
//!   **global bias** (and its weight a scale, 1 after a warm start), so the model's output is
//!   exactly biased MF, `μ + b_u + b_i + ⟨p_u, q_i⟩`. With a 1→2 head (two classes) the same
//!   features score implicit feedback.
//! - `"mlp"` — the user and item embeddings concatenated, `[batch, 2·d_embed]`, for an MLP
//!   head (e.g. `HeadSpec::new(&[64, 32])`), as in neural collaborative filtering.
//!
//! ```
//! use burn::prelude::*;
//! use sora_core::{HeadSpec, ModelSpec, Task};
//! use sora_text::recommend::{Pairs, RatingsSpec};
//!
//! # fn main() -> Result<(), sora_core::SpecError> {
//! let spec = ModelSpec::new(RatingsSpec::dot(10, 20, 4), HeadSpec::new(&[]), Task::Regression { n_targets: 1 })
//!     .check()?;
//! // Embeddings 10·4 + 20·4, biases 10 + 20, head 1 + 1.
//! assert_eq!(spec.summary().total_params, 40 + 80 + 30 + 2);
//! let device = sora_device::test_device();
//! let model = spec.init(&device);
//! let pairs = Pairs {
//!     users: Tensor::from_data(TensorData::new(vec![0i64, 9], [2]), &device),
//!     items: Tensor::from_data(TensorData::new(vec![3i64, 19], [2]), &device),
//! };
//! assert_eq!(model.forward(pairs).dims(), [2, 1]);
//! # Ok(())
//! # }
//! ```

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sora_core::{Encoder, EncoderPlan, EncoderSpec, LayerSummary, SpecError, positive_width};

/// A batch of (user, item) pairs: the input of a [`RatingsEncoder`].
#[derive(Debug, Clone)]
pub struct Pairs {
    /// User indices `[batch]`, each `< n_users`.
    pub users: Tensor<1, Int>,
    /// Item indices `[batch]`, each `< n_items`.
    pub items: Tensor<1, Int>,
}

/// How user and item embeddings combine into features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Interaction {
    /// Dot product plus user and item biases: one feature (matrix factorisation).
    #[default]
    Dot,
    /// Concatenated embeddings, `2 · d_embed` features, for an MLP head.
    Mlp,
}

/// The `kind` tag of a [`RatingsSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RatingsKind {
    /// `"ratings"`.
    #[default]
    #[serde(rename = "ratings")]
    Ratings,
}

/// Spec of a [`RatingsEncoder`]:
///
/// ```json
/// { "kind": "ratings", "n_users": 610, "n_items": 9000, "d_embed": 32, "model": "dot" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingsSpec {
    /// Always `"ratings"`.
    pub kind: RatingsKind,
    /// Rows of the user table.
    pub n_users: i64,
    /// Rows of the item table.
    pub n_items: i64,
    /// Embedding width.
    pub d_embed: i64,
    /// `"dot"` or `"mlp"`.
    #[serde(default)]
    pub model: Interaction,
    /// Standard deviation of the normal initialisation of the embeddings (biases start at 0);
    /// 0.05 when absent.
    #[serde(default = "default_std")]
    pub init_std: f64,
}

fn default_std() -> f64 {
    0.05
}

impl RatingsSpec {
    /// Matrix factorisation: dot product plus user and item biases.
    pub fn dot(n_users: usize, n_items: usize, d_embed: usize) -> Self {
        Self {
            kind: RatingsKind::Ratings,
            n_users: n_users as i64,
            n_items: n_items as i64,
            d_embed: d_embed as i64,
            model: Interaction::Dot,
            init_std: default_std(),
        }
    }

    /// Concatenated user and item embeddings for an MLP head.
    pub fn mlp(n_users: usize, n_items: usize, d_embed: usize) -> Self {
        Self {
            model: Interaction::Mlp,
            ..Self::dot(n_users, n_items, d_embed)
        }
    }

    fn sizes(&self, first: usize) -> Result<(usize, usize, usize), SpecError> {
        let users = positive_width(self.n_users, first, "Embedding", "encoder.n_users")?;
        let items = positive_width(self.n_items, first + 1, "Embedding", "encoder.n_items")?;
        let d = positive_width(self.d_embed, first, "Embedding", "encoder.d_embed")?;
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return Err(SpecError::InvalidField {
                index: first,
                kind: "Embedding".into(),
                field: "encoder.init_std".into(),
                expected: "a finite, non-negative standard deviation".into(),
                found: self.init_std.to_string(),
            });
        }
        Ok((users, items, d))
    }
}

fn row(name: &str, kind: &str, shape: Vec<usize>, params: u64) -> LayerSummary {
    LayerSummary {
        name: name.into(),
        kind: kind.into(),
        output_shape: shape,
        params,
        trainable: params,
    }
}

/// User and item ids → features (see the [module](self) documentation).
#[derive(Module, Debug)]
pub struct RatingsEncoder {
    /// User embeddings `[n_users, d_embed]`.
    pub user: Embedding,
    /// Item embeddings `[n_items, d_embed]`.
    pub item: Embedding,
    /// User biases `[n_users, 1]` (`dot` only).
    pub user_bias: Option<Embedding>,
    /// Item biases `[n_items, 1]` (`dot` only).
    pub item_bias: Option<Embedding>,
    /// How the embeddings combine.
    #[module(skip)]
    pub interaction: Interaction,
    /// Embedding width.
    #[module(skip)]
    pub d_embed: usize,
}

impl RatingsEncoder {
    /// Replaces the user and item biases (a warm start, e.g. from a damped bias baseline);
    /// with `trainable` false they stay fixed during training (no gradient, no update).
    ///
    /// # Panics
    /// When the encoder has no biases (`mlp`) or the lengths differ from the tables.
    pub fn with_biases(mut self, user: &[f32], item: &[f32], trainable: bool) -> Self {
        let set = |table: &mut Option<Embedding>, values: &[f32]| {
            let table = table.as_mut().expect("a `dot` encoder has biases");
            let device = table.weight.device();
            assert_eq!(table.weight.dims()[0], values.len(), "one bias per row");
            let t = Tensor::<2>::from_data(
                TensorData::new(values.to_vec(), [values.len(), 1]),
                &device,
            );
            table.weight = Param::from_tensor(t).set_require_grad(trainable);
        };
        set(&mut self.user_bias, user);
        set(&mut self.item_bias, item);
        self
    }
}

impl Encoder for RatingsEncoder {
    type Input = Pairs;

    fn d_features(&self) -> usize {
        match self.interaction {
            Interaction::Dot => 1,
            Interaction::Mlp => 2 * self.d_embed,
        }
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![2]
    }

    /// # Shapes
    /// - input: users and items `[batch]`
    /// - output: `[batch, 1]` (`dot`) or `[batch, 2·d_embed]` (`mlp`)
    fn forward(&self, input: Pairs) -> Tensor<2> {
        let [b] = input.users.dims();
        let users = input.users.reshape([b, 1]);
        let items = input.items.reshape([b, 1]);
        let d = self.d_embed;
        let p = self.user.forward(users.clone()).reshape([b, d]);
        let q = self.item.forward(items.clone()).reshape([b, d]);
        match self.interaction {
            Interaction::Mlp => Tensor::cat(vec![p, q], 1),
            Interaction::Dot => {
                let mut x = (p * q).sum_dim(1);
                if let Some(bu) = &self.user_bias {
                    x = x + bu.forward(users).reshape([b, 1]);
                }
                if let Some(bi) = &self.item_bias {
                    x = x + bi.forward(items).reshape([b, 1]);
                }
                x
            }
        }
    }
}

impl EncoderSpec for RatingsSpec {
    type Encoder = RatingsEncoder;

    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError> {
        let (users, items, d) = self.sizes(first_index)?;
        let mut layers = vec![
            row("encoder.user", "Embedding", vec![d], (users * d) as u64),
            row("encoder.item", "Embedding", vec![d], (items * d) as u64),
        ];
        let d_features = match self.model {
            Interaction::Dot => {
                layers.push(row("encoder.user_bias", "Embedding", vec![1], users as u64));
                layers.push(row("encoder.item_bias", "Embedding", vec![1], items as u64));
                layers.push(row("encoder.interaction", "DotPlusBiases", vec![1], 0));
                1
            }
            Interaction::Mlp => {
                layers.push(row("encoder.interaction", "Concat", vec![2 * d], 0));
                2 * d
            }
        };
        Ok(EncoderPlan {
            input_shape: vec![2],
            layers,
            d_features,
        })
    }

    fn init(&self, device: &Device) -> RatingsEncoder {
        let (users, items, d) = self.sizes(0).expect("init is called on a checked spec");
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.init_std,
        };
        let table = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(normal.clone())
                .init(device)
        };
        let bias = |n: usize| {
            EmbeddingConfig::new(n, 1)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let dot = self.model == Interaction::Dot;
        RatingsEncoder {
            user: table(users),
            item: table(items),
            user_bias: dot.then(|| bias(users)),
            item_bias: dot.then(|| bias(items)),
            interaction: self.model,
            d_embed: d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sora_core::{HeadSpec, ModelSpec, Task};

    #[test]
    fn spec_errors_name_the_field_and_mlp_features_are_concatenated() {
        let bad = RatingsSpec {
            n_items: 0,
            ..RatingsSpec::dot(3, 4, 2)
        };
        let err = ModelSpec::new(bad, HeadSpec::new(&[]), Task::Regression { n_targets: 1 })
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("encoder.n_items"), "{err}");
        let json = r#"{"kind":"ratings","n_users":3,"n_items":4,"d_embed":2,"model":"mlp"}"#;
        let spec: RatingsSpec = serde_json::from_str(json).unwrap();
        let checked = ModelSpec::new(
            spec,
            HeadSpec::new(&[8]),
            Task::Classification { n_classes: 2 },
        )
        .check()
        .unwrap();
        let device = sora_device::test_device();
        let model = checked.init(&device);
        assert_eq!(model.encoder.d_features(), 4);
        let ids = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [2]), &device);
        let features = model.encoder.forward(Pairs {
            users: ids(vec![0, 2]),
            items: ids(vec![3, 1]),
        });
        assert_eq!(features.dims(), [2, 4]);
    }

    #[test]
    fn dot_features_are_the_dot_product_plus_biases() {
        let device = sora_device::test_device();
        let enc =
            RatingsSpec::dot(2, 2, 3)
                .init(&device)
                .with_biases(&[0.5, -0.5], &[1.0, 2.0], true);
        let ids = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [1]), &device);
        let got = enc
            .forward(Pairs {
                users: ids(vec![1]),
                items: ids(vec![0]),
            })
            .into_scalar::<f32>();
        let p = enc.user.weight.val().slice([1..2, 0..3]);
        let q = enc.item.weight.val().slice([0..1, 0..3]);
        let dot = (p * q).sum().into_scalar::<f32>();
        assert!((got - (dot - 0.5 + 1.0)).abs() < 1e-6, "{got} vs {dot}");
    }
}
