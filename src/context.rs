//! The setting of a training run, as the program decides it: the device by name, several
//! devices (`--devices flex,flex`), or processes under MPI (`--distributed mpi`).

use sora_device::{DeviceChoice, DeviceError};
use sora_jobs::RunContext;
use sora_train::Parallel;

/// Why a run's setting could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A device name is unknown, not compiled in, or absent.
    #[error("{flag}: {source}")]
    Device {
        /// The flag that named it.
        flag: &'static str,
        /// Why.
        #[source]
        source: DeviceError,
    },
    /// MPI was asked of a build without it.
    #[error(
        "--distributed mpi: this build has no MPI; rebuild with `--features mpi` (needs OpenMPI and libclang, see docs/backends.md)"
    )]
    NoMpi,
    /// MPI could not start.
    #[cfg(feature = "mpi")]
    #[error(transparent)]
    Mpi(#[from] crate::distributed::DistributedError),
}

/// How a run trains across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distributed {
    /// MPI: launched with `mpirun -np N sora train …`; each rank takes its shard of every
    /// batch, rank 0 saves.
    Mpi,
}

/// A run's context and, under MPI, the environment to keep alive for the whole run.
pub struct RunSetting {
    /// The run's device, data-parallel setting and leader.
    pub context: RunContext,
    /// The device names of `--devices`, for the program's account.
    pub devices: Vec<String>,
    #[cfg(feature = "mpi")]
    _mpi: Option<mpi::environment::Universe>,
}

impl std::fmt::Debug for RunSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSetting")
            .field("context", &self.context)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

/// The setting of a run on `device`, or data-parallel on `devices` (the model lives on the
/// first), or over MPI processes.
pub fn run_context(
    device: DeviceChoice,
    devices: &[DeviceChoice],
    distributed: Option<Distributed>,
) -> Result<RunSetting, ContextError> {
    let make = |choice: DeviceChoice, flag| {
        choice
            .device()
            .map_err(|source| ContextError::Device { flag, source })
    };
    let mut setting = RunSetting {
        context: RunContext::new(make(device, "--device")?),
        devices: devices.iter().map(|d| d.name()).collect(),
        #[cfg(feature = "mpi")]
        _mpi: None,
    };
    if !devices.is_empty() {
        let devices = devices
            .iter()
            .map(|&d| make(d, "--devices"))
            .collect::<Result<Vec<_>, _>>()?;
        setting.context.device = devices[0].clone();
        setting.context.parallel = Parallel::Devices(devices);
        return Ok(setting);
    }
    match distributed {
        None => {}
        #[cfg(feature = "mpi")]
        Some(Distributed::Mpi) => {
            let (universe, collective) = crate::distributed::init()?;
            setting.context.leader = sora_train::Collective::rank(&collective) == 0;
            setting.context.parallel = Parallel::Processes(std::sync::Arc::new(collective));
            setting._mpi = Some(universe);
        }
        #[cfg(not(feature = "mpi"))]
        Some(Distributed::Mpi) => return Err(ContextError::NoMpi),
    }
    Ok(setting)
}
