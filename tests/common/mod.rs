//! Running the `sora` program from the integration tests.

#![allow(dead_code)]

use std::process::{Command, Output};

pub mod http;
pub mod media;

/// Runs `sora` with `args` in the repository root.
pub fn sora(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the sora binary runs")
}

/// Runs `sora`, asserts it succeeds, returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = sora(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sora {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Runs `sora`, asserts it exits with 1 and no panic, returns its standard error.
pub fn fails(args: &[&str]) -> String {
    let out = sora(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "sora {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Runs `sora`, asserts the argument parser refuses it (exit 2, no panic), returns its
/// standard error: a closed choice or a value of the wrong form, named with the flag.
pub fn usage_error(args: &[&str]) -> String {
    let out = sora(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "sora {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The names in `dir`, sorted.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The device the tests run on: `SORA_TEST_DEVICE`, flex by default.
pub fn device() -> String {
    std::env::var("SORA_TEST_DEVICE").unwrap_or_else(|_| "flex".into())
}
