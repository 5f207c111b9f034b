//! WAV bytes as an upload to an audio model is read: [`read_wav_bytes`] (hound; mono integer
//! PCM only), then the default front end of audio models ([`FeatureConfig::default`]: resampled
//! to 8 kHz, fitted to 1 s, log-mel) and its MFCC variant. [`read_wav`] reads files from disk
//! through the same decoder.
//!
//! [`read_wav`]: sora_conv::audio::read_wav

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sora_conv::audio::{FeatureConfig, FeatureExtractor, FeatureKind, read_wav_bytes};

fn extractors() -> &'static [FeatureExtractor; 2] {
    static EXTRACTORS: OnceLock<[FeatureExtractor; 2]> = OnceLock::new();
    EXTRACTORS.get_or_init(|| {
        let log_mel = FeatureConfig::default();
        let mfcc = FeatureConfig {
            kind: FeatureKind::Mfcc,
            ..FeatureConfig::default()
        };
        [log_mel, mfcc].map(|c| FeatureExtractor::new(c).expect("the default config checks"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(clip) = read_wav_bytes("fuzz.wav", data) else {
        return;
    };
    assert!(clip.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    for extractor in extractors() {
        if let Ok(features) = extractor.extract(&clip) {
            let [rows, cols] = extractor.config().output_shape();
            assert_eq!(features.len(), rows * cols);
        }
    }
});
