//! The model card: one self-contained HTML page (no external assets; charts are PNGs embedded
//! as data URIs; every piece of text escaped) describing a model directory of any kind, from
//! the files it holds and, given data, from what the model makes of it:
//!
//! - **Data summary**: for tables each feature column's training profile (rows, missing
//!   cells, range) from the fitted pipeline; the class balance of the test part
//!   (`metrics.json`), of the out-of-fold predictions (`cv.json`) and of the data given.
//! - **Pipeline and model**: each raw column's encoding, the layers ([`ModelInfo::summary`])
//!   and the training configuration.
//! - **Metrics** with their bootstrap intervals, the **cross-validation** table, the
//!   **confusion matrix**.
//! - **Learning curves** (`curves.png`, `history.json`).
//! - **Calibration** (`reliability.png`, the expected calibration error before and after),
//!   the **decision threshold** with its precision–recall trade-off drawn against the
//!   threshold, **conformal** sets or intervals (`decision.json`).
//! - **Global importance** per raw column and the model-randomisation **sanity check** of
//!   tables, which need data (`--data`, or the training file in `sora train --report`).
//! - **Data licence**: the `NOTICE` and `LICENSE` files beside the data.
//! - **Ensemble**: how many members and how they were made (`ensemble.json`).
//!
//! A section appears when the directory (or the data) has what it shows.
//!
//! ```
//! use sora_jobs::{Input, Trained, tabular};
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
//! let dir = tempfile::tempdir()?;
//! tabular::train(&table, &config, &device)?.save(&dir.path().join("m"))?;
//!
//! let html = sora_jobs::card::model_card(&dir.path().join("m"), Some(&Input::Table(table)), &device)?;
//! assert!(html.contains("<h2 id=\"importance\">Global importance</h2>"));
//! assert!(html.contains("data:image/png;base64,"));
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::de::DeserializeOwned;
use sora_data::{FittedPipeline, Table};
use sora_train::{History, Manifest, Metrics, Targets};

use crate::cv::{CV_FILE, CvReport};
use crate::decision::{DECISION_FILE, Decision, RELIABILITY_FILE};
use crate::ensemble::{ENSEMBLE_FILE, EnsembleFile, Origin};
use crate::explain::report::{PermutationImportance, ReportError};
use crate::explain::{Attributions, ExplainRequest, Rows};
use crate::kind::Kind;
use crate::tabular::PIPELINE_FILE;
use crate::{Input, JobError, ModelInfo, OutputKind, load_any};

mod chart;
mod html;
mod scores;
mod sections;

/// The most data rows whose attributions the global importance averages (the first ones).
pub const EXPLAINED_ROWS: usize = 500;
/// The largest `NOTICE` or `LICENSE` file shown whole.
const MAX_LICENCE_BYTES: u64 = 256 * 1024;
/// The largest PNG embedded.
const MAX_PNG_BYTES: u64 = 64 * 1024 * 1024;

/// Why a model card could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The model directory, its files or the data could not be read, or the model failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ReportError),
}

impl From<sora_data::DataError> for CardError {
    fn from(e: sora_data::DataError) -> Self {
        CardError::Job(e.into())
    }
}

impl From<sora_train::TrainError> for CardError {
    fn from(e: sora_train::TrainError) -> Self {
        CardError::Job(e.into())
    }
}

impl From<sora_train::ManifestError> for CardError {
    fn from(e: sora_train::ManifestError) -> Self {
        CardError::Job(e.into())
    }
}

type Result<T, E = CardError> = std::result::Result<T, E>;

/// The model card of the model directory `dir` (any kind) as a self-contained HTML page.
/// `data`, when given, adds what needs rows: the data's own summary and class balance, and
/// for tables the global importance and the sanity check; its folder is where the data
/// licence is looked for (for tables without data, the training file's folder).
pub fn model_card(dir: &Path, data: Option<&Input>, device: &Device) -> Result<String> {
    Card::gather(dir, data, device)?.to_html()
}

/// A model directory's files, as its manifest lists them.
#[derive(Clone)]
struct Files {
    dir: PathBuf,
    names: Vec<String>,
}

impl Files {
    /// The files of `dir`: its manifest's list, or for a directory written by Sora 0.1 (no
    /// manifest) the files it holds.
    fn of(dir: &Path, manifest: Option<&Manifest>) -> Result<Self> {
        let names = match manifest {
            Some(m) => m.files.clone(),
            None => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(JobError::io(dir))? {
                    let entry = entry.map_err(JobError::io(dir))?;
                    if entry.path().is_file() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            names,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The JSON file `name`, when the directory has it.
    fn json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        if !self.has(name) {
            return Ok(None);
        }
        read_json(&self.path(name)).map(Some)
    }

    /// The PNG file `name`, when the directory has it.
    fn png(&self, name: &str) -> Result<Option<Vec<u8>>> {
        if !self.has(name) {
            return Ok(None);
        }
        let file = self.path(name);
        sora_core::weights::read_bounded(&file, MAX_PNG_BYTES)
            .map(Some)
            .map_err(|e| JobError::io(&file)(e).into())
    }

    fn history(&self) -> Result<Option<History>> {
        let name = sora_train::files::HISTORY;
        if !self.has(name) {
            return Ok(None);
        }
        Ok(Some(History::load_json(&self.path(name))?))
    }
}

fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T> {
    let bytes = sora_core::weights::read_bounded(file, sora_core::weights::MAX_JSON_BYTES)
        .map_err(JobError::io(file))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        JobError::Parse {
            file: file.to_path_buf(),
            message: e.to_string(),
            source: e.into(),
        }
        .into()
    })
}

/// `metrics.json`: a classifier's or regressor's metrics, or another kind's own.
enum MetricsFile {
    Scores(Box<Metrics>),
    Other {
        /// The file (and part) it was read from.
        source: String,
        /// The scores.
        value: serde_json::Value,
    },
}

/// One member of an ensemble.
struct Member {
    name: String,
    seed: Option<u64>,
    history: Option<History>,
    metrics: Option<Metrics>,
}

/// The data given, as the card summarises it.
struct DataView {
    /// The data, in words.
    name: String,
    /// For tables: the table's shape and missing cells.
    table: Option<TableSummary>,
    /// The number of examples of each class, or why they could not be counted.
    classes: Option<std::result::Result<Vec<usize>, String>>,
}

struct TableSummary {
    rows: usize,
    columns: usize,
    /// Per feature column of the pipeline, its missing cells (`None`: not in the data).
    missing: Vec<Option<usize>>,
    /// Columns of the data the model does not read (the target aside).
    unused: Vec<String>,
}

/// Global importance per raw column and the sanity check, or why there is none.
enum Importance {
    /// No data was given.
    NeedsData { training_file: Option<String> },
    Computed {
        rows: usize,
        method: String,
        mean_abs: Vec<(String, f64)>,
        permutation: Option<PermutationImportance>,
        sanity: Option<String>,
        ensemble: bool,
    },
}

/// Where the data licence was looked for, and what was found.
enum Licence {
    /// Nothing records where the data came from.
    Unknown,
    Looked {
        folder: PathBuf,
        exists: bool,
        files: Vec<(String, String)>,
    },
}

/// Everything the card shows, read once.
struct Card {
    dir: PathBuf,
    kind: &'static str,
    info: ModelInfo,
    manifest: Option<Manifest>,
    legacy: Option<String>,
    ensemble: Option<(EnsembleFile, Vec<Member>)>,
    metrics: Option<MetricsFile>,
    cv: Option<CvReport>,
    history: Option<History>,
    curves: Option<Vec<u8>>,
    train_config: Option<serde_json::Value>,
    decision: Option<Decision>,
    reliability: Option<Vec<u8>>,
    pipeline: Option<FittedPipeline>,
    data: Option<DataView>,
    importance: Option<Importance>,
    licence: Licence,
}

impl Card {
    fn gather(dir: &Path, data: Option<&Input>, device: &Device) -> Result<Self> {
        let loaded = load_any(dir, device)?;
        let info = loaded.model.info().clone();
        let manifest = Manifest::read(dir)?;
        let files = Files::of(dir, manifest.as_ref())?;
        let ensemble_file: Option<EnsembleFile> = files.json(ENSEMBLE_FILE)?;
        // The network whose pipeline, curves and configuration are shown: the model's own,
        // or an ensemble's first member's.
        let (net, ensemble) = match ensemble_file {
            Some(file) => {
                let seeds = match &file.origin {
                    Origin::Seeds { seeds } => Some(seeds.clone()),
                    Origin::Folds { .. } => None,
                };
                let mut members = Vec::new();
                let mut first = None;
                for (i, name) in file.members.iter().enumerate() {
                    let member_dir = dir.join(name);
                    let m = Manifest::read(&member_dir)?;
                    let member_files = Files::of(&member_dir, m.as_ref())?;
                    let metrics = member_files
                        .json::<serde_json::Value>(sora_train::files::METRICS)?
                        .and_then(|v| serde_json::from_value(v).ok());
                    members.push(Member {
                        name: name.clone(),
                        seed: seeds.as_ref().and_then(|s| s.get(i).copied()),
                        history: member_files.history()?,
                        metrics,
                    });
                    first.get_or_insert(member_files);
                }
                let first = first.ok_or_else(|| {
                    JobError::invalid("ensemble members", "at least one member", "none")
                })?;
                (first, Some((file, members)))
            }
            None => (files.clone(), None),
        };
        let metrics = match files.json::<serde_json::Value>(sora_train::files::METRICS)? {
            Some(v) => Some(match serde_json::from_value::<Metrics>(v.clone()) {
                Ok(m) => MetricsFile::Scores(Box::new(m)),
                Err(_) => MetricsFile::Other {
                    source: sora_train::files::METRICS.into(),
                    value: v,
                },
            }),
            // A recommender keeps its test scores in its own file.
            None => files
                .json::<serde_json::Value>(crate::recommend::RECOMMENDER_FILE)?
                .and_then(
                    |mut v| match v.get_mut("test").map(serde_json::Value::take) {
                        Some(value) if value.is_object() => Some(MetricsFile::Other {
                            source: format!(
                                "{}, its test part",
                                crate::recommend::RECOMMENDER_FILE
                            ),
                            value,
                        }),
                        _ => None,
                    },
                ),
        };
        let pipeline = if net.has(PIPELINE_FILE) && loaded.kind == crate::tabular::Tabular::NAME {
            Some(FittedPipeline::load_json(&net.path(PIPELINE_FILE))?)
        } else {
            None
        };
        let data_view = data
            .map(|input| data_view(input, &loaded, pipeline.as_ref()))
            .transpose()?;
        let importance = importance(
            &loaded,
            &net,
            ensemble.is_some(),
            data,
            pipeline.as_ref(),
            device,
        )?;
        let licence = licence(data, pipeline.as_ref())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            kind: loaded.kind,
            legacy: loaded.legacy.as_ref().map(|l| l.to_string()),
            info,
            ensemble,
            metrics,
            cv: files.json(CV_FILE)?,
            history: net.history()?,
            curves: net.png(sora_train::files::CURVES)?,
            train_config: net.json(sora_train::files::TRAIN)?,
            decision: files.json(DECISION_FILE)?,
            reliability: files.png(RELIABILITY_FILE)?,
            pipeline,
            data: data_view,
            importance,
            licence,
            manifest,
        })
    }
}

/// The data's shape, missing cells and classes.
fn data_view(
    input: &Input,
    loaded: &crate::Loaded,
    pipeline: Option<&FittedPipeline>,
) -> Result<DataView> {
    let table = match pipeline {
        Some(p) => {
            let t = input.table(loaded.kind)?;
            Some(table_summary(&t, p))
        }
        None => None,
    };
    let classes = match &loaded.model.info().output {
        OutputKind::Classes { classes } => Some(match loaded.model.labelled(input) {
            Ok((_, Targets::Classes { labels, .. })) => {
                let mut counts = vec![0usize; classes.len()];
                for l in labels {
                    if let Some(c) = counts.get_mut(l) {
                        *c += 1;
                    }
                }
                Ok(counts)
            }
            Ok((_, Targets::Values { .. })) => Err("the data holds values, not classes".into()),
            Err(e) => Err(e.to_string()),
        }),
        _ => None,
    };
    Ok(DataView {
        name: input.describe(),
        table,
        classes,
    })
}

fn table_summary(table: &Table, pipeline: &FittedPipeline) -> TableSummary {
    let features = pipeline.features();
    let missing = features
        .iter()
        .map(|f| {
            let c = table.column_index(&f.name)?;
            Some(
                table
                    .column(c)
                    .filter(|cell| pipeline.is_missing_cell(&f.name, cell))
                    .count(),
            )
        })
        .collect();
    let unused = table
        .headers()
        .iter()
        .filter(|h| *h != pipeline.target() && !features.iter().any(|f| &f.name == *h))
        .cloned()
        .collect();
    TableSummary {
        rows: table.n_rows(),
        columns: table.n_cols(),
        missing,
        unused,
    }
}

/// The global importance of a table classifier's raw columns over the data's first
/// [`EXPLAINED_ROWS`] rows (permutation importance over all its labelled rows) and the
/// sanity check; `None` for the kinds it does not apply to.
fn importance(
    loaded: &crate::Loaded,
    net: &Files,
    ensemble: bool,
    data: Option<&Input>,
    pipeline: Option<&FittedPipeline>,
    device: &Device,
) -> Result<Option<Importance>> {
    let Some(pipeline) = pipeline else {
        return Ok(None);
    };
    if !matches!(loaded.model.info().output, OutputKind::Classes { .. }) {
        return Ok(None);
    }
    let Some(input) = data else {
        return Ok(Some(Importance::NeedsData {
            training_file: Some(pipeline.fitted_on().to_string()),
        }));
    };
    let table = input.table(loaded.kind)?;
    let first: Vec<usize> = (0..table.n_rows().min(EXPLAINED_ROWS)).collect();
    let request = ExplainRequest {
        rows: Some(Rows::indices(&first)),
        sanity_check: !ensemble,
        document: false,
        ..ExplainRequest::default()
    };
    if ensemble {
        // The ensemble's attributions are the mean of its members'; permutation importance
        // and the sanity check are about one network.
        let explanation = loaded
            .model
            .explain(&Input::Table(table), &request)
            .map_err(|e| loaded.refuse(e))?;
        let mut sums: Vec<(String, f64)> = Vec::new();
        for row in &explanation.rows {
            if let Attributions::Columns(columns) = &row.attributions {
                for c in columns {
                    match sums.iter_mut().find(|(n, _)| *n == c.column) {
                        Some((_, s)) => *s += f64::from(c.attribution.abs()),
                        None => sums.push((c.column.clone(), f64::from(c.attribution.abs()))),
                    }
                }
            }
        }
        let n = explanation.rows.len().max(1) as f64;
        return Ok(Some(Importance::Computed {
            rows: explanation.rows.len(),
            method: explanation.method,
            mean_abs: sums.into_iter().map(|(c, s)| (c, s / n)).collect(),
            permutation: None,
            sanity: None,
            ensemble: true,
        }));
    }
    let model = crate::tabular::Tabular::load(&net.dir, device)?;
    let (explanation, report) = model
        .explain_with_report(&table, &request)
        .map_err(|e| loaded.refuse(e))?;
    Ok(Some(Importance::Computed {
        rows: explanation.rows.len(),
        method: report.method,
        mean_abs: report.mean_abs,
        permutation: report.permutation,
        sanity: report.sanity,
        ensemble: false,
    }))
}

/// The `NOTICE` and `LICENSE` files beside the data: the data given (a file's folder, or a
/// folder of class folders itself), or else the file a table's pipeline was fitted on.
fn licence(data: Option<&Input>, pipeline: Option<&FittedPipeline>) -> Result<Licence> {
    let folder = match data {
        Some(Input::Path { data, .. }) if data.is_dir() => Some(data.clone()),
        Some(Input::Path { data, .. }) => Some(parent(data)),
        _ => pipeline.map(|p| parent(Path::new(p.fitted_on()))),
    };
    let Some(folder) = folder else {
        return Ok(Licence::Unknown);
    };
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    if !folder.is_dir() {
        return Ok(Licence::Looked {
            folder,
            exists: false,
            files: Vec::new(),
        });
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(JobError::io(&folder))? {
        let entry = entry.map_err(JobError::io(&folder))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let upper = name.to_uppercase();
        let licence_like = ["NOTICE", "LICENSE", "LICENCE", "COPYING"]
            .iter()
            .any(|p| upper.starts_with(p));
        if licence_like && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let file = folder.join(&name);
        let text = match sora_core::weights::read_bounded_text(&file, MAX_LICENCE_BYTES) {
            Ok(text) => text,
            Err(e) => format!("(not shown: {e})"),
        };
        files.push((name, text));
    }
    Ok(Licence::Looked {
        folder,
        exists: true,
        files,
    })
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
