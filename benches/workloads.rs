//! The `BENCH.md` workloads on Sora, one per process, printing one JSON line.
//!
//! ```text
//! cargo bench --bench workloads -- --workload mlp-digits|mlp-wide|infer|matmul --device flex|ndarray
//! ```
//! `benches/compare.py` runs these beside `benches/reference/pytorch_bench.py` and writes
//! `docs/performance.md`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Distribution, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sora::core::Identity;
use sora::core::{HeadSpec, IdentitySpec, Model, ModelSpec, Task};
use sora::train::{Progress, TabularData, Targets, TrainConfig, TrainData, Trainer};

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
    let workload = workload.context("--workload mlp-digits|mlp-wide|infer|matmul")?;
    let device = sora::device::device(&device_name)?;
    let mut out = match workload.as_str() {
        "mlp-digits" => mlp_digits(&device)?,
        "mlp-wide" => mlp_wide(&device)?,
        "infer" => infer(&device)?,
        "matmul" => matmul(&device)?,
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
fn train(
    spec: &sora::core::CheckedSpec,
    data: &TabularData,
    config: TrainConfig,
    device: &Device,
) -> Result<(Model<Identity>, f64)> {
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
    for _ in 0..10 {
        run(&batch)?;
    }
    let calls = 50;
    let start = Instant::now();
    for _ in 0..calls {
        run(&batch)?;
    }
    let batch_seconds = start.elapsed().as_secs_f64();
    Ok(json!({
        "single_median_us": median(times),
        "batch_samples_per_s": (1024 * calls) as f64 / batch_seconds,
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
