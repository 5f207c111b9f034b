//! A tabular model read back from its directory, and its verbs.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use sora_core::{CheckedSpec, Identity, IdentitySpec, Model};
use sora_data::{FeatureEncoding, FittedPipeline, Table};
use sora_train::{Metrics, ModelDir, TabularData, Targets};

use super::train::to_tabular;
use super::{PIPELINE_FILE, Tabular, TabularError};
use crate::explain::{ExplainRequest, Explanation};
use crate::kind::Kind;
use crate::model::{
    Batch, ColumnType, Evaluation, Input, InputColumn, InputSchema, ModelInfo, OutputKind, Outputs,
    PREDICTION_BATCH, Rows,
};
use crate::{JobError, Result};

/// A tabular model read back from its directory.
#[derive(Debug)]
pub struct TabularModel {
    /// The fitted pipeline.
    pub pipeline: FittedPipeline,
    /// The model.
    pub model: Model<Identity>,
    /// The checked spec.
    pub spec: CheckedSpec,
    info: ModelInfo,
    device: Device,
}

/// Predictions for the rows of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePredictions {
    /// Table rows predicted (rows dropped by the pipeline are absent).
    pub rows: Vec<usize>,
    /// Per row: class probabilities (classification) or the value (regression).
    pub outputs: Vec<Vec<f32>>,
    /// Class names, for classification.
    pub classes: Option<Vec<String>>,
    /// Cells whose category the training data never had.
    pub unseen_categories: usize,
}

/// What a tabular model is: its columns, classes or value, summary.
pub(super) fn describe(
    pipeline: &FittedPipeline,
    spec: &CheckedSpec,
    parameters: usize,
) -> ModelInfo {
    let drops = pipeline.drops_missing_rows();
    let marker = pipeline.missing_markers().as_slice().first().cloned();
    let missing = |what: String| {
        if drops {
            "not accepted (the model was trained with rows with missing values dropped)".to_string()
        } else {
            what
        }
    };
    let columns = pipeline
        .features()
        .iter()
        .map(|f| {
            let (kind, categories, what) = match &f.encoding {
                FeatureEncoding::Numeric { impute, .. } => {
                    (ColumnType::Number, None, format!("imputed with {impute}"))
                }
                FeatureEncoding::Categorical { categories, impute } => (
                    ColumnType::Category,
                    Some(categories.clone()),
                    format!("imputed with {impute:?}"),
                ),
            };
            InputColumn {
                name: f.name.clone(),
                kind,
                categories,
                missing: missing(what),
                missing_marker: if drops { None } else { marker.clone() },
            }
        })
        .collect();
    let output = match pipeline.classes() {
        Some(classes) => OutputKind::Classes {
            classes: classes.to_vec(),
        },
        None => OutputKind::Values {
            names: vec![pipeline.target().to_string()],
        },
    };
    ModelInfo {
        kind: Tabular::NAME.to_string(),
        output,
        target: Some(pipeline.target().to_string()),
        input: InputSchema::Columns { columns },
        summary: spec.summary().to_string(),
        parameters,
    }
}

impl TabularModel {
    /// A model from its parts; it runs on `device`.
    pub fn new(
        pipeline: FittedPipeline,
        model: Model<Identity>,
        spec: CheckedSpec,
        device: &Device,
    ) -> Self {
        let info = describe(&pipeline, &spec, model.num_params());
        Self {
            pipeline,
            model,
            spec,
            info,
            device: device.clone(),
        }
    }

    /// Reads a model directory written by [`TabularRun::save`](super::TabularRun::save).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = ModelDir::new(dir);
        let loaded = model_dir.load::<IdentitySpec>(device)?;
        let pipeline: FittedPipeline =
            model_dir
                .read_json(PIPELINE_FILE)?
                .ok_or_else(|| TabularError::NoPipeline {
                    dir: dir.to_path_buf(),
                })?;
        if pipeline.feature_names().len() != loaded.spec.encoder_plan().d_features {
            return Err(TabularError::PipelineMismatch {
                dir: dir.to_path_buf(),
                pipeline: pipeline.feature_names().len(),
                spec: loaded.spec.encoder_plan().d_features,
            }
            .into());
        }
        Ok(Self::new(pipeline, loaded.model, loaded.spec, device))
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Predicts raw rows (missing values are imputed, unseen categories encode as zeros).
    pub fn predict(&self, table: &Table) -> Result<TablePredictions> {
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let t = self.pipeline.transform(table, &rows)?;
        let outputs = self.predict_inputs(t.features)?;
        Ok(TablePredictions {
            rows: t.rows,
            outputs,
            classes: self.pipeline.classes().map(<[String]>::to_vec),
            unseen_categories: t.unseen_categories,
        })
    }

    /// Predicts rows already turned into model inputs by the pipeline (row-major,
    /// [`FittedPipeline::d_input`] values per row): per row, class probabilities
    /// (classification) or the value (regression). [`predict`](Self::predict) is the
    /// pipeline's `transform` followed by this.
    pub fn predict_inputs(&self, features: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let d_out = self.spec.d_output();
        let flat = self.forward(features)?;
        Ok(flat.chunks(d_out).map(<[f32]>::to_vec).collect())
    }

    /// The model's outputs `[n, d_output]` row-major for pipeline outputs.
    fn forward(&self, features: Vec<f32>) -> Result<Vec<f32>> {
        let d = self.pipeline.d_input();
        let n = features.len() / d.max(1);
        let d_out = self.spec.d_output();
        let targets = if self.pipeline.classes().is_some() {
            Targets::Classes {
                labels: vec![0; n],
                n_classes: d_out,
            }
        } else {
            Targets::Values {
                values: vec![0.0; n * d_out],
                d: d_out,
            }
        };
        let data = TabularData::new(features, d, targets)?;
        let mut out = sora_train::predict(&self.model, &data, PREDICTION_BATCH, &self.device)?;
        if let Some(scale) = self.pipeline.target_scale() {
            scale.unscale(&mut out);
        }
        Ok(out)
    }

    /// Metrics on labelled rows.
    pub fn evaluate(&self, table: &Table) -> Result<Metrics> {
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let n_classes = self.pipeline.classes().map(<[String]>::len);
        let data = to_tabular(
            self.pipeline.transform(table, &rows)?,
            n_classes,
            (table.source(), self.pipeline.target()),
        )?;
        let scored = crate::decision::Scored {
            predictions: self.forward(data.features().to_vec())?,
            targets: sora_train::TrainData::targets(&data).clone(),
        };
        Ok(scored.metrics())
    }

    /// The batch of transformed rows of `table` ([`table_batch`]).
    fn batch(&self, table: &Table, t: sora_data::Transformed) -> Result<Batch> {
        table_batch(&self.pipeline, table, t)
    }
}

/// The batch of rows of `table` transformed by `pipeline` (`t`), keyed by their 1-based data
/// row, with notes on unseen categories and on drift from the training rows (over every row
/// of `table`): what a model over a fitted pipeline hands to `score`.
pub(crate) fn table_batch(
    pipeline: &FittedPipeline,
    table: &Table,
    t: sora_data::Transformed,
) -> Result<Batch> {
    let rows: Vec<usize> = (0..table.n_rows()).collect();
    let drift = pipeline.drift(table, &rows)?;
    let mut notes = Vec::new();
    if t.unseen_categories > 0 {
        notes.push(format!(
            "{} cells held categories not seen in training (encoded as none of the known ones)",
            t.unseen_categories
        ));
    }
    notes.extend(drift.notes());
    Ok(Batch {
        key: "row",
        // Rows are numbered from 1, the first data row (as `sora explain --rows` takes them).
        keys: t.rows.iter().map(|r| (r + 1).to_string()).collect(),
        rows: Rows::Dense {
            values: t.features,
            d: t.d,
        },
        notes,
        drift: Some(drift),
    })
}

impl crate::Model for TabularModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> Result<Batch> {
        let table = input.table(Tabular::NAME)?;
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        self.batch(&table, self.pipeline.transform(&table, &rows)?)
    }

    fn labelled(&self, input: &Input) -> Result<(Batch, sora_train::Targets)> {
        let table = input.table(Tabular::NAME)?;
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let t = self.pipeline.transform(&table, &rows)?;
        let n_classes = self.pipeline.classes().map(<[String]>::len);
        let data = to_tabular(
            t.clone(),
            n_classes,
            (table.source(), self.pipeline.target()),
        )?;
        Ok((
            self.batch(&table, t)?,
            sora_train::TrainData::targets(&data).clone(),
        ))
    }

    fn score(&self, batch: &Batch) -> Result<Outputs> {
        let Rows::Dense { values, .. } = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: Tabular::NAME.into(),
                expected: "rows of pipeline outputs".into(),
            });
        };
        let flat = self.forward(values.clone())?;
        Ok(match &self.info.output {
            OutputKind::Classes { classes } => Outputs::classes(classes.clone(), flat),
            OutputKind::Values { names } => Outputs::values(names.clone(), flat),
            _ => unreachable!("a tabular model outputs classes or values"),
        })
    }

    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let table = input.table(Tabular::NAME)?;
        let metrics = TabularModel::evaluate(self, &table)?;
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        Ok(Evaluation {
            notes: self.pipeline.drift(&table, &rows)?.notes(),
            ..crate::evaluation(&metrics, self.pipeline.classes(), table.n_rows())
        })
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        let table = input.table(Tabular::NAME)?;
        TabularModel::explain(self, &table, request)
    }
}
