//! # sora-text
//!
//! Text for Sora models: a [`tokenize::Tokenizer`] (Unicode word segmentation, lower-casing,
//! HTML entities decoded, optional character n-grams), a [`tokenize::Vocabulary`] built from
//! training documents only (minimum count, maximum size, `<pad>` and `<unk>`) that serialises
//! with the model, and [`tokenize::pad_batch`] (padding or truncation to a length, with a
//! mask); and the [`TextEncoder`] declared by a [`TextSpec`] in the model spec: an embedding
//! table, optionally LSTM or GRU layers (stacked, bidirectional), pooled over the real tokens
//! (masked mean — with no recurrent layer, the bag of embeddings —, max, last state, or
//! attention).
//!
//! The recurrent layers are [`lstm::FusedLstm`], [`lstm::FusedBiLstm`], [`gru::FusedGru`] and
//! [`gru::FusedBiGru`]: one weight matrix for the input and hidden transforms of all gates,
//! PyTorch's gate formulation, initialisation and parameter count, and the whole sequence (with
//! its backward pass through time) as one fused operation of `sora-kernels` on the CPU backends.
//!
//! [`lm`] holds recurrent language models (embedding → LSTM/GRU → vocabulary logits, trained on
//! next tokens) and the seeded [`lm::Sampler`] that lets them write: greedy, temperature, top-k
//! and top-p.
//!
//! ```
//! use sora_text::tokenize::{Tokenizer, VocabConfig, Vocabulary, Truncate, pad_batch};
//!
//! # fn main() -> Result<(), sora_text::tokenize::TextError> {
//! let tokenizer = Tokenizer::default();
//! let docs: Vec<Vec<String>> = ["Great food!", "Not great at all."]
//!     .iter()
//!     .map(|t| tokenizer.tokenize(t))
//!     .collect();
//! let vocab = Vocabulary::build(docs.iter().map(Vec::as_slice), &VocabConfig::default());
//! let ids: Vec<Vec<usize>> = docs.iter().map(|d| vocab.encode(d)).collect();
//! let batch = pad_batch(&ids, 4, Truncate::Head)?;
//! assert_eq!(batch.lengths, [2, 4]);
//! assert_eq!(vocab.id("never seen"), Vocabulary::UNK);
//! # Ok(())
//! # }
//! ```

mod encoder;
pub mod gru;
pub mod lm;
pub mod lstm;
pub mod recommend;
pub mod tokenize;

pub use encoder::{Cell, RnnLayer, RnnSpec, SeqPool, TextEncoder, TextKind, TextSpec};
