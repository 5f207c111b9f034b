//! The main job: a CSV file and a target column in; a trained, evaluated, saved model out.
//!
//! [`train`] infers the schema, splits the rows (stratified for classification), fits the
//! data pipeline on the training rows only, sizes an MLP from the data, trains it with early
//! stopping on the validation rows and evaluates it on the test rows. [`TabularModel`] is that
//! model read back from its directory, ready to [`predict`](TabularModel::predict) raw rows.

use std::path::Path;

use burn::tensor::Device;
use sora_core::{CheckedSpec, HeadSpec, Identity, IdentitySpec, Model, ModelSpec, Task};
use sora_data::{
    FittedPipeline, PipelineConfig, Schema, Split, Table, TargetValues, TaskKind, Transformed,
    balanced_class_weights, encode_target, random_split, stratified_split,
};
use sora_train::{
    Fitted, Metrics, ModelDir, Parallel, TabularData, Targets, TrainConfig, TrainData, TrainError,
    Trainer,
};

/// File name of the fitted pipeline inside a model directory.
pub const PIPELINE_FILE: &str = "pipeline.json";

/// Why the tabular job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TabularError {
    /// Reading or preparing the data failed.
    #[error(transparent)]
    Data(#[from] sora_data::DataError),
    /// Training, evaluation or the model directory failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The model spec is invalid.
    #[error(transparent)]
    Spec(#[from] sora_core::SpecError),
    /// The options do not fit the data.
    #[error("{0}")]
    Options(String),
}

/// Default maximum epochs of the tabular job (early stopping usually ends sooner).
pub const DEFAULT_EPOCHS: usize = 200;
/// Default samples per step.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Default learning rate (SGD with momentum 0.9).
pub const DEFAULT_LR: f64 = 0.01;
/// Default early-stopping patience, in epochs.
pub const DEFAULT_PATIENCE: usize = 15;
/// Smallest decrease of the validation loss that counts as an improvement.
pub const EARLY_STOPPING_MIN_DELTA: f64 = 1e-4;

/// When to weight the classes of the cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassWeights {
    /// Balanced weights when the largest class has more than 1.5× the samples of the smallest.
    #[default]
    Auto,
    /// Always balanced weights (`n / (k · n_c)`, from the training rows).
    Balanced,
    /// No weights.
    None,
}

/// Everything [`train`] needs besides the table.
#[derive(Debug, Clone)]
pub struct TabularConfig {
    /// Target, missing values, encodings.
    pub pipeline: PipelineConfig,
    /// Hidden widths; `None` sizes them from the data (see [`default_hidden`]).
    pub hidden: Option<Vec<usize>>,
    /// A whole model spec to use instead of the default head (its widths must fit the data).
    pub spec: Option<ModelSpec>,
    /// The training loop's configuration.
    pub train: TrainConfig,
    /// Fraction of the rows held out for validation (early stopping).
    pub valid_fraction: f64,
    /// Fraction of the rows held out for the final test.
    pub test_fraction: f64,
    /// Class weighting.
    pub class_weights: ClassWeights,
    /// Data-parallel training over several devices or processes (none by default).
    pub parallel: Parallel,
}

impl TabularConfig {
    /// Defaults for `target`: SGD with momentum 0.9, learning rate 0.01, batch 32, up to 200
    /// epochs with early stopping (patience 15) on a 15 % validation split, 20 % test split.
    pub fn new(target: &str) -> Self {
        Self {
            pipeline: PipelineConfig::new(target),
            hidden: None,
            spec: None,
            train: TrainConfig::new(DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE, DEFAULT_LR)
                .with_early_stopping(DEFAULT_PATIENCE, EARLY_STOPPING_MIN_DELTA),
            valid_fraction: 0.15,
            test_fraction: 0.2,
            class_weights: ClassWeights::Auto,
            parallel: Parallel::None,
        }
    }
}

/// Hidden widths sized from the number of model inputs `d`: two layers, the first the next
/// power of two of `2·d` clamped to [32, 256], the second half of it.
pub fn default_hidden(d: usize) -> Vec<usize> {
    let h = (2 * d).next_power_of_two().clamp(32, 256);
    vec![h, h / 2]
}

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
    /// Metrics on the test rows.
    pub test: Metrics,
    /// Table rows of each split.
    pub split: Split,
    /// Class weights used by the loss, if any.
    pub class_weights: Option<Vec<f32>>,
    /// The training config as run (with the class weights filled in).
    pub train_config: TrainConfig,
}

fn to_tabular(t: Transformed, n_classes: Option<usize>) -> Result<TabularData, TabularError> {
    let targets = match (t.targets, n_classes) {
        (Some(TargetValues::Classes(labels)), Some(n_classes)) => {
            Targets::Classes { labels, n_classes }
        }
        (Some(TargetValues::Values(values)), None) => Targets::Values { values, d: 1 },
        _ => {
            return Err(TabularError::Options(
                "the data has no target values".into(),
            ));
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

/// Splits the rows (stratified by class, seeded), fits the pipeline on the training rows and
/// transforms every split. The target alone decides the split, before any statistic is
/// fitted, so nothing of the validation or test rows leaks into the pipeline.
pub fn prepare(table: &Table, config: &TabularConfig) -> Result<Prepared, TabularError> {
    config.pipeline.validate(table)?;
    let schema = config.pipeline.infer_schema(table);
    for (name, fraction) in [
        ("valid_fraction", config.valid_fraction),
        ("test_fraction", config.test_fraction),
    ] {
        if !(fraction > 0.0 && fraction < 0.5) {
            return Err(TabularError::Options(format!(
                "{name}: expected a fraction in (0, 0.5), found {fraction}"
            )));
        }
    }
    let target = encode_target(table, &config.pipeline)?;
    let seed = config.train.seed;
    let positions = match &target.targets {
        TargetValues::Classes(labels) => {
            stratified_split(labels, config.valid_fraction, config.test_fraction, seed)
        }
        TargetValues::Values(values) => random_split(
            values.len(),
            config.valid_fraction,
            config.test_fraction,
            seed,
        ),
    };
    let split = positions.select(&target.rows);
    let pipeline = FittedPipeline::fit(table, &split.train, &config.pipeline)?;
    let n_classes = match pipeline.task() {
        TaskKind::Classification { n_classes } => Some(n_classes),
        TaskKind::Regression => None,
    };
    let train = to_tabular(pipeline.transform(table, &split.train)?, n_classes)?;
    let valid = to_tabular(pipeline.transform(table, &split.valid)?, n_classes)?;
    let test = to_tabular(pipeline.transform(table, &split.test)?, n_classes)?;
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
pub fn train(
    table: &Table,
    config: &TabularConfig,
    device: &Device,
) -> Result<TabularRun, TabularError> {
    let prepared = prepare(table, config)?;
    train_prepared(prepared, config, device)
}

/// The model for `prepared` data: `config.spec` if given (checked against the data's width
/// and task), else an MLP head of `config.hidden` or [`default_hidden`] widths.
pub fn model_spec(
    prepared: &Prepared,
    config: &TabularConfig,
) -> Result<CheckedSpec, TabularError> {
    let d = prepared.train.d_features();
    let task = prepared.task();
    let spec = match &config.spec {
        Some(spec) => spec.clone(),
        None => ModelSpec::new(
            IdentitySpec::new(d),
            HeadSpec::new(&config.hidden.clone().unwrap_or_else(|| default_hidden(d))),
            task,
        ),
    }
    .check()?;
    if spec.encoder_plan().d_features != d || spec.task() != task {
        return Err(TabularError::Options(format!(
            "the model spec takes {} inputs for {:?}, but the data gives {d} inputs for {task:?}",
            spec.encoder_plan().d_features,
            spec.task()
        )));
    }
    Ok(spec)
}

/// Trains and evaluates on data [`prepare`]d with the same `config`.
pub fn train_prepared(
    prepared: Prepared,
    config: &TabularConfig,
    device: &Device,
) -> Result<TabularRun, TabularError> {
    let spec = model_spec(&prepared, config)?;
    let mut train_config = config.train.clone();
    if train_config.loss.class_weights.is_none() {
        train_config.loss.class_weights = prepared.class_weights(config.class_weights);
    }
    let trainer =
        Trainer::new(train_config.clone(), device).with_parallel(config.parallel.clone())?;
    let fitted = trainer.fit(trainer.init(&spec), &prepared.train, Some(&prepared.valid))?;
    let test = trainer.evaluate(&fitted.model, &prepared.test)?;
    Ok(TabularRun {
        schema: prepared.schema,
        pipeline: prepared.pipeline,
        spec,
        fitted,
        test,
        split: prepared.split,
        class_weights: train_config.loss.class_weights.clone(),
        train_config,
    })
}

/// The reference every tabular example is measured against: L2-regularised logistic
/// regression (scikit-learn's `LogisticRegression(C=1)` objective: mean cross-entropy plus
/// `‖w‖² / (2·C·n)`) on the same split and the same fitted pipeline. It is a Sora model with
/// no hidden layer, trained full-batch with Adam (lr 0.05, 500 epochs) — enough for the
/// convex objective to converge on these data sets (the bias is penalised too, unlike
/// scikit-learn's intercept). Returns the test metrics.
pub fn logistic_regression(
    prepared: &Prepared,
    seed: u64,
    device: &Device,
) -> Result<Metrics, TabularError> {
    let n_classes = prepared.n_classes().ok_or_else(|| {
        TabularError::Options("logistic regression needs a classification target".into())
    })?;
    let spec = ModelSpec::new(
        IdentitySpec::new(prepared.train.d_features()),
        HeadSpec::new(&[]),
        Task::Classification {
            n_classes: n_classes as i64,
        },
    )
    .check()?;
    let n = prepared.train.len();
    let config = TrainConfig::new(500, n, 0.05)
        .with_seed(seed)
        .with_optimizer(sora_train::OptimizerConfig::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1.0 / n as f64,
        })
        .with_progress(sora_train::Progress::Quiet);
    let trainer = Trainer::new(config, device);
    let fitted = trainer.fit(trainer.init(&spec), &prepared.train, None)?;
    Ok(trainer.evaluate(&fitted.model, &prepared.test)?)
}

impl TabularRun {
    /// The trained model with its pipeline, ready to predict or explain raw rows (the same
    /// as saving and loading it).
    pub fn to_model(&self, device: &Device) -> TabularModel {
        TabularModel {
            pipeline: self.pipeline.clone(),
            model: self.fitted.model.clone(),
            spec: self.spec.clone(),
            device: device.clone(),
        }
    }

    /// Saves the model directory: spec, weights, pipeline, training config, test metrics,
    /// history and learning curves. An existing directory is replaced only once everything
    /// has been written.
    pub fn save(&self, dir: &Path) -> Result<(), TabularError> {
        let pipeline = serde_json::to_vec_pretty(&self.pipeline).expect("pipeline serialises");
        ModelDir::new(dir).save(
            &self.spec,
            &self.fitted.model,
            &self.train_config,
            Some(&self.test),
            Some(&self.fitted.history),
            &[(PIPELINE_FILE, pipeline)],
        )?;
        Ok(())
    }
}

/// A tabular model read back from its directory.
#[derive(Debug)]
pub struct TabularModel {
    /// The fitted pipeline.
    pub pipeline: FittedPipeline,
    /// The model.
    pub model: Model<Identity>,
    /// The checked spec.
    pub spec: CheckedSpec,
    device: Device,
}

/// Predictions for the rows of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Table rows predicted (rows dropped by the pipeline are absent).
    pub rows: Vec<usize>,
    /// Per row: class probabilities (classification) or the value (regression).
    pub outputs: Vec<Vec<f32>>,
    /// Class names, for classification.
    pub classes: Option<Vec<String>>,
    /// Cells whose category the training data never had.
    pub unseen_categories: usize,
}

impl TabularModel {
    /// Reads a model directory written by [`TabularRun::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TabularError> {
        let model_dir = ModelDir::new(dir);
        let loaded = model_dir.load::<IdentitySpec>(device)?;
        let pipeline: FittedPipeline = model_dir.read_json(PIPELINE_FILE)?.ok_or_else(|| {
            TabularError::Options(format!(
                "{}: no {PIPELINE_FILE}: not a tabular model directory",
                dir.display()
            ))
        })?;
        if pipeline.feature_names().len() != loaded.spec.encoder_plan().d_features {
            return Err(TabularError::Options(format!(
                "{}: {PIPELINE_FILE} produces {} inputs but spec.json takes {}",
                dir.display(),
                pipeline.feature_names().len(),
                loaded.spec.encoder_plan().d_features
            )));
        }
        Ok(Self {
            pipeline,
            model: loaded.model,
            spec: loaded.spec,
            device: device.clone(),
        })
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Predicts raw rows (missing values are imputed, unseen categories encode as zeros).
    pub fn predict(&self, table: &Table) -> Result<Predictions, TabularError> {
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let t = self.pipeline.transform(table, &rows)?;
        let outputs = self.predict_inputs(t.features)?;
        Ok(Predictions {
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
    pub fn predict_inputs(&self, features: Vec<f32>) -> Result<Vec<Vec<f32>>, TabularError> {
        let d = self.pipeline.d_input();
        let n = features.len() / d.max(1);
        let classify = self.pipeline.classes().is_some();
        let d_out = self.spec.d_output();
        let data = TabularData::new(
            features,
            d,
            if classify {
                Targets::Classes {
                    labels: vec![0; n],
                    n_classes: d_out,
                }
            } else {
                Targets::Values {
                    values: vec![0.0; n * d_out],
                    d: d_out,
                }
            },
        )?;
        let flat = sora_train::predict(&self.model, &data, 256, &self.device)?;
        Ok(flat.chunks(d_out).map(<[f32]>::to_vec).collect())
    }

    /// Metrics on labelled rows.
    pub fn evaluate(&self, table: &Table) -> Result<Metrics, TabularError> {
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let n_classes = self.pipeline.classes().map(<[String]>::len);
        let data = to_tabular(self.pipeline.transform(table, &rows)?, n_classes)?;
        Ok(sora_train::evaluate(&self.model, &data, 256, &self.device)?)
    }
}

/// The metrics as an aligned text table (per-class rows and the averages for a classifier).
pub fn format_metrics(metrics: &Metrics, classes: Option<&[String]>) -> String {
    match metrics {
        Metrics::Regression(m) => format!(
            "loss (MSE) {:.4}\nMAE        {:.4}\nRMSE       {:.4}\nR²         {:.4}\n",
            m.loss, m.mae, m.rmse, m.r2
        ),
        Metrics::Classification(m) => {
            let names: Vec<String> = (0..m.per_class.len())
                .map(|c| {
                    classes
                        .and_then(|n| n.get(c).cloned())
                        .unwrap_or_else(|| c.to_string())
                })
                .collect();
            let w = names.iter().map(String::len).max().unwrap_or(5).max(9);
            let mut out = format!(
                "{:<w$}  {:>9}  {:>6}  {:>6}  {:>7}\n",
                "class", "precision", "recall", "F1", "support"
            );
            for (name, s) in names.iter().zip(&m.per_class) {
                out.push_str(&format!(
                    "{name:<w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n",
                    s.precision, s.recall, s.f1, s.support
                ));
            }
            out.push_str(&format!(
                "{:<w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n\n",
                "macro",
                m.macro_precision,
                m.macro_recall,
                m.macro_f1,
                m.per_class.iter().map(|s| s.support).sum::<usize>()
            ));
            let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
            out.push_str(&format!(
                "accuracy {:.4}   AUROC {}   PR-AUC {}   loss {:.4}\n\n",
                m.accuracy,
                opt(m.auroc),
                opt(m.pr_auc),
                m.loss
            ));
            out.push_str("confusion matrix (rows: true, columns: predicted):\n");
            out.push_str(&m.confusion_table(&names));
            out
        }
    }
}
