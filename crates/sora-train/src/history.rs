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
    /// The epoch whose weights the run kept (1-based), once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
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
    /// classifier, validation accuracy — into a PNG at `path` (written atomically). The
    /// epochs are whole numbers on the axis, the legend sits in a band above the plots (never
    /// over a curve), and the epoch kept is marked (a dashed line, named in the band with the
    /// early stop, if there was one).
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
        let (w, h) = (900u32, 450u32);
        let plot_err = |e: &dyn std::fmt::Display| TrainError::Plot {
            file: path.to_path_buf(),
            message: e.to_string(),
        };
        let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&e))?;
        let (band, plots) = root.split_vertically(34);
        let has_accuracy = self.epochs.iter().any(|e| e.valid_accuracy.is_some());
        let has_valid = self.epochs.iter().any(|e| e.valid_loss.is_some());
        let best = self.best_epoch.filter(|&b| b >= 1);
        // The legend band: what each line is, then the epoch kept.
        let gray = RGBColor(90, 90, 90);
        let mut entries: Vec<(ShapeStyle, String)> =
            vec![(BLUE.stroke_width(2), "train loss".into())];
        if has_valid {
            entries.push((RED.stroke_width(2), "validation loss".into()));
        }
        if has_accuracy {
            entries.push((GREEN.stroke_width(2), "validation accuracy".into()));
        }
        if let Some(b) = best {
            let kept = if self.stopped_early {
                format!(
                    "epoch kept: {b} (early stop after epoch {})",
                    self.epochs.len()
                )
            } else {
                format!("epoch kept: {b} of {}", self.epochs.len())
            };
            entries.push((gray.stroke_width(1), kept));
        }
        let text = ("sans-serif", 15).into_font().color(&BLACK);
        let mut x = 14i32;
        for (i, (style, label)) in entries.iter().enumerate() {
            let y = 17i32;
            if best.is_some() && i + 1 == entries.len() {
                // A dashed segment, as the marker in the plots.
                for k in 0..3 {
                    band.draw(&PathElement::new(
                        [(x + k * 8, y), (x + k * 8 + 4, y)],
                        *style,
                    ))
                    .map_err(|e| plot_err(&e))?;
                }
            } else {
                band.draw(&PathElement::new([(x, y), (x + 22, y)], *style))
                    .map_err(|e| plot_err(&e))?;
            }
            band.draw(&Text::new(label.clone(), (x + 28, y - 8), text.clone()))
                .map_err(|e| plot_err(&e))?;
            let width = band
                .estimate_text_size(label, &text)
                .map_or(8 * label.len() as u32, |(w, _)| w);
            x += 28 + width as i32 + 22;
        }
        let areas = if has_accuracy {
            plots.split_evenly((1, 2))
        } else {
            vec![plots.clone()]
        };
        let last = self.epochs.len().max(1) as f64;
        let x_range = 1.0..last.max(2.0);
        // Whole epochs on the axis, at most ten labels.
        let n_labels = self.epochs.len().clamp(2, 10);
        let epoch_label = |x: &f64| format!("{}", x.round() as i64);
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
            .build_cartesian_2d(x_range.clone(), 0.0..max_loss)
            .map_err(|e| plot_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .x_labels(n_labels)
            .x_label_formatter(&epoch_label)
            .draw()
            .map_err(|e| plot_err(&e))?;
        let best_line = |top: f64, bottom: f64| {
            best.map(|b| {
                let (b, steps) = (b as f64, 24);
                (0..steps).step_by(2).map(move |k| {
                    let y = |k: usize| bottom + (top - bottom) * k as f64 / steps as f64;
                    PathElement::new([(b, y(k)), (b, y(k + 1))], gray.stroke_width(1))
                })
            })
        };
        if let Some(line) = best_line(max_loss, 0.0) {
            chart.draw_series(line).map_err(|e| plot_err(&e))?;
        }
        let train: Vec<(f64, f64)> = self
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.train_loss))
            .collect();
        chart
            .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
            .map_err(|e| plot_err(&e))?;
        let valid: Vec<(f64, f64)> = self
            .epochs
            .iter()
            .filter_map(|e| e.valid_loss.map(|v| (e.epoch as f64, v)))
            .collect();
        if !valid.is_empty() {
            chart
                .draw_series(LineSeries::new(valid, RED.stroke_width(2)))
                .map_err(|e| plot_err(&e))?;
        }
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
                .build_cartesian_2d(x_range, lo..1.0)
                .map_err(|e| plot_err(&e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("accuracy")
                .x_labels(n_labels)
                .x_label_formatter(&epoch_label)
                .draw()
                .map_err(|e| plot_err(&e))?;
            if let Some(line) = best_line(1.0, lo) {
                chart.draw_series(line).map_err(|e| plot_err(&e))?;
            }
            chart
                .draw_series(LineSeries::new(acc, GREEN.stroke_width(2)))
                .map_err(|e| plot_err(&e))?;
        }
        root.present().map_err(|e| plot_err(&e))?;
        drop(root);
        Ok(())
    }
}
