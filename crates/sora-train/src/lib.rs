//! # sora-train
//!
//! The training loop of Sora models: mini-batch SGD (momentum, Nesterov, weight decay), Adam
//! and AdamW with burn-optim's update rules, applied in place ([`optim`]); constant, step and cosine learning-rate schedules;
//! cross-entropy (class weights, label smoothing) and MSE losses; exact whole-set metrics
//! (accuracy, precision/recall/F1, AUROC, PR-AUC, confusion matrix; MAE/RMSE/R²); early
//! stopping that restores the best weights; atomic best/last checkpoints and `resume`; a
//! live progress bar or one line per epoch; the metrics history as JSON and a learning-curve
//! PNG; and the [`ModelDir`] a trained model is saved to, with its [`Manifest`].
//!
//! On held-out rows: probability calibration and reliability diagrams ([`calibration`]),
//! decision thresholds of binary classifiers ([`threshold`]) and split-conformal prediction
//! sets and intervals ([`conformal`]).
//!
//! The same seed on the same backend gives bit-identical weights.

pub mod bootstrap;
pub mod calibration;
pub mod checkpoint;
mod config;
pub mod conformal;
mod data;
mod error;
mod history;
mod manifest;
mod metrics;
mod model_dir;
pub mod optim;
pub mod parallel;
pub mod threshold;
mod trainer;

pub use bootstrap::{
    BootstrapConfig, BootstrapError, ClassificationIntervals, ConfidenceInterval,
    RegressionIntervals, bootstrap_ci, classification_intervals, regression_intervals,
};
pub use calibration::{
    CalibrationError, CalibrationMethod, Calibrator, Platt, Reliability, ReliabilityBin,
    ReliabilityKind, Temperature, reliability_png,
};
pub use checkpoint::CheckpointEvery;
pub use config::{EarlyStopping, LossConfig, OptimizerConfig, Progress, Schedule, TrainConfig};
pub use conformal::{
    ConformalClassifier, ConformalError, ConformalRegressor, ConformalScore, Interval,
};
pub use data::{ArrayData, Augmentation, TabularData, TargetBatch, Targets, TokenData, TrainData};
pub use error::{Result, TrainError};
pub use history::{EpochRecord, EpochTiming, History, register_font};
pub use manifest::{
    FORMAT, FORMAT_VERSION, InputField, InputSummary, MANIFEST_FILE, Manifest, ManifestError,
    SORA_VERSION,
};
pub use metrics::{
    ClassScores, ClassificationMetrics, Metrics, RegressionMetrics, argmax, auroc,
    average_precision,
};
pub use model_dir::{LoadedModel, ModelDir, files};
pub use parallel::Collective;
pub use threshold::{CurvePoint, Objective, Threshold, ThresholdError, TradeOff};
pub use trainer::{Fitted, Parallel, Trainer, evaluate, materialize, predict, seeded};
