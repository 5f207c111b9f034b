//! The accuracy targets of `examples/speech_digits.rs` and `examples/speaker_id.rs`, through
//! the examples' own code (included below as a module, so the settings cannot drift): on
//! FSDD's own split (takes 0–4 of every speaker test, takes 5–49 train, a stratified, seeded
//! 10 % of those validating), digit accuracy ≥ 0.95 and speaker accuracy ≥ 0.95.
//!
//! Both run on every device (≈ 5 s on flex, ≈ 70 s on ndarray, on 2 cores). The
//! leave-one-speaker-out scores are reported by the example only: they have no target.

#[path = "../examples/speech_digits.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod speech_digits;

use sora::device::test_device;
use sora::jobs::media::Samples;
use sora::train::{Metrics, Progress};
use speech_digits::{Fsdd, SEED, fit_valid, settings};

/// Test accuracy of the examples' network on the take split, labels as in `samples`.
fn take_split_accuracy(fsdd: &Fsdd, samples: &Samples) -> f64 {
    let (train, test) = fsdd.take_split();
    assert_eq!((train.len(), test.len()), (1800, 200));
    let (fit, valid) = fit_valid(samples, &train, SEED);
    let mut config = settings(&samples.shape, samples.classes.len(), SEED);
    config.train.progress = Progress::Quiet;
    let run = sora::jobs::media::train_split(
        &fit,
        Some(&valid),
        &samples.subset(&test),
        fsdd.pipeline.clone(),
        &config,
        &test_device(),
    )
    .unwrap();
    run.test.as_ref().and_then(Metrics::accuracy).unwrap()
}

#[test]
fn spoken_digits_take_split_accuracy_at_least_095() {
    let fsdd = Fsdd::load().unwrap();
    assert_eq!(fsdd.digits.classes.len(), 10);
    let accuracy = take_split_accuracy(&fsdd, &fsdd.digits);
    assert!(accuracy >= 0.95, "digit test accuracy {accuracy}");
}

#[test]
fn speaker_id_take_split_accuracy_at_least_095() {
    let fsdd = Fsdd::load().unwrap();
    assert_eq!(fsdd.speakers, ["george", "jackson", "lucas", "nicolas"]);
    let accuracy = take_split_accuracy(&fsdd, &fsdd.by_speaker());
    assert!(accuracy >= 0.95, "speaker test accuracy {accuracy}");
}
