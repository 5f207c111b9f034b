//! An IDX images file and its labels file (MNIST's format, either gzip-compressed), read by
//! [`read_idx`] as `sora train --data FILE --labels FILE` reads them: magic numbers, the
//! header's dimensions checked against the size cap, the data read in growing chunks.
//!
//! The input is the two files in the format of [`sora_fuzz::unpack`] (`=== images`,
//! `=== labels`); without a labels file the images are read alone, as for prediction.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sora_conv::images::read_idx;

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder"))
}

fuzz_target!(|data: &[u8]| {
    let files = sora_fuzz::unpack(data);
    let file = |name: &str| files.iter().rev().find(|(n, _)| n == name).map(|(_, b)| *b);
    let Some(images) = file("images") else {
        return;
    };
    let dir = scratch().path();
    let images_path = dir.join("images");
    std::fs::write(&images_path, images).expect("the images file is written");
    let labels_path = file("labels").map(|labels| {
        let path = dir.join("labels");
        std::fs::write(&path, labels).expect("the labels file is written");
        path
    });
    if let Ok(set) = read_idx(&images_path, labels_path.as_deref()) {
        assert_eq!(set.labels.len(), set.len());
        let [c, h, w] = set.shape();
        assert_eq!(c * h * w, set.sample_len());
        for i in 0..set.len() {
            assert_eq!(set.image(i).len(), set.sample_len());
        }
        if labels_path.is_some() {
            assert!(set.labels.iter().all(|&l| l < set.class_names.len()));
        }
    }
});
