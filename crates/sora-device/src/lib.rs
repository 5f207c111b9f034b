//! # sora-device
//!
//! Backends chosen at run time, by name (the `--device` flag), and [`test_device`], the one
//! device helper every test suite of the workspace runs on.
//!
//! | name | backend | feature |
//! |---|---|---|
//! | `flex` (default) | burn-flex, pure-Rust CPU | `flex` |
//! | `ndarray` | burn-ndarray, pure-Rust CPU (deprecated upstream) | `ndarray` |
//! | `tch` | burn-tch, LibTorch on the CPU | `tch` |
//! | `tch-cuda:N` (`tch-cuda` = `tch-cuda:0`) | burn-tch, LibTorch on CUDA device `N` | `tch` |
//!
//! Devices are always constructed explicitly: enabling a feature never changes which
//! backend runs. See `docs/backends.md` for when to pick which and how to set LibTorch up.
//!
//! ```
//! use sora_device::{DeviceChoice, DeviceError};
//!
//! assert_eq!(DeviceChoice::parse("tch-cuda")?, DeviceChoice::TchCuda(0));
//! assert_eq!(DeviceChoice::parse("tch-cuda:1")?.name(), "tch-cuda:1");
//! assert!(matches!(
//!     DeviceChoice::parse("tch-cuda:x"),
//!     Err(DeviceError::BadCudaIndex { .. })
//! ));
//! # Ok::<(), DeviceError>(())
//! ```

use burn::tensor::Device;

/// A device name that cannot be used in this build, or on this machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// The name is not a known device.
    #[error("unknown device `{name}`: expected one of {}", DeviceChoice::NAMES.join(", "))]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The device's backend is not compiled into this build.
    #[error(
        "device `{name}` needs the `{feature}` feature, which this build does not have; \
         rebuild with `--features {feature}`{} (compiled: {})",
        if *feature == "tch" {
            " after `scripts/setup-libtorch.sh` and `source libtorch.env` (docs/backends.md)"
        } else {
            ""
        },
        compiled_backends().join(", ")
    )]
    NotCompiled {
        /// The name given.
        name: String,
        /// The Cargo feature that provides it.
        feature: &'static str,
    },
    /// The text after `tch-cuda:` is not a device index.
    #[error("device `{name}`: CUDA device index `{index}` is not a number (e.g. `tch-cuda:0`)")]
    BadCudaIndex {
        /// The name given.
        name: String,
        /// The text that should have been an index.
        index: String,
        /// Why it did not parse.
        source: std::num::ParseIntError,
    },
    /// The CUDA device index is not one that LibTorch sees on this machine.
    #[error(
        "device `tch-cuda:{index}`: {}",
        if *available == 0 {
            "LibTorch sees no CUDA device on this machine (no NVIDIA GPU, driver or CUDA build \
             of torch); use `--device tch` for LibTorch on the CPU"
                .to_string()
        } else {
            format!(
                "LibTorch sees {available} CUDA device(s), indices 0..={}",
                available - 1
            )
        }
    )]
    CudaUnavailable {
        /// The index asked for.
        index: usize,
        /// How many CUDA devices LibTorch sees.
        available: usize,
    },
}

/// A device, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn-flex on the CPU.
    Flex,
    /// burn-ndarray on the CPU.
    Ndarray,
    /// LibTorch (burn-tch) on the CPU.
    Tch,
    /// LibTorch (burn-tch) on the CUDA device of this index.
    TchCuda(usize),
}

impl DeviceChoice {
    /// Every accepted name (`N` is a CUDA device index).
    pub const NAMES: [&'static str; 4] = ["flex", "ndarray", "tch", "tch-cuda:N"];

    /// One device of each backend, in the order `sora doctor` checks them.
    pub const ALL: [DeviceChoice; 4] = [
        DeviceChoice::Flex,
        DeviceChoice::Ndarray,
        DeviceChoice::Tch,
        DeviceChoice::TchCuda(0),
    ];

    /// The default device.
    pub const DEFAULT: DeviceChoice = DeviceChoice::Flex;

    /// Parses a device name: `flex`, `ndarray`, `tch`, `tch-cuda` or `tch-cuda:N`.
    pub fn parse(name: &str) -> Result<Self, DeviceError> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "flex" | "cpu-flex" => return Ok(DeviceChoice::Flex),
            "ndarray" => return Ok(DeviceChoice::Ndarray),
            "tch" | "tch-cpu" | "libtorch" => return Ok(DeviceChoice::Tch),
            "tch-cuda" => return Ok(DeviceChoice::TchCuda(0)),
            _ => {}
        }
        match lower.strip_prefix("tch-cuda:") {
            Some(index) => index
                .parse::<usize>()
                .map(DeviceChoice::TchCuda)
                .map_err(|source| DeviceError::BadCudaIndex {
                    name: name.to_string(),
                    index: index.to_string(),
                    source,
                }),
            None => Err(DeviceError::Unknown {
                name: name.to_string(),
            }),
        }
    }

    /// The canonical name (`tch-cuda:0`, not `tch-cuda`).
    pub fn name(self) -> String {
        match self {
            DeviceChoice::Flex => "flex".to_string(),
            DeviceChoice::Ndarray => "ndarray".to_string(),
            DeviceChoice::Tch => "tch".to_string(),
            DeviceChoice::TchCuda(index) => format!("tch-cuda:{index}"),
        }
    }

    /// The Cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Ndarray => "ndarray",
            DeviceChoice::Tch | DeviceChoice::TchCuda(_) => "tch",
        }
    }

    /// Whether this build has the backend.
    pub fn is_compiled(self) -> bool {
        compiled_backends().contains(&self.feature())
    }

    /// Constructs the device, or says which feature is missing or, for CUDA, that LibTorch
    /// does not see a device of that index.
    pub fn device(self) -> Result<Device, DeviceError> {
        let missing = || DeviceError::NotCompiled {
            name: self.name(),
            feature: self.feature(),
        };
        match self {
            #[cfg(feature = "flex")]
            DeviceChoice::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            DeviceChoice::Ndarray => {
                // burn-ndarray is deprecated upstream; Sora keeps it as a tested backend.
                #[allow(deprecated)]
                Ok(Device::ndarray())
            }
            #[cfg(feature = "tch")]
            DeviceChoice::Tch => {
                // burn-tch is deprecated upstream; Sora keeps it as an opt-in backend.
                #[allow(deprecated)]
                Ok(Device::libtorch())
            }
            #[cfg(feature = "tch")]
            DeviceChoice::TchCuda(index) => {
                // Burn constructs any index; the first tensor on a missing device would panic
                // inside LibTorch. Ask LibTorch first.
                let available = cuda_device_count();
                if index >= available {
                    return Err(DeviceError::CudaUnavailable { index, available });
                }
                #[allow(deprecated)]
                Ok(Device::libtorch_cuda(index))
            }
            #[allow(unreachable_patterns)]
            _ => Err(missing()),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// How many CUDA devices LibTorch sees (0 without a GPU, a driver, or a CUDA build of torch).
/// Never panics: a LibTorch error counts as no device.
#[cfg(feature = "tch")]
pub fn cuda_device_count() -> usize {
    let count = std::panic::catch_unwind(tch::Cuda::device_count).unwrap_or(0);
    usize::try_from(count).unwrap_or(0)
}

/// The backend features compiled into this build.
pub fn compiled_backends() -> Vec<&'static str> {
    [
        (cfg!(feature = "flex"), "flex"),
        (cfg!(feature = "ndarray"), "ndarray"),
        (cfg!(feature = "tch"), "tch"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Parses a name and constructs its device in one step.
pub fn device(name: &str) -> Result<Device, DeviceError> {
    DeviceChoice::parse(name)?.device()
}

/// The name of the device tests run on: `SORA_TEST_DEVICE` if set (e.g. `ndarray`, `tch`),
/// else `flex`.
pub fn test_device_name() -> String {
    std::env::var("SORA_TEST_DEVICE").unwrap_or_else(|_| DeviceChoice::DEFAULT.name())
}

/// The device tests run on: `SORA_TEST_DEVICE` if set (e.g. `ndarray`, `tch`), else `flex`.
/// Every crate's tests take their device from here, so one test suite covers every backend.
///
/// # Panics
/// If `SORA_TEST_DEVICE` names a device this build cannot construct (a test setup error,
/// reported as such rather than silently testing another backend).
pub fn test_device() -> Device {
    let name = test_device_name();
    device(&name).unwrap_or_else(|e| panic!("SORA_TEST_DEVICE: {e}"))
}

/// Whether the tests run on the default device (`flex`). A test whose figures hold on flex
/// only calls [`require_flex`] instead of returning early.
pub fn testing_on_flex() -> bool {
    DeviceChoice::parse(&test_device_name()) == Ok(DeviceChoice::Flex)
}

/// Fails the calling test, loudly, when the tests run on another device than flex: for
/// tests whose targets are measured on flex (e.g. accuracy figures that take minutes on a
/// slower backend). CI runs them on flex and leaves them out of other devices' runs by name
/// (`--skip`), so a skip is always visible in the command that made it.
///
/// # Panics
/// When `SORA_TEST_DEVICE` names another device.
pub fn require_flex(why: &str) {
    assert!(
        testing_on_flex(),
        "this test runs on flex only ({why}); SORA_TEST_DEVICE is `{}`: run it with \
         SORA_TEST_DEVICE=flex, or leave it out with `--skip`",
        test_device_name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for choice in DeviceChoice::ALL {
            assert_eq!(DeviceChoice::parse(&choice.name()).unwrap(), choice);
        }
        assert_eq!(
            DeviceChoice::parse("TCH-CUDA:12").unwrap(),
            DeviceChoice::TchCuda(12)
        );
        assert_eq!(
            DeviceChoice::parse("tch-cuda").unwrap(),
            DeviceChoice::TchCuda(0)
        );
    }

    #[test]
    fn unknown_device_lists_the_known_ones() {
        let e = DeviceChoice::parse("tpu").unwrap_err();
        assert_eq!(e, DeviceError::Unknown { name: "tpu".into() });
        assert!(
            e.to_string().contains("flex, ndarray, tch, tch-cuda:N"),
            "{e}"
        );
        // Names that are not `tch-cuda:` + index are unknown names.
        assert!(matches!(
            DeviceChoice::parse("tch-cuda0"),
            Err(DeviceError::Unknown { .. })
        ));
    }

    #[test]
    fn bad_cuda_index_is_typed() {
        for bad in ["tch-cuda:", "tch-cuda:-1", "tch-cuda:one", "tch-cuda:1.5"] {
            match DeviceChoice::parse(bad) {
                Err(DeviceError::BadCudaIndex { name, index, .. }) => {
                    assert_eq!(name, bad);
                    assert_eq!(index, bad.trim_start_matches("tch-cuda:"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let e = DeviceChoice::parse("tch-cuda:one").unwrap_err();
        assert!(e.to_string().contains("`one` is not a number"), "{e}");
    }

    #[test]
    fn cuda_unavailable_says_what_torch_sees() {
        let none = DeviceError::CudaUnavailable {
            index: 7,
            available: 0,
        };
        assert!(none.to_string().contains("no CUDA device"), "{none}");
        assert!(none.to_string().contains("--device tch"), "{none}");
        let two = DeviceError::CudaUnavailable {
            index: 7,
            available: 2,
        };
        assert!(two.to_string().contains("indices 0..=1"), "{two}");
    }

    #[test]
    fn missing_feature_is_named() {
        let e = DeviceError::NotCompiled {
            name: "ndarray".into(),
            feature: "ndarray",
        };
        assert!(e.to_string().contains("--features ndarray"), "{e}");
        let e = DeviceError::NotCompiled {
            name: "tch".into(),
            feature: "tch",
        };
        assert!(e.to_string().contains("scripts/setup-libtorch.sh"), "{e}");
        // In this build, every compiled backend constructs (CUDA: or reports a missing
        // device) and a missing one is a `NotCompiled` error naming its feature.
        for choice in DeviceChoice::ALL {
            match choice.device() {
                Ok(_) => assert!(choice.is_compiled()),
                Err(DeviceError::NotCompiled { feature, name }) => {
                    assert!(!choice.is_compiled());
                    assert_eq!(feature, choice.feature());
                    assert_eq!(name, choice.name());
                }
                Err(DeviceError::CudaUnavailable { index, .. }) => {
                    assert!(choice.is_compiled());
                    assert_eq!(choice, DeviceChoice::TchCuda(index));
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
    }

    #[cfg(feature = "tch")]
    #[test]
    fn cuda_index_beyond_the_devices_is_an_error() {
        let available = cuda_device_count();
        assert_eq!(
            DeviceChoice::TchCuda(available).device().unwrap_err(),
            DeviceError::CudaUnavailable {
                index: available,
                available
            }
        );
    }
}
