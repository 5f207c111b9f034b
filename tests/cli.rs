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

#[test]
fn doctor_checks_every_compiled_backend() {
    let out = sora(&["doctor"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("burn 0.22.1"), "{stdout}");
    for backend in sora::device::compiled_backends() {
        assert!(stdout.contains(&format!("{backend:<8} works")), "{stdout}");
    }
    let out = sora(&["doctor", "--device", "tpu"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("unknown device `tpu`"), "{stderr}");
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
