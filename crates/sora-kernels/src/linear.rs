//! A fused linear layer, `y = act(x · W + b)`: the bias written into the output before the
//! product accumulates onto it, the activation applied in the same sweep that follows (where
//! Burn's `Linear` and an activation run a product, a broadcast add and an element-wise pass,
//! each allocating its result), and a backward pass that masks the incoming gradient by the
//! activation's derivative in place, then forms `dx = dz · Wᵀ` and `dW = xᵀ · dz` reading the
//! transposed operands by stride (no transposed copies) and `db = Σ dz`.

// burn-ndarray is deprecated upstream; Sora keeps it working (the generated dispatch names it).
#![allow(deprecated)]

use burn::Tensor;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::tensor::{TensorData, activation};
use rayon::prelude::*;

use crate::autodiff::{LayerBackward, layer_op};
use crate::host::{self, multiversion, par_matmul};

/// The element-wise activation a fused linear layer applies to its output (the activations of
/// Sora's MLP head; PyTorch's and Burn's definitions).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Act {
    /// None: `y = z`.
    #[default]
    Identity,
    /// `max(0, z)`.
    Relu,
    /// `z` for `z ≥ 0`, `slope · z` otherwise.
    LeakyRelu(f32),
    /// `tanh(z)`.
    Tanh,
    /// `1 / (1 + e^-z)`.
    Sigmoid,
    /// `z · Φ(z)`, the exact (erf-based) GELU.
    Gelu,
    /// `z · sigmoid(z)`.
    Silu,
}

impl Act {
    /// Whether the derivative is computed from the pre-activation `z` (kept by the forward
    /// pass) rather than from the output `y`.
    fn needs_input(self) -> bool {
        matches!(self, Act::Gelu | Act::Silu)
    }

    /// The activation of one value.
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        match self {
            Act::Identity => z,
            // `z <= 0` is false for NaN, which passes through as Burn's `relu` lets it.
            Act::Relu => {
                if z <= 0.0 {
                    0.0
                } else {
                    z
                }
            }
            Act::LeakyRelu(slope) => {
                if z < 0.0 {
                    z * slope
                } else {
                    z
                }
            }
            Act::Tanh => z.tanh(),
            Act::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Act::Gelu => z * normal_cdf(z),
            Act::Silu => z / (1.0 + (-z).exp()),
        }
    }

    /// `dL/dz` from `dL/dy` and the saved value (`y`, or `z` where [`Act::needs_input`]).
    #[inline(always)]
    fn grad(self, dy: f32, saved: f32) -> f32 {
        match self {
            Act::Identity => dy,
            Act::Relu => {
                if saved <= 0.0 {
                    0.0
                } else {
                    dy
                }
            }
            Act::LeakyRelu(slope) => {
                if saved < 0.0 {
                    dy * slope
                } else {
                    dy
                }
            }
            Act::Tanh => dy * (1.0 - saved * saved),
            Act::Sigmoid => dy * (saved * (1.0 - saved)),
            Act::Gelu => {
                let z = saved;
                let pdf = (-0.5 * z * z).exp() * std::f32::consts::FRAC_1_SQRT_2 * FRAC_1_SQRT_PI;
                dy * (normal_cdf(z) + z * pdf)
            }
            Act::Silu => {
                let s = 1.0 / (1.0 + (-saved).exp());
                dy * (s * (1.0 + saved * (1.0 - s)))
            }
        }
    }

    /// Applies the activation to every value of `v`: the piecewise-linear ones as branch-free
    /// loops the compiler vectorises (a branch per value mispredicts on half of them).
    pub(crate) fn apply_all(self, v: &mut [f32]) {
        match self {
            Act::Identity => {}
            Act::Relu => relu_all(v),
            Act::LeakyRelu(slope) => leaky_relu_all(v, slope),
            _ => {
                for z in v {
                    *z = self.apply(*z);
                }
            }
        }
    }

    /// `g ← dL/dz` from `g = dL/dy` and the saved values, in place.
    pub(crate) fn grad_all(self, g: &mut [f32], saved: &[f32]) {
        match self {
            Act::Identity => {}
            Act::Relu => relu_grad_all(g, saved),
            Act::LeakyRelu(slope) => leaky_relu_grad_all(g, saved, slope),
            _ => {
                for (g, s) in g.iter_mut().zip(saved) {
                    *g = self.grad(*g, *s);
                }
            }
        }
    }

    /// The same function as Burn operations.
    pub(crate) fn reference<const D: usize>(self, z: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Identity => z,
            Act::Relu => activation::relu(z),
            Act::LeakyRelu(slope) => activation::leaky_relu(z, slope as f64),
            Act::Tanh => activation::tanh(z),
            Act::Sigmoid => activation::sigmoid(z),
            Act::Gelu => activation::gelu(z),
            Act::Silu => activation::silu(z),
        }
    }
}

multiversion! {
    /// [`Act::Relu`] over a slice.
    fn relu_all(v: &mut [f32]) {
        for z in v.iter_mut() {
            *z = if *z <= 0.0 { 0.0 } else { *z };
        }
    }
}

multiversion! {
    /// [`Act::LeakyRelu`] over a slice.
    fn leaky_relu_all(v: &mut [f32], slope: f32) {
        for z in v.iter_mut() {
            *z = if *z < 0.0 { *z * slope } else { *z };
        }
    }
}

multiversion! {
    /// The gradient through [`Act::Relu`] from its output.
    fn relu_grad_all(g: &mut [f32], y: &[f32]) {
        for (g, y) in g.iter_mut().zip(y) {
            *g = if *y <= 0.0 { 0.0 } else { *g };
        }
    }
}

multiversion! {
    /// The gradient through [`Act::LeakyRelu`] from its output.
    fn leaky_relu_grad_all(g: &mut [f32], y: &[f32], slope: f32) {
        for (g, y) in g.iter_mut().zip(y) {
            *g = if *y < 0.0 { *g * slope } else { *g };
        }
    }
}

/// `1 / √π`.
const FRAC_1_SQRT_PI: f32 = 0.564_189_6;

/// `Φ(z) = ½ · erfc(−z / √2)`, the standard normal distribution function, in double precision
/// (Numerical Recipes' Chebyshev fit of `erfc`, relative error below 1.2e-7 everywhere, so the
/// far tail keeps its relative accuracy).
#[inline(always)]
fn normal_cdf(z: f32) -> f32 {
    let x = -(z as f64) * std::f64::consts::FRAC_1_SQRT_2;
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -a * a - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc_a = t * poly.exp();
    let erfc = if x >= 0.0 { erfc_a } else { 2.0 - erfc_a };
    (0.5 * erfc) as f32
}

/// The fused linear operation, registered for the CPU backends Sora's kernels support and for
/// autodiff over them.
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait LinearOps: Backend {
    /// `act(x · w + b)`: `x` `[n, d_in]`, `w` `[d_in, d_out]`, `b` `[d_out]` → `[n, d_out]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl LinearOps for burn::backend::Flex {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b, act, false).0
    }
}

#[cfg(feature = "ndarray")]
impl LinearOps for burn::backend::NdArray {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b, act, false).0
    }
}

impl<B: Backend, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        layer_op::<B, C, _>(act, x, w, b, |x, w, b, tracked| {
            let (out, pre) = forward::<B>(x, w, b, act, tracked);
            let saved = match act {
                _ if !tracked => None,
                Act::Identity => None,
                _ if act.needs_input() => pre,
                _ => Some(out.clone()),
            };
            (out, saved)
        })
    }
}

impl LayerBackward for Act {
    fn grads<B: Backend>(
        self,
        grad: FloatTensor<B>,
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        saved: Option<FloatTensor<B>>,
        wanted: [bool; 3],
    ) -> [Option<FloatTensor<B>>; 3] {
        backward::<B>(grad, x, w, (self, saved), wanted)
    }
}

/// `act(x · w + b)` as one fused operation where [`crate::supported`] is true, Burn's
/// `matmul`, a broadcast add and the activation elsewhere ([`linear_act_reference`]).
///
/// # Shapes
/// - `x`: `[n, d_in]`, `w`: `[d_in, d_out]`, `b`: `[d_out]`
/// - output: `[n, d_out]`
pub fn linear_act(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, act: Act) -> Tensor<2> {
    let [_, d_in] = x.dims();
    let [w_in, d_out] = w.dims();
    assert_eq!(
        d_in, w_in,
        "fused_linear: x has {d_in} columns, w {w_in} rows"
    );
    assert_eq!(b.dims(), [d_out], "fused_linear: bias shape");
    if !crate::supported(&x.device()) {
        return linear_act_reference(x, w, b, act);
    }
    Tensor::from_dispatch(<Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        act,
    ))
}

/// `x · w + b` ([`linear_act`] without an activation).
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    linear_act(x, w, b, Act::Identity)
}

/// [`linear_act`] as Burn operations.
pub fn linear_act_reference(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, act: Act) -> Tensor<2> {
    act.reference(x.matmul(w) + b.unsqueeze_dim::<2>(0))
}

/// [`linear`] as Burn operations.
pub fn linear_reference(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    linear_act_reference(x, w, b, Act::Identity)
}

/// Burn's [`Linear`] layer followed by `act`, through the fused operation: the layer's own
/// parameters (so its weights, names and saved files are unchanged), any leading dimensions
/// flattened into rows. A layer without a bias runs as Burn's layer and the activation.
///
/// # Shapes
/// - input: `[..., d_input]`
/// - output: `[..., d_output]`
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use sora_kernels::linear::{Act, forward_layer};
///
/// let device = Device::flex();
/// let layer = LinearConfig::new(3, 2).init(&device);
/// let x = Tensor::<2>::ones([4, 3], &device);
/// let fused = forward_layer(&layer, x.clone(), Act::Relu);
/// let reference = burn::tensor::activation::relu(layer.forward(x));
/// fused.into_data().assert_approx_eq::<f32>(&reference.into_data(), Default::default());
/// ```
pub fn forward_layer<const D: usize>(layer: &Linear, x: Tensor<D>, act: Act) -> Tensor<D> {
    let Some(bias) = &layer.bias else {
        return act.reference(layer.forward(x));
    };
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = linear_act(x.reshape([rows, d_in]), layer.weight.val(), bias.val(), act);
    let mut out = dims;
    out[D - 1] = y.dims()[1];
    y.reshape(out)
}

/// Gradients of at least this many values are masked by several threads.
const PARALLEL_SWEEP: usize = 1 << 16;

/// Which kernel runs a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The AVX-512 row-panel kernel of the recurrent operations, for tall products with a short
    /// `k` (input projections).
    RowPanels,
    /// burn-flex's matrix-multiply kernels (the `gemm` crate).
    Gemm,
}

fn product_route((m, n, k): (usize, usize, usize)) -> Route {
    #[cfg(target_arch = "x86_64")]
    if m >= 1024 && k <= 128 && n >= 64 && std::arch::is_x86_feature_detected!("avx512f") {
        return Route::RowPanels;
    }
    let _ = (m, n, k);
    Route::Gemm
}

/// Whether a product is worth several threads: burn-flex's threshold for its own products
/// (192³ multiply-adds).
fn is_parallel((m, n, k): (usize, usize, usize)) -> bool {
    m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192
}

/// `dst[m × n] (+)= lhs · rhs` with the operands at the given strides (`(ptr, row stride,
/// column stride)`), on the kernel [`product_route`] picks, in parallel when [`is_parallel`].
///
/// # Safety
/// As [`host::matmul`].
unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    if product_route((m, n, k)) == Route::RowPanels && rhs.2 == 1 {
        // SAFETY: forwarded from the caller's contract (`rhs` rows are contiguous).
        unsafe { par_matmul((m, n, k), dst, accumulate, lhs, (rhs.0, rhs.1)) };
        return;
    }
    let parallel = is_parallel((m, n, k));
    // SAFETY: forwarded from the caller's contract.
    unsafe { host::matmul((m, n, k), dst, n, accumulate, lhs, rhs, parallel) }
}

/// Rows of the output one task of the forward pass computes: its product, then the bias and
/// the activation while the tile is still in cache. Tile boundaries depend on the number of rows
/// only, so the bits do not depend on the number of threads.
const TILE_ROWS: usize = 128;

/// Rows up to which a product is a sweep over the weights' rows per input row rather than a
/// call of the matrix-multiply kernels, whose set-up costs more than the arithmetic of a
/// single sample (the latency of scoring one row).
const FEW_ROWS: usize = 2;

multiversion! {
    /// `out += x · w` for one row `x` (`d_in`) and `w` `[d_in, d_out]`: one pass over each row
    /// of `w`, in order.
    pub(crate) fn rows_times_weights(x: &[f32], w: &[f32], out: &mut [f32]) {
        let d_out = out.len();
        for (xi, w_row) in x.iter().zip(w.chunks_exact(d_out)) {
            for (o, wv) in out.iter_mut().zip(w_row) {
                *o += xi * wv;
            }
        }
    }
}

/// The output and, when `keep_input` and the activation's derivative needs it, the
/// pre-activation.
fn forward<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
    act: Act,
    keep_input: bool,
) -> (FloatTensor<B>, Option<FloatTensor<B>>) {
    let device = x.device();
    let [n, d_in] = x.shape().dims();
    let d_out = w.shape().dims::<2>()[1];
    let (x, w, b) = (host::view::<B>(x), host::view::<B>(w), host::view::<B>(b));
    let (xv, wv, bias) = (x.values(), w.values(), b.values());
    let keep = keep_input && act.needs_input();
    if n == 0 || d_out == 0 {
        let empty = || host::write::<B>(TensorData::new(Vec::<f32>::new(), [n, d_out]), &device);
        return (empty(), keep.then(empty));
    }
    let mut out = vec![0.0f32; n * d_out];
    let mut pre = if keep {
        vec![0.0f32; n * d_out]
    } else {
        Vec::new()
    };
    // One tile: bias, product, (a copy of the pre-activation,) activation.
    let tile = |t: usize, out: &mut [f32], pre: &mut [f32], parallel_product: bool| {
        let rows = out.len() / d_out;
        for row in out.chunks_exact_mut(d_out) {
            row.copy_from_slice(bias);
        }
        let lhs = &xv[t * TILE_ROWS * d_in..];
        // SAFETY: `out` is `rows × d_out`; `lhs` holds the tile's `rows × d_in` inputs; `w` is
        // `[d_in, d_out]`; all dense.
        unsafe {
            if rows <= FEW_ROWS {
                for (i, row) in out.chunks_exact_mut(d_out).enumerate() {
                    rows_times_weights(&lhs[i * d_in..(i + 1) * d_in], wv, row);
                }
            } else if parallel_product {
                product(
                    (rows, d_out, d_in),
                    out.as_mut_ptr(),
                    true,
                    (lhs.as_ptr(), d_in, 1),
                    (wv.as_ptr(), d_out, 1),
                )
            } else {
                host::matmul(
                    (rows, d_out, d_in),
                    out.as_mut_ptr(),
                    d_out,
                    true,
                    (lhs.as_ptr(), d_in, 1),
                    (wv.as_ptr(), d_out, 1),
                    false,
                )
            }
        };
        if keep {
            pre.copy_from_slice(out);
        }
        act.apply_all(out);
    };
    let chunk = TILE_ROWS * d_out.max(1);
    if n <= TILE_ROWS
        || product_route((n, d_out, d_in)) == Route::RowPanels
        || !is_parallel((n, d_out, d_in))
    {
        // One tile: few rows (whose product may itself run on several threads), the tall
        // products of recurrent projections, which the row-panel kernel splits itself, or a
        // product too small for several threads, which one call of the kernels runs faster
        // than one call per tile.
        tile(0, &mut out, &mut pre, true);
    } else if keep {
        out.par_chunks_mut(chunk)
            .zip(pre.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, (o, p))| tile(t, o, p, false));
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, o)| tile(t, o, &mut [], false));
    }
    let pre = keep.then(|| host::write::<B>(TensorData::new(pre, [n, d_out]), &device));
    (
        host::write::<B>(TensorData::new(out, [n, d_out]), &device),
        pre,
    )
}

/// The gradients of `x`, `w` and `b` (those `wanted`).
fn backward<B: Backend>(
    grad: FloatTensor<B>,
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    (act, saved): (Act, Option<FloatTensor<B>>),
    wanted: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let device = grad.device();
    let [n, d_in] = x.shape().dims();
    let d_out = w.shape().dims::<2>()[1];
    let mut dz = host::read::<B>(grad);
    if let Some(saved) = saved {
        let saved = host::view::<B>(saved);
        let saved = saved.values();
        let dzv = host::values_mut(&mut dz);
        if dzv.len() >= PARALLEL_SWEEP {
            let chunk = (PARALLEL_SWEEP / 4).max(d_out);
            dzv.par_chunks_mut(chunk)
                .zip(saved.par_chunks(chunk))
                .for_each(|(g, s)| act.grad_all(g, s));
        } else {
            act.grad_all(dzv, saved);
        }
    }
    let dzv = host::values(&dz);
    let dx = wanted[0].then(|| {
        let w = host::view::<B>(w);
        let mut dx = vec![0.0f32; n * d_in];
        // SAFETY: `dx` is `[n, d_in]`, `dz` `[n, d_out]`; `w` `[d_in, d_out]` read transposed.
        unsafe {
            product(
                (n, d_in, d_out),
                dx.as_mut_ptr(),
                false,
                (dzv.as_ptr(), d_out, 1),
                (w.values().as_ptr(), 1, d_out),
            );
        }
        host::write::<B>(TensorData::new(dx, [n, d_in]), &device)
    });
    let dw = wanted[1].then(|| {
        let x = host::view::<B>(x);
        let mut dw = vec![0.0f32; d_in * d_out];
        // SAFETY: `dw` is `[d_in, d_out]`; `x` read transposed (`[n, d_in]`); `dz` `[n, d_out]`.
        unsafe {
            product(
                (d_in, d_out, n),
                dw.as_mut_ptr(),
                false,
                (x.values().as_ptr(), 1, d_in),
                (dzv.as_ptr(), d_out, 1),
            );
        }
        host::write::<B>(TensorData::new(dw, [d_in, d_out]), &device)
    });
    let db = wanted[2].then(|| {
        let mut db = vec![0.0f32; d_out];
        column_sums(&mut db, dzv, d_out);
        host::write::<B>(TensorData::new(db, [d_out]), &device)
    });
    [dx, dw, db]
}

/// `acc[j] += Σᵢ rows[i][j]` over the first `acc.len()` columns of the rows of `rows` (row
/// stride `stride`), in row order.
pub(crate) fn column_sums(acc: &mut [f32], rows: &[f32], stride: usize) {
    if acc.is_empty() || stride == 0 {
        return;
    }
    for row in rows.chunks_exact(stride) {
        for (a, v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

/// The transpose of the row-major `rows × cols` matrix `a`.
pub(crate) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for (i, row) in a.chunks_exact(cols).enumerate() {
        for (j, v) in row.iter().enumerate() {
            t[j * rows + i] = *v;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_function_matches_erf_in_double_precision() {
        // Reference: Φ(z) from the complementary error function's continued fraction is not in
        // std; compare against a direct numerical integral of the density instead.
        let phi_ref = |z: f64| -> f64 {
            // Φ(z) = ½ + ∫₀^z φ, Simpson's rule with 20,000 intervals.
            let n = 20_000;
            let h = z / n as f64;
            let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let mut s = pdf(0.0) + pdf(z);
            for i in 1..n {
                s += pdf(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            0.5 + s * h / 3.0
        };
        for z in [-6.0f32, -3.5, -1.0, -0.1, 0.0, 0.3, 1.7, 4.0] {
            let want = phi_ref(z as f64);
            let got = normal_cdf(z) as f64;
            assert!(
                (got - want).abs() <= 2e-7 * want.max(1e-30) + 1e-12,
                "Φ({z}) = {got}, expected {want}"
            );
        }
    }

    #[test]
    fn each_activation_derivative_matches_a_central_difference() {
        for act in [
            Act::Relu,
            Act::LeakyRelu(0.01),
            Act::Tanh,
            Act::Sigmoid,
            Act::Gelu,
            Act::Silu,
        ] {
            for z in [-2.5f32, -0.7, 0.4, 1.9] {
                let h = 1e-3f64;
                let f = |z: f64| act.apply(z as f32) as f64;
                let numeric = (f(z as f64 + h) - f(z as f64 - h)) / (2.0 * h);
                let saved = if act.needs_input() { z } else { act.apply(z) };
                let analytic = act.grad(1.0, saved) as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-3,
                    "{act:?} at {z}: {analytic} vs {numeric}"
                );
            }
        }
    }
}
