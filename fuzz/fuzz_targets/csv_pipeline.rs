//! CSV bytes through the path of `sora train` on a table: [`Table::from_reader`], the schema
//! (`sora inspect`), [`prepare`] (config check, target encoding, stratified split, pipeline
//! fitted on the training rows, every split encoded), the default model's spec, then the
//! fitted pipeline through `pipeline.json` and back, which must encode the rows the same.
//!
//! An input that starts with `{` carries a pipeline config (`--pipeline`, JSON) on its first
//! line; the CSV follows. The target is the config's, or else the last column.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sora_data::{FittedPipeline, MissingMarkers, PipelineConfig, Table, infer_schema};
use sora_jobs::tabular::{TabularConfig, model_spec, prepare};

fuzz_target!(|data: &[u8]| {
    let (pipeline, csv) = match data.strip_prefix(b"{") {
        Some(_) => {
            let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
            let Ok(config) = serde_json::from_slice::<PipelineConfig>(&data[..end]) else {
                return;
            };
            (Some(config), &data[(end + 1).min(data.len())..])
        }
        None => (None, data),
    };
    let Ok(table) = Table::from_reader(csv, "fuzz.csv") else {
        return;
    };
    let _ = infer_schema(&table, &MissingMarkers::default()).to_string();

    let Some(last) = table.headers().last() else {
        return;
    };
    let mut config = TabularConfig::new(last);
    if let Some(pipeline) = pipeline {
        let target = match pipeline.target.as_str() {
            "" => last.clone(),
            named => named.to_string(),
        };
        config.pipeline = PipelineConfig { target, ..pipeline };
    }
    let _ = config.pipeline.infer_schema(&table).to_string();
    let Ok(prepared) = prepare(&table, &config) else {
        return;
    };
    let _ = prepared.class_weights(Default::default());
    let _ = model_spec(&prepared, &config);

    // `pipeline.json` (FittedPipeline::save_json / load_json, in memory).
    let fitted = &prepared.pipeline;
    let json = serde_json::to_string_pretty(fitted).expect("a fitted pipeline serialises");
    let loaded: FittedPipeline = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a saved pipeline does not read back: {e}\n{json}"));
    let rows: Vec<usize> = (0..table.n_rows()).collect();
    match (
        fitted.transform(&table, &rows),
        loaded.transform(&table, &rows),
    ) {
        (Ok(a), Ok(b)) => {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&a.features),
                bits(&b.features),
                "features after reload"
            );
            assert_eq!(a.rows, b.rows);
            assert_eq!(a.targets, b.targets);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("fitted and reloaded pipelines disagree: {a:?} / {b:?}"),
    }
});
