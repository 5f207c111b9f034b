//! Fitting and transforming on small inline tables: no leakage, encodings, errors.

use std::collections::BTreeMap;

use sora_data::{
    ColumnKind, DataError, FeatureEncoding, FittedPipeline, Impute, PipelineConfig, Table,
    TargetRule, TargetValues, TaskKind,
};

fn table(text: &str) -> Table {
    Table::from_reader(text.as_bytes(), "mem.csv").unwrap()
}

/// Rows 0..4 are training rows with x = 1, 2, 3, 4 (mean 2.5, population std √1.25) and
/// a missing x in row 4; rows 5..7 hold very different values that must not leak.
const LEAK: &str = "x,c,y\n1,a,p\n2,b,q\n3,a,p\n4,b,q\n,a,p\n100,a,q\n,b,p\n-50,b,q\n";

#[test]
fn statistics_come_from_training_rows_only() {
    let t = table(LEAK);
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3, 4], &PipelineConfig::new("y")).unwrap();
    let (mean, std) = (2.5f64, 1.25f64.sqrt());
    let FeatureEncoding::Numeric {
        mean: m,
        std: s,
        impute,
    } = p.features()[0].encoding
    else {
        panic!("x is numeric")
    };
    assert_eq!((m, s, impute), (mean, std, mean));

    let out = p.transform(&t, &[5, 6, 7]).unwrap();
    let x: Vec<f32> = (0..3).map(|i| out.row(i)[0]).collect();
    let expected = [
        ((100.0 - mean) / std) as f32,
        0.0,
        ((-50.0 - mean) / std) as f32,
    ];
    assert_eq!(x, expected);
    // Fitting on the other rows instead gives other statistics: the test can fail.
    let q = FittedPipeline::fit(&t, &[5, 6, 7], &PipelineConfig::new("y")).unwrap();
    assert_ne!(q.transform(&t, &[5]).unwrap().row(0)[0], expected[0]);
}

#[test]
fn median_most_frequent_and_constant_imputation() {
    let t = table("x,c,y\n1,a,p\n2,b,q\n10,b,p\n?,?,q\n");
    let mut config = PipelineConfig::new("y");
    config.impute = Impute::Median;
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap();
    let FeatureEncoding::Numeric { impute, .. } = p.features()[0].encoding else {
        panic!()
    };
    assert_eq!(impute, 2.0);
    // The categorical column ignores the global median and uses the most frequent value.
    assert_eq!(
        p.features()[1].encoding,
        FeatureEncoding::Categorical {
            categories: vec!["a".into(), "b".into()],
            impute: "b".into()
        }
    );

    config.impute_columns = BTreeMap::from([
        ("x".to_string(), Impute::Constant { value: "-1".into() }),
        (
            "c".to_string(),
            Impute::Constant {
                value: "unknown".into(),
            },
        ),
    ]);
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap();
    assert_eq!(p.feature_names(), ["x", "c=a", "c=b", "c=unknown"]);
    let out = p.transform(&t, &[3]).unwrap();
    assert_eq!(out.row(0)[1..], [0.0, 0.0, 1.0]);
    assert_eq!(out.unseen_categories, 0);

    config.impute_columns = BTreeMap::from([("c".to_string(), Impute::Mean)]);
    let err = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap_err();
    assert!(
        matches!(&err, DataError::InvalidConfig { field, .. } if field == "impute_columns.c"),
        "{err:?}"
    );
    config.impute_columns = BTreeMap::from([(
        "x".to_string(),
        Impute::Constant {
            value: "zero".into(),
        },
    )]);
    let err = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap_err();
    assert!(matches!(err, DataError::InvalidConfig { .. }), "{err:?}");
}

#[test]
fn unseen_category_is_a_zero_block_and_counted() {
    let t = table("c,y\nred,a\nblue,b\nred,a\ngreen,b\ngreen,a\nblue,b\n");
    let p = FittedPipeline::fit(&t, &[0, 1, 2], &PipelineConfig::new("y")).unwrap();
    assert_eq!(p.feature_names(), ["c=blue", "c=red"]);
    let out = p.transform(&t, &[3, 4, 5]).unwrap();
    assert_eq!(out.features, [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(out.unseen_categories, 2);
    assert!(
        out.warnings[0].contains("`c`: 2 cells"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn columns_matched_by_name_and_prediction_data_has_no_targets() {
    let train = table("a,b,y\n1,u,0\n2,v,1\n3,u,0\n");
    let p = FittedPipeline::fit(&train, &[0, 1, 2], &PipelineConfig::new("y")).unwrap();
    let expected = p.transform(&train, &[1]).unwrap().features;
    let other = table("extra,b,a\nzz,v,2\n");
    let out = p.transform(&other, &[0]).unwrap();
    assert_eq!(out.features, expected);
    assert_eq!(out.targets, None);

    let err = p.transform(&table("a,y\n1,0\n"), &[0]).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "b"),
        "{err:?}"
    );
}

#[test]
fn rows_with_missing_target_are_dropped_and_reported() {
    let t = table("x,y\n1,a\n2,NA\n3,b\n4,\n5,a\n");
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3, 4], &PipelineConfig::new("y")).unwrap();
    assert!(p.warnings()[0].contains("dropped 2 of 5 training rows"));
    let out = p.transform(&t, &[0, 1, 2, 3, 4]).unwrap();
    assert_eq!(out.rows, [0, 2, 4]);
    assert_eq!(out.targets, Some(TargetValues::Classes(vec![0, 1, 0])));
    assert!(out.warnings[0].contains("dropped 2 of 5 rows"));
}

#[test]
fn classes_sort_numerically_when_numeric() {
    let t = table("x,y\n1,10\n2,2\n3,1\n4,2\n");
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &PipelineConfig::new("y")).unwrap();
    assert_eq!(p.classes().unwrap(), ["1", "2", "10"]);
    let out = p.transform(&t, &[0, 1, 2]).unwrap();
    assert_eq!(out.targets, Some(TargetValues::Classes(vec![2, 1, 0])));
    // "2.0" in new data is class "2".
    let out = p.transform(&table("x,y\n5,2.0\n"), &[0]).unwrap();
    assert_eq!(out.targets, Some(TargetValues::Classes(vec![1])));
}

#[test]
fn auto_regression_for_continuous_targets() {
    let mut text = String::from("x,y\n");
    for i in 0..30 {
        text.push_str(&format!("{i},{}.5\n", i * 3));
    }
    let t = table(&text);
    let p =
        FittedPipeline::fit(&t, &(0..30).collect::<Vec<_>>(), &PipelineConfig::new("y")).unwrap();
    assert_eq!(p.task(), TaskKind::Regression);
    assert_eq!(
        (p.d_output(), p.classes(), p.class_name(0)),
        (1, None, None)
    );
    let out = p.transform(&t, &[2]).unwrap();
    assert_eq!(out.targets, Some(TargetValues::Values(vec![6.5])));

    // The same target forced to classes.
    let config = PipelineConfig {
        target_rule: TargetRule::Classes,
        ..PipelineConfig::new("y")
    };
    let p = FittedPipeline::fit(&t, &(0..30).collect::<Vec<_>>(), &config).unwrap();
    assert_eq!(p.d_output(), 30);
}

#[test]
fn entirely_missing_constant_and_sparse_columns_are_left_out() {
    let t =
        table("empty,k,sparse,x,y\n,1,,1,a\nNA,1,,2,b\n?,1,3,3,a\n,1,,4,b\n,1,5,5,a\n,1,,6,b\n");
    let config = PipelineConfig {
        drop_columns_over: Some(0.5),
        ..PipelineConfig::new("y")
    };
    let rows: Vec<usize> = (0..6).collect();
    let p = FittedPipeline::fit(&t, &rows, &config).unwrap();
    assert_eq!(p.feature_names(), ["x"]);
    let w = p.warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].contains("`empty`: missing in all 6 training rows"));
    assert!(w[1].contains("`k`: constant"));
    assert!(w[2].contains("`sparse`: 66.7% missing"), "{w:?}");
    let out = p.transform(&t, &rows).unwrap();
    assert!(out.features.iter().all(|x| x.is_finite()));
}

#[test]
fn kind_overrides_and_ignore() {
    let t = table("code,x,y\n1,5,a\n2,6,b\n1,7,a\n3,8,b\n");
    let config = PipelineConfig {
        kinds: BTreeMap::from([("code".to_string(), ColumnKind::Categorical)]),
        ..PipelineConfig::new("y")
    };
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap();
    assert_eq!(p.feature_names(), ["code=1", "code=2", "code=3", "x"]);
    let config = PipelineConfig {
        ignore: vec!["code".into()],
        ..PipelineConfig::new("y")
    };
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap();
    assert_eq!(p.feature_names(), ["x"]);
    assert!(p.warnings().is_empty());
}

#[test]
fn serde_round_trip_transforms_identically() {
    let t = table("x,c,y\n1,a,p\n2,b,q\n,a,p\n4,b,q\n7,c,q\n");
    let config = PipelineConfig {
        missing_indicators: true,
        ..PipelineConfig::new("y")
    };
    let p = FittedPipeline::fit(&t, &[0, 1, 2, 3], &config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.json");
    p.save_json(&path).unwrap();
    let q = FittedPipeline::load_json(&path).unwrap();
    assert_eq!(p, q);
    let rows = [0, 1, 2, 3, 4];
    assert_eq!(
        p.transform(&t, &rows).unwrap(),
        q.transform(&t, &rows).unwrap()
    );

    let config_json = serde_json::to_string(&config).unwrap();
    let back: PipelineConfig = serde_json::from_str(&config_json).unwrap();
    assert_eq!(back, config);

    std::fs::write(&path, "{ \"target\": 3 }").unwrap();
    let err = FittedPipeline::load_json(&path).unwrap_err();
    assert!(matches!(err, DataError::Json { .. }), "{err:?}");
}

#[test]
fn config_rejects_unknown_fields_and_columns() {
    let bad: Result<PipelineConfig, _> =
        serde_json::from_str(r#"{ "target": "y", "missing_indicator": true }"#);
    assert!(bad.is_err());

    let t = table("x,y\n1,a\n2,b\n");
    let config = PipelineConfig {
        zero_as_missing: vec!["insulin".into()],
        ..PipelineConfig::new("y")
    };
    let err = FittedPipeline::fit(&t, &[0, 1], &config).unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownColumn { field, column, .. } if field == "zero_as_missing" && column == "insulin"),
        "{err:?}"
    );
    let config = PipelineConfig {
        drop_columns_over: Some(1.5),
        ..PipelineConfig::new("y")
    };
    let err = FittedPipeline::fit(&t, &[0, 1], &config).unwrap_err();
    assert!(matches!(err, DataError::InvalidConfig { .. }), "{err:?}");
    let err = FittedPipeline::fit(&t, &[0, 7], &PipelineConfig::new("y")).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::RowOutOfRange {
                row: 7,
                n_rows: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = FittedPipeline::fit(&t, &[], &PipelineConfig::new("y")).unwrap_err();
    assert!(matches!(err, DataError::NoTrainingRows { .. }), "{err:?}");
}

#[test]
fn target_errors() {
    let t = table("x,z,y\n1,a,p\n2,b,\n3,c,p\n");
    let err = FittedPipeline::fit(&t, &[0, 1, 2], &PipelineConfig::new("label")).unwrap_err();
    match &err {
        DataError::TargetNotFound {
            file,
            target,
            available,
        } => {
            assert_eq!((file.as_str(), target.as_str()), ("mem.csv", "label"));
            assert_eq!(available, &["x", "z", "y"]);
        }
        other => panic!("expected TargetNotFound, got {other:?}"),
    }
    assert!(
        err.to_string().contains("available columns: x, z, y"),
        "{err}"
    );

    let err = FittedPipeline::fit(&t, &[1], &PipelineConfig::new("y")).unwrap_err();
    assert!(matches!(err, DataError::TargetAllMissing { .. }), "{err:?}");

    let err = FittedPipeline::fit(&t, &[0, 1, 2], &PipelineConfig::new("y")).unwrap_err();
    assert!(
        matches!(&err, DataError::OneClass { class, .. } if class == "p"),
        "{err:?}"
    );

    let threshold = PipelineConfig {
        target_rule: TargetRule::Threshold { above: 5.0 },
        ..PipelineConfig::new("x")
    };
    let err = FittedPipeline::fit(&t, &[0, 1, 2], &threshold).unwrap_err();
    assert!(
        matches!(&err, DataError::OneClass { class, .. } if class == "0"),
        "{err:?}"
    );

    let t = table("x,y\n1,a\n2,b\n3,c\n");
    let p = FittedPipeline::fit(&t, &[0, 1], &PipelineConfig::new("y")).unwrap();
    let err = p.transform(&t, &[2]).unwrap_err();
    assert!(
        matches!(&err, DataError::UnseenClass { line: 4, value, .. } if value == "c"),
        "{err:?}"
    );
}

#[test]
fn no_features_left() {
    let t = table("id,k,y\n1,7,a\n2,7,b\n3,7,a\n");
    let err = FittedPipeline::fit(&t, &[0, 1, 2], &PipelineConfig::new("y")).unwrap_err();
    match &err {
        DataError::NoFeatures { dropped, .. } => assert_eq!(dropped.len(), 2),
        other => panic!("expected NoFeatures, got {other:?}"),
    }
}

#[test]
fn bad_numbers_name_file_line_and_column() {
    let t = table("x,y\n1,a\n2,b\ninf,a\n1e999,b\nabc,a\n");
    // Fitting over the bad rows fails on the first one.
    let config = PipelineConfig {
        kinds: BTreeMap::from([("x".to_string(), ColumnKind::Numeric)]),
        ..PipelineConfig::new("y")
    };
    let err = FittedPipeline::fit(&t, &[0, 1, 2], &config).unwrap_err();
    assert!(
        matches!(&err, DataError::NonFinite { file, line: 4, column, value } if file == "mem.csv" && column == "x" && value == "inf"),
        "{err:?}"
    );
    // Transforming them with a pipeline fitted on good rows.
    let p = FittedPipeline::fit(&t, &[0, 1], &PipelineConfig::new("y")).unwrap();
    let err = p.transform(&t, &[3]).unwrap_err();
    assert!(
        matches!(&err, DataError::NonFinite { line: 5, value, .. } if value == "1e999"),
        "{err:?}"
    );
    let err = p.transform(&t, &[0, 4]).unwrap_err();
    assert!(
        matches!(&err, DataError::NotNumeric { line: 6, column, value, .. } if column == "x" && value == "abc"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "mem.csv: line 6: column `x`: expected a number, found `abc`"
    );
    // Numeric inference over inf/1e999 still says numeric, so fitting on them is an error,
    // never a silent categorical.
    let err = FittedPipeline::fit(&t, &[0, 1, 2, 3], &PipelineConfig::new("y")).unwrap_err();
    assert!(
        matches!(err, DataError::NonFinite { line: 4, .. }),
        "{err:?}"
    );
    // A regression target with a non-finite value.
    let t = table("x,y\n1,0.5\n2,1e400\n");
    let config = PipelineConfig {
        target_rule: TargetRule::Regression,
        ..PipelineConfig::new("y")
    };
    let err = FittedPipeline::fit(&t, &[0, 1], &config).unwrap_err();
    assert!(
        matches!(&err, DataError::NonFinite { line: 3, column, .. } if column == "y"),
        "{err:?}"
    );
}
