//! A stack of linear layers scored in one pass: inference through a whole MLP with the rows
//! split into tiles, each tile taken through every layer while its intermediate rows are still
//! in cache, one parallel hand-off for the whole stack and one allocation (the output).
//!
//! [`crate::linear::forward_layer`] runs one layer per operation: each layer writes its full
//! output to memory, allocates it, and hands its tiles to the thread pool. For scoring (no
//! autodiff) the stack needs none of that, and for a single row the per-operation cost of
//! Burn's dispatch is most of the latency; here a whole stack is one operation.
//!
//! On an autodiff device, or where the kernels do not run ([`crate::supported`]), or for a
//! layer without a bias, [`forward_layers`] is the layers one by one through
//! [`forward_layer`] — the composition the tests hold it to.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::nn::Linear;
use burn::prelude::*;
use rayon::prelude::*;

use crate::host;
use crate::linear::{Act, forward_layer, rows_times_weights};

/// Rows one task takes through the whole stack: with layers of a few hundred units, two
/// intermediate tiles stay in the L2 cache.
const TILE_ROWS: usize = 64;

/// Rows up to which each layer is a sweep over its weight rows per input row (the latency of
/// scoring one or two rows), as in [`crate::linear`].
const FEW_ROWS: usize = 2;

/// Multiply-adds from which the tiles run on several threads: below it the hand-off to the
/// thread pool costs more than the second core gains.
const PARALLEL_MACS: usize = 1 << 20;

/// `x` through `layers` in order, each `act(x · W + b)` with the layer's own parameters.
///
/// # Shapes
/// - input: `[n, d_input]`
/// - output: `[n, d_output of the last layer]`
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use sora_kernels::linear::{Act, forward_layer};
/// use sora_kernels::mlp::forward_layers;
///
/// let device = Device::flex();
/// let (a, b) = (LinearConfig::new(3, 5).init(&device), LinearConfig::new(5, 2).init(&device));
/// let x = Tensor::<2>::ones([4, 3], &device);
/// let fused = forward_layers(x.clone(), &[(&a, Act::Relu), (&b, Act::Identity)]);
/// let layered = forward_layer(&b, forward_layer(&a, x, Act::Relu), Act::Identity);
/// fused.into_data().assert_approx_eq::<f32>(&layered.into_data(), Default::default());
/// ```
pub fn forward_layers(x: Tensor<2>, layers: &[(&Linear, Act)]) -> Tensor<2> {
    let device = x.device();
    let one_pass = layers.len() > 1
        && !device.is_autodiff()
        && crate::supported(&device)
        && layers.iter().all(|(layer, _)| layer.bias.is_some());
    if one_pass && let Some(y) = try_one_pass(&x, layers) {
        return y;
    }
    layers
        .iter()
        .fold(x, |x, (layer, act)| forward_layer(layer, x, *act))
}

/// The parameters of a stack of layers as primitives of one backend.
type Stack<B> = Vec<(FloatTensor<B>, FloatTensor<B>, Act)>;

/// [`forward`] on the backend `$backend` if `x` and every parameter of `layers` live on it.
#[cfg(any(feature = "flex", feature = "ndarray"))]
macro_rules! one_pass_on {
    ($backend:ty, $x:expr, $layers:expr) => {{
        type B = $backend;
        let stack: Option<Stack<B>> = $layers
            .iter()
            .map(|(layer, act)| {
                let w = layer.weight.val().try_into_primitive::<B>().ok()?;
                let b = layer.bias.as_ref()?.val().try_into_primitive::<B>().ok()?;
                Some((w, b, *act))
            })
            .collect();
        match ($x.clone().try_into_primitive::<B>().ok(), stack) {
            (Some(x), Some(stack)) => Some(Tensor::from_primitive::<B>(forward::<B>(x, stack))),
            _ => None,
        }
    }};
}

fn try_one_pass(x: &Tensor<2>, layers: &[(&Linear, Act)]) -> Option<Tensor<2>> {
    #[cfg(feature = "flex")]
    if let Some(y) = one_pass_on!(burn::backend::Flex, x, layers) {
        return Some(y);
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream; Sora keeps it working.
    if let Some(y) = one_pass_on!(burn::backend::NdArray, x, layers) {
        return Some(y);
    }
    let _ = (x, layers);
    None
}

/// The stack on the host: tiles of rows through every layer.
fn forward<B: Backend>(x: FloatTensor<B>, stack: Stack<B>) -> FloatTensor<B> {
    let device = x.device();
    let [n, d_in] = x.shape().dims();
    let x = host::view::<B>(x);
    let views: Vec<_> = stack
        .into_iter()
        .map(|(w, b, act)| {
            let d = w.shape().dims::<2>();
            (host::view::<B>(w), host::view::<B>(b), act, d)
        })
        .collect();
    debug_assert_eq!(views[0].3[0], d_in, "the first layer's input width");
    let d_out = views.last().map_or(d_in, |v| v.3[1]);
    let widest = views.iter().map(|v| v.3[1]).max().unwrap_or(0);
    let mut out = vec![0.0f32; n * d_out];
    let xv = x.values();
    if n <= FEW_ROWS {
        let mut bufs = [vec![0.0f32; widest], vec![0.0f32; widest]];
        for (row, y) in xv.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
            for (l, (w, bias, act, [k, d])) in views.iter().enumerate() {
                // Layer `l` reads buffer `(l + 1) % 2` (or the row) and writes buffer `l % 2`
                // (or the output).
                let [even, odd] = &mut bufs;
                let (src, dst) = if l % 2 == 0 {
                    (&*odd, even)
                } else {
                    (&*even, odd)
                };
                let input = if l == 0 { row } else { &src[..*k] };
                let dst = if l + 1 == views.len() {
                    &mut y[..]
                } else {
                    &mut dst[..*d]
                };
                dst.copy_from_slice(bias.values());
                rows_times_weights(input, w.values(), dst);
                act.apply_all(dst);
            }
        }
        return host::write::<B>(TensorData::new(out, [n, d_out]), &device);
    }
    let panels: Vec<host::Panels> = views
        .iter()
        .map(|(w, _, _, [k, d])| host::Panels::new(w.values(), *k, *d))
        .collect();
    // One tile: every layer in turn between two scratch buffers, the last into the output;
    // two scratch tiles per worker (allocated once per worker, not per tile: fresh allocations
    // of this size come back as newly mapped pages the kernel zeroes).
    let scratch = || {
        [
            vec![0.0f32; TILE_ROWS * widest],
            vec![0.0f32; TILE_ROWS * widest],
        ]
    };
    let tile = |bufs: &mut [Vec<f32>; 2], t: usize, y: &mut [f32]| {
        let rows = y.len() / d_out;
        let x_tile = &xv[t * TILE_ROWS * d_in..][..rows * d_in];
        for (l, ((_, bias, act, [k, d]), panel)) in views.iter().zip(&panels).enumerate() {
            // As for a single row: buffer `l % 2` is written, the other read.
            let [even, odd] = &mut *bufs;
            let (src, dst) = if l % 2 == 0 {
                (&*odd, even)
            } else {
                (&*even, odd)
            };
            let input = if l == 0 { x_tile } else { &src[..rows * k] };
            let dst = if l + 1 == views.len() {
                &mut y[..]
            } else {
                &mut dst[..rows * d]
            };
            for row in dst.chunks_exact_mut(*d) {
                row.copy_from_slice(bias.values());
            }
            // SAFETY: `dst` holds `rows` rows of `d`, `input` `rows` rows of `k` (the panel's
            // depth), and the two do not overlap.
            unsafe {
                host::step_matmul(
                    rows,
                    dst.as_mut_ptr(),
                    *d,
                    true,
                    (input.as_ptr(), *k),
                    panel,
                )
            };
            act.apply_all(dst);
        }
    };
    let macs_per_row: usize = views.iter().map(|v| v.3[0] * v.3[1]).sum();
    let chunk = TILE_ROWS * d_out.max(1);
    if n > TILE_ROWS && n.saturating_mul(macs_per_row) >= PARALLEL_MACS {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(scratch, |bufs, (t, y)| tile(bufs, t, y));
    } else {
        let mut bufs = scratch();
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, y)| tile(&mut bufs, t, y));
    }
    host::write::<B>(TensorData::new(out, [n, d_out]), &device)
}
