//! The `sora` command-line program.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use clap::{Parser, Subcommand};
use sora::core::{IdentitySpec, ModelSpec, SpecLimits};
use sora::device::{DeviceChoice, compiled_backends};

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
    /// Check a model spec (JSON or TOML) and print its layers, output shapes and parameters.
    Summary {
        /// The spec file (`.json` or `.toml`).
        #[arg(long)]
        spec: PathBuf,
        /// Refuse specs with more parameters than this.
        #[arg(long, default_value_t = sora::core::DEFAULT_MAX_PARAMS)]
        max_params: u64,
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
            eprintln!("error: {e:#}");
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
