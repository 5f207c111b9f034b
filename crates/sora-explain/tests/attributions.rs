//! Properties of the attribution methods: closed forms on linear models, the axioms
//! (completeness, dummy feature, implementation invariance, efficiency), invariance to
//! batching and chunking, gradients against finite differences, and argument errors.

mod common;

use common::{device, get_linear, linear, max_abs, max_diff, mlp, random_rows, set_linear};
use sora_core::{Activation, Identity, Model};
use sora_explain::{
    Attribution, Attributions, Baseline, ExplainError, FeatureAblation, FeaturePermutation,
    IgMethod, InputXGradient, Inputs, IntegratedGradients, NoiseKind, NoiseTunnel, Occlusion,
    Saliency, ShapleyValues, Target, attribute_all_classes, outputs, permutation_importance,
};

const ALL_IG: [IgMethod; 5] = [
    IgMethod::GaussLegendre,
    IgMethod::RiemannLeft,
    IgMethod::RiemannRight,
    IgMethod::RiemannMiddle,
    IgMethod::RiemannTrapezoid,
];

fn ig(n_steps: usize, method: IgMethod) -> IntegratedGradients {
    IntegratedGradients {
        n_steps,
        method,
        internal_batch_size: 512,
    }
}

fn attribute(
    method: &impl Attribution,
    model: &Model<Identity>,
    x: &Inputs,
    baseline: &Baseline,
    target: &Target,
) -> Attributions {
    method
        .attribute(model, x, baseline, target, &device())
        .unwrap()
}

/// `F_t` of each row, from the public `outputs`.
fn f_target(model: &Model<Identity>, values: &[f32], d: usize, targets: &[usize]) -> Vec<f32> {
    let (y, k) = outputs(model, &Inputs::new(values.to_vec(), d).unwrap(), &device()).unwrap();
    targets
        .iter()
        .enumerate()
        .map(|(i, &t)| y[i * k + t])
        .collect()
}

// --- Linear model F(x) = x W + b: every method has a closed form. ---------------------------

struct LinearCase {
    model: Model<Identity>,
    /// `[d, k]` row-major (Burn's layout).
    w: Vec<f32>,
    k: usize,
    x: Inputs,
    base: Vec<f32>,
    targets: Vec<usize>,
}

fn linear_case() -> LinearCase {
    let (n, d, k) = (4, 5, 3);
    let model = linear(d, k, 11);
    let (w, _) = get_linear(&model.head.output);
    LinearCase {
        model,
        w,
        k,
        x: Inputs::new(random_rows(n, d, -2.0, 2.0, 1), d).unwrap(),
        base: random_rows(n, d, -1.0, 1.0, 2),
        targets: vec![0, 2, 1, 2],
    }
}

impl LinearCase {
    /// `f(w_{j,t}, x_ij, x′_ij)` for every example i and feature j.
    fn expect(&self, f: impl Fn(f32, f32, f32) -> f32) -> Vec<f32> {
        let d = self.x.d;
        (0..self.x.n * d)
            .map(|idx| {
                let (i, j) = (idx / d, idx % d);
                f(
                    self.w[j * self.k + self.targets[i]],
                    self.x.values[idx],
                    self.base[idx],
                )
            })
            .collect()
    }

    fn run(&self, method: &impl Attribution) -> Vec<f32> {
        let a = attribute(
            method,
            &self.model,
            &self.x,
            &Baseline::PerExample(self.base.clone()),
            &Target::PerExample(self.targets.clone()),
        );
        assert_eq!(a.targets, self.targets);
        a.values
    }
}

// Tolerance 1e-5: attributions here are ≲ 4 in magnitude; the gradient of a linear model is
// W exactly, and output differences carry f32 rounding of outputs ≲ 10 (≈ 1e-6).
const LINEAR_TOL: f32 = 1e-5;

#[test]
fn integrated_gradients_on_a_linear_model_is_w_times_x_minus_baseline() {
    let case = linear_case();
    let expected = case.expect(|w, x, b| w * (x - b));
    for method in ALL_IG {
        for n_steps in [2, 3, 17, 50] {
            let found = case.run(&ig(n_steps, method));
            let err = max_diff(&found, &expected);
            assert!(
                err <= LINEAR_TOL,
                "{method:?} with {n_steps} steps: error {err}"
            );
        }
    }
}

#[test]
fn gradient_methods_on_a_linear_model() {
    let case = linear_case();
    let found = case.run(&InputXGradient);
    assert!(max_diff(&found, &case.expect(|w, x, _| w * x)) <= LINEAR_TOL);
    let found = case.run(&Saliency::default());
    assert!(max_diff(&found, &case.expect(|w, _, _| w.abs())) <= LINEAR_TOL);
    let found = case.run(&Saliency { abs: false });
    assert!(max_diff(&found, &case.expect(|w, _, _| w)) <= LINEAR_TOL);
}

#[test]
fn perturbation_methods_on_a_linear_model() {
    let case = linear_case();
    let occlusion = Occlusion {
        window: 1,
        stride: 1,
        baseline: 0.7,
    };
    let found = case.run(&occlusion);
    assert!(max_diff(&found, &case.expect(|w, x, _| w * (x - 0.7))) <= LINEAR_TOL);

    let expected = case.expect(|w, x, b| w * (x - b));
    let found = case.run(&FeatureAblation::default());
    assert!(max_diff(&found, &expected) <= LINEAR_TOL);
    let found = case.run(&ShapleyValues::default());
    assert!(max_diff(&found, &expected) <= LINEAR_TOL, "exact Shapley");
    let sampled = ShapleyValues {
        max_exact_features: 0,
        n_samples: 3,
        seed: 5,
    };
    // Every marginal contribution of a linear model is w_i (x_i − x′_i), so even 3 orders
    // give the exact values.
    let found = case.run(&sampled);
    assert!(max_diff(&found, &expected) <= LINEAR_TOL, "sampled Shapley");
}

#[test]
fn feature_permutation_on_a_linear_model_moves_values_between_rows() {
    let case = linear_case();
    let same_target = LinearCase {
        targets: vec![1; 4],
        ..case
    };
    let a = attribute(
        &FeaturePermutation {
            mask: None,
            seed: 3,
        },
        &same_target.model,
        &same_target.x,
        &Baseline::Zeros,
        &Target::Class(1),
    );
    let (n, d) = (same_target.x.n, same_target.x.d);
    for j in 0..d {
        let w = same_target.w[j * same_target.k + 1];
        // attr_ij = w_j (x_ij − x_{π(i) j}) for a permutation π: it sums to 0 over the rows,
        // and each value matches one other row of the column.
        let column_sum: f32 = (0..n).map(|i| a.values[i * d + j]).sum();
        assert!(
            column_sum.abs() <= 1e-4,
            "feature {j}: column sum {column_sum}"
        );
        for i in 0..n {
            let x_ij = same_target.x.values[i * d + j];
            let matched = (0..n).any(|k| {
                (a.values[i * d + j] - w * (x_ij - same_target.x.values[k * d + j])).abs()
                    <= LINEAR_TOL
            });
            assert!(matched, "example {i}, feature {j}");
        }
    }
    // Never the identity: some attribution is non-zero.
    assert!(max_abs(&a.values) > 1e-3);
}

// --- Integrated gradients on non-linear models. ---------------------------------------------

fn tanh_mlp() -> Model<Identity> {
    mlp(6, &[16, 16], Activation::Tanh, 3, 21)
}

#[test]
fn ig_completeness_on_nonlinear_mlps() {
    let x = Inputs::new(random_rows(5, 6, -2.0, 2.0, 3), 6).unwrap();
    let base = Baseline::PerFeature(vec![0.5, -0.5, 0.0, 0.25, 1.0, -1.0]);
    let target = Target::PerExample(vec![0, 1, 2, 0, 1]);
    for (name, model) in [
        ("tanh", tanh_mlp()),
        ("relu", mlp(6, &[16, 16], Activation::Relu, 3, 22)),
    ] {
        let a = attribute(
            &ig(300, IgMethod::GaussLegendre),
            &model,
            &x,
            &base,
            &target,
        );
        let delta = a.max_abs_delta().unwrap();
        assert!(delta <= 1e-3, "{name}: |delta| = {delta}");
        // The reported delta is Σ attr − (F_t(x) − F_t(x′)), checked with `outputs`.
        let t = target.resolve(5).unwrap();
        let fx = f_target(&model, &x.values, 6, &t);
        let fb = f_target(&model, &base.resolve(5, 6).unwrap(), 6, &t);
        for i in 0..5 {
            let sum: f32 = a.row(i).iter().sum();
            let own = sum - (fx[i] - fb[i]);
            assert!(
                (own - a.delta.as_ref().unwrap()[i]).abs() <= 1e-4,
                "{name}: example {i}"
            );
        }
    }
}

#[test]
fn ig_delta_shrinks_with_steps_and_gauss_legendre_beats_trapezoid() {
    let model = tanh_mlp();
    let x = Inputs::new(random_rows(4, 6, -2.0, 2.0, 4), 6).unwrap();
    let delta = |n_steps, method| {
        attribute(
            &ig(n_steps, method),
            &model,
            &x,
            &Baseline::Zeros,
            &Target::Class(2),
        )
        .max_abs_delta()
        .unwrap()
    };
    let trapezoid: Vec<f32> = [4, 16, 64]
        .map(|n| delta(n, IgMethod::RiemannTrapezoid))
        .to_vec();
    assert!(
        trapezoid.windows(2).all(|w| w[1] < w[0]),
        "trapezoid deltas at 4, 16, 64 steps: {trapezoid:?}"
    );
    let left: Vec<f32> = [4, 16, 64]
        .map(|n| delta(n, IgMethod::RiemannLeft))
        .to_vec();
    assert!(
        left.windows(2).all(|w| w[1] < w[0]),
        "left deltas: {left:?}"
    );
    for n in [3, 4, 8] {
        let (gl, tr) = (
            delta(n, IgMethod::GaussLegendre),
            delta(n, IgMethod::RiemannTrapezoid),
        );
        assert!(gl < tr, "{n} steps: Gauss–Legendre {gl} vs trapezoid {tr}");
    }
}

#[test]
fn ig_is_implementation_invariant() {
    // ReLU is positively homogeneous: scaling a hidden layer's incoming weights and bias by
    // c > 0 and its outgoing weights by 1/c computes the same function.
    let model = mlp(5, &[8], Activation::Relu, 3, 31);
    let mut scaled = mlp(5, &[8], Activation::Relu, 3, 31);
    let c = 2.5f32;
    let dev = device();
    let (w1, b1) = get_linear(&model.head.hidden[0].linear);
    let (w2, b2) = get_linear(&model.head.output);
    let w1: Vec<f32> = w1.iter().map(|v| v * c).collect();
    let b1: Vec<f32> = b1.iter().map(|v| v * c).collect();
    let w2: Vec<f32> = w2.iter().map(|v| v / c).collect();
    set_linear(&mut scaled.head.hidden[0].linear, &w1, &b1, &dev);
    set_linear(&mut scaled.head.output, &w2, &b2, &dev);

    let x = Inputs::new(random_rows(6, 5, -2.0, 2.0, 5), 5).unwrap();
    let t = Target::PerExample(vec![0, 1, 2, 2, 1, 0]);
    let base = Baseline::PerFeature(vec![0.1; 5]);
    let ig = ig(64, IgMethod::GaussLegendre);
    let a = attribute(&ig, &model, &x, &base, &t);
    let b = attribute(&ig, &scaled, &x, &base, &t);
    let err = max_diff(&a.values, &b.values);
    assert!(err <= 1e-5, "IG differs by {err}");
    // Not vacuous: the attributions are not all zero.
    assert!(max_abs(&a.values) > 1e-2);
}

#[test]
fn ig_is_invariant_to_batching_and_chunking() {
    let model = tanh_mlp();
    let (n, d) = (6, 6);
    let x = Inputs::new(random_rows(n, d, -2.0, 2.0, 6), d).unwrap();
    let base = random_rows(n, d, -0.5, 0.5, 7);
    let targets = vec![2, 0, 1, 1, 0, 2];
    let run = |ibs, x: &Inputs, base: Vec<f32>, t: Target| {
        let method = IntegratedGradients {
            n_steps: 40,
            method: IgMethod::GaussLegendre,
            internal_batch_size: ibs,
        };
        attribute(&method, &model, x, &Baseline::PerExample(base), &t)
    };
    let batch = run(1000, &x, base.clone(), Target::PerExample(targets.clone()));
    for i in 0..n {
        let one = Inputs::new(x.row(i).to_vec(), d).unwrap();
        let a = run(
            1000,
            &one,
            base[i * d..(i + 1) * d].to_vec(),
            Target::Class(targets[i]),
        );
        let err = max_diff(a.row(0), batch.row(i));
        assert!(err <= 1e-5, "example {i}: batch vs alone differ by {err}");
    }
    let chunked = run(7, &x, base, Target::PerExample(targets));
    let err = max_diff(&chunked.values, &batch.values);
    assert!(err <= 1e-5, "internal_batch_size 7 vs 1000 differ by {err}");
    assert!(
        max_diff(
            chunked.delta.as_ref().unwrap(),
            batch.delta.as_ref().unwrap()
        ) <= 1e-5
    );
}

// --- Dummy feature. --------------------------------------------------------------------------

#[test]
fn an_ignored_feature_gets_exactly_zero() {
    let (d, j) = (5, 2);
    let mut model = mlp(d, &[8], Activation::Tanh, 3, 41);
    let (mut w, b) = get_linear(&model.head.hidden[0].linear);
    // Burn stores [d_in, d_out]: feature j's outgoing weights are row j.
    w[j * 8..(j + 1) * 8].fill(0.0);
    set_linear(&mut model.head.hidden[0].linear, &w, &b, &device());

    let x = Inputs::new(random_rows(3, d, -2.0, 2.0, 8), d).unwrap();
    let base = Baseline::PerFeature(vec![0.3; d]);
    let t = Target::PerExample(vec![0, 1, 2]);
    let sampled = ShapleyValues {
        max_exact_features: 0,
        n_samples: 10,
        seed: 1,
    };
    let methods: Vec<(&str, Attributions)> = vec![
        (
            "ig",
            attribute(&IntegratedGradients::default(), &model, &x, &base, &t),
        ),
        (
            "saliency",
            attribute(&Saliency::default(), &model, &x, &base, &t),
        ),
        (
            "occlusion",
            attribute(&Occlusion::default(), &model, &x, &base, &t),
        ),
        (
            "ablation",
            attribute(&FeatureAblation::default(), &model, &x, &base, &t),
        ),
        (
            "shapley",
            attribute(&ShapleyValues::default(), &model, &x, &base, &t),
        ),
        (
            "sampled shapley",
            attribute(&sampled, &model, &x, &base, &t),
        ),
    ];
    for (name, a) in methods {
        for i in 0..3 {
            assert_eq!(a.row(i)[j], 0.0, "{name}, example {i}");
        }
        assert!(max_abs(&a.values) > 1e-3, "{name} is all zero");
    }
}

// --- Noise tunnel. ---------------------------------------------------------------------------

#[test]
fn noise_tunnel_with_tiny_noise_equals_the_base_method() {
    let model = tanh_mlp();
    let x = Inputs::new(random_rows(3, 6, -1.0, 1.0, 9), 6).unwrap();
    let t = Target::PerExample(vec![1, 0, 2]);
    let base = ig(32, IgMethod::GaussLegendre);
    let plain = attribute(&base, &model, &x, &Baseline::Zeros, &t);
    let tunnel = |kind, stdev: f32, seed| NoiseTunnel {
        base: base.clone(),
        kind,
        n_samples: 4,
        stdev,
        seed,
    };
    let smooth = attribute(
        &tunnel(NoiseKind::SmoothGrad, 1e-7, 0),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    let err = max_diff(&smooth.values, &plain.values);
    assert!(err <= 1e-4, "SmoothGrad with stdev 1e-7 differs by {err}");
    assert_eq!(smooth.targets, plain.targets);
    let var = attribute(
        &tunnel(NoiseKind::VarGrad, 1e-7, 0),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    assert!(
        max_abs(&var.values) <= 1e-8,
        "VarGrad {}",
        max_abs(&var.values)
    );

    // With real noise: seeded, and VarGrad = SmoothGrad² − SmoothGrad².
    let sg = attribute(
        &tunnel(NoiseKind::SmoothGrad, 0.5, 7),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    let again = attribute(
        &tunnel(NoiseKind::SmoothGrad, 0.5, 7),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    assert_eq!(sg.values, again.values);
    let other = attribute(
        &tunnel(NoiseKind::SmoothGrad, 0.5, 8),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    assert!(max_diff(&sg.values, &other.values) > 1e-4);
    assert!(max_diff(&sg.values, &plain.values) > 1e-4);
    let sq = attribute(
        &tunnel(NoiseKind::SmoothGradSq, 0.5, 7),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    let vg = attribute(
        &tunnel(NoiseKind::VarGrad, 0.5, 7),
        &model,
        &x,
        &Baseline::Zeros,
        &t,
    );
    let identity: Vec<f32> = sq
        .values
        .iter()
        .zip(&sg.values)
        .map(|(q, m)| q - m * m)
        .collect();
    assert!(max_diff(&vg.values, &identity) <= 1e-5);
    assert!(vg.values.iter().all(|v| *v >= -1e-6));
}

// --- Shapley values. -------------------------------------------------------------------------

#[test]
fn shapley_efficiency_and_sampling_converges_to_exact() {
    let (n, d) = (3, 6);
    let model = mlp(d, &[12], Activation::Tanh, 3, 51);
    let x = Inputs::new(random_rows(n, d, -2.0, 2.0, 10), d).unwrap();
    let base = random_rows(n, d, -0.5, 0.5, 11);
    let targets = vec![0, 2, 1];
    let t = Target::PerExample(targets.clone());
    let bl = Baseline::PerExample(base.clone());
    let exact = attribute(&ShapleyValues::default(), &model, &x, &bl, &t);
    let n_samples = 200;
    let sampled = ShapleyValues {
        max_exact_features: 0,
        n_samples,
        seed: 3,
    };
    let approx = attribute(&sampled, &model, &x, &bl, &t);
    let fx = f_target(&model, &x.values, d, &targets);
    let fb = f_target(&model, &base, d, &targets);
    let m = 1usize << d;
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    for i in 0..n {
        let gap = fx[i] - fb[i];
        // Efficiency holds in both modes (the sampled sum telescopes).
        for (name, a) in [("exact", &exact), ("sampled", &approx)] {
            let sum: f32 = a.row(i).iter().sum();
            assert!(
                (sum - gap).abs() <= 1e-4,
                "{name}, example {i}: Σφ {sum} vs {gap}"
            );
        }
        // An independent enumeration: F_t on every coalition (bit j set = x_j, else x′_j).
        let (xi, bi) = (x.row(i), &base[i * d..(i + 1) * d]);
        let rows: Vec<f32> = (0..m)
            .flat_map(|s| (0..d).map(move |j| if s >> j & 1 == 1 { xi[j] } else { bi[j] }))
            .collect();
        let f = f_target(&model, &rows, d, &vec![targets[i]; m]);
        for j in 0..d {
            // In a uniformly random order, the set S before j has probability
            // |S|! (d − |S| − 1)! / d!; the marginal Δ_j(S) has mean φ_j and variance σ².
            let (mut mean, mut mean_sq) = (0.0f64, 0.0f64);
            for s in (0..m).filter(|s| s >> j & 1 == 0) {
                let k = s.count_ones() as usize;
                let p = fact(k) * fact(d - k - 1) / fact(d);
                let delta = f64::from(f[s | 1 << j]) - f64::from(f[s]);
                mean += p * delta;
                mean_sq += p * delta * delta;
            }
            let phi = exact.row(i)[j];
            assert!(
                (f64::from(phi) - mean).abs() <= 1e-5,
                "example {i}, feature {j}: {phi} vs {mean}"
            );
            // The sampled value is a mean of n_samples such marginals: within 4 standard
            // errors (a 6e-5 two-sided tail per value under the normal approximation).
            let se = ((mean_sq - mean * mean).max(0.0) / n_samples as f64).sqrt();
            let err = (f64::from(approx.row(i)[j]) - mean).abs();
            assert!(
                err <= 4.0 * se + 1e-5,
                "example {i}, feature {j}: error {err}, standard error {se}"
            );
        }
    }
}

// --- Gradients against finite differences. ---------------------------------------------------

#[test]
fn gradients_match_central_finite_differences() {
    let (n, d) = (3, 5);
    let model = mlp(d, &[10], Activation::Tanh, 3, 61);
    let x = Inputs::new(random_rows(n, d, -1.5, 1.5, 12), d).unwrap();
    let targets = vec![2, 0, 1];
    let t = Target::PerExample(targets.clone());
    let g = attribute(&Saliency { abs: false }, &model, &x, &Baseline::Zeros, &t);
    let h = 1e-2f32;
    for (i, &target) in targets.iter().enumerate() {
        // Rows x + h e_j, then x − h e_j.
        let mut rows = Vec::new();
        for sign in [1.0, -1.0] {
            for j in 0..d {
                let mut r = x.row(i).to_vec();
                r[j] += sign * h;
                rows.extend(r);
            }
        }
        let f = f_target(&model, &rows, d, &vec![target; 2 * d]);
        let fd: Vec<f32> = (0..d).map(|j| (f[j] - f[d + j]) / (2.0 * h)).collect();
        // Central differences err by h²/6 · F''' (≲ 1e-4 here) plus f32 rounding of F
        // divided by 2h (≲ 1e-5); 2e-2 of the row's largest slope bounds both.
        let scale = max_abs(&fd);
        let err = max_diff(g.row(i), &fd);
        assert!(
            err <= 2e-2 * scale,
            "example {i}: gradient {:?} vs {fd:?}",
            g.row(i)
        );
    }
    // Input × gradient is the same gradient times the input.
    let ixg = attribute(&InputXGradient, &model, &x, &Baseline::Zeros, &t);
    let expected: Vec<f32> = g.values.iter().zip(&x.values).map(|(g, x)| g * x).collect();
    assert!(max_diff(&ixg.values, &expected) <= 1e-6);
}

// --- Convenience functions. ------------------------------------------------------------------

#[test]
fn attribute_all_classes_gives_one_per_class() {
    let model = tanh_mlp();
    let x = Inputs::new(random_rows(2, 6, -1.0, 1.0, 13), 6).unwrap();
    let method = ig(16, IgMethod::GaussLegendre);
    let all = attribute_all_classes(&method, &model, &x, &Baseline::Zeros, 3, &device()).unwrap();
    assert_eq!(all.len(), 3);
    for (c, a) in all.iter().enumerate() {
        assert_eq!(a.targets, vec![c, c]);
        let one = attribute(&method, &model, &x, &Baseline::Zeros, &Target::Class(c));
        assert_eq!(a.values, one.values);
    }
    assert_ne!(all[0].values, all[1].values);
    assert!(matches!(
        attribute_all_classes(&method, &model, &x, &Baseline::Zeros, 4, &device()),
        Err(ExplainError::TargetOutOfRange {
            target: 3,
            n_outputs: 3,
            ..
        })
    ));
}

#[test]
fn permutation_importance_ranks_features_and_ignores_dead_ones() {
    let (n, d) = (64, 4);
    let mut model = linear(d, 2, 71);
    // Feature 0 matters most, feature 3 not at all.
    let w = [4.0, 0.0, 1.0, -1.0, 0.5, 0.5, 0.0, 0.0];
    set_linear(&mut model.head.output, &w, &[0.0, 0.0], &device());
    let x = Inputs::new(random_rows(n, d, -1.0, 1.0, 14), d).unwrap();
    let (reference, _) = outputs(&model, &x, &device()).unwrap();
    // Score: minus the mean squared change of the outputs (0 on the unpermuted data).
    let score = |y: &[f32], _k: usize| {
        -y.iter()
            .zip(&reference)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            / y.len() as f64
    };
    let imp = permutation_importance(&model, &x, score, 5, 0, &device()).unwrap();
    assert_eq!(imp.len(), d);
    assert_eq!(imp[3], (0.0, 0.0));
    assert!(
        imp[0].0 > imp[1].0 && imp[1].0 > imp[2].0 && imp[2].0 > 0.0,
        "{imp:?}"
    );
    assert!(imp.iter().all(|(_, sd)| *sd >= 0.0));
    let again = permutation_importance(&model, &x, score, 5, 0, &device()).unwrap();
    assert_eq!(imp, again);
}

// --- Errors instead of panics. ---------------------------------------------------------------

#[test]
fn bad_arguments_are_typed_errors() {
    let model = tanh_mlp();
    let dev = device();
    let x = Inputs::new(vec![0.5; 12], 6).unwrap();
    assert!(matches!(
        Inputs::new(vec![0.0; 7], 6),
        Err(ExplainError::Length { found: 7, .. })
    ));
    assert!(matches!(
        Inputs::new(vec![], 3),
        Err(ExplainError::EmptyInputs { .. })
    ));
    assert!(matches!(
        Inputs::new(vec![1.0], 0),
        Err(ExplainError::EmptyInputs { .. })
    ));
    let ig_default = IntegratedGradients::default();
    let err = ig_default
        .attribute(
            &model,
            &x,
            &Baseline::PerFeature(vec![0.0; 5]),
            &Target::Class(0),
            &dev,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExplainError::Length {
                expected: 6,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
    let err = ig_default
        .attribute(
            &model,
            &x,
            &Baseline::PerExample(vec![0.0; 6]),
            &Target::Class(0),
            &dev,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExplainError::Length {
                expected: 12,
                found: 6,
                ..
            }
        ),
        "{err}"
    );
    let err = ig_default
        .attribute(
            &model,
            &x,
            &Baseline::Zeros,
            &Target::PerExample(vec![0]),
            &dev,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ExplainError::TargetCount {
            expected: 2,
            found: 1
        }
    );
    let bad_target = Target::PerExample(vec![0, 3]);
    for err in [
        ig_default.attribute(&model, &x, &Baseline::Zeros, &bad_target, &dev),
        Saliency::default().attribute(&model, &x, &Baseline::Zeros, &bad_target, &dev),
        Occlusion::default().attribute(&model, &x, &Baseline::Zeros, &bad_target, &dev),
        ShapleyValues::default().attribute(&model, &x, &Baseline::Zeros, &bad_target, &dev),
    ] {
        assert_eq!(
            err.unwrap_err(),
            ExplainError::TargetOutOfRange {
                example: 1,
                target: 3,
                n_outputs: 3
            }
        );
    }
    let zero_steps = IntegratedGradients {
        n_steps: 0,
        ..IntegratedGradients::default()
    };
    let err = zero_steps
        .attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &dev)
        .unwrap_err();
    assert!(matches!(
        err,
        ExplainError::InvalidParameter {
            parameter: "n_steps",
            ..
        }
    ));
    let one_row = Inputs::new(vec![0.5; 6], 6).unwrap();
    let err = FeaturePermutation::default()
        .attribute(&model, &one_row, &Baseline::Zeros, &Target::Class(0), &dev)
        .unwrap_err();
    assert!(
        matches!(err, ExplainError::InvalidParameter { .. }),
        "{err}"
    );
    let wide = Occlusion {
        window: 7,
        stride: 1,
        baseline: 0.0,
    };
    assert!(
        wide.attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &dev)
            .is_err()
    );
    let leap = Occlusion {
        window: 2,
        stride: 3,
        baseline: 0.0,
    };
    assert!(
        leap.attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &dev)
            .is_err()
    );
    let mask = FeatureAblation {
        mask: Some(vec![0, 1]),
    };
    let err = mask
        .attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &dev)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExplainError::Length {
                expected: 6,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let silent = NoiseTunnel {
        n_samples: 0,
        ..NoiseTunnel::new(Saliency::default(), NoiseKind::SmoothGrad)
    };
    assert!(
        silent
            .attribute(&model, &x, &Baseline::Zeros, &Target::Class(0), &dev)
            .is_err()
    );
    // An inconsistent hand-built Inputs is caught too.
    let broken = Inputs {
        values: vec![0.0; 5],
        n: 2,
        d: 6,
    };
    assert!(matches!(
        outputs(&model, &broken, &dev),
        Err(ExplainError::Length {
            expected: 12,
            found: 5,
            ..
        })
    ));
}
