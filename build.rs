//! Build script of the `sora` package.
//!
//! Only with the `tch` feature: the binaries, tests, examples and benches of this package get a
//! run-time search path (`-Wl,-rpath`) to the torch library directory, so the program finds
//! `libtorch*.so` without `LD_LIBRARY_PATH`, and the torch version built against is recorded in
//! `SORA_TORCH_VERSION` for `sora doctor`. Without the feature this script does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let Some(lib_dir) = torch_lib_dir() else {
        println!(
            "cargo:warning=sora: torch library directory not found (set LIBTORCH_LIB, or \
             `source libtorch.env` after scripts/setup-libtorch.sh); the program will need \
             LD_LIBRARY_PATH at run time"
        );
        println!("cargo:rustc-env=SORA_TORCH_VERSION=unknown");
        println!("cargo:rustc-env=SORA_TORCH_LIB=unknown");
        return;
    };
    // Applies to every binary, test, example and bench of this package.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=SORA_TORCH_LIB={}", lib_dir.display());
    let version = torch_version(&lib_dir).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SORA_TORCH_VERSION={version}");
}

/// The torch `lib` directory: `LIBTORCH_LIB`, else what torch-sys found (its `links = "tch"`
/// metadata `libtorch_lib`), else the answer of the `python3` on `PATH`.
fn torch_lib_dir() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
    };
    from_env("LIBTORCH_LIB")
        .or_else(|| from_env("DEP_TCH_LIBTORCH_LIB"))
        .or_else(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import torch,os;print(os.path.join(os.path.dirname(torch.__file__),'lib'))",
                ])
                .output()
                .ok()?;
            let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
            (out.status.success() && dir.is_dir()).then_some(dir)
        })
}

/// The version in torch's `version.py` beside the `lib` directory (a PyTorch install), or the
/// `build-version` file of a libtorch archive.
fn torch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|line| {
            let rest = line.strip_prefix("__version__")?;
            let value = rest.trim_start().strip_prefix('=')?.trim();
            Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
        });
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}
