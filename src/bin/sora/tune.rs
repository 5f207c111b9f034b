//! `sora tune`: the search of [`sora::jobs::tune`] driven through `sora train`'s own
//! command line — each configuration is the user's options with the drawn ones added,
//! parsed, checked and cross-validated as `sora train --cv K` would be — then the winner
//! trained as a plain run and saved with the table of trials.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::FromArgMatches;
use sora::jobs::tune::{self, Candidate, TUNE_FILE, Trial, TuneState};
use sora::jobs::{JobError, Registry};

use crate::args::{Cli, Command, TrainArgs, TuneArgs};

/// Options of `sora tune` that `sora train` does not take, each with its value.
const TUNE_ONLY: [&str; 3] = ["--budget", "--trials", "--out"];

/// The arguments after `tune` on the command line.
fn argv() -> Result<Vec<String>> {
    std::env::args_os()
        .skip_while(|a| a != "tune")
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("{}: arguments must be UTF-8", a.to_string_lossy()))
        })
        .collect()
}

/// Whether `arg` is `flag` or `flag=…`.
fn is_flag(arg: &str, flag: &str) -> bool {
    arg == flag || arg.starts_with(&format!("{flag}="))
}

/// `args` without `flag` and its value; the value, if it was there.
fn take(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| is_flag(a, flag))?;
    let arg = args.remove(i);
    match arg.split_once('=') {
        Some((_, value)) => Some(value.to_string()),
        None if i < args.len() => Some(args.remove(i)),
        None => None,
    }
}

/// The state file of a search writing `out`: `.NAME.tune.json` beside it.
fn state_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!(".{name}.tune.json"))
}

/// `sora train` parsed from `args` (the options after `train`).
fn parse_train(registry: &Registry, args: &[String]) -> Result<(Box<TrainArgs>, clap::ArgMatches)> {
    let matches = crate::command(registry).try_get_matches_from(
        ["sora", "train"]
            .into_iter()
            .map(String::from)
            .chain(args.iter().cloned()),
    )?;
    let cli = Cli::from_arg_matches(&matches)?;
    let Command::Train(train) = cli.command else {
        unreachable!("the command line starts with `train`")
    };
    let sub = matches
        .subcommand_matches("train")
        .expect("train matches")
        .clone();
    Ok((train, sub))
}

/// A bar of the budget spent.
fn bar(spent: f64, budget: f64) -> String {
    let filled = ((spent / budget).clamp(0.0, 1.0) * 20.0).round() as usize;
    format!(
        "[{}{}] {:>5.0}s/{:.0}s",
        "#".repeat(filled),
        "-".repeat(20 - filled),
        spent,
        budget
    )
}

/// Whether a trial's failure is the configuration's (a run that diverged) rather than the
/// command line's, which ends the search.
fn trial_failure(e: &JobError) -> bool {
    matches!(e, JobError::Train(_))
}

pub fn run(args: &TuneArgs, matches: &clap::ArgMatches, registry: &Registry) -> Result<()> {
    let kind = registry.infer(&args.train.common)?;
    registry.check_flags(kind, matches)?;
    let knobs = tune::space(kind.name()).ok_or_else(|| JobError::OptionNotForKind {
        option: "tune".into(),
        reason: format!(
            "{} models are not cross-validated, so there is nothing to score a configuration by",
            kind.name()
        ),
    })?;
    if args.trials == 0 {
        return Err(JobError::invalid("--trials", "at least 1 configuration", 0).into());
    }
    let out = args.train.out.clone();
    sora::train::ModelDir::new(&out).check_replaceable()?;
    let full = argv()?;
    let mut base = full.clone();
    for flag in TUNE_ONLY {
        take(&mut base, flag);
    }
    let epochs = match take(&mut base, "--epochs") {
        Some(e) => e
            .parse::<usize>()
            .map_err(|_| JobError::invalid("--epochs", "a number of epochs", e))?,
        None => kind.defaults().epochs,
    };
    let progress_given = base.iter().any(|a| is_flag(a, "--progress"));
    if !progress_given {
        base.extend(["--progress".into(), "quiet".into()]);
    }
    let cv_given = base.iter().any(|a| is_flag(a, "--cv"));
    // The trials' options: the user's, with the search's repeats unless given (the final run
    // takes the user's alone: `--repeats` needs `--cv`).
    let mut trial_base = base.clone();
    if !base.iter().any(|a| is_flag(a, "--repeats")) {
        trial_base.extend(["--repeats".into(), tune::TUNE_REPEATS.to_string()]);
    }
    let seed = args.train.common.seed;
    let budget = args.budget;
    let state_file = state_path(&out);
    let mut state = match TuneState::resume(&state_file, &full, seed)? {
        Some(state) => {
            println!(
                "resuming the search in {}: {} trials done",
                state_file.display(),
                state.trials.len()
            );
            state
        }
        None => TuneState::new(full.clone(), seed, budget),
    };
    let rungs = tune::rungs(args.trials);
    let setting = sora::run_context(
        args.train.device.device,
        &args.train.devices,
        args.train.distributed,
    )?;
    let ctx = sora::jobs::RunContext {
        verbose: false,
        ..setting.context.clone()
    };
    let spent_before: f64 = state.trials.iter().map(|t| t.seconds).sum();
    let start = Instant::now();
    let spent = || spent_before + start.elapsed().as_secs_f64();
    let search_budget = budget.as_secs_f64() * tune::SEARCH_SHARE;
    println!(
        "tuning {} model: brackets of {} configurations, {rungs} rungs of successive halving \
         (η = {}) each, scored by {}-fold cross-validation × {} repeats, budget {:.0}s",
        kind.name(),
        args.trials,
        tune::ETA,
        args.train.common.cv.unwrap_or(tune::TUNE_FOLDS),
        args.train.common.repeats.unwrap_or(tune::TUNE_REPEATS),
        budget.as_secs_f64()
    );
    // Brackets of successive halving, each with new configurations, until the budget is
    // spent (or `MAX_BRACKETS`).
    let mut out_of_time = false;
    'brackets: for bracket in 0..tune::MAX_BRACKETS {
        let candidates = tune::candidates(&knobs, &base, args.trials, seed, bracket);
        let mut alive: Vec<&Candidate> = candidates.iter().collect();
        for rung in 0..rungs {
            let rung_epochs = tune::rung_epochs(epochs, rung, rungs);
            for (i, candidate) in alive.iter().enumerate() {
                if state.done(candidate.id, rung).is_some() {
                    continue;
                }
                if spent() >= search_budget {
                    out_of_time = true;
                    break 'brackets;
                }
                let mut trial_args = trial_base.clone();
                trial_args.extend(candidate.args.iter().cloned());
                trial_args.extend(["--epochs".into(), rung_epochs.to_string()]);
                if !cv_given {
                    trial_args.extend(["--cv".into(), tune::TUNE_FOLDS.to_string()]);
                }
                let started = Instant::now();
                let (train, sub) = parse_train(registry, &trial_args)
                    .with_context(|| format!("configuration {}", candidate.id))?;
                let trial = match kind.cross_validate(&train.common, &sub, &ctx) {
                    Ok(report) => Trial::of(
                        candidate,
                        rung,
                        rung_epochs,
                        &report,
                        started.elapsed().as_secs_f64(),
                    ),
                    Err(e) if trial_failure(&e) => Trial::failed(
                        candidate,
                        rung,
                        rung_epochs,
                        e.to_string(),
                        started.elapsed().as_secs_f64(),
                    ),
                    Err(e) => return Err(e.into()),
                };
                let score = match &trial.error {
                    Some(e) => format!("failed: {e}"),
                    None => format!(
                        "cv loss {:.4}±{:.4}{}{}",
                        trial.loss,
                        trial.loss_sd,
                        trial
                            .accuracy
                            .map_or(String::new(), |a| format!("  accuracy {a:.4}")),
                        trial
                            .auroc
                            .map_or(String::new(), |a| format!("  AUROC {a:.4}"))
                    ),
                };
                println!(
                    "{} bracket {} rung {}/{rungs} ({rung_epochs} epochs) {}/{}: {score}  ({:.1}s)  {}",
                    bar(spent(), budget.as_secs_f64()),
                    bracket + 1,
                    rung + 1,
                    i + 1,
                    alive.len(),
                    trial.seconds,
                    candidate.args.join(" ")
                );
                state.trials.push(trial);
                state.write(&state_file)?;
            }
            let ids: Vec<usize> = candidates.iter().map(|c| c.id).collect();
            let this: Vec<&Trial> = state
                .trials
                .iter()
                .filter(|t| t.rung == rung && ids.contains(&t.candidate))
                .collect();
            let next = tune::promote(&this);
            alive = candidates.iter().filter(|c| next.contains(&c.id)).collect();
            if alive.is_empty() {
                break;
            }
        }
    }
    if out_of_time {
        println!("budget for the search spent; the best of the highest rung reached wins");
    }
    let best = tune::best(&state.trials)
        .cloned()
        .context("no configuration trained without failing; see the trials above")?;
    state.best = Some(best.clone());
    println!("\ntrials:\n{}", state.table());
    println!(
        "best: configuration {} (rung {}, cv loss {:.4}±{:.4}): {}",
        best.candidate,
        best.rung + 1,
        best.loss,
        best.loss_sd,
        best.args.join(" ")
    );
    // The winner, trained as `sora train` would with the chosen options.
    let mut final_args = base.clone();
    final_args.extend(best.args.iter().cloned());
    if full.iter().any(|a| is_flag(a, "--epochs")) {
        final_args.extend(["--epochs".into(), epochs.to_string()]);
    }
    let (train, sub) = parse_train(registry, &final_args).context("the best configuration")?;
    let run = kind.train(&train.common, &sub, &setting.context)?;
    println!("{}", run.report());
    run.save_with(&out, &[(TUNE_FILE.to_string(), state.to_json())])?;
    let _ = std::fs::remove_file(&state_file);
    println!(
        "saved {} (the table of trials in {TUNE_FILE}; retrain with: sora train {} --out {})",
        out.display(),
        final_args.join(" "),
        out.display()
    );
    Ok(())
}
