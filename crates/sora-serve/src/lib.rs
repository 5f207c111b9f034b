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
//! | `GET /metrics` | Prometheus text: requests by route and status, latency histograms, errors, rows and batches scored, tokens written |
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

mod metrics;
mod request;
mod routes;
mod worker;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::Sender;
use std::time::Duration;

use burn::tensor::Device;
use serde_json::{Value, json};
use sora_jobs::{InputSchema, JobError, Legacy, Model, Registry};

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
    /// The device's name, as reported by `GET /v1/model`.
    #[arg(skip = "flex".to_string())]
    pub device_name: String,
}

impl Default for ServeConfig {
    /// A 100 µs batch window, batches of up to 256 rows, bodies up to 1 MiB, requests of up
    /// to 1,024 rows, on `flex`.
    fn default() -> Self {
        Self {
            batch_window_us: 100,
            max_batch_rows: 256,
            max_body_bytes: 1 << 20,
            max_rows: 1024,
            device_name: "flex".into(),
        }
    }
}

impl ServeConfig {
    /// The batch window.
    pub fn batch_window(&self) -> Duration {
        Duration::from_micros(self.batch_window_us)
    }
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
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
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
    /// A directory that cannot be read as a model ([`ServeError::Model`]), or options out of
    /// range.
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
        for (field, value) in [
            ("max_batch_rows", config.max_batch_rows),
            ("max_body_bytes", config.max_body_bytes),
            ("max_rows", config.max_rows),
        ] {
            if value == 0 {
                return Err(ServeError::Config {
                    field,
                    expected: "a positive number",
                    found: "0".into(),
                });
            }
        }
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

    /// Serves HTTP on `listener` until `shutdown` completes; then stops accepting
    /// connections, lets the requests in flight finish, and stops the scoring thread.
    ///
    /// # Errors
    ///
    /// The listener fails ([`ServeError::Http`]) or the scoring thread panicked.
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
        drop(shared);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Http);
        // Every handle on the job queue is gone with the router: the scoring thread ends.
        let joined = tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(|e| ServeError::Worker {
                what: format!("could not be joined: {e}"),
            })?;
        served?;
        joined.map_err(|_| ServeError::Worker {
            what: "panicked".into(),
        })
    }
}

#[cfg(test)]
mod tests {
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
