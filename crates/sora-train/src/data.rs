//! What the training loop consumes: samples addressed by index, batched on demand.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::TrainError;

/// The targets of a data set.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per sample, each `< n_classes`.
    Classes {
        /// Class of each sample.
        labels: Vec<usize>,
        /// Number of classes.
        n_classes: usize,
    },
    /// `d` real values per sample, row-major.
    Values {
        /// The values, `len() == n_samples * d`.
        values: Vec<f32>,
        /// Values per sample.
        d: usize,
    },
}

impl Targets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, d } => values.len() / d.max(&1),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class counts (classification only).
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        match self {
            Targets::Classes { labels, n_classes } => {
                let mut counts = vec![0; *n_classes];
                for &l in labels {
                    counts[l] += 1;
                }
                Some(counts)
            }
            Targets::Values { .. } => None,
        }
    }
}

/// A batch's targets on the device.
#[derive(Debug, Clone)]
pub enum TargetBatch {
    /// Class indices `[batch]`.
    Classes(Tensor<1, Int>),
    /// Values `[batch, d]`.
    Values(Tensor<2>),
}

impl Targets {
    /// The targets of the samples at `indices`, on `device`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> TargetBatch {
        match self {
            Targets::Classes { labels, .. } => {
                let ids: Vec<i64> = indices.iter().map(|&i| labels[i] as i64).collect();
                TargetBatch::Classes(Tensor::from_data(
                    TensorData::new(ids, [indices.len()]),
                    device,
                ))
            }
            Targets::Values { values, d } => {
                let mut out = Vec::with_capacity(indices.len() * d);
                for &i in indices {
                    out.extend_from_slice(&values[i * d..(i + 1) * d]);
                }
                TargetBatch::Values(Tensor::from_data(
                    TensorData::new(out, [indices.len(), *d]),
                    device,
                ))
            }
        }
    }
}

/// A data set the training loop can batch: inputs for any encoder, and targets.
pub trait TrainData {
    /// A batch of inputs, as the model's encoder takes it.
    type Input: Clone + Send;

    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs of the samples at `indices`, on `device`.
    fn inputs(&self, indices: &[usize], device: &Device) -> Self::Input;

    /// The inputs of a training batch: [`inputs`](Self::inputs) with the data set's
    /// augmentation applied, drawn from `seed` alone (the trainer derives it from its seed,
    /// the epoch and the batch, so runs repeat). Without augmentation, the plain inputs.
    fn train_inputs(&self, indices: &[usize], seed: u64, device: &Device) -> Self::Input {
        let _ = seed;
        self.inputs(indices, device)
    }

    /// All targets.
    fn targets(&self) -> &Targets;
}

/// In-memory tabular data: `n` rows of `d` float features, and targets.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularData {
    features: Vec<f32>,
    d: usize,
    targets: Targets,
}

impl TabularData {
    /// Row-major `features` (`n * d` values) with `targets` for each of the `n` rows.
    ///
    /// Fails when the sizes disagree, a feature is not finite, or a class is out of range.
    pub fn new(features: Vec<f32>, d: usize, targets: Targets) -> Result<Self, TrainError> {
        if d == 0 {
            return Err(TrainError::Layout {
                what: "features per row".into(),
                found: 0,
            });
        }
        if !features.len().is_multiple_of(d) {
            return Err(TrainError::Layout {
                what: format!("feature values do not split into rows of {d}"),
                found: features.len(),
            });
        }
        let n = features.len() / d;
        if targets.len() != n {
            return Err(TrainError::Layout {
                what: format!("targets for {n} rows of features"),
                found: targets.len(),
            });
        }
        if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFiniteFeature {
                row: pos / d,
                feature: pos % d,
                value: features[pos],
            });
        }
        match &targets {
            Targets::Classes { labels, n_classes } => {
                if let Some(row) = labels.iter().position(|&l| l >= *n_classes) {
                    return Err(TrainError::ClassOutOfRange {
                        what: "row",
                        row,
                        class: labels[row],
                        n_classes: *n_classes,
                    });
                }
            }
            Targets::Values { values, d } => {
                if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
                    return Err(TrainError::NonFiniteTarget {
                        row: pos / d,
                        value: values[pos],
                    });
                }
            }
        }
        Ok(Self {
            features,
            d,
            targets,
        })
    }

    /// Features per row.
    pub fn d_features(&self) -> usize {
        self.d
    }

    /// Row-major features.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The rows at `indices`, as a new data set.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut features = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let targets = match &self.targets {
            Targets::Classes { labels, n_classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                n_classes: *n_classes,
            },
            Targets::Values { values, d } => Targets::Values {
                values: indices
                    .iter()
                    .flat_map(|&i| values[i * d..(i + 1) * d].iter().copied())
                    .collect(),
                d: *d,
            },
        };
        Self {
            features,
            d: self.d,
            targets,
        }
    }

    /// The features of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.d..(i + 1) * self.d]
    }
}

impl TrainData for TabularData {
    type Input = Tensor<2>;

    fn len(&self) -> usize {
        self.targets.len()
    }

    /// # Shapes
    /// - output: `[indices.len(), d_features]`
    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let mut out = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            out.extend_from_slice(self.row(i));
        }
        Tensor::from_data(TensorData::new(out, [indices.len(), self.d]), device)
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }
}

/// Changes one training sample in place, drawing from the random generator it is given
/// (random crops, flips, masks, …).
pub type Augmentation = Arc<dyn Fn(&mut [f32], &mut ChaCha8Rng) + Send + Sync>;

/// In-memory dense samples of any shape — images `[channels, height, width]`, spectrograms,
/// frames of audio features `[channels, length]` — with targets, and an optional seeded
/// augmentation applied to training batches only.
///
/// `D` is the rank of a batch: 1 + the rank of one sample (`4` for images).
///
/// ```
/// use burn::prelude::*;
/// use sora_train::{ArrayData, Targets, TrainData};
///
/// # fn main() -> Result<(), sora_train::TrainError> {
/// // Two 1×2×2 images.
/// let data = ArrayData::<4>::new(
///     vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
///     &[1, 2, 2],
///     Targets::Classes { labels: vec![0, 1], n_classes: 2 },
/// )?;
/// let batch = data.inputs(&[1], &Device::flex());
/// assert_eq!(batch.dims(), [1, 1, 2, 2]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ArrayData<const D: usize> {
    values: Vec<f32>,
    shape: Vec<usize>,
    targets: Targets,
    augmentation: Option<Augmentation>,
}

impl<const D: usize> std::fmt::Debug for ArrayData<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayData")
            .field("samples", &self.len())
            .field("shape", &self.shape)
            .field("augmentation", &self.augmentation.is_some())
            .finish()
    }
}

impl<const D: usize> ArrayData<D> {
    /// Row-major samples of `shape` (`D - 1` sizes) with their targets.
    ///
    /// Fails when `shape` does not have `D - 1` positive sizes, the sizes disagree, a value
    /// is not finite, or a class is out of range.
    pub fn new(values: Vec<f32>, shape: &[usize], targets: Targets) -> Result<Self, TrainError> {
        if shape.len() + 1 != D || shape.contains(&0) {
            return Err(TrainError::Layout {
                what: format!(
                    "sizes in the sample shape {shape:?}: expected {} positive ones for batches of rank {D}",
                    D.saturating_sub(1)
                ),
                found: shape.len(),
            });
        }
        let d: usize = shape.iter().product();
        // The checks of a table with one row per sample apply as they are.
        let table = TabularData::new(values, d, targets)?;
        Ok(Self {
            values: table.features,
            shape: shape.to_vec(),
            targets: table.targets,
            augmentation: None,
        })
    }

    /// Applies `augmentation` to every sample of every training batch
    /// ([`TrainData::train_inputs`]); evaluation and prediction see the samples unchanged.
    pub fn with_augmentation(mut self, augmentation: Augmentation) -> Self {
        self.augmentation = Some(augmentation);
        self
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Row-major values of all samples.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.sample_len();
        &self.values[i * d..(i + 1) * d]
    }

    /// The samples at `indices`, as a new data set (with the same augmentation).
    pub fn subset(&self, indices: &[usize]) -> Self {
        let d = self.sample_len();
        let table = TabularData {
            features: self.values.clone(),
            d,
            targets: self.targets.clone(),
        }
        .subset(indices);
        Self {
            values: table.features,
            shape: self.shape.clone(),
            targets: table.targets,
            augmentation: self.augmentation.clone(),
        }
    }

    fn batch(&self, values: Vec<f32>, rows: usize, device: &Device) -> Tensor<D> {
        let mut dims = vec![rows];
        dims.extend_from_slice(&self.shape);
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * self.sample_len());
        for &i in indices {
            out.extend_from_slice(self.sample(i));
        }
        out
    }
}

impl<const D: usize> TrainData for ArrayData<D> {
    type Input = Tensor<D>;

    fn len(&self) -> usize {
        self.targets.len()
    }

    /// # Shapes
    /// - output: `[indices.len(), …sample_shape]`
    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<D> {
        self.batch(self.gather(indices), indices.len(), device)
    }

    fn train_inputs(&self, indices: &[usize], seed: u64, device: &Device) -> Tensor<D> {
        let mut values = self.gather(indices);
        if let Some(augment) = &self.augmentation {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for sample in values.chunks_mut(self.sample_len()) {
                augment(sample, &mut rng);
            }
        }
        self.batch(values, indices.len(), device)
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_is_seeded_and_applies_to_training_batches_only() {
        let device = sora_device::test_device();
        let values: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let targets = Targets::Classes {
            labels: vec![0, 1, 0, 1, 0, 1],
            n_classes: 2,
        };
        // Adds a random offset to every value of a sample.
        let shift: Augmentation = Arc::new(|x: &mut [f32], rng: &mut ChaCha8Rng| {
            let offset = rand::Rng::random_range(rng, 0.0..1.0f32);
            x.iter_mut().for_each(|v| *v += offset);
        });
        let data = ArrayData::<3>::new(values.clone(), &[2, 2], targets.clone())
            .unwrap()
            .with_augmentation(shift);
        let read = |t: Tensor<3>| t.try_into_vec_as::<f32>().unwrap();
        let batch = [4, 1, 5];
        let plain = read(data.inputs(&batch, &device));
        assert_eq!(plain[..4], values[16..20]);
        let a = read(data.train_inputs(&batch, 7, &device));
        let b = read(data.train_inputs(&batch, 7, &device));
        let c = read(data.train_inputs(&batch, 8, &device));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, plain);
        // Each sample moves by one offset: its values keep their differences.
        assert_eq!(a[1] - a[0], plain[1] - plain[0]);
        // Without augmentation, training batches are the plain inputs.
        let bare = ArrayData::<3>::new(values, &[2, 2], targets).unwrap();
        assert_eq!(read(bare.train_inputs(&batch, 7, &device)), plain);
        assert!(ArrayData::<3>::new(vec![0.0; 8], &[8], bare.targets().clone()).is_err());
    }
}

/// Token sequences, padded to one length, with targets: the data of text models.
///
/// ```
/// use burn::prelude::*;
/// use sora_train::{TokenData, Targets, TrainData};
///
/// # fn main() -> Result<(), sora_train::TrainError> {
/// // Two documents of length 3; the second has one padding position (id 0).
/// let data = TokenData::new(
///     vec![4, 5, 6, 7, 8, 0],
///     vec![true, true, true, true, true, false],
///     3,
///     Targets::Classes { labels: vec![1, 0], n_classes: 2 },
/// )?;
/// let batch = data.inputs(&[1], &Device::flex());
/// assert_eq!(batch.ids.dims(), [1, 3]);
/// assert_eq!(batch.mask.into_data().to_vec::<f32>().unwrap(), [1.0, 1.0, 0.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TokenData {
    ids: Vec<usize>,
    mask: Vec<bool>,
    len: usize,
    targets: Targets,
}

impl TokenData {
    /// Row-major ids and mask (`n × len` each) with one target per document.
    ///
    /// Fails when the sizes disagree, `len` is 0, or a class is out of range.
    pub fn new(
        ids: Vec<usize>,
        mask: Vec<bool>,
        len: usize,
        targets: Targets,
    ) -> Result<Self, TrainError> {
        if len == 0 || ids.len() != mask.len() || !ids.len().is_multiple_of(len) {
            return Err(TrainError::Layout {
                what: format!(
                    "token ids (with {} mask values) do not split into documents of length {len}",
                    mask.len()
                ),
                found: ids.len(),
            });
        }
        let n = ids.len() / len;
        if targets.len() != n {
            return Err(TrainError::Layout {
                what: format!("targets for {n} documents"),
                found: targets.len(),
            });
        }
        if let Targets::Classes { labels, n_classes } = &targets
            && let Some(row) = labels.iter().position(|&l| l >= *n_classes)
        {
            return Err(TrainError::ClassOutOfRange {
                what: "document",
                row,
                class: labels[row],
                n_classes: *n_classes,
            });
        }
        Ok(Self {
            ids,
            mask,
            len,
            targets,
        })
    }

    /// Tokens per document (after padding).
    pub fn seq_len(&self) -> usize {
        self.len
    }
}

impl TrainData for TokenData {
    type Input = sora_core::Tokens;

    fn len(&self) -> usize {
        self.targets.len()
    }

    /// # Shapes
    /// - output: ids and mask `[indices.len(), seq_len]`
    fn inputs(&self, indices: &[usize], device: &Device) -> sora_core::Tokens {
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for &i in indices {
            let row = i * self.len..(i + 1) * self.len;
            ids.extend(self.ids[row.clone()].iter().map(|&t| t as i64));
            mask.extend(self.mask[row].iter().map(|&m| f32::from(u8::from(m))));
        }
        let shape = [indices.len(), self.len];
        sora_core::Tokens {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
        }
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }
}
