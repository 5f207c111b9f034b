//! A fused 2-D convolution (the 1-D one is its one-row case), `y = act(conv(x, W) + b)`:
//! per sample, the input unfolded into columns (im2col) and one product with the weights
//! written onto the bias, then the activation over the sample's output while it is in cache —
//! where Burn runs a generic 3-D convolution, a bias add and the activation as separate passes.
//! The backward pass masks the incoming gradient in place, forms the weight gradient as one
//! product per sample (summed in a fixed order), and the input gradient as `Wᵀ · dz` folded back
//! onto the input (col2im).

// burn-ndarray is deprecated upstream; Sora keeps it working (the generated dispatch names it).
#![allow(deprecated)]

use burn::Tensor;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::conv::{Conv1d, Conv2d};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::TensorData;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use rayon::prelude::*;

use crate::autodiff::{LayerBackward, layer_op};
use crate::host;
use crate::linear::Act;

/// The geometry and activation of a fused convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// The activation applied to the output.
    pub act: Act,
}

/// The fused convolution, registered for the CPU backends Sora's kernels support and for
/// autodiff over them.
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait ConvOps: Backend {
    /// `act(conv(x, w) + b)`: `x` `[batch, c_in, h, w]`, `w` `[c_out, c_in, kh, kw]`, `b`
    /// `[c_out]` → `[batch, c_out, h_out, w_out]`.
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl ConvOps for burn::backend::Flex {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b, spec)
    }
}

#[cfg(feature = "ndarray")]
impl ConvOps for burn::backend::NdArray {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        forward::<Self>(x, w, b, spec)
    }
}

impl<B: Backend, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        layer_op::<B, C, _>(spec, x, w, b, |x, w, b, tracked| {
            let out = forward::<B>(x, w, b, spec);
            // The output, for the activation's derivative.
            let saved = (tracked && spec.act != Act::Identity).then(|| out.clone());
            (out, saved)
        })
    }
}

impl LayerBackward for ConvSpec {
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

/// Whether the fused kernel computes `act`: the derivatives of GELU and SiLU need the
/// pre-activation, which the convolution does not keep; those run as Burn's activation after
/// the fused convolution.
fn fusable(act: Act) -> bool {
    !matches!(act, Act::Gelu | Act::Silu)
}

/// `act(conv2d(x, w) + b)` as one fused operation where [`crate::supported`] is true, Burn's
/// `conv2d` and the activation elsewhere.
///
/// # Shapes
/// - `x`: `[batch, c_in, height, width]`, `w`: `[c_out, c_in, kh, kw]`, `b`: `[c_out]`
/// - output: `[batch, c_out, h_out, w_out]`
pub fn conv2d_act(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, spec: ConvSpec) -> Tensor<4> {
    let g = Geometry::new(x.dims(), w.dims(), &spec);
    assert_eq!(b.dims(), [g.c_out], "fused_conv2d: bias shape");
    if !crate::supported(&x.device()) || !fusable(spec.act) {
        return conv2d_act_reference(x, w, b, spec);
    }
    Tensor::from_dispatch(<Dispatch as ConvOps>::fused_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        spec,
    ))
}

/// [`conv2d_act`] as Burn operations.
pub fn conv2d_act_reference(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, spec: ConvSpec) -> Tensor<4> {
    let [pt, pl, pb, pr] = spec.padding;
    // Zero padding as its own operation (top and bottom, left and right may differ), then the
    // convolution without padding.
    let x = x.pad([(pt, pb), (pl, pr)], PadMode::Constant(0.0));
    let options = ConvOptions::new(spec.stride, [0, 0], spec.dilation, 1);
    spec.act.reference(conv2d(x, w, Some(b), options))
}

/// Burn's [`Conv2d`] layer followed by `act`, through the fused operation with the layer's own
/// parameters. A layer with groups, "same" padding or no bias runs as Burn's layer and the
/// activation.
///
/// # Shapes
/// - input: `[batch, c_in, height, width]`
/// - output: `[batch, c_out, h_out, w_out]`
pub fn forward_conv2d(layer: &Conv2d, x: Tensor<4>, act: Act) -> Tensor<4> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => Some([0; 4]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([top, left, bottom, right]),
        PaddingConfig2d::Same => None,
    };
    match (&layer.bias, padding) {
        (Some(bias), Some(padding)) if layer.groups == 1 => conv2d_act(
            x,
            layer.weight.val(),
            bias.val(),
            ConvSpec {
                stride: layer.stride,
                padding,
                dilation: layer.dilation,
                act,
            },
        ),
        _ => act.reference(layer.forward(x)),
    }
}

/// Burn's [`Conv1d`] layer followed by `act`, through the fused operation (as a convolution over
/// one row). A layer with groups, "same" padding or no bias runs as Burn's layer and the
/// activation.
///
/// # Shapes
/// - input: `[batch, c_in, length]`
/// - output: `[batch, c_out, l_out]`
///
/// ```
/// use burn::nn::conv::Conv1dConfig;
/// use burn::nn::PaddingConfig1d;
/// use burn::prelude::*;
/// use sora_kernels::conv::forward_conv1d;
/// use sora_kernels::linear::Act;
///
/// let device = Device::flex();
/// let layer = Conv1dConfig::new(3, 4, 5)
///     .with_padding(PaddingConfig1d::Explicit(2, 2))
///     .init(&device);
/// let x = Tensor::<3>::ones([2, 3, 10], &device);
/// let fused = forward_conv1d(&layer, x.clone(), Act::Relu);
/// let reference = burn::tensor::activation::relu(layer.forward(x));
/// fused.into_data().assert_approx_eq::<f32>(&reference.into_data(), Default::default());
/// ```
pub fn forward_conv1d(layer: &Conv1d, x: Tensor<3>, act: Act) -> Tensor<3> {
    let padding = match layer.padding {
        PaddingConfig1d::Valid => Some([0, 0]),
        PaddingConfig1d::Explicit(left, right) => Some([left, right]),
        PaddingConfig1d::Same => None,
    };
    match (&layer.bias, padding) {
        (Some(bias), Some([left, right])) if layer.groups == 1 => {
            let [batch, c_in, length] = x.dims();
            let [c_out, w_in, k] = layer.weight.dims();
            let y = conv2d_act(
                x.reshape([batch, c_in, 1, length]),
                layer.weight.val().reshape([c_out, w_in, 1, k]),
                bias.val(),
                ConvSpec {
                    stride: [1, layer.stride],
                    padding: [0, left, 0, right],
                    dilation: [1, layer.dilation],
                    act,
                },
            );
            let [_, _, _, l_out] = y.dims();
            y.reshape([batch, c_out, l_out])
        }
        _ => act.reference(layer.forward(x)),
    }
}

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    spec: ConvSpec,
}

impl Geometry {
    fn new(x: [usize; 4], w: [usize; 4], spec: &ConvSpec) -> Self {
        let [_, c_in, h, wd] = x;
        let [c_out, w_in, kh, kw] = w;
        assert_eq!(c_in, w_in, "fused_conv2d: x has {c_in} channels, w {w_in}");
        let [sh, sw] = spec.stride;
        let [dh, dw] = spec.dilation;
        assert!(
            sh > 0 && sw > 0 && dh > 0 && dw > 0,
            "fused_conv2d: stride and dilation ≥ 1"
        );
        let [pt, pl, pb, pr] = spec.padding;
        let (span_h, span_w) = (dh * (kh.max(1) - 1) + 1, dw * (kw.max(1) - 1) + 1);
        assert!(
            h + pt + pb >= span_h && wd + pl + pr >= span_w && kh > 0 && kw > 0,
            "fused_conv2d: a {kh}×{kw} kernel does not fit a padded {h}×{wd} input"
        );
        Self {
            c_in,
            h,
            w: wd,
            c_out,
            kh,
            kw,
            ho: (h + pt + pb - span_h) / sh + 1,
            wo: (wd + pl + pr - span_w) / sw + 1,
            spec: *spec,
        }
    }

    /// Rows of the unfolded input (`c_in · kh · kw`).
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output positions per channel (`h_out · w_out`).
    fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// The output columns `lo..hi` whose input column `x0 + ox · stride` lies inside the row.
    #[inline]
    fn valid(&self, x0: isize) -> (usize, usize) {
        let sw = self.spec.stride[1] as isize;
        let w = self.w as isize;
        let lo = if x0 >= 0 { 0 } else { (-x0 + sw - 1) / sw };
        let hi = if w <= x0 { 0 } else { (w - x0 + sw - 1) / sw };
        let hi = (hi as usize).min(self.wo);
        ((lo as usize).min(hi), hi)
    }

    /// One sample's input `[c_in, h, w]` unfolded into `cols` `[c_in · kh · kw, h_out · w_out]`.
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (p, wo) = (self.p(), self.wo);
        let ([sh, sw], [dh, dw]) = (self.spec.stride, self.spec.dilation);
        let (pt, pl) = (self.spec.padding[0], self.spec.padding[1]);
        for ci in 0..self.c_in {
            let plane = &x[ci * self.h * self.w..(ci + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ci * self.kh + ky) * self.kw + kx;
                    let out = &mut cols[row * p..(row + 1) * p];
                    let x0 = (kx * dw) as isize - pl as isize;
                    let (lo, hi) = self.valid(x0);
                    for oy in 0..self.ho {
                        let seg = &mut out[oy * wo..(oy + 1) * wo];
                        let iy = (oy * sh + ky * dh) as isize - pt as isize;
                        if iy < 0 || iy >= self.h as isize || lo == hi {
                            seg.fill(0.0);
                            continue;
                        }
                        let line = &plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        seg[..lo].fill(0.0);
                        seg[hi..].fill(0.0);
                        // `x0 + lo · stride ≥ 0` by the choice of `lo`.
                        let first = (x0 + (lo * sw) as isize) as usize;
                        if sw == 1 {
                            // An element loop: rows of small images are shorter than what a
                            // call of `memcpy` pays for.
                            for (v, x) in seg[lo..hi].iter_mut().zip(&line[first..]) {
                                *v = *x;
                            }
                        } else {
                            for (v, ix) in seg[lo..hi].iter_mut().zip((first..).step_by(sw)) {
                                *v = line[ix];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: `cols` added back onto one sample's `dx`.
    fn col2im(&self, cols: &[f32], dx: &mut [f32]) {
        let (p, wo) = (self.p(), self.wo);
        let ([sh, sw], [dh, dw]) = (self.spec.stride, self.spec.dilation);
        let (pt, pl) = (self.spec.padding[0], self.spec.padding[1]);
        for ci in 0..self.c_in {
            let plane = &mut dx[ci * self.h * self.w..(ci + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ci * self.kh + ky) * self.kw + kx;
                    let src = &cols[row * p..(row + 1) * p];
                    let x0 = (kx * dw) as isize - pl as isize;
                    let (lo, hi) = self.valid(x0);
                    if lo == hi {
                        continue;
                    }
                    let first = (x0 + (lo * sw) as isize) as usize;
                    for oy in 0..self.ho {
                        let iy = (oy * sh + ky * dh) as isize - pt as isize;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        let line = &mut plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        let seg = &src[oy * wo + lo..oy * wo + hi];
                        if sw == 1 {
                            for (d, v) in line[first..first + hi - lo].iter_mut().zip(seg) {
                                *d += v;
                            }
                        } else {
                            for (v, ix) in seg.iter().zip((first..).step_by(sw)) {
                                line[ix] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Multiply-adds of a whole batch at and above which samples run on several threads (of 2²⁰,
/// 2²² and never, the benchmarks' cnn-digits and audio-cnn trained fastest at 2²⁰).
const PARALLEL_WORK: usize = 1 << 20;

/// Samples per task of the backward pass; the weight gradient is summed over tasks in order, so
/// the bits depend on the batch size only.
const SAMPLES_PER_TASK: usize = 4;

fn forward<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
    spec: ConvSpec,
) -> FloatTensor<B> {
    let device = x.device();
    let xd: [usize; 4] = x.shape().dims();
    let g = Geometry::new(xd, w.shape().dims(), &spec);
    let batch = xd[0];
    let (x, w, b) = (host::view::<B>(x), host::view::<B>(w), host::view::<B>(b));
    let (xv, wv, bias) = (x.values(), w.values(), b.values());
    let (k, p, co) = (g.k(), g.p(), g.c_out);
    let sample_in = g.c_in * g.h * g.w;
    let mut out = vec![0.0f32; batch * co * p];
    let one = |cols: &mut Vec<f32>, s: usize, out: &mut [f32]| {
        cols.resize(k * p, 0.0);
        g.im2col(&xv[s * sample_in..(s + 1) * sample_in], cols);
        for (row, &v) in out.chunks_exact_mut(p).zip(bias) {
            row.fill(v);
        }
        // SAFETY: `out` is `[c_out, p]`, `w` `[c_out, k]`, `cols` `[k, p]`, all dense.
        unsafe {
            host::matmul(
                (co, p, k),
                out.as_mut_ptr(),
                p,
                true,
                (wv.as_ptr(), k, 1),
                (cols.as_ptr(), p, 1),
                false,
            )
        };
        spec.act.apply_all(out);
    };
    if out.is_empty() {
        return host::write::<B>(TensorData::new(out, [batch, co, g.ho, g.wo]), &device);
    }
    if batch * co * p * k >= PARALLEL_WORK {
        out.par_chunks_mut(co * p)
            .enumerate()
            .for_each_init(Vec::new, |cols, (s, o)| one(cols, s, o));
    } else {
        let mut cols = Vec::new();
        for (s, o) in out.chunks_mut(co * p).enumerate() {
            one(&mut cols, s, o);
        }
    }
    host::write::<B>(TensorData::new(out, [batch, co, g.ho, g.wo]), &device)
}

/// The gradients of `x`, `w` and `b` (those `wanted`).
fn backward<B: Backend>(
    grad: FloatTensor<B>,
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    (spec, saved): (ConvSpec, Option<FloatTensor<B>>),
    wanted: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let device = grad.device();
    let xd: [usize; 4] = x.shape().dims();
    let wd: [usize; 4] = w.shape().dims();
    let g = Geometry::new(xd, wd, &spec);
    let batch = xd[0];
    let (k, p, co) = (g.k(), g.p(), g.c_out);
    let sample_in = g.c_in * g.h * g.w;
    let mut dz = host::read::<B>(grad);
    if let Some(saved) = saved {
        let saved = host::view::<B>(saved);
        spec.act.grad_all(host::values_mut(&mut dz), saved.values());
    }
    let dzv = host::values(&dz);
    let db = wanted[2].then(|| {
        let mut db = vec![0.0f32; co];
        for sample in dzv.chunks_exact(co * p) {
            for (acc, row) in db.iter_mut().zip(sample.chunks_exact(p)) {
                *acc += row.iter().sum::<f32>();
            }
        }
        host::write::<B>(TensorData::new(db, [co]), &device)
    });
    if !wanted[0] && !wanted[1] {
        return [None, None, db];
    }
    let (x, w) = (host::view::<B>(x), host::view::<B>(w));
    let (xv, wv) = (x.values(), w.values());
    let mut dx = vec![0.0f32; if wanted[0] { batch * sample_in } else { 0 }];
    let tasks = batch.div_ceil(SAMPLES_PER_TASK);
    // One task: its samples' share of the weight gradient, and their input gradients.
    let task = |t: usize, dx: &mut [f32]| -> Vec<f32> {
        let mut dw = vec![0.0f32; if wanted[1] { co * k } else { 0 }];
        let mut cols = vec![0.0f32; k * p];
        let samples = t * SAMPLES_PER_TASK..((t + 1) * SAMPLES_PER_TASK).min(batch);
        for (i, s) in samples.enumerate() {
            let dz_s = &dzv[s * co * p..(s + 1) * co * p];
            if wanted[1] {
                g.im2col(&xv[s * sample_in..(s + 1) * sample_in], &mut cols);
                // SAFETY: `dw` `[c_out, k]` += `dz_s` `[c_out, p]` · `cols`ᵀ (`[k, p]` read
                // transposed).
                unsafe {
                    host::matmul(
                        (co, k, p),
                        dw.as_mut_ptr(),
                        k,
                        true,
                        (dz_s.as_ptr(), p, 1),
                        (cols.as_ptr(), 1, p),
                        false,
                    )
                };
            }
            if wanted[0] {
                // SAFETY: `cols` `[k, p]` = `w`ᵀ (`[c_out, k]` read transposed) · `dz_s`.
                unsafe {
                    host::matmul(
                        (k, p, co),
                        cols.as_mut_ptr(),
                        p,
                        false,
                        (wv.as_ptr(), 1, k),
                        (dz_s.as_ptr(), p, 1),
                        false,
                    )
                };
                g.col2im(&cols, &mut dx[i * sample_in..(i + 1) * sample_in]);
            }
        }
        dw
    };
    let chunk = (SAMPLES_PER_TASK * sample_in).max(1);
    let parallel = batch * co * p * k >= PARALLEL_WORK;
    let parts: Vec<Vec<f32>> = match (wanted[0], parallel) {
        (true, true) => dx
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(t, d)| task(t, d))
            .collect(),
        (true, false) => dx
            .chunks_mut(chunk)
            .enumerate()
            .map(|(t, d)| task(t, d))
            .collect(),
        (false, true) => (0..tasks)
            .into_par_iter()
            .map(|t| task(t, &mut []))
            .collect(),
        (false, false) => (0..tasks).map(|t| task(t, &mut [])).collect(),
    };
    let dw = wanted[1].then(|| {
        let mut dw = vec![0.0f32; co * k];
        for part in &parts {
            for (a, v) in dw.iter_mut().zip(part) {
                *a += v;
            }
        }
        host::write::<B>(TensorData::new(dw, wd), &device)
    });
    let dx = wanted[0].then(|| host::write::<B>(TensorData::new(dx, xd), &device));
    [dx, dw, db]
}
