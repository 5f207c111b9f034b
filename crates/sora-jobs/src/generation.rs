//! What a model that writes text is asked (`sora generate`, `POST /v1/generate`) and answers.

use serde::{Deserialize, Serialize};

use crate::{JobError, Result};

/// A request for text. `Default` holds every default; the same fields are the command line's
/// flags and a request's JSON fields.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateRequest {
    /// The text to continue; any length (empty: start a new line).
    #[arg(long, default_value_t = GenerateRequest::default().prompt)]
    pub prompt: String,
    /// Temperature: 0 is greedy, below 1 sharpens, above 1 flattens; negative is an error.
    #[arg(long, default_value_t = GenerateRequest::default().temperature, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Draw only among the k most likely tokens (k >= 1).
    #[arg(long, allow_negative_numbers = true)]
    pub top_k: Option<i64>,
    /// Draw only among the most likely tokens whose probabilities sum to p, in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f64>,
    /// The most tokens written.
    #[arg(long, default_value_t = GenerateRequest::default().max_tokens)]
    pub max_tokens: usize,
    /// Stop once the written text ends with this string (kept in the output); repeatable;
    /// `\n` and `\t` stand for a line break and a tab on the command line.
    #[arg(long, value_parser = parse_stop)]
    pub stop: Vec<String>,
    /// Seed of the draws: the same seed writes the same text.
    #[arg(long, default_value_t = GenerateRequest::default().seed)]
    pub seed: u64,
}

impl Default for GenerateRequest {
    /// An empty prompt, temperature 1, no top-k or top-p cut, 200 tokens, no stop string,
    /// seed 0.
    fn default() -> Self {
        Self {
            prompt: String::new(),
            temperature: 1.0,
            top_k: None,
            top_p: None,
            max_tokens: 200,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

/// `--stop` values with `\n`, `\t` and `\\` read as a line break, a tab and a backslash.
fn parse_stop(s: &str) -> std::result::Result<String, std::convert::Infallible> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

impl GenerateRequest {
    /// Checks every option (before any model is read); the error names the first one out of
    /// range.
    pub fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(JobError::invalid(
                "temperature",
                "a finite value >= 0 (0 is greedy)",
                self.temperature,
            ));
        }
        if let Some(k) = self.top_k
            && k < 1
        {
            return Err(JobError::invalid("top_k", "at least 1", k));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(JobError::invalid("top_p", "a value in (0, 1]", p));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(JobError::invalid("stop", "a non-empty string", "\"\""));
        }
        Ok(())
    }
}

/// Text written after a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generated {
    /// The continuation (the prompt not included).
    pub text: String,
    /// Tokens written.
    pub tokens: usize,
    /// Prompt tokens the vocabulary lacks (read as `<unk>`).
    pub unknown: usize,
    /// Whether a stop string ended generation.
    pub stopped: bool,
}
