//! # sora-conv
//!
//! Convolution and pooling for Sora: the [`Conv2dEncoder`] of images and spectrograms and the
//! [`Conv1dEncoder`] of waveforms and frames of audio features, declared in a model spec,
//! shape-checked and summarised before anything is allocated; and the data around them:
//! [`images`] (IDX files, folder-per-label trees of PNG/JPEG/…, normalisation, seeded
//! augmentation) and [`audio`] (WAV, resampling, STFT, log-mel, MFCC, masking).
//!
//! ```
//! use burn::prelude::*;
//! use sora_conv::{Conv2dSpec, ConvBlockSpec, Pool};
//! use sora_core::{HeadSpec, ModelSpec, Task};
//!
//! # fn main() -> Result<(), sora_core::SpecError> {
//! let encoder = Conv2dSpec::new(
//!     [1, 28, 28],
//!     vec![
//!         ConvBlockSpec::new(16, 3).with_pool(Pool::Max, 2),
//!         ConvBlockSpec::new(32, 3).with_pool(Pool::Max, 2),
//!     ],
//! );
//! let checked = ModelSpec::new(encoder, HeadSpec::new(&[64]), Task::Classification { n_classes: 10 })
//!     .check()?;
//! println!("{}", checked.summary());
//! let model = checked.init(&Device::flex());
//! let logits = model.forward(Tensor::<4>::zeros([2, 1, 28, 28], &Device::flex()));
//! assert_eq!(logits.dims(), [2, 10]);
//! # Ok(())
//! # }
//! ```

pub mod audio;
mod encoder;
pub mod images;

pub use encoder::{
    Conv1dEncoder, Conv1dKind, Conv1dSpec, Conv2dEncoder, Conv2dKind, Conv2dSpec, ConvBlock1d,
    ConvBlock2d, ConvBlockSpec, GlobalPool, Pool,
};
