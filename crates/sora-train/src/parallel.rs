//! Data-parallel training: every batch is cut into shards, each shard's gradient is computed
//! on its own model replica, and the replicas' gradients are averaged (weighted by shard
//! size) before one optimizer step.
//!
//! - **Several devices in one process** ([`Parallel::Devices`](crate::Parallel::Devices)):
//!   one replica per device, forked from the model before every step, shards run in parallel
//!   threads, gradients summed on the host in device order (so a run repeats bit for bit).
//!   This is the multi-device strategy of burn-train's learner, inside Sora's loop.
//! - **Several processes** ([`Parallel::Processes`](crate::Parallel::Processes)):
//!   one replica per process (an MPI rank, say), each taking its shard of every batch;
//!   gradients are summed by a [`Collective`] (`MPI_Allreduce`). Every process starts from
//!   the same seed, so replicas start equal and stay equal: they apply the same averaged
//!   gradient with the same optimizer. Only the leader (rank 0) prints and writes
//!   checkpoints.
//!
//! With mean losses, `Σ_k (n_k / n) · ∇L_k` equals the gradient of the whole batch's mean
//! loss up to float rounding, so a data-parallel run follows the one-device run with the
//! same global batch. Exceptions, by nature of sharding: batch norm computes its statistics
//! per shard, dropout masks differ, and cross-entropy with class weights normalises by each
//! shard's weight sum.

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::TrainError;

/// Sums buffers across the processes of a data-parallel run (an all-reduce).
///
/// Implementations must return the same sums, in every element, to every process.
pub trait Collective: std::fmt::Debug {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn size(&self) -> usize;
    /// Replaces `values` by their element-wise sum over every process.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), TrainError>;
}

/// Shard `k` of `n_shards` of a batch: contiguous, sizes differing by at most one.
pub(crate) fn shard(batch: &[usize], k: usize, n_shards: usize) -> &[usize] {
    let n = batch.len();
    &batch[k * n / n_shards..(k + 1) * n / n_shards]
}

/// Writes a replica's gradients into a flat buffer of fixed layout: for every parameter that
/// requires a gradient, in module order, a presence flag then its values (zeros when absent),
/// all multiplied by `scale`.
pub(crate) struct Flatten<'a> {
    pub grads: &'a mut GradientsParams,
    pub scale: f32,
    pub out: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let n = value.shape().num_elements();
        match self.grads.remove::<D>(param.id) {
            Some(g) => {
                self.out.push(self.scale);
                let values = g
                    .try_into_vec_as::<f32>()
                    .expect("a gradient reads back as f32");
                self.out.extend(values.into_iter().map(|v| v * self.scale));
            }
            None => {
                self.out.push(0.0);
                self.out.extend(std::iter::repeat_n(0.0, n));
            }
        }
    }
}

/// Reads a summed buffer of [`Flatten`]'s layout back into gradients on `device`: a
/// parameter gets one when any replica had one.
pub(crate) struct Unflatten<'a> {
    pub values: &'a [f32],
    pub at: usize,
    pub device: Device,
    pub grads: GradientsParams,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let shape = value.shape();
        let n = shape.num_elements();
        let present = self.values[self.at] != 0.0;
        let data = &self.values[self.at + 1..self.at + 1 + n];
        self.at += 1 + n;
        if present {
            let tensor =
                Tensor::<D>::from_data(TensorData::new(data.to_vec(), shape), &self.device);
            self.grads.register::<D>(param.id, tensor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        let batch: Vec<usize> = (10..17).collect();
        let parts: Vec<&[usize]> = (0..3).map(|k| shard(&batch, k, 3)).collect();
        assert_eq!(parts, [&[10, 11][..], &[12, 13][..], &[14, 15, 16][..]]);
        assert_eq!(shard(&batch[..1], 0, 2), &[] as &[usize]);
        assert_eq!(shard(&batch[..1], 1, 2), &[10]);
    }
}
