//! The per-epoch record of a run, saved as JSON and drawn as a learning-curve PNG.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Learning rate at the epoch's first step.
    pub lr: f64,
    /// Mean training loss over the epoch's samples (as optimised: weighted, smoothed).
    pub train_loss: f64,
    /// Validation loss, when there is a validation set.
    pub valid_loss: Option<f64>,
    /// Validation accuracy, for a classifier with a validation set.
    pub valid_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch (training and validation). Not part of
    /// `history.json`, which the same seed writes byte for byte the same:
    /// [`History::save_timings`] writes them apart.
    #[serde(default, skip_serializing)]
    pub seconds: f64,
}

/// The wall-clock seconds of each epoch, as `timings.json` holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochTiming {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// The records of every epoch of a run, in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
}

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled DejaVu Sans as plotters' `"sans-serif"` font (once per process), so
/// charts draw text without system fonts.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; registering it cannot fail for a valid TTF.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

impl History {
    /// Writes each epoch's wall-clock seconds as pretty JSON, atomically: the one file of a
    /// model directory that differs from run to run of the same seed.
    pub fn save_timings(&self, path: &Path) -> Result<(), TrainError> {
        let timings: Vec<EpochTiming> = self
            .epochs
            .iter()
            .map(|e| EpochTiming {
                epoch: e.epoch,
                seconds: e.seconds,
            })
            .collect();
        let text = serde_json::to_vec_pretty(&timings).expect("timings serialise");
        sora_core::weights::write_atomic(path, &text).map_err(TrainError::io(path))
    }

    /// Writes the history as pretty JSON, atomically (without the epochs' wall-clock
    /// seconds: see [`save_timings`](Self::save_timings)).
    pub fn save_json(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_vec_pretty(self).expect("history serialises");
        sora_core::weights::write_atomic(path, &text).map_err(TrainError::io(path))
    }

    /// Reads a history written by [`save_json`](Self::save_json).
    pub fn load_json(path: &Path) -> Result<Self, TrainError> {
        let text = sora_core::weights::read_bounded(path, sora_core::weights::MAX_JSON_BYTES)
            .map_err(TrainError::io(path))?;
        serde_json::from_slice(&text).map_err(|source| TrainError::Json {
            file: path.to_path_buf(),
            source,
        })
    }

    /// Draws the learning curves — loss per epoch (train and validation) and, for a
    /// classifier, validation accuracy — into a PNG at `path` (written atomically).
    pub fn plot_png(&self, path: &Path) -> Result<(), TrainError> {
        let tmp = path.with_extension(format!("{}.tmp.png", std::process::id()));
        let result = self
            .draw(&tmp, path)
            .and_then(|()| std::fs::rename(&tmp, path).map_err(TrainError::io(path)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Draws the curves into `tmp` (errors name `path`, the file the user asked for).
    fn draw(&self, tmp: &Path, path: &Path) -> Result<(), TrainError> {
        register_font();
        let (w, h) = (900u32, 420u32);
        let plot_err = |e: &dyn std::fmt::Display| TrainError::Plot {
            file: path.to_path_buf(),
            message: e.to_string(),
        };
        {
            let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| plot_err(&e))?;
            let has_accuracy = self.epochs.iter().any(|e| e.valid_accuracy.is_some());
            let areas = if has_accuracy {
                root.split_evenly((1, 2))
            } else {
                vec![root.clone()]
            };
            let last = self.epochs.len().max(1) as f64;
            let losses = self
                .epochs
                .iter()
                .flat_map(|e| std::iter::once(e.train_loss).chain(e.valid_loss))
                .filter(|v| v.is_finite());
            let max_loss = losses.fold(0.0f64, f64::max).max(1e-6) * 1.05;
            let mut chart = ChartBuilder::on(&areas[0])
                .caption("Loss", ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..last.max(2.0), 0.0..max_loss)
                .map_err(|e| plot_err(&e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("loss")
                .draw()
                .map_err(|e| plot_err(&e))?;
            let train: Vec<(f64, f64)> = self
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.train_loss))
                .collect();
            chart
                .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
                .map_err(|e| plot_err(&e))?
                .label("train")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
            let valid: Vec<(f64, f64)> = self
                .epochs
                .iter()
                .filter_map(|e| e.valid_loss.map(|v| (e.epoch as f64, v)))
                .collect();
            if !valid.is_empty() {
                chart
                    .draw_series(LineSeries::new(valid, RED.stroke_width(2)))
                    .map_err(|e| plot_err(&e))?
                    .label("validation")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot_err(&e))?;
            if has_accuracy {
                let acc: Vec<(f64, f64)> = self
                    .epochs
                    .iter()
                    .filter_map(|e| e.valid_accuracy.map(|a| (e.epoch as f64, a)))
                    .collect();
                let lo = acc.iter().map(|p| p.1).fold(1.0f64, f64::min);
                let lo = (lo - 0.05).clamp(0.0, 0.95);
                let mut chart = ChartBuilder::on(&areas[1])
                    .caption("Validation accuracy", ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(36)
                    .y_label_area_size(56)
                    .build_cartesian_2d(1.0..last.max(2.0), lo..1.0)
                    .map_err(|e| plot_err(&e))?;
                chart
                    .configure_mesh()
                    .x_desc("epoch")
                    .y_desc("accuracy")
                    .draw()
                    .map_err(|e| plot_err(&e))?;
                chart
                    .draw_series(LineSeries::new(acc, GREEN.stroke_width(2)))
                    .map_err(|e| plot_err(&e))?;
            }
            root.present().map_err(|e| plot_err(&e))?;
        }
        Ok(())
    }
}
