//! Image bytes as an upload to an image model is read: [`read_image_bytes`] (PNG, JPEG, BMP
//! or GIF by its bytes; the header's size checked against the pixel limit before decoding),
//! converted to 1 or 3 channels and resized. Image folders for training and files for
//! prediction go through the same decoder.
//!
//! The first byte picks the channels (bit 0) and the size (the next bits: 28×28, 32×32,
//! 8×12, 1×1); the rest is the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sora_conv::images::read_image_bytes;

const SIZES: [(usize, usize); 4] = [(28, 28), (32, 32), (8, 12), (1, 1)];

fuzz_target!(|data: &[u8]| {
    let Some((&options, file)) = data.split_first() else {
        return;
    };
    let channels = if options & 1 == 1 { 3 } else { 1 };
    let size = SIZES[usize::from(options >> 1) % SIZES.len()];
    if let Ok(values) = read_image_bytes("fuzz.img", file, channels, size) {
        assert_eq!(values.len(), channels * size.0 * size.1);
    }
});
