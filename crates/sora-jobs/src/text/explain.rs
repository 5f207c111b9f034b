//! Token attributions for text models, at the embedding output, summed per token, shown as
//! escaped HTML or coloured terminal text.
//!
//! Token ids have no gradient, so the attribution is taken where the ids have become vectors:
//! integrated gradients run from a baseline embedding (zeros) to the document's embeddings,
//! saliency and input × gradient take the gradient there, and ablation sets one token's
//! embedding to zeros at a time; the padding mask stays fixed, and each token's score is the
//! sum of its embedding's attributions. Completeness holds as for any IG: the scores sum to
//! `F(x) − F(baseline)` up to the quadrature error, reported as the delta.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use sora_core::Model;
use sora_explain::{
    Attribution, Baseline, Explainable, FeatureAblation, InputXGradient, Inputs,
    IntegratedGradients, Saliency, Target,
};
use sora_text::TextEncoder;
use sora_text::tokenize::{Tokenizer, Truncate, pad_batch};

use super::{Text, TextData, TextModel};
use crate::explain::html::{escape, highlight_html, highlight_terminal};
use crate::explain::{
    Attributions as Attributed, Document, ExplainRequest, ExplainedRow, Explanation, Method,
    TokenAttribution,
};
use crate::kind::Kind;

/// The methods text models are explained by.
pub const METHODS: [Method; 4] = [
    Method::Ig,
    Method::Saliency,
    Method::InputXGradient,
    Method::Ablation,
];

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
) -> std::result::Result<TokenAttributions, sora_explain::ExplainError> {
    token_attributions_by(model, ids, mask, target, Method::Ig, steps, device)
}

/// The attributions of `target` by `method` (one of [`METHODS`]) for one document, at the
/// embedding output; `steps` are the integrated-gradient path points.
pub fn token_attributions_by(
    model: &Model<TextEncoder>,
    ids: &[usize],
    mask: &[bool],
    target: usize,
    method: Method,
    steps: usize,
    device: &Device,
) -> std::result::Result<TokenAttributions, sora_explain::ExplainError> {
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
    let baseline = Baseline::Zeros;
    let target_of = Target::Class(target);
    let a = match method {
        Method::Saliency => {
            Saliency { abs: false }.attribute(&wrapper, &inputs, &baseline, &target_of, device)?
        }
        Method::InputXGradient => {
            InputXGradient.attribute(&wrapper, &inputs, &baseline, &target_of, device)?
        }
        Method::Ablation => FeatureAblation {
            mask: Some((0..ids.len() * e).map(|j| j / e).collect()),
        }
        .attribute(&wrapper, &inputs, &baseline, &target_of, device)?,
        _ => IntegratedGradients {
            n_steps: steps,
            ..IntegratedGradients::default()
        }
        .attribute(&wrapper, &inputs, &baseline, &target_of, device)?,
    };
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

impl TextModel {
    /// Explains documents (`rows` are their 0-based row numbers in the file): each token
    /// coloured by its attribution to the explained class, for the terminal and as an
    /// escaped HTML report.
    pub fn explain_texts(
        &self,
        docs: &TextData,
        rows: &[usize],
        request: &ExplainRequest,
    ) -> crate::Result<Explanation> {
        request.check()?;
        let method = request.method(Text::NAME, Method::Ig, &METHODS)?;
        let saved = &self.text;
        let classes = &saved.classes;
        let explained = request.target.class_index(classes)?;
        let tokenizer =
            Tokenizer::new(saved.tokenizer.clone()).map_err(super::TextJobError::from)?;
        let mut terminal = String::new();
        let mut html = String::from(
            "<!doctype html><meta charset=\"utf-8\"><title>Token attributions</title>\
             <body style=\"font-family: sans-serif; max-width: 60em\"><h1>Token attributions</h1>",
        );
        html.push_str(&format!(
            "<p>{} at the embedding output, summed per token: green for the explained class, \
             red against it.</p>",
            escape(&capitalise(method.label()))
        ));
        let probabilities = self.predict(&docs.texts)?;
        let k = classes.len();
        let mut out_rows = Vec::with_capacity(docs.len());
        for (i, (text, &row)) in docs.texts.iter().zip(rows).enumerate() {
            let tokens = tokenizer.tokenize(text);
            let ids = saved.vocabulary.encode(&tokens);
            let batch = pad_batch(std::slice::from_ref(&ids), saved.seq_len, saved.truncate)
                .map_err(super::TextJobError::from)?;
            let kept = batch.lengths[0];
            let shown: Vec<String> = match saved.truncate {
                Truncate::Head => tokens[..kept].to_vec(),
                Truncate::Tail => tokens[tokens.len() - kept..].to_vec(),
            };
            let p = &probabilities[i * k..(i + 1) * k];
            let predicted = sora_train::argmax(p);
            let class = explained.unwrap_or(predicted);
            let a = token_attributions_by(
                &self.model,
                &batch.ids,
                &batch.mask,
                class,
                method,
                request.steps,
                self.device(),
            )
            .map_err(super::TextJobError::from)?;
            let delta = (method == Method::Ig).then_some(a.delta);
            terminal.push_str(&format!(
                "row {}: predicted {} ({:.3}); explaining {}{}\n  {}\n",
                row + 1,
                classes[predicted],
                p[predicted],
                classes[class],
                delta
                    .map(|d| format!("; completeness delta {d:+.2e}"))
                    .unwrap_or_default(),
                highlight_terminal(&shown, &a.scores)
            ));
            if kept < tokens.len() {
                terminal.push_str(&format!(
                    "  ({} token(s) beyond the model's length {} not shown)\n",
                    tokens.len() - kept,
                    saved.seq_len
                ));
            }
            html.push_str(&format!(
                "<h2>Row {}: predicted {} ({:.3}), explaining {}</h2><p style=\"line-height: 2\">{}</p>",
                row + 1,
                escape(&classes[predicted]),
                p[predicted],
                escape(&classes[class]),
                highlight_html(&shown, &a.scores)
            ));
            out_rows.push(ExplainedRow {
                key: (row + 1).to_string(),
                label: classes[predicted].clone(),
                probabilities: p.to_vec(),
                explained: classes[class].clone(),
                attributions: Attributed::Tokens(
                    shown
                        .iter()
                        .zip(&a.scores)
                        .map(|(t, s)| TokenAttribution {
                            token: t.clone(),
                            attribution: *s,
                        })
                        .collect(),
                ),
                delta,
            });
        }
        let method_name = match method {
            Method::Ig => format!(
                "Integrated Gradients at the embedding output, {} steps",
                request.steps
            ),
            other => format!("{} at the embedding output", capitalise(other.label())),
        };
        Ok(Explanation {
            method: method_name,
            classes: classes.clone(),
            rows: out_rows,
            terminal,
            document: request.document.then(|| Document {
                extension: "html",
                bytes: html.into_bytes(),
            }),
        })
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
