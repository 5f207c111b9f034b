//! The registry of model kinds, and the one loader of model directories.
//!
//! [`Registry::builtin`] holds one line per kind. [`Registry::load_any`] reads a directory's
//! `manifest.json` once and hands the directory to the kind it names. A directory written by
//! Sora 0.1 has no manifest: [`legacy_kind`] recognises it (the only place that looks at
//! which files a directory holds), and the caller is told how to upgrade it
//! ([`Loaded::legacy`], `sora upgrade`).

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::{ArgMatches, Command, FromArgMatches};

use crate::kind::{CommonOptions, JobConfig, Kind, LoopDefaults, RunContext, Trained};
use crate::{JobError, Model, Result};

/// A registered kind, as the program sees it: the object-safe face of a [`Kind`].
pub trait AnyKind: Send + Sync {
    /// The kind's name.
    fn name(&self) -> &'static str;
    /// One line on what it learns.
    fn about(&self) -> &'static str;
    /// Its own options, as a command of their own.
    fn options(&self) -> Command;
    /// `cmd` with the kind's own options added.
    fn augment(&self, cmd: Command) -> Command;
    /// The defaults of its training loop.
    fn defaults(&self) -> LoopDefaults;
    /// Configures (defaults, shared flags, its own flags from `matches`), checks, reads the
    /// data and trains.
    fn train(
        &self,
        common: &CommonOptions,
        matches: &ArgMatches,
        ctx: &RunContext,
    ) -> Result<Box<dyn Trained>>;
    /// Reads a directory of this kind.
    fn load(&self, dir: &Path, device: &Device) -> Result<Box<dyn Model>>;
    /// Configures and checks as [`train`](Self::train) does, reads the data, and
    /// cross-validates with `common.cv` folds (5 when unset), without a final model: what
    /// `sora tune` scores a configuration by.
    fn cross_validate(
        &self,
        common: &CommonOptions,
        matches: &ArgMatches,
        ctx: &RunContext,
    ) -> Result<crate::cv::CvReport>;
}

struct Entry<K>(PhantomData<fn() -> K>);

impl<K: Kind> AnyKind for Entry<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn about(&self) -> &'static str {
        K::ABOUT
    }

    fn options(&self) -> Command {
        self.augment(Command::new(K::NAME))
    }

    fn augment(&self, cmd: Command) -> Command {
        <K::Options as clap::Args>::augment_args(cmd)
    }

    fn defaults(&self) -> LoopDefaults {
        K::defaults()
    }

    fn train(
        &self,
        common: &CommonOptions,
        matches: &ArgMatches,
        ctx: &RunContext,
    ) -> Result<Box<dyn Trained>> {
        let (config, ctx) = configured::<K>(common, matches, ctx)?;
        let ctx = &ctx;
        let decision = common.decision()?;
        let members = common.ensemble.unwrap_or(1);
        if let Some(n) = common.ensemble {
            if !K::ENSEMBLES {
                return Err(JobError::OptionNotForKind {
                    option: "--ensemble".into(),
                    reason: format!("{} models are not averaged", K::NAME),
                });
            }
            crate::ensemble::check_members(n)?;
        }
        let data = K::load_data(&config, &common.source(), ctx)?;
        let run: Box<dyn Trained> = match common.cv {
            Some(k) => {
                let options = crate::cv::CvOptions {
                    k,
                    repeats: common.repeats.unwrap_or(1),
                    group: common.group.clone(),
                    seed: common.split_seed.unwrap_or(common.seed),
                    members,
                    fold_ensemble: common.cv_ensemble,
                };
                Box::new(crate::cv::cross_validate::<K>(
                    &config, &data, &options, ctx,
                )?)
            }
            None => crate::ensemble::train::<K>(&config, &data, ctx, members, common.seed)?,
        };
        crate::decision::Finished::wrap(run, &decision)
    }

    fn load(&self, dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(K::load(dir, device)?))
    }

    fn cross_validate(
        &self,
        common: &CommonOptions,
        matches: &ArgMatches,
        ctx: &RunContext,
    ) -> Result<crate::cv::CvReport> {
        let (config, ctx) = configured::<K>(common, matches, ctx)?;
        let ctx = &ctx;
        let data = K::load_data(&config, &common.source(), ctx)?;
        let options = crate::cv::CvOptions {
            k: common.cv.unwrap_or(crate::tune::TUNE_FOLDS),
            repeats: common.repeats.unwrap_or(1),
            group: common.group.clone(),
            seed: common.split_seed.unwrap_or(common.seed),
            members: common.ensemble.unwrap_or(1),
            fold_ensemble: false,
        };
        crate::cv::cross_validate_report::<K>(&config, &data, &options, ctx)
    }
}

/// `K`'s checked config from the defaults, the shared flags and its own (`matches`), and the
/// run's context: with `--split-seed`, the config's seed is the split's and the context seeds
/// the weights and shuffling with `--seed` ([`RunContext::member_seed`]).
fn configured<K: Kind>(
    common: &CommonOptions,
    matches: &ArgMatches,
    ctx: &RunContext,
) -> Result<(K::Config, RunContext)> {
    let options = K::Options::from_arg_matches(matches).map_err(|e| {
        JobError::invalid(format!("{} options", K::NAME), "valid flags", e.to_string())
    })?;
    let mut ctx = ctx.clone();
    let config = match common.split_seed {
        Some(split) => {
            ctx.member_seed = Some(common.seed);
            let common = CommonOptions {
                seed: split,
                ..common.clone()
            };
            K::configure(K::Config::default(), &common, options)?
        }
        None => K::configure(K::Config::default(), common, options)?,
    };
    config.check()?;
    Ok((config, ctx))
}

/// The model kinds a program knows.
pub struct Registry {
    kinds: Vec<Box<dyn AnyKind>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// A registry with no kinds.
    pub fn empty() -> Self {
        Self { kinds: Vec::new() }
    }

    /// Sora's kinds, one registration line each.
    pub fn builtin() -> Self {
        Self::empty()
            .with::<crate::tabular::Tabular>()
            .with::<crate::media::Image>()
            .with::<crate::media::Audio>()
            .with::<crate::text::Text>()
            .with::<crate::generate::Generate>()
            .with::<crate::recommend::Recommend>()
            .with::<crate::anomaly::Anomaly>()
    }

    /// Registers `K` (a later registration of a name replaces the earlier one).
    pub fn with<K: Kind>(mut self) -> Self {
        self.kinds.retain(|k| k.name() != K::NAME);
        self.kinds.push(Box::new(Entry::<K>(PhantomData)));
        self
    }

    /// The registered kinds' names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    /// The registered kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &dyn AnyKind> {
        self.kinds.iter().map(|k| k.as_ref())
    }

    /// The kind named `name`.
    pub fn kind(&self, name: &str) -> Result<&dyn AnyKind> {
        self.kinds()
            .find(|k| k.name() == name)
            .ok_or_else(|| JobError::UnknownKind {
                file: None,
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// `sora train`'s command (its shared options, [`CommonOptions`]) with every kind's own
    /// options added under their headings, and the help of each shared loop option listing
    /// each kind's default (from its `Config::default()`).
    pub fn augment_train(&self, mut cmd: Command) -> Command {
        // A kind's options carry no description of the command itself.
        let about: Option<clap::builder::StyledStr> = cmd.get_about().cloned();
        let long_about: Option<clap::builder::StyledStr> = cmd.get_long_about().cloned();
        for kind in self.kinds() {
            cmd = kind.augment(cmd);
        }
        cmd = cmd
            .about(clap::builder::Resettable::from(about))
            .long_about(clap::builder::Resettable::from(long_about));
        let tasks: Vec<&'static str> = std::iter::once("auto").chain(self.names()).collect();
        cmd = cmd.mut_arg("task", |arg| {
            arg.value_parser(clap::builder::PossibleValuesParser::new(tasks))
        });
        let defaults: Vec<(&str, LoopDefaults)> =
            self.kinds().map(|k| (k.name(), k.defaults())).collect();
        let listed = |value: &dyn Fn(&LoopDefaults) -> Option<String>| {
            let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
            for (name, d) in &defaults {
                let Some(v) = value(d) else { continue };
                match groups.iter_mut().find(|(g, _)| *g == v) {
                    Some((_, names)) => names.push(name),
                    None => groups.push((v, vec![name])),
                }
            }
            let text: Vec<String> = groups
                .iter()
                .map(|(v, names)| format!("{v} {}", names.join(", ")))
                .collect();
            format!("[default: {}]", text.join("; "))
        };
        type DefaultOf = fn(&LoopDefaults) -> Option<String>;
        let lines: [(&str, DefaultOf); 5] = [
            ("epochs", |d| Some(d.epochs.to_string())),
            ("batch_size", |d| Some(d.batch_size.to_string())),
            ("lr", |d| Some(d.lr.to_string())),
            ("optimizer", |d| d.optimizer.map(|o| o.name().to_string())),
            ("patience", |d| d.patience.map(|p| p.to_string())),
        ];
        for (id, value) in lines {
            let default = listed(&value);
            cmd = cmd.mut_arg(id, |arg| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                arg.help(format!("{help} {default}"))
            });
        }
        cmd
    }

    /// Refuses the options of other kinds than `kind` given on the command line (`--hflip`
    /// to a tabular run, …), naming the option and the kinds that have it.
    pub fn check_flags(&self, kind: &dyn AnyKind, matches: &ArgMatches) -> Result<()> {
        let own: Vec<String> = kind
            .options()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        for other in self.kinds().filter(|k| k.name() != kind.name()) {
            for arg in other.options().get_arguments() {
                let id = arg.get_id().as_str();
                if own.iter().any(|o| o == id) {
                    continue;
                }
                let given = matches.try_get_raw(id).ok().flatten().is_some()
                    && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
                if given {
                    let owners: Vec<&str> = self
                        .kinds()
                        .filter(|k| k.options().get_arguments().any(|a| a.get_id() == id))
                        .map(|k| k.name())
                        .collect();
                    return Err(JobError::OptionNotForKind {
                        option: format!("--{}", arg.get_long().unwrap_or(id)),
                        reason: format!(
                            "an option of {} models; this run trains a {} model",
                            owners.join(" and "),
                            kind.name()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The kind a `sora train` run trains: `--task` when given (`auto` infers), `ratings`
    /// with `--ratings`, `text` with `--text`, and otherwise what `--data` holds: a folder of
    /// WAV clips is `audio`, any other folder or a non-CSV file `image`, a CSV file
    /// `tabular`.
    pub fn infer(&self, common: &CommonOptions) -> Result<&dyn AnyKind> {
        let name = match common.task.as_deref() {
            Some(task) if task != "auto" => task,
            _ if common.ratings => "ratings",
            _ if common.text.is_some() => "text",
            _ => match &common.data {
                Some(data) => crate::media::detect(data).unwrap_or("tabular"),
                None => "tabular",
            },
        };
        self.kind(name).map_err(|e| match e {
            JobError::UnknownKind { name, known, .. } => JobError::invalid(
                "task",
                format!("auto or a model kind ({known})"),
                format!("{name:?}"),
            ),
            other => other,
        })
    }

    /// Reads a model directory of any registered kind: the manifest names the kind, which
    /// reads its files. A directory without a manifest (Sora 0.1) is recognised by
    /// [`legacy_kind`], and [`Loaded::legacy`] says so; a save interrupted by a crash is
    /// repaired first ([`Loaded::recovered`]).
    pub fn load_any(&self, dir: &Path, device: &Device) -> Result<Loaded> {
        // A save interrupted by a crash is finished (or undone) before anything is read.
        let recovered = sora_train::ModelDir::new(dir).recover()?;
        if !dir.is_dir() {
            return Err(JobError::NotAModel {
                dir: dir.to_path_buf(),
            });
        }
        if dir.join(crate::ensemble::ENSEMBLE_FILE).is_file() {
            return self.load_ensemble(dir, device, recovered);
        }
        let (name, legacy) = match sora_train::Manifest::read(dir)? {
            Some(manifest) => (manifest.kind, None),
            None => {
                let kind = legacy_kind(dir)?.ok_or_else(|| JobError::NotAModel {
                    dir: dir.to_path_buf(),
                })?;
                (kind.to_string(), Some(Legacy::new(dir, kind)))
            }
        };
        let kind = self.kind(&name).map_err(|e| match e {
            JobError::UnknownKind { name, known, .. } => JobError::UnknownKind {
                file: Some(dir.join(sora_train::MANIFEST_FILE)),
                name,
                known,
            },
            other => other,
        })?;
        let mut model = kind.load(dir, device).map_err(|e| with_dir(e, dir))?;
        if let Some(decision) = crate::decision::Decision::read(dir)? {
            model = Box::new(crate::decision::Decided::new(model, decision));
        }
        Ok(Loaded {
            model,
            kind: kind.name(),
            dir: dir.to_path_buf(),
            legacy,
            recovered,
        })
    }
}

impl Registry {
    /// Reads an ensemble's directory: its members with [`load_any`](Self::load_any), and its
    /// decision.
    fn load_ensemble(&self, dir: &Path, device: &Device, recovered: Vec<String>) -> Result<Loaded> {
        let manifest = sora_train::Manifest::read(dir)?.ok_or_else(|| JobError::NotAModel {
            dir: dir.to_path_buf(),
        })?;
        let kind = self.kind(&manifest.kind)?.name();
        let ensemble = crate::ensemble::EnsembleModel::load(dir, |member| {
            let loaded = self.load_any(member, device)?;
            if loaded.kind != kind {
                return Err(JobError::invalid(
                    format!("{}: kind", member.display()),
                    format!("a member of the ensemble's kind, {kind}"),
                    loaded.kind,
                ));
            }
            Ok(loaded.model)
        })?;
        let mut model: Box<dyn Model> = Box::new(ensemble);
        if let Some(decision) = crate::decision::Decision::read(dir)? {
            model = Box::new(crate::decision::Decided::new(model, decision));
        }
        Ok(Loaded {
            model,
            kind,
            dir: dir.to_path_buf(),
            legacy: None,
            recovered,
        })
    }
}

/// A refusal names the directory it is about.
fn with_dir(e: JobError, dir: &Path) -> JobError {
    match e {
        JobError::Unsupported {
            dir: None,
            kind,
            verb,
            hint,
        } => JobError::Unsupported {
            dir: Some(dir.to_path_buf()),
            kind,
            verb,
            hint,
        },
        other => other,
    }
}

/// A model read by [`Registry::load_any`].
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: Box<dyn Model>,
    /// Its kind.
    pub kind: &'static str,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Set when the directory has no manifest (written by Sora 0.1).
    pub legacy: Option<Legacy>,
    /// What was repaired of a save interrupted by a crash ([`ModelDir::recover`]).
    ///
    /// [`ModelDir::recover`]: sora_train::ModelDir::recover
    pub recovered: Vec<String>,
}

impl Loaded {
    /// A refusal of a verb by this model, naming its directory.
    pub fn refuse(&self, e: JobError) -> JobError {
        with_dir(e, &self.dir)
    }
}

/// A model directory without a manifest, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Legacy {
    /// The directory.
    pub dir: PathBuf,
    /// The kind it was recognised as.
    pub kind: &'static str,
}

impl Legacy {
    fn new(dir: &Path, kind: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            kind,
        }
    }
}

impl std::fmt::Display for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} has no {} (written by Sora 0.1); read as a `{}` model. \
             `sora upgrade --model {}` adds the manifest",
            self.dir.display(),
            sora_train::MANIFEST_FILE,
            self.kind,
            self.dir.display()
        )
    }
}

/// What a directory written by Sora 0.1 (no manifest) holds, recognised by the one file each
/// kind wrote beside the model: `generator.json` (language model), `recommender.json`
/// (ratings), `text.json` (text classifier), `input.json` (image or audio, by the pipeline
/// it records), `pipeline.json` (tabular). `None` when none of them is there.
///
/// This is the only place where a directory's files decide what it is; every directory
/// written since records its kind in `manifest.json`.
pub fn legacy_kind(dir: &Path) -> Result<Option<&'static str>> {
    let has = |file: &str| dir.join(file).is_file();
    Ok(if has("generator.json") {
        Some("generate")
    } else if has("recommender.json") {
        Some("ratings")
    } else if has("text.json") {
        Some("text")
    } else if has("input.json") {
        let file = dir.join("input.json");
        let bytes = sora_core::weights::read_bounded(&file, sora_core::weights::MAX_JSON_BYTES)
            .map_err(JobError::io(&file))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| JobError::Parse {
                file: file.clone(),
                message: e.to_string(),
                source: e.into(),
            })?;
        match value["pipeline"]["kind"].as_str() {
            Some("audio") => Some("audio"),
            _ => Some("image"),
        }
    } else if has("pipeline.json") {
        Some("tabular")
    } else {
        None
    })
}

/// Reads a model directory of any of Sora's kinds (see [`Registry::load_any`]).
pub fn load_any(dir: &Path, device: &Device) -> Result<Loaded> {
    Registry::builtin().load_any(dir, device)
}

/// Adds a manifest to a directory written by Sora 0.1: reads it as its kind would, and
/// writes `manifest.json` from what the model is. A directory that has a manifest is left
/// alone (`Ok(false)`).
pub fn upgrade(registry: &Registry, dir: &Path, device: &Device) -> Result<bool> {
    let loaded = registry.load_any(dir, device)?;
    if loaded.legacy.is_none() {
        return Ok(false);
    }
    let mut manifest = loaded.model.info().manifest();
    manifest.write_into(dir)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marker files of Sora 0.1's directories, each recognised as its kind; a directory
    /// with none of them is not a model.
    #[test]
    fn legacy_directories_are_recognised_by_the_file_each_kind_wrote() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: [Case; 7] = [
            (
                &[("generator.json", "{}"), ("text.json", "{}")],
                Some("generate"),
            ),
            (
                &[("recommender.json", "{}"), ("pipeline.json", "{}")],
                Some("ratings"),
            ),
            (&[("text.json", "{}")], Some("text")),
            (
                &[("input.json", r#"{"pipeline": {"kind": "audio"}}"#)],
                Some("audio"),
            ),
            (
                &[("input.json", r#"{"pipeline": {"kind": "image"}}"#)],
                Some("image"),
            ),
            (&[("pipeline.json", "{}")], Some("tabular")),
            (&[("spec.json", "{}")], None),
        ];
        for (files, kind) in cases {
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            assert_eq!(legacy_kind(dir.path()).unwrap(), kind, "{files:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.json"), "{not json").unwrap();
        let e = legacy_kind(dir.path()).unwrap_err().to_string();
        assert!(e.contains("input.json"), "{e}");
    }

    #[test]
    fn every_builtin_kind_is_registered_once_and_inferred_from_its_data() {
        let registry = Registry::builtin();
        assert_eq!(
            registry.names(),
            [
                "tabular", "image", "audio", "text", "generate", "ratings", "anomaly"
            ]
        );
        let infer = |common: CommonOptions| registry.infer(&common).map(|k| k.name());
        let data = |path: &str| CommonOptions {
            data: Some(path.into()),
            ..CommonOptions::default()
        };
        let root = env!("CARGO_MANIFEST_DIR");
        let fsdd = format!("{root}/../../data/fsdd");
        let mnist = format!("{root}/../../data/mnist/t10k-images-idx3-ubyte.gz");
        assert_eq!(infer(data("heart.csv")).unwrap(), "tabular");
        assert_eq!(infer(data(&fsdd)).unwrap(), "audio");
        assert_eq!(infer(data(&mnist)).unwrap(), "image");
        let text = CommonOptions {
            text: Some("body".into()),
            ..data("reviews.csv")
        };
        assert_eq!(infer(text).unwrap(), "text");
        let ratings = CommonOptions {
            ratings: true,
            ..data("ratings.csv")
        };
        assert_eq!(infer(ratings).unwrap(), "ratings");
        let task = CommonOptions {
            task: Some("generate".into()),
            ..data("reviews.csv")
        };
        assert_eq!(infer(task).unwrap(), "generate");
        let unknown = CommonOptions {
            task: Some("poetry".into()),
            ..CommonOptions::default()
        };
        let e = infer(unknown).unwrap_err().to_string();
        assert!(
            e.contains("tabular, image, audio, text, generate, ratings, anomaly"),
            "{e}"
        );
    }
}
