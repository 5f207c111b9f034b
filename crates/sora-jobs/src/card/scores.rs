//! The card's sections on how the model does and decides: metrics with their intervals,
//! cross-validation, the confusion matrix, learning curves, calibration, the decision
//! threshold, conformal prediction, global importance and the sanity check.

use std::fmt::Write as _;

use sora_train::{Calibrator, Metrics};

use super::chart::trade_off_png;
use super::html::{Cell, count, flatten, image, interval, interval_note, num, para, table, text};
use super::{Card, Importance, MetricsFile, Result};
use crate::decision::RELIABILITY_BINS;
use crate::explain::html::escape;
use crate::explain::report::bar_chart_png;

impl Card {
    pub(super) fn metrics_section(&self, h: &mut String) {
        let scores = self.metrics.as_ref().map(|m| match m {
            MetricsFile::Scores(m) => Ok(m.as_ref()),
            MetricsFile::Other { source, value } => Err((source, value)),
        });
        match scores {
            Some(Ok(Metrics::Classification(m))) => {
                let rows = m.per_class.iter().map(|c| c.support).sum::<usize>();
                para(
                    h,
                    &format!(
                        "On the test part ({rows} rows, never used to fit or select anything)."
                    ),
                );
                let mut body: Vec<Vec<Cell>> = m
                    .per_class
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        vec![
                            text(self.class_name(i)),
                            num(c.precision),
                            num(c.recall),
                            num(c.f1),
                            count(c.support),
                        ]
                    })
                    .collect();
                body.push(vec![
                    text("macro average"),
                    num(m.macro_precision),
                    num(m.macro_recall),
                    num(m.macro_f1),
                    count(rows),
                ]);
                table(
                    h,
                    " class=\"per-class\"",
                    &["class", "precision", "recall", "F1", "support"],
                    &body,
                );
                let i = m.intervals.as_ref();
                let opt = |v: Option<f64>| v.map_or(text("n/a"), num);
                let body = vec![
                    vec![
                        text("accuracy"),
                        num(m.accuracy),
                        interval(i.and_then(|i| i.accuracy.as_ref())),
                    ],
                    vec![
                        text("macro F1"),
                        num(m.macro_f1),
                        interval(i.and_then(|i| i.macro_f1.as_ref())),
                    ],
                    vec![
                        text("AUROC"),
                        opt(m.auroc),
                        interval(i.and_then(|i| i.auroc.as_ref())),
                    ],
                    vec![text("PR-AUC"), opt(m.pr_auc), text("—")],
                    vec![
                        text("loss (cross-entropy)"),
                        num(m.loss),
                        interval(i.and_then(|i| i.log_loss.as_ref())),
                    ],
                ];
                table(
                    h,
                    " class=\"scores\"",
                    &["metric", "value", "interval"],
                    &body,
                );
                let level = i.and_then(|i| {
                    [&i.accuracy, &i.macro_f1, &i.auroc, &i.log_loss]
                        .into_iter()
                        .find_map(Option::as_ref)
                });
                interval_note(h, level);
            }
            Some(Ok(Metrics::Regression(m))) => {
                let i = m.intervals.as_ref();
                let body = vec![
                    vec![
                        text("MAE"),
                        num(m.mae),
                        interval(i.and_then(|i| i.mae.as_ref())),
                    ],
                    vec![
                        text("RMSE"),
                        num(m.rmse),
                        interval(i.and_then(|i| i.rmse.as_ref())),
                    ],
                    vec![
                        text("R²"),
                        num(m.r2),
                        interval(i.and_then(|i| i.r2.as_ref())),
                    ],
                    vec![text("loss (MSE)"), num(m.loss), text("—")],
                ];
                para(
                    h,
                    "On the test part (never used to fit or select anything).",
                );
                table(
                    h,
                    " class=\"scores\"",
                    &["metric", "value", "interval"],
                    &body,
                );
                let level = i.and_then(|i| {
                    [&i.rmse, &i.mae, &i.r2]
                        .into_iter()
                        .find_map(Option::as_ref)
                });
                interval_note(h, level);
            }
            Some(Err((source, value))) => {
                let mut pairs = Vec::new();
                flatten("", value, &mut pairs);
                let body: Vec<Vec<Cell>> = pairs
                    .into_iter()
                    .map(|(k, v)| vec![text(k), Cell::Num(v)])
                    .collect();
                para(h, &format!("On the held-out part ({source})."));
                table(h, " class=\"scores\"", &["metric", "value"], &body);
            }
            None => {}
        }
    }

    pub(super) fn cv_section(&self, h: &mut String) {
        let Some(cv) = &self.cv else { return };
        let mut line = format!("{} folds", cv.k);
        if cv.repeats > 1 {
            let _ = write!(line, " × {} repeats", cv.repeats);
        }
        if cv.stratified {
            line.push_str(", stratified by class");
        }
        if let Some(g) = &cv.group {
            let _ = write!(line, ", grouped by `{g}`");
        }
        let _ = write!(
            line,
            ", seed {}; each fold scored by a model trained on the other folds.",
            cv.seed
        );
        if self.metrics.is_none() && self.ensemble.is_none() {
            line.push_str(" The final model was then refitted on every example, so it has no test part of its own.");
        }
        para(h, &line);
        let names: Vec<&str> = cv.summary.iter().map(|m| m.name.as_str()).collect();
        let head: Vec<&str> = ["fold", "train", "test"]
            .into_iter()
            .chain(names.iter().copied())
            .collect();
        let mut body: Vec<Vec<Cell>> = cv
            .folds
            .iter()
            .map(|f| {
                let label = if cv.repeats > 1 {
                    format!("{}.{}", f.repeat + 1, f.fold + 1)
                } else {
                    format!("{}", f.fold + 1)
                };
                let scores = crate::evaluation(&f.metrics, None, 0).scores;
                std::iter::once(text(label))
                    .chain([count(f.n_train), count(f.n_test)])
                    .chain(names.iter().map(|n| {
                        scores
                            .iter()
                            .find(|(m, _)| m == n)
                            .map_or(text("n/a"), |(_, v)| num(*v))
                    }))
                    .collect()
            })
            .collect();
        body.push(
            [text("mean ± sd"), text(""), text("")]
                .into_iter()
                .chain(
                    cv.summary
                        .iter()
                        .map(|m| Cell::Num(format!("{:.4} ± {:.4}", m.mean, m.sd))),
                )
                .collect(),
        );
        table(h, " class=\"cv\"", &head, &body);
    }

    pub(super) fn confusion_section(&self, h: &mut String) {
        let (matrix, what) = match self.test_scores() {
            Some(m) => (m.confusion.clone(), "the test part".to_string()),
            None => {
                let folds = self.first_repeat();
                let k = folds.first().map_or(0, |f| f.confusion.len());
                let mut sum = vec![vec![0usize; k]; k];
                for f in &folds {
                    for (r, row) in f.confusion.iter().enumerate().take(k) {
                        for (c, v) in row.iter().enumerate().take(k) {
                            sum[r][c] += v;
                        }
                    }
                }
                (sum, "every example, each scored by the fold model that did not see it (first repeat)".to_string())
            }
        };
        para(
            h,
            &format!("Rows: true class; columns: predicted class; on {what}."),
        );
        let names: Vec<String> = (0..matrix.len()).map(|i| self.class_name(i)).collect();
        let head: Vec<String> = std::iter::once("true \\ predicted".to_string())
            .chain(names.iter().cloned())
            .collect();
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        let body: Vec<Vec<Cell>> = matrix
            .iter()
            .enumerate()
            .map(|(i, row)| {
                std::iter::once(text(names[i].clone()))
                    .chain(row.iter().map(|&v| count(v)))
                    .collect()
            })
            .collect();
        table(h, " class=\"confusion\"", &head, &body);
    }

    pub(super) fn curves_section(&self, h: &mut String) {
        if self.ensemble.is_some() {
            para(
                h,
                "The first member's curves (each member's epoch kept is in the ensemble section).",
            );
        }
        if let Some(history) = &self.history {
            let epochs = history.epochs.len();
            let line = match history.best_epoch {
                Some(b) if history.stopped_early => {
                    format!("Epoch kept: {b}; early stopping ended the run after epoch {epochs}.")
                }
                Some(b) => format!("Epoch kept: {b} of {epochs}."),
                None => format!("{epochs} epochs."),
            };
            para(h, &line);
        }
        if let Some(png) = &self.curves {
            image(h, "learning curves", png);
        }
    }

    pub(super) fn calibration_section(&self, h: &mut String) {
        let Some(d) = &self.decision else { return };
        if let Some(note) = &d.calibration_note {
            para(h, &format!("Not calibrated: {note}."));
        }
        let method = match d.calibration {
            Calibrator::None => return,
            Calibrator::Temperature(t) => format!("temperature scaling, t = {:.4}", t.t),
            Calibrator::Platt(p) => format!("Platt scaling, a = {:.4}, b = {:.4}", p.a, p.b),
        };
        para(
            h,
            &format!(
                "Probabilities calibrated by {method}, fitted on {}.",
                d.fitted_on
            ),
        );
        let mut body = Vec::new();
        if let Some([before, after]) = d.fit_ece {
            body.push(vec![
                text(format!("the rows fitted on ({})", d.fit_rows)),
                num(before),
                num(after),
            ]);
        }
        if let Some(t) = &d.test
            && let Some([before, after]) = t.ece
        {
            body.push(vec![
                text(format!("the test part ({} rows)", t.rows)),
                num(before),
                num(after),
            ]);
        }
        if !body.is_empty() {
            table(
                h,
                " class=\"ece\"",
                &[
                    &format!("expected calibration error ({RELIABILITY_BINS} bins) on"),
                    "before",
                    "after",
                ],
                &body,
            );
        }
        if let Some(png) = &self.reliability {
            image(h, "reliability diagram", png);
        }
    }

    pub(super) fn threshold_section(&self, h: &mut String) -> Result<()> {
        let Some(d) = &self.decision else {
            return Ok(());
        };
        let Some(t) = &d.threshold else {
            return Ok(());
        };
        let positive = self.class_name(1);
        para(
            h,
            &format!(
                "Predict `{positive}` when the calibrated P({positive}) ≥ {:.4}: the threshold \
                 that `--threshold {}` chose on {}.",
                t.point.threshold, t.objective, d.fitted_on
            ),
        );
        let mut body = vec![vec![
            text("rows chosen on"),
            num(t.point.precision),
            num(t.point.recall),
            num(t.point.f1),
            text("—"),
        ]];
        if let Some(c) = &d.test
            && let Some(a) = &c.at_threshold
        {
            body.push(vec![
                text(format!("test part ({} rows)", c.rows)),
                num(a.precision),
                num(a.recall),
                num(a.f1),
                num(a.accuracy),
            ]);
        }
        table(
            h,
            " class=\"threshold\"",
            &[
                "at the threshold, on",
                "precision",
                "recall",
                "F1",
                "accuracy",
            ],
            &body,
        );
        if let Some(cost) = t.cost_per_row {
            para(h, &format!("Mean cost per row there: {cost:.4}."));
        }
        if let Some(trade_off) = &d.trade_off {
            let png = trade_off_png(
                trade_off,
                t.point.threshold,
                &format!("Precision, recall and F1 on {}", d.fitted_on),
            )?;
            image(h, "precision and recall against the threshold", &png);
            para(
                h,
                &format!(
                    "{} candidate thresholds over {} rows of `{positive}` and {} others; the \
                     dashed line is the threshold chosen.",
                    trade_off.curve.len(),
                    trade_off.positives,
                    trade_off.negatives
                ),
            );
        }
        Ok(())
    }

    pub(super) fn conformal_section(&self, h: &mut String) {
        let Some(d) = &self.decision else { return };
        let (what, coverage, q_hat, rows, size) = match (&d.sets, &d.intervals) {
            (Some(s), _) => (
                "Prediction sets of classes (split conformal, LAC score)",
                s.coverage,
                format!("{:.4}", s.q_hat),
                s.calibration_rows,
                "mean classes per set",
            ),
            (None, Some(i)) => (
                "Prediction intervals around predicted values (split conformal)",
                i.coverage,
                i.q_hat
                    .iter()
                    .map(|q| format!("{q:.4}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                i.calibration_rows,
                "mean interval width",
            ),
            (None, None) => return,
        };
        para(
            h,
            &format!(
                "{what}: at least {:.1} % coverage asked, q̂ = {q_hat}, calibrated on {rows} rows \
                 ({}).",
                coverage * 100.0,
                d.fitted_on
            ),
        );
        if let Some(c) = &d.test
            && let (Some(cov), Some(m)) = (c.coverage, c.mean_size)
        {
            table(
                h,
                " class=\"conformal\"",
                &["on", "coverage reached", size],
                &[vec![
                    text(format!("the test part ({} rows)", c.rows)),
                    num(cov),
                    num(m),
                ]],
            );
        }
    }

    pub(super) fn importance_section(&self, h: &mut String) -> Result<()> {
        match &self.importance {
            None => {}
            Some(Importance::NeedsData { training_file }) => {
                let mut line = "Global importance needs data: `sora report DIR --data FILE` (or \
                                `sora train … --report`) explains the model on its rows."
                    .to_string();
                if let Some(f) = training_file {
                    let _ = write!(line, " The model was trained on {f}.");
                }
                para(h, &line);
            }
            Some(Importance::Computed {
                rows,
                method,
                mean_abs,
                permutation,
                ensemble,
                ..
            }) => {
                let data = self.data.as_ref().map_or(String::new(), |d| d.name.clone());
                if let Some(p) = permutation {
                    h.push_str("<h3>Permutation importance</h3>\n");
                    para(
                        h,
                        &format!(
                            "How much {} drops when one column is shuffled across the labelled \
                             rows of {data} (mean over repeats, with its standard deviation); \
                             largest first.",
                            p.score
                        ),
                    );
                    let mut sorted = p.columns.clone();
                    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
                    let bars: Vec<(String, f64)> =
                        sorted.iter().map(|(n, m, _)| (n.clone(), *m)).collect();
                    let png = bar_chart_png(
                        &format!("permutation importance (drop in {})", p.score),
                        &bars,
                    )?;
                    image(h, "permutation importance", &png);
                    let body: Vec<Vec<Cell>> = sorted
                        .iter()
                        .map(|(n, m, s)| vec![text(n.clone()), num(*m), num(*s)])
                        .collect();
                    table(
                        h,
                        " class=\"importance\" id=\"permutation\"",
                        &["column", "mean drop", "sd"],
                        &body,
                    );
                } else if *ensemble {
                    para(
                        h,
                        "Permutation importance and the sanity check are about one network: \
                         `sora report` on a member's directory (members/…) with the same data \
                         computes them.",
                    );
                } else {
                    para(
                        h,
                        &format!(
                            "No permutation importance: {data} has no target column `{}`.",
                            self.info.target.clone().unwrap_or_default()
                        ),
                    );
                }
                h.push_str("<h3>Mean |attribution|</h3>\n");
                para(
                    h,
                    &format!(
                        "The mean absolute attribution of each column to the predicted class \
                         over {} of {data} ({method}); largest first.",
                        match self.data.as_ref().and_then(|d| d.table.as_ref()) {
                            Some(t) if t.rows == *rows => format!("all {rows} rows"),
                            _ => format!("the first {rows} rows"),
                        }
                    ),
                );
                let mut sorted = mean_abs.clone();
                sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
                let png = bar_chart_png("mean |attribution|", &sorted)?;
                image(h, "mean absolute attribution", &png);
                let body: Vec<Vec<Cell>> = sorted
                    .iter()
                    .map(|(n, v)| vec![text(n.clone()), num(*v)])
                    .collect();
                table(
                    h,
                    " class=\"importance\" id=\"attribution\"",
                    &["column", "mean |attribution|"],
                    &body,
                );
            }
        }
        Ok(())
    }

    pub(super) fn sanity_section(&self, h: &mut String) {
        match &self.importance {
            Some(Importance::NeedsData { .. }) => para(
                h,
                "The model-randomisation check needs data as well: it compares the attributions \
                 of the model with those of a copy whose weights are re-initialised.",
            ),
            Some(Importance::Computed {
                sanity: Some(s), ..
            }) => {
                let _ = writeln!(
                    h,
                    "<p class=\"sanity\">{}</p>",
                    escape(&format!("Model randomisation: {s}."))
                );
            }
            Some(Importance::Computed { ensemble: true, .. }) => para(
                h,
                "The model-randomisation check is about one network: `sora report` on a member's \
                 directory (members/…) runs it.",
            ),
            _ => {}
        }
    }
}
