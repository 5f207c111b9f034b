//! The training loop on real data: accuracy on digits, reproducibility, early stopping that
//! restores the best weights, resume, checkpoints, and the model directory.

use std::collections::BTreeMap;

use burn::store::ModuleSnapshot;
use burn::tensor::Device;
use sora::core::{CheckedSpec, HeadSpec, Identity, IdentitySpec, Model, ModelSpec, Task};
use sora::datasets::{Digits, bundled_digits};
use sora::device::test_device;
use sora::train::{
    InputSummary, LossConfig, Manifest, Metrics, ModelDir, OptimizerConfig, Progress, Schedule,
    TabularData, Targets, TrainConfig, TrainData, TrainError, Trainer, evaluate,
};

fn digits_spec() -> CheckedSpec {
    ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[128, 64]),
        Task::Classification { n_classes: 10 },
    )
    .check()
    .unwrap()
}

fn quiet(epochs: usize) -> TrainConfig {
    TrainConfig::new(epochs, 32, 0.05)
        .with_seed(42)
        .with_progress(Progress::Quiet)
}

fn digits() -> Digits {
    bundled_digits().unwrap()
}

/// Every tensor of the model, by name, as raw bytes: equal maps mean bit-identical weights.
fn weights(model: &Model<Identity>) -> BTreeMap<String, Vec<u8>> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.to_bytes().unwrap().to_vec()))
        .collect()
}

fn train(config: TrainConfig, device: &Device, data: &Digits) -> Model<Identity> {
    let trainer = Trainer::new(config, device);
    trainer
        .fit(trainer.init(&digits_spec()), &data.train, None)
        .unwrap()
        .model
}

#[test]
fn digits_mlp_reaches_097_test_accuracy() {
    let device = test_device();
    let data = digits();
    let model = train(quiet(20), &device, &data);
    let m = evaluate(&model, &data.test, 256, &device).unwrap();
    let Metrics::Classification(m) = m else {
        panic!("a classifier")
    };
    assert!(m.accuracy >= 0.97, "test accuracy {}", m.accuracy);
    assert_eq!(m.confusion.iter().flatten().sum::<usize>(), 360);
    assert!(m.auroc.unwrap() > 0.99, "{:?}", m.auroc);
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let device = test_device();
    let data = digits();
    let a = weights(&train(quiet(2), &device, &data));
    let b = weights(&train(quiet(2), &device, &data));
    assert!(a == b, "two runs with seed 42 differ");
    let c = weights(&train(quiet(2).with_seed(7), &device, &data));
    assert!(a != c, "seeds 42 and 7 gave the same weights");
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let device = test_device();
    let data = digits();
    // No later epoch can improve the validation loss by 10: the run stops after patience 2,
    // and the model must be exactly the one after epoch 1.
    let config = quiet(10).with_early_stopping(2, 10.0);
    let trainer = Trainer::new(config, &device);
    let fitted = trainer
        .fit(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap();
    assert!(fitted.stopped_early);
    assert_eq!(fitted.best_epoch, 1);
    assert_eq!(fitted.history.epochs.len(), 3);
    let one_epoch = train(quiet(1), &device, &data);
    assert!(weights(&fitted.model) == weights(&one_epoch));

    // With a real min_delta, the restored model has the lowest validation loss seen.
    let trainer = Trainer::new(quiet(30).with_early_stopping(3, 0.0), &device);
    let fitted = trainer
        .fit(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap();
    let best = fitted
        .history
        .epochs
        .iter()
        .filter_map(|e| e.valid_loss)
        .fold(f64::INFINITY, f64::min);
    let loss = trainer.evaluate(&fitted.model, &data.test).unwrap().loss();
    assert!(
        (loss - best).abs() < 1e-9,
        "restored loss {loss}, best {best}"
    );
    let best_epoch = &fitted.history.epochs[fitted.best_epoch - 1];
    assert_eq!(best_epoch.valid_loss, Some(best));
}

#[test]
fn early_stopping_restores_batch_norm_statistics_with_the_weights() {
    let device = test_device();
    let data = digits();
    let spec = ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[64]).with_norm(Some(sora::core::Norm::Batch)),
        Task::Classification { n_classes: 10 },
    )
    .check()
    .unwrap();
    // Epoch 1 stays the best; epochs 2 and 3 move the running statistics on. The restored
    // model must score exactly what epoch 1 scored, statistics included.
    let trainer = Trainer::new(quiet(10).with_early_stopping(2, 10.0), &device);
    let fitted = trainer
        .fit(trainer.init(&spec), &data.train, Some(&data.test))
        .unwrap();
    assert_eq!((fitted.best_epoch, fitted.history.epochs.len()), (1, 3));
    let loss = trainer.evaluate(&fitted.model, &data.test).unwrap().loss();
    let epoch_1 = fitted.history.epochs[0].valid_loss.unwrap();
    assert!(
        (loss - epoch_1).abs() < 1e-9,
        "restored loss {loss}, epoch 1 {epoch_1}"
    );
}

#[test]
fn checkpoints_are_written_atomically_and_pruned() {
    let device = test_device();
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let config = quiet(4).with_schedule(Schedule::Cosine { min_lr: 0.001 });
    let plain = train(config.clone(), &device, &data);
    let trainer = Trainer::new(config, &device).with_checkpoints(dir.path());
    let fitted = trainer
        .fit(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap();
    // Checkpointing observes the run without changing it.
    assert!(weights(&fitted.model) == weights(&plain));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["epochs_done"], 4);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let best = format!("best-{}.bpk", state["best_epoch"]);
    let mut expected = vec![
        best,
        "model-4.bpk".into(),
        "optimizer-4.bpk".into(),
        "state.json".into(),
    ];
    expected.sort();
    assert_eq!(names, expected, "stale or temporary files left");
}

/// A run stopped after epoch 2 and resumed to epoch 4 ends with the weights of a run that
/// went to 4 epochs at once: the checkpoint holds the optimizer's momentum, and every
/// epoch's shuffling and dropout draw from (seed, epoch) alone.
#[test]
fn interrupted_run_resumes_bit_identically() {
    let device = test_device();
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let uninterrupted = {
        let trainer = Trainer::new(quiet(4), &device);
        trainer
            .fit(trainer.init(&digits_spec()), &data.train, Some(&data.test))
            .unwrap()
    };
    let trainer = Trainer::new(quiet(2), &device).with_checkpoints(dir.path());
    trainer
        .fit(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap();
    let trainer = Trainer::new(quiet(4), &device).with_checkpoints(dir.path());
    let resumed = trainer
        .resume(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap();
    assert_eq!(resumed.history.epochs.len(), 4);
    for (a, b) in resumed
        .history
        .epochs
        .iter()
        .zip(&uninterrupted.history.epochs)
    {
        assert_eq!(
            (a.train_loss, a.valid_loss),
            (b.train_loss, b.valid_loss),
            "epoch {}",
            a.epoch
        );
    }
    assert!(
        weights(&resumed.model) == weights(&uninterrupted.model),
        "resumed weights differ from an uninterrupted run"
    );
    // Another optimizer is a different run: refused with a typed error.
    let other = quiet(4).with_optimizer(OptimizerConfig::adam());
    let trainer = Trainer::new(other, &device).with_checkpoints(dir.path());
    let e = trainer
        .resume(trainer.init(&digits_spec()), &data.train, Some(&data.test))
        .unwrap_err();
    assert!(matches!(e, TrainError::Checkpoint { .. }), "{e}");
}

#[test]
fn optimizers_and_schedules_all_learn() {
    let device = test_device();
    let data = digits();
    let configs = [
        OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        },
        OptimizerConfig::adam(),
        OptimizerConfig::adamw(),
    ];
    for (optimizer, lr) in configs.into_iter().zip([0.05, 0.002, 0.002]) {
        for schedule in [
            Schedule::Constant,
            Schedule::Step {
                step_epochs: 1,
                gamma: 0.5,
            },
            Schedule::Cosine { min_lr: 0.0 },
        ] {
            let mut config = quiet(3)
                .with_optimizer(optimizer.clone())
                .with_schedule(schedule.clone());
            config.lr = lr;
            let trainer = Trainer::new(config, &device);
            let fitted = trainer
                .fit(trainer.init(&digits_spec()), &data.train, None)
                .unwrap();
            let acc = trainer
                .evaluate(&fitted.model, &data.test)
                .unwrap()
                .accuracy()
                .unwrap();
            assert!(acc > 0.9, "{optimizer:?} {schedule:?}: accuracy {acc}");
            let lrs: Vec<f64> = fitted.history.epochs.iter().map(|e| e.lr).collect();
            match schedule {
                Schedule::Constant => assert!(lrs.iter().all(|&l| l == lr)),
                _ => assert!(lrs[2] < lrs[0], "{schedule:?}: {lrs:?}"),
            }
        }
    }
}

#[test]
fn class_weights_and_label_smoothing_change_the_loss() {
    let device = test_device();
    let data = digits();
    let base = train(quiet(1), &device, &data);
    let mut weighted = quiet(1);
    weighted.loss = LossConfig {
        class_weights: Some((1..=10).map(|w| w as f32).collect()),
        label_smoothing: None,
    };
    let mut smoothed = quiet(1);
    smoothed.loss = LossConfig {
        class_weights: None,
        label_smoothing: Some(0.1),
    };
    let w = weights(&base);
    assert!(w != weights(&train(weighted, &device, &data)));
    assert!(w != weights(&train(smoothed, &device, &data)));
    let mut bad = quiet(1);
    bad.loss.class_weights = Some(vec![1.0; 3]);
    let trainer = Trainer::new(bad, &device);
    let e = trainer
        .fit(trainer.init(&digits_spec()), &data.train, None)
        .unwrap_err();
    assert!(e.to_string().contains("loss.class_weights"), "{e}");
}

#[test]
fn regression_learns_a_smooth_function() {
    let device = test_device();
    // y = sin(x0) + 0.5 x1², on a grid.
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..40 {
        for j in 0..10 {
            let (a, b) = (i as f32 / 10.0 - 2.0, j as f32 / 5.0 - 1.0);
            x.extend([a, b]);
            y.push(a.sin() + 0.5 * b * b);
        }
    }
    let data = TabularData::new(x, 2, Targets::Values { values: y, d: 1 }).unwrap();
    let spec = ModelSpec::new(
        IdentitySpec::new(2),
        HeadSpec::new(&[32, 32]),
        Task::Regression { n_targets: 1 },
    )
    .check()
    .unwrap();
    let config = TrainConfig::new(60, 16, 0.01)
        .with_seed(3)
        .with_progress(Progress::Quiet);
    let trainer = Trainer::new(config, &device);
    let fitted = trainer.fit(trainer.init(&spec), &data, None).unwrap();
    let Metrics::Regression(m) = trainer.evaluate(&fitted.model, &data).unwrap() else {
        panic!("a regressor")
    };
    assert!(m.r2 > 0.95, "{m:?}");
    assert!(m.rmse < 0.2, "{m:?}");
}

#[test]
fn model_dir_round_trip_and_no_overwrite_on_failure() {
    let device = test_device();
    let data = digits();
    let spec = digits_spec();
    let config = quiet(3);
    let trainer = Trainer::new(config.clone(), &device);
    let fitted = trainer
        .fit(trainer.init(&spec), &data.train, Some(&data.test))
        .unwrap();
    let metrics = trainer.evaluate(&fitted.model, &data.test).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(root.path().join("digits"));
    // A bare model directory: spec and weights, no data pipeline (`ModelDir::load` reads it).
    let manifest = Manifest::new(
        "bare",
        "classification",
        InputSummary::new("64 standardised pixel values"),
    );
    dir.save(
        &manifest,
        &spec,
        &fitted.model,
        &config,
        Some(&metrics),
        Some(&fitted.history),
        &[],
    )
    .unwrap();
    for file in [
        "spec.json",
        "model.safetensors",
        "train.json",
        "metrics.json",
        "history.json",
        "curves.png",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let png = std::fs::read(dir.path().join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let loaded = dir.load::<IdentitySpec>(&device).unwrap();
    assert_eq!(loaded.train_config.as_ref(), Some(&config));
    assert_eq!(loaded.metrics.as_ref(), Some(&metrics));
    let again = evaluate(&loaded.model, &data.test, 100, &device).unwrap();
    assert_eq!(
        again, metrics,
        "load → evaluate must give the same predictions"
    );
    let p1 = trainer.predict(&fitted.model, &data.test).unwrap();
    let p2 = trainer.predict(&loaded.model, &data.test).unwrap();
    assert_eq!(p1, p2);

    // A spec that no longer matches the weights: loading fails naming the tensor.
    let spec_path = dir.path().join("spec.json");
    let good_spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(&spec_path, good_spec.replace("128", "100")).unwrap();
    let e = dir.load::<IdentitySpec>(&device).unwrap_err().to_string();
    assert!(
        e.contains("head.hidden.0.linear") && e.contains("model.safetensors"),
        "{e}"
    );
    std::fs::write(&spec_path, &good_spec).unwrap();

    // A save that fails part-way (an extra file cannot be written) leaves the old directory.
    let weights_before = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let other = train(quiet(1), &device, &data);
    dir.save(
        &manifest,
        &spec,
        &other,
        &config,
        None,
        None,
        &[("no/such/dir", vec![])],
    )
    .unwrap_err();
    assert_eq!(
        std::fs::read(dir.path().join("model.safetensors")).unwrap(),
        weights_before
    );
    assert!(dir.load::<IdentitySpec>(&device).is_ok());
}

#[test]
fn bad_data_is_a_typed_error() {
    let e = TabularData::new(
        vec![1.0, f32::NAN, 2.0, 3.0],
        2,
        Targets::Classes {
            labels: vec![0, 1],
            n_classes: 2,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("row 0, feature 1"), "{e}");
    let e = TabularData::new(
        vec![1.0, 2.0],
        2,
        Targets::Classes {
            labels: vec![3],
            n_classes: 2,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("row 0: class 3"), "{e}");
    let device = test_device();
    let data = digits();
    let spec = ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[8]),
        Task::Classification { n_classes: 3 },
    )
    .check()
    .unwrap();
    let trainer = Trainer::new(quiet(1), &device);
    let e = trainer
        .fit(trainer.init(&spec), &data.train, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("10 classes") && e.contains("outputs 3"), "{e}");
    assert_eq!(data.train.len(), 1437);
}
