//! The fused LSTM against Burn's `Lstm`, and the fused GRU against Burn's `Gru` (PyTorch's
//! formulation, `reset_after`), holding the same numbers: outputs, final states, input
//! gradients and weight gradients agree for sequences of 1, 7 and 64 steps, in both directions;
//! and the text encoder's last-state pooling over the fused layer picks each document's last
//! real step.
//!
//! Tolerance: both layers compute the same float32 expression; they differ in the order of the
//! sums (one `[x, h] · W` product against eight separate products added), in the bias added
//! as one vector, and in `tanh(z)` (the fused layer evaluates it as `2 · sigmoid(2z) − 1`, exact
//! in real arithmetic). Each of those moves a value by a few float32 ulps (≈ 1e-7 relative) per
//! step, and gradients summed over 64 steps and a batch collect a few hundred of them: 1e-4
//! absolute on values and gradients of order one is a hundred times that and still fails on
//! any wrong gate, transposition or time order (those move values by 1e-2 and more).

use burn::module::Param;
use burn::nn::GateController;
use burn::nn::Linear;
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::lstm::{BiLstmConfig, Lstm, LstmConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, Gradients};
use sora_text::gru::{FusedGru, FusedGruConfig};
use sora_text::lstm::{FusedBiLstmConfig, FusedLstm, FusedLstmConfig};

const TOL: f32 = 1e-4;

fn device() -> Device {
    let device = sora_device::test_device().autodiff();
    device.seed(7);
    device
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

fn max_abs<const D: usize>(a: Tensor<D>) -> f32 {
    a.abs().max().into_scalar::<f32>()
}

/// The fused gate order is i, f, o, g; Burn's gates are separate fields.
fn gates(lstm: &Lstm) -> [&GateController; 4] {
    [
        &lstm.input_gate,
        lstm.forget_gate.as_ref().expect("an uncoupled LSTM"),
        &lstm.output_gate,
        &lstm.cell_gate,
    ]
}

fn bias(linear: &Linear) -> Tensor<1> {
    linear.bias.as_ref().expect("a biased LSTM").val()
}

/// A fused layer holding exactly the numbers of `lstm`.
fn fused_from(lstm: &Lstm, d_input: usize, d_hidden: usize) -> FusedLstm {
    let mut fused = FusedLstmConfig::new(d_input, d_hidden).init(&lstm.devices()[0]);
    let weight = Tensor::cat(
        gates(lstm)
            .iter()
            .map(|g| {
                Tensor::cat(
                    vec![
                        g.input_transform.weight.val(),
                        g.hidden_transform.weight.val(),
                    ],
                    0,
                )
            })
            .collect(),
        1,
    );
    let bias_ih = Tensor::cat(
        gates(lstm)
            .iter()
            .map(|g| bias(&g.input_transform))
            .collect(),
        0,
    );
    let bias_hh = Tensor::cat(
        gates(lstm)
            .iter()
            .map(|g| bias(&g.hidden_transform))
            .collect(),
        0,
    );
    fused.weight = Param::from_tensor(weight.detach());
    fused.bias_ih = Param::from_tensor(bias_ih.detach());
    fused.bias_hh = Param::from_tensor(bias_hh.detach());
    fused
}

/// Burn's weight gradients arranged in the fused layout.
fn burn_weight_grad(lstm: &Lstm, grads: &Gradients) -> Tensor<2> {
    Tensor::cat(
        gates(lstm)
            .iter()
            .map(|g| {
                Tensor::cat(
                    vec![
                        g.input_transform
                            .weight
                            .grad(grads)
                            .expect("a weight gradient"),
                        g.hidden_transform
                            .weight
                            .grad(grads)
                            .expect("a weight gradient"),
                    ],
                    0,
                )
            })
            .collect(),
        1,
    )
}

fn burn_bias_grad(lstm: &Lstm, grads: &Gradients, input: bool) -> Tensor<1> {
    Tensor::cat(
        gates(lstm)
            .iter()
            .map(|g| {
                let linear = if input {
                    &g.input_transform
                } else {
                    &g.hidden_transform
                };
                linear
                    .bias
                    .as_ref()
                    .expect("a biased LSTM")
                    .grad(grads)
                    .expect("a bias gradient")
            })
            .collect(),
        0,
    )
}

/// Runs both layers on the same input with the loss `Σ out ⊙ probe + Σ final hidden` (so every
/// step and the final state carry gradient) and checks every output and gradient.
fn check_parity(batch: usize, seq_len: usize, d_input: usize, d_hidden: usize) {
    let device = device();
    let lstm = LstmConfig::new(d_input, d_hidden, true).init(&device);
    let fused = fused_from(&lstm, d_input, d_hidden);
    let data = Tensor::<3>::random(
        [batch, seq_len, d_input],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .into_data();
    let probe = Tensor::<3>::random(
        [batch, seq_len, d_hidden],
        Distribution::Normal(0.0, 1.0),
        &device,
    );

    let x_ref = Tensor::<3>::from_data(data.clone(), &device).require_grad();
    let (out_ref, state_ref) = lstm.forward(x_ref.clone(), None);
    let x_new = Tensor::<3>::from_data(data, &device).require_grad();
    let (out_new, state_new) = fused.forward(x_new.clone(), None);

    let what = format!("batch {batch}, {seq_len} steps");
    assert!(max_abs(out_ref.clone()) > 0.05, "{what}: a trivial output");
    let d = max_abs_diff(out_ref.clone(), out_new.clone());
    eprintln!("{what}: outputs differ by {d:e}");
    assert!(d < TOL, "{what}: outputs differ by {d}");
    let d = max_abs_diff(state_ref.cell.clone(), state_new.cell.clone());
    assert!(d < TOL, "{what}: final cells differ by {d}");
    let d = max_abs_diff(state_ref.hidden.clone(), state_new.hidden.clone());
    assert!(d < TOL, "{what}: final hidden states differ by {d}");

    let loss = |out: Tensor<3>, hidden: Tensor<2>| (out * probe.clone()).sum() + hidden.sum();
    let grads_ref = loss(out_ref, state_ref.hidden).backward();
    let grads_new = loss(out_new, state_new.hidden).backward();

    let g_ref = x_ref.grad(&grads_ref).expect("an input gradient");
    let g_new = x_new.grad(&grads_new).expect("an input gradient");
    assert!(
        max_abs(g_ref.clone()) > 0.05,
        "{what}: a trivial input gradient"
    );
    let d = max_abs_diff(g_ref, g_new);
    eprintln!("{what}: input gradients differ by {d:e}");
    assert!(d < TOL, "{what}: input gradients differ by {d}");

    let w_ref = burn_weight_grad(&lstm, &grads_ref);
    let w_new = fused.weight.grad(&grads_new).expect("a weight gradient");
    assert!(
        max_abs(w_ref.clone()) > 0.05,
        "{what}: a trivial weight gradient"
    );
    let scale = max_abs(w_ref.clone()).max(1.0);
    let d = max_abs_diff(w_ref, w_new);
    eprintln!("{what}: weight gradients differ by {d:e} (largest {scale})");
    assert!(d < TOL * scale, "{what}: weight gradients differ by {d}");
    for (input, bias) in [(true, &fused.bias_ih), (false, &fused.bias_hh)] {
        let b_ref = burn_bias_grad(&lstm, &grads_ref, input);
        let scale = max_abs(b_ref.clone()).max(1.0);
        let d = max_abs_diff(b_ref, bias.grad(&grads_new).expect("a bias gradient"));
        assert!(d < TOL * scale, "{what}: bias gradients differ by {d}");
    }
}

#[test]
fn fused_lstm_matches_burn_lstm_for_1_step() {
    check_parity(3, 1, 5, 4);
}

#[test]
fn fused_lstm_matches_burn_lstm_for_7_steps() {
    check_parity(3, 7, 5, 4);
}

#[test]
fn fused_lstm_matches_burn_lstm_for_64_steps() {
    check_parity(4, 64, 6, 8);
}

#[test]
fn fused_lstm_continues_from_a_given_state() {
    let device = device();
    let lstm = FusedLstmConfig::new(3, 4).init(&device);
    let x = Tensor::<3>::random([2, 9, 3], Distribution::Normal(0.0, 1.0), &device);
    let (whole, last) = lstm.forward(x.clone(), None);
    let (head, state) = lstm.forward(x.clone().slice(s![.., 0..4]), None);
    let (tail, last_split) = lstm.forward(x.slice(s![.., 4..9]), Some(state));
    let split = Tensor::cat(vec![head, tail], 1);
    assert!(max_abs_diff(whole, split) < 1e-6);
    assert!(max_abs_diff(last.cell, last_split.cell) < 1e-6);
}

#[test]
fn fused_bilstm_matches_burn_bilstm() {
    let (batch, seq_len, d_input, d_hidden) = (3, 7, 5, 4);
    let device = device();
    let reference = BiLstmConfig::new(d_input, d_hidden, true).init(&device);
    let mut fused = FusedBiLstmConfig::new(d_input, d_hidden).init(&device);
    fused.forward = fused_from(&reference.forward, d_input, d_hidden);
    fused.reverse = fused_from(&reference.reverse, d_input, d_hidden);
    let data = Tensor::<3>::random(
        [batch, seq_len, d_input],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .into_data();
    let x_ref = Tensor::<3>::from_data(data.clone(), &device).require_grad();
    let (out_ref, state_ref) = reference.forward(x_ref.clone(), None);
    let x_new = Tensor::<3>::from_data(data, &device).require_grad();
    let (out_new, state_new) = fused.forward(x_new.clone(), None);
    assert_eq!(out_new.dims(), [batch, seq_len, 2 * d_hidden]);
    let d = max_abs_diff(out_ref.clone(), out_new.clone());
    assert!(d < TOL, "outputs differ by {d}");
    let d = max_abs_diff(state_ref.hidden, state_new.hidden);
    assert!(d < TOL, "final hidden states differ by {d}");
    // Weight each position differently so a time-order mistake changes the gradient.
    let ramp = Tensor::<1, Int>::arange(0..seq_len as i64, &device)
        .float()
        .reshape([1, seq_len, 1]);
    let g_ref = x_ref
        .grad(&(out_ref * ramp.clone()).sum().backward())
        .expect("an input gradient");
    let g_new = x_new
        .grad(&(out_new * ramp).sum().backward())
        .expect("an input gradient");
    let d = max_abs_diff(g_ref, g_new);
    assert!(d < TOL, "input gradients differ by {d}");
}

#[test]
fn fused_lstm_initialises_like_pytorch() {
    let device = sora_device::test_device();
    let lstm = FusedLstmConfig::new(20, 16).init(&device);
    assert_eq!(lstm.weight.dims(), [36, 64]);
    assert_eq!(lstm.bias_ih.dims(), [64]);
    let bound = 1.0 / 4.0;
    let w = lstm.weight.val();
    assert!(max_abs(w.clone()) <= bound);
    // Uniform on ±1/4: the largest magnitude of 2,304 draws is close to the bound.
    assert!(max_abs(w) > 0.9 * bound);
}

#[test]
fn gradients_flow_to_every_time_step() {
    // Every step's input must get its own gradient, at odd lengths too.
    for seq_len in [1, 2, 3, 5, 13] {
        let device = device();
        let lstm = FusedLstmConfig::new(2, 3).init(&device);
        let x = Tensor::<3>::random([1, seq_len, 2], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let (out, _) = lstm.forward(x.clone(), None);
        let grads = out.sum().backward();
        let per_step = x
            .grad(&grads)
            .expect("an input gradient")
            .abs()
            .sum_dim(2)
            .reshape([seq_len]);
        let values: Vec<f32> = per_step.into_data().try_to_vec::<f32>().expect("f32");
        assert!(
            values.iter().all(|v| *v > 0.0),
            "{seq_len} steps: {values:?}"
        );
    }
}

#[test]
fn last_state_pooling_takes_each_documents_last_real_step() {
    use sora_core::EncoderSpec;
    use sora_text::{Cell, SeqPool, TextSpec};
    let device = device();
    for bidirectional in [false, true] {
        let spec = TextSpec::bag(20, 6, 4)
            .with_rnn(Cell::Lstm, 3, 1, bidirectional)
            .with_pool(SeqPool::Last);
        let encoder = spec.init(&device);
        let ids = Tensor::<2, Int>::from_data(
            burn::tensor::TensorData::new(vec![3i64, 4, 5, 0, 0, 0, 7, 8, 9, 10, 11, 12], [2, 6]),
            &device,
        );
        let mask = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(
                vec![
                    1.0f32, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                ],
                [2, 6],
            ),
            &device,
        );
        let states = encoder.states(ids);
        let width = states.dims()[2];
        let pooled = encoder.pool(states.clone(), mask);
        let first = states.clone().slice(s![0..1, 2..3]).reshape([1, width]);
        let second = states.slice(s![1..2, 5..6]).reshape([1, width]);
        let expected = Tensor::cat(vec![first, second], 0);
        let d = max_abs_diff(pooled.clone(), expected);
        assert!(
            d == 0.0,
            "bidirectional {bidirectional}: pooled state off by {d}"
        );
        assert!(max_abs(pooled) > 0.0);
    }
}

/// Burn's GRU gates in the fused order `r, z, n`.
fn gru_gates(gru: &Gru) -> [&GateController; 3] {
    [&gru.reset_gate, &gru.update_gate, &gru.new_gate]
}

/// A fused GRU holding exactly the numbers of `gru`.
fn fused_gru_from(gru: &Gru, d_input: usize, d_hidden: usize) -> FusedGru {
    let mut fused = FusedGruConfig::new(d_input, d_hidden).init(&gru.devices()[0]);
    let weight = Tensor::cat(
        gru_gates(gru)
            .iter()
            .map(|g| {
                Tensor::cat(
                    vec![
                        g.input_transform.weight.val(),
                        g.hidden_transform.weight.val(),
                    ],
                    0,
                )
            })
            .collect(),
        1,
    );
    let bias_of = |input: bool| {
        Tensor::cat(
            gru_gates(gru)
                .iter()
                .map(|g| {
                    bias(if input {
                        &g.input_transform
                    } else {
                        &g.hidden_transform
                    })
                })
                .collect(),
            0,
        )
    };
    fused.weight = Param::from_tensor(weight.detach());
    fused.bias_ih = Param::from_tensor(bias_of(true).detach());
    fused.bias_hh = Param::from_tensor(bias_of(false).detach());
    fused
}

fn check_gru_parity(batch: usize, seq_len: usize, d_input: usize, d_hidden: usize) {
    let device = device();
    let gru = GruConfig::new(d_input, d_hidden, true).init(&device);
    assert!(gru.reset_after, "PyTorch's formulation");
    let fused = fused_gru_from(&gru, d_input, d_hidden);
    let data = Tensor::<3>::random(
        [batch, seq_len, d_input],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .into_data();
    let probe = Tensor::<3>::random(
        [batch, seq_len, d_hidden],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let x_ref = Tensor::<3>::from_data(data.clone(), &device).require_grad();
    let out_ref = gru.forward(x_ref.clone(), None);
    let x_new = Tensor::<3>::from_data(data, &device).require_grad();
    let out_new = fused.forward(x_new.clone(), None);
    let what = format!("GRU batch {batch}, {seq_len} steps");
    assert!(max_abs(out_ref.clone()) > 0.05, "{what}: a trivial output");
    let d = max_abs_diff(out_ref.clone(), out_new.clone());
    eprintln!("{what}: outputs differ by {d:e}");
    assert!(d < TOL, "{what}: outputs differ by {d}");
    let grads_ref = (out_ref * probe.clone()).sum().backward();
    let grads_new = (out_new * probe).sum().backward();
    let g_ref = x_ref.grad(&grads_ref).expect("an input gradient");
    let d = max_abs_diff(g_ref, x_new.grad(&grads_new).expect("an input gradient"));
    eprintln!("{what}: input gradients differ by {d:e}");
    assert!(d < TOL, "{what}: input gradients differ by {d}");
    let w_ref = Tensor::cat(
        gru_gates(&gru)
            .iter()
            .map(|g| {
                Tensor::cat(
                    vec![
                        g.input_transform
                            .weight
                            .grad(&grads_ref)
                            .expect("a gradient"),
                        g.hidden_transform
                            .weight
                            .grad(&grads_ref)
                            .expect("a gradient"),
                    ],
                    0,
                )
            })
            .collect(),
        1,
    );
    assert!(
        max_abs(w_ref.clone()) > 0.05,
        "{what}: a trivial weight gradient"
    );
    let scale = max_abs(w_ref.clone()).max(1.0);
    let d = max_abs_diff(
        w_ref,
        fused.weight.grad(&grads_new).expect("a weight gradient"),
    );
    eprintln!("{what}: weight gradients differ by {d:e} (largest {scale})");
    assert!(d < TOL * scale, "{what}: weight gradients differ by {d}");
    for (input, fused_bias) in [(true, &fused.bias_ih), (false, &fused.bias_hh)] {
        let b_ref = Tensor::cat(
            gru_gates(&gru)
                .iter()
                .map(|g| {
                    let linear = if input {
                        &g.input_transform
                    } else {
                        &g.hidden_transform
                    };
                    linear
                        .bias
                        .as_ref()
                        .expect("a bias")
                        .grad(&grads_ref)
                        .expect("a gradient")
                })
                .collect(),
            0,
        );
        let scale = max_abs(b_ref.clone()).max(1.0);
        let d = max_abs_diff(b_ref, fused_bias.grad(&grads_new).expect("a bias gradient"));
        assert!(d < TOL * scale, "{what}: bias gradients differ by {d}");
    }
}

#[test]
fn fused_gru_matches_burn_gru_for_1_7_and_64_steps() {
    check_gru_parity(1, 1, 5, 4);
    check_gru_parity(3, 7, 5, 13);
    check_gru_parity(20, 64, 6, 8);
}
