//! The chart of the card's own: precision, recall and F1 against the decision threshold.

use plotters::prelude::*;

use crate::explain::report::ReportError;

/// Precision, recall and F1 of the candidate thresholds, the chosen one marked, as PNG bytes.
pub(super) fn trade_off_png(
    trade_off: &sora_train::TradeOff,
    chosen: f64,
    title: &str,
) -> Result<Vec<u8>, ReportError> {
    sora_train::register_font();
    static DRAWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = DRAWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("sora-card-{}-{n}.png", std::process::id()));
    let chart_error = |e: &dyn std::fmt::Display| ReportError::Chart {
        title: title.to_string(),
        message: e.to_string(),
    };
    let drawn = (|| {
        let root = BitMapBackend::new(&path, (900, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(&e))?;
        let (plot, legend) = root.split_horizontally(680);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.02f64)
            .map_err(|e| chart_error(&e))?;
        chart
            .configure_mesh()
            .x_desc("threshold on the calibrated probability of class 1")
            .y_desc("precision, recall, F1")
            .draw()
            .map_err(|e| chart_error(&e))?;
        type Measure = fn(&sora_train::CurvePoint) -> f64;
        let lines: [(&str, RGBColor, Measure); 3] = [
            ("precision", RGBColor(40, 90, 200), |p| p.precision),
            ("recall", RGBColor(200, 60, 50), |p| p.recall),
            ("F1", RGBColor(40, 150, 60), |p| p.f1),
        ];
        for (_, color, measure) in &lines {
            let points: Vec<(f64, f64)> = trade_off
                .curve
                .iter()
                .filter(|p| p.threshold.is_finite())
                .map(|p| (p.threshold.clamp(0.0, 1.0), measure(p)))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| chart_error(&e))?;
        }
        let gray = RGBColor(60, 60, 60);
        chart
            .draw_series(DashedLineSeries::new(
                [(chosen, 0.0), (chosen, 1.02)],
                6,
                4,
                gray.stroke_width(1),
            ))
            .map_err(|e| chart_error(&e))?;
        let font = ("sans-serif", 15).into_font().color(&BLACK);
        for (i, (name, color, _)) in lines.iter().enumerate() {
            let y = 60 + 28 * i as i32;
            legend
                .draw(&PathElement::new([(10, y), (36, y)], color.stroke_width(2)))
                .map_err(|e| chart_error(&e))?;
            legend
                .draw(&Text::new(name.to_string(), (44, y - 8), font.clone()))
                .map_err(|e| chart_error(&e))?;
        }
        let y = 60 + 28 * lines.len() as i32;
        for k in 0..3 {
            legend
                .draw(&PathElement::new(
                    [(10 + k * 9, y), (15 + k * 9, y)],
                    gray.stroke_width(1),
                ))
                .map_err(|e| chart_error(&e))?;
        }
        legend
            .draw(&Text::new(
                format!("chosen: {chosen:.4}"),
                (44, y - 8),
                font.clone(),
            ))
            .map_err(|e| chart_error(&e))?;
        root.present().map_err(|e| chart_error(&e))
    })();
    let bytes = drawn.and_then(|()| {
        std::fs::read(&path).map_err(|source| ReportError::Io {
            file: path.clone(),
            source,
        })
    });
    let _ = std::fs::remove_file(&path);
    bytes
}
