//! The reference every tabular model is measured against.

use burn::tensor::Device;
use sora_core::{HeadSpec, IdentitySpec, ModelSpec, Task};
use sora_train::{Metrics, TrainConfig, TrainData, Trainer};

use super::{Prepared, TabularError};
use crate::Result;

/// L2-regularised logistic regression (scikit-learn's `LogisticRegression(C=1)` objective:
/// mean cross-entropy plus `‖w‖² / (2·C·n)`) on the same split and the same fitted pipeline.
/// It is a Sora model with no hidden layer, trained full-batch with Adam (lr 0.05, 500
/// epochs) — enough for the convex objective to converge on these data sets (the bias is
/// penalised too, unlike scikit-learn's intercept). Returns the test metrics.
pub fn logistic_regression(prepared: &Prepared, seed: u64, device: &Device) -> Result<Metrics> {
    let n_classes = prepared.n_classes().ok_or(TabularError::NeedsClasses {
        what: "logistic regression",
    })?;
    let spec = ModelSpec::new(
        IdentitySpec::new(prepared.train.d_features()),
        HeadSpec::new(&[]),
        Task::Classification {
            n_classes: n_classes as i64,
        },
    )
    .check()?;
    let n = prepared.train.len();
    let config = TrainConfig::new(500, n, 0.05)
        .with_seed(seed)
        .with_optimizer(sora_train::OptimizerConfig::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1.0 / n as f64,
        })
        .with_progress(sora_train::Progress::Quiet);
    let trainer = Trainer::new(config, device);
    let fitted = trainer.fit(trainer.init(&spec), &prepared.train, None)?;
    Ok(trainer.evaluate(&fitted.model, &prepared.test)?)
}
