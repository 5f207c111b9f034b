//! Recurrent language models: an embedding, one or more LSTM or GRU layers and a projection
//! to the vocabulary, predicting each next token; and a seeded [`Sampler`] (greedy,
//! temperature, top-k, top-p) that lets a trained model write.
//!
//! The model reads token ids and a recurrent state and returns next-token logits and the new
//! state, so long text is read chunk by chunk with the state carried across chunks
//! ([`LmState::detach`] cuts the gradient between chunks: truncated back-propagation through
//! time). There is no fixed context length: a prompt of any length warms up the state.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use sora_text::Cell;
//! use sora_text::lm::{LanguageModelConfig, Sampler, SamplingConfig};
//!
//! # fn main() -> Result<(), sora_text::lm::LmError> {
//! let device = Device::flex();
//! device.seed(7);
//! let config = LanguageModelConfig::new(10).with_d_hidden(16).with_cell(Cell::Gru);
//! let model = config.init(&device)?;
//!
//! // Two streams of three tokens: logits for every position, and the state to continue from.
//! let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 3, 4, 5, 6, 7], [2, 3]), &device);
//! let (logits, state) = model.forward(ids, None);
//! assert_eq!(logits.dims(), [2, 3, 10]);
//! assert_eq!(state.batch_size(), 2);
//!
//! // Greedy continuation of a prompt, at most five tokens.
//! let mut sampler = Sampler::new(SamplingConfig::greedy(5))?;
//! let written = model.generate(&[2, 3], &mut sampler, |_| std::ops::ControlFlow::Continue(()))?;
//! assert_eq!(written.len(), 5);
//! assert!(written.iter().all(|&id| id >= 2 && id < 10)); // never `<pad>` or `<unk>`
//! # Ok(())
//! # }
//! ```

use std::ops::ControlFlow;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::lstm::LstmState;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sora_kernels::linear::{Act, forward_layer};

use crate::Cell;
use crate::gru::{FusedGru, FusedGruConfig};
use crate::lstm::{FusedLstm, FusedLstmConfig};
use crate::tokenize::Vocabulary;

/// Tokens fed to the model at once while a prompt warms up the state: a prompt of any length
/// is accepted and read in chunks of this many tokens, the state carried between them.
pub const PROMPT_CHUNK: usize = 256;

/// Result type of this module.
pub type Result<T, E = LmError> = std::result::Result<T, E>;

/// Errors of the language model and the sampler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LmError {
    /// A configuration field is out of its range.
    #[error("{field}: expected {expected}, found {found}")]
    InvalidField {
        /// The field, as named in the configuration.
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
        /// The value given.
        found: String,
    },
    /// Generation needs at least one token to start from.
    #[error("the prompt has no tokens; start from at least one (e.g. the line-break token)")]
    EmptyPrompt,
    /// A token id is not in the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange {
        /// The id found.
        id: usize,
        /// The vocabulary's size.
        vocab_size: usize,
    },
}

fn invalid(field: &'static str, expected: &'static str, found: impl ToString) -> LmError {
    LmError::InvalidField {
        field,
        expected,
        found: found.to_string(),
    }
}

/// Shape of a [`LanguageModel`]; saved beside its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageModelConfig {
    /// Tokens in the vocabulary, `<pad>` and `<unk>` included (at least 3).
    pub vocab_size: usize,
    /// Embedding width.
    #[serde(default = "default_d_embed")]
    pub d_embed: usize,
    /// Hidden width of every recurrent layer.
    #[serde(default = "default_d_hidden")]
    pub d_hidden: usize,
    /// Stacked recurrent layers.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// The recurrent cell.
    #[serde(default = "default_cell")]
    pub cell: Cell,
    /// Dropout on the embeddings, between recurrent layers and before the projection, in
    /// `[0, 1)`; applied only by [`LanguageModel::forward_train`].
    #[serde(default)]
    pub dropout: f64,
}

fn default_d_embed() -> usize {
    64
}
fn default_d_hidden() -> usize {
    128
}
fn default_layers() -> usize {
    1
}
fn default_cell() -> Cell {
    Cell::Lstm
}

impl LanguageModelConfig {
    /// A one-layer LSTM model over `vocab_size` tokens: 64-wide embeddings, 128 hidden
    /// units, no dropout.
    pub fn new(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_embed: default_d_embed(),
            d_hidden: default_d_hidden(),
            layers: default_layers(),
            cell: default_cell(),
            dropout: 0.0,
        }
    }

    /// Sets the embedding width.
    pub fn with_d_embed(mut self, d_embed: usize) -> Self {
        self.d_embed = d_embed;
        self
    }

    /// Sets the hidden width.
    pub fn with_d_hidden(mut self, d_hidden: usize) -> Self {
        self.d_hidden = d_hidden;
        self
    }

    /// Sets the number of stacked recurrent layers.
    pub fn with_layers(mut self, layers: usize) -> Self {
        self.layers = layers;
        self
    }

    /// Sets the recurrent cell.
    pub fn with_cell(mut self, cell: Cell) -> Self {
        self.cell = cell;
        self
    }

    /// Sets the dropout.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Checks every field; the error names the first one out of range.
    ///
    /// ```
    /// use sora_text::lm::{LanguageModelConfig, LmError};
    ///
    /// let err = LanguageModelConfig::new(40).with_layers(0).check().unwrap_err();
    /// assert_eq!(err.to_string(), "layers: expected at least 1, found 0");
    /// ```
    pub fn check(&self) -> Result<()> {
        const LIMIT: usize = 1 << 24;
        if !(3..=LIMIT).contains(&self.vocab_size) {
            return Err(invalid(
                "vocab_size",
                "3 to 2^24 tokens (<pad>, <unk> and at least one more)",
                self.vocab_size,
            ));
        }
        for (field, value) in [
            ("d_embed", self.d_embed),
            ("d_hidden", self.d_hidden),
            ("layers", self.layers),
        ] {
            if value == 0 {
                return Err(invalid(field, "at least 1", value));
            }
            if value > LIMIT {
                return Err(invalid(field, "at most 2^24", value));
            }
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(invalid("dropout", "a probability in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Number of parameters of the model.
    pub fn n_params(&self) -> usize {
        let gates = match self.cell {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        };
        let (v, e, h) = (self.vocab_size, self.d_embed, self.d_hidden);
        let mut total = v * e + h * v + v;
        let mut width = e;
        for _ in 0..self.layers {
            total += gates * (width * h + h * h + 2 * h);
            width = h;
        }
        total
    }

    /// Checks the config, then allocates the model on `device`, every parameter drawn at
    /// once from the device's random generator (seed it first with `device.seed`: the same
    /// seed gives the same weights).
    pub fn init(&self, device: &Device) -> Result<LanguageModel> {
        self.check()?;
        let mut width = self.d_embed;
        let mut rnn = Vec::with_capacity(self.layers);
        for _ in 0..self.layers {
            rnn.push(match self.cell {
                Cell::Lstm => {
                    RecurrentLayer::Lstm(FusedLstmConfig::new(width, self.d_hidden).init(device))
                }
                Cell::Gru => {
                    RecurrentLayer::Gru(FusedGruConfig::new(width, self.d_hidden).init(device))
                }
            });
            width = self.d_hidden;
        }
        let model = LanguageModel {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_embed).init(device),
            rnn,
            dropout: self.dropout,
            output: LinearConfig::new(self.d_hidden, self.vocab_size).init(device),
            vocab_size: self.vocab_size,
        };
        // Parameters are created lazily; drawing them now, in module order, makes the
        // weights a function of the seed alone.
        model.visit(&mut Materialize);
        Ok(model)
    }
}

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// One recurrent layer of a [`LanguageModel`].
// A model holds a few of these, built once; Burn's module derive takes the layers by value.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum RecurrentLayer {
    /// Long short-term memory (fused).
    Lstm(FusedLstm),
    /// Gated recurrent unit (fused).
    Gru(FusedGru),
}

/// The state of one recurrent layer.
// One per layer, moved once per chunk: a box would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum LayerState {
    Lstm(LstmState<2>),
    Gru(Tensor<2>),
}

/// The recurrent state of every layer of a [`LanguageModel`], for a batch of streams.
#[derive(Debug, Clone)]
pub struct LmState {
    layers: Vec<LayerState>,
}

impl LmState {
    /// The same values, cut from the computation graph: the next chunk's gradients stop here
    /// (truncated back-propagation through time).
    pub fn detach(self) -> Self {
        let layers = self
            .layers
            .into_iter()
            .map(|state| match state {
                LayerState::Lstm(s) => {
                    LayerState::Lstm(LstmState::new(s.cell.detach(), s.hidden.detach()))
                }
                LayerState::Gru(h) => LayerState::Gru(h.detach()),
            })
            .collect();
        Self { layers }
    }

    /// Number of streams the state is for.
    pub fn batch_size(&self) -> usize {
        match self.layers.first() {
            Some(LayerState::Lstm(s)) => s.hidden.dims()[0],
            Some(LayerState::Gru(h)) => h.dims()[0],
            None => 0,
        }
    }
}

impl RecurrentLayer {
    /// # Shapes
    /// - input: `[batch, seq_len, d_in]`, state `[batch, d_hidden]` per tensor
    /// - output: `[batch, seq_len, d_hidden]`, state `[batch, d_hidden]`
    fn forward(&self, x: Tensor<3>, state: Option<LayerState>) -> (Tensor<3>, LayerState) {
        match self {
            RecurrentLayer::Lstm(lstm) => {
                let state = state.map(|s| match s {
                    LayerState::Lstm(s) => s,
                    LayerState::Gru(_) => unreachable!("an LSTM layer carries an LSTM state"),
                });
                let (out, state) = lstm.forward(x, state);
                (out, LayerState::Lstm(state))
            }
            RecurrentLayer::Gru(gru) => {
                let state = state.map(|s| match s {
                    LayerState::Gru(h) => h,
                    LayerState::Lstm(_) => unreachable!("a GRU layer carries a GRU state"),
                });
                let out = gru.forward(x, state);
                let [b, t, h] = out.dims();
                let last = out.clone().slice([0..b, t - 1..t, 0..h]).reshape([b, h]);
                (out, LayerState::Gru(last))
            }
        }
    }
}

/// Embedding → LSTM or GRU layers → projection to the vocabulary: next-token logits.
#[derive(Module, Debug)]
pub struct LanguageModel {
    /// The token embedding table, `[vocab_size, d_embed]`.
    pub embedding: Embedding,
    /// The recurrent layers, in order.
    pub rnn: Vec<RecurrentLayer>,
    /// The projection of the last layer's states onto the vocabulary.
    pub output: Linear,
    /// Dropout probability on the embeddings, between layers and before the projection
    /// (used by [`LanguageModel::forward_train`] only).
    #[module(skip)]
    pub dropout: f64,
    /// Tokens in the vocabulary.
    #[module(skip)]
    pub vocab_size: usize,
}

impl LanguageModel {
    /// Next-token logits for every position, and the state after the last one; `state`
    /// continues the streams of a previous call (zeros when `None`). No dropout.
    ///
    /// # Shapes
    /// - ids: `[batch, seq_len]`
    /// - state: one `[batch, d_hidden]` per layer (two for an LSTM: hidden and cell)
    /// - logits: `[batch, seq_len, vocab_size]`
    pub fn forward(&self, ids: Tensor<2, Int>, state: Option<LmState>) -> (Tensor<3>, LmState) {
        self.run(ids, state, None)
    }

    /// [`LanguageModel::forward`] with dropout, for training: the masks are drawn from `rng`
    /// (not from the device's generator), so a seeded `rng` gives the same masks whatever
    /// else runs on the device.
    ///
    /// # Shapes
    /// - ids: `[batch, seq_len]`
    /// - state: one `[batch, d_hidden]` per layer (two for an LSTM: hidden and cell)
    /// - logits: `[batch, seq_len, vocab_size]`
    pub fn forward_train(
        &self,
        ids: Tensor<2, Int>,
        state: Option<LmState>,
        rng: &mut dyn RngCore,
    ) -> (Tensor<3>, LmState) {
        self.run(ids, state, Some(rng))
    }

    fn run(
        &self,
        ids: Tensor<2, Int>,
        state: Option<LmState>,
        mut rng: Option<&mut dyn RngCore>,
    ) -> (Tensor<3>, LmState) {
        let mut x = self.embedding.forward(ids);
        let mut previous = state.map(|s| s.layers.into_iter());
        let mut layers = Vec::with_capacity(self.rnn.len());
        for layer in &self.rnn {
            x = self.drop(x, &mut rng);
            let (out, state) = layer.forward(x, previous.as_mut().and_then(Iterator::next));
            layers.push(state);
            x = out;
        }
        x = self.drop(x, &mut rng);
        (
            forward_layer(&self.output, x, Act::Identity),
            LmState { layers },
        )
    }

    /// Inverted dropout: each value is zeroed with probability `dropout`, the rest scaled by
    /// `1 / (1 - dropout)`; nothing without a generator.
    ///
    /// # Shapes
    /// - input and output: `[batch, seq_len, d]`
    fn drop(&self, x: Tensor<3>, rng: &mut Option<&mut dyn RngCore>) -> Tensor<3> {
        let Some(rng) = rng.as_mut().filter(|_| self.dropout > 0.0) else {
            return x;
        };
        let dims = x.dims();
        // P(next_u32 < threshold) = threshold / 2^32 = dropout (to 2^-32).
        let threshold = (self.dropout * 4_294_967_296.0) as u32;
        let keep = (1.0 / (1.0 - self.dropout)) as f32;
        let mask: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| {
                if rng.next_u32() < threshold {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mask = Tensor::<3>::from_data(TensorData::new(mask, dims), &x.device());
        x * mask
    }

    /// Writes up to `sampler`'s `max_tokens` tokens after `prompt`.
    ///
    /// The prompt (at least one token; any length, read [`PROMPT_CHUNK`] tokens at a time)
    /// warms up the state; then each token is drawn by `sampler` from the logits after the
    /// previous one and handed to `on_token` at once (to stream it), and generation stops
    /// after a stop token of the sampler, when `on_token` returns
    /// [`ControlFlow::Break`], or at `max_tokens`. The written tokens (stop token included)
    /// are returned. Call it on a model without autodiff (`model.valid()`), on any device.
    pub fn generate(
        &self,
        prompt: &[usize],
        sampler: &mut Sampler,
        mut on_token: impl FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Vec<usize>> {
        if prompt.is_empty() {
            return Err(LmError::EmptyPrompt);
        }
        if let Some(&id) = prompt.iter().find(|&&id| id >= self.vocab_size) {
            return Err(LmError::TokenOutOfRange {
                id,
                vocab_size: self.vocab_size,
            });
        }
        let device = self.output.weight.device();
        let ids = |chunk: &[usize]| {
            let data: Vec<i64> = chunk.iter().map(|&id| id as i64).collect();
            Tensor::<2, Int>::from_data(TensorData::new(data, [1, chunk.len()]), &device)
        };
        let mut state = None;
        let mut last = None;
        for chunk in prompt.chunks(PROMPT_CHUNK) {
            let (logits, next) = self.forward(ids(chunk), state);
            let t = chunk.len();
            last = Some(logits.slice([0..1, t - 1..t, 0..self.vocab_size]));
            state = Some(next);
        }
        let mut written = Vec::new();
        let mut logits = last.expect("the prompt has at least one chunk");
        while written.len() < sampler.config().max_tokens {
            let values = logits
                .try_into_vec_as::<f32>()
                .expect("logits read back as f32");
            let id = sampler.sample(&values);
            written.push(id);
            if on_token(id).is_break() || sampler.config().stop_tokens.contains(&id) {
                break;
            }
            if written.len() == sampler.config().max_tokens {
                break;
            }
            let (next_logits, next) = self.forward(ids(&[id]), state);
            logits = next_logits;
            state = Some(next);
        }
        Ok(written)
    }
}

/// How a [`Sampler`] draws tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens; 0 means
    /// greedy (always the most likely token). Must be finite and not negative.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (at least 1; more than the vocabulary keeps all).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least `p`
    /// (nucleus sampling), `p` in `(0, 1]`.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// The most tokens written (0 writes none).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Token ids that end generation once written.
    #[serde(default)]
    pub stop_tokens: Vec<usize>,
    /// Seed of the random draws: the same seed gives the same tokens.
    #[serde(default)]
    pub seed: u64,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_max_tokens() -> usize {
    200
}

impl Default for SamplingConfig {
    /// Temperature 1, no top-k or top-p cut, 200 tokens, no stop token, seed 0.
    fn default() -> Self {
        Self {
            temperature: default_temperature(),
            top_k: None,
            top_p: None,
            max_tokens: default_max_tokens(),
            stop_tokens: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding (temperature 0) of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            max_tokens,
            ..Self::default()
        }
    }

    /// Checks the fields; the error names the first one out of range.
    ///
    /// ```
    /// use sora_text::lm::SamplingConfig;
    ///
    /// let config = SamplingConfig { top_p: Some(1.5), ..Default::default() };
    /// assert_eq!(config.check().unwrap_err().to_string(), "top_p: expected a value in (0, 1], found 1.5");
    /// let config = SamplingConfig { temperature: -0.5, ..Default::default() };
    /// assert!(config.check().unwrap_err().to_string().starts_with("temperature: "));
    /// ```
    pub fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(invalid(
                "temperature",
                "a finite value >= 0 (0 is greedy)",
                self.temperature,
            ));
        }
        if self.top_k == Some(0) {
            return Err(invalid("top_k", "at least 1", 0));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(invalid("top_p", "a value in (0, 1]", p));
        }
        Ok(())
    }
}

/// Draws the next token from logits, as its [`SamplingConfig`] says, with a ChaCha8 generator
/// seeded from the config: the same seed and logits give the same tokens.
///
/// `<pad>` and `<unk>` ([`Vocabulary::PAD`], [`Vocabulary::UNK`]) are never drawn. Ties
/// (greedy, or at the top-k / top-p cut) go to the lower id.
///
/// ```
/// use sora_text::lm::{Sampler, SamplingConfig};
///
/// # fn main() -> Result<(), sora_text::lm::LmError> {
/// let logits = [9.0, 9.0, 1.0, 3.0, 2.0]; // ids 0 and 1 are <pad> and <unk>
/// assert_eq!(Sampler::new(SamplingConfig::greedy(1))?.sample(&logits), 3);
/// let top1 = SamplingConfig { top_k: Some(1), ..Default::default() };
/// assert_eq!(Sampler::new(top1)?.sample(&logits), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplingConfig,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler for `config`, after [`SamplingConfig::check`].
    pub fn new(config: SamplingConfig) -> Result<Self> {
        config.check()?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Ok(Self { config, rng })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// The probabilities the next draw uses, over the whole vocabulary (0 outside the kept
    /// tokens; all mass on the most likely token when greedy).
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f64> {
        let mut p = vec![0.0; logits.len()];
        let allowed: Vec<usize> = (0..logits.len())
            .filter(|&id| id != Vocabulary::PAD && id != Vocabulary::UNK)
            .collect();
        // Most likely first; ties by id. NaN logits sort last.
        let mut order = allowed;
        order.sort_by(|&a, &b| {
            let (x, y) = (logits[a] as f64, logits[b] as f64);
            y.partial_cmp(&x)
                .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
                .then(a.cmp(&b))
        });
        let Some(&best) = order.first() else {
            return p;
        };
        if self.config.temperature == 0.0 {
            p[best] = 1.0;
            return p;
        }
        let t = self.config.temperature;
        let top = logits[best] as f64 / t;
        let mut weights: Vec<f64> = order
            .iter()
            .map(|&id| {
                let w = (logits[id] as f64 / t - top).exp();
                if w.is_nan() { 0.0 } else { w }
            })
            .collect();
        if let Some(k) = self.config.top_k {
            weights.truncate(k.max(1));
        }
        let total: f64 = weights.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            // Logits that are all NaN (a diverged model) leave nothing to weigh: the first
            // token in the order takes all the mass, so a token is still drawn.
            p[best] = 1.0;
            return p;
        }
        if let Some(top_p) = self.config.top_p {
            let mut cumulative = 0.0;
            let mut keep = weights.len();
            for (i, w) in weights.iter().enumerate() {
                cumulative += w / total;
                if cumulative >= top_p {
                    keep = i + 1;
                    break;
                }
            }
            weights.truncate(keep);
        }
        let total: f64 = weights.iter().sum();
        for (&id, w) in order.iter().zip(&weights) {
            p[id] = w / total;
        }
        p
    }

    /// Draws one token id from `logits` (one per vocabulary entry).
    pub fn sample(&mut self, logits: &[f32]) -> usize {
        let p = self.probabilities(logits);
        if self.config.temperature == 0.0 {
            return (0..p.len()).find(|&id| p[id] == 1.0).unwrap_or(0);
        }
        let mut order: Vec<usize> = (0..p.len()).filter(|&id| p[id] > 0.0).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let mut u: f64 = self.rng.random::<f64>();
        for &id in &order {
            u -= p[id];
            if u < 0.0 {
                return id;
            }
        }
        // Rounding left a sliver of mass: the least likely kept token takes it.
        order.last().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_top_k_top_p() {
        // ids 0, 1 are specials; 2..6 have logits ln(4), ln(3), ln(2), ln(1).
        let logits = [5.0, 5.0, 4f32.ln(), 3f32.ln(), 2f32.ln(), 0.0];
        let p = Sampler::new(SamplingConfig::default())
            .unwrap()
            .probabilities(&logits);
        let expected = [0.0, 0.0, 0.4, 0.3, 0.2, 0.1];
        for (a, b) in p.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
        let cut = |config: SamplingConfig| Sampler::new(config).unwrap().probabilities(&logits);
        let top2 = cut(SamplingConfig {
            top_k: Some(2),
            ..Default::default()
        });
        assert!(
            (top2[2] - 4.0 / 7.0).abs() < 1e-6 && top2[4] == 0.0,
            "{top2:?}"
        );
        // 0.4 + 0.3 = 0.7 reaches p = 0.65: two tokens.
        let nucleus = cut(SamplingConfig {
            top_p: Some(0.65),
            ..Default::default()
        });
        assert_eq!(nucleus.iter().filter(|&&x| x > 0.0).count(), 2);
        let hot = cut(SamplingConfig {
            temperature: 2.0,
            ..Default::default()
        });
        // Temperature 2 takes square roots of the odds: flatter than temperature 1.
        assert!(hot[2] < 0.4 && hot[5] > 0.1, "{hot:?}");
        let all = cut(SamplingConfig {
            top_k: Some(100),
            top_p: Some(1.0),
            ..Default::default()
        });
        assert_eq!(all, p);
    }

    #[test]
    fn draws_follow_the_probabilities_and_the_seed() {
        let logits = [0.0, 0.0, 4f32.ln(), 3f32.ln(), 2f32.ln(), 0.0];
        let mut sampler = Sampler::new(SamplingConfig {
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let mut counts = [0usize; 6];
        let draws: Vec<usize> = (0..20_000).map(|_| sampler.sample(&logits)).collect();
        draws.iter().for_each(|&id| counts[id] += 1);
        assert_eq!((counts[0], counts[1]), (0, 0));
        for (id, p) in [(2, 0.4), (3, 0.3), (4, 0.2), (5, 0.1)] {
            let f = counts[id] as f64 / 20_000.0;
            // Four standard errors of a binomial proportion at n = 20,000 is below 0.014.
            assert!((f - p).abs() < 0.014, "id {id}: {f} vs {p}");
        }
        let mut again = Sampler::new(SamplingConfig {
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let repeat: Vec<usize> = (0..20_000).map(|_| again.sample(&logits)).collect();
        assert_eq!(draws, repeat);
    }

    #[test]
    fn nan_logits_still_give_a_token() {
        let logits = [0.0, 0.0, f32::NAN, f32::NAN];
        let mut sampler = Sampler::new(SamplingConfig::default()).unwrap();
        let id = sampler.sample(&logits);
        assert!(id >= 2, "{id}");
    }

    #[test]
    fn bad_sampling_fields_are_named() {
        let field = |config: SamplingConfig| match Sampler::new(config).unwrap_err() {
            LmError::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        };
        let base = SamplingConfig::default();
        for t in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                field(SamplingConfig {
                    temperature: t,
                    ..base.clone()
                }),
                "temperature"
            );
        }
        assert_eq!(
            field(SamplingConfig {
                top_k: Some(0),
                ..base.clone()
            }),
            "top_k"
        );
        for p in [0.0, -0.1, 1.01, f64::NAN] {
            assert_eq!(
                field(SamplingConfig {
                    top_p: Some(p),
                    ..base.clone()
                }),
                "top_p"
            );
        }
    }

    #[test]
    fn config_checks_and_counts_parameters() {
        assert!(LanguageModelConfig::new(2).check().is_err());
        assert!(
            LanguageModelConfig::new(10)
                .with_dropout(1.0)
                .check()
                .is_err()
        );
        let config = LanguageModelConfig::new(10)
            .with_d_embed(4)
            .with_d_hidden(6)
            .with_layers(2)
            .with_cell(Cell::Gru);
        let device = sora_device::test_device();
        let model = config.init(&device).unwrap();
        assert_eq!(model.num_params(), config.n_params());
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<LanguageModelConfig>(&json).unwrap(),
            config
        );
        let short: LanguageModelConfig = serde_json::from_str(r#"{"vocab_size": 12}"#).unwrap();
        assert_eq!(short, LanguageModelConfig::new(12));
    }

    #[test]
    fn dropout_masks_come_from_the_given_generator() {
        let device = sora_device::test_device();
        device.seed(2);
        let model = LanguageModelConfig::new(9)
            .with_d_embed(5)
            .with_d_hidden(7)
            .with_dropout(0.5)
            .init(&device)
            .unwrap();
        let ids =
            || Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 3, 4], [1, 3]), &device);
        let logits = |rng: &mut ChaCha8Rng| {
            model
                .forward_train(ids(), None, rng)
                .0
                .try_into_vec_as::<f32>()
                .unwrap()
        };
        let a = logits(&mut ChaCha8Rng::seed_from_u64(1));
        // Draws from the device's generator in between change nothing.
        let _ = Tensor::<2>::random([50, 50], burn::tensor::Distribution::Default, &device);
        assert_eq!(a, logits(&mut ChaCha8Rng::seed_from_u64(1)));
        assert_ne!(a, logits(&mut ChaCha8Rng::seed_from_u64(2)));
        let plain = model
            .forward(ids(), None)
            .0
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_ne!(a, plain);
    }

    #[test]
    fn state_carries_across_chunks() {
        // Reading a sequence in two chunks with the carried state gives the logits of one
        // pass over the whole sequence, for both cells and two layers.
        for cell in [Cell::Lstm, Cell::Gru] {
            let device = sora_device::test_device();
            device.seed(1);
            let model = LanguageModelConfig::new(9)
                .with_d_embed(5)
                .with_d_hidden(7)
                .with_layers(2)
                .with_cell(cell)
                .init(&device)
                .unwrap();
            let ids = |v: Vec<i64>, t: usize| {
                Tensor::<2, Int>::from_data(TensorData::new(v, [1, t]), &device)
            };
            let (whole, _) = model.forward(ids(vec![2, 3, 4, 5, 6], 5), None);
            let (first, state) = model.forward(ids(vec![2, 3, 4], 3), None);
            let (second, _) = model.forward(ids(vec![5, 6], 2), Some(state.detach()));
            let whole = whole.try_into_vec_as::<f32>().unwrap();
            let parts: Vec<f32> = first
                .try_into_vec_as::<f32>()
                .unwrap()
                .into_iter()
                .chain(second.try_into_vec_as::<f32>().unwrap())
                .collect();
            for (a, b) in whole.iter().zip(&parts) {
                // Same operations in the same order; the bound allows another summation order.
                assert!((a - b).abs() < 1e-5, "{cell:?}: {a} vs {b}");
            }
        }
    }
}
