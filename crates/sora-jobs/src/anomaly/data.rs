//! Which rows are normal, the pipeline fitted on the normal training rows, and the model
//! inputs of any rows.

use std::collections::BTreeMap;

use sora_data::{FittedPipeline, PipelineConfig, Table, TargetRule};
use sora_train::{TabularData, Targets};

use super::AnomalyError;
use crate::Result;

/// The column the pipeline is fitted with as its target: the pipeline needs one, and an
/// autoencoder has none. Its cells alternate `0`, `1` over the training rows (two classes,
/// so that fitting accepts it) and are missing elsewhere; the fitted pipeline never sees it
/// again, as no file to predict has it.
const FIT_TARGET: &str = "__sora_anomaly_fit__";

/// What each row of a table is to a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowLabel {
    /// The label column holds the normal value (or there is no label column).
    Normal,
    /// The label column holds another value.
    Anomaly,
    /// The label cell is missing: the row is left out.
    Unlabelled,
}

/// Whether `cell` is the normal value `normal`: the same text, or the same number (`1.0`
/// and `1`).
pub(super) fn is_normal_value(cell: &str, normal: &str) -> bool {
    if cell == normal {
        return true;
    }
    match (cell.parse::<f64>(), normal.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.is_finite() && a == b,
        _ => false,
    }
}

/// The distinct values of column `col` with their counts, for messages (at most 12 listed).
pub(super) fn value_counts(table: &Table, col: usize) -> String {
    let mut counts = BTreeMap::<&str, usize>::new();
    for cell in table.column(col) {
        *counts.entry(cell).or_default() += 1;
    }
    let mut listed: Vec<String> = counts
        .iter()
        .take(12)
        .map(|(v, n)| format!("{v} ({n} rows)"))
        .collect();
    if counts.len() > 12 {
        listed.push(format!("and {} more", counts.len() - 12));
    }
    listed.join(", ")
}

/// The label of every row of `table`: by the `target` column's value against `normal`, or
/// every row normal without a label column. The column must be in the table; missing cells
/// (by `markers`) are unlabelled.
pub(super) fn row_labels(
    table: &Table,
    target: Option<&str>,
    normal: Option<&str>,
    markers: &sora_data::MissingMarkers,
) -> Result<Vec<RowLabel>> {
    let (Some(target), Some(normal)) = (target, normal) else {
        return Ok(vec![RowLabel::Normal; table.n_rows()]);
    };
    let col = table
        .column_index(target)
        .ok_or_else(|| AnomalyError::NoLabelColumn {
            file: table.source().to_string(),
            target: target.to_string(),
            columns: table.headers().to_vec(),
        })?;
    Ok(table
        .column(col)
        .map(|cell| {
            if markers.is_missing(cell) {
                RowLabel::Unlabelled
            } else if is_normal_value(cell, normal) {
                RowLabel::Normal
            } else {
                RowLabel::Anomaly
            }
        })
        .collect())
}

/// Fits `config`'s pipeline on `rows` of `table` as inputs only, leaving out the label
/// column `label` (see [`FIT_TARGET`]).
pub(super) fn fit_pipeline(
    table: &Table,
    rows: &[usize],
    config: &PipelineConfig,
    label: Option<&str>,
) -> Result<FittedPipeline> {
    let mut fit_target = FIT_TARGET.to_string();
    while table.column_index(&fit_target).is_some() {
        fit_target.push('_');
    }
    let mut headers = table.headers().to_vec();
    headers.push(fit_target.clone());
    let mut in_training = vec![None; table.n_rows()];
    for (i, &r) in rows.iter().enumerate() {
        in_training[r] = Some(i % 2);
    }
    let missing = config.missing_markers.first().cloned().unwrap_or_default();
    let cells: Vec<Vec<String>> = (0..table.n_rows())
        .map(|r| {
            let mut row: Vec<String> = (0..table.n_cols())
                .map(|c| table.cell(r, c).to_string())
                .collect();
            row.push(in_training[r].map_or(missing.clone(), |c| c.to_string()));
            row
        })
        .collect();
    let fitting = Table::from_rows(table.source(), headers, cells)?;
    let mut config = config.clone();
    config.target = fit_target;
    config.target_rule = TargetRule::Classes;
    if let Some(label) = label
        && !config.ignore.iter().any(|c| c == label)
    {
        config.ignore.push(label.to_string());
    }
    Ok(FittedPipeline::fit(&fitting, rows, &config)?)
}

/// Model inputs as autoencoder data: each row's target is the row itself.
pub(super) fn reconstruction_data(features: Vec<f32>, d: usize) -> Result<TabularData> {
    let targets = Targets::Values {
        values: features.clone(),
        d,
    };
    Ok(TabularData::new(features, d, targets)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_values_match_as_text_or_as_numbers() {
        assert!(is_normal_value("1", "1"));
        assert!(is_normal_value("1.0", "1"));
        assert!(is_normal_value("benign", "benign"));
        assert!(!is_normal_value("0", "1"));
        assert!(!is_normal_value("Benign", "benign"));
        assert!(!is_normal_value("NaN", "1"));
    }

    /// The pipeline is fitted on the training rows only, without the label column, and
    /// applies to files that have neither the label column nor the fitting target.
    #[test]
    fn the_pipeline_is_fitted_on_training_rows_without_the_label() {
        let csv = "x,colour,label\n1,red,ok\n3,blue,ok\n5,red,ok\n100,green,bad\n";
        let table = Table::from_reader(csv.as_bytes(), "toy.csv").unwrap();
        let pipeline =
            fit_pipeline(&table, &[0, 1, 2], &PipelineConfig::new(""), Some("label")).unwrap();
        assert_eq!(pipeline.feature_names(), ["x", "colour=blue", "colour=red"]);
        let features = pipeline.features();
        let sora_data::FeatureEncoding::Numeric { mean, .. } = &features[0].encoding else {
            panic!("x is numeric")
        };
        assert_eq!(*mean, 3.0, "the anomaly row's 100 is not in the mean");
        let request = Table::from_reader("x,colour\n3,red\n".as_bytes(), "request").unwrap();
        let t = pipeline.transform(&request, &[0]).unwrap();
        assert_eq!(t.features, [0.0, 0.0, 1.0]);
        assert!(t.targets.is_none());
    }
}
