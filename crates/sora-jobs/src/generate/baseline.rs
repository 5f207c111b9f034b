//! What a held-out evaluation measures, and the n-gram references beside the model.

#[allow(unused_imports)]
use super::*;

/// What a held-out evaluation measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LmMetrics {
    /// Mean next-token cross-entropy, in nats per token.
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// `loss / ln 2` for a character model (bits per character); `None` for words.
    pub bits_per_char: Option<f64>,
    /// Tokens predicted.
    pub tokens: usize,
}

impl LmMetrics {
    pub(super) fn new(loss: f64, tokens: usize, kind: TokenKind) -> Self {
        Self {
            loss,
            perplexity: loss.exp(),
            bits_per_char: (kind == TokenKind::Char).then(|| loss / LN_2),
            tokens,
        }
    }
}

/// The n-gram references of a run, on the same held-out tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Add-one-smoothed unigram model.
    pub unigram: LmMetrics,
    /// Add-one-smoothed bigram model.
    pub bigram: LmMetrics,
}

/// Held-out cross-entropy of add-one-smoothed unigram and bigram models fitted on `train`.
///
/// Over `V = vocab_size − 1` outcomes (every token but `<pad>`, which never occurs):
/// `p(w) = (c(w) + 1) / (N + V)` and `p(w | v) = (c(v w) + 1) / (c(v ·) + V)`, where `c(v ·)`
/// counts `v` followed by any token. Every held-out token after the first is predicted (its
/// predecessor is its context), so both models score the same `held_out.len() − 1` tokens.
///
/// ```
/// use sora_jobs::generate::{TokenKind, ngram_baselines};
///
/// // Tokens 2 and 3 alternate; a bigram model sees it, a unigram model cannot.
/// let train: Vec<usize> = (0..100).map(|i| 2 + i % 2).collect();
/// let held_out = [2, 3, 2, 3, 2, 3];
/// let b = ngram_baselines(&train, &held_out, 4, TokenKind::Word);
/// assert!((b.unigram.perplexity - 103.0 / 51.0).abs() < 1e-9);
/// assert!(b.bigram.perplexity < 1.1);
/// assert_eq!(b.bigram.tokens, 5);
/// ```
pub fn ngram_baselines(
    train: &[usize],
    held_out: &[usize],
    vocab_size: usize,
    kind: TokenKind,
) -> Baselines {
    let v = vocab_size.saturating_sub(1).max(1) as f64;
    let mut unigram = vec![0usize; vocab_size];
    let mut context = vec![0usize; vocab_size];
    let mut bigram = std::collections::HashMap::new();
    for &id in train {
        unigram[id] += 1;
    }
    for pair in train.windows(2) {
        context[pair[0]] += 1;
        *bigram.entry((pair[0], pair[1])).or_insert(0usize) += 1;
    }
    let n = train.len() as f64;
    let (mut uni, mut bi) = (0.0, 0.0);
    for pair in held_out.windows(2) {
        let (prev, id) = (pair[0], pair[1]);
        uni -= ((unigram[id] as f64 + 1.0) / (n + v)).ln();
        let pair_count = bigram.get(&(prev, id)).copied().unwrap_or(0) as f64;
        bi -= ((pair_count + 1.0) / (context[prev] as f64 + v)).ln();
    }
    let count = held_out.len().saturating_sub(1);
    let per = count.max(1) as f64;
    Baselines {
        unigram: LmMetrics::new(uni / per, count, kind),
        bigram: LmMetrics::new(bi / per, count, kind),
    }
}
