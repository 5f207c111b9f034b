//! The `sora` program: summary, doctor, help and version; bad input exits non-zero with a
//! message naming the problem, and never panics.

use std::process::{Command, Output};

fn sora(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the sora binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn summary_prints_layers_and_totals() {
    let out = sora(&["summary", "--spec", "tests/fixtures/digits_spec.toml"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("head.hidden.1.linear (Linear)"), "{stdout}");
    assert!(stdout.contains("[B, 64]"), "{stdout}");
    assert!(stdout.contains("Total params: 17,226"), "{stdout}");
}

#[test]
fn bad_spec_names_layer_and_field() {
    let out = sora(&["summary", "--spec", "tests/fixtures/bad_width.json"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("layer 3 (Linear)") && stderr.contains("head.d_hidden[1]"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = sora(&[
        "summary",
        "--spec",
        "tests/fixtures/digits_spec.toml",
        "--max-params",
        "1000",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("limit of 1000"), "{stderr}");

    let out = sora(&["summary", "--spec", "tests/fixtures/absent.json"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("absent.json"), "{stderr}");
}

fn sora_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the sora binary runs")
}

#[test]
fn doctor_checks_every_compiled_backend() {
    let out = sora(&["doctor"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("burn 0.22.1"), "{stdout}");
    assert!(stdout.contains("threads: "), "{stdout}");
    // Every compiled backend runs the hand-checked forward and backward pass.
    for backend in sora::device::compiled_backends() {
        assert!(
            stdout.contains(&format!("  {backend:<11} works ")),
            "{backend}: {stdout}"
        );
    }
    assert!(
        stdout.contains("output and gradients match by hand"),
        "{stdout}"
    );
    if sora::device::DeviceChoice::Tch.is_compiled() {
        // Built against and loaded: the same torch, found through the run-time search path.
        assert!(stdout.contains("versions match"), "{stdout}");
        assert!(stdout.contains("libtorch CUDA: "), "{stdout}");
    } else {
        // LibTorch is reported as absent, with the way to add it, and is not a failure.
        assert!(stdout.contains("tch         not compiled"), "{stdout}");
        assert!(stdout.contains("tch-cuda:0  not compiled"), "{stdout}");
        assert!(stdout.contains("scripts/setup-libtorch.sh"), "{stdout}");
    }
    assert!(stdout.contains("no problems found"), "{stdout}");
}

#[test]
fn doctor_checks_one_device_and_fails_when_it_does_not_work() {
    let out = sora(&["doctor", "--device", "flex"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("  flex        works "), "{stdout}");
    assert!(
        !stdout.contains("ndarray     "),
        "only the device asked for: {stdout}"
    );

    // A name that parses but cannot run here: exit 1, the reason and the fix, no panic.
    let tch = sora::device::DeviceChoice::Tch.is_compiled();
    let out = sora(&["doctor", "--device", "tch-cuda:7"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("device `tch-cuda:7` does not work"),
        "{stderr}"
    );
    assert!(stdout.contains("fix: "), "{stdout}");
    if tch {
        assert!(
            stdout.contains("no CUDA device") || stdout.contains("CUDA device(s), indices"),
            "{stdout}"
        );
    } else {
        assert!(stdout.contains("lacks the `tch` feature"), "{stdout}");
        let out = sora(&["doctor", "--device", "tch"]);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(stdout.contains("source libtorch.env"), "{stdout}");
    }
}

#[test]
fn doctor_rejects_bad_device_names_with_typed_errors() {
    for (name, message) in [
        ("tpu", "unknown device `tpu`"),
        ("tch-cuda:x", "CUDA device index `x` is not a number"),
        ("tch-cuda:-1", "CUDA device index `-1` is not a number"),
    ] {
        let out = sora(&["doctor", "--device", name]);
        let (_, stderr) = text(&out);
        // A name that is not a device is a usage error of the argument parser (exit 2).
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn doctor_reports_a_bad_thread_setting_with_its_fix() {
    let out = sora_env(
        &["doctor", "--device", "flex"],
        &[("RAYON_NUM_THREADS", "lots")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("RAYON_NUM_THREADS=`lots` is not a number"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: unset it"), "{stdout}");
    let out = sora_env(
        &["doctor", "--device", "flex"],
        &[("RAYON_NUM_THREADS", "1")],
    );
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("rayon pool 1 "), "{stdout}");
}

#[test]
fn uncompiled_or_absent_devices_are_clean_errors_when_training() {
    let data = "data/heart_cleveland/heart_cleveland.csv";
    let dir = std::env::temp_dir().join(format!("sora-cli-device-{}", std::process::id()));
    for device in ["tch-cuda:7", "warp-drive"] {
        let out = sora(&[
            "train",
            "--data",
            data,
            "--target",
            "num",
            "--target-above",
            "0",
            "--epochs",
            "1",
            "--device",
            device,
            "--out",
            dir.to_str().unwrap(),
        ]);
        let (_, stderr) = text(&out);
        // An absent device fails at run time (1); a name that is none, at parsing (2).
        let code = if device == "warp-drive" { 2 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{device}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(&format!("`{device}`")), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_and_version_everywhere() {
    let out = sora(&["--version"]);
    assert!(text(&out).0.starts_with("sora "), "{:?}", text(&out));
    for sub in ["summary", "doctor"] {
        let out = sora(&[sub, "--help"]);
        assert!(out.status.success());
        assert!(text(&out).0.contains("Usage: sora"), "{:?}", text(&out));
        let out = sora(&[sub, "--version"]);
        let version = format!("sora-{sub} {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(text(&out).0.trim(), version);
    }
    let out = sora(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// With `--features tch`, the program carries a run-time search path to torch's libraries
/// (build.rs), so it starts with `LD_LIBRARY_PATH` unset, and the doctor finds the torch it was
/// built against.
#[cfg(feature = "tch")]
#[test]
fn tch_build_finds_torch_without_ld_library_path() {
    let lib_dir = env!("SORA_TORCH_LIB");
    let elf = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_sora")])
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&elf.stdout);
    assert!(
        dynamic
            .lines()
            .any(|l| (l.contains("(RUNPATH)") || l.contains("(RPATH)")) && l.contains(lib_dir)),
        "no run-time search path to {lib_dir}:\n{dynamic}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(["doctor", "--device", "tch"])
        .env_remove("LD_LIBRARY_PATH")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("the sora binary runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("  tch         works "), "{stdout}");
    assert!(stdout.contains("versions match"), "{stdout}");
    // The thread count is LibTorch's own answer, which follows OMP_NUM_THREADS.
    assert!(stdout.contains("LibTorch intra-op 1, inter-op"), "{stdout}");
}
