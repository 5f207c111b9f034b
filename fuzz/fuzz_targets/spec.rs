//! Bytes as a model spec file, read as `sora summary --spec FILE` reads one
//! ([`sora_jobs::spec_summary`]: `encoder.kind` picks the encoder, then parsing and every
//! check against the default limits). The first byte picks the file's format: odd is TOML,
//! even JSON; the rest is the file. A spec that checks must also survive its own JSON
//! (`spec.json` of a saved model) and check again with the same summary.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sora_conv::{Conv1dSpec, Conv2dSpec};
use sora_core::{EncoderSpec, IdentitySpec, ModelSpec, SpecLimits};
use sora_text::TextSpec;
use sora_text::recommend::RatingsSpec;

/// One scratch folder per process; each input overwrites its file.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder"))
}

/// Checks that a spec that checks reads back from its JSON with the same summary.
fn round_trip<E: EncoderSpec>(path: &std::path::Path, limits: &SpecLimits) {
    let Ok(spec) = ModelSpec::<E>::from_file(path) else {
        return;
    };
    let Ok(checked) = spec.check_with(limits) else {
        return;
    };
    let json = spec.to_json_string();
    let again = ModelSpec::<E>::from_json_str(&json)
        .unwrap_or_else(|e| panic!("a checked spec does not read back: {e}\n{json}"));
    let rechecked = again
        .check_with(limits)
        .unwrap_or_else(|e| panic!("a checked spec fails its check once saved: {e}\n{json}"));
    assert_eq!(
        checked.summary().to_string(),
        rechecked.summary().to_string()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&format, text)) = data.split_first() else {
        return;
    };
    let name = if format % 2 == 1 {
        "spec.toml"
    } else {
        "spec.json"
    };
    let path: PathBuf = scratch().path().join(name);
    std::fs::write(&path, text).expect("the scratch file is written");
    let limits = SpecLimits::default();
    let Ok(summary) = sora_jobs::spec_summary(&path, &limits) else {
        return;
    };
    let _ = summary.to_string();
    match sora_jobs::media::ConvSpec::encoder_kind(&path)
        .ok()
        .flatten()
        .as_deref()
    {
        Some("conv1d") => round_trip::<Conv1dSpec>(&path, &limits),
        Some("conv2d") => round_trip::<Conv2dSpec>(&path, &limits),
        Some("text") => round_trip::<TextSpec>(&path, &limits),
        Some("ratings") => round_trip::<RatingsSpec>(&path, &limits),
        _ => round_trip::<IdentitySpec>(&path, &limits),
    }
});
