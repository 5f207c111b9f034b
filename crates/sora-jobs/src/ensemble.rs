//! Ensembles of any kind whose models score classes or values: `--ensemble N` trains N
//! members on the same split, each from its own seed of the initial weights and the
//! shuffling (member 1's seed is the run's, so member 1 is the model a plain run trains), and
//! averages their probabilities (or values); after `--cv K`, `--cv-ensemble` keeps the first
//! repeat's K fold models as the final model instead of refitting one.
//!
//! An ensemble is saved as one model directory — the manifest of its members' kind, an
//! [`ENSEMBLE_FILE`], and each member's own directory under `members/` — that every verb
//! treats as one model ([`EnsembleModel`]): predict, eval and serve score the mean of the
//! members' outputs, and explain gives the mean of the members' attributions of the class
//! the ensemble predicts (for a path method such as integrated gradients, exactly the
//! attributions of the averaged model).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sora_train::{Metrics, Targets};

use crate::decision::{HeldOut, Scored};
use crate::explain::{Attributions, ExplainRequest, ExplainedRow, Explanation, Target};
use crate::kind::{Kind, RunContext, Trained, save_with_files};
use crate::{Batch, Evaluation, Input, JobError, Model, ModelInfo, Outputs, Result, Rows, Verb};

/// The file that makes a model directory an ensemble.
pub const ENSEMBLE_FILE: &str = "ensemble.json";
/// The folder of the members' directories.
pub const MEMBERS_DIR: &str = "members";
/// The most members an ensemble may have.
pub const MAX_MEMBERS: usize = 64;

/// How the members of an ensemble were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Origin {
    /// The same split, one seed of the weights and shuffling each.
    Seeds {
        /// The seed of each member.
        seeds: Vec<u64>,
    },
    /// The folds of a cross-validation, one member per fold.
    Folds {
        /// Folds.
        k: usize,
    },
}

/// What [`ENSEMBLE_FILE`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleFile {
    /// The members' directories, relative to the ensemble's.
    pub members: Vec<String>,
    /// How they were made.
    pub origin: Origin,
}

/// The seed of member `i` (from 0) of a run seeded `seed`.
pub fn member_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_add(i as u64)
}

/// Checks `--ensemble N`.
pub fn check_members(n: usize) -> Result<()> {
    if !(2..=MAX_MEMBERS).contains(&n) {
        return Err(JobError::invalid(
            "--ensemble",
            format!("a number of members in 2..={MAX_MEMBERS}"),
            n,
        ));
    }
    Ok(())
}

/// Trains `K` on `data` as one model, or as an ensemble of `members` (≥ 2) seeds.
pub fn train<K: Kind>(
    config: &K::Config,
    data: &K::Data,
    ctx: &RunContext,
    members: usize,
    seed: u64,
) -> Result<Box<dyn Trained>>
where
    K::Run: 'static,
{
    if members < 2 {
        return Ok(Box::new(K::train(config, data.clone(), ctx)?));
    }
    check_members(members)?;
    let mut runs: Vec<Box<dyn Trained>> = Vec::new();
    let mut seeds = Vec::new();
    for i in 0..members {
        let s = member_seed(seed, i);
        ctx.say(format!("member {}/{members}: seed {s}", i + 1));
        let member_ctx = ctx.member(i, s);
        runs.push(Box::new(K::train(config, data.clone(), &member_ctx)?));
        seeds.push(s);
    }
    EnsembleRun::boxed(runs, Origin::Seeds { seeds })
}

/// A trained ensemble.
pub struct EnsembleRun {
    members: Vec<Box<dyn Trained>>,
    origin: Origin,
    held_out: HeldOut,
    test: Option<Metrics>,
}

impl EnsembleRun {
    /// The ensemble of finished runs: its held-out predictions are the mean of the members'
    /// when they share their parts (seeds), none otherwise (folds).
    pub fn boxed(members: Vec<Box<dyn Trained>>, origin: Origin) -> Result<Box<dyn Trained>> {
        let held: Vec<HeldOut> = members.iter().map(|m| m.held_out()).collect();
        let mean = |part: fn(&HeldOut) -> Option<&Scored>| -> Option<Scored> {
            let parts: Option<Vec<Scored>> = held.iter().map(|h| part(h).cloned()).collect();
            Scored::mean(&parts?)
        };
        let held_out = match origin {
            Origin::Seeds { .. } => HeldOut {
                fit: mean(|h| h.fit.as_ref()),
                fit_name: held.first().map(|h| h.fit_name.clone()).unwrap_or_default(),
                test: mean(|h| h.test.as_ref()),
                classes: held.first().and_then(|h| h.classes.clone()),
            },
            Origin::Folds { .. } => HeldOut::default(),
        };
        let test = held_out.test.as_ref().map(Scored::metrics);
        Ok(Box::new(Self {
            members,
            origin,
            held_out,
            test,
        }))
    }
}

/// The headline score of a run's test metrics: accuracy, or RMSE.
fn headline(metrics: &Metrics) -> (&'static str, f64) {
    match metrics {
        Metrics::Classification(m) => ("accuracy", m.accuracy),
        Metrics::Regression(m) => ("rmse", m.rmse),
    }
}

impl Trained for EnsembleRun {
    fn report(&self) -> String {
        let n = self.members.len();
        let mut out = match &self.origin {
            Origin::Seeds { seeds } => format!(
                "\nensemble of {n} members (seeds {}), the mean of their outputs\n",
                seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Origin::Folds { k } => format!(
                "\nfinal model: the ensemble of the {k} fold models of the first repeat, the \
                 mean of their outputs (each trained without its fold)\n"
            ),
        };
        let scores: Vec<(&str, f64)> = self
            .members
            .iter()
            .filter_map(|m| m.test_metrics().map(headline))
            .collect();
        if scores.len() == n {
            for (i, (name, v)) in scores.iter().enumerate() {
                out.push_str(&format!("  member {}: test {name} {v:.4}\n", i + 1));
            }
            let values: Vec<f64> = scores.iter().map(|s| s.1).collect();
            let (mean, sd) = crate::cv::mean_sd(&values);
            out.push_str(&format!(
                "  members: test {} {mean:.4} ± {sd:.4} (mean ± sd)\n",
                scores[0].0
            ));
        }
        match &self.test {
            Some(test) => out.push_str(&format!(
                "\nensemble test metrics:\n{}",
                crate::format_metrics(test, self.held_out.classes.as_deref())
            )),
            None => out.push_str("\nno test part\n"),
        }
        out
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, &[])
    }

    fn save_with(&self, dir: &Path, extra: &[(String, Vec<u8>)]) -> Result<()> {
        save_with_files(
            dir,
            |parts| {
                let members_dir = parts.join(MEMBERS_DIR);
                std::fs::create_dir_all(&members_dir).map_err(JobError::io(&members_dir))?;
                let mut names = Vec::new();
                for (i, member) in self.members.iter().enumerate() {
                    let name = format!("{i}");
                    member.save(&members_dir.join(&name))?;
                    names.push(format!("{MEMBERS_DIR}/{name}"));
                }
                let first = members_dir.join("0");
                let mut manifest = sora_train::Manifest::read(&first)?
                    .ok_or_else(|| JobError::NotAModel { dir: first.clone() })?;
                let file = EnsembleFile {
                    members: names,
                    origin: self.origin.clone(),
                };
                let path = parts.join(ENSEMBLE_FILE);
                let json = serde_json::to_vec_pretty(&file).expect("an ensemble file serialises");
                sora_core::weights::write_atomic(&path, &json).map_err(JobError::io(&path))?;
                if let Some(test) = &self.test {
                    let path = parts.join(sora_train::files::METRICS);
                    let json = serde_json::to_vec_pretty(test).expect("metrics serialise");
                    sora_core::weights::write_atomic(&path, &json).map_err(JobError::io(&path))?;
                }
                manifest.write_into(parts)?;
                Ok(())
            },
            extra,
        )
    }

    fn test_metrics(&self) -> Option<&Metrics> {
        self.test.as_ref()
    }

    fn held_out(&self) -> HeldOut {
        self.held_out.clone()
    }
}

/// A loaded ensemble: the mean of its members' outputs.
#[derive(Debug)]
pub struct EnsembleModel {
    members: Vec<Box<dyn Model>>,
    info: ModelInfo,
}

impl EnsembleModel {
    /// Reads the ensemble in `dir`, each member with `load` (the registry's loader).
    pub fn load(dir: &Path, load: impl Fn(&Path) -> Result<Box<dyn Model>>) -> Result<Self> {
        let path = dir.join(ENSEMBLE_FILE);
        let bytes = sora_core::weights::read_bounded(&path, sora_core::weights::MAX_JSON_BYTES)
            .map_err(JobError::io(&path))?;
        let file: EnsembleFile = serde_json::from_slice(&bytes).map_err(|e| JobError::Parse {
            file: path.clone(),
            message: e.to_string(),
            source: e.into(),
        })?;
        if file.members.is_empty() || file.members.len() > MAX_MEMBERS {
            return Err(JobError::invalid(
                format!("{}: members", path.display()),
                format!("1..={MAX_MEMBERS} member directories"),
                file.members.len(),
            ));
        }
        let mut members = Vec::new();
        for name in &file.members {
            let member = PathBuf::from(name);
            // Members are folders inside the ensemble's own directory.
            let inside = member
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(JobError::invalid(
                    format!("{}: members", path.display()),
                    "folders inside the ensemble's directory",
                    format!("{name:?}"),
                ));
            }
            members.push(load(&dir.join(member))?);
        }
        Self::new(members)
    }

    /// The ensemble of loaded models, which must be of one kind with one output.
    pub fn new(members: Vec<Box<dyn Model>>) -> Result<Self> {
        let first = members
            .first()
            .ok_or_else(|| JobError::invalid("ensemble", "at least one member", "none"))?;
        let mut info = first.info().clone();
        if let Some(other) = members
            .iter()
            .find(|m| m.info().kind != info.kind || m.info().output != info.output)
        {
            return Err(JobError::invalid(
                "ensemble members",
                format!(
                    "models of one kind and output ({} {:?})",
                    info.kind, info.output
                ),
                format!("{} {:?}", other.info().kind, other.info().output),
            ));
        }
        info.parameters = members.iter().map(|m| m.info().parameters).sum();
        info.summary = format!(
            "ensemble of {} {} models (the mean of their outputs), {} parameters in all; \
             member 1:\n{}",
            members.len(),
            info.kind,
            info.parameters,
            first.info().summary
        );
        Ok(Self { members, info })
    }

    /// The members.
    pub fn members(&self) -> &[Box<dyn Model>] {
        &self.members
    }

    fn member_batch(batch: &Batch, rows: Rows) -> Batch {
        Batch {
            key: batch.key,
            keys: batch.keys.clone(),
            rows,
            notes: Vec::new(),
            drift: None,
        }
    }
}

/// The mean of outputs of the same rows (the first's form).
fn mean_outputs(outputs: Vec<Outputs>) -> Result<Outputs> {
    let parts: Vec<&[f32]> = outputs.iter().map(Outputs::predictions).collect();
    let mean = crate::decision::mean_of(&parts).ok_or_else(|| {
        JobError::invalid(
            "ensemble outputs",
            "as many numbers from every member, and at least one member",
            parts
                .iter()
                .map(|p| p.len().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let Some(mut first) = outputs.into_iter().next() else {
        unreachable!("mean_of gave a mean of at least one member")
    };
    match &mut first {
        Outputs::Classes { probabilities, .. } => *probabilities = mean,
        Outputs::Values { values, .. } => *values = mean,
        Outputs::Ratings { ratings, .. } => *ratings = mean,
    }
    Ok(first)
}

impl Model for EnsembleModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> Result<Batch> {
        let mut batches = self
            .members
            .iter()
            .map(|m| m.prepare(input))
            .collect::<Result<Vec<Batch>>>()?;
        let first = batches.remove(0);
        let mut rows = vec![first.rows];
        rows.extend(batches.into_iter().map(|b| b.rows));
        Ok(Batch {
            key: first.key,
            keys: first.keys,
            rows: Rows::Members(rows),
            notes: first.notes,
            drift: first.drift,
        })
    }

    fn score(&self, batch: &Batch) -> Result<Outputs> {
        let Rows::Members(rows) = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: self.info.kind.clone(),
                expected: "rows prepared by each member of the ensemble".into(),
            });
        };
        if rows.len() != self.members.len() {
            return Err(JobError::invalid(
                "ensemble batch",
                format!("rows for {} members", self.members.len()),
                rows.len(),
            ));
        }
        let outputs = self
            .members
            .iter()
            .zip(rows)
            .map(|(m, r)| m.score(&Self::member_batch(batch, r.clone())))
            .collect::<Result<Vec<Outputs>>>()?;
        mean_outputs(outputs)
    }

    fn labelled(&self, input: &Input) -> Result<(Batch, Targets)> {
        let (_, targets) = self.members[0].labelled(input)?;
        Ok((self.prepare(input)?, targets))
    }

    fn evaluate(&self, input: &Input) -> Result<Evaluation> {
        let (batch, targets) = self.labelled(input)?;
        let outputs = self.score(&batch)?;
        let scored = Scored {
            predictions: outputs.predictions().to_vec(),
            targets,
        };
        let mut evaluation =
            crate::evaluation(&scored.metrics(), self.info.classes(), scored.len());
        // The first member's notes: unseen categories and drift from the training rows.
        evaluation.notes = batch.notes;
        Ok(evaluation)
    }

    fn explain(&self, input: &Input, request: &ExplainRequest) -> Result<Explanation> {
        request.check()?;
        let batch = self.prepare(input)?;
        let rows = request.rows(batch.len())?;
        let outputs = self.score(&batch)?;
        let classes = self.info.classes().map(<[String]>::to_vec);
        // Each group of rows is explained for one class by every member: the class asked
        // for, or the ensemble's prediction (so that every member explains the same output).
        let groups: Vec<(Vec<usize>, Target)> = match (&request.target, &classes) {
            (Target::Predicted, Some(classes)) => {
                let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
                for &r in &rows {
                    let c = outputs.label(r).unwrap_or(0);
                    match groups.iter_mut().find(|g| g.0 == c) {
                        Some(g) => g.1.push(r),
                        None => groups.push((c, vec![r])),
                    }
                }
                groups
                    .into_iter()
                    .map(|(c, rows)| (rows, Target::Class(classes[c].clone())))
                    .collect()
            }
            (target, _) => vec![(rows.clone(), target.clone())],
        };
        let mut explained: Vec<(usize, ExplainedRow)> = Vec::new();
        let mut method = String::new();
        let mut explanation_classes = Vec::new();
        for (group, target) in groups {
            let sub = ExplainRequest {
                rows: Some(crate::explain::Rows::indices(&group)),
                target,
                document: false,
                ..request.clone()
            };
            let each = self
                .members
                .iter()
                .map(|m| m.explain(input, &sub))
                .collect::<Result<Vec<Explanation>>>()?;
            method = each[0].method.clone();
            explanation_classes = each[0].classes.clone();
            for (j, &r) in group.iter().enumerate() {
                let rows: Vec<&ExplainedRow> = each.iter().map(|e| &e.rows[j]).collect();
                explained.push((r, mean_row(&rows, &outputs, r)?));
            }
        }
        explained.sort_by_key(|(r, _)| rows.iter().position(|x| x == r));
        let rows: Vec<ExplainedRow> = explained.into_iter().map(|(_, row)| row).collect();
        let method = format!(
            "{method}, the mean over the {} members of the ensemble",
            self.members.len()
        );
        let terminal = crate::explain::terminal_rows(&method, &rows, request.top);
        let document = request
            .document
            .then(|| crate::explain::html::rows_document(&method, &rows));
        Ok(Explanation {
            method,
            classes: explanation_classes,
            rows,
            terminal,
            document,
        })
    }

    fn hint(&self, verb: Verb) -> String {
        self.members[0].hint(verb)
    }
}

/// The mean of the members' explanations of one row (`r` of the ensemble's `outputs`).
fn mean_row(rows: &[&ExplainedRow], outputs: &Outputs, r: usize) -> Result<ExplainedRow> {
    let first = rows[0];
    let n = rows.len() as f32;
    let mismatch = || {
        JobError::invalid(
            "ensemble explanation",
            "the same inputs explained by every member",
            format!("row {} explained differently", first.key),
        )
    };
    let attributions = match &first.attributions {
        Attributions::Columns(columns) => {
            let mut out = columns.clone();
            for (j, c) in out.iter_mut().enumerate() {
                let mut sum = 0.0;
                for row in rows {
                    let Attributions::Columns(cs) = &row.attributions else {
                        return Err(mismatch());
                    };
                    sum += cs
                        .get(j)
                        .filter(|x| x.column == c.column)
                        .ok_or_else(mismatch)?
                        .attribution;
                }
                c.attribution = sum / n;
            }
            Attributions::Columns(out)
        }
        Attributions::Tokens(tokens) => {
            let mut out = tokens.clone();
            for (j, t) in out.iter_mut().enumerate() {
                let mut sum = 0.0;
                for row in rows {
                    let Attributions::Tokens(ts) = &row.attributions else {
                        return Err(mismatch());
                    };
                    sum += ts
                        .get(j)
                        .filter(|x| x.token == t.token)
                        .ok_or_else(mismatch)?
                        .attribution;
                }
                t.attribution = sum / n;
            }
            Attributions::Tokens(out)
        }
        Attributions::Map(map) => {
            let mut heat = vec![0.0f32; map.heat.len()];
            for row in rows {
                let Attributions::Map(m) = &row.attributions else {
                    return Err(mismatch());
                };
                if (m.height, m.width) != (map.height, map.width) {
                    return Err(mismatch());
                }
                for (h, v) in heat.iter_mut().zip(&m.heat) {
                    *h += v / n;
                }
            }
            Attributions::Map(crate::explain::HeatMap::new(map.height, map.width, heat))
        }
    };
    let (probabilities, label) = match outputs {
        Outputs::Classes { classes, .. } => {
            let k = classes.len();
            let p = outputs.predictions()[r * k..(r + 1) * k].to_vec();
            (p, classes[outputs.label(r).unwrap_or(0)].clone())
        }
        _ => (first.probabilities.clone(), first.label.clone()),
    };
    let delta = rows
        .iter()
        .map(|row| row.delta)
        .sum::<Option<f32>>()
        .map(|d| d / n);
    Ok(ExplainedRow {
        key: first.key.clone(),
        label,
        probabilities,
        explained: first.explained.clone(),
        attributions,
        delta,
    })
}
