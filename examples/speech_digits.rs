//! Spoken digits: the Free Spoken Digit Dataset (FSDD, `data/fsdd/`: 4 speakers × 10 digits ×
//! 50 takes, 8 kHz WAV clips) as MFCC frames, classified by a small 1-D convolutional network.
//!
//! Trains on FSDD's own split — takes 5–49 of every speaker, a stratified, seeded 10 % of them
//! held out for early stopping — and tests on takes 0–4; prints the confusion matrix, saves the
//! model and reloads it. Then reports leave-one-speaker-out accuracy (train on three speakers,
//! test on every clip of the fourth) with the same settings, which were not tuned on it.
//!
//! ```text
//! cargo run --release --example speech_digits [-- --device ndarray --out target/speech-digits-model --seed 42]
//! ```
//!
//! `examples/speaker_id.rs` and `tests/speech.rs` include this file as a module and use
//! [`Fsdd`], [`settings`] and [`fit_valid`] (and `speaker_id` [`parse_args`]), so the
//! settings are written once.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use sora::conv::audio::{FeatureConfig, FeatureKind};
use sora::conv::{Conv1dSpec, ConvBlockSpec, GlobalPool, Pool};
use sora::core::{HeadSpec, ModelSpec, Task};
use sora::data::stratified_split;
use sora::jobs::media::{
    ConvSpec, InputPipeline, LoadOptions, MediaConfig, MediaModel, Samples, Source, train_split,
};
use sora::train::{Metrics, Progress};

/// The seed of the validation split, the weight initialisation and the shuffling.
pub const SEED: u64 = 42;

/// FSDD's clips as MFCC frames `[13, 51]` (13 coefficients of 40 mel bands, 256-sample
/// (32 ms) windows every 160 samples (20 ms), each clip fitted to 1 s at 8 kHz), labelled by
/// digit, with each clip's speaker and take from its file name `<digit>_<speaker>_<take>.wav`.
pub struct Fsdd {
    /// The clips, labelled by digit (the folder).
    pub digits: Samples,
    /// How the clips became features (saved with a model).
    pub pipeline: InputPipeline,
    /// Speaker names, sorted.
    pub speakers: Vec<String>,
    /// Speaker of each clip, an index into `speakers`.
    pub speaker: Vec<usize>,
    /// Take of each clip (0–49).
    pub take: Vec<usize>,
}

impl Fsdd {
    /// Reads `data/fsdd/`.
    pub fn load() -> Result<Fsdd> {
        let features = FeatureConfig {
            kind: FeatureKind::Mfcc,
            hop: 160,
            ..FeatureConfig::default()
        };
        let options = LoadOptions {
            features,
            ..LoadOptions::default()
        };
        let dir = sora::datasets::data_dir().join("fsdd");
        let (digits, pipeline) = sora::jobs::media::load(&Source::AudioFolder(dir), &options)?;
        let clips: Vec<(String, usize)> = digits
            .sources
            .iter()
            .map(|s| speaker_take(s))
            .collect::<Result<_>>()?;
        let mut speakers: Vec<String> = clips.iter().map(|(s, _)| s.clone()).collect();
        speakers.sort_unstable();
        speakers.dedup();
        let speaker = clips
            .iter()
            .map(|(s, _)| speakers.binary_search(s).expect("a listed speaker"))
            .collect();
        let take = clips.iter().map(|&(_, t)| t).collect();
        Ok(Fsdd {
            digits,
            pipeline,
            speakers,
            speaker,
            take,
        })
    }

    /// The same clips labelled by speaker.
    pub fn by_speaker(&self) -> Samples {
        Samples {
            labels: self.speaker.clone(),
            classes: self.speakers.clone(),
            ..self.digits.clone()
        }
    }

    /// FSDD's own split, as clip indices: takes 5–49 of every speaker train, takes 0–4 test.
    pub fn take_split(&self) -> (Vec<usize>, Vec<usize>) {
        (0..self.take.len()).partition(|&i| self.take[i] >= 5)
    }
}

/// Speaker and take of a clip, from its file name `<digit>_<speaker>_<take>.wav`.
fn speaker_take(source: &str) -> Result<(String, usize)> {
    let stem = Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{source}: no file name"))?;
    let [_, speaker, take] = stem.split('_').collect::<Vec<_>>()[..] else {
        bail!("{source}: expected a name <digit>_<speaker>_<take>.wav");
    };
    let take = take
        .parse()
        .with_context(|| format!("{source}: take {take:?}"))?;
    Ok((speaker.to_string(), take))
}

/// The experiment, for digits and speakers alike: three convolution blocks over the frames
/// (16, 32, 32 channels, widths 5, 5, 3, ReLU; the first two halve the frames), the maximum of
/// each channel over time (a digit takes a third of the padded second), a head of 64;
/// `MediaConfig`'s Adam at 1e-3, batch 64, up to 30 epochs, early stopping (patience 5).
pub fn settings(shape: &[usize], n_classes: usize, seed: u64) -> MediaConfig {
    // No batch norm: early stopping restores the best epoch's weights, but Burn's
    // `RunningState` is shared between clones, so they would keep the last epoch's statistics.
    let blocks = vec![
        ConvBlockSpec::new(16, 5).with_pool(Pool::Max, 2),
        ConvBlockSpec::new(32, 5).with_pool(Pool::Max, 2),
        ConvBlockSpec::new(32, 3),
    ];
    let spec = ModelSpec::new(
        Conv1dSpec::new([shape[0], shape[1]], blocks).with_global_pool(GlobalPool::Max),
        HeadSpec::new(&[64]),
        Task::Classification {
            n_classes: n_classes as i64,
        },
    );
    let mut config = MediaConfig {
        spec: Some(ConvSpec::Conv1d(spec)),
        ..MediaConfig::default()
    };
    config.train.seed = seed;
    config
}

/// The clips at `train`, split into a part to fit and a part (a stratified, seeded 10 %) to
/// validate on for early stopping.
pub fn fit_valid(samples: &Samples, train: &[usize], seed: u64) -> (Samples, Samples) {
    let train = samples.subset(train);
    let split = stratified_split(&train.labels, 0.1, 0.0, seed);
    (train.subset(&split.train), train.subset(&split.valid))
}

/// Parses `--device NAME --out DIR --seed N` (each optional).
pub fn parse_args(default_out: &str) -> Result<(String, PathBuf, u64)> {
    let mut args = std::env::args().skip(1);
    let (mut device, mut out, mut seed) = ("flex".to_string(), PathBuf::from(default_out), SEED);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device = args.next().unwrap_or_default(),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            "--seed" => seed = args.next().unwrap_or_default().parse()?,
            other => {
                bail!("unknown argument {other:?} (expected --device NAME, --out DIR, --seed N)")
            }
        }
    }
    Ok((device, out, seed))
}

fn main() -> Result<()> {
    let start = Instant::now();
    let (device_name, out, seed) = parse_args("target/speech-digits-model")?;
    let device = sora::device::device(&device_name)?;

    let fsdd = Fsdd::load()?;
    let samples = &fsdd.digits;
    println!(
        "fsdd: {} clips, {} digits, {} speakers ({}); MFCC {:?} per clip (device {device_name})",
        samples.len(),
        samples.classes.len(),
        fsdd.speakers.len(),
        fsdd.speakers.join(", "),
        samples.shape
    );
    let (train, test) = fsdd.take_split();
    let (fit, valid) = fit_valid(samples, &train, seed);
    let test = samples.subset(&test);
    println!(
        "take split: {} train, {} validation (takes 5–49), {} test (takes 0–4)",
        fit.len(),
        valid.len(),
        test.len()
    );

    let mut config = settings(&samples.shape, samples.classes.len(), seed);
    if let Some(spec) = &config.spec {
        println!("{}", spec.summary()?);
    }
    let pipeline = &fsdd.pipeline;
    let run = train_split(
        &fit,
        Some(&valid),
        &test,
        pipeline.clone(),
        &config,
        &device,
    )?;
    let Some(Metrics::Classification(m)) = &run.test else {
        unreachable!("a classifier")
    };
    println!(
        "\ntest accuracy {:.4}  macro F1 {:.4}  (best epoch {})",
        m.accuracy, m.macro_f1, run.best_epoch
    );
    println!(
        "confusion matrix (rows: true digit, columns: predicted):\n{}",
        m.confusion_table(&samples.classes)
    );

    run.save(&out)?;
    let reloaded = MediaModel::load(&out, &device)?.evaluate(&test)?;
    println!(
        "saved {}; reloaded: test accuracy {:.4}",
        out.display(),
        reloaded.accuracy().unwrap_or(f64::NAN)
    );
    ensure!(
        Some(reloaded.accuracy()) == run.test.as_ref().map(Metrics::accuracy),
        "the reloaded model evaluates differently from the trained one"
    );

    println!(
        "\nleave one speaker out: train on the other three speakers (10 % of their clips \
         validate), test on every clip of the held-out one"
    );
    println!("held out   train  valid  test  best epoch  accuracy");
    config.train.progress = Progress::Quiet;
    let mut sum = 0.0;
    for (s, speaker) in fsdd.speakers.iter().enumerate() {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..samples.len()).partition(|&i| fsdd.speaker[i] != s);
        let (fit, valid) = fit_valid(samples, &train, seed);
        let test = samples.subset(&test);
        let run = train_split(
            &fit,
            Some(&valid),
            &test,
            pipeline.clone(),
            &config,
            &device,
        )?;
        let accuracy = run
            .test
            .as_ref()
            .and_then(Metrics::accuracy)
            .unwrap_or(f64::NAN);
        sum += accuracy;
        println!(
            "{speaker:<9} {:>6} {:>6} {:>5} {:>11} {accuracy:>9.4}",
            fit.len(),
            valid.len(),
            test.len(),
            run.best_epoch
        );
    }
    println!("{:<9} {:>41.4}", "mean", sum / fsdd.speakers.len() as f64);
    println!("\ndone in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
