//! # sora-jobs
//!
//! Sora's model kinds behind one contract. A kind — tables, images, audio, text classifiers,
//! language models, recommenders — implements [`Kind`]: a checked config whose `Default` is
//! the one source of its defaults, data in, a trained run out ([`Trained`]), saved as a model
//! directory with its `manifest.json`, and read back as a [`Model`] whose verbs (predict,
//! evaluate, explain, generate, recommend) the `sora` program and server call without knowing
//! the kind. The steps every kind shares exist once here: the run's device and data-parallel
//! setting ([`RunContext`]), the training loop's options ([`CommonOptions`]), the seeded
//! split ([`Holdout`]), early stopping's threshold, prediction batches
//! ([`PREDICTION_BATCH`]), predictions as CSV ([`Predictions::to_csv`]), the one method enum
//! of explanations ([`explain::Method`]), and the one loader of model directories
//! ([`load_any`]). So are the steps of small data, for every kind: cross-validation
//! ([`cv`]), calibration, decision thresholds and conformal sets ([`decision`]), ensembles
//! ([`ensemble`]) and the hyper-parameter search ([`tune`]).
//!
//! | kind | module | data | model |
//! |---|---|---|---|
//! | `tabular` | [`tabular`] | a CSV file and a target column | MLP over the fitted pipeline |
//! | `image` | [`media`] | class folders of images, IDX files | 2-D convolutions |
//! | `audio` | [`media`] | class folders of WAV clips | 1-D convolutions over log-mel frames |
//! | `text` | [`text`] | a CSV text column and a label column | embeddings, bag or BiLSTM/GRU |
//! | `generate` | [`generate`] | a text file (or CSV column) | recurrent language model |
//! | `ratings` | [`recommend`] | `user,item,rating[,timestamp]` rows | matrix factorisation, ranker |
//! | `anomaly` | [`anomaly`] | a CSV file's normal rows | autoencoder over the fitted pipeline |
//!
//! Adding a kind is one module that implements [`Kind`] and one line in
//! [`Registry::builtin`] (or, from outside, [`Registry::with`]); `docs/extending.md` walks
//! through one.
//!
//! ```
//! use sora_jobs::{Input, RunContext, Trained, load_any, tabular};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut csv = String::from("x,y\n");
//! for i in 0..60 {
//!     let x = i as f64 / 10.0 - 3.0;
//!     csv.push_str(&format!("{x},{}\n", u8::from(x > 0.0)));
//! }
//! let table = sora_data::Table::from_reader(csv.as_bytes(), "toy.csv")?;
//! let mut config = tabular::TabularConfig::new("y");
//! config.train.progress = sora_train::Progress::Quiet;
//! let device = burn::tensor::Device::flex();
//! let run = tabular::train(&table, &config, &device)?;
//! let dir = tempfile::tempdir()?;
//! run.save(&dir.path().join("m"))?;
//!
//! // Any directory, any kind: the manifest says what it is.
//! let loaded = load_any(&dir.path().join("m"), &device)?;
//! assert_eq!(loaded.kind, "tabular");
//! let predictions = loaded.model.predict(&Input::Table(table))?;
//! assert_eq!(predictions.len(), 60);
//! # Ok(())
//! # }
//! ```

pub mod anomaly;
pub mod base64;
pub mod card;
pub mod cv;
pub mod decision;
pub mod ensemble;
mod error;
pub mod explain;
pub mod generate;
mod generation;
mod kind;
pub mod media;
mod model;
pub mod recommend;
mod recommendation;
mod registry;
pub mod tabular;
pub mod text;
pub mod tune;

pub use error::{JobError, Result, Verb};
pub use generation::{GenerateRequest, Generated};
pub use kind::{
    Checkpoints, CommonOptions, DEFAULT_SEED, DataSource, EARLY_STOPPING_MIN_DELTA, Examples,
    Holdout, JobConfig, Kind, LoopDefaults, OptimizerKind, ProgressMode, RunContext, Trained,
};
pub use model::{
    Batch, ColumnType, Evaluation, Input, InputColumn, InputSchema, Medium, Model, ModelInfo,
    NamedFile, OutputKind, Outputs, PREDICTION_BATCH, Predictions, Rows, csv_field,
};
pub use recommendation::{Recommended, UserItems, recommendations_csv};
pub use registry::{AnyKind, Legacy, Loaded, Registry, legacy_kind, load_any, upgrade};

/// The layers, output shapes and parameters of a model spec file (JSON, or TOML by
/// extension) of any encoder (`encoder.kind`: `identity`, `conv2d`, `conv1d`, `text`,
/// `ratings`), checked against `limits`.
pub fn spec_summary(
    path: &std::path::Path,
    limits: &sora_core::SpecLimits,
) -> Result<sora_core::Summary> {
    use sora_core::{IdentitySpec, ModelSpec};
    let summary = match media::ConvSpec::encoder_kind(path)?.as_deref() {
        Some("conv1d") => ModelSpec::<sora_conv::Conv1dSpec>::from_file(path)?
            .check_with(limits)?
            .summary()
            .clone(),
        Some("conv2d") => ModelSpec::<sora_conv::Conv2dSpec>::from_file(path)?
            .check_with(limits)?
            .summary()
            .clone(),
        Some("text") => ModelSpec::<sora_text::TextSpec>::from_file(path)?
            .check_with(limits)?
            .summary()
            .clone(),
        Some("ratings") => ModelSpec::<sora_text::recommend::RatingsSpec>::from_file(path)?
            .check_with(limits)?
            .summary()
            .clone(),
        _ => ModelSpec::<IdentitySpec>::from_file(path)?
            .check_with(limits)?
            .summary()
            .clone(),
    };
    Ok(summary)
}

/// The metrics of a classifier or a regressor as an aligned text table (per-class rows and
/// the averages for a classifier), as `sora eval` and `sora train` print them.
pub fn format_metrics(metrics: &sora_train::Metrics, classes: Option<&[String]>) -> String {
    use sora_train::Metrics;
    match metrics {
        Metrics::Regression(m) => {
            let i = m.intervals.as_ref();
            let mut out = format!(
                "loss (MSE) {:.4}\nMAE        {:.4}{}\nRMSE       {:.4}{}\nR²         {:.4}{}\n",
                m.loss,
                m.mae,
                interval(i.and_then(|i| i.mae)),
                m.rmse,
                interval(i.and_then(|i| i.rmse)),
                m.r2,
                interval(i.and_then(|i| i.r2)),
            );
            out.push_str(&interval_note(i.and_then(|i| i.rmse.or(i.mae))));
            out
        }
        Metrics::Classification(m) => {
            let names: Vec<String> = (0..m.per_class.len())
                .map(|c| {
                    classes
                        .and_then(|n| n.get(c).cloned())
                        .unwrap_or_else(|| c.to_string())
                })
                .collect();
            let w = names.iter().map(String::len).max().unwrap_or(5).max(9);
            let mut out = format!(
                "{:<w$}  {:>9}  {:>6}  {:>6}  {:>7}\n",
                "class", "precision", "recall", "F1", "support"
            );
            for (name, s) in names.iter().zip(&m.per_class) {
                out.push_str(&format!(
                    "{name:<w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n",
                    s.precision, s.recall, s.f1, s.support
                ));
            }
            out.push_str(&format!(
                "{:<w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n\n",
                "macro",
                m.macro_precision,
                m.macro_recall,
                m.macro_f1,
                m.per_class.iter().map(|s| s.support).sum::<usize>()
            ));
            let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
            let i = m.intervals.as_ref();
            out.push_str(&format!(
                "accuracy {:.4}{}   AUROC {}{}   PR-AUC {}   loss {:.4}\n",
                m.accuracy,
                interval(i.and_then(|i| i.accuracy)),
                opt(m.auroc),
                interval(i.and_then(|i| i.auroc)),
                opt(m.pr_auc),
                m.loss
            ));
            out.push_str(&interval_note(i.and_then(|i| i.accuracy)));
            out.push('\n');
            out.push_str("confusion matrix (rows: true, columns: predicted):\n");
            out.push_str(&m.confusion_table(&names));
            out
        }
    }
}

/// ` [low, high]` of a confidence interval, or nothing.
fn interval(i: Option<sora_train::ConfidenceInterval>) -> String {
    i.map_or(String::new(), |i| format!(" [{:.4}, {:.4}]", i.low, i.high))
}

/// The line that says what the intervals are, when there are some.
fn interval_note(i: Option<sora_train::ConfidenceInterval>) -> String {
    i.map_or(String::new(), |i| {
        format!(
            "[{:.0} % percentile-bootstrap intervals over the rows, {} resamples]\n",
            i.level * 100.0,
            i.resamples
        )
    })
}

/// `metrics` as an [`Evaluation`] of `n` rows.
pub fn evaluation(
    metrics: &sora_train::Metrics,
    classes: Option<&[String]>,
    n: usize,
) -> Evaluation {
    use sora_train::Metrics;
    let scores = match metrics {
        Metrics::Regression(m) => vec![
            ("mse".to_string(), m.loss),
            ("mae".to_string(), m.mae),
            ("rmse".to_string(), m.rmse),
            ("r2".to_string(), m.r2),
        ],
        Metrics::Classification(m) => {
            let mut s = vec![
                ("accuracy".to_string(), m.accuracy),
                ("macro_f1".to_string(), m.macro_f1),
                ("loss".to_string(), m.loss),
            ];
            s.extend(m.auroc.map(|a| ("auroc".to_string(), a)));
            s
        }
    };
    Evaluation {
        n,
        report: format_metrics(metrics, classes),
        scores,
        notes: Vec::new(),
    }
}

/// The end of a training run as the program prints it: the epoch kept and the test metrics
/// (a run without a test part says so).
pub fn outcome(
    best_epoch: usize,
    epochs: usize,
    stopped_early: bool,
    test: Option<&sora_train::Metrics>,
    classes: Option<&[String]>,
) -> String {
    let early = if stopped_early {
        " (stopped early)"
    } else {
        ""
    };
    match test {
        Some(test) => format!(
            "\nbest epoch {best_epoch} of {epochs}{early}\n\ntest metrics:\n{}",
            format_metrics(test, classes)
        ),
        None => format!("\nbest epoch {best_epoch} of {epochs}{early}\n\nno test part\n"),
    }
}
