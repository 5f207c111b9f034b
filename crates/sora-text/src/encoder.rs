//! Text encoders: token embeddings, optionally recurrent layers, pooled over time.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use sora_kernels::linear::{Act, forward_layer};

use crate::gru::{FusedBiGru, FusedBiGruConfig, FusedGru, FusedGruConfig};
use crate::lstm::{FusedBiLstm, FusedBiLstmConfig, FusedLstm, FusedLstmConfig};
use sora_core::{
    Encoder, EncoderPlan, EncoderSpec, LayerSummary, SpecError, Tokens, positive_width,
};

/// How the states of a sequence become one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SeqPool {
    /// Mean over the real (unmasked) positions; with no recurrent layer, the bag of
    /// embeddings.
    #[default]
    Mean,
    /// Maximum over the real positions.
    Max,
    /// The state at the last real position.
    Last,
    /// A learned softmax weighting of the real positions (one linear score per position).
    Attention,
}

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

/// Recurrent layers over the embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnnSpec {
    /// The cell.
    pub cell: Cell,
    /// Hidden width of each direction.
    pub d_hidden: i64,
    /// Stacked layers (1 when absent).
    #[serde(default = "one")]
    pub layers: i64,
    /// Run each layer in both directions and concatenate (`2 × d_hidden` features).
    #[serde(default)]
    pub bidirectional: bool,
}

fn one() -> i64 {
    1
}

/// Spec of a [`TextEncoder`]:
///
/// ```json
/// { "kind": "text", "vocab_size": 5000, "seq_len": 40, "d_embed": 64,
///   "rnn": { "cell": "lstm", "d_hidden": 64, "bidirectional": true }, "pool": "max" }
/// ```
///
/// Without `rnn` it is a bag of embeddings (masked mean with the default `pool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Always `"text"`.
    pub kind: TextKind,
    /// Rows of the embedding table (the vocabulary's size, padding and unknown included).
    pub vocab_size: i64,
    /// Tokens per document after padding or truncation.
    pub seq_len: i64,
    /// Embedding width.
    pub d_embed: i64,
    /// Dropout on the embeddings, in `[0, 1)`.
    #[serde(default)]
    pub dropout: f64,
    /// Recurrent layers; absent for a bag of embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rnn: Option<RnnSpec>,
    /// Pooling over time.
    #[serde(default)]
    pub pool: SeqPool,
}

/// The `kind` tag of a [`TextSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TextKind {
    /// `"text"`.
    #[default]
    #[serde(rename = "text")]
    Text,
}

impl TextSpec {
    /// A bag of embeddings: `vocab_size × d_embed` table, masked mean over `seq_len` tokens.
    pub fn bag(vocab_size: usize, seq_len: usize, d_embed: usize) -> Self {
        Self {
            kind: TextKind::Text,
            vocab_size: vocab_size as i64,
            seq_len: seq_len as i64,
            d_embed: d_embed as i64,
            dropout: 0.0,
            rnn: None,
            pool: SeqPool::Mean,
        }
    }

    /// Adds recurrent layers.
    pub fn with_rnn(
        mut self,
        cell: Cell,
        d_hidden: usize,
        layers: usize,
        bidirectional: bool,
    ) -> Self {
        self.rnn = Some(RnnSpec {
            cell,
            d_hidden: d_hidden as i64,
            layers: layers as i64,
            bidirectional,
        });
        self
    }

    /// Sets the pooling over time.
    pub fn with_pool(mut self, pool: SeqPool) -> Self {
        self.pool = pool;
        self
    }

    /// Sets the embedding dropout.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
}

/// Sizes that passed their checks.
struct Plan {
    vocab: usize,
    seq_len: usize,
    d_embed: usize,
    rnn: Option<(Cell, usize, usize, bool)>,
    plan: EncoderPlan,
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

impl TextSpec {
    fn plan(&self, first: usize) -> Result<Plan, SpecError> {
        let vocab = positive_width(self.vocab_size, first, "Embedding", "encoder.vocab_size")?;
        let seq_len = positive_width(self.seq_len, first, "Embedding", "encoder.seq_len")?;
        let d_embed = positive_width(self.d_embed, first, "Embedding", "encoder.d_embed")?;
        let mut layers = vec![row(
            "encoder.embedding",
            "Embedding",
            vec![seq_len, d_embed],
            (vocab * d_embed) as u64,
        )];
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(SpecError::InvalidField {
                index: first + 1,
                kind: "Dropout".into(),
                field: "encoder.dropout".into(),
                expected: "a probability in [0, 1)".into(),
                found: self.dropout.to_string(),
            });
        }
        if self.dropout > 0.0 {
            layers.push(row("encoder.dropout", "Dropout", vec![seq_len, d_embed], 0));
        }
        let mut width = d_embed;
        let rnn = match &self.rnn {
            None => None,
            Some(r) => {
                let (kind, gates) = match (r.cell, r.bidirectional) {
                    (Cell::Lstm, false) => ("LSTM", 4),
                    (Cell::Lstm, true) => ("BiLSTM", 4),
                    (Cell::Gru, false) => ("GRU", 3),
                    (Cell::Gru, true) => ("BiGRU", 3),
                };
                let index = first + layers.len();
                let h = positive_width(r.d_hidden, index, kind, "encoder.rnn.d_hidden")?;
                let n = positive_width(r.layers, index, kind, "encoder.rnn.layers")?;
                let dirs = if r.bidirectional { 2 } else { 1 };
                for l in 0..n {
                    // Per gate and direction: input and hidden weights and two biases (the
                    // fused LSTM keeps PyTorch's `bias_ih` and `bias_hh`; Burn's GRU has a
                    // biased input and hidden transform per gate).
                    let params = dirs * gates * (width * h + h * h + 2 * h);
                    width = dirs * h;
                    let name = format!("encoder.rnn.{l}");
                    layers.push(row(&name, kind, vec![seq_len, width], params as u64));
                }
                Some((r.cell, h, n, r.bidirectional))
            }
        };
        if self.pool == SeqPool::Attention {
            let shape = vec![seq_len, 1];
            layers.push(row(
                "encoder.attention",
                "Linear",
                shape,
                (width + 1) as u64,
            ));
        }
        let pool_kind = match self.pool {
            SeqPool::Mean => "MaskedMean",
            SeqPool::Max => "MaskedMax",
            SeqPool::Last => "LastState",
            SeqPool::Attention => "AttentionPool",
        };
        layers.push(row("encoder.pool", pool_kind, vec![width], 0));
        Ok(Plan {
            vocab,
            seq_len,
            d_embed,
            rnn,
            plan: EncoderPlan {
                input_shape: vec![seq_len],
                layers,
                d_features: width,
            },
        })
    }
}

/// One recurrent layer.
// A model holds a handful of these, built once: the size of the largest variant costs nothing
// worth a box (and Burn's module derive takes the layers by value).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum RnnLayer {
    /// Forward LSTM (fused).
    Lstm(FusedLstm),
    /// Bidirectional LSTM (fused).
    BiLstm(FusedBiLstm),
    /// Forward GRU (fused).
    Gru(FusedGru),
    /// Bidirectional GRU (fused).
    BiGru(FusedBiGru),
}

impl RnnLayer {
    /// # Shapes
    /// - input: `[batch, seq_len, d_in]`
    /// - output: `[batch, seq_len, d_hidden × directions]`
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            RnnLayer::Lstm(l) => l.forward(x, None).0,
            RnnLayer::BiLstm(l) => l.forward(x, None).0,
            RnnLayer::Gru(l) => l.forward(x, None),
            RnnLayer::BiGru(l) => l.forward(x),
        }
    }
}

/// Token ids `[batch, seq_len]` (with their mask) → features.
#[derive(Module, Debug)]
pub struct TextEncoder {
    /// The embedding table.
    pub embedding: Embedding,
    /// Dropout on the embeddings.
    pub dropout: Option<Dropout>,
    /// Recurrent layers, in order (empty for a bag of embeddings).
    pub rnn: Vec<RnnLayer>,
    /// The position scorer of attention pooling.
    pub attention: Option<Linear>,
    /// Pooling over time.
    #[module(skip)]
    pub pool: SeqPool,
    /// Tokens per document.
    #[module(skip)]
    pub seq_len: usize,
    /// Width of the features.
    #[module(skip)]
    pub d_features: usize,
}

impl TextEncoder {
    /// The sequence of states before pooling.
    ///
    /// # Shapes
    /// - input: ids `[batch, seq_len]`
    /// - output: `[batch, seq_len, d_features]`
    pub fn states(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.states_from_embeddings(self.embedding.forward(ids))
    }

    /// The states from embeddings (the point where token attributions are taken).
    ///
    /// # Shapes
    /// - input: `[batch, seq_len, d_embed]`
    /// - output: `[batch, seq_len, d_features]`
    pub fn states_from_embeddings(&self, mut x: Tensor<3>) -> Tensor<3> {
        if let Some(dropout) = &self.dropout {
            x = dropout.forward(x);
        }
        for layer in &self.rnn {
            x = layer.forward(x);
        }
        x
    }

    /// Pools states over the real positions.
    ///
    /// # Shapes
    /// - input: states `[batch, seq_len, d]`, mask `[batch, seq_len]`
    /// - output: `[batch, d]`
    pub fn pool(&self, states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [b, t, d] = states.dims();
        let m = mask.clone().unsqueeze_dim::<3>(2);
        let lengths = mask.clone().sum_dim(1); // [b, 1]
        match self.pool {
            SeqPool::Mean => (states * m).sum_dim(1).reshape([b, d]) / lengths.clamp_min(1.0),
            SeqPool::Max => {
                // Padding sits far below any state; a document with no tokens pools to 0.
                let masked = states * m.clone() + (m - 1.0) * 1e4;
                let any = lengths.clamp_max(1.0);
                masked.max_dim(1).reshape([b, d]) * any
            }
            SeqPool::Last => {
                let positions = Tensor::<1, Int>::arange(0..t as i64, &mask.device())
                    .float()
                    .reshape([1, t]);
                let last = positions.equal(lengths - 1.0).float().unsqueeze_dim::<3>(2);
                (states * last).sum_dim(1).reshape([b, d])
            }
            SeqPool::Attention => {
                let scorer = self
                    .attention
                    .as_ref()
                    .expect("attention pooling has a scorer");
                let scores = forward_layer(scorer, states.clone(), Act::Identity).reshape([b, t]);
                let weights = softmax(scores + (mask - 1.0) * 1e4, 1).unsqueeze_dim::<3>(2);
                (states * weights).sum_dim(1).reshape([b, d])
            }
        }
    }
}

impl Encoder for TextEncoder {
    type Input = Tokens;

    fn d_features(&self) -> usize {
        self.d_features
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.seq_len]
    }

    /// # Shapes
    /// - input: ids and mask `[batch, seq_len]`
    /// - output: `[batch, d_features]`
    fn forward(&self, input: Tokens) -> Tensor<2> {
        let states = self.states(input.ids);
        self.pool(states, input.mask)
    }
}

impl EncoderSpec for TextSpec {
    type Encoder = TextEncoder;

    fn check(&self, first_index: usize) -> Result<EncoderPlan, SpecError> {
        Ok(self.plan(first_index)?.plan)
    }

    fn init(&self, device: &Device) -> TextEncoder {
        let p = self.plan(0).expect("init is called on a checked spec");
        let mut rnn = Vec::new();
        let mut width = p.d_embed;
        if let Some((cell, h, n, bi)) = p.rnn {
            for _ in 0..n {
                rnn.push(match (cell, bi) {
                    (Cell::Lstm, false) => {
                        RnnLayer::Lstm(FusedLstmConfig::new(width, h).init(device))
                    }
                    (Cell::Lstm, true) => {
                        RnnLayer::BiLstm(FusedBiLstmConfig::new(width, h).init(device))
                    }
                    (Cell::Gru, false) => RnnLayer::Gru(FusedGruConfig::new(width, h).init(device)),
                    (Cell::Gru, true) => {
                        RnnLayer::BiGru(FusedBiGruConfig::new(width, h).init(device))
                    }
                });
                width = if bi { 2 * h } else { h };
            }
        }
        TextEncoder {
            embedding: EmbeddingConfig::new(p.vocab, p.d_embed).init(device),
            dropout: (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init()),
            rnn,
            attention: (self.pool == SeqPool::Attention)
                .then(|| LinearConfig::new(width, 1).init(device)),
            pool: self.pool,
            seq_len: p.seq_len,
            d_features: p.plan.d_features,
        }
    }
}
