//! The `sora` command-line program.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sora::core::{IdentitySpec, ModelSpec, SpecLimits};
use sora::data::{ColumnKind, Impute, Table, TargetRule, infer_schema};
use sora::device::DeviceChoice;
use sora::media::{MediaModel, Source};
use sora::recommend::{Ratings, RecommenderModel};
use sora::tabular::{ClassWeights, TabularConfig, TabularModel, format_metrics};
use sora::textclf::TextModel;
use sora::train::{OptimizerConfig, Progress, TrainConfig};

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
    /// Train, evaluate and save a model from a CSV file and a target column (or images,
    /// audio, text); with `--task generate`, a language model of a text.
    Train(Box<TrainArgs>),
    /// Evaluate a saved model on labelled data.
    Eval {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The data: a CSV file (with the target column), a class-folder tree of images or
        /// WAV clips, or an IDX images file (with `--labels`).
        #[arg(long)]
        data: PathBuf,
        /// The IDX labels file of an IDX images file.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Device: flex (default), ndarray, tch, tch-cuda:N (see `sora doctor`).
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Predict the rows of a CSV file, or images or clips, with a saved model; for a
    /// recommender, the top items of users (`--user`) or the ratings of `user,item` rows.
    Predict {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The data: a CSV file (the target column may be absent), one image or WAV file, a
        /// class-folder tree, or an IDX images file; for a recommender, a CSV file of
        /// `user,item` pairs to predict the ratings of.
        #[arg(long, required_unless_present = "user")]
        data: Option<PathBuf>,
        /// Recommenders: the users to recommend items to, comma-separated.
        #[arg(long, value_delimiter = ',')]
        user: Vec<String>,
        /// Recommenders: items per user.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// The IDX labels file of an IDX images file (optional).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Write the predictions here (CSV) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Device: flex (default), ndarray, tch, tch-cuda:N (see `sora doctor`).
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
    /// Explain a saved classifier's predictions for some rows (or images, or clips): top
    /// columns per row in the terminal and a self-contained HTML report for tables; heat maps
    /// over the images (or spectrograms) in a PNG for images and audio.
    Explain {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// The data: a CSV file, one image or WAV file, a class-folder tree, or an IDX file.
        #[arg(long)]
        data: PathBuf,
        /// The IDX labels file of an IDX images file (optional).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Rows to explain: 1-based data-row numbers (row 1 is the line after the header),
        /// comma-separated, ranges allowed (`1-5,12`); for images and clips, 1-based sample
        /// numbers in reading order.
        /// [default: 1-5, or as many as there are]
        #[arg(long)]
        rows: Option<String>,
        /// Method: ig, saliency, input-x-gradient, smoothgrad, occlusion, ablation, shapley
        /// for tables; gradcam (default for images and audio), saliency, input-x-gradient,
        /// ig, occlusion for images and audio.
        #[arg(long)]
        method: Option<String>,
        /// Grad-CAM: the convolution block whose maps are used (0-based; default the last).
        #[arg(long)]
        layer: Option<usize>,
        /// Occlusion on images and audio: side of the occluded square, in pixels or cells.
        #[arg(long, default_value_t = 4)]
        patch: usize,
        /// Images and audio: write the heat-map picture (PNG) here.
        #[arg(long, default_value = "explanation.png")]
        picture: PathBuf,
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
        /// Device: flex (default), ndarray, tch, tch-cuda:N (see `sora doctor`).
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Write text with a language model trained by `sora train --task generate`, streaming
    /// each piece as it is drawn. The prompt is read as the start of a line; characters or
    /// words the model never saw read as `<unk>` (counted on standard error).
    Generate(GenerateArgs),
    /// Serve a tabular or text model over HTTP for real-time scoring: POST /v1/predict,
    /// POST /v1/explain, GET /v1/model, GET /healthz, GET /metrics. Stops on Ctrl-C or
    /// SIGTERM once the requests in flight are answered.
    Serve(ServeArgs),
    /// Preflight: the compiled backends, a forward and backward pass on each device, threads,
    /// the LibTorch version; each problem with its fix.
    Doctor {
        /// Check only this device (exits non-zero when it does not work).
        #[arg(long)]
        device: Option<String>,
    },
}

/// Options of `sora serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The model directory (written by `sora train`; tabular or text).
    #[arg(long)]
    model: PathBuf,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Device: flex (default) or ndarray.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Microseconds the scorer waits for requests still being parsed to batch them with the
    /// first one (0: score at once whatever is queued; a lone request never waits).
    #[arg(long, default_value_t = 100)]
    batch_window_us: u64,
    /// Most rows scored in one forward pass.
    #[arg(long, default_value_t = 256)]
    max_batch_rows: usize,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most rows in one request (more: 413).
    #[arg(long, default_value_t = 1024)]
    max_rows: usize,
    /// Threads answering HTTP (default: one per CPU); scoring runs on one more thread.
    #[arg(long)]
    http_threads: Option<usize>,
}

/// `sora serve`: loads the model once, serves until Ctrl-C or SIGTERM.
fn serve(args: ServeArgs) -> Result<()> {
    use sora::serve::{ServeConfig, Server};

    let device = sora::device::device(&args.device)?;
    let config = ServeConfig {
        batch_window: std::time::Duration::from_micros(args.batch_window_us),
        max_batch_rows: args.max_batch_rows,
        max_body_bytes: args.max_body_bytes,
        max_rows: args.max_rows,
        device_name: sora::device::DeviceChoice::parse(&args.device)?
            .name()
            .to_string(),
    };
    let server = Server::load(&args.model, &device, config)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.http_threads {
        anyhow::ensure!(n > 0, "--http-threads: expected a positive number");
        runtime.worker_threads(n);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(|e| anyhow::anyhow!("--addr {}: {e}", args.addr))?;
        let info = server.info();
        println!(
            "serving {} {} model {} ({} input columns, {} parameters, device {})",
            info.kind,
            info.task,
            args.model.display(),
            info.input.len(),
            info.parameters,
            info.device
        );
        println!("listening on http://{}", listener.local_addr()?);
        use std::io::Write;
        std::io::stdout().flush()?;
        server.run(listener, shutdown).await?;
        println!("stopped");
        anyhow::Ok(())
    })
}

/// A future that completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM. On Unix both handlers are
/// installed here, before the server says it is listening, so a signal sent as soon as it
/// does is never missed. Needs the Tokio runtime.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => eprintln!("Ctrl-C: finishing the requests in flight"),
                _ = terminate.recv() => eprintln!("SIGTERM: finishing the requests in flight"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Ctrl-C: finishing the requests in flight");
            } else {
                std::future::pending::<()>().await;
            }
        })
    }
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
    if let Command::Eval { model, .. }
    | Command::Predict { model, .. }
    | Command::Explain { model, .. } = &cli.command
    {
        anyhow::ensure!(
            !sora::generate::Generator::is_generator(model),
            "{}: a language model; it writes text with `sora generate --model {}`",
            model.display(),
            model.display()
        );
    }
    match cli.command {
        Command::Summary { spec, max_params } => {
            let limits = SpecLimits { max_params };
            let kind = sora::media::ConvSpec::encoder_kind(&spec)?;
            let conv = matches!(kind.as_deref(), Some("conv1d" | "conv2d"));
            let summary = match conv
                .then(|| sora::media::ConvSpec::from_file(&spec))
                .transpose()?
            {
                Some(sora::media::ConvSpec::Conv2d(s)) => s.check_with(&limits)?.summary().clone(),
                Some(sora::media::ConvSpec::Conv1d(s)) => s.check_with(&limits)?.summary().clone(),
                None => ModelSpec::<IdentitySpec>::from_file(&spec)?
                    .check_with(&limits)?
                    .summary()
                    .clone(),
            };
            println!("{summary}");
            Ok(())
        }
        Command::Doctor { device } => doctor(device.as_deref()),
        Command::Serve(args) => serve(args),
        Command::Inspect { data, target } => inspect(&data, target.as_deref()),
        Command::Explain {
            model,
            data,
            labels,
            rows,
            method,
            layer,
            patch,
            picture,
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
            if TextModel::is_text_model(&model) {
                anyhow::ensure!(
                    matches!(method.as_deref(), None | Some("ig")),
                    "--method: text models are explained by integrated gradients (ig) at the embedding output"
                );
                let model = TextModel::load(&model, &device)?;
                return explain_text(
                    &model,
                    &data,
                    rows.as_deref(),
                    &target,
                    steps,
                    report.as_deref(),
                    &device,
                );
            }
            if is_media_model(&model) {
                let method = method.as_deref().unwrap_or("gradcam");
                let method = sora::media::MediaMethod::parse(method, steps, patch, layer)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--method: expected {} for images and audio, found {method:?}",
                            sora::media::MediaMethod::NAMES
                        )
                    })?;
                let model = MediaModel::load(&model, &device)?;
                let samples = media_data(&model, &data, labels.as_deref())?;
                let rows = rows.unwrap_or_else(|| format!("1-{}", samples.len().min(5)));
                let rows = parse_rows(&rows, samples.len())?;
                return explain_media(&model, &samples.subset(&rows), &method, &target, &picture);
            }
            let method = method.unwrap_or_else(|| "ig".into());
            let model = TabularModel::load(&model, &device)?;
            let table = Table::read_csv(&data)?;
            let rows = rows.unwrap_or_else(|| format!("1-{}", table.n_rows().clamp(1, 5)));
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
        Command::Generate(args) => generate(&args),
        Command::Eval {
            model,
            data,
            labels,
            device,
        } => {
            let device = sora::device::device(&device)?;
            if RecommenderModel::is_recommender_model(&model) {
                let model = RecommenderModel::load(&model, &device)?;
                let ratings = Ratings::read_csv(&data, Some(model.rating.range()))?;
                let scores = model.rating.evaluate(&ratings)?;
                println!("{}: {} ratings", data.display(), ratings.len());
                print_rating_scores(&scores);
                return Ok(());
            }
            if TextModel::is_text_model(&model) {
                let model = TextModel::load(&model, &device)?;
                let docs = model.load_csv(&data, true)?;
                let metrics = model.evaluate(&docs.texts, &docs.labels)?;
                print!("{}", format_metrics(&metrics, Some(&model.text.classes)));
                return Ok(());
            }
            if is_media_model(&model) {
                let model = MediaModel::load(&model, &device)?;
                let samples = media_data(&model, &data, labels.as_deref())?;
                anyhow::ensure!(
                    !samples.classes.is_empty(),
                    "{}: the data has no labels to evaluate against",
                    data.display()
                );
                let metrics = model.evaluate(&samples)?;
                print!("{}", format_metrics(&metrics, Some(&model.input.classes)));
                return Ok(());
            }
            let model = TabularModel::load(&model, &device)?;
            let table = Table::read_csv(&data)?;
            let metrics = model.evaluate(&table)?;
            print!("{}", format_metrics(&metrics, model.pipeline.classes()));
            Ok(())
        }
        Command::Predict {
            model,
            data,
            user,
            top,
            labels,
            out,
            device,
        } => {
            if RecommenderModel::is_recommender_model(&model) {
                return predict_ratings(
                    &model,
                    data.as_deref(),
                    &user,
                    top,
                    out.as_deref(),
                    &device,
                );
            }
            anyhow::ensure!(
                user.is_empty(),
                "--user: {} is not a recommender (no {})",
                model.display(),
                sora::recommend::RECOMMENDER_FILE
            );
            let data = data.ok_or_else(|| anyhow::anyhow!("--data: the data to predict"))?;
            if TextModel::is_text_model(&model) {
                return predict_text(&model, &data, out.as_deref(), &device);
            }
            if is_media_model(&model) {
                return predict_media(&model, &data, labels.as_deref(), out.as_deref(), &device);
            }
            predict(&model, &data, out.as_deref(), &device)
        }
    }
}

fn doctor(only: Option<&str>) -> Result<()> {
    let only = only.map(DeviceChoice::parse).transpose()?;
    let report = sora::doctor::run(only);
    println!("{report}");
    anyhow::ensure!(
        report.passed(),
        "{}",
        match only {
            Some(choice) => format!("device `{choice}` does not work here (see above)"),
            None => "a check failed (see the problems above)".to_string(),
        }
    );
    Ok(())
}

/// Options of `sora train`.
#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// The data: a CSV file; a folder with one sub-folder of images (PNG, JPEG, BMP, GIF) or
    /// of WAV clips per class (the folder name is the label); or an IDX images file (with
    /// `--labels`). Not needed by `--task generate` with a plain text file.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The task: auto (classification or regression, from the data and the target), or
    /// generate (a language model of `--text`: a plain UTF-8 text file, or a column of the
    /// CSV file `--data`).
    #[arg(long, default_value = "auto")]
    task: String,
    /// The column to predict (CSV files).
    #[arg(long)]
    target: Option<String>,
    /// The IDX labels file of an IDX images file.
    #[arg(long)]
    labels: Option<PathBuf>,
    #[command(flatten)]
    media: MediaArgs,
    #[command(flatten)]
    text: TextArgs,
    #[command(flatten)]
    ratings: RatingsArgs,
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
    /// Maximum epochs (early stopping usually ends sooner) [default: 200 for tables, 30 for
    /// images and audio].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per step [default: 32 for tables, 64 for images and audio].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate [default: 0.01 for tables (SGD), 0.001 for images and audio (Adam)].
    #[arg(long)]
    lr: Option<f64>,
    /// Optimizer: sgd (with momentum 0.9), adam, adamw [default: sgd for tables, adam for
    /// images and audio].
    #[arg(long)]
    optimizer: Option<String>,
    /// Epochs without validation improvement before stopping (0 disables early stopping)
    /// [default: 15 for tables, 5 for images and audio].
    #[arg(long)]
    patience: Option<usize>,
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
    /// Device: flex (default), ndarray, tch, tch-cuda:N (see `sora doctor`).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Progress display: auto, bar, plain, quiet.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Train data-parallel on several devices, comma-separated (e.g. `flex,flex`, or
    /// `tch-cuda:0,tch-cuda:1`): every batch is cut into one shard per device and the shards'
    /// gradients are averaged; the model lives on the first device.
    #[arg(long, value_delimiter = ',', conflicts_with = "distributed")]
    devices: Vec<String>,
    /// Train data-parallel over processes: `mpi`, launched with `mpirun -np N sora train …`
    /// (the `mpi` feature); each rank takes its shard of every batch, rank 0 saves.
    #[arg(long)]
    distributed: Option<String>,
}

/// The data-parallel setting of a run and, under MPI, the environment to keep alive.
struct ParallelRun {
    parallel: sora::train::Parallel,
    leader: bool,
    #[cfg(feature = "mpi")]
    _mpi: Option<mpi::environment::Universe>,
}

fn parallel_run(args: &TrainArgs) -> Result<ParallelRun> {
    let mut run = ParallelRun {
        parallel: sora::train::Parallel::None,
        leader: true,
        #[cfg(feature = "mpi")]
        _mpi: None,
    };
    if !args.devices.is_empty() {
        let devices = args
            .devices
            .iter()
            .map(|name| sora::device::device(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--devices: {e}"))?;
        run.parallel = sora::train::Parallel::Devices(devices);
        return Ok(run);
    }
    match args.distributed.as_deref() {
        None => {}
        #[cfg(feature = "mpi")]
        Some("mpi") => {
            let (universe, collective) = sora::distributed::init()?;
            run.leader = sora::train::Collective::rank(&collective) == 0;
            run.parallel = sora::train::Parallel::Processes(std::sync::Arc::new(collective));
            run._mpi = Some(universe);
        }
        #[cfg(not(feature = "mpi"))]
        Some("mpi") => anyhow::bail!(
            "--distributed mpi: this build has no MPI; rebuild with `--features mpi` (needs OpenMPI and libclang, see docs/backends.md)"
        ),
        Some(other) => anyhow::bail!("--distributed: expected mpi, found {other:?}"),
    }
    Ok(run)
}

/// Options of `sora train` for ratings.
#[derive(Debug, clap::Args)]
struct RatingsArgs {
    /// Ratings: the CSV holds `user,item,rating[,timestamp]` rows; train a rating model
    /// (biased matrix factorisation) and, when there are timestamps, a top-N ranker.
    #[arg(long, conflicts_with = "text")]
    ratings: bool,
    /// Ratings: the declared range `MIN-MAX` (e.g. `0.5-5`); a rating outside it is an error
    /// naming its line [default: the data's minimum and maximum].
    #[arg(long, requires = "ratings")]
    rating_range: Option<String>,
}

/// Options of `sora generate`.
#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The model directory (from `sora train --task generate`).
    #[arg(long)]
    model: PathBuf,
    /// The text to continue; any length (empty: start a new line).
    #[arg(long, default_value = "")]
    prompt: String,
    /// Temperature: 0 is greedy, below 1 sharpens, above 1 flattens; negative is an error.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f64,
    /// Draw only among the k most likely tokens (k >= 1).
    #[arg(long, allow_negative_numbers = true)]
    top_k: Option<i64>,
    /// Draw only among the most likely tokens whose probabilities sum to p, in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// The most tokens written.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Stop once the written text ends with this string (kept in the output); repeatable;
    /// `\n` and `\t` stand for a line break and a tab.
    #[arg(long)]
    stop: Vec<String>,
    /// Seed of the draws: the same seed writes the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: flex (default) or ndarray.
    #[arg(long, default_value = "flex")]
    device: String,
}

/// `--stop` values with `\n`, `\t` and `\\` read as a line break, a tab and a backslash.
fn unescape(s: &str) -> String {
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
    out
}

/// `sora generate`: the prompt, then the continuation streamed piece by piece.
fn generate(args: &GenerateArgs) -> Result<()> {
    use std::io::Write;

    use sora::generate::{GenerateOptions, Generator};
    use sora::text::lm::{LmError, SamplingConfig};

    let top_k = args
        .top_k
        .map(|k| {
            usize::try_from(k)
                .ok()
                .filter(|&k| k >= 1)
                .ok_or_else(|| anyhow::anyhow!("--top-k: expected at least 1, found {k}"))
        })
        .transpose()?;
    let options = GenerateOptions {
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k,
            top_p: args.top_p,
            max_tokens: args.max_tokens,
            stop_tokens: Vec::new(),
            seed: args.seed,
        },
        stop: args.stop.iter().map(|s| unescape(s)).collect(),
    };
    // Bad options fail before the model is read.
    options.sampling.check().map_err(|e| match e {
        LmError::InvalidField {
            field,
            expected,
            found,
        } => anyhow::anyhow!(
            "--{}: expected {expected}, found {found}",
            field.replace('_', "-")
        ),
        other => other.into(),
    })?;
    anyhow::ensure!(
        options.stop.iter().all(|s| !s.is_empty()),
        "--stop: expected a non-empty string"
    );
    let device = sora::device::device(&args.device)?;
    anyhow::ensure!(
        Generator::is_generator(&args.model),
        "{}: not a language model directory (no {}; train one with `sora train --task generate`)",
        args.model.display(),
        sora::generate::GENERATOR_FILE
    );
    let generator = Generator::load(&args.model, &device)?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", args.prompt)?;
    stdout.flush()?;
    let written = generator.generate(&args.prompt, &options, |piece| {
        // A closed pipe (`| head`) ends the output, not the program with a panic.
        let _ = write!(stdout, "{piece}").and_then(|()| stdout.flush());
    })?;
    if !written.text.ends_with('\n') {
        writeln!(stdout)?;
    }
    if written.unknown > 0 {
        eprintln!(
            "note: {} prompt token(s) not in the model's vocabulary, read as <unk>",
            written.unknown
        );
    }
    Ok(())
}

/// The `--data` path, which every task but `--task generate` with a text file needs.
fn data_path(args: &TrainArgs) -> Result<&std::path::Path> {
    args.data
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--data: the data file or folder is required"))
}

/// `sora train --task generate`: a recurrent language model of a text.
fn train_generate(args: &TrainArgs, device: &burn::tensor::Device) -> Result<()> {
    use sora::generate::{GenerateConfig, TokenKind, load_csv_column, load_text, train};
    use sora::text::Cell;

    let t = &args.text;
    let text = t.text.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "--text: --task generate needs the text: a plain text FILE, or a COLUMN of the CSV file --data"
        )
    })?;
    anyhow::ensure!(
        args.target.is_none(),
        "--target: a language model predicts the next token of the text; it takes no target column"
    );
    let tokens = TokenKind::parse(&t.tokens)
        .ok_or_else(|| anyhow::anyhow!("--tokens: expected char or word, found {:?}", t.tokens))?;
    let cell = match t.cell.as_str() {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        other => anyhow::bail!("--cell: expected lstm or gru, found {other:?}"),
    };
    let defaults = GenerateConfig::default();
    let d_hidden = match args.hidden.as_deref() {
        None => defaults.d_hidden,
        Some(&[h]) => h,
        Some(other) => anyhow::bail!(
            "--hidden: a language model takes one hidden width (--layers sets the depth), found {other:?}"
        ),
    };
    let config = GenerateConfig {
        tokens,
        min_count: t.min_count,
        d_embed: t.embed,
        d_hidden,
        layers: t.layers,
        cell,
        dropout: t.dropout,
        seq_len: t.seq_len.unwrap_or(defaults.seq_len),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        epochs: args.epochs.unwrap_or(defaults.epochs),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed,
        progress: if args.progress == "quiet" {
            Progress::Quiet
        } else {
            Progress::Plain
        },
        ..defaults
    };
    // Option errors name the flag.
    let flag = |field: &str| match field {
        "d_hidden" => "--hidden".to_string(),
        "d_embed" => "--embed".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    };
    config.check().map_err(|e| match e {
        sora::generate::GenerateError::InvalidOption {
            field,
            expected,
            found,
        } => anyhow::anyhow!("{}: expected {expected}, found {found}", flag(field)),
        other => other.into(),
    })?;
    config.model(3).check().map_err(|e| match e {
        sora::text::lm::LmError::InvalidField {
            field,
            expected,
            found,
        } => anyhow::anyhow!("{}: expected {expected}, found {found}", flag(field)),
        other => other.into(),
    })?;
    let corpus = match &args.data {
        Some(csv) => load_csv_column(csv, text)?,
        None => load_text(std::path::Path::new(text))?,
    };
    println!(
        "{}: {} lines; {} tokens, {} {} layer(s) of {}, chunks of {}",
        corpus.source,
        corpus.lines.len(),
        tokens,
        config.layers,
        t.cell,
        config.d_hidden,
        config.seq_len
    );
    let run = train(&corpus, &config, device)?;
    println!(
        "{} training tokens in {} streams, {} held out (the end of the text); {} tokens in the vocabulary; {} parameters",
        run.train_tokens,
        run.streams,
        run.held_out_tokens,
        run.saved.vocabulary.len(),
        run.saved.model.n_params()
    );
    println!(
        "
held-out {tokens} tokens:"
    );
    println!("  {:<20} {:>10} {:>10}", "model", "perplexity", "bits/char");
    let best = format!("{} (epoch {})", t.cell, run.best_epoch);
    for (name, m) in [
        ("unigram (add-one)", run.baselines.unigram),
        ("bigram (add-one)", run.baselines.bigram),
        (best.as_str(), run.held_out),
    ] {
        let bits = m
            .bits_per_char
            .map_or_else(|| "-".to_string(), |b| format!("{b:.3}"));
        println!("  {name:<20} {:>10.3} {bits:>10}", m.perplexity);
    }
    run.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

/// Options of `sora train` for text.
#[derive(Debug, clap::Args)]
struct TextArgs {
    /// Text: the CSV column holding the documents (UTF-8; invalid text is an error naming
    /// its line); its presence makes this a text classifier over `--target`. With `--task
    /// generate`: a plain UTF-8 text file to learn from, or, when `--data` names a CSV file,
    /// its column (one row per line).
    #[arg(long)]
    text: Option<String>,
    /// Generate: the tokens, char (characters, case kept) or word (lower-cased words and
    /// punctuation).
    #[arg(long, default_value = "char", requires = "text")]
    tokens: String,
    /// Generate: the recurrent cell, lstm or gru.
    #[arg(long, default_value = "lstm", requires = "text")]
    cell: String,
    /// Generate: stacked recurrent layers.
    #[arg(long, default_value_t = 1, requires = "text")]
    layers: usize,
    /// Generate: dropout on the embeddings, between layers and before the projection.
    #[arg(long, default_value_t = 0.1, requires = "text")]
    dropout: f64,
    /// Text encoder: bag (bag of embeddings), lstm, gru (bidirectional recurrent layers).
    #[arg(long, default_value = "bag", requires = "text")]
    encoder: String,
    /// Text: tokens per document (default: the 95th percentile of the training lengths,
    /// at most 64). Generate: tokens per chunk of truncated back-propagation through time
    /// (default 64).
    #[arg(long, requires = "text")]
    seq_len: Option<usize>,
    /// Text: embedding width.
    #[arg(long, default_value_t = 64, requires = "text")]
    embed: usize,
    /// Text: keep tokens seen at least this many times in the training documents.
    #[arg(long, default_value_t = 1, requires = "text")]
    min_count: usize,
}

/// Options of `sora train` for images and audio.
#[derive(Debug, clap::Args)]
struct MediaArgs {
    /// Image size `HEIGHTxWIDTH` to resize every image to (default: the first image's size;
    /// then all must share it).
    #[arg(long)]
    image_size: Option<String>,
    /// Image channels: auto (from the first image), gray, rgb.
    #[arg(long, default_value = "auto")]
    channels: String,
    /// Augmentation: random crop of training images after zero padding by this many pixels.
    #[arg(long, default_value_t = 0)]
    crop_padding: usize,
    /// Augmentation: random horizontal flips (not for digits or text).
    #[arg(long)]
    hflip: bool,
    /// Augmentation: random translation by up to this many pixels.
    #[arg(long, default_value_t = 0)]
    translate: usize,
    /// Audio features: log-mel, mfcc, waveform.
    #[arg(long, default_value = "log-mel")]
    features: String,
    /// Audio sample rate the clips are resampled to, in Hz.
    #[arg(long, default_value_t = 8000)]
    sample_rate: u32,
    /// Audio clip length in seconds (shorter clips are padded, longer ones cropped).
    #[arg(long, default_value_t = 1.0)]
    clip_seconds: f64,
    /// Audio mel bands.
    #[arg(long, default_value_t = 40)]
    mels: usize,
    /// Audio MFCC coefficients (with `--features mfcc`).
    #[arg(long, default_value_t = 13)]
    mfcc: usize,
    /// Augmentation: time masks of up to this many frames on training spectrograms (two per
    /// clip).
    #[arg(long, default_value_t = 0)]
    mask_time: usize,
    /// Augmentation: frequency masks of up to this many bands on training spectrograms (two
    /// per clip).
    #[arg(long, default_value_t = 0)]
    mask_freq: usize,
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

/// The training loop's options from the flags, over the job's defaults.
fn train_config(
    args: &TrainArgs,
    defaults: &TrainConfig,
    default_optimizer: &str,
    default_patience: usize,
) -> Result<TrainConfig> {
    let mut train = TrainConfig::new(
        args.epochs.unwrap_or(defaults.epochs),
        args.batch_size.unwrap_or(defaults.batch_size),
        args.lr.unwrap_or(defaults.lr),
    )
    .with_seed(args.seed)
    .with_optimizer(
        match args.optimizer.as_deref().unwrap_or(default_optimizer) {
            "sgd" => OptimizerConfig::sgd(0.9),
            "adam" => OptimizerConfig::adam(),
            "adamw" => OptimizerConfig::adamw(),
            other => anyhow::bail!("--optimizer: expected sgd, adam or adamw, found {other:?}"),
        },
    )
    .with_progress(progress(&args.progress)?);
    let patience = args.patience.unwrap_or(default_patience);
    if patience > 0 {
        train = train.with_early_stopping(patience, sora::tabular::EARLY_STOPPING_MIN_DELTA);
    }
    Ok(train)
}

fn progress(name: &str) -> Result<Progress> {
    Ok(match name {
        "auto" => Progress::Auto,
        "bar" => Progress::Bar,
        "plain" => Progress::Plain,
        "quiet" => Progress::Quiet,
        other => anyhow::bail!("--progress: expected auto, bar, plain or quiet, found {other:?}"),
    })
}

fn train(args: TrainArgs) -> Result<()> {
    let par = parallel_run(&args)?;
    let device = match &par.parallel {
        sora::train::Parallel::Devices(devices) => devices[0].clone(),
        _ => sora::device::device(&args.device)?,
    };
    match args.task.as_str() {
        "auto" => {}
        "generate" => {
            anyhow::ensure!(
                matches!(par.parallel, sora::train::Parallel::None),
                "--devices/--distributed: language models train on one device"
            );
            return train_generate(&args, &device);
        }
        other => anyhow::bail!("--task: expected auto or generate, found {other:?}"),
    }
    let data = data_path(&args)?;
    if args.ratings.ratings {
        anyhow::ensure!(
            matches!(par.parallel, sora::train::Parallel::None),
            "--devices/--distributed: recommenders train on one device"
        );
        return train_ratings(&args, data, &device);
    }
    if let Some(column) = args.text.text.clone() {
        return train_text(&args, &column, &device, &par);
    }
    if let Some(source) = Source::detect(data, args.labels.as_deref()) {
        return train_media(&args, source, &device, &par);
    }
    let target = args
        .target
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--target: a CSV file needs the column to predict"))?;
    let table = Table::read_csv(data)?;
    let mut config = TabularConfig::new(&target);
    if let Some(path) = &args.pipeline {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.pipeline =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.pipeline.target = target.clone();
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
    config
        .pipeline
        .zero_as_missing
        .extend(args.zero_as_missing.iter().cloned());
    config.pipeline.ignore.extend(args.ignore.iter().cloned());
    config.hidden = args.hidden.clone();
    if let Some(spec) = &args.spec {
        config.spec = Some(ModelSpec::<IdentitySpec>::from_file(spec)?);
    }
    config.class_weights = match args.class_weights.as_str() {
        "auto" => ClassWeights::Auto,
        "balanced" => ClassWeights::Balanced,
        "none" => ClassWeights::None,
        other => anyhow::bail!("--class-weights: expected auto, balanced or none, found {other:?}"),
    };
    let train = train_config(
        &args,
        &TabularConfig::new(&target).train,
        "sgd",
        sora::tabular::DEFAULT_PATIENCE,
    )?;
    config.train = train;
    config.parallel = par.parallel.clone();

    let prepared = sora::tabular::prepare(&table, &config)?;
    if par.leader {
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
        if let sora::train::Parallel::Devices(d) = &par.parallel {
            println!(
                "data-parallel on {} devices: {}",
                d.len(),
                args.devices.join(", ")
            );
        }
    }
    let run = sora::tabular::train_prepared(prepared, &config, &device)?;
    if !par.leader {
        return Ok(());
    }
    print_outcome(
        run.fitted.best_epoch,
        run.fitted.history.epochs.len(),
        run.fitted.stopped_early,
        &run.test,
        run.pipeline.classes(),
    );
    run.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

fn train_media(
    args: &TrainArgs,
    source: Source,
    device: &burn::tensor::Device,
    par: &ParallelRun,
) -> Result<()> {
    use sora::conv::audio::{FeatureConfig, FeatureKind, Masking};
    use sora::conv::images::{Augment, ChannelMode, ImageOptions};
    use sora::media::{ConvSpec, LoadOptions, MediaConfig};

    let m = &args.media;
    if source.is_audio() {
        anyhow::ensure!(
            m.crop_padding == 0 && !m.hflip && m.translate == 0,
            "--crop-padding, --hflip and --translate augment images; {} holds audio clips (use --mask-time, --mask-freq)",
            data_path(args)?.display()
        );
    } else {
        anyhow::ensure!(
            m.mask_time == 0 && m.mask_freq == 0,
            "--mask-time and --mask-freq mask spectrograms; {} holds images (use --crop-padding, --hflip, --translate)",
            data_path(args)?.display()
        );
    }
    let size = m
        .image_size
        .as_deref()
        .map(|s| {
            s.split_once('x')
                .and_then(|(h, w)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?)))
                .filter(|&(h, w): &(usize, usize)| h > 0 && w > 0)
                .ok_or_else(|| anyhow::anyhow!("--image-size: expected HEIGHTxWIDTH, found {s:?}"))
        })
        .transpose()?;
    let channels = match m.channels.as_str() {
        "auto" => ChannelMode::Auto,
        "gray" => ChannelMode::Gray,
        "rgb" => ChannelMode::Rgb,
        other => anyhow::bail!("--channels: expected auto, gray or rgb, found {other:?}"),
    };
    let kind = match m.features.as_str() {
        "log-mel" => FeatureKind::LogMel,
        "mfcc" => FeatureKind::Mfcc,
        "waveform" => FeatureKind::Waveform,
        other => anyhow::bail!("--features: expected log-mel, mfcc or waveform, found {other:?}"),
    };
    anyhow::ensure!(
        kind != FeatureKind::Waveform || (m.mask_time == 0 && m.mask_freq == 0),
        "--mask-time and --mask-freq mask spectrograms, not --features waveform"
    );
    anyhow::ensure!(
        m.clip_seconds.is_finite() && m.clip_seconds > 0.0 && m.clip_seconds <= 600.0,
        "--clip-seconds: expected a length in (0, 600], found {}",
        m.clip_seconds
    );
    let features = FeatureConfig {
        kind,
        sample_rate: m.sample_rate,
        clip_samples: (m.clip_seconds * f64::from(m.sample_rate)).round() as usize,
        n_mels: m.mels,
        n_mfcc: m.mfcc,
        ..FeatureConfig::default()
    };
    features.check()?;
    let options = LoadOptions {
        image: ImageOptions { channels, size },
        features,
    };
    let defaults = MediaConfig::default();
    let mut config = MediaConfig {
        train: train_config(args, &defaults.train, "adam", sora::media::DEFAULT_PATIENCE)?,
        augment: Augment {
            crop_padding: m.crop_padding,
            hflip: m.hflip,
            max_translate: m.translate,
        },
        masking: Masking {
            time_masks: if m.mask_time > 0 { 2 } else { 0 },
            max_time: m.mask_time,
            freq_masks: if m.mask_freq > 0 { 2 } else { 0 },
            max_freq: m.mask_freq,
        },
        ..defaults
    };
    if let Some(spec) = &args.spec {
        config.spec = Some(ConvSpec::from_file(spec)?);
    }
    let start = Instant::now();
    let (samples, pipeline) = sora::media::load(&source, &options)?;
    println!(
        "{}: {} samples of shape {:?}, {} classes ({}), read in {:.1} s",
        data_path(args)?.display(),
        samples.len(),
        samples.shape,
        samples.classes.len(),
        samples.classes.join(", "),
        start.elapsed().as_secs_f64()
    );
    let spec = config
        .spec
        .clone()
        .unwrap_or_else(|| sora::media::default_spec(&samples.shape, samples.classes.len()));
    println!("\n{}\n", spec.summary()?);
    config.spec = Some(spec);
    config.parallel = par.parallel.clone();
    let run = sora::media::train(&samples, pipeline, &config, device)?;
    if !par.leader {
        return Ok(());
    }
    print_outcome(
        run.best_epoch,
        run.history.epochs.len(),
        run.stopped_early,
        &run.test,
        Some(&run.input.classes),
    );
    run.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

/// `sora train --text COLUMN`: a text classifier over `--target`.
fn train_text(
    args: &TrainArgs,
    column: &str,
    device: &burn::tensor::Device,
    par: &ParallelRun,
) -> Result<()> {
    use sora::textclf::{EncoderKind, TextConfig, load_csv, train};

    let target = args
        .target
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--target: a text classifier needs the label column"))?;
    let t = &args.text;
    let encoder = EncoderKind::parse(&t.encoder).ok_or_else(|| {
        anyhow::anyhow!(
            "--encoder: expected bag, lstm or gru, found {:?}",
            t.encoder
        )
    })?;
    let mut config = TextConfig {
        encoder,
        seq_len: t.seq_len,
        d_embed: t.embed,
        ..TextConfig::default()
    };
    config.vocab.min_count = t.min_count;
    if let Some(hidden) = &args.hidden {
        config.head = hidden.clone();
    }
    config.train = train_config(args, &config.train, "adam", sora::textclf::DEFAULT_PATIENCE)?;
    let path = data_path(args)?;
    let data = load_csv(path, column, Some(&target))?;
    println!(
        "{}: {} documents, classes {:?}",
        path.display(),
        data.len(),
        data.classes
    );
    config.parallel = par.parallel.clone();
    let run = train(&data, (column, &target), &config, device)?;
    if !par.leader {
        return Ok(());
    }
    println!(
        "documents: {} train, {} validation, {} test (stratified, seed {}); {} tokens in the vocabulary, length {} ({} training documents cut)",
        run.split.train.len(),
        run.split.valid.len(),
        run.split.test.len(),
        config.train.seed,
        run.text.vocabulary.len(),
        run.text.seq_len,
        run.truncated
    );
    println!("\n{}\n", run.spec.check()?.summary());
    print_outcome(
        run.best_epoch,
        run.history.epochs.len(),
        run.stopped_early,
        &run.test,
        Some(&run.text.classes),
    );
    run.save(&args.out)?;
    println!("saved {}", args.out.display());
    Ok(())
}

/// `sora predict` with a text model: the label and class probabilities of each row.
fn predict_text(
    model: &std::path::Path,
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    device: &str,
) -> Result<()> {
    let device = sora::device::device(device)?;
    let model = TextModel::load(model, &device)?;
    let docs = model.load_csv(data, false)?;
    let probabilities = model.predict(&docs.texts)?;
    // Rows are numbered from 1, the first data row (as for tables).
    let rows = (1..=docs.len()).map(|r| r.to_string());
    let text = class_csv("row", rows, &model.text.classes, &probabilities);
    write_output(out, &text, docs.len())
}

fn train_ratings(
    args: &TrainArgs,
    data: &std::path::Path,
    device: &burn::tensor::Device,
) -> Result<()> {
    use sora::recommend::{RecommendConfig, train};

    anyhow::ensure!(
        args.optimizer.is_none(),
        "--optimizer: recommenders train with Adam and weight decay (set in the library's RecommendConfig)"
    );
    anyhow::ensure!(
        args.patience != Some(0),
        "--patience: recommenders stop early on the validation part; give at least 1"
    );
    let mut config = RecommendConfig {
        seed: args.seed,
        progress: progress(&args.progress)?,
        ..RecommendConfig::default()
    };
    if let Some(range) = &args.ratings.rating_range {
        config.rating_range = Some(range.parse()?);
    }
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.batch_size = args.batch_size.unwrap_or(config.batch_size);
    config.lr = args.lr.unwrap_or(config.lr);
    config.patience = args.patience.unwrap_or(config.patience);
    let ratings = Ratings::read_csv(data, config.rating_range)?;
    println!(
        "{}: {} ratings, {} users, {} items, range {}–{}{}",
        data.display(),
        ratings.len(),
        ratings.n_users(),
        ratings.n_items(),
        ratings.range.min,
        ratings.range.max,
        if config.rating_range.is_some() {
            " (declared)"
        } else {
            " (observed)"
        }
    );
    let (rating, ranking, model) = train(&ratings, &config, device)?;
    println!(
        "\nrating model: {} train, {} validation, {} test ratings (seeded random split, seed {}); damping λ = {}",
        rating.n_train, rating.n_valid, rating.n_test, config.seed, rating.damping
    );
    println!("\n{}", rating.summary);
    println!(
        "best epoch {} (validation RMSE {:.4}), {:.1} s",
        rating.best_epoch, rating.valid_rmse, rating.seconds
    );
    print_rating_scores(&model.test.ratings);
    match &ranking {
        Some(r) => {
            println!(
                "\nranking model: {} interactions and {} sampled negatives; each user's last interaction held out; best epoch {}, {:.1} s",
                r.n_positives,
                r.n_samples - r.n_positives,
                r.best_epoch,
                r.seconds
            );
            println!(
                "  {} users, held-out item among {} candidates ({} skipped: item unseen in training)",
                r.n_users_tested, r.n_candidates, r.n_users_skipped
            );
            println!(
                "  {:<12} {:>8} {:>8}",
                "",
                format!("HR@{}", r.k),
                format!("NDCG@{}", r.k)
            );
            for (name, s) in [("model", r.model), ("popularity", r.popularity)] {
                println!("  {name:<12} {:>8.4} {:>8.4}", s.hit_rate, s.ndcg);
            }
        }
        None => println!(
            "\nno timestamp column: no ranking model; `sora predict --user` ranks items by predicted rating"
        ),
    }
    model.save(&args.out)?;
    println!("\nsaved the model to {}", args.out.display());
    Ok(())
}

fn print_rating_scores(s: &sora::recommend::RatingsEvaluation) {
    println!(
        "  {} ratings, {} with a user or item unknown to the model (predicted by the bias baseline)",
        s.n, s.n_fallback
    );
    println!("  {:<12} {:>8} {:>8}", "", "RMSE", "MAE");
    for (name, e) in [
        ("model", s.model),
        ("bias", s.bias),
        ("global mean", s.global_mean),
    ] {
        println!("  {name:<12} {:>8.4} {:>8.4}", e.rmse, e.mae);
    }
}

/// A recommender's predictions: each `--user`'s top items (with the rated items that most
/// support each), or the ratings of the `user,item` rows of `--data`.
fn predict_ratings(
    dir: &std::path::Path,
    data: Option<&std::path::Path>,
    users: &[String],
    top: usize,
    out: Option<&std::path::Path>,
    device: &str,
) -> Result<()> {
    let device = sora::device::device(device)?;
    let model = RecommenderModel::load(dir, &device)?;
    let mut text = String::new();
    let mut n = 0;
    if !users.is_empty() {
        text.push_str("user,rank,item,score,popularity_fallback,because\n");
        for user in users {
            let list = model.recommend(user, top)?;
            if list.popularity_fallback {
                eprintln!("user {user:?} is unknown to the model: the most popular items");
            }
            for (rank, r) in list.items.iter().enumerate() {
                let because = model
                    .supporting_items(user, &r.item, 3)?
                    .into_iter()
                    .map(|s| s.item)
                    .collect::<Vec<_>>()
                    .join(";");
                text.push_str(&format!(
                    "{},{},{},{:.6},{},{}\n",
                    csv_field(user),
                    rank + 1,
                    csv_field(&r.item),
                    r.score,
                    list.popularity_fallback,
                    csv_field(&because)
                ));
                n += 1;
            }
        }
    }
    if let Some(path) = data {
        anyhow::ensure!(
            users.is_empty(),
            "--data and --user: give one (pairs to rate, or users to recommend to)"
        );
        let table = Table::read_csv(path)?;
        let find = |names: &[&str], role: &str| {
            names
                .iter()
                .find_map(|c| table.column_index(c))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: line 1: no {role} column (accepted names: {}); the header has {:?}",
                        path.display(),
                        names.join(", "),
                        table.headers()
                    )
                })
        };
        let cu = find(sora::recommend::USER_COLUMNS, "user")?;
        let ci = find(sora::recommend::ITEM_COLUMNS, "item")?;
        let pairs: Vec<(&str, &str)> = (0..table.n_rows())
            .map(|r| (table.cell(r, cu), table.cell(r, ci)))
            .collect();
        let predicted = model.rating.predict(&pairs)?;
        text.push_str("row,user,item,rating,fallback\n");
        for (row, ((u, i), p)) in pairs.iter().zip(&predicted).enumerate() {
            text.push_str(&format!(
                "{},{},{},{:.4},{}\n",
                row + 1,
                csv_field(u),
                csv_field(i),
                p.value,
                p.fallback
            ));
        }
        n = pairs.len();
    }
    write_output(out, &text, n)
}

/// The end of a training run: the epoch kept and the test metrics.
fn print_outcome(
    best_epoch: usize,
    epochs: usize,
    stopped_early: bool,
    test: &sora::train::Metrics,
    classes: Option<&[String]>,
) {
    let early = if stopped_early {
        " (stopped early)"
    } else {
        ""
    };
    println!("\nbest epoch {best_epoch} of {epochs}{early}");
    println!("\ntest metrics:\n{}", format_metrics(test, classes));
}

/// Whether `dir` holds an image or audio model (rather than a tabular one).
fn is_media_model(dir: &std::path::Path) -> bool {
    dir.join(sora::media::INPUT_FILE).is_file()
}

/// Labelled or unlabelled media data for a saved model: a file of the model's kind (an
/// image, a WAV clip), a class-folder tree, or IDX files.
fn media_data(
    model: &MediaModel,
    data: &std::path::Path,
    labels: Option<&std::path::Path>,
) -> Result<sora::media::Samples> {
    let single = data.is_file()
        && labels.is_none()
        && data.extension().is_some_and(|e| {
            ["png", "jpg", "jpeg", "bmp", "gif", "wav"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        });
    if single {
        return Ok(model.load_file(data)?);
    }
    let source = Source::detect(data, labels).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: not an image or audio folder, image, WAV or IDX file",
            data.display()
        )
    })?;
    Ok(model.load_data(&source)?)
}

/// `sora explain` with a text model: each row's tokens coloured by their integrated-gradients
/// score for the explained class, in the terminal and (with `--report`) as escaped HTML.
fn explain_text(
    model: &TextModel,
    data: &std::path::Path,
    rows: Option<&str>,
    target: &str,
    steps: usize,
    report: Option<&std::path::Path>,
    device: &burn::tensor::Device,
) -> Result<()> {
    use sora::text::tokenize::{Tokenizer, Truncate, pad_batch};
    use sora::text_explain::{escape_html, html_highlight, terminal_highlight, token_attributions};

    let docs = model.load_csv(data, false)?;
    let rows = rows
        .map(str::to_string)
        .unwrap_or_else(|| format!("1-{}", docs.len().clamp(1, 5)));
    let rows = parse_rows(&rows, docs.len())?;
    let saved = &model.text;
    let classes = &saved.classes;
    let explained = match target {
        "predicted" => None,
        class => Some(classes.iter().position(|k| k == class).ok_or_else(|| {
            anyhow::anyhow!("--target: {class:?} is not one of the classes {classes:?}")
        })?),
    };
    let tokenizer = Tokenizer::new(saved.tokenizer.clone())?;
    let mut html = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>Token attributions</title>\
         <body style=\"font-family: sans-serif; max-width: 60em\"><h1>Token attributions</h1>\
         <p>Integrated gradients at the embedding output, summed per token: green for the \
         explained class, red against it.</p>",
    );
    for &row in &rows {
        let text = &docs.texts[row];
        let tokens = tokenizer.tokenize(text);
        let ids = saved.vocabulary.encode(&tokens);
        let batch = pad_batch(std::slice::from_ref(&ids), saved.seq_len, saved.truncate)?;
        let kept = batch.lengths[0];
        let shown: Vec<String> = match saved.truncate {
            Truncate::Head => tokens[..kept].to_vec(),
            Truncate::Tail => tokens[tokens.len() - kept..].to_vec(),
        };
        let p = model.predict(std::slice::from_ref(text))?;
        let predicted = sora::train::argmax(&p);
        let class = explained.unwrap_or(predicted);
        let a = token_attributions(&model.model, &batch.ids, &batch.mask, class, steps, device)?;
        println!(
            "row {}: predicted {} ({:.3}); explaining {}; completeness delta {:+.2e}",
            row + 1,
            classes[predicted],
            p[predicted],
            classes[class],
            a.delta
        );
        println!("  {}", terminal_highlight(&shown, &a.scores));
        if kept < tokens.len() {
            println!(
                "  ({} token(s) beyond the model's length {} not shown)",
                tokens.len() - kept,
                saved.seq_len
            );
        }
        html.push_str(&format!(
            "<h2>Row {}: predicted {} ({:.3}), explaining {}</h2><p style=\"line-height: 2\">{}</p>",
            row + 1,
            escape_html(&classes[predicted]),
            p[predicted],
            escape_html(&classes[class]),
            html_highlight(&shown, &a.scores)
        ));
    }
    if let Some(path) = report {
        sora::core::weights::write_atomic(path, html.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

fn predict_media(
    model: &std::path::Path,
    data: &std::path::Path,
    labels: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
    device: &str,
) -> Result<()> {
    let device = sora::device::device(device)?;
    let model = MediaModel::load(model, &device)?;
    let samples = media_data(&model, data, labels)?;
    let probabilities = model.predict(&samples)?;
    let text = class_csv(
        "source",
        samples.sources.iter().map(|s| csv_field(s)),
        &model.input.classes,
        &probabilities,
    );
    write_output(out, &text, samples.len())
}

/// Predictions as CSV: `key,prediction,p_<class>…`, one line per key, from row-major class
/// probabilities.
fn class_csv(
    key: &str,
    keys: impl Iterator<Item = String>,
    classes: &[String],
    probabilities: &[f32],
) -> String {
    let mut text = format!("{key},prediction");
    for c in classes {
        text.push_str(&format!(",{}", csv_field(&format!("p_{c}"))));
    }
    text.push('\n');
    for (key, p) in keys.zip(probabilities.chunks(classes.len())) {
        text.push_str(&format!(
            "{key},{}",
            csv_field(&classes[sora::train::argmax(p)])
        ));
        for v in p {
            text.push_str(&format!(",{v:.6}"));
        }
        text.push('\n');
    }
    text
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes predictions to `out` (atomically) or standard output.
fn write_output(out: Option<&std::path::Path>, text: &str, n: usize) -> Result<()> {
    match out {
        Some(path) => {
            sora::core::weights::write_atomic(path, text.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            eprintln!("wrote {n} predictions to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn explain_media(
    model: &MediaModel,
    samples: &sora::media::Samples,
    method: &sora::media::MediaMethod,
    target: &str,
    picture: &std::path::Path,
) -> Result<()> {
    let classes = &model.input.classes;
    let targets = match target {
        "predicted" => None,
        class => {
            let c = classes.iter().position(|k| k == class).ok_or_else(|| {
                anyhow::anyhow!("--target: {class:?} is not one of the classes {classes:?}")
            })?;
            Some(vec![c; samples.len()])
        }
    };
    let explanation = model.explain(samples, method, targets)?;
    println!(
        "{}{}: {} sample(s), maps {}×{}",
        method.label(),
        explanation
            .layer
            .as_ref()
            .map(|l| format!(" on {l}"))
            .unwrap_or_default(),
        samples.len(),
        explanation.height,
        explanation.width
    );
    let k = classes.len();
    for i in 0..samples.len() {
        let p = &explanation.probabilities[i * k..(i + 1) * k];
        let predicted = sora::train::argmax(p);
        let truth = samples
            .classes
            .get(samples.labels[i])
            .map(|c| format!(", true {c}"))
            .unwrap_or_default();
        let (y, x) = explanation.peak(i);
        println!(
            "  {}: predicted {} ({:.3}){truth}; explaining {}; strongest at row {y}, column {x}",
            samples.sources[i], classes[predicted], p[predicted], classes[explanation.targets[i]],
        );
    }
    model.save_picture(samples, &explanation, picture)?;
    println!("wrote {}", picture.display());
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
    write_output(out, &text, predictions.rows.len())
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
