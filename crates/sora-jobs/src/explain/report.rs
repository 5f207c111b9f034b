//! The explanation report of tables: a terminal summary and a self-contained HTML page (no
//! external assets; charts are PNGs embedded as data URIs; all text escaped).

use std::fmt::Write as _;
use std::path::PathBuf;

use plotters::prelude::*;

use super::html::escape;

/// Why a report could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A chart could not be drawn.
    #[error("chart `{title}`: {message}")]
    Chart {
        /// The chart's title.
        title: String,
        /// The drawing backend's message.
        message: String,
    },
    /// A temporary file of a chart could not be written or read.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One input feature of an explained row, as the user knows it (a raw column).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFeature {
    /// Column name.
    pub name: String,
    /// The raw value in the file.
    pub value: String,
    /// Whether the value was missing and imputed.
    pub imputed: bool,
    /// Attribution to the explained output.
    pub attribution: f32,
}

/// One explained row.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Heading, e.g. `row 12: predicted 1 (p = 0.87)`.
    pub title: String,
    /// Features with their attributions, in column order.
    pub features: Vec<ReportFeature>,
    /// Completeness delta of a path method for this row.
    pub delta: Option<f32>,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Page title.
    pub title: String,
    /// What produced the attributions (method and its settings).
    pub method: String,
    /// The baseline, in words.
    pub baseline: String,
    /// The explained output, in words.
    pub target: String,
    /// Explained rows.
    pub rows: Vec<ReportRow>,
    /// Global importance: mean |attribution| per column over the explained rows.
    pub mean_abs: Vec<(String, f64)>,
    /// Global importance: permutation importance per column.
    pub permutation: Option<PermutationImportance>,
    /// Result of the model-randomisation check, when it ran.
    pub sanity: Option<String>,
}

/// Dataset-level permutation importance: how much a score drops when one column is shuffled.
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationImportance {
    /// The score (e.g. `accuracy`).
    pub score: String,
    /// Per column: name, mean drop, standard deviation of the drop over the repeats.
    pub columns: Vec<(String, f64, f64)>,
}

/// `bars` sorted by value, largest first (ties keep their order): a global importance chart
/// reads from the most important column down.
fn by_importance(bars: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut sorted = bars.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    sorted
}

/// A horizontal bar chart as PNG bytes: positive values right (red: pushes the output up),
/// negative left (blue).
pub fn bar_chart_png(title: &str, bars: &[(String, f64)]) -> Result<Vec<u8>, ReportError> {
    sora_train::register_font();
    let (w, h) = (720u32, (60 + 26 * bars.len().max(1)) as u32);
    let dir = tempfile_dir()?;
    let path = dir.join("chart.png");
    let chart_error = |e: &dyn std::fmt::Display| ReportError::Chart {
        title: title.to_string(),
        message: e.to_string(),
    };
    {
        let root = BitMapBackend::new(&path, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(&e))?;
        let max = bars
            .iter()
            .map(|b| b.1.abs())
            .fold(0.0f64, f64::max)
            .max(1e-12)
            * 1.1;
        let lo = if bars.iter().any(|b| b.1 < 0.0) {
            -max
        } else {
            0.0
        };
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(170)
            .build_cartesian_2d(lo..max, (0..n).into_segmented())
            .map_err(|e| chart_error(&e))?;
        // Row 0 at the top: segment `n - 1 - i` holds bar `i`.
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(y) if *y < n => {
                bars.get(n - 1 - y).map(|b| b.0.clone()).unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .draw()
            .map_err(|e| chart_error(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let y = n - 1 - i;
                let color = if *v >= 0.0 {
                    RGBColor(200, 60, 50)
                } else {
                    RGBColor(50, 100, 200)
                };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (*v, SegmentValue::Exact(y + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(|e| chart_error(&e))?;
        root.present().map_err(|e| chart_error(&e))?;
    }
    let bytes = std::fs::read(&path).map_err(|source| ReportError::Io {
        file: path.clone(),
        source,
    });
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn tempfile_dir() -> Result<PathBuf, ReportError> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sora-chart-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io {
        file: dir.clone(),
        source,
    })?;
    Ok(dir)
}

impl Report {
    /// The top `k` features of each row by |attribution|, for a terminal.
    pub fn terminal_summary(&self, k: usize) -> String {
        let mut out = format!(
            "{} — {}; baseline {}; {}\n",
            self.title, self.method, self.baseline, self.target
        );
        for row in &self.rows {
            let _ = write!(out, "\n{}", row.title);
            if let Some(d) = row.delta {
                let _ = write!(out, "  (completeness delta {d:.2e})");
            }
            out.push('\n');
            let mut order: Vec<&ReportFeature> = row.features.iter().collect();
            order.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
            for f in order.into_iter().take(k) {
                let _ = writeln!(
                    out,
                    "  {:>+10.4}  {} = {}{}",
                    f.attribution,
                    f.name,
                    f.value,
                    if f.imputed { " (missing, imputed)" } else { "" }
                );
            }
        }
        if let Some(s) = &self.sanity {
            let _ = writeln!(out, "\nsanity check: {s}");
        }
        out
    }

    /// The self-contained HTML page.
    pub fn to_html(&self) -> Result<String, ReportError> {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
             <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
             table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
             td.num{{text-align:right;font-family:monospace}}.imputed{{background:#fff3c4}}\
             .row{{border-top:2px solid #888;margin-top:1.5em}}img{{max-width:100%}}</style></head><body>\n",
            escape(&self.title)
        );
        let _ = write!(
            h,
            "<h1>{}</h1>\n<p><b>Method:</b> {}<br><b>Baseline:</b> {}<br><b>Explained output:</b> {}</p>\n\
             <p>Positive attributions (red) push the explained output up; negative ones (blue) push it down. \
             Cells marked <span class=\"imputed\">imputed</span> were missing in the file.</p>\n",
            escape(&self.title),
            escape(&self.method),
            escape(&self.baseline),
            escape(&self.target)
        );
        if let Some(s) = &self.sanity {
            let _ = writeln!(h, "<p><b>Sanity check:</b> {}</p>", escape(s));
        }
        h.push_str("<h2>Global importance</h2>\n");
        let png = bar_chart_png(
            "mean |attribution| over the explained rows",
            &by_importance(&self.mean_abs),
        )?;
        let _ = writeln!(
            h,
            "<img alt=\"mean absolute attribution\" src=\"data:image/png;base64,{}\">",
            crate::base64::encode(&png)
        );
        if let Some(PermutationImportance {
            score,
            columns: perm,
        }) = &self.permutation
        {
            let mut perm = perm.clone();
            // Most important first, in the chart and the table (ties keep column order).
            perm.sort_by(|a, b| b.1.total_cmp(&a.1));
            let bars: Vec<(String, f64)> = perm.iter().map(|(n, m, _)| (n.clone(), *m)).collect();
            let png = bar_chart_png(&format!("permutation importance (drop in {score})"), &bars)?;
            let _ = writeln!(
                h,
                "<img alt=\"permutation importance\" src=\"data:image/png;base64,{}\">",
                crate::base64::encode(&png)
            );
            h.push_str("<table><tr><th>column</th><th>mean drop</th><th>std</th></tr>\n");
            for (n, m, s) in &perm {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{m:.4}</td><td class=\"num\">{s:.4}</td></tr>",
                    escape(n)
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Explained rows</h2>\n");
        for row in &self.rows {
            let _ = writeln!(h, "<div class=\"row\"><h3>{}</h3>", escape(&row.title));
            if let Some(d) = row.delta {
                let _ = writeln!(h, "<p>Completeness delta: {d:.3e}</p>");
            }
            let bars: Vec<(String, f64)> = row
                .features
                .iter()
                .map(|f| (f.name.clone(), f64::from(f.attribution)))
                .collect();
            let png = bar_chart_png(&row.title, &bars)?;
            let _ = writeln!(
                h,
                "<img alt=\"attributions of {}\" src=\"data:image/png;base64,{}\">",
                escape(&row.title),
                crate::base64::encode(&png)
            );
            h.push_str("<table><tr><th>column</th><th>value</th><th>attribution</th></tr>\n");
            for f in &row.features {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td{}>{}</td><td class=\"num\">{:+.5}</td></tr>",
                    escape(&f.name),
                    if f.imputed { " class=\"imputed\"" } else { "" },
                    if f.imputed {
                        format!("{} (imputed)", escape(&f.value))
                    } else {
                        escape(&f.value)
                    },
                    f.attribution
                );
            }
            h.push_str("</table></div>\n");
        }
        h.push_str("</body></html>\n");
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
