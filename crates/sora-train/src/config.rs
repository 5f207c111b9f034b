//! The training configuration (serde; saved beside the weights as `train.json`).

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Optimizer and its hyper-parameters (all from burn-optim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent — the method's default.
    Sgd {
        /// Momentum factor (0 disables momentum).
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum (needs a positive momentum).
        #[serde(default)]
        nesterov: bool,
        /// L2 weight decay (0 disables it).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam.
    Adam {
        /// First-moment decay.
        #[serde(default = "beta_1")]
        beta_1: f64,
        /// Second-moment decay.
        #[serde(default = "beta_2")]
        beta_2: f64,
        /// Numerical-stability term (PyTorch's default 1e-8; Burn's own default is 1e-5).
        #[serde(default = "epsilon")]
        epsilon: f64,
        /// L2 weight decay added to the gradient (0 disables it).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// First-moment decay.
        #[serde(default = "beta_1")]
        beta_1: f64,
        /// Second-moment decay.
        #[serde(default = "beta_2")]
        beta_2: f64,
        /// Numerical-stability term.
        #[serde(default = "epsilon")]
        epsilon: f64,
        /// Decoupled weight decay (PyTorch's default 0.01).
        #[serde(default = "adamw_decay")]
        weight_decay: f64,
    },
}

fn beta_1() -> f64 {
    0.9
}
fn beta_2() -> f64 {
    0.999
}
fn epsilon() -> f64 {
    1e-8
}
fn adamw_decay() -> f64 {
    0.01
}

impl OptimizerConfig {
    /// SGD with the given momentum, no weight decay.
    pub fn sgd(momentum: f64) -> Self {
        OptimizerConfig::Sgd {
            momentum,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            beta_1: beta_1(),
            beta_2: beta_2(),
            epsilon: epsilon(),
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults.
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            beta_1: beta_1(),
            beta_2: beta_2(),
            epsilon: epsilon(),
            weight_decay: adamw_decay(),
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::sgd(0.9)
    }
}

/// Learning-rate schedule, a pure function of the position in the run (so a resumed run
/// follows the same schedule without extra state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply the rate by `gamma` every `step_epochs` epochs.
    Step {
        /// Epochs between decays.
        step_epochs: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over all steps of the run.
    Cosine {
        /// Final rate.
        #[serde(default)]
        min_lr: f64,
    },
}

impl Schedule {
    /// The rate for the optimizer step `step` (0-based) of `total_steps`, in `epoch` (0-based).
    pub fn lr(&self, base: f64, epoch: usize, step: usize, total_steps: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { step_epochs, gamma } => {
                base * gamma.powi((epoch / step_epochs.max(1)) as i32)
            }
            Schedule::Cosine { min_lr } => {
                let t = step as f64 / total_steps.max(1) as f64;
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// Loss options. Classification uses cross-entropy; regression uses mean squared error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Per-class weights of the cross-entropy (positive; one per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f32>>,
    /// Label smoothing of the cross-entropy, in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_smoothing: Option<f32>,
}

/// Stop when the validation loss (the training loss when there is no validation set) has not
/// improved by more than `min_delta` for `patience` epochs, and restore the weights of the best
/// epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Smallest decrease of the loss that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// A live bar when stderr is a terminal, one line per epoch otherwise.
    #[default]
    Auto,
    /// Always a live bar.
    Bar,
    /// One line per epoch on stdout.
    Plain,
    /// Nothing.
    Quiet,
}

/// Everything the training loop needs besides the model and the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per optimizer step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// The optimizer.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Loss options.
    #[serde(default)]
    pub loss: LossConfig,
    /// Early stopping on the validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Seed of weight initialisation, shuffling and dropout. Same seed, same backend → same
    /// weights. Dropout draws from the backend's generator, which Burn keeps one per process:
    /// two runs *with dropout* training at the same time in one process interleave their draws.
    #[serde(default)]
    pub seed: u64,
    /// Shuffle the training data every epoch.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Progress display.
    #[serde(default)]
    pub progress: Progress,
}

fn yes() -> bool {
    true
}

impl TrainConfig {
    /// SGD with momentum 0.9, constant rate, shuffled, seed 0.
    pub fn new(epochs: usize, batch_size: usize, lr: f64) -> Self {
        Self {
            epochs,
            batch_size,
            lr,
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::Constant,
            loss: LossConfig::default(),
            early_stopping: None,
            seed: 0,
            shuffle: true,
            progress: Progress::Auto,
        }
    }

    /// Sets the optimizer.
    pub fn with_optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }

    /// Sets the schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the loss options.
    pub fn with_loss(mut self, loss: LossConfig) -> Self {
        self.loss = loss;
        self
    }

    /// Enables early stopping.
    pub fn with_early_stopping(mut self, patience: usize, min_delta: f64) -> Self {
        self.early_stopping = Some(EarlyStopping {
            patience,
            min_delta,
        });
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the progress display.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Checks every field; `n_classes` is the model's class count (`None` for regression).
    pub fn check(&self, n_classes: Option<usize>) -> Result<(), TrainError> {
        let err = |field: &str, expected: &str, found: String| {
            Err(TrainError::Config {
                field: field.into(),
                expected: expected.into(),
                found,
            })
        };
        if self.epochs == 0 {
            return err("epochs", "at least 1", "0".into());
        }
        if self.batch_size == 0 {
            return err("batch_size", "at least 1", "0".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", "a positive finite number", self.lr.to_string());
        }
        match &self.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                if !(0.0..1.0).contains(momentum) {
                    return err(
                        "optimizer.momentum",
                        "a value in [0, 1)",
                        momentum.to_string(),
                    );
                }
                if *nesterov && *momentum == 0.0 {
                    return err(
                        "optimizer.nesterov",
                        "a positive momentum",
                        "momentum 0".into(),
                    );
                }
                if !(*weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return err(
                        "optimizer.weight_decay",
                        "a value ≥ 0",
                        weight_decay.to_string(),
                    );
                }
            }
            OptimizerConfig::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => {
                if !(0.0..1.0).contains(beta_1) {
                    return err("optimizer.beta_1", "a value in [0, 1)", beta_1.to_string());
                }
                if !(0.0..1.0).contains(beta_2) {
                    return err("optimizer.beta_2", "a value in [0, 1)", beta_2.to_string());
                }
                if !(*epsilon > 0.0 && epsilon.is_finite()) {
                    return err(
                        "optimizer.epsilon",
                        "a positive number",
                        epsilon.to_string(),
                    );
                }
                if !(*weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return err(
                        "optimizer.weight_decay",
                        "a value ≥ 0",
                        weight_decay.to_string(),
                    );
                }
            }
        }
        match self.schedule {
            Schedule::Step { step_epochs, gamma } => {
                if step_epochs == 0 {
                    return err("schedule.step_epochs", "at least 1", "0".into());
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return err("schedule.gamma", "a value in (0, 1]", gamma.to_string());
                }
            }
            Schedule::Cosine { min_lr } => {
                if !(min_lr >= 0.0 && min_lr <= self.lr) {
                    return err("schedule.min_lr", "a value in [0, lr]", min_lr.to_string());
                }
            }
            Schedule::Constant => {}
        }
        if let Some(weights) = &self.loss.class_weights {
            match n_classes {
                None => {
                    return err(
                        "loss.class_weights",
                        "no class weights for a regression task",
                        format!("{} weights", weights.len()),
                    );
                }
                Some(n) if weights.len() != n => {
                    return err(
                        "loss.class_weights",
                        &format!("{n} weights (one per class)"),
                        format!("{} weights", weights.len()),
                    );
                }
                _ => {}
            }
            if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
                return err(
                    "loss.class_weights",
                    "positive finite weights",
                    w.to_string(),
                );
            }
        }
        if let Some(a) = self.loss.label_smoothing
            && !(0.0..=1.0).contains(&a)
        {
            return err("loss.label_smoothing", "a value in [0, 1]", a.to_string());
        }
        if let Some(es) = &self.early_stopping {
            if es.patience == 0 {
                return err("early_stopping.patience", "at least 1", "0".into());
            }
            if !(es.min_delta >= 0.0 && es.min_delta.is_finite()) {
                return err(
                    "early_stopping.min_delta",
                    "a value ≥ 0",
                    es.min_delta.to_string(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_goes_from_base_to_min() {
        let s = Schedule::Cosine { min_lr: 0.01 };
        assert!((s.lr(0.1, 0, 0, 100) - 0.1).abs() < 1e-12);
        assert!((s.lr(0.1, 0, 50, 100) - 0.055).abs() < 1e-12);
        assert!((s.lr(0.1, 0, 100, 100) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn step_decays_every_step_epochs() {
        let s = Schedule::Step {
            step_epochs: 2,
            gamma: 0.5,
        };
        assert_eq!(s.lr(1.0, 1, 0, 0), 1.0);
        assert_eq!(s.lr(1.0, 2, 0, 0), 0.5);
        assert_eq!(s.lr(1.0, 5, 0, 0), 0.25);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = TrainConfig::new(3, 8, 0.1);
        c.loss.class_weights = Some(vec![1.0, 2.0]);
        let e = c.check(Some(3)).unwrap_err().to_string();
        assert!(
            e.contains("loss.class_weights") && e.contains("3 weights"),
            "{e}"
        );
        let e = TrainConfig::new(3, 0, 0.1)
            .check(Some(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_size"), "{e}");
        let e = TrainConfig::new(3, 4, -1.0)
            .check(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`lr`"), "{e}");
    }
}
