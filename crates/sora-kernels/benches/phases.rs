//! Where a recurrent training step's time goes, phase by phase, on the shapes of BENCH.md's
//! `lstm-text` and `gru-text` workloads (batch 32, 64 steps, 64 inputs, 128 hidden):
//!
//! ```text
//! cargo bench -p sora -p sora-kernels --bench phases
//! ```
//!
//! Prints one JSON line per phase: the median of 30 timed repetitions (after 5 warm-up), in ms.

use std::time::Instant;

// The allocator the `sora` program runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::prelude::*;
use burn::tensor::Distribution;
use sora_kernels::recurrent::{gru_sequence, lstm_sequence};

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..5 {
        f();
    }
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn report(phase: &str, ms: f64, gflop: f64) {
    println!(
        "{{\"phase\":\"{phase}\",\"ms\":{ms:.3},\"gflop_per_s\":{:.1}}}",
        gflop / (ms / 1e3)
    );
}

fn main() {
    let device = Device::flex().autodiff();
    device.seed(1);
    let (b, t, d, h) = (32, 64, 64, 128);
    // The products around the recurrence, as Burn runs them: the weight gradient of the hidden
    // weights (`Hprevᵀ · dZ`) and of the input weights (`Xᵀ · dZ`).
    let plain = Device::flex();
    let hprev = Tensor::<2>::random([b * t, h], Distribution::Normal(0.0, 1.0), &plain);
    let xs = Tensor::<2>::random([b * t, d], Distribution::Normal(0.0, 1.0), &plain);
    let dz = Tensor::<2>::random([b * t, 4 * h], Distribution::Normal(0.0, 1.0), &plain);
    let ms = median_ms(|| {
        let _ = hprev.clone().transpose().matmul(dz.clone()).into_data();
    });
    report(
        "matmul [128, 2048]·[2048, 512] (hidden weight gradient)",
        ms,
        2.0 * (b * t * h * 4 * h) as f64 / 1e9,
    );
    let ms = median_ms(|| {
        let _ = xs.clone().transpose().matmul(dz.clone()).into_data();
    });
    report(
        "matmul [64, 2048]·[2048, 512] (input weight gradient)",
        ms,
        2.0 * (b * t * d * 4 * h) as f64 / 1e9,
    );
    // Batch inference of the mlp-digits model's shapes (1,024 rows, 64 → 128 → 64 → 10, ReLU):
    // Burn's operations against the fused layers, without autodiff.
    {
        let plain = Device::flex();
        let x = Tensor::<2>::random([1024, 64], Distribution::Normal(0.0, 1.0), &plain);
        let layers: Vec<burn::nn::Linear> = [(64, 128), (128, 64), (64, 10)]
            .iter()
            .map(|&(i, o)| burn::nn::LinearConfig::new(i, o).init(&plain))
            .collect();
        let acts = [
            sora_kernels::linear::Act::Relu,
            sora_kernels::linear::Act::Relu,
            sora_kernels::linear::Act::Identity,
        ];
        let stack: Vec<_> = layers.iter().zip(acts).collect();
        let flop = 2.0 * 1024.0 * (64.0 * 128.0 + 128.0 * 64.0 + 64.0 * 10.0) / 1e9;
        for rows in [1024, 1] {
            let x = x.clone().slice([0..rows, 0..64]);
            for name in ["burn", "fused layers", "one pass"] {
                let ms = median_ms(|| {
                    let h = match name {
                        "one pass" => sora_kernels::mlp::forward_layers(x.clone(), &stack),
                        _ => stack.iter().fold(x.clone(), |h, (layer, act)| {
                            let (w, b) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
                            if name == "burn" {
                                sora_kernels::linear::linear_act_reference(h, w, b, *act)
                            } else {
                                sora_kernels::linear::linear_act(h, w, b, *act)
                            }
                        }),
                    };
                    let _ = h.into_data();
                });
                report(
                    &format!("mlp-digits inference, batch {rows} ({name})"),
                    ms,
                    flop * rows as f64 / 1024.0,
                );
            }
        }
    }

    // The MLP layers of mlp-wide (batch 256): Burn's `Linear` and ReLU (product, broadcast bias
    // add, activation) against the fused linear layer, forward alone and forward + backward.
    let n = 256;
    for (d_in, d_out) in [(512, 1024), (1024, 1024), (1024, 10)] {
        let flop = 2.0 * (n * d_in * d_out) as f64 / 1e9;
        let x =
            Tensor::<2>::random([n, d_in], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let w = Tensor::<2>::random([d_in, d_out], Distribution::Normal(0.0, 0.05), &device)
            .require_grad();
        let bias = Tensor::<1>::zeros([d_out], &device).require_grad();
        for (name, fused) in [("burn", false), ("fused", true)] {
            let f = |x: Tensor<2>, w: Tensor<2>, b: Tensor<1>| {
                let relu = sora_kernels::linear::Act::Relu;
                if fused {
                    sora_kernels::linear::linear_act(x, w, b, relu)
                } else {
                    sora_kernels::linear::linear_act_reference(x, w, b, relu)
                }
            };
            let ms = median_ms(|| {
                let _ = f(x.clone().inner(), w.clone().inner(), bias.clone().inner()).into_data();
            });
            report(
                &format!("linear {n}x{d_in}->{d_out} forward ({name})"),
                ms,
                flop,
            );
            let ms = median_ms(|| {
                let _ = f(x.clone(), w.clone(), bias.clone()).sum().backward();
            });
            report(
                &format!("linear {n}x{d_in}->{d_out} forward + backward ({name})"),
                ms,
                3.0 * flop,
            );
        }
    }

    for (name, gates) in [("lstm", 4), ("gru", 3)] {
        let g = gates * h;
        let x = Tensor::<2>::random([b * t, d], Distribution::Normal(0.0, 1.0), &device);
        let w_ih =
            Tensor::<2>::random([d, g], Distribution::Normal(0.0, 0.1), &device).require_grad();
        let w_hh =
            Tensor::<2>::random([h, g], Distribution::Normal(0.0, 0.08), &device).require_grad();
        let b_hh = Tensor::<1>::zeros([g], &device).require_grad();
        let h0 = Tensor::<2>::zeros([b, h], &device);
        // Without autodiff when `xp` has none: every input on the same kind of device.
        let run = |xp: Tensor<3>| -> Tensor<3> {
            let plain = !xp.is_autodiff();
            let (w, bias, h0) = if plain {
                (
                    w_hh.clone().inner(),
                    b_hh.clone().inner(),
                    h0.clone().inner(),
                )
            } else {
                (w_hh.clone(), b_hh.clone(), h0.clone())
            };
            if name == "lstm" {
                lstm_sequence(xp, w, h0.clone(), h0)
            } else {
                gru_sequence(xp, w, bias, h0)
            }
        };
        let proj_flop = 2.0 * (b * t * d * g) as f64 / 1e9;
        let step_flop = 2.0 * (t * b * h * g) as f64 / 1e9;
        let ms = median_ms(|| {
            let _ = x.clone().inner().matmul(w_ih.clone().inner()).into_data();
        });
        report(&format!("{name} input projection forward"), ms, proj_flop);
        let xp = x
            .clone()
            .inner()
            .matmul(w_ih.clone().inner())
            .reshape([b, t, g]);
        let ms = median_ms(|| {
            let _ = run(xp.clone()).into_data();
        });
        report(
            &format!("{name} sequence forward (no autodiff)"),
            ms,
            step_flop,
        );
        let xp_ad = Tensor::<3>::from_data(xp.into_data(), &device).require_grad();
        let ms = median_ms(|| {
            let _ = run(xp_ad.clone()).sum().backward();
        });
        // Forward, then the backward: per-step products, and the weight gradient as one.
        report(
            &format!("{name} sequence forward + backward"),
            ms,
            3.0 * step_flop,
        );
        let ms = median_ms(|| {
            let xp = x.clone().matmul(w_ih.clone()).reshape([b, t, g]);
            let _ = run(xp).sum().backward();
        });
        report(
            &format!("{name} projection + sequence, forward + backward"),
            ms,
            3.0 * (step_flop + proj_flop),
        );
    }
}
