//! # Sora
//!
//! Small, efficient, explainable neural networks on small data, on Burn 0.22.
//!
//! This facade re-exports the workspace crates and adds what only the program at the top
//! decides: which backend runs ([`device`]) and where the bundled data sets are
//! ([`datasets`]). Library crates never choose a backend; they take a `&Device`.
//!
//! ```
//! use sora::device::DeviceChoice;
//!
//! # fn main() -> Result<(), sora::device::DeviceError> {
//! let device = DeviceChoice::parse("flex")?.device()?;
//! # let _ = device;
//! # Ok(())
//! # }
//! ```

pub mod datasets;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod doctor;
pub mod explain;
pub mod generate;
pub mod media;
pub mod recommend;
pub mod report;
pub mod serve;
pub mod tabular;
pub mod text_explain;
pub mod textclf;

pub use sora_conv as conv;
pub use sora_core as core;
pub use sora_data as data;
pub use sora_device as device;
pub use sora_explain as explain_methods;
pub use sora_text as text;
pub use sora_train as train;

#[doc = include_str!("../docs/extending.md")]
#[cfg(doctest)]
pub struct ExtendingGuide;

#[doc = include_str!("../docs/explaining.md")]
#[cfg(doctest)]
pub struct ExplainingGuide;

/// The Burn version Sora is built on.
pub const BURN_VERSION: &str = "0.22.1";
