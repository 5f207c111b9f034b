//! A small CNN on MNIST (or Fashion-MNIST): the 10,000 official test images split 8,000 /
//! 2,000 (stratified, seeded), early stopping on 10 % of the 8,000, test accuracy and
//! confusion matrix, and a Grad-CAM picture of a few test images.
//!
//! ```text
//! cargo run --release --example image_digits [-- --dataset fashion --device ndarray --seed 42 --out FILE.png]
//! ```
//!
//! `tests/images.rs` includes this file as a module and runs [`run`] with the same settings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sora::conv::{Conv2dSpec, ConvBlockSpec, GlobalPool, Pool};
use sora::core::{HeadSpec, ModelSpec, Task};
use sora::explain_methods::{GradCam, Inputs, Overlay, Target, save_overlays};
use sora::jobs::media::{
    ConvNet, ConvSpec, LoadOptions, MediaConfig, Samples, Source, load, train_split,
};
use sora::train::{Metrics, Progress, Schedule, argmax};

/// Which of the two bundled image sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// Handwritten digits (`data/mnist/`).
    Mnist,
    /// Zalando's clothing pictures (`data/fashion_mnist/`).
    Fashion,
}

impl Dataset {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "mnist" => Ok(Dataset::Mnist),
            "fashion" | "fashion_mnist" => Ok(Dataset::Fashion),
            other => bail!("unknown data set {other:?} (expected mnist or fashion)"),
        }
    }

    /// Name used in output and file names.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::Fashion => "fashion_mnist",
        }
    }

    fn source(self) -> Source {
        let dir = sora::datasets::data_dir().join(self.name());
        Source::Idx {
            images: dir.join("t10k-images-idx3-ubyte.gz"),
            labels: Some(dir.join("t10k-labels-idx1-ubyte.gz")),
        }
    }

    /// Class names for display (the IDX labels are the digits 0–9).
    fn class_names(self) -> Vec<String> {
        let names: [&str; 10] = match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::Fashion => [
                "T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                "bag", "boot",
            ],
        };
        names.map(String::from).to_vec()
    }
}

/// The experiment, the same for both data sets: three 3×3 convolution blocks (16, 32, 64
/// channels, ReLU, 2×2 max pooling; 28 → 14 → 7 → 3), the last maps flattened (576) into a
/// head of 64; Adam from 2e-3 on a cosine schedule over 10 epochs, batch 64, early stopping
/// (patience 5) restoring the best epoch; no augmentation.
pub fn settings(seed: u64) -> MediaConfig {
    // No batch norm: the best epoch's weights restored by early stopping would keep the last
    // epoch's running statistics (Burn's `RunningState` is shared by `Module::clone`).
    let block = |channels| ConvBlockSpec::new(channels, 3).with_pool(Pool::Max, 2);
    let spec = ModelSpec::new(
        Conv2dSpec::new([1, 28, 28], vec![block(16), block(32), block(64)])
            .with_global_pool(GlobalPool::Flatten),
        HeadSpec::new(&[64]),
        Task::Classification { n_classes: 10 },
    );
    let mut config = MediaConfig {
        spec: Some(ConvSpec::Conv2d(spec)),
        ..MediaConfig::default()
    };
    config.train.epochs = 10;
    config.train.lr = 2e-3;
    config.train.schedule = Schedule::Cosine { min_lr: 0.0 };
    config.train.seed = seed;
    config
}

/// What [`run`] reads and writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data set.
    pub dataset: Dataset,
    /// `flex` or `ndarray`.
    pub device: String,
    /// Seed of the splits, the weight initialisation and the shuffling.
    pub seed: u64,
    /// The Grad-CAM picture.
    pub picture: PathBuf,
    /// Per-epoch lines.
    pub progress: Progress,
}

impl Options {
    /// The defaults for `dataset`: flex, seed 42, picture under `target/`.
    pub fn new(dataset: Dataset) -> Self {
        Self {
            dataset,
            device: "flex".into(),
            seed: 42,
            picture: PathBuf::from(format!(
                "target/image_digits_{}_gradcam.png",
                dataset.name()
            )),
            progress: Progress::Auto,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Test metrics.
    pub test: Metrics,
    /// Images drawn in the picture.
    pub pictured: usize,
    /// Misclassified test images.
    pub misclassified: usize,
}

/// Images drawn in the Grad-CAM picture, and at most this many misclassified among them.
const PICTURED: usize = 6;
const PICTURED_WRONG: usize = 3;

/// Loads, splits, trains, evaluates and draws the Grad-CAM picture.
pub fn run(options: &Options) -> Result<Outcome> {
    let device = sora::device::device(&options.device)?;
    let dataset = options.dataset;
    let (samples, pipeline) = load(&dataset.source(), &LoadOptions::default())?;
    let classes = dataset.class_names();

    // 8,000 / 2,000 stratified; validation is 10 % of the 8,000 (stratified again).
    let outer = sora::data::stratified_split(&samples.labels, 0.0, 0.2, options.seed);
    let pool = samples.subset(&outer.train);
    let inner = sora::data::stratified_split(&pool.labels, 0.1, 0.0, options.seed);
    let (train, valid) = (pool.subset(&inner.train), pool.subset(&inner.valid));
    let test = samples.subset(&outer.test);
    println!(
        "{}: {} train, {} validation, {} test images of {:?}, {} classes (seed {}, device {})",
        dataset.name(),
        train.len(),
        valid.len(),
        test.len(),
        samples.shape,
        classes.len(),
        options.seed,
        options.device
    );

    let mut config = settings(options.seed);
    config.train.progress = options.progress;
    let spec = config.spec.clone().context("settings name a spec")?;
    println!("{}", spec.summary()?);
    let media = train_split(&train, Some(&valid), &test, pipeline, &config, &device)?;

    let Some(test_metrics) = media.test.clone() else {
        bail!("the run holds out a test part")
    };
    let Metrics::Classification(m) = &test_metrics else {
        bail!("a classifier has classification metrics")
    };
    println!(
        "\nbest epoch {}{}; test accuracy {:.4}  macro F1 {:.4}  macro AUROC {:.4}",
        media.best_epoch,
        if media.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        m.accuracy,
        m.macro_f1,
        m.auroc.unwrap_or(f64::NAN)
    );
    println!(
        "confusion matrix (rows: true class, columns: predicted):\n{}",
        m.confusion_table(&classes)
    );

    let model = media.to_model(&device)?;
    let probabilities = model.predict(&test)?;
    let k = classes.len();
    let predicted: Vec<usize> = probabilities.chunks(k).map(argmax).collect();
    let wrong: Vec<usize> = (0..test.len())
        .filter(|&i| predicted[i] != test.labels[i])
        .collect();
    let chosen = pick(&test.labels, &predicted, &wrong);

    let ConvNet::Conv2d(net) = &model.net else {
        bail!("an image model is two-dimensional")
    };
    let mut shown = test.subset(&chosen);
    let raw = shown.clone();
    media.input.normalize(&mut shown);
    let d = shown.sample_len();
    let inputs = Inputs::new(shown.values, d)?;
    let targets: Vec<usize> = chosen.iter().map(|&i| predicted[i]).collect();
    let cams = GradCam::default().attribute(net, &inputs, &Target::PerExample(targets), &device)?;
    println!(
        "Grad-CAM of the predicted class at {} ({}×{} maps, upsampled), rows top to bottom:",
        cams.layer, cams.height, cams.width
    );
    let (h, w) = (test.shape[1], test.shape[2]);
    draw(&options.picture, &raw, &cams.upsample(h, w).values)?;
    for (row, &i) in chosen.iter().enumerate() {
        let (truth, guess) = (test.labels[i], predicted[i]);
        println!(
            "  {}: test image {i:>4} (#{} of the file), true {}, predicted {} (p = {:.3}){}",
            row + 1,
            test.sources[i].rsplit('#').next().unwrap_or_default(),
            classes[truth],
            classes[guess],
            probabilities[i * k + guess],
            if truth == guess { "" } else { "  ✗" }
        );
    }
    println!("saved {}", options.picture.display());
    Ok(Outcome {
        test: test_metrics.clone(),
        pictured: chosen.len(),
        misclassified: wrong.len(),
    })
}

/// Up to [`PICTURED_WRONG`] misclassified images (the first in test order), the rest correct
/// ones of distinct true classes.
fn pick(labels: &[usize], predicted: &[usize], wrong: &[usize]) -> Vec<usize> {
    let wrong = &wrong[..wrong.len().min(PICTURED_WRONG)];
    let mut chosen: Vec<usize> = Vec::new();
    for i in 0..labels.len() {
        if chosen.len() + wrong.len() == PICTURED {
            break;
        }
        let new_class = chosen.iter().all(|&c| labels[c] != labels[i]);
        if predicted[i] == labels[i] && new_class {
            chosen.push(i);
        }
    }
    chosen.extend_from_slice(wrong);
    chosen
}

/// One row per image: the image, and its map over it, each pixel a 4×4 square.
fn draw(path: &Path, images: &Samples, heat: &[f32]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (h, w) = (images.shape[1], images.shape[2]);
    let overlays: Vec<Overlay<'_>> = (0..images.len())
        .map(|i| Overlay {
            image: images.sample(i),
            channels: images.shape[0],
            height: h,
            width: w,
            heat: &heat[i * h * w..(i + 1) * h * w],
        })
        .collect();
    save_overlays(path, &overlays, 4, false)?;
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut dataset, mut device, mut seed, mut picture) = (Dataset::Mnist, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dataset" => dataset = Dataset::parse(&value()?)?,
            "--device" => device = Some(value()?),
            "--seed" => seed = Some(value()?.parse().context("--seed takes an integer")?),
            "--out" => picture = Some(PathBuf::from(value()?)),
            other => bail!(
                "unknown argument {other:?} (expected --dataset mnist|fashion, --device NAME, --seed N, --out FILE.png)"
            ),
        }
    }
    let defaults = Options::new(dataset);
    let options = Options {
        device: device.unwrap_or(defaults.device),
        seed: seed.unwrap_or(defaults.seed),
        picture: picture.unwrap_or(defaults.picture),
        ..defaults
    };
    let start = Instant::now();
    run(&options)?;
    println!("total time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
