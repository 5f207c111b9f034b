//! Backends chosen at run time, by name (the `--device` flag).
//!
//! | name | backend | feature |
//! |---|---|---|
//! | `flex` (default) | burn-flex, pure-Rust CPU | `flex` |
//! | `ndarray` | burn-ndarray, pure-Rust CPU (deprecated upstream) | `ndarray` |
//!
//! Devices are always constructed explicitly: enabling a feature never changes which
//! backend runs.

use burn::tensor::Device;

/// A device name that was parsed but cannot be used in this build.
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
         rebuild with `--features {feature}` (compiled: {})",
        compiled_backends().join(", ")
    )]
    NotCompiled {
        /// The name given.
        name: String,
        /// The Cargo feature that provides it.
        feature: &'static str,
    },
}

/// A device, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn-flex on the CPU.
    Flex,
    /// burn-ndarray on the CPU.
    Ndarray,
}

impl DeviceChoice {
    /// Every accepted name.
    pub const NAMES: [&'static str; 2] = ["flex", "ndarray"];

    /// The default device.
    pub const DEFAULT: DeviceChoice = DeviceChoice::Flex;

    /// Parses a device name.
    pub fn parse(name: &str) -> Result<Self, DeviceError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "flex" | "cpu-flex" => Ok(DeviceChoice::Flex),
            "ndarray" => Ok(DeviceChoice::Ndarray),
            _ => Err(DeviceError::Unknown {
                name: name.to_string(),
            }),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Ndarray => "ndarray",
        }
    }

    /// The Cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Ndarray => "ndarray",
        }
    }

    /// Whether this build has the backend.
    pub fn is_compiled(self) -> bool {
        compiled_backends().contains(&self.feature())
    }

    /// Constructs the device, or says which feature is missing.
    pub fn device(self) -> Result<Device, DeviceError> {
        let missing = || DeviceError::NotCompiled {
            name: self.name().to_string(),
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
            #[allow(unreachable_patterns)]
            _ => Err(missing()),
        }
    }
}

/// The backend features compiled into this build.
pub fn compiled_backends() -> Vec<&'static str> {
    [
        (cfg!(feature = "flex"), "flex"),
        (cfg!(feature = "ndarray"), "ndarray"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Parses a name and constructs its device in one step.
pub fn device(name: &str) -> Result<Device, DeviceError> {
    DeviceChoice::parse(name)?.device()
}

/// The device tests run on: `SORA_TEST_DEVICE` if set (e.g. `ndarray`), else the default.
/// One test suite thereby covers every backend.
///
/// # Panics
/// If `SORA_TEST_DEVICE` names a device this build cannot construct (a test setup error).
pub fn test_device() -> Device {
    let name = std::env::var("SORA_TEST_DEVICE").unwrap_or_else(|_| "flex".to_string());
    device(&name).unwrap_or_else(|e| panic!("SORA_TEST_DEVICE: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in DeviceChoice::NAMES {
            assert_eq!(DeviceChoice::parse(name).unwrap().name(), name);
        }
    }

    #[test]
    fn unknown_device_lists_the_known_ones() {
        let e = DeviceChoice::parse("tpu").unwrap_err();
        assert_eq!(e, DeviceError::Unknown { name: "tpu".into() });
        assert!(e.to_string().contains("flex, ndarray"), "{e}");
    }

    #[test]
    fn missing_feature_is_named() {
        let e = DeviceError::NotCompiled {
            name: "ndarray".into(),
            feature: "ndarray",
        };
        assert!(e.to_string().contains("--features ndarray"), "{e}");
        // In this build, every compiled backend constructs and a missing one is an error.
        for choice in [DeviceChoice::Flex, DeviceChoice::Ndarray] {
            match choice.device() {
                Ok(_) => assert!(choice.is_compiled()),
                Err(DeviceError::NotCompiled { feature, .. }) => {
                    assert!(!choice.is_compiled());
                    assert_eq!(feature, choice.feature());
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
    }
}
