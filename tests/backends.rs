//! Backend parity: on every compiled backend (flex, ndarray, and LibTorch's CPU device with
//! `--features tch`), the same weights give the same outputs and the same input gradients, and
//! the same short training run ends in the same place.
//!
//! The reference is always flex: each model is initialised there, written to safetensors bytes,
//! and loaded onto the other backends. Differences are measured, printed (run with
//! `-- --nocapture` to see them; `scripts/test-tch.sh` does) and checked against tolerances
//! derived below. The measured figures are in `docs/backends.md`.
//!
//! # Tolerances
//!
//! Backends differ only in the order and grouping of float32 sums (blocked matrix multiplies,
//! SIMD lanes, tree reductions, fused multiply-adds). A sum of `n` terms in another order
//! differs by at most about `n · ε` (ε = `f32::EPSILON` ≈ 1.19e-7) relative to the partial
//! sums' magnitude. Along a network, these errors add up over every reduction on the path from
//! input to output (forward) and back (the input gradient). So each case counts `n`, the terms
//! summed along that path (the fan-ins, pooling windows, batch-norm statistics, time steps),
//! and allows `8 · ε · n` of the largest reference magnitude: the factor 8 covers partial sums
//! larger than the result and the rounding of the activations between layers. The test fails
//! on a genuine kernel difference (a wrong padding, a transposed weight, a different LSTM gate
//! order), which shows up at the 1e-2 to 1e0 level.

use std::path::Path;

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sora::conv::{Conv2dSpec, ConvBlockSpec, Pool};
use sora::core::weights::{load_safetensors_bytes, to_safetensors_bytes};
use sora::core::{EncoderSpec, HeadSpec, IdentitySpec, Model, ModelSpec, Task};
use sora::datasets::bundled_digits;
use sora::device::DeviceChoice;
use sora::text::{Cell, SeqPool, TextSpec};
use sora::train::{OptimizerConfig, Progress, TrainConfig, Trainer};

/// The compiled backends, flex (the reference) first; LibTorch's first CUDA device too when
/// LibTorch sees one (not yet run: see docs/backends.md).
fn backends() -> Vec<DeviceChoice> {
    let all = [DeviceChoice::Flex, DeviceChoice::Ndarray, DeviceChoice::Tch];
    assert!(all[0].is_compiled(), "the parity suite needs flex");
    let mut compiled: Vec<DeviceChoice> = all.into_iter().filter(|c| c.is_compiled()).collect();
    if DeviceChoice::TchCuda(0).device().is_ok() {
        compiled.push(DeviceChoice::TchCuda(0));
    }
    // A parity suite over flex alone would compare nothing and pass.
    assert!(
        compiled.len() >= 2,
        "the parity suite compares backends, and this build has only {compiled:?}; build with \
         `--features ndarray` (default) or `--features tch`"
    );
    compiled
}

/// Largest absolute difference, and that divided by the largest reference magnitude.
#[derive(Debug, Clone, Copy)]
struct Diff {
    abs: f64,
    rel: f64,
}

fn diff(reference: &[f32], got: &[f32]) -> Diff {
    assert_eq!(reference.len(), got.len());
    let scale = reference.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
    let abs = reference
        .iter()
        .zip(got)
        .map(|(&r, &g)| (r as f64 - g as f64).abs())
        .fold(0.0f64, f64::max);
    Diff {
        abs,
        rel: abs / scale.max(f64::MIN_POSITIVE),
    }
}

fn tolerance(terms: usize) -> f64 {
    8.0 * f32::EPSILON as f64 * terms as f64
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().expect("float tensor")
}

/// Deterministic inputs in [-1, 1].
fn wave(n: usize, phase: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.731 + phase).sin()).collect()
}

/// A scalar from the logits that weights every output differently, so that each logit's
/// gradient path is exercised: `Σ_ij c_j · logit_ij`, `c_j = (j + 1) / C`.
fn score(logits: Tensor<2>) -> Tensor<1> {
    let [_, c] = logits.dims();
    let weights: Vec<f32> = (0..c).map(|j| (j + 1) as f32 / c as f32).collect();
    let w = Tensor::<1>::from_data(TensorData::new(weights, [c]), &logits.device());
    (logits * w.unsqueeze_dim::<2>(0)).sum()
}

/// Loads the reference weights onto `choice`'s autodiff device.
fn load_onto<S: EncoderSpec>(
    spec: &sora::core::CheckedSpec<S>,
    bytes: &[u8],
    choice: DeviceChoice,
) -> (Model<S::Encoder>, Device) {
    let device = choice.device().unwrap().autodiff();
    let fresh = spec.init(&device);
    let model = load_safetensors_bytes(fresh, bytes.to_vec(), Path::new("flex weights")).unwrap();
    (model, device)
}

/// Runs one parity case: for each backend, `run` gives (outputs, input gradient); both are
/// compared with flex's.
fn parity_case(name: &str, terms: usize, run: impl Fn(DeviceChoice) -> (Vec<f32>, Vec<f32>)) {
    let tol = tolerance(terms);
    let mut all = backends().into_iter();
    let reference = all.next().map(&run).unwrap();
    assert!(
        reference.1.iter().any(|&g| g != 0.0),
        "{name}: the input gradient should not vanish"
    );
    for choice in all {
        let (out, grad) = run(choice);
        let d_out = diff(&reference.0, &out);
        let d_grad = diff(&reference.1, &grad);
        println!(
            "parity {name:<10} flex vs {:<8} output max abs {:.2e} rel {:.2e}; input gradient \
             max abs {:.2e} rel {:.2e}; tolerance rel {tol:.2e} (n = {terms})",
            choice.name(),
            d_out.abs,
            d_out.rel,
            d_grad.abs,
            d_grad.rel
        );
        assert!(
            d_out.rel <= tol,
            "{name} on {choice}: output {d_out:?} > {tol:e}"
        );
        assert!(
            d_grad.rel <= tol,
            "{name} on {choice}: input gradient {d_grad:?} > {tol:e}"
        );
    }
}

#[test]
fn mlp_head_outputs_and_input_gradients_agree() {
    // 12 → 32 → 16 → 3, ReLU, with layer norm (its mean and variance reduce over the width).
    let spec = ModelSpec::new(
        IdentitySpec::new(12),
        HeadSpec::new(&[32, 16]).with_norm(Some(sora::core::Norm::Layer)),
        Task::Classification { n_classes: 3 },
    )
    .check()
    .unwrap();
    let flex = DeviceChoice::Flex.device().unwrap().autodiff();
    flex.seed(11);
    let bytes = to_safetensors_bytes(&spec.init(&flex)).unwrap();
    // Forward: fan-ins 12 + 32 + 16, layer-norm reductions 32 + 16 (twice each);
    // backward: fan-outs 3 + 16 + 32, the same layer-norm reductions again.
    let terms = (12 + 32 + 16) + 2 * (32 + 16) + (3 + 16 + 32) + 2 * (32 + 16);
    parity_case("mlp", terms, |choice| {
        let (model, device) = load_onto(&spec, &bytes, choice);
        let x = Tensor::<2>::from_data(TensorData::new(wave(8 * 12, 0.3), [8, 12]), &device)
            .require_grad();
        let logits = model.forward(x.clone());
        let grads = score(logits.clone()).backward();
        (values(logits), values(x.grad(&grads).unwrap()))
    });
}

#[test]
fn conv2d_encoder_outputs_and_input_gradients_agree() {
    // [1, 8, 8] → conv 4×3×3 (padding 1, batch norm) → conv 8×3×3 → max pool 2 → global
    // average → 8 → 16 → 10.
    let encoder = Conv2dSpec::new(
        [1, 8, 8],
        vec![
            ConvBlockSpec::new(4, 3)
                .with_padding(1)
                .with_batch_norm(true),
            ConvBlockSpec::new(8, 3)
                .with_padding(0)
                .with_pool(Pool::Max, 2),
        ],
    );
    let spec = ModelSpec::new(
        encoder,
        HeadSpec::new(&[16]),
        Task::Classification { n_classes: 10 },
    )
    .check()
    .unwrap();
    let flex = DeviceChoice::Flex.device().unwrap().autodiff();
    flex.seed(12);
    let bytes = to_safetensors_bytes(&spec.init(&flex)).unwrap();
    // Forward: conv fan-ins 1·9 and 4·9, batch-norm statistics over 4 samples · 64 pixels
    // (mean and variance), the 3×3 global average, head fan-ins 8 + 16. Backward: head
    // fan-outs 10 + 16, the two convolutions' fan-outs 8·9 and 4·9, the batch-norm
    // statistics again.
    let terms = (9 + 36 + 2 * 256 + 9 + 8 + 16) + (10 + 16 + 72 + 36 + 2 * 256);
    parity_case("conv2d", terms, |choice| {
        let (model, device) = load_onto(&spec, &bytes, choice);
        let x = Tensor::<4>::from_data(TensorData::new(wave(4 * 64, 1.1), [4, 1, 8, 8]), &device)
            .require_grad();
        let logits = model.forward(x.clone());
        let grads = score(logits.clone()).backward();
        (values(logits), values(x.grad(&grads).unwrap()))
    });
}

#[test]
fn lstm_text_encoder_outputs_and_embedding_gradients_agree() {
    // Embedding 40 × 8 → LSTM 16 over 10 tokens → masked mean → 8 → 2. The gradient is taken
    // at the embeddings (token ids have none), as the token attributions do.
    let seq_len = 10;
    let spec = ModelSpec::new(
        TextSpec::bag(40, seq_len, 8)
            .with_rnn(Cell::Lstm, 16, 1, false)
            .with_pool(SeqPool::Mean),
        HeadSpec::new(&[8]),
        Task::Classification { n_classes: 2 },
    )
    .check()
    .unwrap();
    let flex = DeviceChoice::Flex.device().unwrap().autodiff();
    flex.seed(13);
    let bytes = to_safetensors_bytes(&spec.init(&flex)).unwrap();
    // Forward: each step's gates sum 8 + 16 terms, chained over 10 steps, then the mean over
    // 10 positions and head fan-ins 16 + 8. Backward through time: each step's state gradient
    // sums the four gates' 4·16 terms, over 10 steps, plus the head's fan-outs 2 + 8.
    let terms = (10 * (8 + 16) + 10 + 16 + 8) + (10 * 64 + 2 + 8);
    let ids: Vec<i64> = (0..3 * seq_len as i64).map(|i| (i * 7 + 3) % 40).collect();
    // Three documents of 10, 7 and 4 real tokens; the rest is padding (id 0, mask 0).
    let lengths = [10, 7, 4];
    let mut mask = vec![0.0f32; 3 * seq_len];
    let mut padded = ids.clone();
    for (row, &len) in lengths.iter().enumerate() {
        for t in 0..seq_len {
            if t < len {
                mask[row * seq_len + t] = 1.0;
            } else {
                padded[row * seq_len + t] = 0;
            }
        }
    }
    parity_case("lstm-text", terms, |choice| {
        let (model, device) = load_onto(&spec, &bytes, choice);
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(padded.clone(), [3, seq_len]), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask.clone(), [3, seq_len]), &device);
        let embedded = model.encoder.embedding.forward(ids).detach().require_grad();
        let states = model.encoder.states_from_embeddings(embedded.clone());
        let logits = model.head.forward(model.encoder.pool(states, mask));
        let grads = score(logits.clone()).backward();
        (values(logits), values(embedded.grad(&grads).unwrap()))
    });
}

/// Every parameter of a model, flattened in name order.
fn parameters<M: ModuleSnapshot>(model: &M) -> Vec<f32> {
    let mut tensors = model.collect(None, None, false);
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    tensors
        .iter()
        .flat_map(|t| {
            let bytes = t.to_bytes().unwrap();
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Trains the digits MLP (64 → 32 → 10, SGD with momentum 0.9, 3 epochs of 45 batches, same
/// seed, so the same batches in the same order) from the same initial weights; returns the
/// per-epoch training losses and the final parameters.
fn train_digits(choice: DeviceChoice, initial: &[u8], lr: f64) -> (Vec<f64>, Vec<f32>) {
    let spec = digits_spec();
    let data = bundled_digits().unwrap();
    let device = choice.device().unwrap();
    let config = TrainConfig::new(3, 32, lr)
        .with_seed(5)
        .with_optimizer(OptimizerConfig::sgd(0.9))
        .with_progress(Progress::Quiet);
    let trainer = Trainer::new(config, &device);
    let model = load_safetensors_bytes(
        trainer.init(&spec),
        initial.to_vec(),
        Path::new("flex weights"),
    )
    .unwrap();
    let fitted = trainer.fit(model, &data.train, None).unwrap();
    let losses = fitted.history.epochs.iter().map(|e| e.train_loss).collect();
    (losses, parameters(&fitted.model))
}

fn digits_spec() -> sora::core::CheckedSpec {
    ModelSpec::new(
        IdentitySpec::new(64),
        HeadSpec::new(&[32]),
        Task::Classification { n_classes: 10 },
    )
    .check()
    .unwrap()
}

#[test]
fn short_training_run_ends_in_the_same_place() {
    let flex = DeviceChoice::Flex.device().unwrap().autodiff();
    flex.seed(21);
    let initial = to_safetensors_bytes(&digits_spec().init(&flex)).unwrap();
    let (ref_losses, ref_params) = train_digits(DeviceChoice::Flex, &initial, 0.05);
    assert!(
        ref_losses[2] < ref_losses[0] * 0.5,
        "the run should learn: {ref_losses:?}"
    );
    // 135 SGD steps feed each step's rounding differences into the next; a stable run keeps
    // them near the per-step level times the number of steps (135 · 8 · ε · (64 + 32 + 10)
    // ≈ 1.4e-2 of the largest weight would be the linear worst case). The tolerance is ten times
    // tighter than that, and the sensitivity check below shows it still catches a change of
    // the learning rate by 1 % — far smaller than any real backend defect.
    let loss_tol = 1e-3;
    let weight_tol = 1.5e-3;
    let (lr_losses, lr_params) = train_digits(DeviceChoice::Flex, &initial, 0.05 * 1.01);
    let lr_loss = rel_loss_diff(&ref_losses, &lr_losses);
    let lr_weights = diff(&ref_params, &lr_params);
    println!(
        "training  flex vs flex with lr × 1.01: final loss rel {lr_loss:.2e}, weights max abs \
         {:.2e} rel {:.2e} (must exceed the tolerances {loss_tol:e} / {weight_tol:e})",
        lr_weights.abs, lr_weights.rel
    );
    assert!(
        lr_loss > loss_tol || lr_weights.rel > weight_tol,
        "the tolerances would not notice a 1 % learning-rate change"
    );
    for choice in backends().into_iter().skip(1) {
        let (losses, params) = train_digits(choice, &initial, 0.05);
        let d_loss = rel_loss_diff(&ref_losses, &losses);
        let d_weights = diff(&ref_params, &params);
        println!(
            "training  flex vs {:<8} losses {losses:.6?} vs {ref_losses:.6?}: loss rel {d_loss:.2e}; \
             final weights max abs {:.2e} rel {:.2e}",
            choice.name(),
            d_weights.abs,
            d_weights.rel
        );
        assert!(d_loss <= loss_tol, "{choice}: losses differ by {d_loss:e}");
        assert!(
            d_weights.rel <= weight_tol,
            "{choice}: weights differ by {d_weights:?}"
        );
    }
}

/// Largest relative difference of the per-epoch losses.
fn rel_loss_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs())
        .fold(0.0, f64::max)
}
