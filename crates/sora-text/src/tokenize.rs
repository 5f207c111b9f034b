//! Text → token ids: a Unicode [`Tokenizer`], a [`Vocabulary`] built from training documents,
//! and [`pad_batch`] to turn id sequences into fixed-length, masked batches.
//!
//! Tokenizing decodes the HTML entities `&lt; &gt; &amp; &quot; &apos;` and numeric ones
//! (`&#39;`, `&#x27;`) first — SMS and web data often hold them, e.g. `&lt;#&gt;` — then
//! splits the text into words with Unicode word segmentation (UAX #29), optionally
//! lower-cases them, keeps punctuation, and adds fastText-style character n-grams.
//!
//! ```
//! use sora_text::tokenize::{
//!     Tokenizer, TokenizerConfig, Truncate, VocabConfig, Vocabulary, pad_batch,
//! };
//!
//! # fn main() -> sora_text::tokenize::Result<()> {
//! let tokenizer = Tokenizer::new(TokenizerConfig::default())?;
//! assert_eq!(tokenizer.tokenize("Don't stop &amp; GO!"), ["don't", "stop", "go"]);
//!
//! // The vocabulary comes from the training documents only.
//! let train: Vec<Vec<String>> = ["Great phone, great price.", "The battery died."]
//!     .iter()
//!     .map(|text| tokenizer.tokenize(text))
//!     .collect();
//! let vocab = Vocabulary::build(train.iter().map(Vec::as_slice), &VocabConfig::default());
//! assert_eq!(vocab.token(2), Some("great"));
//!
//! let test = tokenizer.tokenize("Great screen");
//! let ids = vec![vocab.encode(&test)];
//! assert_eq!(ids[0], [2, Vocabulary::UNK]);
//!
//! let batch = pad_batch(&ids, 4, Truncate::Head)?;
//! assert_eq!(batch.ids, [2, Vocabulary::UNK, Vocabulary::PAD, Vocabulary::PAD]);
//! assert_eq!(batch.mask, [true, true, false, false]);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// Result type of this module.
pub type Result<T, E = TextError> = std::result::Result<T, E>;

/// Errors of the text pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// [`pad_batch`] was asked for sequences of length 0.
    #[error("the padded sequence length must be at least 1, got 0")]
    ZeroLength,
    /// `char_ngrams` is not a range `(min, max)` with `1 <= min <= max`.
    #[error("char_ngrams: expected (min, max) with 1 <= min <= max, found ({min}, {max})")]
    InvalidNgramRange {
        /// The shortest n-gram length asked for.
        min: usize,
        /// The longest n-gram length asked for.
        max: usize,
    },
    /// A stored vocabulary lacks a special token at its fixed index.
    #[error("vocabulary: expected special token `{expected}` at index {index}, found {found:?}")]
    MissingSpecial {
        /// The index the special token must have.
        index: usize,
        /// The special token expected there.
        expected: &'static str,
        /// What is there instead (`None`: the vocabulary is too short).
        found: Option<String>,
    },
    /// A stored vocabulary holds the same token twice.
    #[error("vocabulary: duplicate token `{token}` at indices {first} and {second}")]
    DuplicateToken {
        /// The repeated token.
        token: String,
        /// Its first index.
        first: usize,
        /// The index of the repeat.
        second: usize,
    },
    /// A stored vocabulary has a different number of tokens and counts.
    #[error("vocabulary: {tokens} tokens but {counts} counts")]
    CountMismatch {
        /// Number of tokens.
        tokens: usize,
        /// Number of counts.
        counts: usize,
    },
}

/// How to tokenize text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Lower-case every token with full Unicode case mapping (`str::to_lowercase`).
    pub lowercase: bool,
    /// `Some((min, max))`: each word also yields its character n-grams of lengths
    /// `min..=max`, taken over the word wrapped in boundary markers (`<word>`), fastText-style,
    /// as extra tokens prefixed `#` (`where` → `#<wh`, `#whe`, …). A lone `<` or `>` is never
    /// an n-gram. Needs `1 <= min <= max`.
    pub char_ngrams: Option<(usize, usize)>,
    /// Keep punctuation and symbols that word segmentation drops, each segment (normally a
    /// single character) as its own token; whitespace is always dropped.
    pub keep_punctuation: bool,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            lowercase: true,
            char_ngrams: None,
            keep_punctuation: false,
        }
    }
}

/// Splits text into tokens as its [`TokenizerConfig`] says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokenizer {
    config: TokenizerConfig,
}

impl Tokenizer {
    /// A tokenizer for `config`; fails with [`TextError::InvalidNgramRange`] when
    /// `char_ngrams` is not `(min, max)` with `1 <= min <= max`.
    ///
    /// ```
    /// use sora_text::tokenize::{TextError, Tokenizer, TokenizerConfig};
    ///
    /// let config = TokenizerConfig { char_ngrams: Some((3, 2)), ..Default::default() };
    /// assert_eq!(Tokenizer::new(config), Err(TextError::InvalidNgramRange { min: 3, max: 2 }));
    /// ```
    pub fn new(config: TokenizerConfig) -> Result<Self> {
        if let Some((min, max)) = config.char_ngrams
            && (min == 0 || min > max)
        {
            return Err(TextError::InvalidNgramRange { min, max });
        }
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// The tokens of `text`: HTML entities decoded, Unicode words (UAX #29; CJK text gives
    /// one token per ideograph), lower-cased, each word followed by its character n-grams.
    ///
    /// ```
    /// use sora_text::tokenize::{Tokenizer, TokenizerConfig};
    ///
    /// let config = TokenizerConfig { keep_punctuation: true, ..Default::default() };
    /// let tokenizer = Tokenizer::new(config).unwrap();
    /// assert_eq!(tokenizer.tokenize("Call me &lt;#&gt; OK?"), ["call", "me", "<", "#", ">", "ok", "?"]);
    /// ```
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let text = decode_entities(text);
        let mut tokens = Vec::new();
        if self.config.keep_punctuation {
            for piece in text.split_word_bounds() {
                if piece.chars().any(char::is_alphanumeric) {
                    self.push_word(piece, &mut tokens);
                } else if !piece.trim().is_empty() {
                    tokens.push(piece.trim().to_string());
                }
            }
        } else {
            for word in text.unicode_words() {
                self.push_word(word, &mut tokens);
            }
        }
        tokens
    }

    fn push_word(&self, word: &str, tokens: &mut Vec<String>) {
        let word = if self.config.lowercase {
            word.to_lowercase()
        } else {
            word.to_string()
        };
        if let Some((min, max)) = self.config.char_ngrams {
            let chars: Vec<char> = ['<'].into_iter().chain(word.chars()).chain(['>']).collect();
            tokens.push(word);
            for start in 0..chars.len() {
                for n in min..=max.min(chars.len() - start) {
                    if n == 1 && (start == 0 || start == chars.len() - 1) {
                        continue;
                    }
                    let mut gram = String::with_capacity(n + 1);
                    gram.push('#');
                    gram.extend(&chars[start..start + n]);
                    tokens.push(gram);
                }
            }
        } else {
            tokens.push(word);
        }
    }
}

/// Decodes `&lt; &gt; &amp; &quot; &apos;` and numeric entities (`&#39;`, `&#x27;`) once;
/// anything else (unknown names, invalid code points, `&#0;`) is left as it is.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match entity(rest) {
            Some((ch, used)) => {
                out.push(ch);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character and byte length of the entity at the start of `s` (which starts with `&`).
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.bytes().take(12).position(|b| b == b';')?;
    let ch = match &s[1..end] {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        name => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some((ch, end + 1))
}

/// How to build a [`Vocabulary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VocabConfig {
    /// Keep only tokens seen at least this many times (0 acts as 1).
    pub min_count: usize,
    /// At most this many entries, `<pad>` and `<unk>` included (never fewer than those two);
    /// the most frequent tokens are kept.
    pub max_size: Option<usize>,
}

impl Default for VocabConfig {
    fn default() -> Self {
        Self {
            min_count: 1,
            max_size: None,
        }
    }
}

/// Token ↔ id map: id 0 is `<pad>`, 1 is `<unk>`, then tokens by descending training count,
/// ties broken by the token string, so building is deterministic.
///
/// Serialises as `{"tokens": [...], "counts": [...]}`; deserialising checks the specials and
/// duplicates and rebuilds the lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VocabularyFile", into = "VocabularyFile")]
pub struct Vocabulary {
    tokens: Vec<String>,
    counts: Vec<usize>,
    index: HashMap<String, usize>,
}

/// The stored form of a [`Vocabulary`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    tokens: Vec<String>,
    counts: Vec<usize>,
}

impl TryFrom<VocabularyFile> for Vocabulary {
    type Error = TextError;

    fn try_from(file: VocabularyFile) -> Result<Self> {
        Self::from_parts(file.tokens, file.counts)
    }
}

impl From<Vocabulary> for VocabularyFile {
    fn from(vocab: Vocabulary) -> Self {
        Self {
            tokens: vocab.tokens,
            counts: vocab.counts,
        }
    }
}

impl Vocabulary {
    /// Id of the padding token `<pad>`.
    pub const PAD: usize = 0;
    /// Id of the unknown-token token `<unk>`.
    pub const UNK: usize = 1;
    /// The padding token.
    pub const PAD_TOKEN: &'static str = "<pad>";
    /// The unknown-token token.
    pub const UNK_TOKEN: &'static str = "<unk>";

    /// Builds a vocabulary from tokenized documents — the training documents only, so that
    /// validation and test words stay unknown as they would be for new data. The strings
    /// `<pad>` and `<unk>` are reserved and not counted.
    ///
    /// ```
    /// use sora_text::tokenize::{VocabConfig, Vocabulary};
    ///
    /// let docs = [vec!["b".to_string(), "a".into(), "b".into()], vec!["c".into(), "a".into()]];
    /// let config = VocabConfig { max_size: Some(4), ..Default::default() };
    /// let vocab = Vocabulary::build(docs.iter().map(Vec::as_slice), &config);
    /// assert_eq!(vocab.tokens(), ["<pad>", "<unk>", "a", "b"]);
    /// assert_eq!(vocab.id("c"), Vocabulary::UNK);
    /// ```
    pub fn build<'a>(docs: impl IntoIterator<Item = &'a [String]>, config: &VocabConfig) -> Self {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for token in docs.into_iter().flatten() {
            if token != Self::PAD_TOKEN && token != Self::UNK_TOKEN {
                *counts.entry(token).or_default() += 1;
            }
        }
        let mut ranked: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(_, count)| count >= config.min_count)
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.truncate(
            config
                .max_size
                .map_or(usize::MAX, |max| max.saturating_sub(2)),
        );

        let specials = [(Self::PAD_TOKEN, 0), (Self::UNK_TOKEN, 0)];
        let (tokens, counts): (Vec<String>, _) = specials
            .into_iter()
            .chain(ranked)
            .map(|(token, count)| (token.to_string(), count))
            .unzip();
        // Unique by construction: counted tokens are distinct map keys, specials excluded.
        let index = tokens.iter().cloned().zip(0..).collect();
        Self {
            tokens,
            counts,
            index,
        }
    }

    /// A vocabulary from its tokens in id order and their counts; fails unless `<pad>` and
    /// `<unk>` are at 0 and 1, no token repeats, and there is one count per token.
    pub fn from_parts(tokens: Vec<String>, counts: Vec<usize>) -> Result<Self> {
        if tokens.len() != counts.len() {
            return Err(TextError::CountMismatch {
                tokens: tokens.len(),
                counts: counts.len(),
            });
        }
        for (index, expected) in [(Self::PAD, Self::PAD_TOKEN), (Self::UNK, Self::UNK_TOKEN)] {
            if tokens.get(index).map(String::as_str) != Some(expected) {
                let found = tokens.get(index).cloned();
                return Err(TextError::MissingSpecial {
                    index,
                    expected,
                    found,
                });
            }
        }
        let mut index = HashMap::with_capacity(tokens.len());
        for (id, token) in tokens.iter().enumerate() {
            if let Some(first) = index.insert(token.clone(), id) {
                return Err(TextError::DuplicateToken {
                    token: token.clone(),
                    first,
                    second: id,
                });
            }
        }
        Ok(Self {
            tokens,
            counts,
            index,
        })
    }

    /// Number of entries, the two specials included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always `false`: a vocabulary holds at least `<pad>` and `<unk>`.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `token`, [`Vocabulary::UNK`] when it is not in the vocabulary.
    pub fn id(&self, token: &str) -> usize {
        self.index.get(token).copied().unwrap_or(Self::UNK)
    }

    /// The token with id `id`, if any.
    pub fn token(&self, id: usize) -> Option<&str> {
        self.tokens.get(id).map(String::as_str)
    }

    /// How often `token` occurred in the training documents; 0 for the specials and for
    /// tokens not in the vocabulary.
    pub fn count(&self, token: &str) -> usize {
        self.index.get(token).map_or(0, |&id| self.counts[id])
    }

    /// All tokens in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The ids of `tokens`, unknown ones as [`Vocabulary::UNK`].
    pub fn encode(&self, tokens: &[String]) -> Vec<usize> {
        tokens.iter().map(|token| self.id(token)).collect()
    }
}

/// Which end of a too-long document [`pad_batch`] keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncate {
    /// Keep the first `len` tokens.
    #[default]
    Head,
    /// Keep the last `len` tokens.
    Tail,
}

/// A batch of documents padded to one length, row-major `n × len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, `n × len`, padded with [`Vocabulary::PAD`] at the end of each row.
    pub ids: Vec<usize>,
    /// `true` on real tokens, `false` on padding, `n × len`.
    pub mask: Vec<bool>,
    /// The row length.
    pub len: usize,
    /// Real tokens per document, capped at `len`.
    pub lengths: Vec<usize>,
    /// Number of documents longer than `len` that were cut.
    pub truncated: usize,
}

impl Encoded {
    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.lengths.len()
    }
}

/// Pads (with [`Vocabulary::PAD`], at the end) or truncates every document to `len` ids.
///
/// A document with no tokens becomes a row of padding with an all-`false` mask and length 0;
/// models must handle such rows (e.g. mean pooling must not divide by zero). Fails with
/// [`TextError::ZeroLength`] when `len` is 0.
///
/// ```
/// use sora_text::tokenize::{Truncate, pad_batch};
///
/// let batch = pad_batch(&[vec![5, 6, 7], vec![]], 2, Truncate::Tail).unwrap();
/// assert_eq!(batch.ids, [6, 7, 0, 0]);
/// assert_eq!(batch.mask, [true, true, false, false]);
/// assert_eq!((batch.lengths, batch.truncated), (vec![2, 0], 1));
/// ```
pub fn pad_batch(docs: &[Vec<usize>], len: usize, truncate: Truncate) -> Result<Encoded> {
    if len == 0 {
        return Err(TextError::ZeroLength);
    }
    let mut ids = Vec::with_capacity(docs.len() * len);
    let mut mask = Vec::with_capacity(docs.len() * len);
    let mut lengths = Vec::with_capacity(docs.len());
    let mut truncated = 0;
    for doc in docs {
        let kept = match truncate {
            _ if doc.len() <= len => &doc[..],
            Truncate::Head => &doc[..len],
            Truncate::Tail => &doc[doc.len() - len..],
        };
        truncated += usize::from(doc.len() > len);
        ids.extend_from_slice(kept);
        ids.resize(ids.len() + len - kept.len(), Vocabulary::PAD);
        mask.extend((0..len).map(|i| i < kept.len()));
        lengths.push(kept.len());
    }
    Ok(Encoded {
        ids,
        mask,
        len,
        lengths,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(config: TokenizerConfig) -> Tokenizer {
        Tokenizer::new(config).unwrap()
    }

    fn strings(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn english_words_and_apostrophes() {
        let t = Tokenizer::default();
        assert_eq!(t.tokenize("Don't stop!"), ["don't", "stop"]);
        assert_eq!(
            t.tokenize("It's 4.5 stars, e-mail me..."),
            ["it's", "4.5", "stars", "e", "mail", "me"]
        );
        assert!(t.tokenize("  ?! ... ").is_empty());
        assert!(t.tokenize("").is_empty());
        let cased = tok(TokenizerConfig {
            lowercase: false,
            ..Default::default()
        });
        assert_eq!(cased.tokenize("Don't STOP"), ["Don't", "STOP"]);
    }

    #[test]
    fn non_ascii() {
        let t = Tokenizer::default();
        assert_eq!(t.tokenize("Café NAÏVE 東京"), ["café", "naïve", "東", "京"]);
        assert_eq!(t.tokenize("ΣΟΦΊΑ Straße"), ["σοφία", "straße"]);
        assert_eq!(t.tokenize("İ"), ["i\u{307}"]);
    }

    #[test]
    fn html_entities() {
        assert_eq!(
            decode_entities("&lt;#&gt; &amp; &quot;x&quot; it&#39;s &#x41;&#X42;"),
            "<#> & \"x\" it's AB"
        );
        // Decoded once; unknown or invalid entities and bare ampersands stay.
        assert_eq!(
            decode_entities("&amp;lt; &nbsp; &#55296; &#0; &#99999999999; AT&T &"),
            "&lt; &nbsp; &#55296; &#0; &#99999999999; AT&T &"
        );
        assert_eq!(decode_entities("&é;&#233;"), "&é;é");
        assert!(matches!(decode_entities("plain"), Cow::Borrowed("plain")));

        let t = Tokenizer::default();
        assert_eq!(
            t.tokenize("I&#39;ll call &lt;#&gt; later"),
            ["i'll", "call", "later"]
        );
        assert_eq!(t.tokenize("R&amp;D"), ["r", "d"]);
    }

    #[test]
    fn char_ngrams() {
        let t = tok(TokenizerConfig {
            char_ngrams: Some((2, 3)),
            ..Default::default()
        });
        assert_eq!(
            t.tokenize("Cat"),
            ["cat", "#<c", "#<ca", "#ca", "#cat", "#at", "#at>", "#t>"]
        );
        // Length-1 n-grams skip the lone boundary markers; n-grams longer than `<word>` are cut.
        let t = tok(TokenizerConfig {
            char_ngrams: Some((1, 9)),
            ..Default::default()
        });
        assert_eq!(t.tokenize("é"), ["é", "#<é", "#<é>", "#é", "#é>"]);
        let t = tok(TokenizerConfig {
            char_ngrams: Some((3, 3)),
            ..Default::default()
        });
        assert_eq!(t.tokenize("a be"), ["a", "#<a>", "be", "#<be", "#be>"]);
        assert_eq!(
            Tokenizer::new(TokenizerConfig {
                char_ngrams: Some((0, 2)),
                ..Default::default()
            }),
            Err(TextError::InvalidNgramRange { min: 0, max: 2 })
        );
    }

    #[test]
    fn keep_punctuation() {
        let t = tok(TokenizerConfig {
            keep_punctuation: true,
            ..Default::default()
        });
        assert_eq!(
            t.tokenize("Don't stop!!  Ok?"),
            ["don't", "stop", "!", "!", "ok", "?"]
        );
        assert_eq!(
            t.tokenize("$5 (cheap) :-)"),
            ["$", "5", "(", "cheap", ")", ":", "-", ")"]
        );
        assert_eq!(t.tokenize("\t\r\n "), Vec::<String>::new());
        let t = tok(TokenizerConfig {
            keep_punctuation: true,
            char_ngrams: Some((3, 3)),
            ..Default::default()
        });
        assert_eq!(t.tokenize("hi!"), ["hi", "#<hi", "#hi>", "!"]);
    }

    #[test]
    fn config_serde() {
        let config: TokenizerConfig = serde_json::from_str(r#"{"char_ngrams": [3, 5]}"#).unwrap();
        assert_eq!(
            config,
            TokenizerConfig {
                char_ngrams: Some((3, 5)),
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<TokenizerConfig>(r#"{"lower": false}"#).is_err());
        let vocab: VocabConfig = serde_json::from_str(r#"{"max_size": 10}"#).unwrap();
        assert_eq!(
            vocab,
            VocabConfig {
                min_count: 1,
                max_size: Some(10)
            }
        );
        assert_eq!(
            serde_json::from_str::<Truncate>(r#""tail""#).unwrap(),
            Truncate::Tail
        );
        assert_eq!(Truncate::default(), Truncate::Head);
    }

    fn docs() -> Vec<Vec<String>> {
        vec![
            strings(&["b", "a", "c", "b"]),
            strings(&["d", "a", "b", "e"]),
            strings(&["c", "<unk>"]),
        ]
    }

    fn build(config: &VocabConfig) -> Vocabulary {
        Vocabulary::build(docs().iter().map(Vec::as_slice), config)
    }

    #[test]
    fn vocabulary_order_and_lookup() {
        let vocab = build(&VocabConfig::default());
        // b:3, then a:2 and c:2 by string, then d:1, e:1; `<unk>` in the data is not counted.
        assert_eq!(vocab.tokens(), ["<pad>", "<unk>", "b", "a", "c", "d", "e"]);
        assert_eq!((vocab.len(), vocab.is_empty()), (7, false));
        assert_eq!(
            (
                vocab.id("b"),
                vocab.id("e"),
                vocab.id("zzz"),
                vocab.id("<pad>")
            ),
            (2, 6, 1, 0)
        );
        assert_eq!((vocab.token(3), vocab.token(7)), (Some("a"), None));
        assert_eq!(
            (vocab.count("b"), vocab.count("<unk>"), vocab.count("zzz")),
            (3, 0, 0)
        );
        assert_eq!(
            vocab.encode(&strings(&["a", "x", "e"])),
            [3, Vocabulary::UNK, 6]
        );
    }

    #[test]
    fn vocabulary_min_count_and_max_size() {
        let min2 = build(&VocabConfig {
            min_count: 2,
            ..Default::default()
        });
        assert_eq!(min2.tokens(), ["<pad>", "<unk>", "b", "a", "c"]);
        let max4 = build(&VocabConfig {
            max_size: Some(4),
            ..Default::default()
        });
        assert_eq!(max4.tokens(), ["<pad>", "<unk>", "b", "a"]);
        let max0 = build(&VocabConfig {
            max_size: Some(0),
            min_count: 0,
        });
        assert_eq!(max0.tokens(), ["<pad>", "<unk>"]);
        let empty = Vocabulary::build(std::iter::empty(), &VocabConfig::default());
        assert_eq!(
            (empty.len(), empty.is_empty(), empty.id("a")),
            (2, false, Vocabulary::UNK)
        );
    }

    #[test]
    fn vocabulary_serde_round_trip_and_rejection() {
        let vocab = build(&VocabConfig::default());
        let json = serde_json::to_string(&vocab).unwrap();
        assert_eq!(
            json,
            r#"{"tokens":["<pad>","<unk>","b","a","c","d","e"],"counts":[0,0,3,2,2,1,1]}"#
        );
        let back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!((back.id("c"), back.count("c"), back.id("q")), (4, 2, 1));

        let dup = json.replace(r#""d""#, r#""b""#);
        let err = serde_json::from_str::<Vocabulary>(&dup).unwrap_err();
        assert!(
            err.to_string()
                .contains("duplicate token `b` at indices 2 and 5"),
            "{err}"
        );
        let no_pad = json.replace("<pad>", "pad");
        assert!(
            serde_json::from_str::<Vocabulary>(&no_pad)
                .unwrap_err()
                .to_string()
                .contains("`<pad>` at index 0")
        );
        assert!(serde_json::from_str::<Vocabulary>(r#"{"tokens":[],"counts":[]}"#).is_err());
        assert!(
            serde_json::from_str::<Vocabulary>(r#"{"tokens":["<pad>"],"counts":[0,1]}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Vocabulary>(
                r#"{"tokens":["<pad>","<unk>"],"counts":[0,0],"x":1}"#
            )
            .is_err()
        );

        assert_eq!(
            Vocabulary::from_parts(strings(&["<unk>", "<pad>"]), vec![0, 0]),
            Err(TextError::MissingSpecial {
                index: 0,
                expected: "<pad>",
                found: Some("<unk>".into())
            })
        );
        assert_eq!(
            Vocabulary::from_parts(strings(&["<pad>"]), vec![0]),
            Err(TextError::MissingSpecial {
                index: 1,
                expected: "<unk>",
                found: None
            })
        );
        assert_eq!(
            Vocabulary::from_parts(strings(&["<pad>", "<unk>", "a", "<pad>"]), vec![0; 4]),
            Err(TextError::DuplicateToken {
                token: "<pad>".into(),
                first: 0,
                second: 3
            })
        );
        assert_eq!(
            Vocabulary::from_parts(strings(&["<pad>", "<unk>"]), vec![0]),
            Err(TextError::CountMismatch {
                tokens: 2,
                counts: 1
            })
        );
    }

    #[test]
    fn pad_head_tail_masks_lengths() {
        let docs = vec![vec![2, 3, 4, 5, 6], vec![7, 8], vec![], vec![9, 10, 11]];
        let head = pad_batch(&docs, 3, Truncate::Head).unwrap();
        assert_eq!(head.ids, [2, 3, 4, 7, 8, 0, 0, 0, 0, 9, 10, 11]);
        assert_eq!(
            head.mask,
            [
                true, true, true, true, true, false, false, false, false, true, true, true
            ]
        );
        assert_eq!((head.len, head.n_docs(), head.truncated), (3, 4, 1));
        assert_eq!(head.lengths, [3, 2, 0, 3]);

        let tail = pad_batch(&docs, 3, Truncate::Tail).unwrap();
        assert_eq!(tail.ids, [4, 5, 6, 7, 8, 0, 0, 0, 0, 9, 10, 11]);
        assert_eq!(
            (tail.mask, tail.lengths, tail.truncated),
            (head.mask, head.lengths, 1)
        );

        let wide = pad_batch(&docs, 6, Truncate::Tail).unwrap();
        assert_eq!(&wide.ids[..6], [2, 3, 4, 5, 6, 0]);
        assert_eq!((wide.lengths, wide.truncated), (vec![5, 2, 0, 3], 0));

        let none = pad_batch(&[], 4, Truncate::Head).unwrap();
        assert_eq!((none.ids.len(), none.mask.len(), none.n_docs()), (0, 0, 0));
        assert_eq!(
            pad_batch(&docs, 0, Truncate::Head),
            Err(TextError::ZeroLength)
        );
    }

    /// Splits CSV text into records, with RFC 4180 quoting (`""` inside quotes is a quote).
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
        let (mut quoted, mut chars) = (false, text.chars().peekable());
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                (_, '"') => quoted = !quoted,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, '\r') => {}
                _ => field.push(c),
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        records
    }

    #[test]
    fn csv_parser() {
        let records = parse_csv("a,b\n1,\"x, \"\"y\"\"\"\r\n2,\"multi\nline\"");
        assert_eq!(
            records,
            [
                strings(&["a", "b"]),
                strings(&["1", "x, \"y\""]),
                strings(&["2", "multi\nline"])
            ]
        );
    }

    #[test]
    fn sentiment_sentences_vocabulary() {
        // The copy bundled with the repository.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/sentiment_sentences/sentences.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let records = parse_csv(&text);
        assert_eq!(records[0], ["label", "source", "text"]);
        let tokenizer = Tokenizer::default();
        let docs: Vec<Vec<String>> = records[1..]
            .iter()
            .take(1600)
            .map(|record| {
                assert_eq!(record.len(), 3, "{record:?}");
                tokenizer.tokenize(&record[2])
            })
            .collect();
        assert_eq!(docs.len(), 1600);
        let config = VocabConfig {
            min_count: 2,
            ..Default::default()
        };
        let vocab = Vocabulary::build(docs.iter().map(Vec::as_slice), &config);
        println!(
            "sentiment_sentences: vocabulary of the first 1600 docs, min_count 2: {}",
            vocab.len()
        );
        assert!((500..=3000).contains(&vocab.len()), "{}", vocab.len());
        let unknown = docs
            .iter()
            .flatten()
            .filter(|t| vocab.id(t) == Vocabulary::UNK)
            .count();
        assert!(unknown > 0);
    }
}
