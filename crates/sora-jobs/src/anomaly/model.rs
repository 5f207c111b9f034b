//! An anomaly model read back from its directory, and its verbs.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use sora_core::{CheckedSpec, Identity, IdentitySpec, Model};
use sora_data::{FeatureEncoding, FittedPipeline, Table};
use sora_train::{ModelDir, Targets};

use super::data::{RowLabel, reconstruction_data, row_labels};
use super::detector::{Detector, Evaluated, probability};
use super::train::row_errors;
use super::{Anomaly, AnomalyError, CLASSES, DETECTOR_FILE, PIPELINE_FILE};
use crate::explain::{ExplainRequest, Explanation};
use crate::kind::Kind;
use crate::model::{
    Batch, ColumnType, Evaluation, Input, InputColumn, InputSchema, ModelInfo, OutputKind, Outputs,
    PREDICTION_BATCH, Rows,
};
use crate::{JobError, Result};

/// An anomaly model read back from its directory.
#[derive(Debug)]
pub struct AnomalyModel {
    /// The pipeline fitted on the normal training rows.
    pub pipeline: FittedPipeline,
    /// The autoencoder.
    pub model: Model<Identity>,
    /// Its checked spec.
    pub spec: CheckedSpec,
    /// The threshold and what the labels are.
    pub detector: Detector,
    info: ModelInfo,
    device: Device,
}

/// What an anomaly model is: its columns, its two classes, its summary.
pub(super) fn describe(
    pipeline: &FittedPipeline,
    spec: &CheckedSpec,
    detector: &Detector,
    parameters: usize,
) -> ModelInfo {
    let drops = pipeline.drops_missing_rows();
    let marker = pipeline.missing_markers().as_slice().first().cloned();
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
                missing: if drops {
                    "not accepted (the model was trained with rows with missing values dropped)"
                        .to_string()
                } else {
                    what
                },
                missing_marker: if drops { None } else { marker.clone() },
            }
        })
        .collect();
    ModelInfo {
        kind: Anomaly::NAME.to_string(),
        output: OutputKind::Classes {
            classes: CLASSES.map(String::from).to_vec(),
        },
        target: detector.target.clone(),
        input: InputSchema::Columns { columns },
        summary: format!(
            "autoencoder over {} model inputs; anomaly when {} ≥ {:.6} (p_anomaly = score / \
             (score + threshold) ≥ 0.5)\n\n{}",
            pipeline.d_input(),
            detector.score,
            detector.threshold,
            spec.summary()
        ),
        parameters,
    }
}

impl AnomalyModel {
    /// Reads a model directory written by [`AnomalyRun`](super::AnomalyRun)'s `save`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = ModelDir::new(dir);
        let loaded = model_dir.load::<IdentitySpec>(device)?;
        let no_detector = || AnomalyError::NoDetector {
            dir: dir.to_path_buf(),
        };
        let pipeline: FittedPipeline = model_dir
            .read_json(PIPELINE_FILE)?
            .ok_or_else(no_detector)?;
        let detector: Detector = model_dir
            .read_json(DETECTOR_FILE)?
            .ok_or_else(no_detector)?;
        let d = pipeline.d_input();
        if d != loaded.spec.encoder_plan().d_features || d != loaded.spec.d_output() {
            return Err(AnomalyError::PipelineMismatch {
                dir: dir.to_path_buf(),
                pipeline: d,
                spec: loaded.spec.encoder_plan().d_features,
            }
            .into());
        }
        let info = describe(
            &pipeline,
            &loaded.spec,
            &detector,
            loaded.model.num_params(),
        );
        Ok(Self {
            pipeline,
            model: loaded.model,
            spec: loaded.spec,
            detector,
            info,
            device: device.clone(),
        })
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The autoencoder's reconstruction of pipeline outputs (row-major, `d` per row).
    pub fn reconstruct(&self, features: &[f32]) -> Result<Vec<f32>> {
        let data = reconstruction_data(features.to_vec(), self.pipeline.d_input())?;
        Ok(sora_train::predict(
            &self.model,
            &data,
            PREDICTION_BATCH,
            &self.device,
        )?)
    }

    /// The anomaly score of each row of pipeline outputs: its mean squared reconstruction
    /// error.
    pub fn scores(&self, features: &[f32]) -> Result<Vec<f32>> {
        let outputs = self.reconstruct(features)?;
        Ok(row_errors(features, &outputs, self.pipeline.d_input()))
    }

    /// The outputs of scores: `p_anomaly = s / (s + t)` and the label `s ≥ t`.
    pub fn outputs(&self, scores: &[f32]) -> Outputs {
        let t = self.detector.threshold;
        let mut probabilities = Vec::with_capacity(scores.len() * 2);
        for &s in scores {
            let p = probability(s, t);
            probabilities.extend([1.0 - p, p]);
        }
        Outputs::Classes {
            classes: CLASSES.map(String::from).to_vec(),
            probabilities,
            labels: Some(scores.iter().map(|&s| usize::from(s >= t)).collect()),
            sets: None,
        }
    }

    /// The batch of transformed rows of `table`, as the tabular kind makes it.
    fn batch(&self, table: &Table, t: sora_data::Transformed) -> Result<Batch> {
        crate::tabular::table_batch(&self.pipeline, table, t)
    }

    /// The labelled rows of `table` (normal or anomaly by the training label column and
    /// normal value; rows without a label left out), transformed, with whether each is an
    /// anomaly.
    fn labelled_rows(&self, table: &Table) -> Result<(Batch, Vec<bool>)> {
        let (Some(target), Some(normal)) = (&self.detector.target, &self.detector.normal) else {
            return Err(AnomalyError::NoLabels.into());
        };
        let labels = row_labels(
            table,
            Some(target),
            Some(normal),
            self.pipeline.missing_markers(),
        )?;
        let rows: Vec<usize> = (0..table.n_rows())
            .filter(|&r| labels[r] != RowLabel::Unlabelled)
            .collect();
        let t = self.pipeline.transform(table, &rows)?;
        let is_anomaly = t
            .rows
            .iter()
            .map(|&r| labels[r] == RowLabel::Anomaly)
            .collect();
        let mut batch = self.batch(table, t)?;
        let left_out = table.n_rows() - rows.len();
        if left_out > 0 {
            batch.notes.push(format!(
                "{left_out} rows without a `{target}` value left out"
            ));
        }
        Ok((batch, is_anomaly))
    }

    /// How the detector fares on the labelled rows of `table`.
    pub fn evaluate_table(&self, table: &Table) -> Result<(Evaluated, Vec<String>)> {
        let (batch, is_anomaly) = self.labelled_rows(table)?;
        let Rows::Dense { values, .. } = &batch.rows else {
            unreachable!("batches of tables are dense")
        };
        let scores = self.scores(values)?;
        // The batch's notes hold its drift's already.
        Ok((
            Evaluated::compute(&scores, &is_anomaly, self.detector.threshold),
            batch.notes,
        ))
    }
}

impl crate::Model for AnomalyModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> Result<Batch> {
        let table = input.table(Anomaly::NAME)?;
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        self.batch(&table, self.pipeline.transform(&table, &rows)?)
    }

    fn score(&self, batch: &Batch) -> Result<Outputs> {
        let Rows::Dense { values, .. } = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: Anomaly::NAME.into(),
                expected: "rows of pipeline outputs".into(),
            });
        };
        Ok(self.outputs(&self.scores(values)?))
    }

    /// The labelled rows, with targets `0` (normal) and `1` (anomaly), the classes' order.
    fn labelled(&self, input: &Input) -> Result<(Batch, Targets)> {
        let table = input.table(Anomaly::NAME)?;
        let (batch, is_anomaly) = self.labelled_rows(&table)?;
        let labels = is_anomaly.into_iter().map(usize::from).collect();
        Ok((
            batch,
            Targets::Classes {
                labels,
                n_classes: 2,
            },
        ))
    }

    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let table = input.table(Anomaly::NAME)?;
        let (evaluated, notes) = self.evaluate_table(&table)?;
        Ok(Evaluation {
            n: evaluated.normal + evaluated.anomalies,
            report: evaluated.report(&format!("rows of {}", table.source()), self.detector.fpr),
            scores: evaluated.scores(),
            notes,
        })
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        let table = input.table(Anomaly::NAME)?;
        AnomalyModel::explain(self, &table, request)
    }
}
