//! Token attributions for text models: integrated gradients at the embedding output, summed
//! per token, shown as escaped HTML or coloured terminal text.
//!
//! Token ids have no gradient, so the attribution is taken where the ids have become vectors:
//! the path runs from a baseline embedding (zeros) to the document's embeddings, the padding
//! mask stays fixed, and each token's score is the sum of its embedding's attributions.
//! Completeness holds as for any IG: the scores sum to `F(x) − F(baseline)` up to the
//! quadrature error, reported as the delta.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use sora_core::Model;
use sora_explain::{Attribution, Baseline, Explainable, Inputs, IntegratedGradients, Target};
use sora_text::TextEncoder;

/// A text model seen from its embedding output, for one document's mask: inputs are the
/// flattened embeddings `[batch, seq_len × d_embed]`.
#[derive(Debug, Clone)]
struct FromEmbeddings {
    model: Model<TextEncoder>,
    mask: Vec<f32>,
}

impl Explainable for FromEmbeddings {
    /// # Shapes
    /// - input: `[batch, seq_len × d_embed]`
    /// - output: `[batch, n_outputs]`
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [b, _] = x.dims();
        let t = self.mask.len();
        let device = x.device();
        let e = self.model.encoder.embedding.weight.dims()[1];
        let states = self
            .model
            .encoder
            .states_from_embeddings(x.reshape([b, t, e]));
        let mask: Vec<f32> = (0..b).flat_map(|_| self.mask.iter().copied()).collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), &device);
        self.model
            .head
            .forward(self.model.encoder.pool(states, mask))
    }

    fn to_device(&self, device: &Device) -> Self {
        Self {
            model: self.model.valid().fork(device),
            mask: self.mask.clone(),
        }
    }
}

/// What each token of one document contributed to one output.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAttributions {
    /// One score per real token, in order (padding excluded).
    pub scores: Vec<f32>,
    /// The explained output.
    pub target: usize,
    /// Completeness delta: `Σ scores − (F(x) − F(baseline))`.
    pub delta: f32,
}

/// Integrated gradients of `target` for one document (`ids` padded to the model's length with
/// `mask` true on real tokens), with `steps` path points, from an all-zero embedding.
pub fn token_attributions(
    model: &Model<TextEncoder>,
    ids: &[usize],
    mask: &[bool],
    target: usize,
    steps: usize,
    device: &Device,
) -> Result<TokenAttributions, sora_explain::ExplainError> {
    let plain = device.clone().without_autodiff();
    let table = model.encoder.embedding.weight.val().fork(&plain);
    let [_, e] = table.dims();
    let index = Tensor::<1, burn::tensor::Int>::from_data(
        TensorData::new(
            ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [ids.len()],
        ),
        &plain,
    );
    let embedded = table
        .select(0, index)
        .try_into_vec_as::<f32>()
        .map_err(|e| sora_explain::ExplainError::Backend(format!("{e:?}")))?;
    let wrapper = FromEmbeddings {
        model: model.clone(),
        mask: mask.iter().map(|&m| f32::from(u8::from(m))).collect(),
    };
    let inputs = Inputs::new(embedded, ids.len() * e)?;
    let ig = IntegratedGradients {
        n_steps: steps,
        ..IntegratedGradients::default()
    };
    let a = ig.attribute(
        &wrapper,
        &inputs,
        &Baseline::Zeros,
        &Target::Class(target),
        device,
    )?;
    let scores = a
        .values
        .chunks(e)
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(v, _)| v.iter().sum())
        .collect();
    Ok(TokenAttributions {
        scores,
        target,
        delta: a.delta.map_or(0.0, |d| d[0]),
    })
}

/// Escapes text for HTML.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Tokens as HTML `<span>`s with a green (for the output) or red (against it) background whose
/// strength follows |score| relative to the largest; text escaped, the score in a `title`.
pub fn html_highlight(tokens: &[String], scores: &[f32]) -> String {
    let peak = scores.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-12);
    tokens
        .iter()
        .zip(scores)
        .map(|(t, s)| {
            let alpha = (s.abs() / peak).clamp(0.0, 1.0);
            let rgb = if *s >= 0.0 { "0,160,0" } else { "200,0,0" };
            format!(
                "<span style=\"background: rgba({rgb},{alpha:.2})\" title=\"{s:+.4}\">{}</span>",
                escape_html(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokens coloured for a terminal (ANSI 24-bit background): green for, red against the output,
/// stronger for larger |score|. Control characters in tokens are dropped.
pub fn terminal_highlight(tokens: &[String], scores: &[f32]) -> String {
    let peak = scores.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-12);
    tokens
        .iter()
        .zip(scores)
        .map(|(t, s)| {
            let level = (s.abs() / peak).clamp(0.0, 1.0);
            let v = (40.0 + 150.0 * level) as u8;
            let (r, g) = if *s >= 0.0 { (0, v) } else { (v, 0) };
            let clean: String = t.chars().filter(|c| !c.is_control()).collect();
            format!("\x1b[48;2;{r};{g};0m{clean}\x1b[0m")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_signed() {
        let html = html_highlight(&["<b>".to_string(), "ok".to_string()], &[1.0, -0.5]);
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("rgba(0,160,0,1.00)") && html.contains("rgba(200,0,0,0.50)"));
        let term = terminal_highlight(&["a\x1b".to_string()], &[1.0]);
        assert_eq!(term.matches('\x1b').count(), 2, "{term:?}");
    }
}
