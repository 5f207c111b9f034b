//! The `sora` program: arguments ([`args`]) and dispatch. Every verb reads its model through
//! the one loader ([`sora::jobs::load_any`]) and asks it through the job contract; every
//! kind trains through the registry ([`sora::jobs::Registry`]).

mod args;
mod resume;
mod tune;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches};
use sora::jobs::{Input, JobError, Loaded, Registry};

use args::{
    Cli, Command, ExplainArgs, GenerateArgs, ModelData, PredictArgs, ReportArgs, TrainArgs,
};

// Burn's CPU backends allocate a fresh buffer for most tensor ops; mimalloc keeps freed pages
// for reuse where glibc's malloc returns large blocks to the kernel and faults them back in
// (measured in docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The program's arguments, with every kind's training options.
fn command(registry: &Registry) -> clap::Command {
    Cli::command()
        .mut_subcommand("train", |train| registry.augment_train(train))
        .mut_subcommand("tune", |tune| registry.augment_train(tune))
}

fn main() -> ExitCode {
    let registry = Registry::builtin();
    let matches = command(&registry).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let train = matches
        .subcommand_matches("train")
        .or_else(|| matches.subcommand_matches("tune"));
    match run(cli, train, &registry) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", flagged(&e));
            ExitCode::FAILURE
        }
    }
}

/// The message of an error, an option out of range named as its flag (`--seq-len`).
fn flagged(e: &anyhow::Error) -> String {
    match e.downcast_ref::<JobError>() {
        Some(JobError::InvalidOption {
            field,
            expected,
            found,
        }) => format!(
            "--{}: expected {expected}, found {found}",
            field.replace('_', "-")
        ),
        _ => e.to_string(),
    }
}

fn run(cli: Cli, train_matches: Option<&clap::ArgMatches>, registry: &Registry) -> Result<()> {
    match cli.command {
        Command::Inspect { data, target } => {
            print!(
                "{}",
                sora::jobs::tabular::inspect(&data, target.as_deref())?
            );
            Ok(())
        }
        Command::Train(args) => train(&args, train_matches.expect("train matches"), registry),
        Command::Tune(args) => {
            check_output(args.train.report.as_deref())?;
            tune::run(&args, train_matches.expect("tune matches"), registry)?;
            train_card(&args.train)
        }
        Command::Eval(data) => {
            let (loaded, input) = load(&data, registry)?;
            let evaluation = loaded
                .model
                .evaluate(&input)
                .map_err(|e| loaded.refuse(e))?;
            for note in &evaluation.notes {
                eprintln!("note: {note}");
            }
            print!("{}", evaluation.report);
            Ok(())
        }
        Command::Predict(args) => predict(&args, registry),
        Command::Explain(args) => explain(&args, registry),
        Command::Generate(args) => generate(&args, registry),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve(args, registry),
        Command::Summary {
            spec,
            model,
            max_params,
        } => {
            match (spec, model) {
                (Some(spec), _) => {
                    let limits = sora::core::SpecLimits { max_params };
                    println!("{}", sora::jobs::spec_summary(&spec, &limits)?);
                }
                (None, Some(dir)) => {
                    let device = sora::device::DeviceChoice::DEFAULT.device()?;
                    let loaded = open(&dir, &device, registry)?;
                    let info = loaded.model.info();
                    println!("{} model, {}: {}", info.kind, info.task(), dir.display());
                    println!("input: {}", info.input.describe());
                    println!("\n{}", info.summary);
                }
                (None, None) => unreachable!("clap requires --spec or --model"),
            }
            Ok(())
        }
        Command::Report(args) => report(&args),
        Command::Upgrade { model } => {
            let device = sora::device::DeviceChoice::DEFAULT.device()?;
            if sora::jobs::upgrade(registry, &model, &device)? {
                println!("wrote {}", model.join(sora::train::MANIFEST_FILE).display());
            } else {
                println!("{} has a manifest already; nothing to do", model.display());
            }
            Ok(())
        }
        Command::Doctor { device } => {
            let report = sora::doctor::run(device);
            println!("{report}");
            anyhow::ensure!(
                report.passed(),
                "{}",
                match device {
                    Some(choice) => format!("device `{choice}` does not work here (see above)"),
                    None => "a check failed (see the problems above)".to_string(),
                }
            );
            Ok(())
        }
    }
}

/// `sora train`: the kind from the data (or `--task`), its config from the flags, trained
/// and saved.
fn train(args: &TrainArgs, matches: &clap::ArgMatches, registry: &Registry) -> Result<()> {
    if let Some(dir) = &args.resume {
        return continue_run(dir, registry);
    }
    let argv: Vec<String> = std::env::args_os()
        .skip_while(|a| a != "train")
        .skip(1)
        .map(|a| {
            a.into_string().map_err(|a| {
                anyhow::anyhow!(
                    "{}: checkpoints keep the command line as text; train with \
                     --checkpoint-every 0 for arguments that are not UTF-8",
                    a.to_string_lossy()
                )
            })
        })
        .collect::<Result<_>>()?;
    train_run(args, matches, registry, Some(argv))
}

/// `sora train --resume DIR`: the interrupted run's command line again, continuing from its
/// checkpoints.
fn continue_run(dir: &Path, registry: &Registry) -> Result<()> {
    let started = resume::read(dir)?;
    let matches = command(registry)
        .try_get_matches_from(
            ["sora", "train"]
                .into_iter()
                .map(String::from)
                .chain(started.args),
        )
        .context("--resume: the run's saved command line")?;
    let cli = Cli::from_arg_matches(&matches).context("--resume: the run's saved command line")?;
    let Command::Train(args) = cli.command else {
        unreachable!("the saved command line starts with `train`")
    };
    let train = matches.subcommand_matches("train").expect("train matches");
    println!("resuming the run that writes {}", args.out.display());
    train_run(&args, train, registry, None)
}

/// Trains and saves; `argv` (the arguments after `train`) starts a new run's checkpoints,
/// `None` continues from those there are.
fn train_run(
    args: &TrainArgs,
    matches: &clap::ArgMatches,
    registry: &Registry,
    argv: Option<Vec<String>>,
) -> Result<()> {
    let kind = registry.infer(&args.common)?;
    registry.check_flags(kind, matches)?;
    let mut setting = sora::run_context(args.device.device, &args.devices, args.distributed)?;
    sora::train::ModelDir::new(&args.out).check_replaceable()?;
    check_output(args.report.as_deref())?;
    let checkpoints = match args.checkpoint_every.0 {
        Some(every) => Some(sora::jobs::Checkpoints {
            dir: resume::checkpoint_dir(&args.out)?,
            every,
        }),
        None => None,
    };
    if let Some(c) = &checkpoints {
        if let (Some(argv), true) = (argv, setting.context.leader) {
            let c_ = &args.common;
            let text = c_.text.as_deref().map(Path::new);
            let inputs: Vec<&Path> = [c_.data.as_deref(), c_.labels.as_deref(), text]
                .into_iter()
                .flatten()
                .collect();
            resume::start(&c.dir, argv, &inputs)?;
        }
        setting.context.checkpoints = Some(c.clone());
    }
    let ctx = &setting.context;
    if !setting.devices.is_empty() {
        ctx.say(format!(
            "data-parallel on {} devices: {}",
            setting.devices.len(),
            setting.devices.join(", ")
        ));
    }
    let run = match kind.train(&args.common, matches, ctx) {
        Ok(run) => run,
        Err(e) => {
            if let (Some(c), true) = (&checkpoints, ctx.leader) {
                resume::abandon(&c.dir);
            }
            return Err(e.into());
        }
    };
    if !ctx.leader {
        return Ok(());
    }
    println!("{}", run.report());
    run.save(&args.out)?;
    if let Some(c) = &checkpoints {
        resume::finish(&c.dir)?;
    }
    println!("saved {}", args.out.display());
    train_card(args)
}

/// Refuses, before any work, an output file that cannot be written: a folder, or a file in
/// a folder that does not exist.
fn check_output(path: Option<&Path>) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    anyhow::ensure!(!path.is_dir(), "{}: a folder, not a file", path.display());
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        folder.is_dir(),
        "{}: the folder {} does not exist",
        path.display(),
        folder.display()
    );
    Ok(())
}

/// `--report FILE` of `sora train` and `sora tune`: the saved model's card, with its
/// training data.
fn train_card(args: &TrainArgs) -> Result<()> {
    let Some(path) = &args.report else {
        return Ok(());
    };
    // A language model's plain text file is `--text` (there is no `--data` then).
    let common = &args.common;
    let data = common
        .data
        .as_deref()
        .or(common.text.as_deref().map(Path::new))
        .map(|d| Input::path(d, common.labels.as_deref()));
    let device = args.device.device.device()?;
    let html = sora::jobs::card::model_card(&args.out, data.as_ref(), &device)?;
    write_card(path, &html)
}

/// `sora report`: the model card of a saved model.
fn report(args: &ReportArgs) -> Result<()> {
    check_output(Some(&args.out))?;
    let device = args.device.device.device()?;
    let data = args
        .data
        .as_deref()
        .map(|d| Input::path(d, args.labels.as_deref()));
    let html = sora::jobs::card::model_card(&args.dir, data.as_ref(), &device)?;
    write_card(&args.out, &html)
}

/// Writes a model card (atomically).
fn write_card(path: &Path, html: &str) -> Result<()> {
    sora::core::weights::write_atomic(path, html.as_bytes()).map_err(io_error(path))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Reads a model directory through the one loader, saying so when it has no manifest.
fn open(dir: &Path, device: &burn::tensor::Device, registry: &Registry) -> Result<Loaded> {
    let loaded = registry.load_any(dir, device)?;
    for repair in &loaded.recovered {
        eprintln!("note: {repair}");
    }
    if let Some(legacy) = &loaded.legacy {
        eprintln!("note: {legacy}");
    }
    Ok(loaded)
}

/// The model and its `--data`.
fn load(data: &ModelData, registry: &Registry) -> Result<(Loaded, Input)> {
    let device = data.device.device.device()?;
    let loaded = open(&data.model, &device, registry)?;
    let path = data
        .data
        .as_deref()
        .context("--data: the data to read (a file or folder)")?;
    Ok((loaded, Input::path(path, data.labels.as_deref())))
}

/// A write error naming the file.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{}: {e}", path.display())
}

/// Writes `text` to `out` (atomically) or standard output.
fn write_output(out: Option<&Path>, text: &str, n: usize) -> Result<()> {
    match out {
        Some(path) => {
            sora::core::weights::write_atomic(path, text.as_bytes()).map_err(io_error(path))?;
            eprintln!("wrote {n} predictions to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn predict(args: &PredictArgs, registry: &Registry) -> Result<()> {
    if !args.user.is_empty() {
        let device = args.model.device.device.device()?;
        let loaded = open(&args.model.model, &device, registry)?;
        let lists = loaded
            .model
            .recommend(&args.user, args.top, 3)
            .map_err(|e| loaded.refuse(e))?;
        for list in lists.iter().filter(|l| l.popularity_fallback) {
            eprintln!(
                "user {:?} is unknown to the model: the most popular items",
                list.user
            );
        }
        let n = lists.iter().map(|l| l.items.len()).sum();
        return write_output(
            args.out.as_deref(),
            &sora::jobs::recommendations_csv(&lists),
            n,
        );
    }
    let (loaded, input) = load(&args.model, registry)?;
    let predictions = loaded.model.predict(&input).map_err(|e| loaded.refuse(e))?;
    for note in &predictions.notes {
        eprintln!("note: {note}");
    }
    write_output(
        args.out.as_deref(),
        &predictions.to_csv(),
        predictions.len(),
    )
}

fn explain(args: &ExplainArgs, registry: &Registry) -> Result<()> {
    let (loaded, input) = load(&args.model, registry)?;
    let explanation = loaded
        .model
        .explain(&input, &args.request)
        .map_err(|e| loaded.refuse(e))?;
    print!("{}", explanation.terminal);
    match &explanation.document {
        Some(doc) if doc.extension == "png" => {
            let path = &args.picture;
            sora::core::weights::write_atomic(path, &doc.bytes).map_err(io_error(path))?;
            println!("wrote {}", path.display());
        }
        Some(doc) => {
            if let Some(path) = &args.report {
                sora::core::weights::write_atomic(path, &doc.bytes).map_err(io_error(path))?;
                println!("\nwrote {}", path.display());
            }
        }
        None => {}
    }
    Ok(())
}

/// `sora generate`: the prompt, then the continuation streamed piece by piece.
fn generate(args: &GenerateArgs, registry: &Registry) -> Result<()> {
    // Bad options fail before the model is read.
    args.request.check()?;
    let device = args.device.device.device()?;
    let loaded = open(&args.model, &device, registry)?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", args.request.prompt)?;
    stdout.flush()?;
    let written = loaded
        .model
        .generate(&args.request, &mut |piece| {
            // A closed pipe (`| head`) ends the output, not the program with a panic.
            let _ = write!(stdout, "{piece}").and_then(|()| stdout.flush());
        })
        .map_err(|e| loaded.refuse(e))?;
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

/// `sora serve`: loads the model once, serves until Ctrl-C or SIGTERM.
#[cfg(feature = "serve")]
fn serve(args: args::ServeArgs, registry: &Registry) -> Result<()> {
    use sora::serve::Server;

    let device = args.device.device.device()?;
    let config = sora::serve::ServeConfig {
        device_name: args.device.device.name(),
        ..args.config
    };
    let server = Server::load_with(registry, &args.model, &device, config)?;
    if let Some(legacy) = server.legacy() {
        eprintln!("note: {legacy}");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.http_threads {
        runtime.worker_threads(n.into());
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(|e| anyhow::anyhow!("--addr {}: {e}", args.addr))?;
        let info = server.model().info();
        println!(
            "serving {} {} model {} ({}; {} parameters, device {})",
            info.kind,
            info.task(),
            args.model.display(),
            info.input.describe(),
            info.parameters,
            args.device.device
        );
        let addr = listener.local_addr()?;
        if let Some(warning) = server.exposure_warning(addr) {
            eprintln!("{warning}");
        }
        println!("listening on http://{addr}");
        std::io::stdout().flush()?;
        server.run(listener, shutdown).await?;
        println!("stopped");
        anyhow::Ok(())
    })
}

/// A future that completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM. On Unix both handlers are
/// installed here, before the server says it is listening, so a signal sent as soon as it
/// does is never missed. Needs the Tokio runtime.
#[cfg(feature = "serve")]
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
