//! Data-parallel training follows one-device training with the same global batch: shards on
//! several devices in one process, and shards in several "processes" (threads here, joined by
//! an all-reduce over shared memory; the MPI collective is tested in tests/mpi.rs).
//!
//! Tolerance: the data-parallel gradient is `Σ_k (n_k/n)·∇L_k`, the one-device gradient
//! `∇L`; they differ by float rounding (≈ 1e-7 relative per step), and 30 epochs of SGD
//! (600 steps) on this small MLP let that grow to ≈ 1e-6 in the predicted probabilities —
//! 1e-4 leaves room for other CPUs' summation orders while a wrong shard weighting (e.g.
//! summing instead of averaging) moves them by more than 1e-2.

use std::sync::{Arc, Barrier, Mutex};

use burn::tensor::Device;
use sora::core::{HeadSpec, IdentitySpec, ModelSpec, Task};
use sora::train::{
    Collective, OptimizerConfig, Parallel, Progress, TabularData, Targets, TrainConfig, TrainError,
    Trainer,
};

/// XOR-like data: the class is whether x0 and x1 have the same sign.
fn data() -> TabularData {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let a = ((i * 37) % 300) as f32 / 150.0 - 1.0;
        let b = ((i * 91) % 300) as f32 / 150.0 - 1.0;
        x.extend([a, b]);
        y.push(usize::from(a * b > 0.0));
    }
    TabularData::new(
        x,
        2,
        Targets::Classes {
            labels: y,
            n_classes: 2,
        },
    )
    .unwrap()
}

fn config() -> TrainConfig {
    // 300 rows in batches of 16: the last batch of each epoch has 12 rows, so shards of
    // unequal size are part of the run.
    TrainConfig::new(30, 16, 0.1)
        .with_optimizer(OptimizerConfig::sgd(0.9))
        .with_seed(3)
        .with_progress(Progress::Quiet)
}

/// Trains with `parallel` and returns the class probabilities of every row and the
/// per-epoch training losses.
fn run(device: &Device, parallel: Parallel) -> (Vec<f32>, Vec<f64>) {
    let spec = ModelSpec::new(
        IdentitySpec::new(2),
        HeadSpec::new(&[16]),
        Task::Classification { n_classes: 2 },
    )
    .check()
    .unwrap();
    let trainer = Trainer::new(config(), device)
        .with_parallel(parallel)
        .unwrap();
    let data = data();
    let fitted = trainer.fit(trainer.init(&spec), &data, None).unwrap();
    let losses = fitted.history.epochs.iter().map(|e| e.train_loss).collect();
    (trainer.predict(&fitted.model, &data).unwrap(), losses)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn shards_on_several_devices_follow_one_device() {
    let device = sora::device::test_device();
    let (one, one_loss) = run(&device, Parallel::None);
    let (two, two_loss) = run(
        &device,
        Parallel::Devices(vec![device.clone(), device.clone()]),
    );
    let (three, _) = run(&device, Parallel::Devices(vec![device.clone(); 3]));
    let (d2, d3) = (max_diff(&one, &two), max_diff(&one, &three));
    println!("max |Δp|: 2 devices {d2:.2e}, 3 devices {d3:.2e}");
    assert!(d2 < 1e-4 && d3 < 1e-4, "{d2} {d3}");
    for (a, b) in one_loss.iter().zip(&two_loss) {
        assert!(
            (a - b).abs() < 1e-4,
            "epoch losses {one_loss:?} vs {two_loss:?}"
        );
    }
    // The model learned (so the comparison is not between two untrained models).
    assert!(
        one_loss.last().unwrap() < &(0.5 * one_loss[0]),
        "{one_loss:?}"
    );
    // Same devices, same seed: the same run.
    assert_eq!(
        two,
        run(&device, Parallel::Devices(vec![device.clone(); 2])).0
    );
}

#[cfg(all(feature = "flex", feature = "ndarray"))]
#[test]
fn shards_on_two_backends_follow_one_device() {
    let flex = sora::device::device("flex").unwrap();
    let ndarray = sora::device::device("ndarray").unwrap();
    let (one, _) = run(&flex, Parallel::None);
    let (mixed, _) = run(&flex, Parallel::Devices(vec![flex.clone(), ndarray]));
    let d = max_diff(&one, &mixed);
    println!("max |Δp|: flex + ndarray {d:.2e}");
    assert!(d < 1e-4, "{d}");
}

/// An all-reduce between threads: each adds its buffer into a shared sum, then all read it.
#[derive(Debug)]
struct ThreadCollective {
    rank: usize,
    size: usize,
    barrier: Arc<Barrier>,
    sum: Arc<Mutex<Vec<f32>>>,
}

impl Collective for ThreadCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), TrainError> {
        // Ranks add in rank order so every run sums the same way.
        for turn in 0..self.size {
            if turn == self.rank {
                let mut sum = self.sum.lock().unwrap();
                if turn == 0 {
                    sum.clear();
                    sum.extend_from_slice(values);
                } else {
                    sum.iter_mut().zip(values.iter()).for_each(|(a, b)| *a += b);
                }
            }
            self.barrier.wait();
        }
        values.copy_from_slice(&self.sum.lock().unwrap());
        self.barrier.wait();
        Ok(())
    }
}

#[test]
fn shards_in_several_processes_follow_one_process() {
    let device = sora::device::test_device();
    let (one, _) = run(&device, Parallel::None);
    let size = 2;
    let barrier = Arc::new(Barrier::new(size));
    let sum = Arc::new(Mutex::new(Vec::new()));
    let results: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let collective = ThreadCollective {
                    rank,
                    size,
                    barrier: barrier.clone(),
                    sum: sum.clone(),
                };
                let device = device.clone();
                s.spawn(move || run(&device, Parallel::Processes(Arc::new(collective))).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The replicas stay identical, and follow the one-process run.
    assert_eq!(results[0], results[1]);
    let d = max_diff(&one, &results[0]);
    println!("max |Δp|: 2 processes {d:.2e}");
    assert!(d < 1e-4, "{d}");
}

#[test]
fn a_rank_beyond_the_size_is_refused() {
    let collective = ThreadCollective {
        rank: 2,
        size: 2,
        barrier: Arc::new(Barrier::new(1)),
        sum: Arc::new(Mutex::new(Vec::new())),
    };
    let err = Trainer::new(config(), &sora::device::test_device())
        .with_parallel(Parallel::Processes(Arc::new(collective)))
        .unwrap_err();
    assert!(err.to_string().contains("rank 2 of 2"), "{err}");
    let err = Trainer::new(config(), &sora::device::test_device())
        .with_parallel(Parallel::Devices(Vec::new()))
        .unwrap_err();
    assert!(err.to_string().contains("devices"), "{err}");
}

mod common;

#[test]
fn the_program_trains_on_several_devices_and_refuses_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model");
    let device = common::device();
    let devices = format!("{device},{device}");
    let heart = [
        "train",
        "--data",
        "data/heart_cleveland/heart_cleveland.csv",
        "--target",
        "num",
        "--target-above",
        "0",
        "--epochs",
        "5",
        "--progress",
        "quiet",
    ];
    let mut args = heart.to_vec();
    args.extend(["--devices", &devices, "--out", out.to_str().unwrap()]);
    let stdout = common::ok(&args);
    assert!(stdout.contains("data-parallel on 2 devices"), "{stdout}");
    assert!(out.join("model.safetensors").is_file());

    let mut args = heart.to_vec();
    args.extend(["--devices", "flex,gpu9"]);
    let err = common::usage_error(&args);
    assert!(err.contains("--devices") && err.contains("gpu9"), "{err}");
    let mut args = heart.to_vec();
    args.extend(["--distributed", "carrier-pigeon"]);
    let err = common::usage_error(&args);
    assert!(err.contains("[possible values: mpi]"), "{err}");
    #[cfg(not(feature = "mpi"))]
    {
        let mut args = heart.to_vec();
        args.extend(["--distributed", "mpi"]);
        let err = common::fails(&args);
        assert!(err.contains("--features mpi"), "{err}");
    }
}
