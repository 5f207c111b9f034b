//! # Sora
//!
//! Small, efficient, explainable neural networks on small data, on Burn 0.22.
//!
//! This facade re-exports the workspace crates — the layers ([`core`]), data ([`data`]),
//! training ([`train`]), the domain extensions ([`conv`], [`text`]), explanations
//! ([`explain_methods`]), the model kinds behind one contract ([`jobs`]) and, with the
//! `serve` feature, the HTTP server ([`serve`]) — and adds what only the program at the top
//! decides: which backend runs ([`device`], [`run_context`]), where the bundled data sets
//! are ([`datasets`]), and the preflight ([`doctor`]). Library crates never choose a
//! backend; they take a `&Device`.
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

mod context;
pub mod datasets;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod doctor;

pub use context::{ContextError, Distributed, RunSetting, run_context};
pub use sora_conv as conv;
pub use sora_core as core;
pub use sora_data as data;
pub use sora_device as device;
pub use sora_explain as explain_methods;
pub use sora_jobs as jobs;
#[cfg(feature = "serve")]
pub use sora_serve as serve;
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
