//! Host-side inputs, baselines, targets and attributions.

use serde::{Deserialize, Serialize};

use crate::{ExplainError, Result};

/// Host-side inputs, row-major `[n, d]`: `n` examples of `d` features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// The values, row-major `[n, d]`.
    pub values: Vec<f32>,
    /// Number of examples (rows).
    pub n: usize,
    /// Number of features (columns).
    pub d: usize,
}

impl Inputs {
    /// Wraps row-major `values` of `d` features per row.
    ///
    /// Fails when `d` is zero, when there are no values, or when the length is not a multiple
    /// of `d`.
    ///
    /// ```
    /// use sora_explain::Inputs;
    ///
    /// # fn main() -> Result<(), sora_explain::ExplainError> {
    /// let x = Inputs::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)?;
    /// assert_eq!((x.n, x.d), (2, 3));
    /// assert_eq!(x.row(1), &[4.0, 5.0, 6.0]);
    /// assert!(Inputs::new(vec![1.0; 5], 3).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(values: Vec<f32>, d: usize) -> Result<Self> {
        if d == 0 || values.is_empty() {
            return Err(ExplainError::EmptyInputs {
                n: values.len().checked_div(d).unwrap_or(0),
                d,
            });
        }
        if !values.len().is_multiple_of(d) {
            return Err(ExplainError::Length {
                what: format!("inputs of {d} features per row"),
                expected: (values.len() / d + 1) * d,
                found: values.len(),
            });
        }
        let n = values.len() / d;
        Ok(Self { values, n, d })
    }

    /// Row `i` (`d` values). Panics when `i ≥ n`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.d..(i + 1) * self.d]
    }

    /// Checks that the public fields agree with each other.
    pub(crate) fn check(&self) -> Result<()> {
        if self.n == 0 || self.d == 0 {
            return Err(ExplainError::EmptyInputs {
                n: self.n,
                d: self.d,
            });
        }
        if self.values.len() != self.n * self.d {
            return Err(ExplainError::Length {
                what: format!("inputs [{}, {}]", self.n, self.d),
                expected: self.n * self.d,
                found: self.values.len(),
            });
        }
        Ok(())
    }
}

/// The reference point `x′` that path and perturbation methods compare an input with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Baseline {
    /// All zeros.
    Zeros,
    /// One value per feature (`d` values), the same for every row.
    PerFeature(Vec<f32>),
    /// One baseline per example, row-major `[n, d]`.
    PerExample(Vec<f32>),
}

impl Baseline {
    /// The baseline expanded to `[n, d]`, row-major.
    pub fn resolve(&self, n: usize, d: usize) -> Result<Vec<f32>> {
        match self {
            Baseline::Zeros => Ok(vec![0.0; n * d]),
            Baseline::PerFeature(v) => {
                if v.len() != d {
                    return Err(ExplainError::Length {
                        what: format!("per-feature baseline [{d}]"),
                        expected: d,
                        found: v.len(),
                    });
                }
                Ok(v.repeat(n))
            }
            Baseline::PerExample(v) => {
                if v.len() != n * d {
                    return Err(ExplainError::Length {
                        what: format!("per-example baseline [{n}, {d}]"),
                        expected: n * d,
                        found: v.len(),
                    });
                }
                Ok(v.clone())
            }
        }
    }
}

/// Which output each example's attribution explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The same output (class) for every example.
    Class(usize),
    /// One output per example.
    PerExample(Vec<usize>),
}

impl Target {
    /// One target per example (`n` of them); the range is checked against the model later.
    pub fn resolve(&self, n: usize) -> Result<Vec<usize>> {
        match self {
            Target::Class(c) => Ok(vec![*c; n]),
            Target::PerExample(v) => {
                if v.len() != n {
                    return Err(ExplainError::TargetCount {
                        expected: n,
                        found: v.len(),
                    });
                }
                Ok(v.clone())
            }
        }
    }
}

/// Checks every target against the model's number of outputs.
pub(crate) fn check_targets(targets: &[usize], n_outputs: usize) -> Result<()> {
    match targets.iter().enumerate().find(|(_, t)| **t >= n_outputs) {
        Some((example, &target)) => Err(ExplainError::TargetOutOfRange {
            example,
            target,
            n_outputs,
        }),
        None => Ok(()),
    }
}

/// Attributions shaped like the inputs: one score per example and feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributions {
    /// The scores, row-major `[n, d]`.
    pub values: Vec<f32>,
    /// Number of examples.
    pub n: usize,
    /// Number of features.
    pub d: usize,
    /// The output each example's row explains.
    pub targets: Vec<usize>,
    /// Completeness delta per example for path methods (integrated gradients):
    /// `Σ_i attr_i − (F(x)_t − F(x′)_t)`; `None` for other methods.
    pub delta: Option<Vec<f32>>,
}

impl Attributions {
    /// Row `i` (`d` scores). Panics when `i ≥ n`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.d..(i + 1) * self.d]
    }

    /// The largest `|delta|` over the examples, when the method reports deltas.
    pub fn max_abs_delta(&self) -> Option<f32> {
        self.delta
            .as_ref()
            .map(|d| d.iter().fold(0.0f32, |m, v| m.max(v.abs())))
    }
}
