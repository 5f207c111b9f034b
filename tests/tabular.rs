//! The tabular job through the library: save → load → predict reproduces the trained model's
//! outputs exactly, and the pipeline saved with it is the one that was fitted.

use sora::data::Table;
use sora::device::test_device;
use sora::jobs::tabular::{TabularConfig, TabularModel, train};
use sora::train::{Progress, TabularData, Targets, predict};

#[test]
fn save_load_predict_is_identical() {
    let device = test_device();
    let table =
        Table::read_csv(&sora::datasets::data_dir().join("german_credit/german_credit.csv"))
            .unwrap();
    let mut config = TabularConfig::new("class");
    config.train = config.train.with_seed(3).with_progress(Progress::Quiet);
    config.pipeline.missing_indicators = true;
    let run = train(&table, &config, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run.save(dir.path()).unwrap();

    let rows: Vec<usize> = (0..table.n_rows()).collect();
    let t = run.pipeline.transform(&table, &rows).unwrap();
    let n = t.rows.len();
    let data = TabularData::new(
        t.features,
        t.d,
        Targets::Classes {
            labels: vec![0; n],
            n_classes: 2,
        },
    )
    .unwrap();
    let in_memory = predict(&run.fitted.model, &data, 256, &device).unwrap();

    let loaded = TabularModel::load(dir.path(), &device).unwrap();
    assert_eq!(loaded.pipeline, run.pipeline);
    let p = loaded.predict(&table).unwrap();
    assert_eq!(p.rows, rows);
    assert_eq!(p.outputs.concat(), in_memory);
    assert_eq!(
        p.classes.as_deref(),
        Some(&["bad".to_string(), "good".to_string()][..])
    );
}
