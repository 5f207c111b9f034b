//! The server's Prometheus metrics: requests by route and status, latency histograms,
//! batch sizes, rows scored and explained, tokens written, failures inside the model; open
//! connections, waits at the connection limit, timeouts by stage, refused API keys.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sora_data::{ColumnDrift, Drift};

/// The routes metrics are kept for (anything else counts as `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Route {
    Predict,
    Explain,
    Generate,
    Recommend,
    Model,
    Health,
    Metrics,
    Other,
}

impl Route {
    pub(crate) fn of(path: &str) -> Route {
        match path {
            "/v1/predict" => Route::Predict,
            "/v1/explain" => Route::Explain,
            "/v1/generate" => Route::Generate,
            "/v1/recommend" => Route::Recommend,
            "/v1/model" => Route::Model,
            "/healthz" => Route::Health,
            "/metrics" => Route::Metrics,
            _ => Route::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Predict => "/v1/predict",
            Route::Explain => "/v1/explain",
            Route::Generate => "/v1/generate",
            Route::Recommend => "/v1/recommend",
            Route::Model => "/v1/model",
            Route::Health => "/healthz",
            Route::Metrics => "/metrics",
            Route::Other => "other",
        }
    }
}

/// Where a request ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The head did not arrive within `--header-timeout-ms`: the connection was closed.
    Header,
    /// The body did not arrive within `--body-timeout-ms`: 408.
    Body,
    /// No answer within `--request-timeout-ms`: 503.
    Request,
}

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// Upper bounds of the batch-size histogram, in rows.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len()];
        }
        for (c, b) in self.counts.iter_mut().zip(bounds) {
            if value <= *b {
                *c += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            out.push_str(&format!(
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}\n",
                self.counts.get(i).copied().unwrap_or(0)
            ));
        }
        out.push_str(&format!(
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}\n",
            self.count
        ));
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        out.push_str(&format!("{name}_sum{} {}\n", braces(labels), self.sum));
        out.push_str(&format!("{name}_count{} {}\n", braces(labels), self.count));
    }
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    latency: Mutex<BTreeMap<Route, Histogram>>,
    batches: Mutex<Histogram>,
    pub(crate) rows_scored: AtomicU64,
    pub(crate) rows_explained: AtomicU64,
    pub(crate) tokens_generated: AtomicU64,
    pub(crate) scoring_errors: AtomicU64,
    /// Connections being served now.
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    /// Times the server held `--max-connections` connections and stopped accepting.
    pub(crate) connection_limit_reached: AtomicU64,
    timeouts: [AtomicU64; 3],
    /// Requests refused for a missing or wrong API key.
    pub(crate) unauthorized: AtomicU64,
    /// The rows predicted since the start against the training rows, per column (tables).
    drift: Mutex<Option<Drift>>,
}

impl Metrics {
    pub(crate) fn request(&self, route: Route, status: u16, elapsed: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            l.entry(route)
                .or_default()
                .observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
        }
    }

    /// Counts the drift of one request's rows.
    pub(crate) fn drift(&self, drift: &Drift) {
        if let Ok(mut total) = self.drift.lock() {
            match total.as_mut() {
                Some(total) => total.add(drift),
                None => *total = Some(drift.clone()),
            }
        }
    }

    pub(crate) fn timed_out(&self, stage: Stage) {
        self.timeouts[stage as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn batch(&self, rows: usize) {
        if let Ok(mut b) = self.batches.lock() {
            b.observe(&BATCH_BUCKETS, rows as f64);
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP sora_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE sora_http_requests_total counter\n");
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        for ((route, status), n) in &requests {
            out.push_str(&format!(
                "sora_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}\n",
                route.label()
            ));
        }
        out.push_str("# HELP sora_http_errors_total HTTP requests answered with an error (4xx: client, 5xx: server), by route.\n");
        out.push_str("# TYPE sora_http_errors_total counter\n");
        let mut errors: BTreeMap<(Route, &str), u64> = BTreeMap::new();
        for ((route, status), n) in &requests {
            let class = match status {
                400..=499 => "client",
                500..=599 => "server",
                _ => continue,
            };
            *errors.entry((*route, class)).or_default() += n;
        }
        for ((route, class), n) in errors {
            out.push_str(&format!(
                "sora_http_errors_total{{route=\"{}\",class=\"{class}\"}} {n}\n",
                route.label()
            ));
        }
        out.push_str(
            "# HELP sora_http_request_duration_seconds Time from request to answer, by route.\n",
        );
        out.push_str("# TYPE sora_http_request_duration_seconds histogram\n");
        let latency = self.latency.lock().map(|l| l.clone()).unwrap_or_default();
        for (route, h) in &latency {
            h.render(
                &mut out,
                "sora_http_request_duration_seconds",
                &format!("route=\"{}\"", route.label()),
                &LATENCY_BUCKETS,
            );
        }
        out.push_str("# HELP sora_batch_rows Rows scored per forward pass.\n");
        out.push_str("# TYPE sora_batch_rows histogram\n");
        let batches = self.batches.lock().map(|b| b.clone()).unwrap_or_default();
        batches.render(&mut out, "sora_batch_rows", "", &BATCH_BUCKETS);
        for (name, help, value) in [
            (
                "sora_rows_scored_total",
                "Rows predicted.",
                &self.rows_scored,
            ),
            (
                "sora_rows_explained_total",
                "Rows explained.",
                &self.rows_explained,
            ),
            (
                "sora_tokens_generated_total",
                "Tokens written by /v1/generate.",
                &self.tokens_generated,
            ),
            (
                "sora_scoring_errors_total",
                "Forward passes and explanations that failed inside the model (500 answers).",
                &self.scoring_errors,
            ),
            (
                "sora_connections_accepted_total",
                "Connections accepted.",
                &self.connections_accepted,
            ),
            (
                "sora_connection_limit_reached_total",
                "Times --max-connections connections were open and new ones waited to be accepted.",
                &self.connection_limit_reached,
            ),
            (
                "sora_unauthorized_total",
                "Requests refused (401) for a missing or wrong API key.",
                &self.unauthorized,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP sora_timeouts_total Requests out of time: header (connection closed), body (408), request (503).\n");
        out.push_str("# TYPE sora_timeouts_total counter\n");
        for (stage, n) in ["header", "body", "request"].iter().zip(&self.timeouts) {
            out.push_str(&format!(
                "sora_timeouts_total{{stage=\"{stage}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# HELP sora_connections_open Connections being served.\n\
             # TYPE sora_connections_open gauge\nsora_connections_open {}\n",
            self.connections_open.load(Ordering::Relaxed)
        ));
        if let Some(drift) = self.drift.lock().ok().and_then(|d| d.clone()) {
            render_drift(&mut out, &drift);
        }
        out
    }
}

/// The predicted rows against the training rows, per input column: counters a dashboard can
/// turn into rates, the training shares beside them, and whether the counts so far are
/// flagged (the rules of `sora_data::drift`, as `sora predict` applies them).
fn render_drift(out: &mut String, drift: &Drift) {
    type Count = fn(&ColumnDrift) -> f64;
    let series: [(&str, &str, &str, Count); 6] = [
        (
            "sora_input_cells_total",
            "counter",
            "Cells of each input column received by /v1/predict.",
            |c| c.rows as f64,
        ),
        (
            "sora_input_missing_total",
            "counter",
            "Cells missing, each filled from the training statistics.",
            |c| c.missing as f64,
        ),
        (
            "sora_input_outside_range_total",
            "counter",
            "Numbers outside the range of the training rows.",
            |c| (c.below + c.above) as f64,
        ),
        (
            "sora_input_unseen_total",
            "counter",
            "Categories the training rows never had.",
            |c| c.unseen as f64,
        ),
        (
            "sora_training_missing_ratio",
            "gauge",
            "Share of the training rows missing in the column.",
            |c| c.training.as_ref().map_or(f64::NAN, |t| t.missing_share()),
        ),
        (
            "sora_input_drifted",
            "gauge",
            "1 when the rows received so far differ from the training rows in the column (missing share 10 points above training, over 5% of numbers outside the training range, or over 5% unseen categories).",
            |c| f64::from(u8::from(!c.reasons().is_empty())),
        ),
    ];
    for (name, kind, help, value) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for column in &drift.columns {
            out.push_str(&format!(
                "{name}{{column=\"{}\"}} {}\n",
                label_value(&column.name),
                value(column)
            ));
        }
    }
}

/// A Prometheus label value: backslash, quote and line break escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_escaped_in_labels() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        for v in [0.5, 3.0, 3.0, 2000.0] {
            h.observe(&BATCH_BUCKETS, v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "", &BATCH_BUCKETS);
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"4\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1024\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
    }
}
