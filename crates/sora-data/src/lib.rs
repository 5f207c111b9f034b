//! # sora-data
//!
//! The data-in part of "CSV + target column → trained model": read a CSV into a [`Table`],
//! describe it with [`infer_schema`], fit a [`FittedPipeline`] on the training rows from a
//! [`PipelineConfig`] and turn any rows into `f32` model inputs and encoded targets, split rows
//! with [`stratified_split`] / [`random_split`], and weight classes with
//! [`balanced_class_weights`]; read ratings files (`user,item,rating[,timestamp]`) with
//! [`Ratings`].
//!
//! Every statistic of a fitted pipeline comes from its training rows, and the pipeline is
//! saved beside the model (`pipeline.json`) so prediction data goes through the same steps.
//! Errors are [`DataError`]s that name the file, the line and the column.
//!
//! ```
//! use sora_data::{
//!     FittedPipeline, MissingMarkers, PipelineConfig, Table, TargetValues, encode_target,
//!     infer_schema, stratified_split,
//! };
//!
//! # fn main() -> Result<(), sora_data::DataError> {
//! let mut csv = String::from("id,age,smoker,outcome\n");
//! for i in 0..40 {
//!     let smoker = if i % 3 == 0 { "yes" } else { "no" };
//!     let age = if i % 7 == 0 { "NA".to_string() } else { (20 + i).to_string() };
//!     csv.push_str(&format!("{i},{age},{smoker},{}\n", if i % 4 == 0 { "sick" } else { "well" }));
//! }
//! let table = Table::from_reader(csv.as_bytes(), "patients.csv")?;
//! println!("{}", infer_schema(&table, &MissingMarkers::default()));
//!
//! let config = PipelineConfig::new("outcome");
//! let target = encode_target(&table, &config)?;
//! let TargetValues::Classes(labels) = &target.targets else { unreachable!() };
//! let split = stratified_split(labels, 0.2, 0.2, 42).select(&target.rows);
//!
//! let pipeline = FittedPipeline::fit(&table, &split.train, &config)?;
//! assert_eq!(pipeline.feature_names(), ["age", "smoker=no", "smoker=yes"]);
//! assert_eq!(pipeline.warnings(), ["`id`: identifier column; left out"]);
//! let test = pipeline.transform(&table, &split.test)?;
//! assert_eq!(test.features.len(), test.n_rows() * pipeline.d_input());
//! # Ok(())
//! # }
//! ```

mod config;
pub mod drift;
mod error;
pub mod folds;
mod pipeline;
mod ratings;
mod schema;
mod split;
mod table;

pub use config::{Impute, PipelineConfig, TargetRule, TextCells};
pub use drift::{ColumnDrift, Drift, TrainingProfile};
pub use error::{DataError, Result};
pub use folds::{Fold, Folds};
pub use pipeline::{
    EncodedTarget, FeatureEncoding, FittedFeature, FittedPipeline, TargetScale, TargetValues,
    TaskKind, Transformed, encode_target,
};
pub use ratings::{
    ITEM_COLUMNS, RATING_COLUMNS, RatingRange, Ratings, TIME_COLUMNS, USER_COLUMNS, rating_pairs,
};
pub use schema::{
    ColumnKind, ColumnSchema, DEFAULT_MISSING_MARKERS, MAX_CLASSES_AUTO, MissingMarkers,
    NumericSummary, Schema, TEXT_EXAMPLES, TEXT_SHARE_LIMIT, TextAmongNumbers, infer_schema,
};
pub use split::{Split, balanced_class_weights, random_split, stratified_split};
pub use table::Table;
