//! The declarative model spec (JSON or TOML), checked up front into a [`CheckedSpec`].

use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{
    Activation, EncoderPlan, EncoderSpec, IdentitySpec, LayerSummary, MlpConfig, Model, Norm,
    SpecError, Summary,
};

/// Default upper bound on a model's parameter count (100 M), checked before allocating.
pub const DEFAULT_MAX_PARAMS: u64 = 100_000_000;

/// Limits applied while checking a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecLimits {
    /// The largest parameter count a spec may ask for.
    pub max_params: u64,
}

impl Default for SpecLimits {
    fn default() -> Self {
        Self {
            max_params: DEFAULT_MAX_PARAMS,
        }
    }
}

/// What the model predicts, which fixes the head's output width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// Class logits; trained with cross-entropy.
    Classification {
        /// Number of classes (≥ 2).
        n_classes: i64,
    },
    /// Real values; trained with mean squared error.
    Regression {
        /// Number of values predicted per sample (≥ 1).
        n_targets: i64,
    },
}

impl Task {
    /// Whether the task is classification.
    pub fn is_classification(&self) -> bool {
        matches!(self, Task::Classification { .. })
    }
}

/// The raw spec of the [`Mlp`](crate::Mlp) head, as written in a spec file.
///
/// Widths are signed and names are strings so that checking can say which layer and field
/// is wrong, rather than failing inside the parser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Width the head expects; optional, and when given it must equal the encoder's
    /// `d_features`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_input: Option<i64>,
    /// Hidden widths, in order.
    #[serde(default)]
    pub d_hidden: Vec<i64>,
    /// Hidden activation: `relu` (default), `gelu`, `tanh`, `sigmoid`, `leaky_relu`, `silu`.
    #[serde(default = "default_activation")]
    pub activation: String,
    /// Dropout probability after each hidden activation, in `[0, 1)`.
    #[serde(default)]
    pub dropout: f64,
    /// Normalisation after each hidden linear layer: `batch`, `layer`, or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<String>,
}

fn default_activation() -> String {
    Activation::Relu.name().to_string()
}

impl HeadSpec {
    /// A ReLU head with the given hidden widths, no dropout and no normalisation.
    pub fn new(d_hidden: &[usize]) -> Self {
        Self {
            d_input: None,
            d_hidden: d_hidden.iter().map(|&d| d as i64).collect(),
            activation: default_activation(),
            dropout: 0.0,
            norm: None,
        }
    }

    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation.name().to_string();
        self
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets the normalisation.
    pub fn with_norm(mut self, norm: Option<Norm>) -> Self {
        self.norm = norm.map(|n| n.name().to_string());
        self
    }
}

/// The whole model, declaratively: an encoder spec, a head, and the task.
///
/// ```
/// use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
///
/// # fn main() -> Result<(), sora_core::SpecError> {
/// let spec = ModelSpec::new(
///     IdentitySpec::new(64),
///     HeadSpec::new(&[128, 64]),
///     Task::Classification { n_classes: 10 },
/// );
/// let text = spec.to_toml_string();
/// let again: ModelSpec = ModelSpec::from_toml_str(&text)?;
/// assert_eq!(again, spec);
/// println!("{}", again.check()?.summary());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec<E = IdentitySpec> {
    /// The domain encoder.
    pub encoder: E,
    /// The MLP head.
    pub head: HeadSpec,
    /// What the model predicts.
    pub task: Task,
}

impl<E: EncoderSpec> ModelSpec<E> {
    /// Assembles a spec.
    pub fn new(encoder: E, head: HeadSpec, task: Task) -> Self {
        Self {
            encoder,
            head,
            task,
        }
    }

    /// Parses a JSON spec.
    pub fn from_json_str(text: &str) -> Result<Self, SpecError> {
        serde_json::from_str(text).map_err(|e| SpecError::Parse {
            file: None,
            message: e.to_string(),
            source: e.into(),
        })
    }

    /// Parses a TOML spec.
    pub fn from_toml_str(text: &str) -> Result<Self, SpecError> {
        toml::from_str(text).map_err(|e| SpecError::Parse {
            file: None,
            message: e.to_string(),
            source: e.into(),
        })
    }

    /// Reads a spec file: TOML when the extension is `.toml`, JSON otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = crate::weights::read_bounded_text(path, crate::weights::MAX_JSON_BYTES)
            .map_err(|source| SpecError::Io {
                file: path.to_path_buf(),
                source,
            })?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            Self::from_toml_str(&text)
        } else {
            Self::from_json_str(&text)
        };
        parsed.map_err(|e| match e {
            SpecError::Parse {
                message, source, ..
            } => SpecError::Parse {
                file: Some(path.to_path_buf()),
                message,
                source,
            },
            other => other,
        })
    }

    /// The spec as pretty JSON.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model spec always serialises to JSON")
    }

    /// The spec as TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a model spec always serialises to TOML")
    }

    /// Checks the spec with the default [`SpecLimits`].
    pub fn check(&self) -> Result<CheckedSpec<E>, SpecError> {
        self.check_with(&SpecLimits::default())
    }

    /// Validates every field, infers every layer's output shape and parameter count, and
    /// enforces `limits` — all before any tensor is allocated.
    pub fn check_with(&self, limits: &SpecLimits) -> Result<CheckedSpec<E>, SpecError> {
        let plan = self.encoder.check(0)?;
        let mut layers = plan.layers.clone();
        let mut total: u64 = layers.iter().map(|l| l.params).sum();
        over_limit(&layers, total, limits, "encoder")?;

        let head = &self.head;
        let d_features = plan.d_features;
        if let Some(d_input) = head.d_input
            && d_input != d_features as i64
        {
            return Err(SpecError::InvalidField {
                index: layers.len(),
                kind: "Linear".into(),
                field: "head.d_input".into(),
                expected: format!("{d_features} (the encoder's d_features)"),
                found: d_input.to_string(),
            });
        }
        let activation =
            Activation::from_name(&head.activation).ok_or_else(|| SpecError::InvalidField {
                index: layers.len() + 1,
                kind: "activation".into(),
                field: "head.activation".into(),
                expected: format!(
                    "one of {}",
                    Activation::ALL.map(Activation::name).join(", ")
                ),
                found: format!("{:?}", head.activation),
            })?;
        let norm = match head.norm.as_deref() {
            None | Some("none") => None,
            Some("batch") => Some(Norm::Batch),
            Some("layer") => Some(Norm::Layer),
            Some(other) => {
                return Err(SpecError::InvalidField {
                    index: layers.len() + 1,
                    kind: "norm".into(),
                    field: "head.norm".into(),
                    expected: "\"batch\", \"layer\" or \"none\"".into(),
                    found: format!("{other:?}"),
                });
            }
        };
        if !(head.dropout.is_finite() && (0.0..1.0).contains(&head.dropout)) {
            return Err(SpecError::InvalidField {
                index: layers.len() + 2 + usize::from(norm.is_some()),
                kind: "Dropout".into(),
                field: "head.dropout".into(),
                expected: "a probability in [0, 1)".into(),
                found: head.dropout.to_string(),
            });
        }

        let mut d_in = d_features as u64;
        let mut d_hidden = Vec::with_capacity(head.d_hidden.len());
        for (i, &raw) in head.d_hidden.iter().enumerate() {
            let field = format!("head.d_hidden[{i}]");
            let d = positive_width(raw, layers.len(), "Linear", &field)? as u64;
            let params = d_in.saturating_mul(d).saturating_add(d);
            push(
                &mut layers,
                &mut total,
                format!("head.hidden.{i}.linear"),
                "Linear",
                d,
                (params, params),
            );
            over_limit(&layers, total, limits, &field)?;
            if let Some(norm) = norm {
                let name = match norm {
                    Norm::Batch => "batch_norm",
                    Norm::Layer => "layer_norm",
                };
                push(
                    &mut layers,
                    &mut total,
                    format!("head.hidden.{i}.{name}"),
                    norm.layer_kind(),
                    d,
                    // Batch norm also keeps a running mean and variance (not trained).
                    (if norm == Norm::Batch { 4 * d } else { 2 * d }, 2 * d),
                );
            }
            push(
                &mut layers,
                &mut total,
                format!("head.hidden.{i}.activation"),
                activation.layer_kind(),
                d,
                (0, 0),
            );
            if head.dropout > 0.0 {
                push(
                    &mut layers,
                    &mut total,
                    format!("head.hidden.{i}.dropout"),
                    "Dropout",
                    d,
                    (0, 0),
                );
            }
            d_hidden.push(d as usize);
            d_in = d;
        }
        let (d_output, field) = match self.task {
            Task::Classification { n_classes } => {
                let field = "task.n_classes";
                if n_classes < 2 {
                    return Err(SpecError::InvalidField {
                        index: layers.len(),
                        kind: "Linear".into(),
                        field: field.into(),
                        expected: "at least 2 classes".into(),
                        found: n_classes.to_string(),
                    });
                }
                (n_classes as u64, field)
            }
            Task::Regression { n_targets } => {
                let field = "task.n_targets";
                (
                    positive_width(n_targets, layers.len(), "Linear", field)? as u64,
                    field,
                )
            }
        };
        let params = d_in.saturating_mul(d_output).saturating_add(d_output);
        push(
            &mut layers,
            &mut total,
            "head.output".into(),
            "Linear",
            d_output,
            (params, params),
        );
        over_limit(&layers, total, limits, field)?;

        let mlp = MlpConfig {
            d_input: d_features,
            d_hidden,
            d_output: d_output as usize,
            activation,
            dropout: head.dropout,
            norm,
        };
        let summary = Summary {
            input_shape: plan.input_shape.clone(),
            trainable_params: layers.iter().map(|l| l.trainable).sum(),
            layers,
            total_params: total,
        };
        Ok(CheckedSpec {
            spec: self.clone(),
            plan,
            mlp,
            summary,
        })
    }
}

/// Appends a row of `d` outputs with `(params, trainable)` parameters, keeping the total.
fn push(
    layers: &mut Vec<LayerSummary>,
    total: &mut u64,
    name: String,
    kind: &str,
    d: u64,
    (params, trainable): (u64, u64),
) {
    layers.push(LayerSummary {
        name,
        kind: kind.to_string(),
        output_shape: vec![d as usize],
        params,
        trainable,
    });
    *total = total.saturating_add(params);
}

fn over_limit(
    layers: &[LayerSummary],
    total: u64,
    limits: &SpecLimits,
    field: &str,
) -> Result<(), SpecError> {
    if total <= limits.max_params {
        return Ok(());
    }
    let index = layers.len().saturating_sub(1);
    Err(SpecError::TooManyParams {
        index,
        kind: layers.last().map_or_else(String::new, |l| l.kind.clone()),
        field: field.to_string(),
        total,
        limit: limits.max_params,
    })
}

/// Checks a width field of a spec: `raw` must be positive (and below 2⁴⁰); the error names
/// layer `index` of kind `kind` and the `field` as written in the spec.
pub fn positive_width(raw: i64, index: usize, kind: &str, field: &str) -> Result<usize, SpecError> {
    // 2^40 elements in one dimension is far beyond any parameter limit, and keeps the
    // products in `check_with` inside u64.
    if raw <= 0 || raw > (1 << 40) {
        return Err(SpecError::InvalidField {
            index,
            kind: kind.to_string(),
            field: field.to_string(),
            expected: "a positive width".into(),
            found: raw.to_string(),
        });
    }
    Ok(raw as usize)
}

/// A spec that passed every check: it cannot fail to build.
#[derive(Debug, Clone)]
pub struct CheckedSpec<E: EncoderSpec = IdentitySpec> {
    spec: ModelSpec<E>,
    plan: EncoderPlan,
    mlp: MlpConfig,
    summary: Summary,
}

impl<E: EncoderSpec> CheckedSpec<E> {
    /// The spec as written.
    pub fn spec(&self) -> &ModelSpec<E> {
        &self.spec
    }

    /// What checking the encoder found.
    pub fn encoder_plan(&self) -> &EncoderPlan {
        &self.plan
    }

    /// The head's configuration, with validated widths.
    pub fn mlp_config(&self) -> &MlpConfig {
        &self.mlp
    }

    /// The task.
    pub fn task(&self) -> Task {
        self.spec.task
    }

    /// Output width of the model (classes or targets).
    pub fn d_output(&self) -> usize {
        self.mlp.d_output
    }

    /// Per-layer output shapes and parameter counts.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Allocates the model on `device` (seed the device first for reproducible weights).
    pub fn init(&self, device: &Device) -> Model<E::Encoder> {
        Model {
            encoder: self.spec.encoder.init(device),
            head: self.mlp.init(device),
        }
    }
}
