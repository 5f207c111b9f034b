//! Data-parallel training over MPI (the `mpi` feature): each rank trains on its shard of
//! every batch and the gradients are summed with `MPI_Allreduce` before each step (see
//! [`sora_train::parallel`]); rank 0 prints, writes checkpoints and saves the model.
//!
//! Launch with `mpirun -np N sora train … --distributed mpi`. Every rank reads the same
//! data with the same seed, so all ranks make the same split, the same initial weights and
//! the same shuffles; with the same global batch the run follows the one-process run (to
//! float rounding, tested in `tests/mpi.rs`). A rank that dies takes the job down: MPI's
//! default error handler aborts every rank (`mpirun` reports which one failed), so a run never
//! hangs on a missing peer, and a checkpoint is never half written (checkpoints commit by an
//! atomic rename, rank 0 alone).

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use sora_train::{Collective, TrainError};

/// What can go wrong starting MPI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributedError {
    /// MPI was already initialised in this process.
    #[error("MPI is already initialised in this process")]
    AlreadyInitialized,
}

/// The world communicator's all-reduce, as a [`Collective`].
#[derive(Debug, Clone, Copy)]
pub struct MpiCollective {
    rank: usize,
    size: usize,
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), TrainError> {
        let send = values.to_vec();
        SimpleCommunicator::world().all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
}

/// Initialises MPI: keep the [`Universe`] alive for the whole run (dropping it finalises
/// MPI), and hand the collective to the trainer.
pub fn init() -> Result<(Universe, MpiCollective), DistributedError> {
    let universe = mpi::initialize().ok_or(DistributedError::AlreadyInitialized)?;
    let world = universe.world();
    let collective = MpiCollective {
        rank: world.rank() as usize,
        size: world.size() as usize,
    };
    Ok((universe, collective))
}
