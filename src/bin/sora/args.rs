//! The arguments of the `sora` program. Defaults come from the library's `Default`s; the
//! options of each model kind come from its module (`sora train --help` lists them under the
//! kind's heading).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sora::device::DeviceChoice;
use sora::jobs::explain::ExplainRequest;
use sora::jobs::{CommonOptions, GenerateRequest};
use sora::train::CheckpointEvery;

/// Small, efficient, explainable neural networks on small data.
#[derive(Debug, Parser)]
#[command(name = "sora", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where a model runs.
#[derive(Debug, Clone, Args)]
pub struct DeviceArg {
    /// Device: flex (default), ndarray, tch, tch-cuda:N (see `sora doctor`).
    #[arg(long, default_value = "flex", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
}

/// A model directory and its data, as `eval`, `predict` and `explain` take them.
#[derive(Debug, Clone, Args)]
pub struct ModelData {
    /// The model directory (any kind: its manifest.json says which).
    #[arg(long)]
    pub model: PathBuf,
    /// The data: a CSV file, one image or WAV file, a class-folder tree of images or clips,
    /// or an IDX images file (with `--labels`); a plain text file for a language model.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The IDX labels file of an IDX images file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a CSV file's schema: column kinds, missing values, and the target's balance.
    Inspect {
        /// The CSV file.
        #[arg(long)]
        data: PathBuf,
        /// A column to show the class balance of.
        #[arg(long)]
        target: Option<String>,
    },
    /// Train, evaluate and save a model of any kind: tables, images, audio, text, language
    /// models (`--task generate`), recommenders (`--ratings`). The kind is inferred from the
    /// data; `--task` names it.
    Train(Box<TrainArgs>),
    /// Search a kind's hyper-parameters — hidden widths and depth, dropout, weight decay,
    /// learning rate, batch size, optimizer — by successive halving, each configuration
    /// scored by cross-validation (`--cv`, 5 folds by default), within a time budget; then
    /// train the best as `sora train` would and save it with the table of trials
    /// (`tune.json`). Takes every option of `sora train`: those given are fixed, not searched.
    /// Run again with the same command, an interrupted search continues where it stopped.
    Tune(Box<TuneArgs>),
    /// Evaluate a saved model on labelled data.
    Eval(ModelData),
    /// Predict with a saved model: the rows of a CSV file, images or clips; for a
    /// recommender, the top items of users (`--user`) or the ratings of `user,item` rows.
    Predict(PredictArgs),
    /// Explain a saved classifier's predictions for some rows (or images, clips, documents):
    /// attributions in the terminal, and a report (HTML for tables and text, a PNG of heat
    /// maps for images and audio).
    Explain(Box<ExplainArgs>),
    /// Write text with a language model (`sora train --task generate`), streaming each piece
    /// as it is drawn. The prompt is read as the start of a line; characters or words the
    /// model never saw read as `<unk>` (counted on standard error).
    Generate(GenerateArgs),
    /// Serve a model of any kind over HTTP: POST /v1/predict, /v1/explain, /v1/generate,
    /// /v1/recommend, GET /v1/model, /healthz, /metrics. Stops on Ctrl-C or SIGTERM once the
    /// requests in flight are answered.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Check a model spec (JSON or TOML) and print its layers, output shapes and parameters;
    /// or describe a saved model (`--model`).
    Summary {
        /// The spec file (`.json` or `.toml`).
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        spec: Option<PathBuf>,
        /// A model directory.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Refuse specs with more parameters than this.
        #[arg(long, default_value_t = sora::core::DEFAULT_MAX_PARAMS)]
        max_params: u64,
    },
    /// Write a model card: one self-contained HTML page describing a model directory of any
    /// kind — the data, the pipeline and the model, metrics with their intervals, the
    /// cross-validation table, the confusion matrix, learning curves, calibration, the
    /// decision threshold and its trade-off, conformal sets, the global importance of each
    /// column and the sanity check (tables, with `--data`), the data's licence, the members
    /// of an ensemble.
    Report(ReportArgs),
    /// Add manifest.json to a model directory written by Sora 0.1.
    Upgrade {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
    },
    /// Preflight: the compiled backends, a forward and backward pass on each device, threads,
    /// the LibTorch version; each problem with its fix.
    Doctor {
        /// Check only this device (exits non-zero when it does not work).
        #[arg(long, value_parser = DeviceChoice::parse)]
        device: Option<DeviceChoice>,
    },
}

/// Options of `sora tune`: those of `sora train`, and the search's own.
#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// The time budget of the whole search and the final run: seconds, or with a unit
    /// (`90s`, `5m`, `1h`).
    #[arg(long, default_value = "5m", value_parser = sora::jobs::tune::parse_budget)]
    pub budget: std::time::Duration,
    /// Configurations drawn for the first rung (a third go on to each next rung).
    #[arg(long, default_value_t = 27)]
    pub trials: usize,
}

/// Options of `sora train` besides the kinds' own (added from the registry).
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonOptions,
    /// The model directory to write.
    #[arg(long, default_value = "model")]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Train data-parallel on several devices, comma-separated (e.g. `flex,flex`, or
    /// `tch-cuda:0,tch-cuda:1`): every batch is cut into one shard per device and the shards'
    /// gradients are averaged; the model lives on the first device.
    #[arg(long, value_delimiter = ',', value_parser = DeviceChoice::parse, conflicts_with = "distributed")]
    pub devices: Vec<DeviceChoice>,
    /// Train data-parallel over processes, launched with `mpirun -np N sora train …` (the
    /// `mpi` feature); each rank takes its shard of every batch, rank 0 saves.
    #[arg(long, value_enum)]
    pub distributed: Option<sora::Distributed>,
    /// Write a checkpoint every N epochs, or after the first epoch that ends a time after
    /// the last one (`90s`, `2m`); `0` writes none. Checkpoints live in `.NAME.checkpoints/`
    /// beside `--out` until the model is saved; `--resume` continues from them.
    #[arg(long, value_name = "EVERY", default_value = "60s", value_parser = parse_checkpoint_every)]
    pub checkpoint_every: Checkpointing,
    /// Continue the interrupted run that was writing DIR (its `--out`), with the options and
    /// data it was started with: it ends with the weights the uninterrupted run would have.
    #[arg(long, value_name = "DIR", exclusive = true)]
    pub resume: Option<PathBuf>,
    /// Write the model card (as `sora report` does) here once the model is saved, with the
    /// global importance and sanity check computed on the training data.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Options of `sora report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The model directory (any kind).
    pub dir: PathBuf,
    /// Data to describe the model on (as `sora eval` takes it): its summary and class
    /// balance, and for tables the global importance of each column and the sanity check;
    /// the data's licence is looked for beside it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The IDX labels file of an IDX images file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long, default_value = "card.html")]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `--checkpoint-every`: how often, or `None` for `0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkpointing(pub Option<CheckpointEvery>);

fn parse_checkpoint_every(s: &str) -> Result<Checkpointing, String> {
    match s.trim() {
        "0" => Ok(Checkpointing(None)),
        other => other
            .parse()
            .map(|every| Checkpointing(Some(every)))
            .map_err(|e| format!("{e}, or 0 for none")),
    }
}

/// Options of `sora predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelData,
    /// Recommenders: the users to recommend items to, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "data")]
    pub user: Vec<String>,
    /// Recommenders: items per user.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Write the predictions here (CSV) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `sora explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub model: ModelData,
    #[command(flatten)]
    pub request: ExplainRequest,
    /// Tables and text: write the HTML report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Images and audio: write the PNG of heat maps here.
    #[arg(long, default_value = "explanation.png")]
    pub picture: PathBuf,
}

/// Options of `sora generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The model directory (from `sora train --task generate`).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub request: GenerateRequest,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Options of `sora serve`.
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model directory (any kind).
    #[arg(long)]
    pub model: PathBuf,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub config: sora::serve::ServeConfig,
    /// Threads answering HTTP (default: one per CPU); scoring runs on one more thread.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub http_threads: Option<u16>,
}
