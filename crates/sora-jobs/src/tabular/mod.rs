//! The `tabular` kind: a CSV file and a target column in; a trained, evaluated, saved model
//! out.
//!
//! [`train`] infers the schema, splits the rows (stratified for classification), fits the
//! data pipeline on the training rows only, sizes an MLP from the data, trains it with early
//! stopping on the validation rows and evaluates it on the test rows. [`TabularModel`] is that
//! model read back from its directory, ready to [`predict`](TabularModel::predict) raw rows
//! and explain them ([`explain`](TabularModel::explain): attributions folded back onto the
//! raw columns, global importance, an optional sanity check, an HTML report).
//! [`logistic_regression`] is the reference every tabular model is measured against.

mod baseline;
mod explain;
mod model;
mod train;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sora_core::ModelSpec;
use sora_data::{ColumnKind, Impute, PipelineConfig, TargetRule, TextCells};
use sora_train::TrainConfig;

pub use baseline::logistic_regression;
pub(crate) use model::table_batch;
pub use model::{TablePredictions, TabularModel};
pub use train::{Prepared, TabularRun, model_spec, prepare, prepare_with, train, train_prepared};

use crate::kind::{CommonOptions, DataSource, Holdout, JobConfig, Kind, LoopDefaults, RunContext};
use crate::{EARLY_STOPPING_MIN_DELTA, JobError, Result};

/// File name of the fitted pipeline inside a model directory.
pub const PIPELINE_FILE: &str = "pipeline.json";

/// Why the tabular job failed (besides the data, training and spec errors it passes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TabularError {
    /// The rows given for training or evaluation have no target values.
    #[error("{file}: the rows have no target values (column `{target}`)")]
    NoTargets {
        /// The file.
        file: String,
        /// The target column.
        target: String,
    },
    /// A model spec does not fit the data.
    #[error(
        "the model spec takes {spec_inputs} inputs for {spec_task}, but the data gives \
         {data_inputs} inputs for {data_task}"
    )]
    SpecMismatch {
        /// Inputs of the spec.
        spec_inputs: usize,
        /// The spec's task.
        spec_task: String,
        /// Inputs the pipeline makes.
        data_inputs: usize,
        /// The data's task.
        data_task: String,
    },
    /// The target column looks like a row identifier: nothing to learn.
    #[error(
        "{file}: the target `{column}` looks like a row identifier ({why}): a model cannot \
         learn it. Name the column to predict with --target (columns: {}); to use `{column}` \
         anyway, say how: --regression, or --target-above VALUE",
        .columns.join(", ")
    )]
    IdentifierTarget {
        /// The file.
        file: String,
        /// The target column.
        column: String,
        /// What makes it look so.
        why: String,
        /// The table's columns.
        columns: Vec<String>,
    },
    /// A model directory's pipeline and spec disagree.
    #[error("{}: {PIPELINE_FILE} makes {pipeline} inputs but spec.json takes {spec}", .dir.display())]
    PipelineMismatch {
        /// The directory.
        dir: PathBuf,
        /// Inputs the pipeline makes.
        pipeline: usize,
        /// Inputs the spec takes.
        spec: usize,
    },
    /// A model directory has no fitted pipeline.
    #[error("{}: no {PIPELINE_FILE}: not a tabular model directory", .dir.display())]
    NoPipeline {
        /// The directory.
        dir: PathBuf,
    },
    /// Something that needs classes was asked of a regression model.
    #[error("{what} needs a classification model; this one is a regression model")]
    NeedsClasses {
        /// What was asked (`explanations`, `logistic regression`, …).
        what: &'static str,
    },
    /// The explanation report could not be drawn.
    #[error(transparent)]
    Report(#[from] crate::explain::report::ReportError),
}

impl From<TabularError> for JobError {
    fn from(e: TabularError) -> Self {
        JobError::kind(e)
    }
}

/// When to weight the classes of the cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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
    /// Fractions held out for validation (early stopping) and the final test.
    pub holdout: Holdout,
    /// Class weighting.
    pub class_weights: ClassWeights,
    /// Dropout after each hidden layer of the default head, in `[0, 1)`.
    pub dropout: f64,
}

impl TabularConfig {
    /// The defaults for `target`: SGD with momentum 0.9, learning rate 0.01, batch 32, up to
    /// 200 epochs with early stopping (patience 15) on a 15 % validation split, 20 % test
    /// split, seed 42, balanced class weights when the classes are imbalanced.
    pub fn new(target: &str) -> Self {
        Self {
            pipeline: PipelineConfig::new(target),
            hidden: None,
            spec: None,
            train: TrainConfig::new(200, 32, 0.01)
                .with_early_stopping(15, EARLY_STOPPING_MIN_DELTA)
                .with_seed(crate::DEFAULT_SEED),
            holdout: Holdout {
                valid_fraction: 0.15,
                test_fraction: 0.2,
            },
            dropout: 0.0,
            class_weights: ClassWeights::Auto,
        }
    }
}

impl Default for TabularConfig {
    /// [`TabularConfig::new`] with no target column yet (the command line's `--target`).
    fn default() -> Self {
        Self::new("")
    }
}

impl JobConfig for TabularConfig {
    fn check(&self) -> Result<()> {
        if self.pipeline.target.is_empty() {
            return Err(JobError::OptionNotForKind {
                option: "--target".into(),
                reason: "a CSV file needs the column to predict".into(),
            });
        }
        self.holdout.check()?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(JobError::invalid(
                "dropout",
                "a probability in [0, 1)",
                self.dropout,
            ));
        }
        if let Some(hidden) = &self.hidden
            && hidden.contains(&0)
        {
            return Err(JobError::invalid(
                "hidden",
                "widths of at least 1",
                format!("{hidden:?}"),
            ));
        }
        Ok(())
    }
}

/// What `sora inspect` shows of a CSV file: its schema (column kinds, missing values) and,
/// for a `target` column, the balance of its values (listed when there are at most 20).
pub fn inspect(path: &Path, target: Option<&str>) -> Result<String> {
    let table = sora_data::Table::read_csv(path)?;
    let schema = sora_data::infer_schema(&table, &sora_data::MissingMarkers::default());
    let mut out = format!("{schema}\n");
    if let Some(target) = target {
        let col =
            table
                .column_index(target)
                .ok_or_else(|| sora_data::DataError::TargetNotFound {
                    file: table.source().to_string(),
                    target: target.to_string(),
                    available: table.headers().to_vec(),
                })?;
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for value in table.column(col) {
            *counts.entry(value).or_default() += 1;
        }
        out.push_str(&format!(
            "target `{target}`: {} distinct values\n",
            counts.len()
        ));
        if counts.len() <= 20 {
            for (value, n) in counts {
                out.push_str(&format!(
                    "  {value:>12}  {n:>6}  {:>5.1} %\n",
                    100.0 * n as f64 / table.n_rows().max(1) as f64
                ));
            }
        }
    }
    Ok(out)
}

/// Hidden widths sized from the number of model inputs `d`: two layers, the first the next
/// power of two of `2·d` clamped to [32, 256], the second half of it.
pub fn default_hidden(d: usize) -> Vec<usize> {
    let h = (2 * d).next_power_of_two().clamp(32, 256);
    vec![h, h / 2]
}

/// The `tabular` kind.
#[derive(Debug, Clone, Copy)]
pub struct Tabular;

/// The options of `sora train` for tables.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Tables (--task tabular)")]
pub struct TabularOptions {
    /// Make the target binary: class 1 when its number is above this value, 0 otherwise.
    #[arg(long)]
    pub target_above: Option<f64>,
    /// Treat the target as a regression target.
    #[arg(long, conflicts_with = "target_above")]
    pub regression: bool,
    /// Imputation of missing values: mean, median, most-frequent, or constant=VALUE
    /// (categorical columns use the most frequent value unless a constant is given).
    #[arg(long, default_value_t = PipelineConfig::new("").impute)]
    pub impute: Impute,
    /// Drop feature columns with more than this fraction of missing training values.
    #[arg(long)]
    pub drop_columns_over: Option<f64>,
    /// Columns to treat as categorical (one-hot encoded), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Columns to treat as numeric (standardised), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub numeric: Vec<String>,
    /// A column of numbers with a few text cells (at most 1 in 20): refuse (the default,
    /// naming the cells), missing (read them as missing values), or categorical (every value
    /// a category, as text).
    #[arg(long, value_name = "refuse|missing|categorical")]
    pub text_cells: Option<TextCells>,
    /// A pipeline config (JSON) with every data option, per-column imputation included; the
    /// flags above are applied on top of it.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Add a 0/1 indicator column for each column with missing values.
    #[arg(long)]
    pub missing_indicators: bool,
    /// Drop rows with missing values instead of imputing them.
    #[arg(long)]
    pub drop_missing: bool,
    /// Columns in which 0 means "not measured", comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub zero_as_missing: Vec<String>,
    /// Columns to leave out, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Class weights: auto (balanced when imbalanced), balanced, none.
    #[arg(long, value_enum, default_value_t = ClassWeights::default())]
    pub class_weights: ClassWeights,
}

impl Kind for Tabular {
    const NAME: &'static str = "tabular";
    const ABOUT: &'static str = "a CSV file and a target column: a classifier or a regressor";
    type Config = TabularConfig;
    type Options = TabularOptions;
    type Data = sora_data::Table;
    type Run = TabularRun;
    type Model = TabularModel;

    fn defaults() -> LoopDefaults {
        LoopDefaults::of(&TabularConfig::default().train)
    }

    fn configure(
        mut config: TabularConfig,
        common: &CommonOptions,
        o: TabularOptions,
    ) -> Result<TabularConfig> {
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--seq-len", common.seq_len.is_some()),
                ("--embed", common.embed.is_some()),
                ("--min-count", common.min_count.is_some()),
            ],
        )?;
        let target = common.target.clone().unwrap_or_default();
        if let Some(path) = &o.pipeline {
            let text =
                sora_core::weights::read_bounded_text(path, sora_core::weights::MAX_JSON_BYTES)
                    .map_err(JobError::io(path))?;
            config.pipeline = serde_json::from_str(&text).map_err(|e| JobError::Parse {
                file: path.clone(),
                message: e.to_string(),
                source: e.into(),
            })?;
        }
        config.pipeline.target = target;
        common.apply_holdout(&mut config.holdout);
        if let Some(dropout) = common.dropout {
            config.dropout = dropout;
        }
        match (o.target_above, o.regression) {
            (Some(above), _) => config.pipeline.target_rule = TargetRule::Threshold { above },
            (None, true) => config.pipeline.target_rule = TargetRule::Regression,
            (None, false) => {}
        }
        config.pipeline.impute = o.impute;
        if o.drop_columns_over.is_some() {
            config.pipeline.drop_columns_over = o.drop_columns_over;
        }
        for (columns, kind) in [
            (o.categorical, ColumnKind::Categorical),
            (o.numeric, ColumnKind::Numeric),
        ] {
            for column in columns {
                config.pipeline.kinds.insert(column, kind);
            }
        }
        if let Some(rule) = o.text_cells {
            config.pipeline.text_cells = rule;
        }
        config.pipeline.missing_indicators |= o.missing_indicators;
        config.pipeline.drop_missing_rows |= o.drop_missing;
        config.pipeline.zero_as_missing.extend(o.zero_as_missing);
        config.pipeline.ignore.extend(o.ignore);
        // A grouping column (a patient, a speaker) says which rows belong together, not
        // something to learn from.
        if let Some(group) = &common.group
            && !config.pipeline.ignore.contains(group)
        {
            config.pipeline.ignore.push(group.clone());
        }
        config.hidden = common.hidden.clone();
        if let Some(spec) = &common.spec {
            config.spec = Some(ModelSpec::from_file(spec)?);
        }
        config.class_weights = o.class_weights;
        common.apply(&mut config.train);
        Ok(config)
    }

    fn load_data(
        _config: &TabularConfig,
        source: &DataSource,
        _ctx: &RunContext,
    ) -> Result<sora_data::Table> {
        Ok(sora_data::Table::read_csv(source.data()?)?)
    }

    fn train(
        config: &TabularConfig,
        table: sora_data::Table,
        ctx: &RunContext,
    ) -> Result<TabularRun> {
        let prepared = train::prepare_with(&table, config, ctx.split.as_ref())?;
        ctx.say(&prepared.schema);
        for warning in prepared.pipeline.warnings() {
            ctx.say(format!("note: {warning}"));
        }
        ctx.say(format!(
            "rows: {} train, {} validation, {} test (stratified for classes, seed {}); {} model inputs",
            prepared.split.train.len(),
            prepared.split.valid.len(),
            prepared.split.test.len(),
            config.train.seed,
            prepared.pipeline.d_input()
        ));
        if let Some(w) = prepared.class_weights(config.class_weights) {
            ctx.say(format!(
                "class weights (balanced, from the training rows): {w:?}"
            ));
        }
        ctx.say(format!("\n{}\n", model_spec(&prepared, config)?.summary()));
        train::train_in(prepared, config, ctx)
    }

    fn load(dir: &Path, device: &Device) -> Result<TabularModel> {
        TabularModel::load(dir, device)
    }

    /// The rows with a target value, their classes, and the raw values of the `group` column.
    fn examples(
        config: &TabularConfig,
        table: &sora_data::Table,
        group: Option<&str>,
    ) -> Result<crate::Examples> {
        // The grouping column first: the pipeline ignores it, and would name it as a column
        // of its `ignore` list.
        let group_col = match group {
            None => None,
            Some(name) => Some(table.column_index(name).ok_or_else(|| {
                JobError::invalid(
                    "group",
                    format!(
                        "a column of {} ({})",
                        table.source(),
                        table.headers().join(", ")
                    ),
                    name,
                )
            })?),
        };
        config.pipeline.validate(table)?;
        let target = sora_data::encode_target(table, &config.pipeline)?;
        let labels = match target.targets {
            sora_data::TargetValues::Classes(labels) => Some(labels),
            sora_data::TargetValues::Values(_) => None,
        };
        let groups = group_col.map(|col| {
            target
                .rows
                .iter()
                .map(|&row| table.cell(row, col).to_string())
                .collect()
        });
        Ok(crate::Examples {
            n: target.rows.len(),
            valid_fraction: config.holdout.valid_fraction,
            labels,
            groups,
        })
    }
}
