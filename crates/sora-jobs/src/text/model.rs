//! A text model read back from its directory, and its verbs.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use sora_core::Model;
use sora_data::Table;
use sora_text::{TextEncoder, TextSpec};
use sora_train::{Metrics, ModelDir};

use super::{Result, SavedText, TEXT_FILE, Text, TextData, TextJobError, column};
use crate::JobError;
use crate::explain::{ExplainRequest, Explanation};
use crate::kind::Kind;
use crate::model::{
    Batch, ColumnType, Evaluation, Input, InputColumn, InputSchema, ModelInfo, OutputKind, Outputs,
    PREDICTION_BATCH, Rows,
};

/// What a text model is: its text column, classes and summary.
pub(super) fn describe(text: &SavedText, summary: &str, parameters: usize) -> ModelInfo {
    ModelInfo {
        kind: Text::NAME.to_string(),
        output: OutputKind::Classes {
            classes: text.classes.clone(),
        },
        target: Some(text.target_column.clone()),
        input: InputSchema::Columns {
            columns: vec![InputColumn {
                name: text.text_column.clone(),
                kind: ColumnType::Text,
                categories: None,
                missing: "not accepted".into(),
                missing_marker: None,
            }],
        },
        summary: summary.to_string(),
        parameters,
    }
}

/// A text model read back from its directory.
#[derive(Debug, Clone)]
pub struct TextModel {
    /// The text side.
    pub text: SavedText,
    /// The model.
    pub model: Model<TextEncoder>,
    /// The checked spec's summary: layers, output shapes, parameters.
    pub summary: String,
    info: ModelInfo,
    device: Device,
}

impl TextModel {
    /// A model from its parts, running on `device`.
    pub fn new(
        text: SavedText,
        model: Model<TextEncoder>,
        summary: String,
        device: &Device,
    ) -> Self {
        let info = describe(&text, &summary, model.num_params());
        Self {
            text,
            model,
            summary,
            info,
            device: device.clone(),
        }
    }

    /// Reads a model directory written by [`TextRun::save`](super::TextRun::save).
    pub fn load(dir: &Path, device: &Device) -> Result<TextModel> {
        let model_dir = ModelDir::new(dir);
        let text: SavedText =
            model_dir
                .read_json(TEXT_FILE)?
                .ok_or_else(|| TextJobError::NoTextFile {
                    dir: dir.to_path_buf(),
                })?;
        let loaded = model_dir.load::<TextSpec>(device)?;
        let spec = &loaded.spec.spec().encoder;
        if spec.vocab_size != text.vocabulary.len() as i64 || spec.seq_len != text.seq_len as i64 {
            return Err(TextJobError::TextMismatch {
                dir: dir.to_path_buf(),
                tokens: text.vocabulary.len(),
                seq_len: text.seq_len,
                spec_tokens: spec.vocab_size,
                spec_seq_len: spec.seq_len,
            });
        }
        let summary = loaded.spec.summary().to_string();
        Ok(Self::new(text, loaded.model, summary, device))
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Reads the model's text column (and its label column, when `labelled`) from a CSV
    /// file; labels are mapped onto the model's classes.
    pub fn load_csv(&self, path: &Path, labelled: bool) -> Result<TextData> {
        self.load_table(&Table::read_csv(path)?, labelled)
    }

    /// [`load_csv`](Self::load_csv) of a table already read (a request's rows).
    pub fn load_table(&self, table: &Table, labelled: bool) -> Result<TextData> {
        let table = table.clone();
        let text_col = column(&table, &self.text.text_column)?;
        let texts: Vec<String> = table.column(text_col).map(str::to_string).collect();
        let mut labels = Vec::new();
        if labelled {
            let col = column(&table, &self.text.target_column)?;
            for (row, label) in table.column(col).enumerate() {
                let label = label.trim();
                let class = self
                    .text
                    .classes
                    .iter()
                    .position(|c| c == label)
                    .ok_or_else(|| TextJobError::UnknownClass {
                        file: table.source().to_string(),
                        row: row + 1,
                        label: label.to_string(),
                        classes: self.text.classes.clone(),
                    })?;
                labels.push(class);
            }
        }
        Ok(TextData {
            texts,
            labels,
            classes: if labelled {
                self.text.classes.clone()
            } else {
                Vec::new()
            },
            source: table.source().to_string(),
        })
    }

    /// Class probabilities `[n, classes]` row-major for raw documents.
    pub fn predict(&self, texts: &[String]) -> Result<Vec<f32>> {
        let data = self.text.encode(texts, &[])?;
        Ok(sora_train::predict(
            &self.model,
            &data,
            PREDICTION_BATCH,
            &self.device,
        )?)
    }

    /// Metrics on labelled documents (labels are class indices of the model).
    pub fn evaluate(&self, texts: &[String], labels: &[usize]) -> Result<Metrics> {
        let data = self.text.encode(texts, labels)?;
        Ok(sora_train::evaluate(
            &self.model,
            &data,
            PREDICTION_BATCH,
            &self.device,
        )?)
    }
}

impl crate::Model for TextModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> crate::Result<Batch> {
        let docs = self.load_table(&input.table(Text::NAME)?, false)?;
        Ok(Batch {
            key: "row",
            // Rows are numbered from 1, the first data row (as for tables).
            keys: (1..=docs.len()).map(|r| r.to_string()).collect(),
            rows: Rows::Texts(docs.texts),
            notes: Vec::new(),
            drift: None,
        })
    }

    fn score(&self, batch: &Batch) -> crate::Result<Outputs> {
        let Rows::Texts(texts) = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: Text::NAME.into(),
                expected: "documents".into(),
            });
        };
        Ok(Outputs::classes(
            self.text.classes.clone(),
            TextModel::predict(self, texts)?,
        ))
    }

    fn labelled(&self, input: &Input) -> crate::Result<(Batch, sora_train::Targets)> {
        let docs = self.load_table(&input.table(Text::NAME)?, true)?;
        let targets = sora_train::Targets::Classes {
            labels: docs.labels.clone(),
            n_classes: self.text.classes.len(),
        };
        let batch = Batch {
            key: "row",
            keys: (1..=docs.len()).map(|r| r.to_string()).collect(),
            rows: Rows::Texts(docs.texts),
            notes: Vec::new(),
            drift: None,
        };
        Ok((batch, targets))
    }

    fn evaluate(&self, input: &Input) -> crate::Result<Evaluation> {
        let docs = self.load_table(&input.table(Text::NAME)?, true)?;
        let metrics = TextModel::evaluate(self, &docs.texts, &docs.labels)?;
        Ok(crate::evaluation(
            &metrics,
            Some(&self.text.classes),
            docs.len(),
        ))
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> crate::Result<Explanation> {
        let docs = self.load_table(&input.table(Text::NAME)?, false)?;
        let rows = request.rows(docs.len())?;
        self.explain_texts(&docs.subset(&rows), &rows, request)
    }
}
