//! Cross-validation of any kind that can be cross-validated ([`Kind::examples`]): the
//! examples dealt into K folds (stratified by class, grouped with `--group`, repeated with
//! other seeds), one run per fold on the fold's complement — a validation part carved from it
//! for early stopping — evaluated on the fold, every metric per fold and as mean ± sd, then
//! the final model refitted on every example.
//!
//! The runs go through the kind's own [`Kind::train`], with the parts fixed by
//! [`RunContext::split`]: the same pipeline fitting (on the fold's training rows only), the
//! same model and loop as a plain run.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sora_data::Split;
use sora_data::folds::Folds;
use sora_train::Metrics;

use crate::kind::{Examples, JobConfig, Kind, RunContext, Trained};
use crate::{JobError, Result};

/// File name of the cross-validation report inside a model directory.
pub const CV_FILE: &str = "cv.json";

/// How to cross-validate (`--cv K [--repeats R] [--group COL]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvOptions {
    /// Number of folds (≥ 2).
    pub k: usize,
    /// Number of repeats, each with other folds (≥ 1).
    pub repeats: usize,
    /// The column (or key) whose values are groups.
    pub group: Option<String>,
    /// Seed of the folds (repeat `r` deals with its own seed derived from it).
    pub seed: u64,
    /// Models per run: 1, or an ensemble of this many seeds (`--ensemble`).
    pub members: usize,
    /// Whether the final model is the first repeat's fold models as an ensemble
    /// (`--cv-ensemble`) rather than a model refitted on every example.
    pub fold_ensemble: bool,
}

/// The metrics of one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// Repeat index (from 0).
    pub repeat: usize,
    /// Fold index within the repeat (from 0).
    pub fold: usize,
    /// Examples the fold's model was trained on (its validation part excluded).
    pub n_train: usize,
    /// Examples of its validation part.
    pub n_valid: usize,
    /// Examples of the fold (its test part).
    pub n_test: usize,
    /// The fold's test examples (positions among the kind's examples: for a table, its rows
    /// with a target value, in file order).
    pub test: Vec<usize>,
    /// Every metric on the fold's test part.
    pub metrics: Metrics,
}

/// The mean and the sample standard deviation of one metric over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The metric's name (`accuracy`, `macro_f1`, `auroc`, `loss`, `rmse`, …).
    pub name: String,
    /// Mean over the folds where it is defined.
    pub mean: f64,
    /// Sample standard deviation over those folds (0 for one).
    pub sd: f64,
    /// Folds where it is defined (AUROC is not on a fold with one class).
    pub folds: usize,
}

/// A whole cross-validation: the options, every fold, every metric summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvReport {
    /// Folds per repeat.
    pub k: usize,
    /// Repeats.
    pub repeats: usize,
    /// The grouping column, if any.
    pub group: Option<String>,
    /// Whether the folds are stratified by class.
    pub stratified: bool,
    /// Seed of the folds.
    pub seed: u64,
    /// Every fold, in order.
    pub folds: Vec<FoldResult>,
    /// Mean ± sd of every metric.
    pub summary: Vec<MetricSummary>,
}

/// The mean and the sample standard deviation of `values` (sd 0 for fewer than two).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// The scalar metrics of a run, by name, as `sora eval` reports them.
fn scores(metrics: &Metrics) -> Vec<(String, f64)> {
    crate::evaluation(metrics, None, 0).scores
}

impl CvReport {
    /// Summarises `folds` (each metric's mean and sample standard deviation over the folds
    /// where it is defined, in the order the first fold names them).
    pub fn new(options: &CvOptions, stratified: bool, folds: Vec<FoldResult>) -> Self {
        let mut names: Vec<String> = Vec::new();
        for f in &folds {
            for (name, _) in scores(&f.metrics) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let summary = names
            .into_iter()
            .map(|name| {
                let values: Vec<f64> = folds
                    .iter()
                    .filter_map(|f| {
                        scores(&f.metrics)
                            .into_iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| v)
                    })
                    .filter(|v| v.is_finite())
                    .collect();
                let (mean, sd) = mean_sd(&values);
                MetricSummary {
                    name,
                    mean,
                    sd,
                    folds: values.len(),
                }
            })
            .collect();
        Self {
            k: options.k,
            repeats: options.repeats,
            group: options.group.clone(),
            stratified,
            seed: options.seed,
            folds,
            summary,
        }
    }

    /// The summary for one metric.
    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.summary.iter().find(|m| m.name == name)
    }

    /// The report as the program prints it: one row per fold, then mean ± sd.
    pub fn table(&self) -> String {
        let names: Vec<&str> = self.summary.iter().map(|m| m.name.as_str()).collect();
        let mut out = format!(
            "\ncross-validation: {} folds{}{}{}\n",
            self.k,
            if self.repeats > 1 {
                format!(" × {} repeats", self.repeats)
            } else {
                String::new()
            },
            if self.stratified { ", stratified" } else { "" },
            match &self.group {
                Some(g) => format!(", grouped by `{g}`"),
                None => String::new(),
            }
        );
        out.push_str(&format!("{:<8} {:>6} {:>6}", "fold", "train", "test"));
        for n in &names {
            out.push_str(&format!(" {n:>15}"));
        }
        out.push('\n');
        for f in &self.folds {
            let label = if self.repeats > 1 {
                format!("{}.{}", f.repeat + 1, f.fold + 1)
            } else {
                format!("{}", f.fold + 1)
            };
            out.push_str(&format!("{label:<8} {:>6} {:>6}", f.n_train, f.n_test));
            let s = scores(&f.metrics);
            for n in &names {
                match s.iter().find(|(m, _)| m == n) {
                    Some((_, v)) => out.push_str(&format!(" {v:>15.4}")),
                    None => out.push_str(&format!(" {:>15}", "n/a")),
                }
            }
            out.push('\n');
        }
        out.push_str(&format!("{:<8} {:>6} {:>6}", "mean±sd", "", ""));
        for m in &self.summary {
            out.push_str(&format!(" {:>15}", format!("{:.4}±{:.4}", m.mean, m.sd)));
        }
        out.push('\n');
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a CV report serialises")
    }
}

/// The folds of `examples` as `options` asks: stratified by class when there are classes,
/// grouped when there are groups (both when both), each repeat dealt with its own seed.
fn folds(examples: &Examples, options: &CvOptions) -> Result<Folds> {
    Ok(Folds::repeated(
        options.repeats,
        options.seed,
        |seed| match (&examples.labels, &examples.groups) {
            (Some(labels), Some(groups)) => {
                Folds::stratified_grouped(labels, groups, options.k, seed)
            }
            (None, Some(groups)) => Folds::grouped(groups, options.k, seed),
            (Some(labels), None) => Folds::stratified(labels, options.k, seed),
            (None, None) => Folds::plain(examples.n, options.k, seed),
        },
    )?)
}

/// The validation part carved from a fold's training examples (`valid_fraction` of them,
/// stratified by class when there are classes), for early stopping.
fn carve(
    train: &[usize],
    labels: Option<&[usize]>,
    valid_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let inner = match labels {
        Some(labels) => {
            let l: Vec<usize> = train.iter().map(|&i| labels[i]).collect();
            sora_data::stratified_split(&l, valid_fraction, 0.0, seed)
        }
        None => sora_data::random_split(train.len(), valid_fraction, 0.0, seed),
    };
    let pick = |v: &[usize]| v.iter().map(|&i| train[i]).collect::<Vec<_>>();
    (pick(&inner.train), pick(&inner.valid))
}

/// Checks `options` against the data's examples.
fn check(options: &CvOptions) -> Result<()> {
    if options.k < 2 {
        return Err(JobError::invalid("cv", "at least 2 folds", options.k));
    }
    if options.repeats < 1 {
        return Err(JobError::invalid("repeats", "at least 1", options.repeats));
    }
    Ok(())
}

/// A cross-validated run: the report, and the model refitted on every example.
pub struct CvRun {
    /// The cross-validation.
    pub report: CvReport,
    /// The final model's run.
    pub model: Box<dyn Trained>,
    /// Whether the final model is the fold models' ensemble (else refitted on every example).
    pub fold_ensemble: bool,
    /// Out-of-fold predictions of the first repeat (every example once, predicted by the
    /// fold's model that never saw it), what the final model's decision is fitted on.
    pub out_of_fold: crate::decision::HeldOut,
}

impl Trained for CvRun {
    fn report(&self) -> String {
        let final_model = match self.fold_ensemble {
            true => "the fold models' ensemble",
            false => "refitted on every example",
        };
        format!(
            "{}\nfinal model: {final_model} (the cross-validation above is its estimate){}",
            self.report.table(),
            self.model.report()
        )
    }

    /// The final model's directory, with the report as [`CV_FILE`] in it.
    fn save(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, &[])
    }

    fn save_with(&self, dir: &Path, extra: &[(String, Vec<u8>)]) -> Result<()> {
        let mut files = extra.to_vec();
        files.push((CV_FILE.into(), self.report.to_json()));
        self.model.save_with(dir, &files)
    }

    fn test_metrics(&self) -> Option<&Metrics> {
        None
    }

    fn held_out(&self) -> crate::decision::HeldOut {
        self.out_of_fold.clone()
    }
}

/// The folds' runs of a cross-validation.
fn run_folds<K: Kind>(
    config: &K::Config,
    data: &K::Data,
    options: &CvOptions,
    ctx: &RunContext,
) -> Result<FoldRuns>
where
    K::Run: 'static,
{
    config.check()?;
    check(options)?;
    let examples = K::examples(config, data, options.group.as_deref())?;
    let all = folds(&examples, options)?;
    let labels = examples.labels.as_deref();
    let mut results = Vec::new();
    let mut out_of_fold = Vec::new();
    let mut fold_runs: Vec<Box<dyn Trained>> = Vec::new();
    let mut classes = None;
    let total = all.iter().count();
    for r in 0..all.n_repeats() {
        for (f, fold) in all.repeat(r).unwrap_or_default().iter().enumerate() {
            let seed = Folds::repeat_seed(options.seed, r).wrapping_add(f as u64 + 1);
            let (fit, valid) = carve(&fold.train, labels, examples.valid_fraction, seed);
            ctx.say(format!(
                "fold {}/{total}: {} train, {} validation, {} test",
                r * options.k + f + 1,
                fit.len(),
                valid.len(),
                fold.test.len()
            ));
            let split = Split {
                train: fit,
                valid,
                test: fold.test.clone(),
            };
            let (n_train, n_valid, n_test) =
                (split.train.len(), split.valid.len(), split.test.len());
            let fold_ctx = RunContext {
                verbose: false,
                checkpoints: None,
                ..ctx.clone()
            }
            .with_split(split);
            let run = crate::ensemble::train::<K>(
                config,
                data,
                &fold_ctx,
                options.members,
                ctx.member_seed.unwrap_or(options.seed),
            )?;
            let metrics = run.test_metrics().cloned().ok_or_else(|| {
                JobError::invalid("cv", "a kind whose runs report test metrics", K::NAME)
            })?;
            if r == 0 {
                let held = run.held_out();
                classes = held.classes;
                out_of_fold.extend(held.test);
                if options.fold_ensemble {
                    fold_runs.push(run);
                }
            }
            results.push(FoldResult {
                repeat: r,
                fold: f,
                n_train,
                n_valid,
                n_test,
                test: fold.test.clone(),
                metrics,
            });
        }
    }
    let report = CvReport::new(options, labels.is_some(), results);
    Ok(FoldRuns {
        report,
        out_of_fold,
        classes,
        fold_runs,
        examples,
    })
}

/// The folds' runs of a cross-validation, before any final model.
struct FoldRuns {
    report: CvReport,
    out_of_fold: Vec<crate::decision::Scored>,
    classes: Option<Vec<String>>,
    fold_runs: Vec<Box<dyn Trained>>,
    examples: Examples,
}

/// Cross-validates `K` on `data` without training a final model: the report alone (what
/// `sora tune` scores a configuration by).
pub fn cross_validate_report<K: Kind>(
    config: &K::Config,
    data: &K::Data,
    options: &CvOptions,
    ctx: &RunContext,
) -> Result<CvReport>
where
    K::Run: 'static,
{
    let options = CvOptions {
        fold_ensemble: false,
        ..options.clone()
    };
    Ok(run_folds::<K>(config, data, &options, ctx)?.report)
}

/// Cross-validates `K` on `data` (see the module docs), then makes the final model: refitted
/// on every example, or the fold models' ensemble.
pub fn cross_validate<K: Kind>(
    config: &K::Config,
    data: &K::Data,
    options: &CvOptions,
    ctx: &RunContext,
) -> Result<CvRun>
where
    K::Run: 'static,
{
    let FoldRuns {
        report,
        out_of_fold,
        classes,
        fold_runs,
        examples,
    } = run_folds::<K>(config, data, options, ctx)?;
    let labels = examples.labels.as_deref();
    let model = if options.fold_ensemble {
        crate::ensemble::EnsembleRun::boxed(
            fold_runs,
            crate::ensemble::Origin::Folds { k: options.k },
        )?
    } else {
        // The final model: every example, a validation part for early stopping, no test part.
        let every: Vec<usize> = (0..examples.n).collect();
        let (fit, valid) = carve(&every, labels, examples.valid_fraction, options.seed);
        ctx.say(format!(
            "final model: {} train, {} validation (every example)",
            fit.len(),
            valid.len()
        ));
        let final_ctx = ctx.clone().with_split(Split {
            train: fit,
            valid,
            test: Vec::new(),
        });
        let seed = ctx.member_seed.unwrap_or(options.seed);
        crate::ensemble::train::<K>(config, data, &final_ctx, options.members, seed)?
    };
    let out_of_fold = crate::decision::HeldOut {
        fit: crate::decision::Scored::concat(&out_of_fold),
        fit_name: "the out-of-fold predictions of the cross-validation".into(),
        test: None,
        classes,
    };
    Ok(CvRun {
        report,
        model,
        out_of_fold,
        fold_ensemble: options.fold_ensemble,
    })
}
