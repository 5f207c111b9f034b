//! Host-side building blocks of the kernels: reading a backend's tensor into `f32` buffers and
//! back, the one matrix-multiply entry point, a vectorisable `exp`, and the split of a batch into
//! fixed chunks run in parallel.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, try_read_sync};
use burn::tensor::{Shape, TensorData};

/// Reads `tensor` as contiguous `f32` values (zero-copy on burn-flex when the tensor is
/// contiguous and not shared).
pub(crate) fn read<B: Backend>(tensor: FloatTensor<B>) -> TensorData {
    let data = try_read_sync(B::float_into_data(tensor))
        .expect("a CPU backend reads synchronously")
        .expect("reading a tensor of a CPU backend");
    if data.dtype() == burn::tensor::DType::F32 {
        data
    } else {
        data.convert::<f32>()
    }
}

/// burn-flex's float tensor, whose buffer the kernels read in place.
#[cfg(feature = "flex")]
type FlexFloat = FloatTensor<burn::backend::Flex>;

/// A tensor's values as `f32` for reading: borrowed from the backend's own buffer where it can
/// be read in place (a contiguous `f32` tensor of burn-flex, shared or not), else a copy.
/// [`read`] hands over the buffer instead, which copies a tensor that is still shared — as a
/// layer's weight always is, and an input that autodiff keeps for the backward pass.
pub(crate) enum View<B: Backend> {
    /// The tensor itself, read through its backend.
    Borrowed(FloatTensor<B>),
    /// A copy.
    Owned(TensorData),
}

/// `tensor`'s values, in place where possible.
pub(crate) fn view<B: Backend>(tensor: FloatTensor<B>) -> View<B> {
    #[cfg(feature = "flex")]
    if let Some(flex) = (&tensor as &dyn std::any::Any).downcast_ref::<FlexFloat>()
        && flex.as_slice::<f32>().is_some()
    {
        return View::Borrowed(tensor);
    }
    View::Owned(read::<B>(tensor))
}

impl<B: Backend> View<B> {
    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        match self {
            View::Owned(data) => values(data),
            View::Borrowed(tensor) => {
                #[cfg(feature = "flex")]
                if let Some(flex) = (tensor as &dyn std::any::Any).downcast_ref::<FlexFloat>() {
                    return flex.as_slice::<f32>().expect("checked by `view`");
                }
                let _ = tensor;
                unreachable!("only burn-flex tensors are borrowed")
            }
        }
    }
}

/// The values of `data`, which [`read`] or [`zeros`] made.
pub(crate) fn values(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>().expect("an f32 buffer")
}

/// The values of `data`, mutably.
pub(crate) fn values_mut(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>().expect("an f32 buffer")
}

/// A new `f32` buffer of zeros.
pub(crate) fn zeros(shape: impl Into<Shape>) -> TensorData {
    let shape = shape.into();
    // `vec!` of zeros is one allocation of zeroed memory; `TensorData::zeros` fills value by value.
    TensorData::new(vec![0.0f32; shape.num_elements()], shape)
}

/// `data` as a tensor of `B` on `device`.
pub(crate) fn write<B: Backend>(data: TensorData, device: &B::Device) -> FloatTensor<B> {
    B::float_from_data(data, device)
}

/// A raw pointer shared by the parallel chunks of a kernel, each of which touches only its own
/// rows of the buffer.
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub *mut f32);

// SAFETY: the kernels give every parallel task a disjoint set of rows behind the pointer, and the
// buffer outlives the parallel scope that uses it.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: shared use only ever reaches disjoint rows.
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the whole `Shared`, not its field).
    pub fn get(&self) -> *mut f32 {
        self.0
    }
}

/// One matrix product on raw row/column strides:
/// `dst[m × n] = (accumulate ? dst : 0) + lhs[m × k] · rhs[k × n]`.
///
/// # Safety
/// Every pointer must be valid for the strides and sizes given, and `dst` must not overlap the
/// operands.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row `i` of `dst` holds `n` values (caller's contract).
                unsafe { std::ptr::write_bytes(dst.add(i * dst_rs), 0, n) };
            }
        }
        return;
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The right-hand operand of the per-step products, `[k × n]`, copied once per sequence into
/// the layout the AVX-512 kernel reads: panels of 64 columns, each `k` rows of 64 contiguous
/// values (the last panel zero-padded). Reading the row-major matrix in place instead walks its
/// rows at a stride of `4 · H` floats, which for `H = 128` is 2 KiB: every row of a panel falls
/// in the same few L1 cache sets and evicts the others. Without AVX-512 it is the row-major copy
/// the general kernel takes.
pub(crate) struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
    packed: bool,
}

/// Columns per panel of [`Panels`] (four AVX-512 registers).
const PANEL: usize = 64;

impl Panels {
    /// Copies the row-major `rhs` (`k` rows of `n`).
    pub fn new(rhs: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(rhs.len(), k * n, "a {k} × {n} matrix");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let blocks = n.div_ceil(PANEL);
            let mut data = vec![0.0f32; blocks * k * PANEL];
            for (jb, panel) in data.chunks_exact_mut(k * PANEL).enumerate() {
                let (j0, j1) = (jb * PANEL, ((jb + 1) * PANEL).min(n));
                for (kk, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                    row[..j1 - j0].copy_from_slice(&rhs[kk * n + j0..kk * n + j1]);
                }
            }
            return Self {
                data,
                k,
                n,
                packed: true,
            };
        }
        Self {
            data: rhs.to_vec(),
            k,
            n,
            packed: false,
        }
    }
}

/// The small product of one recurrent step, `dst[m × k·n] = (accumulate ? dst : 0) + lhs[m × k]
/// · rhs`, with the rows of `lhs` and `dst` contiguous.
///
/// On CPUs with AVX-512 it runs a register-blocked kernel (4 rows × 64 columns of
/// accumulators) over the packed panels; elsewhere the general [`matmul`]. Each output is
/// accumulated over `k` in order with fused multiply-adds, so the result does not depend on how
/// the rows are split between threads.
///
/// # Safety
/// `dst` and `lhs` must be valid for `m` rows at their strides (`rhs.n` and `rhs.k` values).
pub(crate) unsafe fn step_matmul(
    m: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs): (*const f32, usize),
    rhs: &Panels,
) {
    let (n, k) = (rhs.n, rhs.k);
    #[cfg(target_arch = "x86_64")]
    if rhs.packed {
        // SAFETY: `packed` is only set where the CPU has AVX-512F; the pointers are the
        // caller's, the panels hold `k` rows of every 64-column block.
        unsafe {
            avx512::matmul(
                m,
                (0, n),
                k,
                (dst, dst_rs),
                accumulate,
                (lhs, lhs_rs, 1),
                avx512::Rhs::Panels(rhs.data.as_ptr()),
            )
        };
        return;
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        matmul(
            (m, n, k),
            dst,
            dst_rs,
            accumulate,
            (lhs, lhs_rs, 1),
            (rhs.data.as_ptr(), n, 1),
            false,
        )
    }
}

/// Rows of the output one parallel task of [`par_matmul`] computes.
const TASK_ROWS: usize = 256;

/// A larger product, `dst[m × n] = (accumulate ? dst : 0) + lhs[m × k] · rhs[k × n]`, with
/// `lhs` of any strides, the rows of `rhs` contiguous and `dst` dense (row stride `n`), split
/// into tasks of 256 rows × 64 columns run in parallel. Each output is accumulated over `k` in
/// order by one task, so the bits do not depend on the thread count. Used for the input
/// projections and the weight gradients (`Σₜ hₜ₋₁ᵀ · dzₜ`, `Xᵀ · dZ`), whose shapes — a long
/// `k`, or few columns — the general [`matmul`] runs at a third of the machine's rate.
///
/// # Safety
/// As [`matmul`].
pub(crate) unsafe fn par_matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs): (*const f32, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        use rayon::prelude::*;
        let (dst, lhs, rhs) = (
            Shared(dst),
            Shared(lhs as *mut f32),
            Shared(rhs as *mut f32),
        );
        let (row_tasks, col_tasks) = (m.div_ceil(TASK_ROWS), n.div_ceil(PANEL));
        (0..row_tasks * col_tasks).into_par_iter().for_each(|task| {
            let (rt, ct) = (task / col_tasks, task % col_tasks);
            let (r0, r1) = (rt * TASK_ROWS, ((rt + 1) * TASK_ROWS).min(m));
            let cols = (ct * PANEL, ((ct + 1) * PANEL).min(n));
            // SAFETY: each task writes only its own rows and columns of `dst`; the CPU has
            // AVX-512F; the offsets of row `r0` stay inside the operands.
            unsafe {
                avx512::matmul(
                    r1 - r0,
                    cols,
                    k,
                    (dst.get().add(r0 * n), n),
                    accumulate,
                    (lhs.get().add(r0 * lhs_rs), lhs_rs, lhs_cs),
                    avx512::Rhs::Rows(rhs.get(), rhs_rs),
                )
            };
        });
        return;
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        matmul(
            (m, n, k),
            dst,
            n,
            accumulate,
            (lhs, lhs_rs, lhs_cs),
            (rhs, rhs_rs, 1),
            true,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::PANEL;

    /// Columns per register: one `__m512` holds 16 `f32`.
    const W: usize = 16;

    /// Depth of one pass over `k`: a 128 × 64 panel (32 KiB) stays in the L1 cache while every
    /// row block of the output uses it.
    const KC: usize = 128;

    /// Where the right-hand operand is.
    #[derive(Clone, Copy)]
    pub(super) enum Rhs {
        /// [`super::Panels`] data: panel `j / 64` holds `k` rows of 64.
        Panels(*const f32),
        /// Row-major rows at this stride; each depth block is copied into a panel first.
        Rows(*const f32, usize),
    }

    /// `dst[.., j_start..j_end] = (accumulate ? dst : 0) + lhs · rhs[.., j_start..j_end]`, in
    /// 64-column blocks (`j_start` a multiple of 64).
    ///
    /// # Safety
    /// AVX-512F must be available; pointers as in [`super::matmul`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul(
        m: usize,
        (j_start, j_end): (usize, usize),
        k: usize,
        (dst, dst_rs): (*mut f32, usize),
        accumulate: bool,
        (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
        rhs: Rhs,
    ) {
        let mut scratch = match rhs {
            Rhs::Rows(..) => vec![0.0f32; KC * PANEL],
            Rhs::Panels(_) => Vec::new(),
        };
        let mut j0 = j_start;
        while j0 < j_end {
            let cols = (j_end - j0).min(PANEL);
            let mut k0 = 0;
            while k0 < k {
                let kc = (k - k0).min(KC);
                let panel: *const f32 = match rhs {
                    // SAFETY: panel `j0 / 64` starts `j0 · k` values in; row `k0` of it 64 · k0.
                    Rhs::Panels(p) => unsafe { p.add(j0 * k + k0 * PANEL) },
                    Rhs::Rows(p, rs) => {
                        for kk in 0..kc {
                            // SAFETY: row `k0 + kk`, columns `j0..j0 + cols` are inside `rhs`.
                            let src = unsafe {
                                std::slice::from_raw_parts(p.add((k0 + kk) * rs + j0), cols)
                            };
                            scratch[kk * PANEL..kk * PANEL + cols].copy_from_slice(src);
                        }
                        scratch.as_ptr()
                    }
                };
                // The first depth block starts from the destination (or zero), later ones add.
                let acc = accumulate || k0 > 0;
                let l = lhs.wrapping_add(k0 * lhs_cs);
                let d = dst.wrapping_add(j0);
                // SAFETY: rows 0..m, columns j0..j0+cols, depth k0..k0+kc are inside the
                // operands; `C` registers cover `cols`.
                unsafe {
                    match cols.div_ceil(W) {
                        1 => rows::<1>(m, cols, kc, (d, dst_rs), acc, (l, lhs_rs, lhs_cs), panel),
                        2 => rows::<2>(m, cols, kc, (d, dst_rs), acc, (l, lhs_rs, lhs_cs), panel),
                        3 => rows::<3>(m, cols, kc, (d, dst_rs), acc, (l, lhs_rs, lhs_cs), panel),
                        _ => rows::<4>(m, cols, kc, (d, dst_rs), acc, (l, lhs_rs, lhs_cs), panel),
                    }
                }
                k0 += kc;
            }
            j0 += PANEL;
        }
    }

    /// All `m` rows of one panel and depth block, four rows at a time, with `C` registers of
    /// accumulators per row (`cols` ≤ 16 · `C`): a narrow panel (an output layer of ten units)
    /// costs the multiply-adds of its own width, not the full 64 columns.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<const C: usize>(
        m: usize,
        cols: usize,
        k: usize,
        dst: (*mut f32, usize),
        accumulate: bool,
        lhs: (*const f32, usize, usize),
        panel: *const f32,
    ) {
        let mut i0 = 0;
        while i0 + 4 <= m {
            // SAFETY: rows i0..i0+4 are inside the operands (caller's contract).
            unsafe { block::<4, C>(i0, cols, k, dst, accumulate, lhs, panel) };
            i0 += 4;
        }
        while i0 < m {
            // SAFETY: as above, one row.
            unsafe { block::<1, C>(i0, cols, k, dst, accumulate, lhs, panel) };
            i0 += 1;
        }
    }

    /// Mask of the first `n` (≤ 16) lanes.
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= W {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// `R` rows × `cols` (≤ 16 · `C` ≤ 64) columns of the product, accumulated in registers over
    /// `k` rows of a 64-wide panel.
    #[inline(always)]
    unsafe fn block<const R: usize, const C: usize>(
        i0: usize,
        cols: usize,
        k: usize,
        (dst, dst_rs): (*mut f32, usize),
        accumulate: bool,
        (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
        panel: *const f32,
    ) {
        let masks: [__mmask16; C] = std::array::from_fn(|c| lanes(cols.saturating_sub(c * W)));
        // SAFETY: (the whole body) AVX-512F is enabled by the caller; masked lanes of `dst` are
        // neither read nor written, every panel row holds 64 values, and every unmasked lane is
        // inside the operands (caller's contract).
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); C]; R];
            if accumulate {
                for (r, row) in acc.iter_mut().enumerate() {
                    let d = dst.add((i0 + r) * dst_rs);
                    for (c, a) in row.iter_mut().enumerate() {
                        *a = _mm512_maskz_loadu_ps(masks[c], d.add(c * W));
                    }
                }
            }
            for kk in 0..k {
                let w = panel.add(kk * PANEL);
                let wv: [__m512; C] = std::array::from_fn(|c| _mm512_loadu_ps(w.add(c * W)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*lhs.add((i0 + r) * lhs_rs + kk * lhs_cs));
                    for (c, acc) in row.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(a, wv[c], *acc);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let d = dst.add((i0 + r) * dst_rs);
                for (c, a) in row.iter().enumerate() {
                    _mm512_mask_storeu_ps(d.add(c * W), masks[c], *a);
                }
            }
        }
    }
}

/// AVX-512 versions of the activations, sixteen lanes at a time: the same polynomial as
/// [`exp`], with the scaling by `2^n` done by `vscalefps` and the reciprocal in the logistic by
/// `vrcp14ps` and one Newton step (about 1 ulp), where a division would cost most of the time.
#[cfg(target_arch = "x86_64")]
pub(crate) mod act512 {
    use std::arch::x86_64::*;

    /// `e^x` lane by lane; inputs clamped to `[-87.3, 88.0]`.
    #[inline(always)]
    pub unsafe fn exp(x: __m512) -> __m512 {
        // SAFETY: the callers run with AVX-512F enabled.
        unsafe {
            let x = _mm512_max_ps(
                _mm512_min_ps(x, _mm512_set1_ps(88.0)),
                _mm512_set1_ps(-87.3),
            );
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
            );
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
            let mut p = _mm512_set1_ps(1.987_569_1e-4);
            for c in [
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                1.666_666_5e-1,
                0.5,
            ] {
                p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
            }
            let y = _mm512_fmadd_ps(
                p,
                _mm512_mul_ps(r, r),
                _mm512_add_ps(r, _mm512_set1_ps(1.0)),
            );
            _mm512_scalef_ps(y, n)
        }
    }

    /// `1 / d`, by `vrcp14ps` and one Newton step.
    #[inline(always)]
    unsafe fn recip(d: __m512) -> __m512 {
        // SAFETY: as above.
        unsafe {
            let r = _mm512_rcp14_ps(d);
            _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0)))
        }
    }

    /// The logistic function.
    #[inline(always)]
    pub unsafe fn sigmoid(x: __m512) -> __m512 {
        // SAFETY: as above.
        unsafe {
            let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
            recip(_mm512_add_ps(e, _mm512_set1_ps(1.0)))
        }
    }

    /// `tanh(x) = 2 · sigmoid(2x) − 1`.
    #[inline(always)]
    pub unsafe fn tanh(x: __m512) -> __m512 {
        // SAFETY: as above.
        unsafe {
            let s = sigmoid(_mm512_add_ps(x, x));
            _mm512_fmsub_ps(s, _mm512_set1_ps(2.0), _mm512_set1_ps(1.0))
        }
    }

    /// Mask of the lanes `j..min(j + 16, n)`.
    #[inline(always)]
    pub fn tail(j: usize, n: usize) -> __mmask16 {
        let left = n - j;
        if left >= 16 {
            0xFFFF
        } else {
            ((1u32 << left) - 1) as __mmask16
        }
    }
}

/// Rows per parallel chunk of a recurrent kernel. Chunk boundaries depend on the batch size only,
/// never on the number of threads, so a run gives the same bits on any machine size.
const CHUNK_ROWS: usize = 16;

/// The batch rows `0..batch` split into balanced chunks of at most [`CHUNK_ROWS`] rows.
pub(crate) fn chunks(batch: usize) -> Vec<std::ops::Range<usize>> {
    let n = batch.div_ceil(CHUNK_ROWS).max(1);
    (0..n)
        .map(|i| (i * batch / n)..((i + 1) * batch / n))
        .filter(|r| !r.is_empty())
        .collect()
}

/// `e^x` to about 2 ulp over the float range, branch-free so that loops over it vectorise
/// (Cephes' polynomial after reduction by `ln 2`). Inputs are clamped to `[-87.3, 88.0]`.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x)`, as `2 · sigmoid(2x) − 1` (absolute error about 1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + exp(-2.0 * x)) - 1.0
}

/// Defines `fn $name(args)` compiled three times — for AVX-512, for AVX2 and for the baseline —
/// and run in the widest version this CPU has. The element-wise loops use plain IEEE operations
/// (no fused multiply-add), so every version gives the same bits.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn inner($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) {
                    inner($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) {
                    inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the feature, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_the_activations_match_the_standard_library() {
        let mut worst_exp = 0.0f64;
        let mut worst_sigmoid = 0.0f32;
        let mut worst_tanh = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst_exp = worst_exp.max(rel);
            let s = 1.0 / (1.0 + (-x as f64).exp());
            worst_sigmoid = worst_sigmoid.max((sigmoid(x) - s as f32).abs());
            worst_tanh = worst_tanh.max((tanh(x) - x.tanh()).abs());
            x += 0.0137;
        }
        assert!(worst_exp < 4e-7, "exp relative error {worst_exp}");
        assert!(worst_sigmoid < 2e-7, "sigmoid error {worst_sigmoid}");
        assert!(worst_tanh < 3e-7, "tanh error {worst_tanh}");
        assert_eq!(sigmoid(-200.0), 1.0 / (1.0 + exp(88.0)));
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
    }

    #[test]
    fn the_step_product_matches_a_plain_triple_loop() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (4, 64, 9),
            (17, 130, 33),
            (16, 512, 128),
        ] {
            let lhs: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let rhs: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
                .collect();
            for accumulate in [false, true] {
                // A destination with a wider row than the product, to check the strides.
                let rs = n + 3;
                let mut dst: Vec<f32> = (0..m * rs).map(|i| (i % 3) as f32).collect();
                let before = dst.clone();
                let panels = Panels::new(&rhs, k, n);
                // SAFETY: the buffers have the sizes the strides describe.
                unsafe {
                    step_matmul(
                        m,
                        dst.as_mut_ptr(),
                        rs,
                        accumulate,
                        (lhs.as_ptr(), k),
                        &panels,
                    )
                };
                for i in 0..m {
                    for j in 0..rs {
                        let expected = if j >= n {
                            before[i * rs + j]
                        } else {
                            let dot: f64 = (0..k)
                                .map(|p| lhs[i * k + p] as f64 * rhs[p * n + j] as f64)
                                .sum();
                            dot as f32 + if accumulate { before[i * rs + j] } else { 0.0 }
                        };
                        let got = dst[i * rs + j];
                        assert!(
                            (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                            "{m}×{n}×{k} [{i},{j}]: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_parallel_product_matches_a_plain_triple_loop() {
        for &(m, n, k) in &[(1, 1, 1), (5, 70, 300), (128, 512, 257), (600, 40, 9)] {
            // `lhs` read transposed (column stride `m`), as the weight gradients read it.
            let lhs_t: Vec<f32> = (0..k * m)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let rhs: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let mut dst = vec![f32::NAN; m * n];
            // SAFETY: the buffers have the sizes the strides describe.
            unsafe {
                par_matmul(
                    (m, n, k),
                    dst.as_mut_ptr(),
                    false,
                    (lhs_t.as_ptr(), 1, m),
                    (rhs.as_ptr(), n),
                )
            };
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|p| lhs_t[p * m + i] as f64 * rhs[p * n + j] as f64)
                        .sum();
                    let got = dst[i * n + j];
                    assert!(
                        (got as f64 - dot).abs() <= 1e-3 * dot.abs().max(1.0),
                        "{m}×{n}×{k} [{i},{j}]: {got} vs {dot}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_cover_the_batch_in_balanced_pieces() {
        assert_eq!(chunks(1), vec![0..1]);
        assert_eq!(chunks(16), vec![0..16]);
        assert_eq!(chunks(32), vec![0..16, 16..32]);
        assert_eq!(chunks(20), vec![0..10, 10..20]);
        let c = chunks(1000);
        assert_eq!(c.first().unwrap().start, 0);
        assert_eq!(c.last().unwrap().end, 1000);
        assert!(c.windows(2).all(|w| w[0].end == w[1].start));
        assert!(c.iter().all(|r| r.len() <= 16 && r.len() >= 15));
    }
}
