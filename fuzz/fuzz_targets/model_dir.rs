//! A model directory, read by the one loader every command uses
//! ([`sora_jobs::Registry::load_any`]: manifest, crash recovery, then the kind's own files:
//! spec, weights, pipeline, vocabulary, …) on the flex device. A model that loads is asked to
//! describe itself and, when it takes rows of columns, to predict two rows built from its
//! own input schema (the first of its training categories, or `1`; then every cell missing).
//!
//! The input is a whole directory in the format of [`sora_fuzz::unpack`] (`=== NAME` lines
//! opening each file); the seeds are real tiny models of every kind (`fuzz/src/bin/seeds.rs`).

#![no_main]

use std::sync::OnceLock;

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use sora_data::Table;
use sora_jobs::{Input, InputSchema, Registry};

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let files = sora_fuzz::unpack(data);
    if files.is_empty() {
        return;
    }
    // Recovery looks beside the directory, so each input gets a folder of its own.
    let root = tempfile::tempdir().expect("a scratch folder");
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).expect("the model folder");
    sora_fuzz::write_files(&dir, &files).expect("the model's files are written");

    let device = Device::flex();
    let Ok(loaded) = registry().load_any(&dir, &device) else {
        return;
    };
    let info = loaded.model.info();
    let _ = (
        info.input.describe(),
        info.manifest(),
        info.classes(),
        info.input.columns(),
    );
    if let InputSchema::Columns { columns } = &info.input {
        let names = columns.iter().map(|c| c.name.clone()).collect();
        let present = columns
            .iter()
            .map(|c| match c.categories.as_deref() {
                Some([first, ..]) => first.clone(),
                _ => "1".to_string(),
            })
            .collect();
        let missing = columns
            .iter()
            .map(|c| c.missing_marker.clone().unwrap_or_default())
            .collect();
        if let Ok(table) = Table::from_rows("fuzz", names, vec![present, missing]) {
            let _ = loaded.model.predict(&Input::Table(table));
        }
    }
});
