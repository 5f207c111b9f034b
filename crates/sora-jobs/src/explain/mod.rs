//! Explanations, for every classifier kind: the one method enum, the request (which rows,
//! which method, which output), and what comes back.
//!
//! A kind answers with the attributions that fit its input — per raw column (tables), per
//! token (text), per pixel or spectrogram cell (images, audio) — in one [`Explanation`]: a
//! row-by-row answer that serialises to JSON (the server's), the terminal text `sora explain`
//! prints, and optionally a document (a self-contained HTML report, or a PNG of heat maps).

pub mod html;
pub mod report;

/// Explained rows as the terminal shows them: per row its prediction, then its `top`
/// attributions by |value| (columns, tokens), or where its heat map peaks.
pub fn terminal_rows(method: &str, rows: &[ExplainedRow], top: usize) -> String {
    let mut out = format!("{method}\n");
    for row in rows {
        out.push_str(&format!(
            "\nrow {}: {} (explained: {})\n",
            row.key, row.label, row.explained
        ));
        match &row.attributions {
            Attributions::Columns(columns) => {
                let mut sorted: Vec<&ColumnAttribution> = columns.iter().collect();
                sorted.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
                for c in sorted.into_iter().take(top.max(1)) {
                    out.push_str(&format!(
                        "  {:<24} {:>12}  {:+.4}\n",
                        c.column, c.value, c.attribution
                    ));
                }
            }
            Attributions::Tokens(tokens) => {
                let words: Vec<String> = tokens.iter().map(|t| t.token.clone()).collect();
                let scores: Vec<f32> = tokens.iter().map(|t| t.attribution).collect();
                out.push_str(&format!(
                    "  {}\n",
                    html::highlight_terminal(&words, &scores)
                ));
            }
            Attributions::Map(map) => out.push_str(&format!(
                "  heat map {}×{}, strongest at row {}, column {}\n",
                map.height, map.width, map.peak[0], map.peak[1]
            )),
        }
        if let Some(d) = row.delta {
            out.push_str(&format!("  completeness delta {d:+.5}\n"));
        }
    }
    out
}

use std::str::FromStr;

use serde::Serialize;

use crate::{JobError, Result};

/// An attribution method. Each kind takes the methods that fit its input
/// (each kind module's `METHODS`); another is a typed refusal naming those it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Integrated Gradients (Gauss–Legendre) from the all-zero baseline.
    #[value(alias = "integrated-gradients")]
    Ig,
    /// |gradient| at the input.
    Saliency,
    /// Input × gradient.
    #[value(alias = "ixg")]
    InputXGradient,
    /// SmoothGrad: the gradient averaged over seeded noisy copies of the input.
    Smoothgrad,
    /// Occlusion: one input (tables) or one square patch (images, audio) at a time replaced
    /// by the baseline.
    Occlusion,
    /// Feature ablation of each raw column's (or token's) block of inputs.
    Ablation,
    /// Shapley values (exact up to 10 inputs, sampled beyond).
    Shapley,
    /// Grad-CAM on a convolution block (images, audio).
    #[value(alias = "grad-cam")]
    Gradcam,
}

impl Method {
    /// The name on the command line and in requests.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ig => "ig",
            Method::Saliency => "saliency",
            Method::InputXGradient => "input-x-gradient",
            Method::Smoothgrad => "smoothgrad",
            Method::Occlusion => "occlusion",
            Method::Ablation => "ablation",
            Method::Shapley => "shapley",
            Method::Gradcam => "gradcam",
        }
    }

    /// The method's display name.
    pub fn label(self) -> &'static str {
        match self {
            Method::Ig => "integrated gradients",
            Method::Saliency => "saliency",
            Method::InputXGradient => "input × gradient",
            Method::Smoothgrad => "SmoothGrad",
            Method::Occlusion => "occlusion",
            Method::Ablation => "feature ablation",
            Method::Shapley => "Shapley values",
            Method::Gradcam => "Grad-CAM",
        }
    }

    /// Checks that `self` is one of the `supported` methods of a `kind`.
    pub fn check(self, kind: &str, supported: &[Method]) -> Result<Method> {
        if supported.contains(&self) {
            Ok(self)
        } else {
            let names: Vec<&str> = supported.iter().map(|m| m.name()).collect();
            Err(JobError::OptionNotForKind {
                option: format!("--method {}", self.name()),
                reason: format!("{kind} models are explained by {}", names.join(", ")),
            })
        }
    }
}

impl FromStr for Method {
    type Err = JobError;

    /// Parses a method name (or alias: `integrated-gradients`, `ixg`, `grad-cam`).
    fn from_str(s: &str) -> Result<Self> {
        <Method as clap::ValueEnum>::from_str(s, true).map_err(|_| {
            let names: Vec<&str> = <Method as clap::ValueEnum>::value_variants()
                .iter()
                .map(|m| m.name())
                .collect();
            JobError::invalid("method", format!("one of {}", names.join(", ")), s)
        })
    }
}

/// Which output an explanation attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// The class each row is predicted to be.
    #[default]
    Predicted,
    /// One named class for every row.
    Class(String),
}

impl FromStr for Target {
    type Err = std::convert::Infallible;

    /// `predicted`, or a class name.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "predicted" => Target::Predicted,
            class => Target::Class(class.to_string()),
        })
    }
}

impl Target {
    /// The named class's index (`None`: each row's predicted class); the name must be one of
    /// `classes`.
    pub fn class_index(&self, classes: &[String]) -> Result<Option<usize>> {
        match self {
            Target::Predicted => Ok(None),
            Target::Class(name) => {
                classes
                    .iter()
                    .position(|c| c == name)
                    .map(Some)
                    .ok_or_else(|| {
                        JobError::invalid(
                            "target",
                            format!("`predicted` or one of the classes {}", classes.join(", ")),
                            format!("{name:?}"),
                        )
                    })
            }
        }
    }

    /// The class index per row: each row's predicted class (from `probabilities`, `classes`
    /// per row), or the named class, which must be one of `classes`.
    pub fn classes(&self, classes: &[String], probabilities: &[f32]) -> Result<Vec<usize>> {
        let k = classes.len().max(1);
        Ok(match self.class_index(classes)? {
            None => probabilities.chunks(k).map(sora_train::argmax).collect(),
            Some(c) => vec![c; probabilities.len() / k],
        })
    }
}

/// Which rows of the input to explain: 1-based row numbers, comma-separated, ranges allowed
/// (`1-5,12`); for files, sample numbers in reading order.
///
/// ```
/// use sora_jobs::explain::Rows;
///
/// let rows: Rows = "2-4,9".parse().unwrap();
/// assert_eq!(rows.resolve(10).unwrap(), [1, 2, 3, 8]);
/// assert_eq!(Rows::default().resolve(3).unwrap(), [0, 1, 2]);
/// assert!(rows.resolve(5).unwrap_err().to_string().contains("past the last"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rows(Option<Vec<(usize, usize)>>);

impl Rows {
    /// How many rows the default selection takes: the first five.
    pub const DEFAULT_COUNT: usize = 5;

    /// The rows at these 0-based indices, in this order.
    pub fn indices(rows: &[usize]) -> Self {
        Rows(Some(rows.iter().map(|&r| (r + 1, r + 1)).collect()))
    }

    /// The 0-based rows selected of `n`: the ranges given, or the first
    /// [`DEFAULT_COUNT`](Self::DEFAULT_COUNT) (or all, when fewer).
    pub fn resolve(&self, n: usize) -> Result<Vec<usize>> {
        let Some(ranges) = &self.0 else {
            return Ok((0..n.min(Self::DEFAULT_COUNT)).collect());
        };
        let mut rows = Vec::new();
        for &(a, b) in ranges {
            if b > n {
                return Err(JobError::invalid(
                    "rows",
                    format!("rows up to the last data row ({n})"),
                    format!("row {b}, past the last"),
                ));
            }
            rows.extend(a - 1..b);
        }
        Ok(rows)
    }
}

impl FromStr for Rows {
    type Err = JobError;

    fn from_str(spec: &str) -> Result<Self> {
        let mut ranges = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let parse = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&r| r >= 1)
                    .ok_or_else(|| {
                        JobError::invalid(
                            "rows",
                            "row numbers (1 is the first data row) or ranges such as 1-5",
                            format!("{part:?}"),
                        )
                    })
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(JobError::invalid(
                    "rows",
                    "ranges that run forwards",
                    format!("{part:?}"),
                ));
            }
            ranges.push((a, b));
        }
        if ranges.is_empty() {
            return Err(JobError::invalid("rows", "at least one row", "none"));
        }
        Ok(Rows(Some(ranges)))
    }
}

/// What `sora explain` and `POST /v1/explain` ask of a model. `Default` holds every default.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ExplainRequest {
    /// Rows to explain: 1-based data-row numbers (row 1 is the line after the header),
    /// comma-separated, ranges allowed (`1-5,12`); for images and clips, 1-based sample
    /// numbers in reading order [default: the first 5, or as many as there are].
    #[arg(long, value_parser = clap::value_parser!(Rows))]
    pub rows: Option<Rows>,
    /// Method [default: ig; gradcam for images and audio].
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// The explained output: `predicted` or a class name.
    #[arg(long, default_value = "predicted", value_parser = parse_target)]
    pub target: Target,
    /// Integrated Gradients steps.
    #[arg(long, default_value_t = ExplainRequest::default().steps)]
    pub steps: usize,
    /// Grad-CAM: the convolution block whose maps are used (0-based) [default: the last].
    #[arg(long)]
    pub layer: Option<usize>,
    /// Occlusion on images and audio: side of the occluded square, in pixels or cells.
    #[arg(long, default_value_t = ExplainRequest::default().patch)]
    pub patch: usize,
    /// Tables: columns shown per row in the terminal.
    #[arg(long, default_value_t = ExplainRequest::default().top)]
    pub top: usize,
    /// Tables: repeats of the permutation importance over the file's labelled rows (0: skip).
    #[arg(long, default_value_t = ExplainRequest::default().permutation_repeats)]
    pub permutation_repeats: usize,
    /// Tables: also explain a copy of the model with re-initialised weights and report how
    /// much the attributions change (a model-randomisation sanity check).
    #[arg(long)]
    pub sanity_check: bool,
    /// Seed of the random draws (SmoothGrad noise, Shapley samples, permutations).
    #[arg(long, default_value_t = ExplainRequest::default().seed)]
    pub seed: u64,
    /// Build the document (HTML report, PNG of heat maps) as well as the answer.
    #[arg(skip = true)]
    pub document: bool,
}

fn parse_target(s: &str) -> std::result::Result<Target, std::convert::Infallible> {
    s.parse()
}

impl Default for ExplainRequest {
    /// The first 5 rows, the kind's default method, the predicted class, 50 IG steps, the
    /// last Grad-CAM block, 4-pixel occlusion patches, 5 columns shown, 5 permutation
    /// repeats, no sanity check, seed 0, with the document.
    fn default() -> Self {
        Self {
            rows: None,
            method: None,
            target: Target::Predicted,
            steps: 50,
            layer: None,
            patch: 4,
            top: 5,
            permutation_repeats: 5,
            sanity_check: false,
            seed: 0,
            document: true,
        }
    }
}

impl ExplainRequest {
    /// The method asked for, or `default`, checked against what the kind `supported`.
    pub fn method(&self, kind: &str, default: Method, supported: &[Method]) -> Result<Method> {
        self.method.unwrap_or(default).check(kind, supported)
    }

    /// The rows selected of `n`.
    pub fn rows(&self, n: usize) -> Result<Vec<usize>> {
        self.rows.clone().unwrap_or_default().resolve(n)
    }

    /// Checks the options every kind shares (steps in 1..=1000).
    pub fn check(&self) -> Result<()> {
        if !(1..=1000).contains(&self.steps) {
            return Err(JobError::invalid(
                "steps",
                "an integer in 1..=1000",
                self.steps,
            ));
        }
        Ok(())
    }
}

/// An explanation of some rows of an input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The method and its settings, in words.
    pub method: String,
    /// The classes, in output order.
    pub classes: Vec<String>,
    /// One entry per explained row.
    pub rows: Vec<ExplainedRow>,
    /// What `sora explain` prints.
    #[serde(skip)]
    pub terminal: String,
    /// The document, when asked for: a self-contained HTML report or a PNG picture.
    #[serde(skip)]
    pub document: Option<Document>,
}

/// An explanation's document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `html` or `png`.
    pub extension: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One explained row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedRow {
    /// The row's name: its 1-based number, or its file.
    pub key: String,
    /// The predicted class.
    pub label: String,
    /// Class probabilities.
    pub probabilities: Vec<f32>,
    /// The class explained.
    pub explained: String,
    /// The attributions.
    pub attributions: Attributions,
    /// Completeness delta of a path method (`Σ attributions − (F(x) − F(baseline))`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f32>,
}

/// Attributions of one row, in the units of its input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Attributions {
    /// One per raw column.
    Columns(Vec<ColumnAttribution>),
    /// One per token.
    Tokens(Vec<TokenAttribution>),
    /// A map over the picture of the input (the image, or the spectrogram).
    Map(HeatMap),
}

/// A raw column's attribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnAttribution {
    /// The column.
    pub column: String,
    /// Its raw value.
    pub value: String,
    /// Whether the value was missing and imputed.
    pub imputed: bool,
    /// The attribution.
    pub attribution: f32,
}

/// A token's attribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenAttribution {
    /// The token.
    pub token: String,
    /// The attribution.
    pub attribution: f32,
}

/// A non-negative map of attribution magnitudes over a picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatMap {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Row-major values.
    pub heat: Vec<f32>,
    /// Where the map is strongest: `[row, column]`.
    pub peak: [usize; 2],
}

impl HeatMap {
    /// A map, with its peak found.
    pub fn new(height: usize, width: usize, heat: Vec<f32>) -> Self {
        let at = (0..heat.len())
            .max_by(|&a, &b| heat[a].total_cmp(&heat[b]))
            .unwrap_or(0);
        Self {
            height,
            width,
            peak: [at / width.max(1), at % width.max(1)],
            heat,
        }
    }
}
