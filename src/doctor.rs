//! Preflight checks behind `sora doctor`: which backends are compiled in, whether each device
//! runs a forward and a backward pass with the right numbers, thread counts, and for LibTorch
//! the torch version built against and the one loaded. Every problem comes with its fix.
//!
//! ```
//! use sora::device::DeviceChoice;
//! use sora::doctor::{Status, check_device};
//!
//! let check = check_device(DeviceChoice::Flex);
//! assert_eq!(check.status, Status::Works, "{}", check.detail);
//! ```

use std::fmt;
use std::time::Instant;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use crate::device::{DeviceChoice, DeviceError, compiled_backends};

/// How a device check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Forward and backward passes ran and gave the hand-computed numbers.
    Works,
    /// The backend is compiled in but the check failed (wrong numbers, or an error).
    Fails,
    /// The backend is not compiled into this build.
    NotCompiled,
    /// The backend is compiled in but the device is not on this machine (CUDA).
    Unavailable,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Works => "works",
            Status::Fails => "FAILS",
            Status::NotCompiled => "not compiled",
            Status::Unavailable => "not available",
        }
    }
}

/// The outcome of checking one device.
#[derive(Debug, Clone)]
pub struct DeviceCheck {
    /// The device checked.
    pub device: DeviceChoice,
    /// How it ended.
    pub status: Status,
    /// What was measured, or why it failed.
    pub detail: String,
    /// Wall-clock milliseconds of the check (device set-up included).
    pub millis: f64,
    /// What to do about it, when it did not work.
    pub fix: Option<String>,
}

/// A problem found, with the fix to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub what: String,
    /// What to do.
    pub fix: String,
}

/// Threads the compute backends use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    /// `std::thread::available_parallelism` (CPUs this process may use).
    pub available: usize,
    /// `RAYON_NUM_THREADS`, when set.
    pub rayon_env: Option<String>,
    /// Threads of the rayon pool that burn-flex and burn-ndarray run on.
    pub rayon_pool: usize,
    /// LibTorch's intra-op and inter-op threads (with the `tch` feature).
    pub torch: Option<(i32, i32)>,
    /// `OMP_NUM_THREADS`, when set (LibTorch's CPU kernels run on OpenMP).
    pub omp_env: Option<String>,
}

/// What is known about LibTorch (with the `tch` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchInfo {
    /// The torch version the build was made against (recorded by build.rs).
    pub built_version: String,
    /// The torch library directory the build linked and put in the run-time search path.
    pub built_lib_dir: String,
    /// The `libtorch_cpu` shared library this process loaded, read from `/proc/self/maps`.
    pub loaded_library: Option<String>,
    /// The version of the torch installation that library belongs to (its `version.py`).
    pub loaded_version: Option<String>,
    /// How many CUDA devices LibTorch sees.
    pub cuda_devices: usize,
    /// Whether LibTorch sees cuDNN.
    pub cudnn: bool,
}

/// The whole preflight report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The backends compiled in (Cargo features).
    pub compiled: Vec<&'static str>,
    /// Thread counts.
    pub threads: Threads,
    /// LibTorch facts, with the `tch` feature.
    pub torch: Option<TorchInfo>,
    /// One check per device.
    pub devices: Vec<DeviceCheck>,
    /// Problems found, each with its fix.
    pub problems: Vec<Problem>,
    /// Whether one device was asked for (`sora doctor --device X`).
    pub single: bool,
}

impl Report {
    /// Whether the report is a pass: no problems, and every checked device works (devices
    /// not compiled in, or a CUDA device not present, fail only a single-device check).
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
            && self.devices.iter().all(|d| match d.status {
                Status::Works => true,
                Status::Fails => false,
                Status::NotCompiled | Status::Unavailable => !self.single,
            })
    }
}

/// Runs the preflight on every device ([`DeviceChoice::ALL`]), or on `only`.
pub fn run(only: Option<DeviceChoice>) -> Report {
    let devices: Vec<DeviceCheck> = match only {
        Some(choice) => vec![check_device(choice)],
        None => DeviceChoice::ALL.into_iter().map(check_device).collect(),
    };
    let threads = threads();
    let torch = torch_info();
    let mut problems = Vec::new();
    for check in &devices {
        let failed = match check.status {
            Status::Fails => true,
            Status::NotCompiled | Status::Unavailable => only.is_some(),
            Status::Works => false,
        };
        if failed {
            problems.push(Problem {
                what: format!("device `{}`: {}", check.device, check.detail),
                fix: check.fix.clone().unwrap_or_default(),
            });
        }
    }
    if let Some(value) = &threads.rayon_env
        && value.trim().parse::<usize>().is_err()
    {
        problems.push(Problem {
            what: format!("RAYON_NUM_THREADS=`{value}` is not a number; rayon ignores it"),
            fix: format!(
                "unset it, or set a thread count such as {}",
                threads.available
            ),
        });
    }
    if let Some(torch) = &torch {
        problems.extend(torch_problems(torch));
    }
    Report {
        compiled: compiled_backends(),
        threads,
        torch,
        devices,
        problems,
        single: only.is_some(),
    }
}

/// The hand-checked forward and backward pass on one device.
///
/// A `Linear` layer 3 → 2 with fixed weights on the device's autodiff twin, input `x [2, 3]`
/// marked for gradients, loss `Σ y²` with `y = x W + b`. The output, `∂loss/∂x = 2 y Wᵀ` and
/// `∂loss/∂W = 2 xᵀ y` are compared with the same sums done here in `f64`. Every input is a
/// small binary fraction, so the exact results are representable in `f32`; the tolerance
/// (1e-5 of the largest value) only allows for a backend that sums in another order.
pub fn check_device(choice: DeviceChoice) -> DeviceCheck {
    let start = Instant::now();
    let (status, detail, fix) = match choice.device() {
        Err(DeviceError::NotCompiled { feature, .. }) => (
            Status::NotCompiled,
            format!("this build lacks the `{feature}` feature"),
            Some(build_fix(feature)),
        ),
        Err(e @ DeviceError::CudaUnavailable { .. }) => (
            Status::Unavailable,
            e.to_string(),
            Some(
                "run on a machine with an NVIDIA GPU and driver (`nvidia-smi` lists it), or \
                 use `--device tch` (LibTorch on the CPU)"
                    .to_string(),
            ),
        ),
        Err(e) => (Status::Fails, e.to_string(), None),
        Ok(device) => match quietly(move || forward_backward(&device)) {
            Ok(Ok(detail)) => (Status::Works, detail, None),
            Ok(Err(wrong)) => (Status::Fails, wrong.to_string(), Some(runtime_fix(choice))),
            Err(panic) => (
                Status::Fails,
                format!("the backend panicked: {}", panic.0),
                Some(runtime_fix(choice)),
            ),
        },
    };
    DeviceCheck {
        device: choice,
        status,
        detail,
        millis: start.elapsed().as_secs_f64() * 1e3,
        fix,
    }
}

fn build_fix(feature: &str) -> String {
    if feature == "tch" {
        "run `scripts/setup-libtorch.sh` (or `SORA_TORCH_VENV=<venv with torch 2.9.0> \
         scripts/setup-libtorch.sh`), `source libtorch.env`, then rebuild with \
         `cargo build --release --features tch`"
            .to_string()
    } else {
        format!("rebuild with `--features {feature}`")
    }
}

fn runtime_fix(choice: DeviceChoice) -> String {
    match choice {
        DeviceChoice::Tch | DeviceChoice::TchCuda(_) => {
            "check the LibTorch line above; rerun `scripts/setup-libtorch.sh`, \
             `source libtorch.env` and rebuild with `cargo build --release --features tch`"
                .to_string()
        }
        _ => "use another device meanwhile (`--device flex`) and report this output as a bug"
            .to_string(),
    }
}

/// A panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Panicked(String);

/// Why a device's forward and backward pass failed its check.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum CheckFailure {
    /// The pass gave no gradient for a tensor.
    #[error("no gradient for {what}")]
    NoGradient { what: &'static str },
    /// A tensor could not be read back.
    #[error("reading {what}: {message}")]
    Unreadable { what: &'static str, message: String },
    /// A value differs from the one computed by hand.
    #[error("wrong {what}: got {got:?}, expected {want:?} (max error {error:.3e})")]
    Wrong {
        what: &'static str,
        got: Vec<f32>,
        want: Vec<f64>,
        error: f64,
    },
}

/// Runs `f`, turning a panic into its message without printing it. Whatever `f` touched is
/// dropped after a panic (the check's own tensors), so unwind safety is not at stake.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        Panicked(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string()),
        )
    })
}

const X: [[f64; 3]; 2] = [[1.0, 2.0, -0.5], [-1.5, 0.25, 3.0]];
const W: [[f64; 2]; 3] = [[0.5, -1.0], [0.25, 2.0], [-1.5, 0.75]];
const B: [f64; 2] = [0.5, -0.25];

fn forward_backward(device: &Device) -> Result<String, CheckFailure> {
    let dev = device.clone().autodiff();
    let flat = |rows: &[&[f64]]| -> Vec<f32> {
        rows.iter()
            .flat_map(|r| r.iter().map(|&v| v as f32))
            .collect()
    };
    let w_rows: Vec<&[f64]> = W.iter().map(|r| &r[..]).collect();
    let x_rows: Vec<&[f64]> = X.iter().map(|r| &r[..]).collect();
    let linear = Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(flat(&w_rows), [3, 2]),
            &dev,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(B.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2]),
            &dev,
        ))),
    };
    let x = Tensor::<2>::from_data(TensorData::new(flat(&x_rows), [2, 3]), &dev).require_grad();
    let y = linear.forward(x.clone());
    let loss = (y.clone() * y.clone()).sum();
    let grads = loss.backward();
    let read = |t: Option<Tensor<2>>, what: &'static str| -> Result<Vec<f32>, CheckFailure> {
        t.ok_or(CheckFailure::NoGradient { what })?
            .try_into_vec_as::<f32>()
            .map_err(|e| CheckFailure::Unreadable {
                what,
                message: format!("{e:?}"),
            })
    };
    let got_y = read(Some(y), "the output")?;
    let got_gx = read(x.grad(&grads), "the input")?;
    let got_gw = read(linear.weight.val().grad(&grads), "the weight")?;

    // The same in f64: y = x W + b, ∂/∂x = 2 y Wᵀ, ∂/∂W = 2 xᵀ y.
    let mut y = [[0.0f64; 2]; 2];
    for (i, row) in y.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = B[j] + (0..3).map(|k| X[i][k] * W[k][j]).sum::<f64>();
        }
    }
    let gx: Vec<f64> = (0..2)
        .flat_map(|i| (0..3).map(move |k| (i, k)))
        .map(|(i, k)| (0..2).map(|j| 2.0 * y[i][j] * W[k][j]).sum())
        .collect();
    let gw: Vec<f64> = (0..3)
        .flat_map(|k| (0..2).map(move |j| (k, j)))
        .map(|(k, j)| (0..2).map(|i| 2.0 * X[i][k] * y[i][j]).sum())
        .collect();
    let y: Vec<f64> = y.iter().flatten().copied().collect();

    let mut worst = 0.0f64;
    for (what, got, want) in [
        ("output", &got_y, &y),
        ("input gradient", &got_gx, &gx),
        ("weight gradient", &got_gw, &gw),
    ] {
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(want.iter())
            .map(|(&g, &w)| (g as f64 - w).abs())
            .fold(0.0f64, f64::max);
        if got.len() != want.len() || err > 1e-5 * scale {
            return Err(CheckFailure::Wrong {
                what,
                got: got.clone(),
                want: want.clone(),
                error: err,
            });
        }
        worst = worst.max(err / scale);
    }
    Ok(format!(
        "forward + backward, output and gradients match by hand (max rel. error {worst:.1e})"
    ))
}

fn threads() -> Threads {
    Threads {
        available: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rayon_env: std::env::var("RAYON_NUM_THREADS").ok(),
        rayon_pool: rayon::current_num_threads(),
        torch: torch_threads(),
        omp_env: std::env::var("OMP_NUM_THREADS").ok(),
    }
}

#[cfg(feature = "tch")]
fn torch_threads() -> Option<(i32, i32)> {
    quietly(|| (tch::get_num_threads(), tch::get_num_interop_threads())).ok()
}

#[cfg(not(feature = "tch"))]
fn torch_threads() -> Option<(i32, i32)> {
    None
}

#[cfg(feature = "tch")]
fn torch_info() -> Option<TorchInfo> {
    let loaded_library = loaded_torch_library();
    let loaded_version = loaded_library
        .as_deref()
        .and_then(|lib| version_beside(std::path::Path::new(lib)));
    Some(TorchInfo {
        built_version: env!("SORA_TORCH_VERSION").to_string(),
        built_lib_dir: env!("SORA_TORCH_LIB").to_string(),
        loaded_library,
        loaded_version,
        cuda_devices: crate::device::cuda_device_count(),
        cudnn: quietly(tch::Cuda::cudnn_is_available).unwrap_or(false),
    })
}

#[cfg(not(feature = "tch"))]
fn torch_info() -> Option<TorchInfo> {
    None
}

/// The path of the `libtorch_cpu` library mapped into this process.
#[cfg(feature = "tch")]
fn loaded_torch_library() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            std::path::Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libtorch_cpu."))
        })
        .map(str::to_string)
}

/// The `__version__` of the torch package a library sits in (`torch/lib/x.so` →
/// `torch/version.py`), or a libtorch archive's `build-version`.
#[cfg(feature = "tch")]
fn version_beside(library: &std::path::Path) -> Option<String> {
    let root = library.parent()?.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|line| {
            let value = line.strip_prefix("__version__")?.trim_start();
            let value = value.strip_prefix('=')?.trim();
            Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
        });
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn torch_problems(torch: &TorchInfo) -> Vec<Problem> {
    let rebuild = "`source libtorch.env` (from `scripts/setup-libtorch.sh`) for the torch you \
                   want, then rebuild with `cargo build --release --features tch`; build.rs \
                   records its version and library directory";
    let mut problems = Vec::new();
    if torch.built_version == "unknown" {
        problems.push(Problem {
            what: "the build did not find torch's library directory (no LIBTORCH_LIB, no \
                   python with torch), so it has no run-time search path to it"
                .to_string(),
            fix: rebuild.to_string(),
        });
    }
    match (&torch.loaded_library, &torch.loaded_version) {
        (None, _) => problems.push(Problem {
            what: "cannot tell which libtorch_cpu library is loaded (no /proc/self/maps)".into(),
            fix: "compare `ldd` of the sora binary with the LibTorch line above".into(),
        }),
        (Some(lib), None) => problems.push(Problem {
            what: format!("the loaded {lib} has no torch version.py or build-version beside it"),
            fix: rebuild.to_string(),
        }),
        (Some(lib), Some(loaded)) if *loaded != torch.built_version => problems.push(Problem {
            what: format!(
                "built against torch {}, but loaded torch {loaded} ({lib}), likely through \
                     LD_LIBRARY_PATH",
                torch.built_version
            ),
            fix: format!("unset LD_LIBRARY_PATH, or {rebuild}"),
        }),
        _ => {}
    }
    problems
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sora {} (burn {}, {}-{})",
            env!("CARGO_PKG_VERSION"),
            crate::BURN_VERSION,
            std::env::consts::ARCH,
            std::env::consts::OS
        )?;
        writeln!(f, "compiled backends: {}", self.compiled.join(", "))?;
        if !self.compiled.contains(&"tch") {
            writeln!(
                f,
                "  LibTorch (tch, tch-cuda:N) is not compiled in; to add it: {}",
                build_fix("tch")
            )?;
        }
        let t = &self.threads;
        write!(
            f,
            "threads: {} available; rayon pool {} (flex, ndarray; RAYON_NUM_THREADS {})",
            t.available,
            t.rayon_pool,
            t.rayon_env.as_deref().unwrap_or("unset")
        )?;
        match t.torch {
            Some((intra, inter)) => writeln!(
                f,
                "; LibTorch intra-op {intra}, inter-op {inter} (OMP_NUM_THREADS {})",
                t.omp_env.as_deref().unwrap_or("unset")
            )?,
            None => writeln!(f)?,
        }
        if let Some(torch) = &self.torch {
            writeln!(
                f,
                "libtorch: built against {} ({}); loaded {} ({}){}",
                torch.built_version,
                torch.built_lib_dir,
                torch.loaded_version.as_deref().unwrap_or("unknown version"),
                torch
                    .loaded_library
                    .as_deref()
                    .unwrap_or("library not found"),
                if torch.loaded_version.as_deref() == Some(torch.built_version.as_str()) {
                    ": versions match"
                } else {
                    ""
                }
            )?;
            writeln!(
                f,
                "libtorch CUDA: {} device(s){}",
                torch.cuda_devices,
                if torch.cudnn { ", cuDNN available" } else { "" }
            )?;
        }
        writeln!(
            f,
            "devices (Linear 3→2 forward and backward on the autodiff device, checked by hand):"
        )?;
        for d in &self.devices {
            writeln!(
                f,
                "  {:<11} {:<13} {} [{:.1} ms]",
                d.device.name(),
                d.status.label(),
                d.detail,
                d.millis
            )?;
        }
        if self.problems.is_empty() {
            write!(f, "no problems found")
        } else {
            writeln!(f, "problems:")?;
            for (i, p) in self.problems.iter().enumerate() {
                writeln!(f, "  {}. {}", i + 1, p.what)?;
                write!(f, "     fix: {}", p.fix)?;
                if i + 1 < self.problems.len() {
                    writeln!(f)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_cpu_device_passes_the_hand_check() {
        for choice in [DeviceChoice::Flex, DeviceChoice::Ndarray, DeviceChoice::Tch] {
            let check = check_device(choice);
            if choice.is_compiled() {
                assert_eq!(check.status, Status::Works, "{choice}: {}", check.detail);
            } else {
                assert_eq!(check.status, Status::NotCompiled);
                assert!(check.fix.unwrap().contains("--features"));
            }
        }
    }

    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<(), Panicked> = quietly(|| panic!("boom {}", 7));
        assert_eq!(r.unwrap_err(), Panicked("boom 7".into()));
        assert_eq!(quietly(|| 3), Ok(3));
    }

    #[test]
    fn single_device_reports_fail_when_not_usable() {
        let report = Report {
            compiled: vec!["flex"],
            threads: threads(),
            torch: None,
            devices: vec![DeviceCheck {
                device: DeviceChoice::TchCuda(0),
                status: Status::Unavailable,
                detail: "no device".into(),
                millis: 0.0,
                fix: None,
            }],
            problems: Vec::new(),
            single: false,
        };
        assert!(
            report.passed(),
            "an absent GPU is not a failure of the whole check"
        );
        let single = Report {
            single: true,
            ..report
        };
        assert!(!single.passed(), "but it fails `--device tch-cuda:0`");
    }

    #[test]
    fn a_version_mismatch_is_a_problem_with_a_fix() {
        let torch = TorchInfo {
            built_version: "2.9.0+cu128".into(),
            built_lib_dir: "/a/torch/lib".into(),
            loaded_library: Some("/b/torch/lib/libtorch_cpu.so".into()),
            loaded_version: Some("2.8.0+cpu".into()),
            cuda_devices: 0,
            cudnn: false,
        };
        let problems = torch_problems(&torch);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].what.contains("2.8.0+cpu"), "{problems:?}");
        assert!(problems[0].fix.contains("--features tch"), "{problems:?}");
        let same = TorchInfo {
            loaded_version: Some("2.9.0+cu128".into()),
            ..torch
        };
        assert!(torch_problems(&same).is_empty());
    }
}
