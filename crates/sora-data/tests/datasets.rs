//! Schema inference and pipelines on the real datasets under `data/`.

use sora_data::{
    ColumnKind, FeatureEncoding, FittedPipeline, MissingMarkers, PipelineConfig, Table, TargetRule,
    TargetValues, TaskKind, encode_target, infer_schema, stratified_split,
};

const HEART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/heart_cleveland/heart_cleveland.csv"
);
const PIMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/pima_diabetes/pima_diabetes.csv"
);
const GERMAN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/german_credit/german_credit.csv"
);
const CANCER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/breast_cancer_wdbc/breast_cancer.csv"
);
const CREDIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/credit_default_taiwan/credit_default.csv"
);

fn read(path: &str) -> Table {
    Table::read_csv(path.as_ref()).unwrap()
}

fn all_rows(t: &Table) -> Vec<usize> {
    (0..t.n_rows()).collect()
}

#[test]
fn heart_schema_counts_the_empty_cells() {
    let t = read(HEART);
    assert_eq!((t.n_rows(), t.n_cols()), (303, 14));
    let s = infer_schema(&t, &MissingMarkers::default());
    let ca = s.column("ca").unwrap();
    let thal = s.column("thal").unwrap();
    assert_eq!((ca.kind, ca.n_missing), (ColumnKind::Numeric, 4));
    assert_eq!((thal.kind, thal.n_missing), (ColumnKind::Numeric, 2));
    assert_eq!(s.columns.iter().map(|c| c.n_missing).sum::<usize>(), 6);
    assert!(s.columns.iter().all(|c| c.kind == ColumnKind::Numeric));
    let age = s.column("age").unwrap().numeric.unwrap();
    assert_eq!((age.min, age.max), (29.0, 77.0));
    let text = s.to_string();
    assert!(text.contains("303 rows, 14 columns"), "{text}");
}

#[test]
fn german_schema_finds_the_categoricals() {
    let t = read(GERMAN);
    let s = infer_schema(&t, &MissingMarkers::default());
    let categorical: Vec<&str> = s
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Categorical && c.name != "class")
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        categorical,
        [
            "checking_status",
            "credit_history",
            "purpose",
            "savings_status",
            "employment",
            "personal_status",
            "other_parties",
            "property_magnitude",
            "other_payment_plans",
            "housing",
            "job",
            "own_telephone",
            "foreign_worker"
        ]
    );
    assert_eq!(s.column("class").unwrap().kind, ColumnKind::Categorical);
    assert_eq!(s.column("duration").unwrap().kind, ColumnKind::Numeric);

    let p = FittedPipeline::fit(&t, &all_rows(&t), &PipelineConfig::new("class")).unwrap();
    assert_eq!(p.classes().unwrap(), ["bad", "good"]);
    assert!(p.feature_names().contains(&"housing=own".to_string()));
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    let Some(TargetValues::Classes(labels)) = &out.targets else {
        panic!("expected classes")
    };
    assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 300);
    // Each categorical block is one-hot: exactly one 1 per row.
    for (name, range) in p.column_map() {
        if let Some(f) = p.features().iter().find(|f| f.name == name)
            && matches!(f.encoding, FeatureEncoding::Categorical { .. })
        {
            for i in 0..out.n_rows() {
                let block = &out.row(i)[range.clone()];
                assert_eq!(block.iter().sum::<f32>(), 1.0, "{name}");
            }
        }
    }
}

#[test]
fn credit_id_is_an_identifier() {
    let t = read(CREDIT);
    assert_eq!(t.n_rows(), 30_000);
    let s = infer_schema(&t, &MissingMarkers::default());
    assert_eq!(s.column("ID").unwrap().kind, ColumnKind::Identifier);
    assert_eq!(s.column("LIMIT_BAL").unwrap().kind, ColumnKind::Numeric);
    let rows: Vec<usize> = (0..2000).collect();
    let p = FittedPipeline::fit(
        &t,
        &rows,
        &PipelineConfig::new("default_payment_next_month"),
    )
    .unwrap();
    assert!(!p.feature_names().contains(&"ID".to_string()));
    assert_eq!(p.d_input(), 23);
    assert!(p.warnings().iter().any(|w| w.contains("`ID`: identifier")));
}

#[test]
fn breast_cancer_auto_target_is_binary() {
    let t = read(CANCER);
    let p = FittedPipeline::fit(&t, &all_rows(&t), &PipelineConfig::new("target")).unwrap();
    assert_eq!(p.task(), TaskKind::Classification { n_classes: 2 });
    assert_eq!(p.d_input(), 30);
    // Standardized over the same rows: every column has mean 0 and population std 1.
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    let n = out.n_rows() as f64;
    for j in 0..out.d {
        let col: Vec<f64> = (0..out.n_rows()).map(|i| out.row(i)[j] as f64).collect();
        let mean = col.iter().sum::<f64>() / n;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // f32 storage: relative error ~1e-7 per value, well under 1e-4 over 569 rows.
        assert!(
            mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-4,
            "column {j}: {mean} {var}"
        );
    }
}

#[test]
fn heart_auto_target_has_five_classes() {
    let t = read(HEART);
    let config = PipelineConfig::new("num");
    assert!(config.is_classification(&config.infer_schema(&t)).unwrap());
    let regression = PipelineConfig {
        target_rule: TargetRule::Regression,
        ..PipelineConfig::new("num")
    };
    assert!(
        !regression
            .is_classification(&regression.infer_schema(&t))
            .unwrap()
    );
    let chol = PipelineConfig::new("chol");
    assert!(!chol.is_classification(&chol.infer_schema(&t)).unwrap());
    let absent = PipelineConfig::new("nope");
    assert!(matches!(
        absent.is_classification(&absent.infer_schema(&t)),
        Err(sora_data::DataError::TargetNotFound { .. })
    ));
    let p = FittedPipeline::fit(&t, &all_rows(&t), &config).unwrap();
    assert_eq!(p.classes().unwrap(), ["0", "1", "2", "3", "4"]);
    assert_eq!(p.d_output(), 5);
    assert_eq!(p.class_name(4), Some("4"));
}

#[test]
fn heart_threshold_target() {
    let t = read(HEART);
    let config = PipelineConfig {
        target_rule: TargetRule::Threshold { above: 0.0 },
        ..PipelineConfig::new("num")
    };
    let p = FittedPipeline::fit(&t, &all_rows(&t), &config).unwrap();
    assert_eq!(p.task(), TaskKind::Classification { n_classes: 2 });
    assert_eq!(p.classes().unwrap(), ["0", "1"]);
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    let Some(TargetValues::Classes(labels)) = out.targets else {
        panic!("expected classes")
    };
    assert_eq!(labels.len(), 303);
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 139);
}

#[test]
fn heart_missing_indicators_and_drop_missing_rows() {
    let t = read(HEART);
    let config = PipelineConfig {
        missing_indicators: true,
        ..PipelineConfig::new("num")
    };
    let p = FittedPipeline::fit(&t, &all_rows(&t), &config).unwrap();
    let names = p.feature_names();
    assert_eq!(names.len(), 13 + 2);
    assert_eq!(names[11..15], ["ca", "ca_missing", "thal", "thal_missing"]);
    let map = p.column_map();
    assert_eq!(map[11], ("ca".to_string(), 11..13));
    assert_eq!(map[12], ("thal".to_string(), 13..15));
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    let ca_missing: f32 = (0..out.n_rows()).map(|i| out.row(i)[12]).sum();
    let thal_missing: f32 = (0..out.n_rows()).map(|i| out.row(i)[14]).sum();
    assert_eq!((ca_missing, thal_missing), (4.0, 2.0));

    let config = PipelineConfig {
        drop_missing_rows: true,
        missing_indicators: true,
        ..PipelineConfig::new("num")
    };
    let p = FittedPipeline::fit(&t, &all_rows(&t), &config).unwrap();
    // No missing training cells once incomplete rows are dropped, so no indicators.
    assert_eq!(p.d_input(), 13);
    assert!(p.warnings().iter().any(|w| w.contains("dropped 6 of 303")));
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    assert_eq!(out.n_rows(), 297);
    assert!(out.features.iter().all(|x| x.is_finite()));
    assert!(out.warnings.iter().any(|w| w.contains("dropped 6 of 303")));
}

#[test]
fn pima_zero_as_missing_insulin() {
    let t = read(PIMA);
    let config = PipelineConfig {
        zero_as_missing: vec!["insu".into()],
        missing_indicators: true,
        ..PipelineConfig::new("outcome")
    };
    let schema = config.infer_schema(&t);
    assert_eq!(schema.column("insu").unwrap().n_missing, 374);
    assert_eq!(schema.column("skin").unwrap().n_missing, 0);

    let p = FittedPipeline::fit(&t, &all_rows(&t), &config).unwrap();
    let insu = p.features().iter().find(|f| f.name == "insu").unwrap();
    let FeatureEncoding::Numeric { mean, impute, .. } = insu.encoding else {
        panic!("insu is numeric")
    };
    // Mean of the 394 non-zero values (computed with Python's csv module).
    assert!((mean - 155.5482233502538).abs() < 1e-9, "{mean}");
    assert_eq!(impute, mean);
    assert!(p.feature_names().contains(&"insu_missing".to_string()));
    assert!(!p.feature_names().contains(&"skin_missing".to_string()));
    let out = p.transform(&t, &all_rows(&t)).unwrap();
    let j = p.feature_names().iter().position(|n| n == "insu").unwrap();
    // Row 0 has insu = 0: imputed with the mean, so standardized to 0, indicator 1.
    assert_eq!(t.cell(0, t.column_index("insu").unwrap()), "0");
    assert_eq!(out.row(0)[j], 0.0);
    assert_eq!(out.row(0)[j + 1], 1.0);
}

#[test]
fn heart_stratified_split_keeps_proportions() {
    let t = read(HEART);
    let config = PipelineConfig::new("num");
    let target = encode_target(&t, &config).unwrap();
    let TargetValues::Classes(labels) = &target.targets else {
        panic!("expected classes")
    };
    let split = stratified_split(labels, 0.15, 0.15, 7);
    // Class sizes 164, 55, 36, 35, 13: test and valid take round(n × 0.15) of each.
    for (class, expected) in [(0, 25), (1, 8), (2, 5), (3, 5), (4, 2)] {
        let count = |v: &[usize]| v.iter().filter(|&&i| labels[i] == class).count();
        assert_eq!(count(&split.test), expected, "class {class}");
        assert_eq!(count(&split.valid), expected, "class {class}");
    }
    assert_eq!(split, stratified_split(labels, 0.15, 0.15, 7));
    let rows = split.select(&target.rows);
    let p = FittedPipeline::fit(&t, &rows.train, &config).unwrap();
    let test = p.transform(&t, &rows.test).unwrap();
    assert_eq!(test.n_rows(), 45);
}
