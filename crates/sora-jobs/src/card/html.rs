//! The HTML pieces of the card: tables of escaped cells, embedded PNGs, paragraphs, and JSON
//! shown as `path: value` rows.

use std::fmt::Write as _;

use crate::explain::html::escape;

/// A table cell: text (escaped) or a number (right-aligned).
pub(super) enum Cell {
    Text(String),
    Num(String),
}

pub(super) fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

pub(super) fn num(v: f64) -> Cell {
    Cell::Num(format!("{v:.4}"))
}

pub(super) fn count(v: usize) -> Cell {
    Cell::Num(v.to_string())
}

/// An HTML table (every cell escaped), with a header row unless `head` is empty.
pub(super) fn table(h: &mut String, attrs: &str, head: &[&str], rows: &[Vec<Cell>]) {
    let _ = writeln!(h, "<table{attrs}>");
    if !head.is_empty() {
        h.push_str("<tr>");
        for th in head {
            let _ = write!(h, "<th>{}</th>", escape(th));
        }
        h.push_str("</tr>\n");
    }
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(t) => {
                    let _ = write!(h, "<td>{}</td>", escape(t));
                }
                Cell::Num(t) => {
                    let _ = write!(h, "<td class=\"num\">{}</td>", escape(t));
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

pub(super) fn image(h: &mut String, alt: &str, png: &[u8]) {
    let _ = writeln!(
        h,
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        crate::base64::encode(png)
    );
}

pub(super) fn para(h: &mut String, s: &str) {
    let _ = writeln!(h, "<p>{}</p>", escape(s));
}

pub(super) fn interval(i: Option<&sora_train::ConfidenceInterval>) -> Cell {
    match i {
        Some(i) => text(format!("[{:.4}, {:.4}]", i.low, i.high)),
        None => text("—"),
    }
}

pub(super) fn share(n: usize, total: usize) -> String {
    if total == 0 {
        "—".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / total as f64)
    }
}

/// ` [95 % percentile-bootstrap intervals …]`, when there are intervals.
pub(super) fn interval_note(h: &mut String, i: Option<&sora_train::ConfidenceInterval>) {
    if let Some(i) = i {
        para(
            h,
            &format!(
                "Intervals: {:.0} % percentile bootstrap over the rows, {} resamples.",
                i.level * 100.0,
                i.resamples
            ),
        );
    }
}

/// A JSON value as `path: value` pairs (objects by key, arrays by index).
pub(super) fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&key(k), v, out);
            }
        }
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let cells: Vec<String> = items.iter().map(scalar).collect();
            out.push((prefix.to_string(), cells.join(", ")));
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

pub(super) fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::Number(n) if n.is_f64() => {
            format!("{:.4}", n.as_f64().unwrap_or(f64::NAN))
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
