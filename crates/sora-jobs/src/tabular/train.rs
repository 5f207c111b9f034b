//! Preparing a table (split, fitted pipeline) and training on it.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use sora_core::{CheckedSpec, HeadSpec, Identity, IdentitySpec, Model, ModelSpec, Task};
use sora_data::{
    ColumnKind, FittedPipeline, PipelineConfig, Schema, Split, Table, TargetRule, TargetValues,
    TaskKind, Transformed, balanced_class_weights, encode_target,
};
use sora_train::{Fitted, Metrics, ModelDir, TabularData, Targets, TrainConfig, TrainData};

use super::{
    ClassWeights, PIPELINE_FILE, TabularConfig, TabularError, TabularModel, default_hidden,
};
use crate::decision::{HeldOut, Scored};
use crate::kind::{RunContext, Trained};
use crate::{JobConfig, Result};

/// A finished run of the tabular job.
#[derive(Debug)]
pub struct TabularRun {
    /// The inferred schema of the file.
    pub schema: Schema,
    /// The pipeline fitted on the training rows.
    pub pipeline: FittedPipeline,
    /// The model's checked spec.
    pub spec: CheckedSpec,
    /// The trained model and its history.
    pub fitted: Fitted<Model<Identity>>,
    /// Metrics on the test rows (`None` for a model refitted on every row after
    /// cross-validation, which has none).
    pub test: Option<Metrics>,
    /// Table rows of each split.
    pub split: Split,
    /// Class weights used by the loss, if any.
    pub class_weights: Option<Vec<f32>>,
    /// The training config as run (with the class weights filled in).
    pub train_config: TrainConfig,
    /// Predictions of the validation and test rows.
    pub held_out: HeldOut,
}

/// The transformed rows as training data: classes or values, as the pipeline's task says.
pub(super) fn to_tabular(
    t: Transformed,
    n_classes: Option<usize>,
    source: (&str, &str),
) -> Result<TabularData> {
    let targets = match (t.targets, n_classes) {
        (Some(TargetValues::Classes(labels)), Some(n_classes)) => {
            Targets::Classes { labels, n_classes }
        }
        (Some(TargetValues::Values(values)), None) => Targets::Values { values, d: 1 },
        _ => {
            return Err(TabularError::NoTargets {
                file: source.0.to_string(),
                target: source.1.to_string(),
            }
            .into());
        }
    };
    Ok(TabularData::new(t.features, t.d, targets)?)
}

/// The data of a run, ready to train on: the schema, the split, the pipeline fitted on the
/// training rows, and each split transformed by it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The inferred schema of the file.
    pub schema: Schema,
    /// Table rows of each split.
    pub split: Split,
    /// The pipeline fitted on the training rows only.
    pub pipeline: FittedPipeline,
    /// Training rows, transformed.
    pub train: TabularData,
    /// Validation rows, transformed.
    pub valid: TabularData,
    /// Test rows, transformed.
    pub test: TabularData,
}

impl Prepared {
    /// Number of classes, for classification.
    pub fn n_classes(&self) -> Option<usize> {
        match self.pipeline.task() {
            TaskKind::Classification { n_classes } => Some(n_classes),
            TaskKind::Regression => None,
        }
    }

    /// The model's task.
    pub fn task(&self) -> Task {
        match self.n_classes() {
            Some(n) => Task::Classification {
                n_classes: n as i64,
            },
            None => Task::Regression { n_targets: 1 },
        }
    }

    /// Balanced class weights from the training rows, when `mode` asks for them.
    pub fn class_weights(&self, mode: ClassWeights) -> Option<Vec<f32>> {
        let (k, Targets::Classes { labels, .. }) = (self.n_classes()?, self.train.targets()) else {
            return None;
        };
        let counts = self.train.targets().class_counts().unwrap_or_default();
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        let min = counts.iter().copied().min().unwrap_or(0).max(1) as f64;
        let imbalanced = max / min > 1.5;
        match mode {
            ClassWeights::None => None,
            ClassWeights::Auto if !imbalanced => None,
            ClassWeights::Auto | ClassWeights::Balanced => Some(balanced_class_weights(labels, k)),
        }
    }
}

/// Refuses a target that looks like a row identifier, unless the target rule was chosen: a
/// text column whose values are all distinct (every row its own class), or whole numbers, all
/// distinct, that count up one by one (`1, 2, 3, …` in any order) or are named like an id.
fn check_target(table: &Table, schema: &Schema, config: &PipelineConfig) -> Result<()> {
    let Some(column) = schema.column(&config.target) else {
        return Ok(()); // encode_target names the missing column
    };
    if config.target_rule != TargetRule::Auto {
        return Ok(());
    }
    let present = schema.n_rows - column.n_missing;
    let distinct = column.n_distinct == present && present > sora_data::MAX_CLASSES_AUTO;
    let why = match column.numeric {
        _ if column.kind == ColumnKind::Identifier => Some(format!(
            "{present} values, all distinct{}",
            if column.numeric.is_some() {
                ", whole numbers, named like an id"
            } else {
                ""
            }
        )),
        Some(s) if distinct && s.all_integer && s.max - s.min + 1.0 == present as f64 => {
            Some(format!(
                "{present} whole numbers, all distinct, counting {} .. {}",
                s.min, s.max
            ))
        }
        _ => None,
    };
    match why {
        Some(why) => Err(TabularError::IdentifierTarget {
            file: table.source().to_string(),
            column: config.target.clone(),
            why,
            columns: table.headers().to_vec(),
        }
        .into()),
        None => Ok(()),
    }
}

/// Splits the rows (stratified by class, seeded), fits the pipeline on the training rows and
/// transforms every split. The target alone decides the split, before any statistic is
/// fitted, so nothing of the validation or test rows leaks into the pipeline.
pub fn prepare(table: &Table, config: &TabularConfig) -> Result<Prepared> {
    prepare_with(table, config, None)
}

/// [`prepare`] on fixed parts when `parts` is given (positions among the rows that have a
/// target, as cross-validation deals them), else on the seeded holdout. Fixed parts may leave
/// the test part empty (a model refitted on every row).
pub fn prepare_with(
    table: &Table,
    config: &TabularConfig,
    parts: Option<&Split>,
) -> Result<Prepared> {
    config.check()?;
    config.pipeline.validate(table)?;
    let schema = config.pipeline.infer_schema(table);
    check_target(table, &schema, &config.pipeline)?;
    let target = encode_target(table, &config.pipeline)?;
    let seed = config.train.seed;
    let positions = match (parts, &target.targets) {
        (Some(parts), _) => {
            crate::kind::check_parts(parts, target.rows.len())?;
            parts.clone()
        }
        (None, TargetValues::Classes(labels)) => config.holdout.stratified(labels, seed),
        (None, TargetValues::Values(values)) => config.holdout.random(values.len(), seed),
    };
    let split = positions.select(&target.rows);
    let pipeline = FittedPipeline::fit(table, &split.train, &config.pipeline)?;
    let n_classes = match pipeline.task() {
        TaskKind::Classification { n_classes } => Some(n_classes),
        TaskKind::Regression => None,
    };
    let source = (table.source(), pipeline.target());
    let train = to_tabular(pipeline.transform(table, &split.train)?, n_classes, source)?;
    let valid = to_tabular(pipeline.transform(table, &split.valid)?, n_classes, source)?;
    let test = to_tabular(pipeline.transform(table, &split.test)?, n_classes, source)?;
    // After every row is encoded: a bad cell is the error to name first.
    let labels = match &target.targets {
        TargetValues::Classes(labels) => Some(labels.as_slice()),
        TargetValues::Values(_) => None,
    };
    if parts.is_none() {
        config.holdout.require_parts(&positions, labels)?;
    }
    Ok(Prepared {
        schema,
        split,
        pipeline,
        train,
        valid,
        test,
    })
}

/// Runs the whole job on `table` (see the module docs).
pub fn train(table: &Table, config: &TabularConfig, device: &Device) -> Result<TabularRun> {
    let prepared = prepare(table, config)?;
    train_prepared(prepared, config, device)
}

/// The model for `prepared` data: `config.spec` if given (checked against the data's width
/// and task), else an MLP head of `config.hidden` or [`default_hidden`] widths.
pub fn model_spec(prepared: &Prepared, config: &TabularConfig) -> Result<CheckedSpec> {
    let d = prepared.train.d_features();
    let task = prepared.task();
    let spec = match &config.spec {
        Some(spec) => spec.clone(),
        None => ModelSpec::new(
            IdentitySpec::new(d),
            HeadSpec::new(&config.hidden.clone().unwrap_or_else(|| default_hidden(d)))
                .with_dropout(config.dropout),
            task,
        ),
    }
    .check()?;
    if spec.encoder_plan().d_features != d || spec.task() != task {
        return Err(TabularError::SpecMismatch {
            spec_inputs: spec.encoder_plan().d_features,
            spec_task: format!("{:?}", spec.task()),
            data_inputs: d,
            data_task: format!("{task:?}"),
        }
        .into());
    }
    Ok(spec)
}

/// Trains and evaluates on data [`prepare`]d with the same `config`, on one device.
pub fn train_prepared(
    prepared: Prepared,
    config: &TabularConfig,
    device: &Device,
) -> Result<TabularRun> {
    train_in(prepared, config, &RunContext::quiet(device.clone()))
}

/// Trains and evaluates in the run's context (its device and data-parallel setting).
pub(super) fn train_in(
    prepared: Prepared,
    config: &TabularConfig,
    ctx: &RunContext,
) -> Result<TabularRun> {
    let spec = model_spec(&prepared, config)?;
    let mut train_config = config.train.clone();
    if train_config.loss.class_weights.is_none() {
        train_config.loss.class_weights = prepared.class_weights(config.class_weights);
    }
    let trainer = ctx.trainer("train", train_config.clone())?;
    // A regression target is learned standardized, and predictions mapped back.
    let scale = prepared.pipeline.target_scale();
    let scaled = |part: &TabularData| -> Result<TabularData> {
        let Some(scale) = scale else {
            return Ok(part.clone());
        };
        let Targets::Values { values, d } = part.targets() else {
            return Ok(part.clone());
        };
        let mut values = values.clone();
        scale.scale(&mut values);
        Ok(TabularData::new(
            part.features().to_vec(),
            part.d_features(),
            Targets::Values { values, d: *d },
        )?)
    };
    let (train, valid) = (scaled(&prepared.train)?, scaled(&prepared.valid)?);
    let fitted = trainer.fit_or_resume(trainer.init(&spec), &train, Some(&valid))?;
    let score = |part: &TabularData| -> Result<Option<Scored>> {
        if part.is_empty() {
            return Ok(None);
        }
        let mut scored = Scored::of(&trainer, &fitted.model, part)?;
        if let Some(scale) = scale {
            scale.unscale(&mut scored.predictions);
        }
        Ok(Some(scored))
    };
    let mut held_out = HeldOut::parts(score(&prepared.valid)?, score(&prepared.test)?);
    held_out.classes = prepared.pipeline.classes().map(<[String]>::to_vec);
    let test = held_out.test.as_ref().map(Scored::metrics);
    Ok(TabularRun {
        schema: prepared.schema,
        pipeline: prepared.pipeline,
        spec,
        fitted,
        test,
        split: prepared.split,
        class_weights: train_config.loss.class_weights.clone(),
        train_config,
        held_out,
    })
}

impl TabularRun {
    /// The trained model with its pipeline, ready to predict or explain raw rows (the same
    /// as saving and loading it).
    pub fn to_model(&self, device: &Device) -> TabularModel {
        TabularModel::new(
            self.pipeline.clone(),
            self.fitted.model.clone(),
            self.spec.clone(),
            device,
        )
    }
}

impl Trained for TabularRun {
    fn report(&self) -> String {
        crate::outcome(
            self.fitted.best_epoch,
            self.fitted.history.epochs.len(),
            self.fitted.stopped_early,
            self.test.as_ref(),
            self.pipeline.classes(),
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        TabularRun::save(self, dir)
    }

    fn test_metrics(&self) -> Option<&Metrics> {
        self.test.as_ref()
    }

    fn held_out(&self) -> HeldOut {
        self.held_out.clone()
    }
}

impl TabularRun {
    /// Saves the model directory: manifest, spec, weights, pipeline, training config, test
    /// metrics, history and learning curves. An existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let pipeline = serde_json::to_vec_pretty(&self.pipeline).expect("pipeline serialises");
        let info =
            super::model::describe(&self.pipeline, &self.spec, self.fitted.model.num_params());
        ModelDir::new(dir).save(
            &info.manifest(),
            &self.spec,
            &self.fitted.model,
            &self.train_config,
            self.test.as_ref(),
            Some(&self.fitted.history),
            &[(PIPELINE_FILE, pipeline)],
        )?;
        Ok(())
    }
}
