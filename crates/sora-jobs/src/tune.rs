//! `sora tune`: successive halving over a kind's hyper-parameters — hidden widths and depth,
//! dropout, weight decay, learning rate, batch size, optimizer — each configuration scored
//! by cross-validation, within a time budget, seeded and resumable.
//!
//! A configuration is a list of `sora train` options ([`Candidate::args`]), drawn from the
//! kind's [`space`] with a seeded generator; options the user gave are fixed and never
//! drawn. Rung `r` of `R` trains each configuration for `E / η^(R−1−r)` epochs at most (`E`
//! the full run's; early stopping still applies) and keeps the best `1/η` by their mean
//! cross-validated loss (log loss, or MSE) for the next rung. The search stops launching
//! configurations once the budget's share for the search ([`SEARCH_SHARE`]) is spent; the
//! best configuration of the highest rung reached wins, and the caller trains it as a plain
//! run. Every finished trial is written to a state file ([`TuneState`]) at once, so an
//! interrupted search started again with the same command continues where it stopped.

use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cv::CvReport;
use crate::{JobError, Result};

/// Folds of the cross-validation a configuration is scored by, unless `--cv` says.
pub const TUNE_FOLDS: usize = 5;
/// Repeats of that cross-validation, each with other folds, unless `--repeats` says: one
/// partition's noise is what a search over many configurations would otherwise learn.
pub const TUNE_REPEATS: usize = 2;
/// The share of the budget the search may start trials in (the rest trains the winner).
pub const SEARCH_SHARE: f64 = 0.85;
/// Configurations kept from one rung to the next: one in `ETA`.
pub const ETA: usize = 3;
/// The most brackets a search runs (each `--trials` new configurations).
pub const MAX_BRACKETS: usize = 1000;
/// The file of the search's table inside the model directory.
pub const TUNE_FILE: &str = "tune.json";

/// One configuration of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its number, from 1.
    pub id: usize,
    /// Its `sora train` options (without `--epochs`, which the rung sets).
    pub args: Vec<String>,
}

/// One configuration scored at one rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The configuration's number.
    pub candidate: usize,
    /// The rung, from 0.
    pub rung: usize,
    /// The most epochs each fold's run could train.
    pub epochs: usize,
    /// The configuration's options.
    pub args: Vec<String>,
    /// Mean cross-validated loss (lower is better); infinite when the run failed.
    pub loss: f64,
    /// Its standard deviation over the folds.
    pub loss_sd: f64,
    /// Mean cross-validated accuracy, for a classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Mean cross-validated AUROC, for two classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
    /// Mean cross-validated RMSE, for a regressor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Seconds the trial took.
    pub seconds: f64,
    /// Why the run failed (a configuration that diverged, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Trial {
    /// The trial of a cross-validation report.
    pub fn of(
        candidate: &Candidate,
        rung: usize,
        epochs: usize,
        report: &CvReport,
        seconds: f64,
    ) -> Self {
        let mean = |name: &str| report.metric(name).map(|m| m.mean);
        let loss = report
            .metric("loss")
            .or_else(|| report.metric("mse"))
            .map_or((f64::INFINITY, 0.0), |m| (m.mean, m.sd));
        Trial {
            candidate: candidate.id,
            rung,
            epochs,
            args: candidate.args.clone(),
            loss: loss.0,
            loss_sd: loss.1,
            accuracy: mean("accuracy"),
            auroc: mean("auroc"),
            rmse: mean("rmse"),
            seconds,
            error: None,
        }
    }

    /// A trial whose run failed.
    pub fn failed(
        candidate: &Candidate,
        rung: usize,
        epochs: usize,
        error: String,
        seconds: f64,
    ) -> Self {
        Trial {
            candidate: candidate.id,
            rung,
            epochs,
            args: candidate.args.clone(),
            loss: f64::INFINITY,
            loss_sd: 0.0,
            accuracy: None,
            auroc: None,
            rmse: None,
            seconds,
            error: Some(error),
        }
    }
}

/// The search so far, as the state file and [`TUNE_FILE`] hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneState {
    /// The `sora tune` options the search was started with (a resumed search must match).
    pub base: Vec<String>,
    /// Its seed.
    pub seed: u64,
    /// The time budget, in seconds.
    pub budget_seconds: f64,
    /// Every finished trial, in order.
    pub trials: Vec<Trial>,
    /// The winner, once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<Trial>,
}

impl TuneState {
    /// A search just started.
    pub fn new(base: Vec<String>, seed: u64, budget: Duration) -> Self {
        Self {
            base,
            seed,
            budget_seconds: budget.as_secs_f64(),
            trials: Vec::new(),
            best: None,
        }
    }

    /// Reads the state of an interrupted search from `path`, if the file is there and the
    /// search was started with the same options and seed; another search's state is
    /// refused, naming the file.
    pub fn resume(path: &Path, base: &[String], seed: u64) -> Result<Option<Self>> {
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = sora_core::weights::read_bounded(path, sora_core::weights::MAX_JSON_BYTES)
            .map_err(JobError::io(path))?;
        let state: TuneState = serde_json::from_slice(&bytes).map_err(|e| JobError::Parse {
            file: path.to_path_buf(),
            message: e.to_string(),
            source: e.into(),
        })?;
        if state.base != base || state.seed != seed {
            return Err(JobError::Io {
                file: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the state of another search, started with `{}` (seed {}); run that \
                         command again to continue it, or delete the file",
                        state.base.join(" "),
                        state.seed
                    ),
                ),
            });
        }
        Ok(Some(state))
    }

    /// The finished trial of `candidate` at `rung`, if any.
    pub fn done(&self, candidate: usize, rung: usize) -> Option<&Trial> {
        self.trials
            .iter()
            .find(|t| t.candidate == candidate && t.rung == rung)
    }

    /// Writes the state atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        sora_core::weights::write_atomic(path, &self.to_json()).map_err(JobError::io(path))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a search's state serialises")
    }

    /// The trials as the program prints them, best first within each rung.
    pub fn table(&self) -> String {
        let mut rows: Vec<&Trial> = self.trials.iter().collect();
        rows.sort_by(|a, b| {
            b.rung
                .cmp(&a.rung)
                .then(a.loss.total_cmp(&b.loss))
                .then(a.candidate.cmp(&b.candidate))
        });
        let mut out = format!(
            "{:>5} {:>4} {:>6} {:>16} {:>9} {:>9} {:>7}  options\n",
            "trial", "rung", "epochs", "cv loss", "accuracy", "auroc", "seconds"
        );
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        for t in rows {
            let loss = match &t.error {
                Some(_) => "failed".to_string(),
                None => format!("{:.4}±{:.4}", t.loss, t.loss_sd),
            };
            out.push_str(&format!(
                "{:>5} {:>4} {:>6} {:>16} {:>9} {:>9} {:>7.1}  {}\n",
                t.candidate,
                t.rung + 1,
                t.epochs,
                loss,
                opt(t.accuracy.or(t.rmse)),
                opt(t.auroc),
                t.seconds,
                t.args.join(" ")
            ));
        }
        out
    }
}

/// The options `sora tune` may draw for a kind, left out where the user fixed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// `--hidden`: 1–3 layers of 16–256 units, narrowing.
    Hidden,
    /// `--dropout`.
    Dropout,
    /// `--weight-decay`.
    WeightDecay,
    /// `--lr`.
    Lr,
    /// `--batch-size`.
    BatchSize,
    /// `--optimizer`.
    Optimizer,
    /// `--embed` (text).
    Embed,
    /// `--class-weights` (tables): auto, none or balanced.
    ClassWeights,
    /// `--valid-fraction`: how much of the training rows stop early rather than train.
    ValidFraction,
}

impl Knob {
    /// The option's flag.
    pub fn flag(self) -> &'static str {
        match self {
            Knob::Hidden => "--hidden",
            Knob::Dropout => "--dropout",
            Knob::WeightDecay => "--weight-decay",
            Knob::Lr => "--lr",
            Knob::BatchSize => "--batch-size",
            Knob::Optimizer => "--optimizer",
            Knob::Embed => "--embed",
            Knob::ClassWeights => "--class-weights",
            Knob::ValidFraction => "--valid-fraction",
        }
    }

    fn draw(self, rng: &mut ChaCha8Rng) -> String {
        let log_uniform =
            |rng: &mut ChaCha8Rng, lo: f64, hi: f64| 10f64.powf(rng.random_range(lo..hi));
        match self {
            Knob::Hidden => {
                let depth = rng.random_range(1..=3usize);
                let mut width = [32usize, 64, 128, 256][rng.random_range(0..4)];
                let mut widths = Vec::new();
                for _ in 0..depth {
                    widths.push(width.to_string());
                    if rng.random_bool(0.5) {
                        width = (width / 2).max(16);
                    }
                }
                widths.join(",")
            }
            Knob::Dropout => ["0", "0.1", "0.2", "0.3", "0.5"][rng.random_range(0..5)].into(),
            Knob::WeightDecay => match rng.random_bool(0.25) {
                true => "0".into(),
                false => format!("{:.2e}", log_uniform(rng, -6.0, -2.0)),
            },
            Knob::Lr => format!("{:.2e}", log_uniform(rng, -3.5, -1.0)),
            Knob::BatchSize => ["16", "32", "64", "128"][rng.random_range(0..4)].into(),
            Knob::Optimizer => ["sgd", "adam", "adamw"][rng.random_range(0..3)].into(),
            Knob::Embed => ["32", "64", "128"][rng.random_range(0..3)].into(),
            Knob::ClassWeights => ["auto", "none", "balanced"][rng.random_range(0..3)].into(),
            Knob::ValidFraction => ["0.1", "0.15", "0.2"][rng.random_range(0..3)].into(),
        }
    }
}

/// The options `sora tune` draws for a kind (the loop's options for a kind it does not know);
/// `None` for Sora's kinds that are not cross-validated.
pub fn space(kind: &str) -> Option<Vec<Knob>> {
    use Knob::*;
    let loop_knobs = [WeightDecay, Lr, BatchSize, Optimizer];
    let own: &[Knob] = match kind {
        "tabular" => &[Hidden, Dropout, ClassWeights, ValidFraction],
        "image" | "audio" => &[ValidFraction],
        "text" => &[Embed, ValidFraction],
        // Not cross-validated: nothing to score a configuration by.
        "generate" | "ratings" => return None,
        _ => &[],
    };
    Some(own.iter().copied().chain(loop_knobs).collect())
}

/// The `n` configurations of bracket `bracket` (numbered from `bracket · n + 1`), drawing
/// `knobs` whose flag is not in `fixed`; seeded.
pub fn candidates(
    knobs: &[Knob],
    fixed: &[String],
    n: usize,
    seed: u64,
    bracket: usize,
) -> Vec<Candidate> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(bracket as u64);
    let free: Vec<Knob> = knobs
        .iter()
        .copied()
        .filter(|k| !fixed.iter().any(|f| f == k.flag()))
        .collect();
    (bracket * n + 1..=bracket * n + n)
        .map(|id| Candidate {
            id,
            args: free
                .iter()
                .flat_map(|k| [k.flag().to_string(), k.draw(&mut rng)])
                .collect(),
        })
        .collect()
}

/// Rungs of a search over `n` configurations: `⌊log_η n⌋ + 1`.
pub fn rungs(n: usize) -> usize {
    let mut r = 1;
    let mut m = n;
    while m >= ETA {
        m /= ETA;
        r += 1;
    }
    r
}

/// The most epochs at rung `r` of `rungs`, for a full run of `epochs`.
pub fn rung_epochs(epochs: usize, r: usize, rungs: usize) -> usize {
    let shrink = ETA.pow((rungs - 1 - r) as u32);
    (epochs / shrink).max(1)
}

/// The configurations of `rung`'s trials that go on to the next rung: the best
/// `⌈n / η⌉` by loss (failed ones never).
pub fn promote(trials: &[&Trial]) -> Vec<usize> {
    let mut ok: Vec<&&Trial> = trials.iter().filter(|t| t.loss.is_finite()).collect();
    ok.sort_by(|a, b| {
        a.loss
            .total_cmp(&b.loss)
            .then(a.candidate.cmp(&b.candidate))
    });
    let keep = trials.len().div_ceil(ETA);
    ok.into_iter().take(keep).map(|t| t.candidate).collect()
}

/// The winner: the best finite trial of the highest rung with one.
pub fn best(trials: &[Trial]) -> Option<&Trial> {
    trials.iter().filter(|t| t.loss.is_finite()).max_by(|a, b| {
        a.rung
            .cmp(&b.rung)
            .then(b.loss.total_cmp(&a.loss))
            .then(b.candidate.cmp(&a.candidate))
    })
}

/// Parses a budget: seconds (`90`, `90s`), minutes (`5m`) or hours (`1h`).
pub fn parse_budget(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as 90s, 5m or 1h"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{text}`: the unit is s, m or h")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}`: expected a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_shrinks_by_eta_and_ends_at_the_full_run() {
        assert_eq!(rungs(27), 4);
        assert_eq!(rungs(8), 2);
        assert_eq!(rungs(1), 1);
        let epochs: Vec<usize> = (0..4).map(|r| rung_epochs(200, r, 4)).collect();
        assert_eq!(epochs, [7, 22, 66, 200]);
    }

    #[test]
    fn candidates_are_seeded_and_leave_fixed_options_alone() {
        let knobs = space("tabular").unwrap();
        let a = candidates(&knobs, &["--lr".into()], 5, 7, 0);
        assert_eq!(a, candidates(&knobs, &["--lr".into()], 5, 7, 0));
        assert_ne!(a, candidates(&knobs, &["--lr".into()], 5, 8, 0));
        let next = candidates(&knobs, &["--lr".into()], 5, 7, 1);
        assert_eq!(next[0].id, 6);
        assert_ne!(next[0].args, a[0].args);
        for c in &a {
            assert!(!c.args.contains(&"--lr".to_string()), "{c:?}");
            assert!(c.args.contains(&"--hidden".to_string()), "{c:?}");
            assert_eq!(c.args.len(), 2 * (knobs.len() - 1));
        }
        assert!(space("generate").is_none());
    }

    #[test]
    fn promotion_keeps_the_best_third_and_never_a_failure() {
        let c = |id| Candidate {
            id,
            args: Vec::new(),
        };
        let mut trials: Vec<Trial> = (1..=6)
            .map(|id| Trial {
                loss: id as f64,
                ..Trial::failed(&c(id), 0, 5, String::new(), 0.0)
            })
            .collect();
        trials[0].loss = f64::INFINITY;
        let refs: Vec<&Trial> = trials.iter().collect();
        assert_eq!(promote(&refs), [2, 3]);
        trials.push(Trial {
            loss: 9.0,
            ..Trial::failed(&c(3), 1, 15, String::new(), 0.0)
        });
        assert_eq!(best(&trials).unwrap().candidate, 3);
        assert_eq!(best(&trials).unwrap().rung, 1);
    }

    #[test]
    fn budgets_parse_with_units() {
        assert_eq!(parse_budget("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_budget("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_budget("-1m").is_err());
        assert!(parse_budget("5 parsecs").is_err());
    }
}
