//! Train/validation/test splits and class weights.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Index lists of a three-way split, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// Training indices.
    pub train: Vec<usize>,
    /// Validation indices.
    pub valid: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

impl Split {
    /// Replaces every index `i` by `items[i]`: turns positions in a label slice into the table
    /// rows those labels came from (e.g. [`EncodedTarget::rows`](crate::EncodedTarget::rows)).
    ///
    /// # Panics
    ///
    /// When an index is out of range for `items`.
    pub fn select(&self, items: &[usize]) -> Split {
        let map = |v: &[usize]| v.iter().map(|&i| items[i]).collect();
        Split {
            train: map(&self.train),
            valid: map(&self.valid),
            test: map(&self.test),
        }
    }
}

/// Splits positions `0..labels.len()` so that every class keeps its proportions.
///
/// One [`ChaCha8Rng`] seeded with `seed` serves the whole call. Classes are taken in order
/// `0, 1, …`; each class's positions (ascending) are shuffled, then the first
/// `round(n_c × test_fraction)` go to test, the next `round(n_c × valid_fraction)` to
/// validation (each capped at what is left) and the rest to training. The same labels and
/// seed give the same split.
///
/// ```
/// use sora_data::stratified_split;
///
/// let labels = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
/// let split = stratified_split(&labels, 0.25, 0.25, 42);
/// assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (6, 3, 3));
/// assert_eq!(split.test.iter().filter(|&&i| labels[i] == 1).count(), 1);
/// assert_eq!(split, stratified_split(&labels, 0.25, 0.25, 42));
/// ```
///
/// # Panics
///
/// When a fraction is not in `[0, 1]` or they sum to more than 1.
pub fn stratified_split(
    labels: &[usize],
    valid_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Split {
    check_fractions(valid_fraction, test_fraction);
    let n_classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &label) in labels.iter().enumerate() {
        by_class[label].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = Split::default();
    for mut indices in by_class {
        deal(
            &mut indices,
            valid_fraction,
            test_fraction,
            &mut rng,
            &mut split,
        );
    }
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    split
}

/// Splits positions `0..n` at random (for regression), with the same rounding and seeding as
/// [`stratified_split`] applied to a single class.
///
/// ```
/// use sora_data::random_split;
///
/// let split = random_split(10, 0.2, 0.1, 3);
/// assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (7, 2, 1));
/// ```
///
/// # Panics
///
/// When a fraction is not in `[0, 1]` or they sum to more than 1.
pub fn random_split(n: usize, valid_fraction: f64, test_fraction: f64, seed: u64) -> Split {
    check_fractions(valid_fraction, test_fraction);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = Split::default();
    let mut indices: Vec<usize> = (0..n).collect();
    deal(
        &mut indices,
        valid_fraction,
        test_fraction,
        &mut rng,
        &mut split,
    );
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    split
}

fn check_fractions(valid: f64, test: f64) {
    assert!(
        (0.0..=1.0).contains(&valid) && (0.0..=1.0).contains(&test) && valid + test <= 1.0,
        "split fractions must be in [0, 1] and sum to at most 1, found valid {valid} and test {test}"
    );
}

fn deal(indices: &mut [usize], valid: f64, test: f64, rng: &mut ChaCha8Rng, split: &mut Split) {
    indices.shuffle(rng);
    let n = indices.len();
    let n_test = ((n as f64 * test).round() as usize).min(n);
    let n_valid = ((n as f64 * valid).round() as usize).min(n - n_test);
    split.test.extend_from_slice(&indices[..n_test]);
    split
        .valid
        .extend_from_slice(&indices[n_test..n_test + n_valid]);
    split.train.extend_from_slice(&indices[n_test + n_valid..]);
}

/// Class weights as scikit-learn's `"balanced"`: `n_samples / (n_present × count_c)`, where
/// `n_present` is the number of classes that occur in `labels`.
///
/// When every class occurs (the usual case) this is exactly scikit-learn's
/// `n_samples / (n_classes × count_c)`. A class that does not occur gets weight 1.0, and
/// counting only the classes present keeps the weights' mean over the samples at 1. Empty
/// `labels` give all ones.
///
/// ```
/// use sora_data::balanced_class_weights;
///
/// let w = balanced_class_weights(&[0, 0, 0, 1], 2);
/// assert_eq!(w, [4.0 / 6.0, 2.0]);
/// ```
///
/// # Panics
///
/// When a label is `>= n_classes`.
pub fn balanced_class_weights(labels: &[usize], n_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &label in labels {
        assert!(
            label < n_classes,
            "label {label} out of range for {n_classes} classes"
        );
        counts[label] += 1;
    }
    let n_present = counts.iter().filter(|&&c| c > 0).count();
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                (labels.len() as f64 / (n_present * c) as f64) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_partition_and_deterministic() {
        let labels: Vec<usize> = (0..103).map(|i| [0, 0, 0, 1, 2][i % 5]).collect();
        let a = stratified_split(&labels, 0.15, 0.2, 1);
        let mut all: Vec<usize> = a
            .train
            .iter()
            .chain(&a.valid)
            .chain(&a.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        for part in [&a.train, &a.valid, &a.test] {
            assert!(part.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(a, stratified_split(&labels, 0.15, 0.2, 1));
        assert_ne!(a, stratified_split(&labels, 0.15, 0.2, 2));
    }

    #[test]
    fn per_class_rounding() {
        // Class sizes 63, 20, 20; test = round(n × 0.2), valid = round(n × 0.15).
        let labels: Vec<usize> = (0..103).map(|i| [0, 0, 0, 1, 2][i % 5]).collect();
        let s = stratified_split(&labels, 0.15, 0.2, 9);
        for (class, n, n_test, n_valid) in [(0, 63, 13, 9), (1, 20, 4, 3), (2, 20, 4, 3)] {
            let count = |v: &[usize]| v.iter().filter(|&&i| labels[i] == class).count();
            assert_eq!(count(&s.test), n_test, "class {class}");
            assert_eq!(count(&s.valid), n_valid, "class {class}");
            assert_eq!(count(&s.train), n - n_test - n_valid, "class {class}");
        }
    }

    #[test]
    fn random_split_partitions() {
        let s = random_split(50, 0.1, 0.3, 5);
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (30, 5, 15));
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(s, random_split(50, 0.1, 0.3, 5));
    }

    #[test]
    #[should_panic(expected = "split fractions")]
    fn fractions_over_one_panic() {
        random_split(10, 0.6, 0.5, 0);
    }

    #[test]
    fn balanced_weights() {
        // sklearn: compute_class_weight("balanced", classes=[0,1,2], y) for counts 6, 3, 1.
        let labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
        let w = balanced_class_weights(&labels, 3);
        let expected = [10.0 / 18.0, 10.0 / 9.0, 10.0 / 3.0];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b as f32).abs() <= f32::EPSILON * 4.0, "{w:?}");
        }
        // Mean weight over the samples is 1.
        let total: f32 = labels.iter().map(|&l| w[l]).sum();
        assert!((total - 10.0).abs() < 1e-5);
        // An absent class gets 1.0 and the present ones keep the mean at 1.
        assert_eq!(balanced_class_weights(&[0, 0, 2, 2], 3), [1.0, 1.0, 1.0]);
        assert_eq!(balanced_class_weights(&[], 2), [1.0, 1.0]);
    }
}
