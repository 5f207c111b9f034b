//! # sora-serve
//!
//! `sora serve`: any trained model behind an HTTP API, for real-time scoring.
//!
//! A [`Server`] reads a model directory once, through the job contract's one loader
//! ([`sora_jobs::load_any`]), whatever its kind, and answers:
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/predict` | tables and text: one row (`{"row": {…}}`) or a batch (`{"rows": [{…}, …]}`) of raw columns; images and audio: a file uploaded as the body (`Content-Type: image/png`, `audio/wav`, … with an optional `X-File-Name`) or `{"file": {"name", "base64"}}` / `{"files": […]}`; recommenders: `user`, `item` rows → label and class probabilities (or the value, or the rating) per row |
//! | `POST /v1/explain` | the same input plus attributions per raw column, token or pixel (`"method"`, `"steps"`, `"target"`, `"layer"`, `"patch"`) |
//! | `POST /v1/generate` | language models: `{"prompt", "temperature", "top_k", "top_p", "max_tokens", "stop", "seed"}` → the text streamed as it is written, one JSON object a line |
//! | `POST /v1/recommend` | recommenders: `{"user": …}` or `{"users": […]}`, `"top"`, `"because"` → each user's top items and the rated items behind each |
//! | `GET /v1/model` | the model: kind, task, classes, input schema, spec, parameters, test metrics at training time, limits |
//! | `GET /healthz` | `{"status": "ok"}` once the model is loaded |
//! | `GET /metrics` | Prometheus text: requests by route and status, latency histograms, errors, rows and batches scored, tokens written; for tables, per input column: cells received, missing cells, numbers outside the training range, unseen categories, the training missing share, and `sora_input_drifted` (1 when the rows so far differ from the training rows, by the rules `sora predict` applies) |
//!
//! A route the model's kind does not have answers 422 and says which one does.
//!
//! Rows go through the model exactly as the rows of a CSV file go through `sora predict`: a
//! row is a JSON object with one field per input column of the model (`GET /v1/model`'s
//! `input`), numbers for numeric columns, strings (or numbers) for categorical ones, and
//! `null` for a missing value, which is imputed with the training statistics (a model
//! trained with `--drop-missing` refuses it). Every input column must be present and no other
//! field may be: a misspelt column is an error, not a silently imputed value.
//!
//! Bad input never reaches the model: malformed JSON, a missing or unknown column, a wrong
//! type, an empty batch, a body over `max_body_bytes` or more than `max_rows` rows, a file
//! that does not decode, an unknown route or method each get a 4xx answer with a JSON body
//! naming what is wrong, e.g. `{"error": "…", "row": 3, "column": "AGE"}` (rows numbered
//! from 0 within the request).
//!
//! Requests are batched: handlers check and encode their rows, then queue them; the scoring
//! thread takes what is queued and, while other requests are still being parsed by the HTTP
//! threads, waits at most [`ServeConfig::batch_window_us`] for them (up to
//! [`ServeConfig::max_batch_rows`] rows), then scores them all in one forward pass. A lone
//! request is scored at once, so the window costs nothing without load.
//!
//! ## Slow clients, floods of connections, keys and browsers
//!
//! A client cannot hold the server by being slow or by opening many connections; every limit
//! is a [`ServeConfig`] field and a `sora serve` option:
//!
//! | option | default | what |
//! |---|---|---|
//! | `--header-timeout-ms` | 10,000 | time a connection has to send a request's head, from its opening or the end of the previous answer; a slower one (slowloris) is closed, and so is a kept-alive connection idle that long |
//! | `--body-timeout-ms` | 30,000 | time a request has to send its body once its head is in; a body that does not arrive (`Content-Length: 1000` and 10 bytes sent) is answered 408 and the connection closed |
//! | `--request-timeout-ms` | 60,000 | time from a request's head to the start of its answer, body and scoring included: 503 with a JSON error after it (a streamed generation is not cut once started) |
//! | `--max-connections` | the open-file limit (`ulimit -n`) less 64, at most 65,536 ([`default_max_connections`]) | connections open at once; further ones wait in the listener's queue, unaccepted, until a connection closes, so accepting never fails for want of a descriptor and `/healthz` answers again as soon as the timeouts above free a slot |
//! | `--api-key-file FILE` | none | the file's one line is the API key: every route but `GET /healthz` answers 401 (`WWW-Authenticate: Bearer`, a JSON error) unless the request carries `Authorization: Bearer <key>`; the key is kept as its SHA-256 digest and compared in constant time |
//! | `--cors-origin ORIGIN` | none | browsers on `ORIGIN` (`scheme://host[:port]`; repeatable, or `*` for any) may call the API: preflight `OPTIONS` requests are answered and answers carry `Access-Control-Allow-Origin`; without it no CORS header is sent |
//!
//! [`Server::exposure_warning`] says when the server listens on an address other machines can
//! reach without a key (`sora serve` prints it). `/metrics` counts open connections
//! (`sora_connections_open`), accepted ones, the times the connection limit was reached,
//! timeouts by stage (`sora_timeouts_total{stage="header|body|request"}`) and refused keys
//! (`sora_unauthorized_total`).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! use sora_jobs::tabular::{TabularConfig, train};
//! use sora_serve::{ServeConfig, Server};
//!
//! // A tiny model: y is 1 when x > 0.
//! let mut csv = String::from("x,y\n");
//! for i in 0..60 {
//!     let x = i as f64 / 10.0 - 3.0;
//!     csv.push_str(&format!("{x},{}\n", u8::from(x > 0.0)));
//! }
//! let table = sora_data::Table::from_reader(csv.as_bytes(), "toy.csv")?;
//! let mut config = TabularConfig::new("y");
//! config.train.progress = sora_train::Progress::Quiet;
//! let device = burn::tensor::Device::flex();
//! let dir = tempfile::tempdir()?;
//! train(&table, &config, &device)?.save(&dir.path().join("m"))?;
//!
//! let server = Server::load(&dir.path().join("m"), &device, ServeConfig::default())?;
//! assert_eq!(server.description()["input"][0]["name"], "x");
//! let runtime = tokio::runtime::Runtime::new()?;
//! let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = runtime.spawn(server.run(listener, async move { stopped.await.ok(); }));
//!
//! let body = r#"{"rows": [{"x": 2.5}, {"x": null}]}"#;
//! let mut stream = std::net::TcpStream::connect(addr)?;
//! write!(stream, "POST /v1/predict HTTP/1.1\r\nHost: sora\r\nContent-Length: {}\r\n\
//!                 Connection: close\r\n\r\n{body}", body.len())?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
//! assert!(answer.contains(r#""predictions":[{"label":"1""#), "{answer}");
//!
//! stop.send(()).ok();
//! runtime.block_on(running)??;
//! # Ok(())
//! # }
//! ```

mod auth;
mod cors;
mod listen;
mod metrics;
mod request;
mod routes;
mod timeouts;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::Sender;
use std::time::Duration;

use burn::tensor::Device;
use serde_json::{Value, json};
use sora_jobs::{InputSchema, JobError, Legacy, Model, Registry};

use crate::auth::ApiKey;
use crate::metrics::Metrics;
use crate::worker::Job;

/// Options of the server besides the model and the address; `Default` holds every default.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServeConfig {
    /// Microseconds the scorer waits for requests still being parsed to batch them with the
    /// first one (0: score at once whatever is queued; a lone request never waits).
    #[arg(long, default_value_t = ServeConfig::default().batch_window_us)]
    pub batch_window_us: u64,
    /// Most rows scored in one forward pass (a request with more rows is scored alone).
    #[arg(long, default_value_t = ServeConfig::default().max_batch_rows)]
    pub max_batch_rows: usize,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, default_value_t = ServeConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most rows (or files, or users) in one request (more: 413).
    #[arg(long, default_value_t = ServeConfig::default().max_rows)]
    pub max_rows: usize,
    /// Milliseconds a connection has to send a request's head (request line and headers),
    /// counted from its opening or from the end of the previous answer: a slower connection
    /// is closed, and so is a kept-alive connection idle for that long.
    #[arg(long, default_value_t = ServeConfig::default().header_timeout_ms)]
    pub header_timeout_ms: u64,
    /// Milliseconds a request has to send its body once its head is in (slower: 408, and the
    /// connection is closed).
    #[arg(long, default_value_t = ServeConfig::default().body_timeout_ms)]
    pub body_timeout_ms: u64,
    /// Milliseconds from a request's head to the start of its answer, the body and the
    /// scoring included (slower: 503); a streamed generation is not cut once it has started.
    #[arg(long, default_value_t = ServeConfig::default().request_timeout_ms)]
    pub request_timeout_ms: u64,
    /// Most connections open at once; further ones wait, unaccepted, until one closes
    /// (default: the open-file limit, `ulimit -n`, less a margin for the model's files and
    /// the runtime).
    #[arg(long, default_value_t = ServeConfig::default().max_connections)]
    pub max_connections: usize,
    /// A file holding the API key (one line): every route but `GET /healthz` then needs
    /// `Authorization: Bearer <key>` (otherwise 401).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// An origin allowed to call the API from a browser (CORS), e.g. `https://app.example.com`;
    /// repeat for more, or `*` for any. Without it no CORS headers are sent.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// The device's name, as reported by `GET /v1/model`.
    #[arg(skip = "flex".to_string())]
    pub device_name: String,
}

impl Default for ServeConfig {
    /// A 100 µs batch window, batches of up to 256 rows, bodies up to 1 MiB, requests of up
    /// to 1,024 rows; 10 s for a request's head, 30 s for its body, 60 s to answer; as many
    /// connections as [`default_max_connections`] allows; no API key, no CORS; on `flex`.
    fn default() -> Self {
        Self {
            batch_window_us: 100,
            max_batch_rows: 256,
            max_body_bytes: 1 << 20,
            max_rows: 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            max_connections: default_max_connections(),
            api_key_file: None,
            cors_origins: Vec::new(),
            device_name: "flex".into(),
        }
    }
}

impl ServeConfig {
    /// The batch window.
    pub fn batch_window(&self) -> Duration {
        Duration::from_micros(self.batch_window_us)
    }

    /// The time a connection has to send a request's head.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The time a request has to send its body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The time a request has to be answered.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Every option in range, or the first one that is not.
    fn check(&self) -> Result<(), ServeError> {
        let positive = [
            ("max_batch_rows", self.max_batch_rows),
            ("max_body_bytes", self.max_body_bytes),
            ("max_rows", self.max_rows),
            ("max_connections", self.max_connections),
        ];
        if let Some((field, _)) = positive.into_iter().find(|&(_, value)| value == 0) {
            return Err(ServeError::Config {
                field,
                expected: "a positive number",
                found: "0".into(),
            });
        }
        let timeouts = [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
        ];
        if let Some((field, value)) = timeouts
            .into_iter()
            .find(|(_, value)| !(1..=MAX_TIMEOUT_MS).contains(value))
        {
            return Err(ServeError::Config {
                field,
                expected: "milliseconds in 1..=86400000 (a day)",
                found: value.to_string(),
            });
        }
        let ceiling = connection_ceiling();
        if self.max_connections as u64 > ceiling {
            return Err(ServeError::Config {
                field: "max_connections",
                expected: "at most the open-file limit (`ulimit -n`) less 64 for the model and the runtime",
                found: format!("{} (at most {ceiling} here)", self.max_connections),
            });
        }
        Ok(())
    }
}

/// The longest timeout accepted: a day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// File descriptors kept for what is not a connection: the listener, the model's files, the
/// runtime's event queue and wakers, standard streams.
const FD_MARGIN: u64 = 64;

/// The process's soft limit on open files, where the platform has one.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The most connections the server may hold: the open-file limit less 64 descriptors for
/// the rest of the process (at least 1, at most 2²⁰, 2²⁰ where there is no limit to read), so
/// that accepting a connection never fails for want of a descriptor.
fn connection_ceiling() -> u64 {
    const MOST: u64 = 1 << 20;
    open_file_limit().map_or(MOST, |limit| limit.saturating_sub(FD_MARGIN).clamp(1, MOST))
}

/// The default of [`ServeConfig::max_connections`]: as many as the open-file limit allows
/// (the limit less 64 descriptors for the model's files and the runtime), at most 65,536.
/// Connections beyond it wait in the listener's queue instead of failing for want of a
/// descriptor, so `/healthz` keeps answering under a flood of connections.
pub fn default_max_connections() -> usize {
    connection_ceiling().min(65_536) as usize
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The model directory could not be read.
    #[error(transparent)]
    Model(#[from] JobError),
    /// An option is out of range.
    #[error("{field}: expected {expected}, found {found}")]
    Config {
        /// The option.
        field: &'static str,
        /// What it accepts.
        expected: &'static str,
        /// What it was given.
        found: String,
    },
    /// The API key file cannot be used.
    #[error("--api-key-file {}: {problem}", path.display())]
    ApiKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The scoring thread could not be started or ended abnormally.
    #[error("the scoring thread {what}")]
    Worker {
        /// What happened to it.
        what: String,
    },
}

/// What the handlers share.
pub(crate) struct Shared {
    model: Arc<dyn Model>,
    description: Value,
    config: ServeConfig,
    jobs: Sender<Job>,
    metrics: Arc<Metrics>,
    /// Predict requests being parsed and checked, not yet queued.
    arriving: Arc<AtomicUsize>,
    /// The key every route but `/healthz` needs, if any.
    key: Option<ApiKey>,
    /// The origins browsers may call from, if any.
    cors: Option<tower_http::cors::CorsLayer>,
}

/// A loaded model and its scoring thread, ready to [`run`](Server::run).
pub struct Server {
    shared: Arc<Shared>,
    worker: std::thread::JoinHandle<()>,
    legacy: Option<Legacy>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("model", &self.shared.model.info().kind)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/model`: what the model is, and the files it came from.
fn describe(model: &dyn Model, dir: &Path, device: &str) -> Value {
    let read = |file: &str| -> Option<Value> {
        let bytes = std::fs::read(dir.join(file)).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let info = model.info();
    let mut value = json!({
        "kind": info.kind,
        "task": info.task(),
        "target": info.target,
        "classes": info.classes(),
        "output": info.output,
        "input": match &info.input {
            InputSchema::Columns { columns } => json!(columns),
            other => json!(other),
        },
        "summary": info.summary,
        "parameters": info.parameters,
        "directory": dir.display().to_string(),
        "device": device,
    });
    value["spec"] = read(sora_train::files::SPEC).unwrap_or(Value::Null);
    value["metrics"] = read(sora_train::files::METRICS).unwrap_or(Value::Null);
    value["manifest"] = read(sora_train::MANIFEST_FILE).unwrap_or(Value::Null);
    value
}

impl Server {
    /// Loads the model directory `dir` (of any kind Sora registers) on `device`, and starts
    /// its scoring thread.
    ///
    /// # Errors
    ///
    /// A directory that cannot be read as a model ([`ServeError::Model`]), options out of
    /// range ([`ServeError::Config`]), an API key file that cannot be used
    /// ([`ServeError::ApiKey`]).
    pub fn load(dir: &Path, device: &Device, config: ServeConfig) -> Result<Server, ServeError> {
        Self::load_with(&Registry::builtin(), dir, device, config)
    }

    /// [`load`](Self::load) with the kinds of `registry`.
    pub fn load_with(
        registry: &Registry,
        dir: &Path,
        device: &Device,
        config: ServeConfig,
    ) -> Result<Server, ServeError> {
        config.check()?;
        let key = config
            .api_key_file
            .as_deref()
            .map(ApiKey::read)
            .transpose()?;
        let cors = cors::layer(&config.cors_origins)?;
        let loaded = registry.load_any(dir, device)?;
        let model: Arc<dyn Model> = Arc::from(loaded.model);
        let description = describe(model.as_ref(), dir, &config.device_name);
        let metrics = Arc::new(Metrics::default());
        let arriving = Arc::new(AtomicUsize::new(0));
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let worker = {
            let (model, config, metrics, arriving) = (
                Arc::clone(&model),
                config.clone(),
                Arc::clone(&metrics),
                Arc::clone(&arriving),
            );
            std::thread::Builder::new()
                .name("sora-scorer".into())
                .spawn(move || worker::score_loop(&model, &queue, &config, &metrics, &arriving))
                .map_err(|e| ServeError::Worker {
                    what: format!("could not start: {e}"),
                })?
        };
        Ok(Server {
            shared: Arc::new(Shared {
                model,
                description,
                config,
                jobs,
                metrics,
                arriving,
                key,
                cors,
            }),
            worker,
            legacy: loaded.legacy,
        })
    }

    /// The model being served, as `GET /v1/model` describes it (without the limits).
    pub fn description(&self) -> &Value {
        &self.shared.description
    }

    /// The model being served.
    pub fn model(&self) -> &dyn Model {
        self.shared.model.as_ref()
    }

    /// Set when the directory has no manifest (written by Sora 0.1).
    pub fn legacy(&self) -> Option<&Legacy> {
        self.legacy.as_ref()
    }

    /// A warning for a server listening on `addr`, when that is reachable from other
    /// machines (not a loopback address) and no API key guards it; what to do about it.
    pub fn exposure_warning(&self, addr: SocketAddr) -> Option<String> {
        exposure_warning(addr, self.shared.key.is_some())
    }

    /// Serves HTTP on `listener` until `shutdown` completes; then stops accepting
    /// connections, lets the requests in flight finish, closes idle connections, and stops
    /// the scoring thread. A request head still arriving is waited for at most
    /// [`ServeConfig::header_timeout_ms`].
    ///
    /// # Errors
    ///
    /// The scoring thread could not be joined or panicked ([`ServeError::Worker`]). A failed
    /// `accept` (out of descriptors, a connection reset before it was taken) is retried after
    /// a pause, not returned.
    pub async fn run<F>(
        self,
        listener: tokio::net::TcpListener,
        shutdown: F,
    ) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Server { shared, worker, .. } = self;
        let app = routes::router(Arc::clone(&shared));
        let (config, metrics) = (shared.config.clone(), Arc::clone(&shared.metrics));
        drop(shared);
        listen::serve(listener, app, &config, metrics, shutdown).await;
        // Every handle on the job queue is gone with the router: the scoring thread ends.
        let joined = tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(|e| ServeError::Worker {
                what: format!("could not be joined: {e}"),
            })?;
        joined.map_err(|_| ServeError::Worker {
            what: "panicked".into(),
        })
    }
}

/// The warning for an unguarded server on a non-loopback address.
fn exposure_warning(addr: SocketAddr, authenticated: bool) -> Option<String> {
    (!authenticated && !addr.ip().is_loopback()).then(|| {
        format!(
            "warning: listening on {addr}, which other machines can reach, without an API key: \
             anyone who can connect can use the model. Pass --api-key-file FILE (a file \
             holding one secret token, e.g. from `openssl rand -hex 32`) to require \
             `Authorization: Bearer <token>`, or listen on 127.0.0.1 behind a proxy that \
             authenticates"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unguarded_non_loopback_address_is_warned_about() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let warning = exposure_warning(addr("0.0.0.0:8080"), false).unwrap();
        assert!(warning.contains("0.0.0.0:8080"), "{warning}");
        assert!(warning.contains("--api-key-file"), "{warning}");
        assert!(exposure_warning(addr("192.168.1.5:80"), false).is_some());
        assert!(exposure_warning(addr("[::]:80"), false).is_some());
        assert!(exposure_warning(addr("0.0.0.0:8080"), true).is_none());
        assert!(exposure_warning(addr("127.0.0.1:8080"), false).is_none());
        assert!(exposure_warning(addr("127.0.0.2:8080"), false).is_none());
        assert!(exposure_warning(addr("[::1]:8080"), false).is_none());
    }

    #[test]
    fn out_of_range_options_are_named() {
        let refused = |config: ServeConfig| match config.check() {
            Err(ServeError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let base = ServeConfig::default();
        assert!(base.check().is_ok());
        let with = |f: fn(&mut ServeConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c
        };
        assert_eq!(refused(with(|c| c.max_connections = 0)), "max_connections");
        assert_eq!(
            refused(with(|c| c.max_connections = usize::MAX)),
            "max_connections"
        );
        assert_eq!(
            refused(with(|c| c.header_timeout_ms = 0)),
            "header_timeout_ms"
        );
        assert_eq!(refused(with(|c| c.body_timeout_ms = 0)), "body_timeout_ms");
        assert_eq!(
            refused(with(|c| c.request_timeout_ms = MAX_TIMEOUT_MS + 1)),
            "request_timeout_ms"
        );
        assert!(default_max_connections() as u64 <= connection_ceiling());
    }
    /// Burn 0.22.1's models and devices may be shared across threads: the handlers check and
    /// encode rows with the model while the scoring thread runs it.
    #[test]
    fn models_and_devices_are_send_and_sync() {
        fn shared<T: Send + Sync + ?Sized>() {}
        shared::<sora_core::Model<sora_core::Identity>>();
        shared::<sora_jobs::tabular::TabularModel>();
        shared::<sora_jobs::text::TextModel>();
        shared::<sora_jobs::media::MediaModel>();
        shared::<dyn sora_jobs::Model>();
        shared::<burn::tensor::Device>();
    }
}
