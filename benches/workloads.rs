//! The `BENCH.md` workloads on Sora, one per process, printing one JSON line.
//!
//! ```text
//! cargo bench --bench workloads -- --workload mlp-digits|mlp-wide|cnn-digits|audio-cnn|lstm-text|gru-text|infer|matmul|loop-overhead|explain-ig --device flex|ndarray|tch|tch-cuda:N
//! ```
//! `benches/compare.py` runs these beside `benches/reference/pytorch_bench.py` and writes
//! `docs/performance.md`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Distribution, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sora::conv::{Conv2dSpec, ConvBlockSpec, Pool};
use sora::core::{Encoder, EncoderSpec, Identity};
use sora::core::{HeadSpec, IdentitySpec, Model, ModelSpec, Task};
use sora::text::{Cell, SeqPool, TextSpec};
use sora::train::{
    ArrayData, Progress, TabularData, Targets, TokenData, TrainConfig, TrainData, Trainer,
};

const SEED: u64 = 42;

// The allocator the `sora` program ships with (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let mut workload = None;
    let mut device_name = "flex".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workload" => workload = args.next(),
            "--device" => device_name = args.next().context("--device needs a name")?,
            "--bench" => {} // added by `cargo bench`
            other => bail!("unknown argument {other:?}"),
        }
    }
    let workload = workload.context(
        "--workload mlp-digits|mlp-wide|cnn-digits|audio-cnn|lstm-text|gru-text|infer|matmul|loop-overhead|explain-ig",
    )?;
    let device = sora::device::device(&device_name)?;
    let mut out = match workload.as_str() {
        "mlp-digits" => mlp_digits(&device)?,
        "mlp-wide" => mlp_wide(&device)?,
        "cnn-digits" => cnn_digits(&device)?,
        "audio-cnn" => audio_cnn(&device)?,
        "lstm-text" => recurrent_text(&device, Cell::Lstm)?,
        "gru-text" => recurrent_text(&device, Cell::Gru)?,
        "infer" => infer(&device)?,
        "matmul" => matmul(&device)?,
        "loop-overhead" => loop_overhead(&device)?,
        "explain-ig" => explain_ig(&device)?,
        other => bail!("unknown workload {other:?}"),
    };
    let obj = out.as_object_mut().expect("an object");
    obj.insert("impl".into(), json!("sora"));
    obj.insert("workload".into(), json!(workload));
    obj.insert("backend".into(), json!(device_name));
    obj.insert(
        "version".into(),
        json!(format!(
            "sora {} / burn {}",
            env!("CARGO_PKG_VERSION"),
            sora::BURN_VERSION
        )),
    );
    obj.insert(
        "threads".into(),
        json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
    );
    obj.insert("peak_rss_mib".into(), json!(peak_rss_mib()));
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn classifier(d_input: usize, hidden: &[usize], n_classes: i64) -> Result<sora::core::CheckedSpec> {
    Ok(ModelSpec::new(
        IdentitySpec::new(d_input),
        HeadSpec::new(hidden),
        Task::Classification { n_classes },
    )
    .check()?)
}

/// Trains a model; returns it with the seconds of the training loop.
fn train<S, D>(
    spec: &sora::core::CheckedSpec<S>,
    data: &D,
    config: TrainConfig,
    device: &Device,
) -> Result<(Model<S::Encoder>, f64)>
where
    S: EncoderSpec,
    D: TrainData<Input = <S::Encoder as Encoder>::Input>,
{
    let trainer = Trainer::new(
        config.with_seed(SEED).with_progress(Progress::Quiet),
        device,
    );
    let model = trainer.init(spec);
    let start = Instant::now();
    let fitted = trainer.fit(model, data, None)?;
    Ok((fitted.model, start.elapsed().as_secs_f64()))
}

fn trained_digits(device: &Device) -> Result<(Model<Identity>, f64, f64, sora::datasets::Digits)> {
    let digits = sora::datasets::bundled_digits()?;
    let spec = classifier(64, &[128, 64], 10)?;
    let (model, seconds) = train(&spec, &digits.train, TrainConfig::new(20, 32, 0.05), device)?;
    let trainer = Trainer::new(TrainConfig::new(1, 256, 0.05), device);
    let accuracy = trainer
        .evaluate(&model, &digits.test)?
        .accuracy()
        .expect("a classifier");
    Ok((model, seconds, accuracy, digits))
}

fn mlp_digits(device: &Device) -> Result<Value> {
    let (_, seconds, accuracy, digits) = trained_digits(device)?;
    let samples = digits.train.len() * 20;
    Ok(json!({
        "samples_per_s": samples as f64 / seconds,
        "test_accuracy": accuracy,
        "train_seconds": seconds,
    }))
}

/// The digits as 1×8×8 images (the standardised pixels of mlp-digits, row-major, so a sample's
/// 64 features are its 8 rows of 8).
fn digit_images(data: &TabularData) -> Result<ArrayData<4>> {
    Ok(ArrayData::<4>::new(
        data.features().to_vec(),
        &[1, 8, 8],
        data.targets().clone(),
    )?)
}

/// BENCH.md's cnn-digits: conv3×3(16, pad 1) → ReLU → maxpool 2 → conv3×3(32, pad 1) → ReLU →
/// global average pool → linear 10, trained as mlp-digits is (SGD, momentum 0.9, seeded
/// shuffle), batch 32, 10 epochs, lr 0.05.
fn cnn_digits(device: &Device) -> Result<Value> {
    let digits = sora::datasets::bundled_digits()?;
    let (train_data, test_data) = (digit_images(&digits.train)?, digit_images(&digits.test)?);
    let encoder = Conv2dSpec::new(
        [1, 8, 8],
        vec![
            ConvBlockSpec::new(16, 3)
                .with_padding(1)
                .with_pool(Pool::Max, 2),
            ConvBlockSpec::new(32, 3).with_padding(1),
        ],
    );
    let spec = ModelSpec::new(
        encoder,
        HeadSpec::new(&[]),
        Task::Classification { n_classes: 10 },
    )
    .check()?;
    let n_params = spec.summary().total_params;
    let epochs = 10;
    let (model, seconds) = train(
        &spec,
        &train_data,
        TrainConfig::new(epochs, 32, 0.05),
        device,
    )?;
    let trainer = Trainer::new(TrainConfig::new(1, 256, 0.05), device);
    let accuracy = trainer
        .evaluate(&model, &test_data)?
        .accuracy()
        .expect("a classifier");
    let samples = train_data.len() * epochs;
    Ok(json!({
        "samples_per_s": samples as f64 / seconds,
        "test_accuracy": accuracy,
        "train_seconds": seconds,
        "n_params": n_params,
    }))
}

/// BENCH.md's audio-cnn: the audio job's default 1-D CNN on MFCC frames of the bundled FSDD
/// recordings, with the features handed to the PyTorch side so that both train on the very
/// same inputs.
///
/// - Data: the 2,000 clips of `data/fsdd/<digit>/*.wav` (10 digits × 200, 8 kHz), read by
///   the audio job's own loader (`sora::jobs::media::load`: sorted by digit, then file name)
///   into MFCCs with `FeatureConfig`'s defaults and `kind = mfcc`: each clip fitted to 8,000
///   samples, 256-sample Hann windows every 80 samples, 40 mel bands, 13 coefficients →
///   `[13, 101]` per clip.
/// - Split: clip *i* (in that order) is a test clip when `i % 5 == 0` (400 test, 1,600
///   train).
/// - Standardisation: as the audio job does it, each coefficient row with the mean and
///   population standard deviation of the training clips over all their frames
///   (`Samples::channel_stats`, which floors the deviation at 1e-6 where BENCH.md's tables
///   count a zero as 1; no MFCC row comes near either).
/// - Model: `sora::jobs::media::default_spec([13, 101], 10)`: Conv1d along time with the 13
///   coefficients as channels, stride 1 and "same" padding (`kernel / 2`): width 5 → 32 +
///   ReLU + max pool 2, width 5 → 64 + ReLU + max pool 2 (window = stride = 2, floor:
///   101 → 50 → 25 frames), width 3 → 64 + ReLU, the maximum over time, a head
///   64 → 64 (ReLU) → 10; 29,578 parameters.
/// - Training: SGD (momentum 0.9) lr 0.01, batch 32, 10 epochs, shuffled every epoch
///   (seeded), cross-entropy; no augmentation, no early stopping. (At the digits' lr 0.05
///   this model, without batch norm, diverged on Sora and reached only 0.76 on PyTorch;
///   at 0.01 both reach 0.94–0.98.) Timing covers the training loop only (not reading the
///   clips nor computing the features).
///
/// Writes the standardised features of all 2,000 clips, in that order, as little-endian
/// float32 `[2000, 13, 101]` to `target/bench/audio-cnn-features.f32`, and their labels,
/// test indices and shapes to `target/bench/audio-cnn-features.json`
/// (`pytorch_bench.py --workload audio-cnn --features FILE` reads them).
fn audio_cnn(device: &Device) -> Result<Value> {
    use sora::conv::audio::{FeatureConfig, FeatureKind};
    use sora::jobs::media::{self, ConvSpec, LoadOptions, SavedInput, Source};

    let dir = sora::datasets::data_dir().join("fsdd");
    let features = FeatureConfig {
        kind: FeatureKind::Mfcc,
        ..FeatureConfig::default()
    };
    let options = LoadOptions {
        features: features.clone(),
        ..LoadOptions::default()
    };
    let start = Instant::now();
    let (samples, pipeline) = media::load(&Source::AudioFolder(dir.clone()), &options)
        .with_context(|| format!("reading the FSDD clips in {}", dir.display()))?;
    let feature_seconds = start.elapsed().as_secs_f64();
    let n_classes = samples.classes.len();
    let (test_idx, train_idx): (Vec<usize>, Vec<usize>) =
        (0..samples.len()).partition(|i| i % 5 == 0);
    let (mean, std) = samples.subset(&train_idx).channel_stats();
    let input = SavedInput {
        pipeline,
        mean,
        std,
        classes: samples.classes.clone(),
    };
    let mut standardised = samples.clone();
    input.normalize(&mut standardised);
    write_audio_features(&standardised, &test_idx, &features)?;

    let ConvSpec::Conv1d(spec) = media::default_spec(&standardised.shape, n_classes) else {
        bail!(
            "the default audio spec of {:?} is not 1-D",
            standardised.shape
        );
    };
    let spec = spec.check()?;
    let n_params = spec.summary().total_params;
    let array = |indices: &[usize]| -> Result<ArrayData<3>> {
        let part = standardised.subset(indices);
        Ok(ArrayData::<3>::new(
            part.values,
            &part.shape,
            Targets::Classes {
                labels: part.labels,
                n_classes,
            },
        )?)
    };
    let (train_data, test_data) = (array(&train_idx)?, array(&test_idx)?);
    let epochs = 10;
    let (model, seconds) = train(
        &spec,
        &train_data,
        TrainConfig::new(epochs, 32, 0.01),
        device,
    )?;
    let trainer = Trainer::new(TrainConfig::new(1, 256, 0.01), device);
    let accuracy = trainer
        .evaluate(&model, &test_data)?
        .accuracy()
        .expect("a classifier");
    let samples_seen = train_data.len() * epochs;
    Ok(json!({
        "samples_per_s": samples_seen as f64 / seconds,
        "test_accuracy": accuracy,
        "train_seconds": seconds,
        "n_params": n_params,
        "n_train": train_idx.len(),
        "n_test": test_idx.len(),
        "sample_shape": standardised.shape,
        "epochs": epochs,
        "feature_seconds": feature_seconds,
    }))
}

/// Writes audio-cnn's standardised features (little-endian float32, all clips in file order)
/// and a JSON description of them (shapes, labels, test indices, feature settings) to
/// `target/bench/`.
fn write_audio_features(
    samples: &sora::jobs::media::Samples,
    test_idx: &[usize],
    features: &sora::conv::audio::FeatureConfig,
) -> Result<()> {
    let bench = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&bench)?;
    let values = bench.join("audio-cnn-features.f32");
    let bytes: Vec<u8> = samples
        .values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&values, bytes).with_context(|| format!("writing {}", values.display()))?;
    let shape: Vec<usize> = std::iter::once(samples.len())
        .chain(samples.shape.iter().copied())
        .collect();
    let description = json!({
        "values": "audio-cnn-features.f32",
        "dtype": "float32 little-endian, row-major",
        "shape": shape,
        "labels": samples.labels,
        "classes": samples.classes,
        "test_indices": test_idx,
        "split": "clip i (sorted by digit, then file name) is a test clip when i % 5 == 0",
        "standardised": "each coefficient row with the training clips' mean and population \
                         standard deviation (floored at 1e-6)",
        "features": features,
    });
    let path = bench.join("audio-cnn-features.json");
    std::fs::write(&path, serde_json::to_string(&description)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// SplitMix64 (Steele, Lea & Flood 2014): one step of the generator that
/// `pytorch_bench.py` writes out too, so both sides draw the same token ids.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// BENCH.md's lstm-text data: `n × len` token ids, each `splitmix64() % vocab` from state
/// `SEED`, row-major; label = the document's first token mod 2.
fn lstm_text_data(n: usize, len: usize, vocab: usize) -> (Vec<usize>, Vec<usize>) {
    let mut state = SEED;
    let ids: Vec<usize> = (0..n * len)
        .map(|_| (splitmix64(&mut state) % vocab as u64) as usize)
        .collect();
    let labels = (0..n).map(|i| ids[i * len] % 2).collect();
    (ids, labels)
}

/// BENCH.md's lstm-text: embedding(10,000, 64) → LSTM(64→128, 1 layer) → last hidden state →
/// linear 2, SGD (momentum 0.9) lr 0.05, batch 32, 100 steps: one pass over the 3,200
/// sequences in order (no shuffle), so both sides see the same batches. Reports tokens/s =
/// 100 · 32 · 64 / training seconds, the epoch's mean training loss and the accuracy on the
/// 3,200 training sequences after it. `gru-text` is the same with a GRU.
fn recurrent_text(device: &Device, cell: Cell) -> Result<Value> {
    let (n, len, vocab, batch) = (3_200, 64, 10_000, 32);
    let (ids, labels) = lstm_text_data(n, len, vocab);
    let ids_sum: usize = ids.iter().sum();
    let data = TokenData::new(
        ids,
        vec![true; n * len],
        len,
        Targets::Classes {
            labels,
            n_classes: 2,
        },
    )?;
    let encoder = TextSpec::bag(vocab, len, 64)
        .with_rnn(cell, 128, 1, false)
        .with_pool(SeqPool::Last);
    let spec = ModelSpec::new(
        encoder,
        HeadSpec::new(&[]),
        Task::Classification { n_classes: 2 },
    )
    .check()?;
    let n_params = spec.summary().total_params;
    let mut config = TrainConfig::new(1, batch, 0.05)
        .with_seed(SEED)
        .with_progress(Progress::Quiet);
    config.shuffle = false;
    let trainer = Trainer::new(config, device);
    let model = trainer.init(&spec);
    let start = Instant::now();
    let fitted = trainer.fit(model, &data, None)?;
    let seconds = start.elapsed().as_secs_f64();
    let train_loss = fitted.history.epochs.last().map(|e| e.train_loss);
    let eval = Trainer::new(TrainConfig::new(1, 256, 0.05), device);
    let accuracy = eval
        .evaluate(&fitted.model, &data)?
        .accuracy()
        .expect("a classifier");
    let steps = n / batch;
    Ok(json!({
        "tokens_per_s": (steps * batch * len) as f64 / seconds,
        "train_accuracy": accuracy,
        "train_loss": train_loss,
        "train_seconds": seconds,
        "steps": steps,
        "n_params": n_params,
        "ids_sum": ids_sum,
    }))
}

fn standard_normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    // Box–Muller, two values per pair of uniforms.
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

fn mlp_wide(device: &Device) -> Result<Value> {
    let (n, d, k) = (16_384, 512, 10);
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let x = standard_normal(&mut rng, n * d);
    let w = standard_normal(&mut rng, d * k);
    let labels: Vec<usize> = (0..n)
        .map(|i| {
            let row = &x[i * d..(i + 1) * d];
            let scores: Vec<f32> = (0..k)
                .map(|c| (0..d).map(|j| row[j] * w[j * k + c]).sum())
                .collect();
            sora::train::argmax(&scores)
        })
        .collect();
    let data = TabularData::new(
        x,
        d,
        Targets::Classes {
            labels,
            n_classes: k,
        },
    )?;
    let spec = classifier(d, &[1024, 1024], k as i64)?;
    let n_params = spec.summary().total_params;
    let (_, seconds) = train(&spec, &data, TrainConfig::new(2, 256, 0.01), device)?;
    let samples = (n * 2) as f64;
    Ok(json!({
        "samples_per_s": samples / seconds,
        "gflops": 6.0 * n_params as f64 * samples / seconds / 1e9,
        "train_seconds": seconds,
        "n_params": n_params,
    }))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn infer(device: &Device) -> Result<Value> {
    let (model, _, accuracy, digits) = trained_digits(device)?;
    let single = digits.test.inputs(&[0], device);
    let rows: Vec<usize> = (0..1024).map(|i| i % digits.test.len()).collect();
    let batch = digits.test.inputs(&rows, device);
    let run = |x: &Tensor<2>| -> Result<Vec<f32>> {
        model
            .forward(x.clone())
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    for _ in 0..200 {
        run(&single)?;
    }
    let mut times = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let start = Instant::now();
        run(&single)?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    for _ in 0..20 {
        run(&batch)?;
    }
    // The median call of 300, as for the single sample (and as the reference does).
    let mut batch_times = Vec::with_capacity(300);
    for _ in 0..300 {
        let start = Instant::now();
        run(&batch)?;
        batch_times.push(start.elapsed().as_secs_f64());
    }
    Ok(json!({
        "single_median_us": median(times),
        "batch_samples_per_s": 1024.0 / median(batch_times),
        "test_accuracy": accuracy,
    }))
}

fn matmul(device: &Device) -> Result<Value> {
    let n = 2048;
    device.seed(SEED);
    let a = Tensor::<2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], Distribution::Default, device);
    let run = || -> f32 {
        a.clone()
            .matmul(b.clone())
            .slice([0..1, 0..1])
            .into_scalar::<f32>()
    };
    for _ in 0..3 {
        run();
    }
    let times: Vec<f64> = (0..10)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    Ok(json!({ "gflops": 2.0 * (n as f64).powi(3) / median(times) / 1e9 }))
}

/// Integrated Gradients (Gauss–Legendre, 50 steps, zero baseline) of the trained mlp-digits
/// model on the 360 test samples, each for its predicted class: as Captum's
/// `IntegratedGradients.attribute(..., return_convergence_delta=True)` in one call.
fn explain_ig(device: &Device) -> Result<Value> {
    use sora::explain_methods::{
        Attribution, Baseline, Inputs, IntegratedGradients, Target, outputs,
    };
    let (model, _, accuracy, digits) = trained_digits(device)?;
    // The weights, with PyTorch names and layouts, so the reference can explain the very same
    // model (`pytorch_bench.py --workload explain-ig --weights FILE`).
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench/explain-ig-model.safetensors");
    std::fs::create_dir_all(weights.parent().expect("a parent"))?;
    sora::core::weights::save_safetensors(&model, &weights)?;
    let inputs = Inputs::new(digits.test.features().to_vec(), 64)?;
    let (logits, k) = outputs(&model, &inputs, device)?;
    let targets: Vec<usize> = logits.chunks(k).map(sora::train::argmax).collect();
    let ig = IntegratedGradients {
        n_steps: 50,
        ..Default::default()
    };
    let target = Target::PerExample(targets);
    let run = || ig.attribute(&model, &inputs, &Baseline::Zeros, &target, device);
    run()?;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let start = Instant::now();
        last = Some(run()?);
        times.push(start.elapsed().as_secs_f64());
    }
    let deltas = last.and_then(|a| a.delta).unwrap_or_default();
    let abs: Vec<f64> = deltas.iter().map(|d| f64::from(d.abs())).collect();
    Ok(json!({
        "samples_per_s": inputs.n as f64 / median(times),
        "max_abs_delta": abs.iter().copied().fold(0.0, f64::max),
        "mean_abs_delta": abs.iter().sum::<f64>() / abs.len().max(1) as f64,
        "n_steps": 50,
        "method": "gausslegendre",
        "internal_batch_size": ig.internal_batch_size,
        "test_accuracy": accuracy,
        "weights": weights.display().to_string(),
    }))
}

/// Sora's loop against burn-train's `SupervisedTraining` + `Learner` on the mlp-digits workload,
/// both validating on the 360 test samples after every epoch (burn-train always validates):
/// what the learner's machinery (data-loader threads, event processing, per-batch metrics,
/// checkpointing) costs on a small model.
fn loop_overhead(device: &Device) -> Result<Value> {
    let digits = sora::datasets::bundled_digits()?;
    let spec = classifier(64, &[128, 64], 10)?;
    let epochs = 20;
    let samples = (digits.train.len() * epochs) as f64;

    let trainer = Trainer::new(
        TrainConfig::new(epochs, 32, 0.05)
            .with_seed(SEED)
            .with_progress(Progress::Quiet),
        device,
    );
    let model = trainer.init(&spec);
    let start = Instant::now();
    let fitted = trainer.fit(model, &digits.train, Some(&digits.test))?;
    let sora_seconds = start.elapsed().as_secs_f64();
    let sora_accuracy = trainer.evaluate(&fitted.model, &digits.test)?.accuracy();

    let (learner_seconds, learner_accuracy) = learner::train(&spec, &digits, epochs, device)?;
    Ok(json!({
        "sora_samples_per_s": samples / sora_seconds,
        "sora_test_accuracy": sora_accuracy,
        "learner_samples_per_s": samples / learner_seconds,
        "learner_test_accuracy": learner_accuracy,
        "ratio": learner_seconds / sora_seconds,
    }))
}

mod learner {
    use std::time::Instant;

    use anyhow::Result;
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::InMemDataset;
    use burn::module::Module;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::SgdConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
    use burn::train::metric::{AccuracyMetric, LossMetric, MetricDefinition};
    use burn::train::renderer::{
        EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
        MetricsRendererTraining,
    };
    use burn::train::{
        ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
    };
    use sora::core::{CheckedSpec, Identity, Model};
    use sora::datasets::Digits;
    use sora::train::{TabularData, TrainData};

    #[derive(Module, Debug)]
    pub struct Net {
        model: Model<Identity>,
    }

    #[derive(Debug, Clone)]
    pub struct Item {
        x: Vec<f32>,
        y: i64,
    }

    #[derive(Debug, Clone)]
    pub struct Batch {
        x: Tensor<2>,
        y: Tensor<1, Int>,
    }

    struct ItemBatcher;

    impl Batcher<Item, Batch> for ItemBatcher {
        fn batch(&self, items: Vec<Item>, device: &Device) -> Batch {
            let n = items.len();
            let x: Vec<f32> = items.iter().flat_map(|i| i.x.iter().copied()).collect();
            let y: Vec<i64> = items.iter().map(|i| i.y).collect();
            Batch {
                x: Tensor::from_data(TensorData::new(x, [n, 64]), device),
                y: Tensor::from_data(TensorData::new(y, [n]), device),
            }
        }
    }

    impl Net {
        fn output(&self, batch: Batch) -> ClassificationOutput {
            let logits = self.model.forward(batch.x);
            let loss = CrossEntropyLossConfig::new()
                .init(&logits.device())
                .forward(logits.clone(), batch.y.clone());
            ClassificationOutput::new(loss, logits, batch.y)
        }
    }

    impl TrainStep for Net {
        type Input = Batch;
        type Output = ClassificationOutput;

        fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
            let output = self.output(batch);
            TrainOutput::new(self, output.loss.backward(), output)
        }
    }

    impl InferenceStep for Net {
        type Input = Batch;
        type Output = ClassificationOutput;

        fn step(&self, batch: Batch) -> ClassificationOutput {
            self.output(batch)
        }
    }

    /// Shows nothing: the benchmark measures training, not drawing.
    struct Quiet;

    impl MetricsRendererTraining for Quiet {
        fn update_train(&mut self, _: MetricState) {}
        fn update_valid(&mut self, _: MetricState) {}
    }

    impl MetricsRendererEvaluation for Quiet {
        fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
    }

    impl TrainingProgressLogger for Quiet {
        fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
        fn update_epoch(&mut self, _: usize) {}
        fn start_split(&mut self, _: &str, _: usize) {}
        fn update_split(&mut self, _: usize) {}
        fn end_split(&mut self) {}
        fn end(&mut self) {}
        fn log_event_training(&mut self, _: String) {}
    }

    impl EvaluationProgressLogger for Quiet {
        fn start_global_progress(&mut self, _: usize) {}
        fn start_test(&mut self, _: &str, _: usize) {}
        fn update_test_progress(&mut self, _: usize) {}
        fn end_test(&mut self) {}
        fn end_global_progress(&mut self) {}
        fn log_event_evaluation(&mut self, _: String) {}
    }

    impl MetricsRenderer for Quiet {
        fn manual_close(&mut self) {}
        fn register_metric(&mut self, _: MetricDefinition) {}
    }

    fn items(data: &TabularData) -> Vec<Item> {
        let labels = match data.targets() {
            sora::train::Targets::Classes { labels, .. } => labels,
            sora::train::Targets::Values { .. } => unreachable!("digits are classes"),
        };
        (0..data.len())
            .map(|i| Item {
                x: data.row(i).to_vec(),
                y: labels[i] as i64,
            })
            .collect()
    }

    /// Trains with burn-train; returns (seconds of `launch`, test accuracy).
    pub fn train(
        spec: &CheckedSpec,
        digits: &Digits,
        epochs: usize,
        device: &Device,
    ) -> Result<(f64, f64)> {
        let train_device = device.clone().autodiff();
        train_device.seed(super::SEED);
        let net = Net {
            model: spec.init(&train_device),
        };
        let loader_train = DataLoaderBuilder::new(ItemBatcher)
            .batch_size(32)
            .shuffle(super::SEED)
            .set_device(train_device.clone())
            .build(InMemDataset::new(items(&digits.train)));
        let loader_valid = DataLoaderBuilder::new(ItemBatcher)
            .batch_size(256)
            .set_device(device.clone())
            .build(InMemDataset::new(items(&digits.test)));
        let optim = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
            ))
            .init();
        let dir = tempfile::tempdir()?;
        let start = Instant::now();
        let result = SupervisedTraining::new(dir.path(), loader_train, loader_valid)
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .num_epochs(epochs)
            .renderer(Box::new(Quiet))
            .launch(Learner::new(net, optim, 0.05));
        let seconds = start.elapsed().as_secs_f64();
        let model = result.model.model;
        let metrics = sora::train::evaluate(&model, &digits.test, 256, device)?;
        Ok((seconds, metrics.accuracy().unwrap_or(f64::NAN)))
    }
}
