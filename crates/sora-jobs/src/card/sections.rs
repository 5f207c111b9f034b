//! The card's page: its overview, and the sections on the data, the pipeline and the model,
//! the data's licence, an ensemble's members and the directory's files.

use std::fmt::Write as _;

use sora_data::FeatureEncoding;
use sora_train::{Calibrator, ClassificationMetrics, Metrics};

use super::html::{Cell, count, flatten, num, para, share, table, text};
use super::{Card, Licence, MetricsFile, Result};
use crate::ensemble::Origin;
use crate::explain::html::escape;

/// The sections, in order: id and heading.
const SECTIONS: [(&str, &str); 14] = [
    ("data", "Data summary"),
    ("model", "Pipeline and model"),
    ("metrics", "Metrics"),
    ("cv", "Cross-validation"),
    ("confusion", "Confusion matrix"),
    ("curves", "Learning curves"),
    ("calibration", "Calibration"),
    ("threshold", "Decision threshold"),
    ("conformal", "Conformal prediction"),
    ("importance", "Global importance"),
    ("sanity", "Sanity check"),
    ("licence", "Data licence"),
    ("ensemble", "Ensemble"),
    ("files", "Files"),
];

impl Card {
    pub(super) fn class_name(&self, i: usize) -> String {
        self.info
            .classes()
            .and_then(|c| c.get(i).cloned())
            .unwrap_or_else(|| i.to_string())
    }

    /// The test part's classification metrics.
    pub(super) fn test_scores(&self) -> Option<&ClassificationMetrics> {
        match &self.metrics {
            Some(MetricsFile::Scores(m)) => match m.as_ref() {
                Metrics::Classification(m) => Some(m),
                Metrics::Regression(_) => None,
            },
            _ => None,
        }
    }

    /// The folds of the first repeat of a cross-validation: every example once.
    pub(super) fn first_repeat(&self) -> Vec<&ClassificationMetrics> {
        self.cv
            .iter()
            .flat_map(|cv| &cv.folds)
            .filter(|f| f.repeat == 0)
            .filter_map(|f| match &f.metrics {
                Metrics::Classification(m) => Some(m),
                Metrics::Regression(_) => None,
            })
            .collect()
    }

    /// Which sections the card has.
    pub(super) fn present(&self, id: &str) -> bool {
        let d = self.decision.as_ref();
        match id {
            "data" | "model" | "licence" | "files" => true,
            "metrics" => self.metrics.is_some(),
            "cv" => self.cv.is_some(),
            "confusion" => self.test_scores().is_some() || !self.first_repeat().is_empty(),
            "curves" => self.curves.is_some() || self.history.is_some(),
            "calibration" => {
                d.is_some_and(|d| d.calibration != Calibrator::None || d.calibration_note.is_some())
            }
            "threshold" => d.is_some_and(|d| d.threshold.is_some()),
            "conformal" => d.is_some_and(|d| d.sets.is_some() || d.intervals.is_some()),
            "importance" | "sanity" => self.importance.is_some(),
            "ensemble" => self.ensemble.is_some(),
            _ => false,
        }
    }

    pub(super) fn to_html(&self) -> Result<String> {
        let mut h = String::new();
        let name = self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let title = format!("Model card: {name}");
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
             <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
             table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
             td.num{{text-align:right;font-family:monospace}}pre{{background:#f6f6f6;padding:.5em;overflow-x:auto}}\
             h2{{border-top:2px solid #888;padding-top:.5em;margin-top:1.5em}}img{{max-width:100%}}\
             .note{{color:#555}}</style></head><body>\n<h1>{}</h1>\n",
            escape(&title),
            escape(&title)
        );
        self.overview(&mut h);
        h.push_str("<nav><p>");
        let links: Vec<String> = SECTIONS
            .iter()
            .filter(|(id, _)| self.present(id))
            .map(|(id, heading)| format!("<a href=\"#{id}\">{}</a>", escape(heading)))
            .collect();
        h.push_str(&links.join(" · "));
        h.push_str("</p></nav>\n");
        for (id, heading) in SECTIONS {
            if !self.present(id) {
                continue;
            }
            let _ = writeln!(h, "<h2 id=\"{id}\">{}</h2>", escape(heading));
            match id {
                "data" => self.data_section(&mut h),
                "model" => self.model_section(&mut h),
                "metrics" => self.metrics_section(&mut h),
                "cv" => self.cv_section(&mut h),
                "confusion" => self.confusion_section(&mut h),
                "curves" => self.curves_section(&mut h),
                "calibration" => self.calibration_section(&mut h),
                "threshold" => self.threshold_section(&mut h)?,
                "conformal" => self.conformal_section(&mut h),
                "importance" => self.importance_section(&mut h)?,
                "sanity" => self.sanity_section(&mut h),
                "licence" => self.licence_section(&mut h),
                "ensemble" => self.ensemble_section(&mut h),
                "files" => self.files_section(&mut h),
                _ => {}
            }
        }
        h.push_str("</body></html>\n");
        Ok(h)
    }

    pub(super) fn overview(&self, h: &mut String) {
        let mut rows = vec![
            vec![text("directory"), text(self.dir.display().to_string())],
            vec![text("kind"), text(self.kind)],
            vec![text("task"), text(self.info.task())],
        ];
        if let Some(t) = &self.info.target {
            rows.push(vec![text("target"), text(t.clone())]);
        }
        if let Some(classes) = self.info.classes() {
            rows.push(vec![text("classes"), text(classes.join(", "))]);
        }
        rows.push(vec![text("input"), text(self.info.input.describe())]);
        rows.push(vec![
            text("parameters"),
            text(self.info.parameters.to_string()),
        ]);
        if let Some(m) = &self.manifest {
            rows.push(vec![
                text("written by"),
                text(format!(
                    "Sora {} (directory format {} version {})",
                    m.sora_version, m.format, m.format_version
                )),
            ]);
        }
        table(h, " class=\"overview\"", &[], &rows);
        if let Some(l) = &self.legacy {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(l));
        }
    }

    pub(super) fn data_section(&self, h: &mut String) {
        if let Some(p) = &self.pipeline {
            let features = p.features();
            let rows = features
                .iter()
                .find_map(|f| f.training.as_ref().map(|t| t.rows));
            match rows {
                Some(n) => para(
                    h,
                    &format!(
                        "Training rows: {n} (the rows the pipeline was fitted on), {} feature \
                         columns and the target `{}`, from {}.",
                        features.len(),
                        p.target(),
                        p.fitted_on()
                    ),
                ),
                None => para(
                    h,
                    &format!(
                        "{} feature columns and the target `{}`, from {} (this pipeline \
                         predates training profiles: no row counts).",
                        features.len(),
                        p.target(),
                        p.fitted_on()
                    ),
                ),
            }
            let data_table = self.data.as_ref().and_then(|d| d.table.as_ref());
            let mut head = vec![
                "column",
                "kind",
                "training rows missing",
                "missing rate",
                "training range",
            ];
            if data_table.is_some() {
                head.push("missing in the data given");
            }
            let body: Vec<Vec<Cell>> = features
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let kind = match &f.encoding {
                        FeatureEncoding::Numeric { .. } => "numeric".to_string(),
                        FeatureEncoding::Categorical { categories, .. } => {
                            format!("categorical ({} categories)", categories.len())
                        }
                    };
                    let mut row = vec![text(f.name.clone()), text(kind)];
                    match &f.training {
                        Some(t) => {
                            row.push(count(t.missing));
                            row.push(Cell::Num(share(t.missing, t.rows)));
                            row.push(match t.range {
                                Some((lo, hi)) => text(format!("{lo} – {hi}")),
                                None => text("—"),
                            });
                        }
                        None => {
                            row.extend([text("not recorded"), text("—"), text("—")]);
                        }
                    }
                    if let Some(d) = data_table {
                        row.push(match d.missing.get(i).copied().flatten() {
                            Some(m) => Cell::Num(format!("{m} ({})", share(m, d.rows))),
                            None => text("absent"),
                        });
                    }
                    row
                })
                .collect();
            table(h, " class=\"columns\"", &head, &body);
        } else {
            para(h, &format!("Input: {}.", self.info.input.describe()));
        }
        if let Some(d) = &self.data {
            let mut line = format!("The data given: {}", d.name);
            if let Some(t) = &d.table {
                let _ = write!(line, ", {} rows, {} columns", t.rows, t.columns);
                if !t.unused.is_empty() {
                    let _ = write!(line, " (not read by the model: {})", t.unused.join(", "));
                }
            }
            line.push('.');
            para(h, &line);
        }
        self.class_balance(h);
    }

    pub(super) fn class_balance(&self, h: &mut String) {
        let Some(classes) = self.info.classes() else {
            return;
        };
        let mut columns: Vec<(String, Vec<usize>)> = Vec::new();
        if let Some(m) = self.test_scores() {
            columns.push((
                "test part".into(),
                m.per_class.iter().map(|c| c.support).collect(),
            ));
        }
        let folds = self.first_repeat();
        if !folds.is_empty() {
            let mut sum = vec![0usize; classes.len()];
            for f in &folds {
                for (s, c) in sum.iter_mut().zip(&f.per_class) {
                    *s += c.support;
                }
            }
            columns.push(("every example (cross-validation folds)".into(), sum));
        }
        let mut note = None;
        if let Some(Some(counts)) = self.data.as_ref().map(|d| d.classes.as_ref()) {
            match counts {
                Ok(c) => columns.push(("the data given".into(), c.clone())),
                Err(e) => note = Some(format!("The data given has no class labels: {e}")),
            }
        }
        if columns.is_empty() && note.is_none() {
            return;
        }
        h.push_str("<h3>Class balance</h3>\n");
        if !columns.is_empty() {
            let head: Vec<String> = std::iter::once("class".to_string())
                .chain(columns.iter().map(|(n, _)| n.clone()))
                .collect();
            let head: Vec<&str> = head.iter().map(String::as_str).collect();
            let totals: Vec<usize> = columns.iter().map(|(_, c)| c.iter().sum()).collect();
            let mut body: Vec<Vec<Cell>> = classes
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    std::iter::once(text(name.clone()))
                        .chain(columns.iter().zip(&totals).map(|((_, c), &t)| {
                            let n = c.get(i).copied().unwrap_or(0);
                            Cell::Num(format!("{n} ({})", share(n, t)))
                        }))
                        .collect()
                })
                .collect();
            body.push(
                std::iter::once(text("all"))
                    .chain(totals.iter().map(|&t| count(t)))
                    .collect(),
            );
            table(h, " class=\"balance\"", &head, &body);
        }
        if let Some(n) = note {
            para(h, &n);
        }
    }

    pub(super) fn model_section(&self, h: &mut String) {
        if let Some(p) = &self.pipeline {
            h.push_str("<h3>Pipeline</h3>\n");
            para(
                h,
                &format!(
                    "Each raw column becomes model inputs as fitted on the training rows; {}.",
                    if p.drops_missing_rows() {
                        "rows with a missing cell are dropped"
                    } else {
                        "missing cells are imputed"
                    }
                ),
            );
            let body: Vec<Vec<Cell>> = p
                .features()
                .iter()
                .map(|f| {
                    let (encoding, missing) = match &f.encoding {
                        FeatureEncoding::Numeric { mean, std, impute } => (
                            format!("standardised: (x − {mean:.4}) / {std:.4}"),
                            format!("{impute:.4}"),
                        ),
                        FeatureEncoding::Categorical { categories, impute } => (
                            format!(
                                "one-hot over {}: {}",
                                categories.len(),
                                categories.join(", ")
                            ),
                            format!("{impute:?}"),
                        ),
                    };
                    let mut notes = Vec::new();
                    if f.zero_as_missing {
                        notes.push("0 counts as missing".to_string());
                    }
                    if f.text_as_missing {
                        notes.push("text cells count as missing".to_string());
                    }
                    if f.missing_indicator {
                        notes.push(format!("indicator input {}_missing", f.name));
                    }
                    vec![
                        text(f.name.clone()),
                        text(encoding),
                        text(missing),
                        count(f.width()),
                        text(notes.join("; ")),
                    ]
                })
                .collect();
            table(
                h,
                " class=\"pipeline\"",
                &[
                    "column",
                    "encoding",
                    "a missing cell becomes",
                    "inputs",
                    "notes",
                ],
                &body,
            );
            let target = match p.classes() {
                Some(c) => format!("Target `{}`: classes {}.", p.target(), c.join(", ")),
                None => match p.target_scale() {
                    Some(s) => format!(
                        "Target `{}`: values, learned as (y − {:.4}) / {:.4}.",
                        p.target(),
                        s.mean,
                        s.std
                    ),
                    None => format!("Target `{}`: values.", p.target()),
                },
            };
            para(h, &target);
            for w in p.warnings() {
                let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(w));
            }
        } else {
            para(h, &format!("Input: {}.", self.info.input.describe()));
        }
        h.push_str("<h3>Model</h3>\n");
        let _ = writeln!(h, "<pre>{}</pre>", escape(&self.info.summary));
        if let Some(config) = &self.train_config {
            h.push_str("<h3>Training configuration</h3>\n");
            let mut pairs = Vec::new();
            flatten("", config, &mut pairs);
            let body: Vec<Vec<Cell>> = pairs
                .into_iter()
                .map(|(k, v)| vec![text(k), text(v)])
                .collect();
            table(h, " class=\"config\"", &["setting", "value"], &body);
        }
    }

    pub(super) fn licence_section(&self, h: &mut String) {
        match &self.licence {
            Licence::Unknown => para(
                h,
                "The model directory does not record where its data came from; `sora report DIR \
                 --data PATH` looks for NOTICE and LICENSE files beside the data.",
            ),
            Licence::Looked {
                folder,
                exists: false,
                ..
            } => para(
                h,
                &format!(
                    "The data's folder {} is not found from here, so its licence is not known.",
                    folder.display()
                ),
            ),
            Licence::Looked { folder, files, .. } if files.is_empty() => para(
                h,
                &format!(
                    "No NOTICE or LICENSE file beside the data in {}: its licence is not known.",
                    folder.display()
                ),
            ),
            Licence::Looked { folder, files, .. } => {
                para(h, &format!("Beside the data in {}:", folder.display()));
                for (name, body) in files {
                    let _ = writeln!(
                        h,
                        "<h3>{}</h3>\n<pre class=\"licence\">{}</pre>",
                        escape(name),
                        escape(body)
                    );
                }
            }
        }
    }

    pub(super) fn ensemble_section(&self, h: &mut String) {
        let Some((file, members)) = &self.ensemble else {
            return;
        };
        let how = match &file.origin {
            Origin::Seeds { seeds } => format!(
                "trained on the same split, each from its own seed ({})",
                seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Origin::Folds { k } => {
                format!("the {k} fold models of a cross-validation, each trained without its fold")
            }
        };
        para(
            h,
            &format!(
                "An ensemble of {} {} models, {how}; it predicts the mean of their outputs.",
                members.len(),
                self.kind
            ),
        );
        let body: Vec<Vec<Cell>> = members
            .iter()
            .map(|m| {
                let history = m.history.as_ref();
                vec![
                    text(m.name.clone()),
                    m.seed.map_or(text("—"), |s| Cell::Num(s.to_string())),
                    history.and_then(|h| h.best_epoch).map_or(text("—"), count),
                    text(match history {
                        Some(h) if h.stopped_early => "yes",
                        Some(_) => "no",
                        None => "—",
                    }),
                    m.metrics
                        .as_ref()
                        .and_then(Metrics::accuracy)
                        .map_or(text("—"), num),
                ]
            })
            .collect();
        table(
            h,
            " class=\"members\"",
            &[
                "member",
                "seed",
                "epoch kept",
                "stopped early",
                "its own test accuracy",
            ],
            &body,
        );
    }

    pub(super) fn files_section(&self, h: &mut String) {
        let names = self
            .manifest
            .as_ref()
            .map(|m| m.files.join(", "))
            .unwrap_or_else(|| "no manifest".into());
        para(h, &format!("The directory's files: {names}."));
    }
}
