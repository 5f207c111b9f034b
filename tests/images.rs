//! The accuracy targets of `examples/image_digits.rs`, run through the example's own code
//! (included below as a module, so the settings cannot drift): a small CNN trained on ≈ 7,200
//! of the 10,000 official test images and tested on 2,000 others reaches accuracy ≥ 0.97 on
//! MNIST and ≥ 0.85 on Fashion-MNIST, and the Grad-CAM picture is a PNG of the expected size.
//!
//! The targets are checked on flex, the default device the example's numbers come from. Under
//! `SORA_TEST_DEVICE=ndarray` these tests return at once: burn-ndarray trains these
//! convolutions about 20× slower (≈ 90 s an epoch here against ≈ 4 s): half an hour.

#[path = "../examples/image_digits.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod image_digits;

use image_digits::{Dataset, Options, run};
use sora::train::{Metrics, Progress};

/// Width and height of a PNG, read from its `IHDR` chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24,
        "{} bytes: too short for a PNG",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk is not IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn check(dataset: Dataset, target: f64) {
    // burn-ndarray trains these convolutions ~20× slower (≈ 90 s an epoch): the accuracy
    // targets are checked on flex, and `.ci/run` leaves this file out of the ndarray run.
    sora::device::require_flex("MNIST and Fashion-MNIST accuracy targets");
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("gradcam.png");
    let options = Options {
        picture: picture.clone(),
        progress: Progress::Quiet,
        ..Options::new(dataset)
    };
    let outcome = run(&options).unwrap();
    let Metrics::Classification(m) = &outcome.test else {
        panic!("a classifier")
    };
    assert!(
        m.accuracy >= target,
        "{}: test accuracy {:.4} < {target}",
        dataset.name(),
        m.accuracy
    );

    // The predictions behind the picture agree with the evaluation: as many mistakes as the
    // confusion matrix has off its diagonal.
    let off_diagonal: usize = m
        .confusion
        .iter()
        .enumerate()
        .map(|(t, row)| {
            row.iter()
                .enumerate()
                .filter(|&(p, _)| p != t)
                .map(|(_, v)| v)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(outcome.misclassified, off_diagonal);

    // Six rows of (image | overlay), 28 × 28 pixels drawn 4 × 4, with 4-pixel gaps.
    assert_eq!(outcome.pictured, 6);
    let (cell, gap) = (28 * 4, 4);
    let expected = (2 * cell + 3 * gap, 6 * (cell + gap) + gap);
    let bytes = std::fs::read(&picture).unwrap();
    assert_eq!(png_size(&bytes), expected);
}

#[test]
fn mnist_reaches_97_percent_and_draws_grad_cam() {
    check(Dataset::Mnist, 0.97);
}

#[test]
fn fashion_mnist_reaches_85_percent_and_draws_grad_cam() {
    check(Dataset::Fashion, 0.85);
}
