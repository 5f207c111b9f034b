//! The `sora` command-line program.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use clap::{Parser, Subcommand};
use sora::core::{IdentitySpec, ModelSpec, SpecLimits};
use sora::data::{ColumnKind, Impute, Table, TargetRule, infer_schema};
use sora::device::{DeviceChoice, compiled_backends};
use sora::tabular::{ClassWeights, TabularConfig, TabularModel, format_metrics};
use sora::train::{OptimizerConfig, Progress};

// Burn's CPU backends allocate a fresh buffer for most tensor ops; mimalloc keeps freed pages
// for reuse where glibc's malloc returns large blocks to the kernel and faults them back in
// (measured in docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Small, efficient, explainable neural networks on small data.
#[derive(Debug, Parser)]
#[command(name = "sora", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a CSV file's schema: column kinds, missing values, and the target's balance.
    Inspect {
        /// The CSV file.
        #[arg(long)]
        data: PathBuf,
        /// A column to show the class balance of.
        #[arg(long)]
        target: Option<String>,
    },
    /// Train, evaluate and save a model from a CSV file and a target column.
    Train(Box<TrainArgs>),
    /// Evaluate a saved model on labelled data.
    Eval {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The CSV file (with the target column).
        #[arg(long)]
        data: PathBuf,
        /// Device: flex (default) or ndarray.
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Predict the rows of a CSV file with a saved model.
    Predict {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The CSV file (the target column may be absent).
        #[arg(long)]
        data: PathBuf,
        /// Write the predictions here (CSV) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Device: flex (default) or ndarray.
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Check a model spec (JSON or TOML) and print its layers, output shapes and parameters.
    Summary {
        /// The spec file (`.json` or `.toml`).
        #[arg(long)]
        spec: PathBuf,
        /// Refuse specs with more parameters than this.
        #[arg(long, default_value_t = sora::core::DEFAULT_MAX_PARAMS)]
        max_params: u64,
    },
    /// Explain a saved classifier's predictions for some rows: top columns per row in the
    /// terminal, and a self-contained HTML report.
    Explain {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The CSV file.
        #[arg(long)]
        data: PathBuf,
        /// Rows to explain: 1-based data-row numbers (row 1 is the line after the header),
        /// comma-separated, ranges allowed (`1-5,12`).
        #[arg(long, default_value = "1-5")]
        rows: String,
        /// Method: ig, saliency, input-x-gradient, smoothgrad, occlusion, ablation, shapley.
        #[arg(long, default_value = "ig")]
        method: String,
        /// Integrated Gradients steps.
        #[arg(long, default_value_t = 50)]
        steps: usize,
        /// The explained output: `predicted` or a class name.
        #[arg(long, default_value = "predicted")]
        target: String,
        /// Write the HTML report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Columns shown per row in the terminal.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Repeats of the permutation importance over the file's labelled rows (0: skip).
        #[arg(long, default_value_t = 5)]
        permutation_repeats: usize,
        /// Also explain a copy of the model with re-initialised weights and report how much
        /// the attributions change (a model-randomisation sanity check).
        #[arg(long)]
        sanity_check: bool,
        /// Seed of the random draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Device: flex (default) or ndarray.
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Report the compiled backends, which devices work, threads and versions.
    Doctor {
        /// Check only this device.
        #[arg(long)]
        device: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Summary { spec, max_params } => {
            let spec = ModelSpec::<IdentitySpec>::from_file(&spec)?;
            let checked = spec.check_with(&SpecLimits { max_params })?;
            println!("{}", checked.summary());
            Ok(())
        }
        Command::Doctor { device } => doctor(device.as_deref()),
        Command::Inspect { data, target } => inspect(&data, target.as_deref()),
        Command::Explain {
            model,
            data,
            rows,
            method,
            steps,
            target,
            report,
            top,
            permutation_repeats,
            sanity_check,
            seed,
            device,
        } => {
            let device = sora::device::device(&device)?;
            let model = TabularModel::load(&model, &device)?;
            let table = Table::read_csv(&data)?;
            let rows = parse_rows(&rows, table.n_rows())?;
            let options = sora::explain::ExplainOptions {
                method: sora::explain::Method::parse(&method, steps).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--method: expected ig, saliency, input-x-gradient, smoothgrad, occlusion, ablation or shapley, found {method:?}"
                    )
                })?,
                target: match target.as_str() {
                    "predicted" => sora::explain::Explained::Predicted,
                    class => sora::explain::Explained::Class(class.to_string()),
                },
                permutation_repeats,
                sanity_check,
                seed,
            };
            let report_data = sora::explain::explain(&model, &table, &rows, &options)?;
            print!("{}", report_data.terminal_summary(top));
            if let Some(path) = report {
                report_data
                    .save_html(&path)
                    .map_err(|e| anyhow::anyhow!(e))?;
                println!("\nwrote {}", path.display());
            }
            Ok(())
        }
        Command::Train(args) => train(*args),
        Command::Eval {
            model,
            data,
            device,
        } => {
            let device = sora::device::device(&device)?;
            let model = TabularModel::load(&model, &device)?;
            let table = Table::read_csv(&data)?;
            let metrics = model.evaluate(&table)?;
            print!("{}", format_metrics(&metrics, model.pipeline.classes()));
            Ok(())
        }
        Command::Predict {
            model,
            data,
            out,
            device,
        } => predict(&model, &data, out.as_deref(), &device),
    }
}

fn doctor(only: Option<&str>) -> Result<()> {
    println!("sora {}", env!("CARGO_PKG_VERSION"));
    println!("burn {}", sora::BURN_VERSION);
    println!("target {}-{}", std::env::consts::ARCH, std::env::consts::OS);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cpu threads {threads}");
    println!("compiled backends: {}", compiled_backends().join(", "));
    let choices: Vec<DeviceChoice> = match only {
        Some(name) => vec![DeviceChoice::parse(name)?],
        None => DeviceChoice::NAMES
            .iter()
            .map(|n| DeviceChoice::parse(n).expect("known name"))
            .collect(),
    };
    let mut failed = false;
    for choice in choices {
        match choice.device() {
            Err(e) => {
                println!("  {:<8} not compiled ({e})", choice.name());
                failed |= only.is_some();
            }
            Ok(device) => {
                let start = Instant::now();
                let a = Tensor::<2>::from_data(
                    TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
                    &device,
                );
                let check = a.clone().matmul(a).sum().into_scalar::<f32>();
                let ok = (check - 54.0).abs() < 1e-4;
                failed |= !ok;
                println!(
                    "  {:<8} {} (2×2 matmul sum {check}, {:.1} ms)",
                    choice.name(),
                    if ok { "works" } else { "WRONG RESULT" },
                    start.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
    anyhow::ensure!(!failed, "a device check failed");
    Ok(())
}

/// Options of `sora train`.
#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// The CSV file.
    #[arg(long)]
    data: PathBuf,
    /// The column to predict.
    #[arg(long)]
    target: String,
    /// Make the target binary: class 1 when its number is above this value, 0 otherwise.
    #[arg(long)]
    target_above: Option<f64>,
    /// Treat the target as a regression target.
    #[arg(long, conflicts_with = "target_above")]
    regression: bool,
    /// Hidden widths, comma-separated (default: sized from the data).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// A model spec file (JSON or TOML) to use instead of the default head.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Maximum epochs (early stopping usually ends sooner).
    #[arg(long, default_value_t = sora::tabular::DEFAULT_EPOCHS)]
    epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = sora::tabular::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = sora::tabular::DEFAULT_LR)]
    lr: f64,
    /// Optimizer: sgd (with momentum 0.9), adam, adamw.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Epochs without validation improvement before stopping (0 disables early stopping).
    #[arg(long, default_value_t = sora::tabular::DEFAULT_PATIENCE)]
    patience: usize,
    /// Imputation of missing values: mean, median, most-frequent, or constant=VALUE
    /// (categorical columns use the most frequent value unless a constant is given).
    #[arg(long, default_value = "mean")]
    impute: String,
    /// Drop feature columns with more than this fraction of missing training values.
    #[arg(long)]
    drop_columns_over: Option<f64>,
    /// Columns to treat as categorical (one-hot encoded), comma-separated.
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Columns to treat as numeric (standardised), comma-separated.
    #[arg(long, value_delimiter = ',')]
    numeric: Vec<String>,
    /// A pipeline config (JSON) with every data option, per-column imputation included; the
    /// flags above are applied on top of it.
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Add a 0/1 indicator column for each column with missing values.
    #[arg(long)]
    missing_indicators: bool,
    /// Drop rows with missing values instead of imputing them.
    #[arg(long)]
    drop_missing: bool,
    /// Columns in which 0 means "not measured", comma-separated.
    #[arg(long, value_delimiter = ',')]
    zero_as_missing: Vec<String>,
    /// Columns to leave out, comma-separated.
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// Class weights: auto (balanced when imbalanced), balanced, none.
    #[arg(long, default_value = "auto")]
    class_weights: String,
    /// Seed of the split, the initial weights and the shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The model directory to write.
    #[arg(long, default_value = "model")]
    out: PathBuf,
    /// Device: flex (default) or ndarray.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Progress display: auto, bar, plain, quiet.
    #[arg(long, default_value = "auto")]
    progress: String,
}

fn inspect(data: &std::path::Path, target: Option<&str>) -> Result<()> {
    let table = Table::read_csv(data)?;
    let schema = infer_schema(&table, &sora::data::MissingMarkers::default());
    println!("{schema}");
    if let Some(target) = target {
        let col = table.column_index(target).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no column `{target}` (columns: {})",
                data.display(),
                table.headers().join(", ")
            )
        })?;
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in 0..table.n_rows() {
            *counts.entry(table.cell(r, col)).or_default() += 1;
        }
        println!("target `{target}`: {} distinct values", counts.len());
        if counts.len() <= 20 {
            for (value, n) in counts {
                println!(
                    "  {value:>12}  {n:>6}  {:>5.1} %",
                    100.0 * n as f64 / table.n_rows().max(1) as f64
                );
            }
        }
    }
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    let device = sora::device::device(&args.device)?;
    let table = Table::read_csv(&args.data)?;
    let mut config = TabularConfig::new(&args.target);
    if let Some(path) = &args.pipeline {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.pipeline =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.pipeline.target = args.target.clone();
    }
    match (args.target_above, args.regression) {
        (Some(above), _) => config.pipeline.target_rule = TargetRule::Threshold { above },
        (None, true) => config.pipeline.target_rule = TargetRule::Regression,
        (None, false) => {}
    }
    config.pipeline.impute = match args.impute.as_str() {
        "mean" => Impute::Mean,
        "median" => Impute::Median,
        "most-frequent" | "most_frequent" => Impute::MostFrequent,
        other => match other.strip_prefix("constant=") {
            Some(value) => Impute::Constant {
                value: value.to_string(),
            },
            None => anyhow::bail!(
                "--impute: expected mean, median, most-frequent or constant=VALUE, found {other:?}"
            ),
        },
    };
    if args.drop_columns_over.is_some() {
        config.pipeline.drop_columns_over = args.drop_columns_over;
    }
    for (columns, kind) in [
        (&args.categorical, ColumnKind::Categorical),
        (&args.numeric, ColumnKind::Numeric),
    ] {
        for column in columns {
            config.pipeline.kinds.insert(column.clone(), kind);
        }
    }
    config.pipeline.missing_indicators |= args.missing_indicators;
    config.pipeline.drop_missing_rows |= args.drop_missing;
    config.pipeline.zero_as_missing.extend(args.zero_as_missing);
    config.pipeline.ignore.extend(args.ignore);
    config.hidden = args.hidden;
    if let Some(spec) = &args.spec {
        config.spec = Some(ModelSpec::<IdentitySpec>::from_file(spec)?);
    }
    config.class_weights = match args.class_weights.as_str() {
        "auto" => ClassWeights::Auto,
        "balanced" => ClassWeights::Balanced,
        "none" => ClassWeights::None,
        other => anyhow::bail!("--class-weights: expected auto, balanced or none, found {other:?}"),
    };
    let mut train = sora::train::TrainConfig::new(args.epochs, args.batch_size, args.lr)
        .with_seed(args.seed)
        .with_optimizer(match args.optimizer.as_str() {
            "sgd" => OptimizerConfig::sgd(0.9),
            "adam" => OptimizerConfig::adam(),
            "adamw" => OptimizerConfig::adamw(),
            other => anyhow::bail!("--optimizer: expected sgd, adam or adamw, found {other:?}"),
        })
        .with_progress(match args.progress.as_str() {
            "auto" => Progress::Auto,
            "bar" => Progress::Bar,
            "plain" => Progress::Plain,
            "quiet" => Progress::Quiet,
            other => {
                anyhow::bail!("--progress: expected auto, bar, plain or quiet, found {other:?}")
            }
        });
    if args.patience > 0 {
        train = train.with_early_stopping(args.patience, sora::tabular::EARLY_STOPPING_MIN_DELTA);
    }
    config.train = train;

    let prepared = sora::tabular::prepare(&table, &config)?;
    println!("{}", prepared.schema);
    for warning in prepared.pipeline.warnings() {
        println!("note: {warning}");
    }
    println!(
        "rows: {} train, {} validation, {} test (stratified for classes, seed {}); {} model inputs",
        prepared.split.train.len(),
        prepared.split.valid.len(),
        prepared.split.test.len(),
        config.train.seed,
        prepared.pipeline.d_input()
    );
    if let Some(w) = prepared.class_weights(config.class_weights) {
        println!("class weights (balanced, from the training rows): {w:?}");
    }
    println!(
        "\n{}\n",
        sora::tabular::model_spec(&prepared, &config)?.summary()
    );
    let run = sora::tabular::train_prepared(prepared, &config, &device)?;
    println!(
        "\nbest epoch {} of {}{}",
        run.fitted.best_epoch,
        run.fitted.history.epochs.len(),
        if run.fitted.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    println!(
        "\ntest metrics:\n{}",
        format_metrics(&run.test, run.pipeline.classes())
    );
    run.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

fn predict(
    model: &std::path::Path,
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    device: &str,
) -> Result<()> {
    let device = sora::device::device(device)?;
    let model = TabularModel::load(model, &device)?;
    let table = Table::read_csv(data)?;
    let predictions = model.predict(&table)?;
    let mut text = String::from("row,prediction");
    if let Some(classes) = &predictions.classes {
        for c in classes {
            text.push_str(&format!(",p_{c}"));
        }
    }
    text.push('\n');
    for (row, output) in predictions.rows.iter().zip(&predictions.outputs) {
        // Rows are numbered from 1, the first data row (as `sora explain --rows` takes them).
        text.push_str(&(row + 1).to_string());
        match &predictions.classes {
            Some(classes) => {
                let best = sora::train::argmax(output);
                text.push_str(&format!(",{}", classes[best]));
                for p in output {
                    text.push_str(&format!(",{p:.6}"));
                }
            }
            None => text.push_str(&format!(",{}", output[0])),
        }
        text.push('\n');
    }
    if predictions.unseen_categories > 0 {
        eprintln!(
            "note: {} cells held categories not seen in training (encoded as none of the known ones)",
            predictions.unseen_categories
        );
    }
    match out {
        Some(path) => {
            sora::core::weights::write_atomic(path, text.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            eprintln!(
                "wrote {} predictions to {}",
                predictions.rows.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Parses `1-5,12` (1-based data rows) into 0-based row indices, checked against `n_rows`.
fn parse_rows(spec: &str, n_rows: usize) -> Result<Vec<usize>> {
    let mut rows = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |s: &str| -> Result<usize> {
            s.parse::<usize>().ok().filter(|&r| r >= 1).ok_or_else(|| {
                anyhow::anyhow!("--rows: {part:?} is not a row number (1 is the first data row)")
            })
        };
        let (a, b) = (parse(a)?, parse(b)?);
        anyhow::ensure!(a <= b, "--rows: range {part:?} runs backwards");
        anyhow::ensure!(
            b <= n_rows,
            "--rows: row {b} is past the last data row ({n_rows})"
        );
        rows.extend(a - 1..b);
    }
    anyhow::ensure!(!rows.is_empty(), "--rows: no rows given");
    Ok(rows)
}
