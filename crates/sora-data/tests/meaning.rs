//! Data that would silently change meaning: a few text cells in a column of numbers, and new
//! rows far from the training rows (drift).

use sora_data::{
    ColumnKind, DataError, FeatureEncoding, FittedPipeline, PipelineConfig, Table, TextCells,
};

fn table(text: &str) -> Table {
    Table::from_reader(text.as_bytes(), "mem.csv").unwrap()
}

/// 100 rows: `x` holds 98 distinct numbers and two text cells (rows 10 and 50, file lines
/// 12 and 52); `y` alternates.
fn mixed() -> Table {
    let mut csv = String::from("x,y\n");
    for i in 0..100 {
        let x = match i {
            10 => "abc".to_string(),
            50 => "-".to_string(),
            _ => format!("{}.5", i),
        };
        csv.push_str(&format!("{x},{}\n", i % 2));
    }
    table(&csv)
}

fn all(t: &Table) -> Vec<usize> {
    (0..t.n_rows()).collect()
}

#[test]
fn a_few_text_cells_among_numbers_are_refused_naming_them() {
    let t = mixed();
    let schema = PipelineConfig::new("y").infer_schema(&t);
    let x = schema.column("x").unwrap();
    let cells = x
        .text_among_numbers
        .as_ref()
        .expect("x is numbers but for two cells");
    assert_eq!((cells.n_text, cells.n_numbers), (2, 98));
    assert!(schema.to_string().contains("line 12: `abc`, line 52: `-`"));

    let err = FittedPipeline::fit(&t, &all(&t), &PipelineConfig::new("y")).unwrap_err();
    assert!(matches!(err, DataError::TextAmongNumbers { ref column, .. } if column == "x"));
    let message = err.to_string();
    for part in [
        "mem.csv: column `x` holds 2 text cell(s) among 98 numbers",
        "line 12: `abc`, line 52: `-`",
        "98 distinct numbers would each become a category",
        "--text-cells missing",
        "--categorical x",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

#[test]
fn text_cells_read_as_missing_keep_the_column_numeric() {
    let t = mixed();
    let config = PipelineConfig {
        text_cells: TextCells::Missing,
        ..PipelineConfig::new("y")
    };
    let p = FittedPipeline::fit(&t, &all(&t), &config).unwrap();
    let FeatureEncoding::Numeric { mean, .. } = p.features()[0].encoding else {
        panic!("x stays numeric")
    };
    let numbers: Vec<f64> = (0..100)
        .filter(|i| ![10, 50].contains(i))
        .map(|i| i as f64 + 0.5)
        .collect();
    assert_eq!(mean, numbers.iter().sum::<f64>() / 98.0);
    assert_eq!(p.d_input(), 1);
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.contains("`x`: 2 text cell(s) read as missing")),
        "{:?}",
        p.warnings()
    );
    // The text cells are imputed with the mean (0 once standardised); so is new text later,
    // also after a round trip through the saved pipeline.
    let out = p.transform(&t, &[10, 50]).unwrap();
    assert_eq!((out.row(0)[0], out.row(1)[0]), (0.0, 0.0));
    let dir = tempfile::tempdir().unwrap();
    p.save_json(&dir.path().join("p.json")).unwrap();
    let back = FittedPipeline::load_json(&dir.path().join("p.json")).unwrap();
    assert_eq!(back, p);
    let later = table("x,y\nunknown,1\n");
    assert_eq!(back.transform(&later, &[0]).unwrap().row(0)[0], 0.0);
}

#[test]
fn text_cells_read_as_categories_when_asked() {
    let t = mixed();
    for config in [
        PipelineConfig {
            text_cells: TextCells::Categorical,
            ..PipelineConfig::new("y")
        },
        PipelineConfig {
            kinds: [("x".to_string(), ColumnKind::Categorical)].into(),
            ..PipelineConfig::new("y")
        },
    ] {
        let p = FittedPipeline::fit(&t, &all(&t), &config).unwrap();
        assert_eq!(p.d_input(), 100, "every value a category");
    }
}

#[test]
fn a_column_of_text_is_not_numbers_with_stray_cells() {
    // One cell in ten is text (over the 1 in 20 limit): a categorical column, as before.
    let mut csv = String::from("x,y\n");
    for i in 0..100 {
        let x = if i % 10 == 0 {
            "n/a".into()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("{x},{}\n", i % 2));
    }
    let t = table(&csv);
    assert!(
        PipelineConfig::new("y").infer_schema(&t).columns[0]
            .text_among_numbers
            .is_none()
    );
    // Few distinct numbers: categories were a fine reading anyway.
    let t = table("x,y\n1,0\n2,1\n1,0\n2,1\nlow,0\n1,1\n2,0\n1,1\n2,0\n1,1\n");
    assert!(FittedPipeline::fit(&t, &all(&t), &PipelineConfig::new("y")).is_ok());
}

/// Training rows from one source, then rows from another where `chol` is mostly missing,
/// `age` partly above the training range and `cp` partly a new category.
#[test]
fn drift_names_the_columns_that_differ_from_training() {
    let mut train = String::from("age,chol,cp,y\n");
    for i in 0..60 {
        train.push_str(&format!(
            "{},{},{},{}\n",
            40 + i % 20,
            200 + i,
            ["a", "b"][i % 2],
            i % 2
        ));
    }
    let train = table(&train);
    let p = FittedPipeline::fit(&train, &all(&train), &PipelineConfig::new("y")).unwrap();
    let profile = p.features()[0].training.clone().unwrap();
    assert_eq!(
        (profile.rows, profile.missing, profile.range),
        (60, 0, Some((40.0, 59.0)))
    );

    // The training rows themselves do not drift.
    assert_eq!(
        p.drift(&train, &all(&train)).unwrap().notes(),
        Vec::<String>::new()
    );

    let mut other = String::from("age,chol,cp\n");
    for i in 0..40 {
        let age = if i < 8 { 80 } else { 45 };
        let chol = if i < 36 { String::new() } else { "230".into() };
        let cp = if i < 4 { "z" } else { "a" };
        other.push_str(&format!("{age},{chol},{cp}\n"));
    }
    let other = table(&other);
    let drift = p.drift(&other, &all(&other)).unwrap();
    let chol = &drift.columns[1];
    assert_eq!((chol.rows, chol.missing), (40, 36));
    assert_eq!((drift.columns[0].above, drift.columns[2].unseen), (8, 4));
    let notes = drift.notes();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "drift: `age`: 8 of 40 values (20.0%) outside the training range 40 .. 59"
        )
    );
    assert!(
        notes[1].contains(
            "`chol`: 36 of 40 rows missing (90.0%; 0.0% in training), imputed with 229.5"
        ),
        "{notes:?}"
    );
    assert!(notes[2].contains("`cp`: 4 of 40 values (10.0%) are categories not seen in training"));
    assert!(notes[3].contains("3 of 3 columns differ"));
    assert!(notes[3].contains("36 missing cells in them were filled"));

    // Counts add up over requests, as a server keeps them.
    let mut total = p.drift(&other, &[0, 1]).unwrap();
    total.add(&p.drift(&other, &(2..40).collect::<Vec<_>>()).unwrap());
    assert_eq!(total, drift);

    // A pipeline saved before profiles were kept still flags a mostly missing column.
    let mut json: serde_json::Value = serde_json::to_value(&p).unwrap();
    for f in json["features"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("training");
    }
    let old: FittedPipeline = serde_json::from_value(json).unwrap();
    let notes = old.drift(&other, &all(&other)).unwrap().notes();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].contains("`chol`: 36 of 40 rows missing (90.0%; training share not recorded)")
    );
}

/// A table of thousands of constant columns: the error says what was left out in a few lines,
/// not one line per column.
#[test]
fn thousands_of_columns_left_out_are_summarised() {
    let n = 20_000;
    let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let row = vec!["7"; n].join(",");
    let t = table(&format!(
        "{},y\n{row},0\n{row},1\n{row},0\n",
        header.join(",")
    ));
    let err = FittedPipeline::fit(&t, &all(&t), &PipelineConfig::new("y")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "20000 constant column(s) left out: `c0`, `c1`, `c2`, `c3`, `c4` and 19995 more"
        ),
        "{}",
        &message[..message.len().min(500)]
    );
    assert!(message.len() < 300, "{} bytes", message.len());
}

/// A pipeline file edited by hand: a column taken out of `features` is named when the file is
/// read, not found later as a count of values that do not split into rows.
#[test]
fn a_pipeline_with_a_column_removed_names_it() {
    let t = table("age,cp,y\n40,a,0\n50,b,1\n60,a,0\n45,b,1\n");
    let p = FittedPipeline::fit(&t, &all(&t), &PipelineConfig::new("y")).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&p).unwrap();
    json["features"].as_array_mut().unwrap().remove(1);
    let err = serde_json::from_value::<FittedPipeline>(json)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the features make 1 model inputs, but feature_names lists 3; no feature makes `cp=a`, `cp=b`"),
        "{err}"
    );

    let mut json: serde_json::Value = serde_json::to_value(&p).unwrap();
    json["features"][0]["encoding"]["std"] = 0.0.into();
    let err = serde_json::from_value::<FittedPipeline>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("feature `age`: mean"), "{err}");
}
