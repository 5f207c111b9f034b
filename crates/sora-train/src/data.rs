//! What the training loop consumes: samples addressed by index, batched on demand.

use burn::tensor::{Device, Int, Tensor, TensorData};

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
            return Err(TrainError::Data("zero features per row".into()));
        }
        if !features.len().is_multiple_of(d) {
            return Err(TrainError::Data(format!(
                "{} feature values do not split into rows of {d}",
                features.len()
            )));
        }
        let n = features.len() / d;
        if targets.len() != n {
            return Err(TrainError::Data(format!(
                "{n} rows of features but {} targets",
                targets.len()
            )));
        }
        if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::Data(format!(
                "row {}, feature {}: value {} is not finite",
                pos / d,
                pos % d,
                features[pos]
            )));
        }
        match &targets {
            Targets::Classes { labels, n_classes } => {
                if let Some(row) = labels.iter().position(|&l| l >= *n_classes) {
                    return Err(TrainError::Data(format!(
                        "row {row}: class {} is out of range for {n_classes} classes",
                        labels[row]
                    )));
                }
            }
            Targets::Values { values, d } => {
                if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
                    return Err(TrainError::Data(format!(
                        "row {}: target {} is not finite",
                        pos / d,
                        values[pos]
                    )));
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
