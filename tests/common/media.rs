//! Small image and audio data sets made on the spot, learnable in seconds.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sora::conv::audio::{Clip, write_wav};

/// 12×12 gray images: class `across` has a bright horizontal bar, class `down` a vertical
/// one, at a random position, over noise.
pub fn bars(root: &Path, per_class: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (class, vertical) in [("across", false), ("down", true)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let at = rng.random_range(2..10);
            let img = image::GrayImage::from_fn(12, 12, |x, y| {
                let on = if vertical { x == at } else { y == at };
                let noise: u8 = rng.random_range(0..60);
                image::Luma([if on { 200 + noise / 2 } else { noise }])
            });
            img.save(dir.join(format!("{i:03}.png"))).unwrap();
        }
    }
}

/// 0.25 s clips at 8 kHz: class `low` a 300 Hz tone, class `high` a 1,800 Hz tone, with
/// random amplitude and noise.
pub fn tones(root: &Path, per_class: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (class, hz) in [("low", 300.0f32), ("high", 1800.0)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let amp = rng.random_range(0.2..0.8);
            let samples = (0..2000)
                .map(|t| {
                    let noise: f32 = rng.random_range(-0.05..0.05);
                    amp * (std::f32::consts::TAU * hz * t as f32 / 8000.0).sin() + noise
                })
                .collect();
            let clip = Clip {
                samples,
                sample_rate: 8000,
            };
            write_wav(dir.join(format!("{i:03}.wav")), &clip).unwrap();
        }
    }
}
