//! K-fold cross-validation: for each fold, the rows it trains on and the rows it tests on.
//!
//! Four ways to deal rows into `k` folds, each seeded and deterministic, each a partition of
//! the rows into test folds:
//!
//! - [`Folds::plain`]: rows shuffled and dealt round-robin (scikit-learn's shuffled `KFold`);
//! - [`Folds::stratified`]: each class's rows shuffled and dealt round-robin, so every fold
//!   holds each class in the same proportion up to one row (`StratifiedKFold`);
//! - [`Folds::grouped`]: whole groups dealt to the fold with the fewest rows, largest group
//!   first, so no group is split between folds (`GroupKFold`);
//! - [`Folds::stratified_grouped`]: whole groups dealt to the fold that keeps the class
//!   proportions of the folds closest (`StratifiedGroupKFold`).
//!
//! [`Folds::repeated`] runs any of them `R` times with seeds derived from one, for `R × k`
//! folds.
//!
//! ```
//! use sora_data::Folds;
//!
//! # fn main() -> Result<(), sora_data::DataError> {
//! let labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
//! let folds = Folds::repeated(2, 42, |seed| Folds::stratified(&labels, 3, seed))?;
//! assert_eq!(folds.n_repeats(), 2);
//! for fold in &folds {
//!     assert_eq!(fold.test.iter().filter(|&&i| labels[i] == 1).count(), 2);
//!     assert_eq!(fold.train.len() + fold.test.len(), labels.len());
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::hash::Hash;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{DataError, Result};

/// One fold of a cross-validation: index lists, each sorted ascending, disjoint, and together
/// every row.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fold {
    /// Training indices (every row not in `test`).
    pub train: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

impl Fold {
    /// Replaces every index `i` by `items[i]`, as [`Split::select`](crate::Split::select) does:
    /// turns positions in a label slice into the table rows those labels came from.
    ///
    /// ```
    /// use sora_data::Fold;
    ///
    /// let fold = Fold { train: vec![0, 2], test: vec![1] };
    /// let rows = fold.select(&[10, 11, 12]);
    /// assert_eq!((rows.train, rows.test), (vec![10, 12], vec![11]));
    /// ```
    ///
    /// # Panics
    ///
    /// When an index is out of range for `items`.
    pub fn select(&self, items: &[usize]) -> Fold {
        let map = |v: &[usize]| v.iter().map(|&i| items[i]).collect();
        Fold {
            train: map(&self.train),
            test: map(&self.test),
        }
    }
}

/// The folds of a (repeated) K-fold cross-validation over positions `0..n_rows`.
///
/// Within one repeat, every row is in exactly one fold's `test` list, and every fold's `test`
/// list is non-empty. Iterating gives the folds of repeat 0, then repeat 1, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Folds {
    repeats: Vec<Vec<Fold>>,
}

impl Folds {
    /// Shuffles positions `0..n_rows` with `seed` and deals them round-robin into `k` folds,
    /// so fold sizes differ by at most one.
    ///
    /// One [`ChaCha8Rng`] seeded with `seed` serves the call, as in
    /// [`random_split`](crate::random_split).
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let folds = Folds::plain(10, 3, 7)?;
    /// let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
    /// assert_eq!(sizes, [4, 3, 3]);
    /// assert_eq!(folds, Folds::plain(10, 3, 7)?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::CvTooFewFolds`] when `k < 2`, [`DataError::CvMoreFoldsThanRows`] when
    /// `k > n_rows`.
    pub fn plain(n_rows: usize, k: usize, seed: u64) -> Result<Folds> {
        check_k(k, n_rows)?;
        let mut rows: Vec<usize> = (0..n_rows).collect();
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut fold_of = vec![0; n_rows];
        for (position, &row) in rows.iter().enumerate() {
            fold_of[row] = position % k;
        }
        Ok(Folds::single(&fold_of, k))
    }

    /// Deals positions `0..labels.len()` into `k` folds so that every fold holds each class in
    /// the same proportion, like scikit-learn's `StratifiedKFold(shuffle=True)`.
    ///
    /// One [`ChaCha8Rng`] seeded with `seed` serves the call. Classes are taken in order
    /// `0, 1, …`; each class's positions (ascending) are shuffled, then dealt round-robin,
    /// the deal carrying on from one class to the next. So each class's count differs by at
    /// most one between folds, and so do the fold sizes.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let labels = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
    /// let folds = Folds::stratified(&labels, 3, 1)?;
    /// for fold in &folds {
    ///     let ones = fold.test.iter().filter(|&&i| labels[i] == 1).count();
    ///     assert!((1..=2).contains(&ones));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::CvTooFewFolds`] when `k < 2`, [`DataError::CvMoreFoldsThanRows`] when
    /// `k > labels.len()`, [`DataError::CvMoreFoldsThanClassRows`] when a class that occurs
    /// has fewer than `k` rows.
    pub fn stratified(labels: &[usize], k: usize, seed: u64) -> Result<Folds> {
        check_k(k, labels.len())?;
        let by_class = rows_by_class(labels);
        let smallest = by_class
            .iter()
            .enumerate()
            .filter(|(_, rows)| !rows.is_empty())
            .min_by_key(|(_, rows)| rows.len());
        if let Some((class, rows)) = smallest
            && rows.len() < k
        {
            return Err(DataError::CvMoreFoldsThanClassRows {
                k,
                class,
                count: rows.len(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fold_of = vec![0; labels.len()];
        let mut position = 0;
        for mut rows in by_class {
            rows.shuffle(&mut rng);
            for row in rows {
                fold_of[row] = position % k;
                position += 1;
            }
        }
        Ok(Folds::single(&fold_of, k))
    }

    /// Deals positions `0..groups.len()` into `k` folds so that the rows of one group are
    /// never in two folds, like scikit-learn's `GroupKFold`: groups are taken largest first
    /// and each goes to the fold with the fewest rows so far (the lowest-numbered such fold).
    ///
    /// Groups are equal values of `groups` (a patient id, a site, a user). One [`ChaCha8Rng`]
    /// seeded with `seed` shuffles the groups (in order of first appearance) before the
    /// stable sort by size, so the seed decides between groups of equal size.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let patients = ["ann", "ann", "bob", "cy", "cy", "cy", "dee", "eve"];
    /// let folds = Folds::grouped(&patients, 3, 0)?;
    /// for fold in &folds {
    ///     for &i in &fold.test {
    ///         assert!(fold.train.iter().all(|&j| patients[j] != patients[i]));
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::CvTooFewFolds`] when `k < 2`, [`DataError::CvMoreFoldsThanRows`] when
    /// `k > groups.len()`, [`DataError::CvTooFewGroups`] when there are fewer than `k`
    /// distinct groups.
    pub fn grouped<G: Eq + Hash>(groups: &[G], k: usize, seed: u64) -> Result<Folds> {
        check_k(k, groups.len())?;
        let (group_of, n_groups) = group_ids(groups);
        if n_groups < k {
            return Err(DataError::CvTooFewGroups { k, n_groups });
        }
        let mut sizes = vec![0usize; n_groups];
        for &g in &group_of {
            sizes[g] += 1;
        }
        let mut order: Vec<usize> = (0..n_groups).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order.sort_by_key(|&g| std::cmp::Reverse(sizes[g]));
        let mut fold_rows = vec![0usize; k];
        let mut fold_of_group = vec![0; n_groups];
        for g in order {
            // The first of the least filled folds. Every group has a row, so the first `k`
            // groups fill the `k` empty folds.
            let fold = (0..k).min_by_key(|&f| fold_rows[f]).unwrap_or(0);
            fold_of_group[g] = fold;
            fold_rows[fold] += sizes[g];
        }
        let fold_of: Vec<usize> = group_of.iter().map(|&g| fold_of_group[g]).collect();
        Ok(Folds::single(&fold_of, k))
    }

    /// Deals positions `0..labels.len()` into `k` folds so that no group is split between
    /// folds and the folds' class proportions stay close, like scikit-learn's
    /// `StratifiedGroupKFold(shuffle=True)`.
    ///
    /// One [`ChaCha8Rng`] seeded with `seed` shuffles the groups (in order of first
    /// appearance); a stable sort then puts first the groups whose class counts vary most
    /// (population standard deviation over the classes that occur). Each group in turn goes
    /// to the fold that minimizes the spread of the class proportions: for every class `c`,
    /// the standard deviation over the folds of `count(fold, c) / count(c)`, averaged over the
    /// classes. Near ties (as `numpy.isclose`: within `1e-8 + 1e-5 × best`) go to the fold
    /// with fewer rows, then to the lowest-numbered. When as many groups are left as folds
    /// are empty, the groups go to empty folds, so every fold tests at least one group.
    ///
    /// Unlike [`Folds::stratified`], a class with fewer rows than `k` is allowed (some folds
    /// will not test it): with groups, the class counts are not the caller's to choose.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let labels = [0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1];
    /// let sites = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5];
    /// let folds = Folds::stratified_grouped(&labels, &sites, 2, 3)?;
    /// for fold in &folds {
    ///     for &i in &fold.test {
    ///         assert!(fold.train.iter().all(|&j| sites[j] != sites[i]));
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::CvGroupsLength`] when `labels` and `groups` differ in length,
    /// [`DataError::CvTooFewFolds`] when `k < 2`, [`DataError::CvMoreFoldsThanRows`] when
    /// `k > labels.len()`, [`DataError::CvTooFewGroups`] when there are fewer than `k`
    /// distinct groups.
    pub fn stratified_grouped<G: Eq + Hash>(
        labels: &[usize],
        groups: &[G],
        k: usize,
        seed: u64,
    ) -> Result<Folds> {
        if labels.len() != groups.len() {
            return Err(DataError::CvGroupsLength {
                n_labels: labels.len(),
                n_groups: groups.len(),
            });
        }
        check_k(k, labels.len())?;
        let (group_of, n_groups) = group_ids(groups);
        if n_groups < k {
            return Err(DataError::CvTooFewGroups { k, n_groups });
        }
        // Only the classes that occur count; `class_index` maps a label to its column.
        let n_labels = labels.iter().max().map_or(0, |&m| m + 1);
        let mut class_totals = vec![0usize; n_labels];
        for &label in labels {
            class_totals[label] += 1;
        }
        let mut class_index = vec![usize::MAX; n_labels];
        let mut totals = Vec::new();
        for (label, &total) in class_totals.iter().enumerate() {
            if total > 0 {
                class_index[label] = totals.len();
                totals.push(total as f64);
            }
        }
        let n_classes = totals.len();
        let mut group_counts = vec![vec![0usize; n_classes]; n_groups];
        for (&g, &label) in group_of.iter().zip(labels) {
            group_counts[g][class_index[label]] += 1;
        }

        let mut order: Vec<usize> = (0..n_groups).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let spread: Vec<f64> = group_counts
            .iter()
            .map(|counts| std_dev(counts.iter().map(|&c| c as f64)))
            .collect();
        order.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]));

        let mut fold_counts = vec![vec![0usize; n_classes]; k];
        let mut fold_rows = vec![0usize; k];
        let mut fold_of_group = vec![0; n_groups];
        for (done, &g) in order.iter().enumerate() {
            let counts = &group_counts[g];
            let left = n_groups - done;
            let empty = fold_rows.iter().filter(|&&r| r == 0).count();
            let mut best: Option<(usize, f64)> = None;
            for fold in 0..k {
                if left <= empty && fold_rows[fold] > 0 {
                    continue;
                }
                let eval = (0..n_classes)
                    .map(|c| {
                        std_dev((0..k).map(|f| {
                            let added = if f == fold { counts[c] } else { 0 };
                            (fold_counts[f][c] + added) as f64 / totals[c]
                        }))
                    })
                    .sum::<f64>()
                    / n_classes as f64;
                let better = match best {
                    None => true,
                    Some((best_fold, best_eval)) => {
                        if (eval - best_eval).abs() <= 1e-8 + 1e-5 * best_eval.abs() {
                            fold_rows[fold] < fold_rows[best_fold]
                        } else {
                            eval < best_eval
                        }
                    }
                };
                if better {
                    best = Some((fold, eval));
                }
            }
            let fold = best.map_or(0, |(fold, _)| fold);
            fold_of_group[g] = fold;
            for (total, &c) in fold_counts[fold].iter_mut().zip(counts) {
                *total += c;
            }
            fold_rows[fold] += counts.iter().sum::<usize>();
        }
        let fold_of: Vec<usize> = group_of.iter().map(|&g| fold_of_group[g]).collect();
        Ok(Folds::single(&fold_of, k))
    }

    /// Repeated cross-validation: calls `build` with [`Folds::repeat_seed`]`(seed, r)` for
    /// `r = 0..repeats` and keeps every repeat's folds, `repeats × k` in all.
    ///
    /// Repeat 0 uses `seed` itself, so one repeat gives the same folds as a single call.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let folds = Folds::repeated(3, 5, |seed| Folds::plain(20, 4, seed))?;
    /// assert_eq!((folds.n_repeats(), folds.iter().count()), (3, 12));
    /// assert_eq!(folds.repeat(0), Folds::plain(20, 4, 5)?.repeat(0));
    /// assert_ne!(folds.repeat(0), folds.repeat(1));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`DataError::CvNoRepeats`] when `repeats` is 0; otherwise the first error of `build`.
    pub fn repeated(
        repeats: usize,
        seed: u64,
        mut build: impl FnMut(u64) -> Result<Folds>,
    ) -> Result<Folds> {
        if repeats == 0 {
            return Err(DataError::CvNoRepeats);
        }
        let mut all = Vec::with_capacity(repeats);
        for r in 0..repeats {
            all.extend(build(Folds::repeat_seed(seed, r))?.repeats);
        }
        Ok(Folds { repeats: all })
    }

    /// The seed of repeat `repeat` in [`Folds::repeated`]: `seed` for repeat 0, then `seed`
    /// XOR `repeat × 0x9E37_79B9_7F4A_7C15` (wrapping), the golden-ratio step the training
    /// loop uses for its per-epoch seeds.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// assert_eq!(Folds::repeat_seed(42, 0), 42);
    /// assert_ne!(Folds::repeat_seed(42, 1), Folds::repeat_seed(42, 2));
    /// ```
    pub fn repeat_seed(seed: u64, repeat: usize) -> u64 {
        seed ^ (repeat as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Number of repeats (1 unless built by [`Folds::repeated`]).
    pub fn n_repeats(&self) -> usize {
        self.repeats.len()
    }

    /// The folds of repeat `r`, or `None` when `r >= n_repeats()`.
    pub fn repeat(&self, r: usize) -> Option<&[Fold]> {
        self.repeats.get(r).map(Vec::as_slice)
    }

    /// Every fold: those of repeat 0, then of repeat 1, and so on.
    pub fn iter(&self) -> impl Iterator<Item = &Fold> {
        self.repeats.iter().flatten()
    }

    /// For repeat `r`, the fold that tests each row: `test_fold[row]` is the index in
    /// [`Folds::repeat`]`(r)` of the fold whose `test` holds `row`. It places out-of-fold
    /// predictions. `None` when `r >= n_repeats()`.
    ///
    /// ```
    /// use sora_data::Folds;
    ///
    /// # fn main() -> Result<(), sora_data::DataError> {
    /// let folds = Folds::plain(6, 2, 0)?;
    /// let test_fold = folds.test_folds(0).unwrap();
    /// for (f, fold) in folds.repeat(0).unwrap().iter().enumerate() {
    ///     assert!(fold.test.iter().all(|&row| test_fold[row] == f));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn test_folds(&self, r: usize) -> Option<Vec<usize>> {
        let folds = self.repeats.get(r)?;
        let n_rows = folds.iter().map(|f| f.test.len()).sum();
        let mut test_fold = vec![0; n_rows];
        for (f, fold) in folds.iter().enumerate() {
            for &row in &fold.test {
                test_fold[row] = f;
            }
        }
        Some(test_fold)
    }

    /// One repeat from each row's fold: rows ascending, so every list comes out sorted.
    fn single(fold_of: &[usize], k: usize) -> Folds {
        let mut folds = vec![Fold::default(); k];
        for (row, &fold) in fold_of.iter().enumerate() {
            for (f, part) in folds.iter_mut().enumerate() {
                if f == fold {
                    part.test.push(row);
                } else {
                    part.train.push(row);
                }
            }
        }
        Folds {
            repeats: vec![folds],
        }
    }
}

impl<'a> IntoIterator for &'a Folds {
    type Item = &'a Fold;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<Fold>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.repeats.iter().flatten()
    }
}

fn check_k(k: usize, n_rows: usize) -> Result<()> {
    if k < 2 {
        return Err(DataError::CvTooFewFolds { k });
    }
    if k > n_rows {
        return Err(DataError::CvMoreFoldsThanRows { k, n_rows });
    }
    Ok(())
}

/// Positions of each class `0..=max label`, ascending.
fn rows_by_class(labels: &[usize]) -> Vec<Vec<usize>> {
    let n_classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut by_class = vec![Vec::new(); n_classes];
    for (row, &label) in labels.iter().enumerate() {
        by_class[label].push(row);
    }
    by_class
}

/// Each row's group as a number `0..n_groups`, numbered in order of first appearance (so
/// the numbering does not depend on hashing), and `n_groups`.
fn group_ids<G: Eq + Hash>(groups: &[G]) -> (Vec<usize>, usize) {
    let mut ids: HashMap<&G, usize> = HashMap::new();
    let group_of = groups
        .iter()
        .map(|g| {
            let next = ids.len();
            *ids.entry(g).or_insert(next)
        })
        .collect();
    (group_of, ids.len())
}

/// Population standard deviation (two passes, as `numpy.std`); 0 for no values.
fn std_dev(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (sum, n) = values
        .clone()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        return 0.0;
    }
    let mean = sum / n as f64;
    (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row in exactly one test fold per repeat; train and test disjoint, together every
    /// row, each sorted; no empty test fold.
    fn assert_partitions(folds: &Folds, n_rows: usize, k: usize) {
        for r in 0..folds.n_repeats() {
            let repeat = folds.repeat(r).unwrap();
            assert_eq!(repeat.len(), k);
            let mut tested = vec![0; n_rows];
            for fold in repeat {
                assert!(!fold.test.is_empty());
                assert!(fold.train.windows(2).all(|w| w[0] < w[1]));
                assert!(fold.test.windows(2).all(|w| w[0] < w[1]));
                let mut all: Vec<usize> = fold.train.iter().chain(&fold.test).copied().collect();
                all.sort_unstable();
                assert_eq!(all, (0..n_rows).collect::<Vec<_>>(), "train ∪ test");
                for &row in &fold.test {
                    tested[row] += 1;
                }
            }
            assert!(tested.iter().all(|&t| t == 1), "repeat {r}: {tested:?}");
        }
    }

    fn labels_3_classes(n: usize) -> Vec<usize> {
        // Class sizes about 60 %, 30 %, 10 %.
        (0..n)
            .map(|i| [0, 0, 0, 1, 0, 1, 0, 1, 0, 2][i % 10])
            .collect()
    }

    #[test]
    fn plain_partitions_with_balanced_sizes() {
        for (n, k) in [(2, 2), (10, 3), (103, 5), (50, 50)] {
            let folds = Folds::plain(n, k, 11).unwrap();
            assert_partitions(&folds, n, k);
            let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn stratified_class_counts_differ_by_at_most_one() {
        let labels = labels_3_classes(203);
        for k in [2, 3, 5, 7] {
            let folds = Folds::stratified(&labels, k, 3).unwrap();
            assert_partitions(&folds, labels.len(), k);
            for class in 0..3 {
                let counts: Vec<usize> = folds
                    .iter()
                    .map(|f| f.test.iter().filter(|&&i| labels[i] == class).count())
                    .collect();
                let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(max - min <= 1, "k {k}, class {class}: {counts:?}");
            }
            let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "k {k}: {sizes:?}");
        }
    }

    #[test]
    fn stratified_skips_absent_labels() {
        // Label 1 never occurs; it is not the "smallest class".
        let labels = [0, 0, 2, 2, 0, 2];
        let folds = Folds::stratified(&labels, 3, 0).unwrap();
        assert_partitions(&folds, 6, 3);
    }

    /// Groups of sizes 1..=12 repeated, in a scrambled order.
    fn groups(n: usize) -> Vec<u32> {
        (0..n).map(|i| ((i * 7919) % 97 % 23) as u32).collect()
    }

    fn assert_groups_whole<G: Eq + std::fmt::Debug>(folds: &Folds, groups: &[G]) {
        for fold in folds {
            for &i in &fold.test {
                for &j in &fold.train {
                    assert_ne!(groups[i], groups[j], "group split: rows {i} and {j}");
                }
            }
        }
    }

    #[test]
    fn grouped_never_splits_a_group() {
        let groups = groups(300);
        for k in [2, 5, 23] {
            let folds = Folds::grouped(&groups, k, 4).unwrap();
            assert_partitions(&folds, groups.len(), k);
            assert_groups_whole(&folds, &groups);
        }
    }

    #[test]
    fn grouped_assigns_largest_first_to_the_emptiest_fold() {
        // Sizes: a 4, b 3, c 2, d 1 → a→0, b→1, c→1 (3 < 4), d→0 (4 < 5): folds of 5 and 5.
        let groups = ["a", "b", "a", "c", "b", "a", "d", "c", "b", "a"];
        let folds = Folds::grouped(&groups, 2, 9).unwrap();
        let repeat = folds.repeat(0).unwrap();
        assert_eq!(repeat[0].test, [0, 2, 5, 6, 9]);
        assert_eq!(repeat[1].test, [1, 3, 4, 7, 8]);
    }

    #[test]
    fn stratified_grouped_keeps_groups_and_class_proportions() {
        let groups = groups(400);
        let labels = labels_3_classes(400);
        let k = 4;
        let folds = Folds::stratified_grouped(&labels, &groups, k, 2).unwrap();
        assert_partitions(&folds, groups.len(), k);
        assert_groups_whole(&folds, &groups);
        // Each fold's share of class 0 stays near its share overall (60 %); groups hold
        // mixed classes of 4–23 rows, so a fold of ~100 rows may be off by a few rows.
        for fold in &folds {
            let zeros = fold.test.iter().filter(|&&i| labels[i] == 0).count();
            let share = zeros as f64 / fold.test.len() as f64;
            assert!((share - 0.6).abs() < 0.1, "{share}");
        }
    }

    #[test]
    fn stratified_grouped_balances_class_pure_groups() {
        // Groups of 5 rows of one class each: 8 groups of class 0, 4 of class 1. Each of
        // 4 folds must get 2 groups of class 0 and 1 of class 1; dealing by size alone
        // (`grouped`) ignores the classes and, for some seed, does not.
        let groups: Vec<usize> = (0..60).map(|i| i / 5).collect();
        let labels: Vec<usize> = groups.iter().map(|&g| usize::from(g >= 8)).collect();
        let ones = |folds: &Folds| -> Vec<usize> {
            folds
                .iter()
                .map(|f| f.test.iter().filter(|&&i| labels[i] == 1).count())
                .collect()
        };
        for seed in 0..10 {
            let folds = Folds::stratified_grouped(&labels, &groups, 4, seed).unwrap();
            assert_partitions(&folds, 60, 4);
            assert_groups_whole(&folds, &groups);
            assert_eq!(ones(&folds), [5, 5, 5, 5], "seed {seed}");
        }
        assert!(
            (0..10)
                .any(|seed| { ones(&Folds::grouped(&groups, 4, seed).unwrap()) != [5, 5, 5, 5] })
        );
    }

    #[test]
    fn stratified_grouped_fills_every_fold() {
        // One big group and three single rows: the big group must not leave a fold empty.
        let labels = [0, 1, 0, 1, 0, 1, 0, 1];
        let groups = [0, 0, 0, 0, 0, 1, 2, 3];
        let folds = Folds::stratified_grouped(&labels, &groups, 4, 0).unwrap();
        assert_partitions(&folds, 8, 4);
        assert_groups_whole(&folds, &groups);
    }

    #[test]
    fn same_seed_same_folds_other_seed_other_folds() {
        let labels = labels_3_classes(120);
        let groups = groups(120);
        let builds: [&dyn Fn(u64) -> Result<Folds>; 4] = [
            &|s| Folds::plain(120, 5, s),
            &|s| Folds::stratified(&labels, 5, s),
            &|s| Folds::grouped(&groups, 5, s),
            &|s| Folds::stratified_grouped(&labels, &groups, 5, s),
        ];
        for (b, build) in builds.iter().enumerate() {
            assert_eq!(build(1).unwrap(), build(1).unwrap(), "build {b}");
            assert_ne!(build(1).unwrap(), build(2).unwrap(), "build {b}");
        }
    }

    #[test]
    fn repeats_differ_and_repeat_zero_is_the_single_run() {
        let labels = labels_3_classes(90);
        let folds = Folds::repeated(3, 8, |s| Folds::stratified(&labels, 3, s)).unwrap();
        assert_eq!(folds.n_repeats(), 3);
        assert_eq!(folds.iter().count(), 9);
        assert_partitions(&folds, 90, 3);
        let single = Folds::stratified(&labels, 3, 8).unwrap();
        assert_eq!(folds.repeat(0), single.repeat(0));
        assert_ne!(folds.repeat(0), folds.repeat(1));
        assert_ne!(folds.repeat(1), folds.repeat(2));
        assert_eq!(folds.repeat(3), None);
        let again = Folds::repeated(3, 8, |s| Folds::stratified(&labels, 3, s)).unwrap();
        assert_eq!(folds, again);
    }

    #[test]
    fn test_folds_place_every_row() {
        let folds = Folds::repeated(2, 0, |s| Folds::plain(13, 4, s)).unwrap();
        for r in 0..2 {
            let test_fold = folds.test_folds(r).unwrap();
            assert_eq!(test_fold.len(), 13);
            for (f, fold) in folds.repeat(r).unwrap().iter().enumerate() {
                assert!(fold.test.iter().all(|&row| test_fold[row] == f));
            }
        }
        assert_eq!(folds.test_folds(2), None);
    }

    #[test]
    fn too_few_folds() {
        for k in [0, 1] {
            let e = Folds::plain(10, k, 0).unwrap_err();
            assert!(matches!(e, DataError::CvTooFewFolds { k: found } if found == k));
            assert!(Folds::stratified(&[0, 1, 0, 1], k, 0).is_err());
            assert!(Folds::grouped(&[0, 1, 2], k, 0).is_err());
        }
        assert_eq!(
            Folds::plain(10, 1, 0).unwrap_err().to_string(),
            "--cv 1: cross-validation needs at least 2 folds"
        );
    }

    #[test]
    fn more_folds_than_rows() {
        let e = Folds::plain(4, 5, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--cv 5 is larger than the number of rows, 4; every fold needs a test row"
        );
        assert!(matches!(
            Folds::plain(0, 2, 0),
            Err(DataError::CvMoreFoldsThanRows { k: 2, n_rows: 0 })
        ));
        assert!(matches!(
            Folds::stratified(&[0, 1], 3, 0),
            Err(DataError::CvMoreFoldsThanRows { k: 3, n_rows: 2 })
        ));
        assert!(matches!(
            Folds::grouped(&[0, 1], 3, 0),
            Err(DataError::CvMoreFoldsThanRows { k: 3, n_rows: 2 })
        ));
        assert!(matches!(
            Folds::stratified_grouped(&[0, 1], &[0, 1], 3, 0),
            Err(DataError::CvMoreFoldsThanRows { k: 3, n_rows: 2 })
        ));
    }

    #[test]
    fn more_folds_than_the_smallest_class() {
        // Classes 0: 20 rows, 1: 6, 2: 4, 3: 4 → the first smallest is 2.
        let mut labels = vec![0; 20];
        labels.extend([1; 6]);
        labels.extend([2; 4]);
        labels.extend([3; 4]);
        let e = Folds::stratified(&labels, 10, 0).unwrap_err();
        assert!(matches!(
            e,
            DataError::CvMoreFoldsThanClassRows {
                k: 10,
                class: 2,
                count: 4
            }
        ));
        assert_eq!(
            e.to_string(),
            "--cv 10 is larger than the smallest class, `2` with 4 rows; every fold needs a \
             row of each class (lower --cv to at most 4)"
        );
        assert!(Folds::stratified(&labels, 4, 0).is_ok());
    }

    #[test]
    fn too_few_groups() {
        let e = Folds::grouped(&["a", "a", "a", "a"], 2, 0).unwrap_err();
        assert!(matches!(e, DataError::CvTooFewGroups { k: 2, n_groups: 1 }));
        assert_eq!(
            e.to_string(),
            "--group: 1 group for --cv 2; grouped cross-validation needs at least 2 groups, \
             one per fold"
        );
        let e = Folds::grouped(&[1, 2, 3, 1, 2, 3], 5, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--group: 3 groups for --cv 5; grouped cross-validation needs at least 5 groups, \
             one per fold"
        );
        assert!(matches!(
            Folds::stratified_grouped(&[0, 1, 0, 1], &[7, 7, 8, 8], 3, 0),
            Err(DataError::CvTooFewGroups { k: 3, n_groups: 2 })
        ));
    }

    #[test]
    fn labels_and_groups_of_different_lengths() {
        let e = Folds::stratified_grouped(&[0, 1, 0], &[1, 2], 2, 0).unwrap_err();
        assert!(matches!(
            e,
            DataError::CvGroupsLength {
                n_labels: 3,
                n_groups: 2
            }
        ));
        assert_eq!(
            e.to_string(),
            "--group: 2 group values for 3 labels; expected one of each per row"
        );
    }

    #[test]
    fn no_repeats() {
        let e = Folds::repeated(0, 0, |s| Folds::plain(10, 2, s)).unwrap_err();
        assert!(matches!(e, DataError::CvNoRepeats));
        assert!(e.to_string().starts_with("--repeats 0"));
        // A failing build's error comes through.
        assert!(matches!(
            Folds::repeated(2, 0, |s| Folds::plain(10, 1, s)),
            Err(DataError::CvTooFewFolds { k: 1 })
        ));
    }
}
