//! `sora serve`: a trained model behind an HTTP API, for real-time scoring.
//!
//! A [`Server`] loads a model directory written by `sora train` once, on a dedicated scoring
//! thread that owns the model (Burn tensors never cross threads), and answers:
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/predict` | one row (`{"row": {…}}`) or a batch (`{"rows": [{…}, …]}`) of raw columns → label and class probabilities (or the value, for regression) per row |
//! | `POST /v1/explain` | the same plus per-raw-column attributions (`"method"`, default `ig`; `"steps"`, default 50; `"target"`, default `predicted`) |
//! | `GET /v1/model` | the model: kind, task, classes, input schema, spec, parameters, test metrics at training time, limits |
//! | `GET /healthz` | `{"status": "ok"}` once the model is loaded |
//! | `GET /metrics` | Prometheus text: requests by route and status, latency histograms, errors, rows and batches scored |
//!
//! Rows go through the model's fitted pipeline exactly as the rows of a CSV file go through
//! `sora predict`: a row is a JSON object with one field per input column of the model
//! ([`ModelInfo::input`]), numbers for numeric columns, strings (or numbers) for categorical
//! ones, and `null` for a missing value, which is imputed with the training statistics (a
//! model trained with `--drop-missing` refuses it). Every input column must be present and no
//! other field may be: a misspelt column is an error, not a silently imputed value. Text
//! classifiers take `{"<text column>": "…"}`. Image and audio models are refused at start-up.
//!
//! Bad input never reaches the model: malformed JSON, a missing or unknown column, a wrong
//! type, an empty batch, a body over `max_body_bytes` or more than `max_rows` rows, an unknown
//! route or method each get a 4xx answer with a JSON body naming what is wrong, e.g.
//! `{"error": "…", "row": 3, "column": "AGE"}` (rows numbered from 0 within the request).
//!
//! Requests are batched: handlers validate and transform their rows, then queue them; the
//! scoring thread takes what is queued and, while other requests are still being parsed by
//! the HTTP threads, waits at most [`ServeConfig::batch_window`] for them (up to
//! [`ServeConfig::max_batch_rows`] rows), then scores them all in one forward pass. A lone
//! request is scored at once, so the window costs nothing without load.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! use sora::data::Table;
//! use sora::serve::{ServeConfig, Server};
//! use sora::tabular::{TabularConfig, train};
//!
//! // A tiny model: y is 1 when x > 0.
//! let mut csv = String::from("x,y\n");
//! for i in 0..60 {
//!     let x = i as f64 / 10.0 - 3.0;
//!     csv.push_str(&format!("{x},{}\n", u8::from(x > 0.0)));
//! }
//! let table = Table::from_reader(csv.as_bytes(), "toy.csv")?;
//! let mut config = TabularConfig::new("y");
//! config.train = config.train.with_progress(sora::train::Progress::Quiet);
//! let device = sora::device::device("flex")?;
//! let dir = tempfile::tempdir()?;
//! train(&table, &config, &device)?.save(&dir.path().join("m"))?;
//!
//! let server = Server::load(&dir.path().join("m"), &device, ServeConfig::default())?;
//! assert_eq!(server.info().input[0].name, "x");
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

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sora_data::{DataError, FeatureEncoding, FittedPipeline, Table};

use crate::explain::{ExplainOptions, Explained, Method};
use crate::tabular::{TabularError, TabularModel};
use crate::textclf::{TextJobError, TextModel};

/// Options of the server besides the model and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long the scoring thread waits for requests that are being parsed when it takes
    /// one from the queue, before scoring what it holds (zero: score at once whatever is
    /// queued). It never waits when no other request is on its way.
    pub batch_window: Duration,
    /// Most rows scored in one forward pass (a request with more rows is scored alone).
    pub max_batch_rows: usize,
    /// Largest request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Most rows in one request (more: 413).
    pub max_rows: usize,
    /// The device's name, as reported by `GET /v1/model`.
    pub device_name: String,
}

impl Default for ServeConfig {
    /// A 100 µs batch window, batches of up to 256 rows, bodies up to 1 MiB, requests of up
    /// to 1,024 rows, on `flex`.
    fn default() -> Self {
        Self {
            batch_window: Duration::from_micros(100),
            max_batch_rows: 256,
            max_body_bytes: 1 << 20,
            max_rows: 1024,
            device_name: "flex".into(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The tabular model directory could not be read.
    #[error(transparent)]
    Tabular(#[from] TabularError),
    /// The text model directory could not be read.
    #[error(transparent)]
    Text(#[from] TextJobError),
    /// The directory holds a kind of model the server does not score.
    #[error(
        "{}: {kind} models are not served over HTTP (tabular and text models are); use `sora predict` for them",
        .dir.display()
    )]
    Unsupported {
        /// The model directory.
        dir: PathBuf,
        /// What it holds, e.g. `image or audio`.
        kind: &'static str,
    },
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
    /// A file of the model directory could not be read.
    #[error("{}: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
    /// The scoring thread could not be started or ended abnormally.
    #[error("the scoring thread {0}")]
    Worker(String),
}

/// What the server holds, as `GET /v1/model` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// `tabular` or `text`.
    pub kind: &'static str,
    /// `classification` or `regression`.
    pub task: &'static str,
    /// The target column the model predicts.
    pub target: String,
    /// The classes in output order (classification).
    pub classes: Option<Vec<String>>,
    /// The fields a row must have, in input order.
    pub input: Vec<InputColumn>,
    /// The model spec (`spec.json`).
    pub spec: Value,
    /// The spec's summary: layers, output shapes, parameters (as `sora summary` prints it).
    pub summary: String,
    /// Number of parameters.
    pub parameters: usize,
    /// Test metrics at training time (`metrics.json`), when saved.
    pub metrics: Option<Value>,
    /// The model directory.
    pub directory: String,
    /// The device the model runs on.
    pub device: String,
}

/// One field of a row.
#[derive(Debug, Clone, Serialize)]
pub struct InputColumn {
    /// The raw column name, as in the training file.
    pub name: String,
    /// `number`, `category` or `text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The training categories (categorical columns); others encode as none of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// What `null` becomes.
    pub missing: String,
}

/// Work for the scoring thread.
enum Job {
    Predict {
        input: Input,
        rows: usize,
        reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
    },
    Explain {
        request: ExplainRequest,
        reply: tokio::sync::oneshot::Sender<Result<Vec<Value>, String>>,
    },
}

/// Rows ready for the model: pipeline outputs (tabular) or documents (text).
enum Input {
    Features(Vec<f32>),
    Texts(Vec<String>),
}

enum ExplainRequest {
    Tabular {
        table: Table,
        options: ExplainOptions,
    },
    Text {
        texts: Vec<String>,
        target: Option<usize>,
        steps: usize,
    },
}

/// The model the scoring thread owns.
enum Loaded {
    Tabular(Box<TabularModel>),
    Text(Box<TextModel>),
}

/// A loaded model and its scoring thread, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    worker: std::thread::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    info: ModelInfo,
    pipeline: Option<FittedPipeline>,
    config: ServeConfig,
    jobs: Sender<Job>,
    metrics: Arc<Metrics>,
    /// Predict requests being parsed and transformed, not yet queued.
    arriving: Arc<AtomicUsize>,
}

/// Counts a predict request as arriving until it is queued or rejected (dropped).
struct Arriving<'a>(&'a AtomicUsize);

impl<'a> Arriving<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Arriving(counter)
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Server {
    /// Loads the model directory `dir` (tabular or text) on `device`, on a new scoring thread.
    ///
    /// # Errors
    ///
    /// An image or audio model directory ([`ServeError::Unsupported`]), a directory that
    /// cannot be read as a model, or options out of range.
    pub fn load(dir: &Path, device: &Device, config: ServeConfig) -> Result<Server, ServeError> {
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
        if dir.join(crate::media::INPUT_FILE).is_file() {
            return Err(ServeError::Unsupported {
                dir: dir.to_path_buf(),
                kind: "image or audio",
            });
        }
        let read_json = |file: &str| -> Result<Option<Value>, ServeError> {
            let path = dir.join(file);
            if !path.is_file() {
                return Ok(None);
            }
            let text = std::fs::read(&path).map_err(|source| ServeError::Io {
                file: path.clone(),
                source,
            })?;
            serde_json::from_slice(&text)
                .map(Some)
                .map_err(|e| ServeError::Io {
                    file: path,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })
        };
        let spec = read_json(sora_train::files::SPEC)?.unwrap_or(Value::Null);
        let metrics = read_json(sora_train::files::METRICS)?;

        let metrics_store = Arc::new(Metrics::default());
        let arriving = Arc::new(AtomicUsize::new(0));
        let worker_arriving = Arc::clone(&arriving);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let text = TextModel::is_text_model(dir);
        let (dir_owned, device_owned, worker_config, worker_metrics) = (
            dir.to_path_buf(),
            device.clone(),
            config.clone(),
            Arc::clone(&metrics_store),
        );
        let worker = std::thread::Builder::new()
            .name("sora-scorer".into())
            .spawn(move || {
                let loaded = if text {
                    TextModel::load(&dir_owned, &device_owned)
                        .map(|m| Loaded::Text(Box::new(m)))
                        .map_err(ServeError::from)
                } else {
                    TabularModel::load(&dir_owned, &device_owned)
                        .map(|m| Loaded::Tabular(Box::new(m)))
                        .map_err(ServeError::from)
                };
                let loaded = match loaded {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let description = describe(&loaded);
                if ready_tx.send(Ok(description)).is_err() {
                    return;
                }
                score_loop(
                    &loaded,
                    &queue,
                    &worker_config,
                    &worker_metrics,
                    &worker_arriving,
                );
            })
            .map_err(|e| ServeError::Worker(format!("could not start: {e}")))?;
        let (partial, pipeline) = ready_rx
            .recv()
            .map_err(|_| ServeError::Worker("stopped while loading the model".into()))??;
        let info = ModelInfo {
            spec,
            metrics,
            directory: dir.display().to_string(),
            device: config.device_name.clone(),
            ..partial
        };
        Ok(Server {
            shared: Arc::new(Shared {
                info,
                pipeline,
                config,
                jobs,
                metrics: metrics_store,
                arriving,
            }),
            worker,
        })
    }

    /// The model being served.
    pub fn info(&self) -> &ModelInfo {
        &self.shared.info
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
        let Server { shared, worker } = self;
        let app = router(Arc::clone(&shared));
        drop(shared);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Http);
        // Every handle on the job queue is gone with the router: the scoring thread ends.
        let joined = tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(|e| ServeError::Worker(format!("could not be joined: {e}")))?;
        served?;
        joined.map_err(|_| ServeError::Worker("panicked".into()))
    }
}

/// The model's description for [`ModelInfo`] (without the file contents), and the pipeline
/// the handlers transform rows with.
fn describe(loaded: &Loaded) -> (ModelInfo, Option<FittedPipeline>) {
    let base = |kind, task, target: &str, classes, input, parameters, summary| ModelInfo {
        kind,
        task,
        target: target.to_string(),
        classes,
        input,
        spec: Value::Null,
        summary,
        parameters,
        metrics: None,
        directory: String::new(),
        device: String::new(),
    };
    match loaded {
        Loaded::Tabular(m) => {
            let p = &m.pipeline;
            let missing = |what: String| {
                if p.drops_missing_rows() {
                    "not accepted (the model was trained with rows with missing values dropped)"
                        .to_string()
                } else {
                    what
                }
            };
            let input = p
                .features()
                .iter()
                .map(|f| match &f.encoding {
                    FeatureEncoding::Numeric { impute, .. } => InputColumn {
                        name: f.name.clone(),
                        kind: "number",
                        categories: None,
                        missing: missing(format!("imputed with {impute}")),
                    },
                    FeatureEncoding::Categorical { categories, impute } => InputColumn {
                        name: f.name.clone(),
                        kind: "category",
                        categories: Some(categories.clone()),
                        missing: missing(format!("imputed with {impute:?}")),
                    },
                })
                .collect();
            let task = if p.classes().is_some() {
                "classification"
            } else {
                "regression"
            };
            let info = base(
                "tabular",
                task,
                p.target(),
                p.classes().map(<[String]>::to_vec),
                input,
                m.model.num_params(),
                m.spec.summary().to_string(),
            );
            (info, Some(m.pipeline.clone()))
        }
        Loaded::Text(m) => {
            let input = vec![InputColumn {
                name: m.text.text_column.clone(),
                kind: "text",
                categories: None,
                missing: "not accepted".into(),
            }];
            let info = base(
                "text",
                "classification",
                &m.text.target_column,
                Some(m.text.classes.clone()),
                input,
                m.model.num_params(),
                m.summary.clone(),
            );
            (info, None)
        }
    }
}

/// The scoring thread: batches prediction jobs and answers explanation jobs one by one.
fn score_loop(
    loaded: &Loaded,
    queue: &Receiver<Job>,
    config: &ServeConfig,
    metrics: &Metrics,
    arriving: &AtomicUsize,
) {
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Explain { request, reply } => {
                let result = guarded(|| explain(loaded, request));
                if result.is_err() {
                    metrics.scoring_errors.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(result);
            }
            Job::Predict { input, rows, reply } => {
                let mut batch = vec![(input, rows, reply)];
                let mut total = rows;
                let deadline = Instant::now() + config.batch_window;
                while total < config.max_batch_rows {
                    // Wait only while other requests are on their way to the queue; a lone
                    // request is scored at once.
                    let remaining = deadline.checked_duration_since(Instant::now());
                    let next = match remaining {
                        Some(wait) if !wait.is_zero() && arriving.load(Ordering::Acquire) > 0 => {
                            queue.recv_timeout(wait)
                        }
                        _ => queue.try_recv().map_err(|e| match e {
                            std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                            std::sync::mpsc::TryRecvError::Disconnected => {
                                RecvTimeoutError::Disconnected
                            }
                        }),
                    };
                    match next {
                        Ok(Job::Predict { input, rows, reply }) => {
                            total += rows;
                            batch.push((input, rows, reply));
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                metrics.batch(total);
                let (inputs, replies): (Vec<(Input, usize)>, Vec<_>) = batch
                    .into_iter()
                    .map(|(input, rows, reply)| ((input, rows), reply))
                    .unzip();
                let sizes: Vec<usize> = inputs.iter().map(|(_, n)| *n).collect();
                match guarded(|| score(loaded, inputs)) {
                    Ok(outputs) => {
                        let mut outputs = outputs.into_iter();
                        for (reply, n) in replies.into_iter().zip(sizes) {
                            let _ = reply.send(Ok(outputs.by_ref().take(n).collect()));
                        }
                    }
                    Err(e) => {
                        metrics.scoring_errors.fetch_add(1, Ordering::Relaxed);
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f`, turning a panic inside it (a bug, not bad input: rows are checked before they are
/// queued) into an error for the requests concerned, so the scoring thread keeps serving.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("the model failed on these rows: {why}"))
    })
}

/// One forward pass over the concatenated rows of several requests.
fn score(loaded: &Loaded, inputs: Vec<(Input, usize)>) -> Result<Vec<Vec<f32>>, String> {
    match loaded {
        Loaded::Tabular(m) => {
            let mut features = Vec::new();
            for (input, _) in inputs {
                if let Input::Features(f) = input {
                    features.extend(f);
                }
            }
            m.predict_inputs(features).map_err(|e| e.to_string())
        }
        Loaded::Text(m) => {
            let mut texts = Vec::new();
            for (input, _) in inputs {
                if let Input::Texts(t) = input {
                    texts.extend(t);
                }
            }
            let k = m.text.classes.len();
            let flat = m.predict(&texts).map_err(|e| e.to_string())?;
            Ok(flat.chunks(k).map(<[f32]>::to_vec).collect())
        }
    }
}

/// Explanations of one request's rows, as the JSON objects of the answer.
fn explain(loaded: &Loaded, request: ExplainRequest) -> Result<Vec<Value>, String> {
    match (loaded, request) {
        (Loaded::Tabular(m), ExplainRequest::Tabular { table, options }) => {
            let predictions = m.predict(&table).map_err(|e| e.to_string())?;
            let rows: Vec<usize> = (0..table.n_rows()).collect();
            let report =
                crate::explain::explain(m, &table, &rows, &options).map_err(|e| e.to_string())?;
            let classes = predictions.classes.unwrap_or_default();
            Ok(report
                .rows
                .iter()
                .zip(&predictions.outputs)
                .map(|(row, p)| {
                    let predicted = sora_train::argmax(p);
                    let explained = match &options.target {
                        Explained::Predicted => predicted,
                        Explained::Class(c) => {
                            classes.iter().position(|k| k == c).unwrap_or(predicted)
                        }
                    };
                    let attributions: Vec<Value> = row
                        .features
                        .iter()
                        .map(|f| {
                            json!({
                                "column": f.name,
                                "value": f.value,
                                "imputed": f.imputed,
                                "attribution": f.attribution,
                            })
                        })
                        .collect();
                    let mut out = json!({
                        "label": classes[predicted],
                        "probabilities": p,
                        "explained": classes[explained],
                        "attributions": attributions,
                    });
                    if let Some(delta) = row.delta {
                        out["delta"] = json!(delta);
                    }
                    out
                })
                .collect())
        }
        (
            Loaded::Text(m),
            ExplainRequest::Text {
                texts,
                target,
                steps,
            },
        ) => {
            use sora_text::tokenize::{Tokenizer, Truncate, pad_batch};
            let saved = &m.text;
            let tokenizer = Tokenizer::new(saved.tokenizer.clone()).map_err(|e| e.to_string())?;
            let probabilities = m.predict(&texts).map_err(|e| e.to_string())?;
            let k = saved.classes.len();
            texts
                .iter()
                .zip(probabilities.chunks(k))
                .map(|(text, p)| {
                    let tokens = tokenizer.tokenize(text);
                    let ids = saved.vocabulary.encode(&tokens);
                    let batch =
                        pad_batch(std::slice::from_ref(&ids), saved.seq_len, saved.truncate)
                            .map_err(|e| e.to_string())?;
                    let kept = batch.lengths[0];
                    let shown = match saved.truncate {
                        Truncate::Head => &tokens[..kept],
                        Truncate::Tail => &tokens[tokens.len() - kept..],
                    };
                    let predicted = sora_train::argmax(p);
                    let class = target.unwrap_or(predicted);
                    let a = crate::text_explain::token_attributions(
                        &m.model,
                        &batch.ids,
                        &batch.mask,
                        class,
                        steps,
                        m.device(),
                    )
                    .map_err(|e| e.to_string())?;
                    let attributions: Vec<Value> = shown
                        .iter()
                        .zip(&a.scores)
                        .map(|(t, s)| json!({"token": t, "attribution": s}))
                        .collect();
                    Ok(json!({
                        "label": saved.classes[predicted],
                        "probabilities": p,
                        "explained": saved.classes[class],
                        "attributions": attributions,
                        "delta": a.delta,
                    }))
                })
                .collect()
        }
        _ => Err("the request does not fit the model".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A 4xx/5xx answer with a JSON body: `{"error": …, "row": …, "column": …, "field": …}`.
#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    status: StatusCode,
    message: String,
    row: Option<usize>,
    column: Option<String>,
    field: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            row: None,
            column: None,
            field: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }

    fn column(mut self, column: &str) -> Self {
        self.column = Some(column.to_string());
        self
    }

    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(row) = self.row {
            body["row"] = json!(row);
        }
        if let Some(column) = self.column {
            body["column"] = json!(column);
        }
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        (self.status, json_body(&body)).into_response()
    }
}

fn json_body(value: &Value) -> ([(header::HeaderName, HeaderValue); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
}

fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    let metrics = Arc::clone(&shared.metrics);
    Router::new()
        .route("/v1/predict", post(predict_handler))
        .route("/v1/explain", post(explain_handler))
        .route("/v1/model", get(model_handler))
        .route("/healthz", get(health_handler))
        .route("/metrics", get(metrics_handler))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route; routes: POST /v1/predict, POST /v1/explain, GET /v1/model, GET /healthz, GET /metrics") })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {} is not allowed on {}", request.method(), request.uri().path()),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(metrics, track))
        .with_state(shared)
}

/// Records every answer's route, status and latency.
async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = Route::of(request.uri().path());
    let response = next.run(request).await;
    metrics.request(route, response.status().as_u16(), start.elapsed());
    response
}

async fn health_handler() -> Response {
    json_body(&json!({"status": "ok"})).into_response()
}

async fn model_handler(State(shared): State<Arc<Shared>>) -> Response {
    let mut value = serde_json::to_value(&shared.info).unwrap_or(Value::Null);
    let c = &shared.config;
    value["limits"] = json!({
        "max_body_bytes": c.max_body_bytes,
        "max_rows": c.max_rows,
        "max_batch_rows": c.max_batch_rows,
        "batch_window_us": c.batch_window.as_micros() as u64,
    });
    json_body(&value).into_response()
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        shared.metrics.render(),
    )
        .into_response()
}

async fn predict_handler(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arriving = Arriving::new(&shared.arriving);
    let envelope = parse_body(body, &["row", "rows"])?;
    let rows = rows_of(&envelope, shared.config.max_rows)?;
    let (input, n) = match &shared.pipeline {
        Some(pipeline) => {
            let table = table_of(pipeline, &rows)?;
            let t = pipeline
                .transform(&table, &(0..table.n_rows()).collect::<Vec<_>>())
                .map_err(data_error)?;
            (Input::Features(t.features), t.rows.len())
        }
        None => {
            let texts = texts_of(&shared.info, &rows)?;
            let n = texts.len();
            (Input::Texts(texts), n)
        }
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    drop(arriving);
    shared
        .jobs
        .send(Job::Predict {
            input,
            rows: n,
            reply,
        })
        .map_err(|_| unavailable())?;
    let outputs = answer
        .await
        .map_err(|_| unavailable())?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    shared
        .metrics
        .rows_scored
        .fetch_add(n as u64, Ordering::Relaxed);
    let predictions: Vec<Value> = outputs
        .iter()
        .map(|p| match &shared.info.classes {
            Some(classes) => json!({
                "label": classes[sora_train::argmax(p)],
                "probabilities": p,
            }),
            None => json!({ "value": p[0] }),
        })
        .collect();
    let mut out = json!({ "predictions": predictions });
    if let Some(classes) = &shared.info.classes {
        out["classes"] = json!(classes);
    }
    Ok(json_body(&out).into_response())
}

async fn explain_handler(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let envelope = parse_body(body, &["row", "rows", "method", "steps", "target"])?;
    let rows = rows_of(&envelope, shared.config.max_rows)?;
    let classes = shared.info.classes.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "explanations need a classification model; this one is a regression model",
        )
    })?;
    let steps = match envelope.get("steps") {
        None | Some(Value::Null) => 50,
        Some(v) => v
            .as_u64()
            .filter(|s| (1..=1000).contains(s))
            .ok_or_else(|| {
                ApiError::bad(format!("steps: expected an integer in 1..=1000, found {v}"))
                    .field("steps")
            })? as usize,
    };
    let target = match envelope.get("target") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "predicted" => None,
        Some(Value::String(s)) => Some(classes.iter().position(|c| c == s).ok_or_else(|| {
            ApiError::bad(format!(
                "target: expected \"predicted\" or a class ({}), found {s:?}",
                classes.join(", ")
            ))
            .field("target")
        })?),
        Some(v) => {
            return Err(
                ApiError::bad(format!("target: expected a string, found {v}")).field("target"),
            );
        }
    };
    let method_name = match envelope.get("method") {
        None | Some(Value::Null) => "ig".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(
                ApiError::bad(format!("method: expected a string, found {v}")).field("method"),
            );
        }
    };
    let (request, method) = match &shared.pipeline {
        Some(pipeline) => {
            let method = Method::parse(&method_name, steps).ok_or_else(|| {
                ApiError::bad(format!(
                    "method: expected ig, saliency, input-x-gradient, smoothgrad, occlusion, ablation or shapley, found {method_name:?}"
                ))
                .field("method")
            })?;
            let table = table_of(pipeline, &rows)?;
            // Rejects what the model cannot take (e.g. a value too large) before explaining.
            pipeline
                .transform(&table, &(0..table.n_rows()).collect::<Vec<_>>())
                .map_err(data_error)?;
            let options = ExplainOptions {
                method: method.clone(),
                target: match target {
                    None => Explained::Predicted,
                    Some(c) => Explained::Class(classes[c].clone()),
                },
                permutation_repeats: 0,
                sanity_check: false,
                seed: 0,
            };
            (
                ExplainRequest::Tabular { table, options },
                method.describe(),
            )
        }
        None => {
            if method_name != "ig" && method_name != "integrated-gradients" {
                return Err(ApiError::bad(format!(
                    "method: text models are explained by integrated gradients (ig) at the embedding output, found {method_name:?}"
                ))
                .field("method"));
            }
            let texts = texts_of(&shared.info, &rows)?;
            (
                ExplainRequest::Text {
                    texts,
                    target,
                    steps,
                },
                format!("Integrated Gradients at the embedding output, {steps} steps"),
            )
        }
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .jobs
        .send(Job::Explain { request, reply })
        .map_err(|_| unavailable())?;
    let explanations = answer
        .await
        .map_err(|_| unavailable())?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    shared
        .metrics
        .rows_explained
        .fetch_add(explanations.len() as u64, Ordering::Relaxed);
    Ok(json_body(&json!({
        "classes": classes,
        "method": method,
        "explanations": explanations,
    }))
    .into_response())
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the scoring thread has stopped",
    )
}

/// The body as a JSON object with only `allowed` fields.
fn parse_body(
    body: Result<Bytes, BytesRejection>,
    allowed: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is over the size limit (--max-body-bytes)".to_string()
        } else {
            format!("could not read the request body: {}", rejection.body_text())
        };
        ApiError::new(status, message)
    })?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad(format!(
            "expected a JSON object with \"row\" or \"rows\", found {}",
            type_name(&value)
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad(format!(
            "unknown field {unknown:?}; expected {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

/// The rows of the request: `"row": {…}` or `"rows": [{…}, …]`.
fn rows_of(
    envelope: &Map<String, Value>,
    max_rows: usize,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let rows: Vec<Value> = match (envelope.get("row"), envelope.get("rows")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad("give either \"row\" or \"rows\", not both"));
        }
        (Some(row), None) => vec![row.clone()],
        (None, Some(Value::Array(rows))) => rows.clone(),
        (None, Some(other)) => {
            return Err(ApiError::bad(format!(
                "rows: expected an array of objects, found {}",
                type_name(other)
            ))
            .field("rows"));
        }
        (None, None) => {
            return Err(ApiError::bad(
                "no rows: expected \"row\": {…} or \"rows\": [{…}, …]",
            ));
        }
    };
    if rows.is_empty() {
        return Err(ApiError::bad("rows: the batch is empty").field("rows"));
    }
    if rows.len() > max_rows {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "rows: {} rows in one request, over the limit of {max_rows} (--max-rows)",
                rows.len()
            ),
        )
        .field("rows"));
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Object(map) => Ok(map),
            other => Err(ApiError::bad(format!(
                "expected a row object of column: value, found {}",
                type_name(&other)
            ))
            .row(i)),
        })
        .collect()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The rows as a table of raw cells, as a CSV file would give them to the pipeline.
fn table_of(pipeline: &FittedPipeline, rows: &[Map<String, Value>]) -> Result<Table, ApiError> {
    let features = pipeline.features();
    let expected = || {
        features
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing_cell = pipeline.missing_markers().as_slice().first().cloned();
    let mut cells = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if let Some(unknown) = row.keys().find(|k| !features.iter().any(|f| &f.name == *k)) {
            let target = if unknown == pipeline.target() {
                " (the target column is predicted, not given)"
            } else {
                ""
            };
            return Err(ApiError::bad(format!(
                "unknown column `{unknown}`{target}; the model takes {}",
                expected()
            ))
            .row(i)
            .column(unknown));
        }
        let mut row_cells = Vec::with_capacity(features.len());
        for f in features {
            let value = row.get(&f.name).ok_or_else(|| {
                ApiError::bad(format!(
                    "missing column `{}` (send null for a missing value)",
                    f.name
                ))
                .row(i)
                .column(&f.name)
            })?;
            let numeric = matches!(f.encoding, FeatureEncoding::Numeric { .. });
            let cell = match value {
                Value::Null => missing_cell.clone().ok_or_else(|| {
                    ApiError::bad(format!(
                        "column `{}`: this model has no missing-value marker, so null is not accepted",
                        f.name
                    ))
                    .row(i)
                    .column(&f.name)
                })?,
                Value::Number(n) => n.to_string(),
                Value::String(s) if !numeric => s.clone(),
                other => {
                    let wanted = if numeric {
                        "a number or null"
                    } else {
                        "a string, a number or null"
                    };
                    return Err(ApiError::bad(format!(
                        "column `{}`: expected {wanted}, found {}",
                        f.name,
                        type_name(other)
                    ))
                    .row(i)
                    .column(&f.name));
                }
            };
            if pipeline.drops_missing_rows() && pipeline.is_missing_cell(&f.name, &cell) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "column `{}`: missing value, and the model was trained with rows with missing values dropped",
                        f.name
                    ),
                )
                .row(i)
                .column(&f.name));
            }
            row_cells.push(cell);
        }
        cells.push(row_cells);
    }
    let headers = features.iter().map(|f| f.name.clone()).collect();
    Table::from_rows("request", headers, cells).map_err(data_error)
}

/// A pipeline error about a cell of a request table, named by row (0-based) and column.
fn data_error(e: DataError) -> ApiError {
    match &e {
        DataError::NotNumeric { line, column, .. } | DataError::NonFinite { line, column, .. } => {
            let row = (*line).saturating_sub(2) as usize;
            let message = e.to_string();
            let message = message
                .split_once(": ")
                .and_then(|(_, rest)| rest.split_once(": "))
                .map_or(message.clone(), |(_, rest)| rest.to_string());
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                .row(row)
                .column(column)
        }
        _ => ApiError::bad(e.to_string()),
    }
}

/// The documents of a text model's rows: each row must be `{"<text column>": "…"}`.
fn texts_of(info: &ModelInfo, rows: &[Map<String, Value>]) -> Result<Vec<String>, ApiError> {
    let column = &info.input[0].name;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            if let Some(unknown) = row.keys().find(|k| *k != column) {
                return Err(ApiError::bad(format!(
                    "unknown column `{unknown}`; the model takes one column, `{column}`"
                ))
                .row(i)
                .column(unknown));
            }
            match row.get(column) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ApiError::bad(format!(
                    "column `{column}`: expected a string, found {}",
                    type_name(other)
                ))
                .row(i)
                .column(column)),
                None => Err(ApiError::bad(format!("missing column `{column}`"))
                    .row(i)
                    .column(column)),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// The routes metrics are kept for (anything else counts as `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    Predict,
    Explain,
    Model,
    Health,
    Metrics,
    Other,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            "/v1/predict" => Route::Predict,
            "/v1/explain" => Route::Explain,
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
            Route::Model => "/v1/model",
            Route::Health => "/healthz",
            Route::Metrics => "/metrics",
            Route::Other => "other",
        }
    }
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
struct Metrics {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    latency: Mutex<BTreeMap<Route, Histogram>>,
    batches: Mutex<Histogram>,
    rows_scored: AtomicU64,
    rows_explained: AtomicU64,
    scoring_errors: AtomicU64,
}

impl Metrics {
    fn request(&self, route: Route, status: u16, elapsed: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            l.entry(route)
                .or_default()
                .observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
        }
    }

    fn batch(&self, rows: usize) {
        if let Ok(mut b) = self.batches.lock() {
            b.observe(&BATCH_BUCKETS, rows as f64);
        }
    }

    fn render(&self) -> String {
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
                "sora_scoring_errors_total",
                "Forward passes and explanations that failed inside the model (500 answers).",
                &self.scoring_errors,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What docs/architecture.md states: Burn 0.22.1's models and devices may be shared
    /// across threads (the server still gives the model one owner, for batching).
    #[test]
    fn models_and_devices_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<sora_core::Model<sora_core::Identity>>();
        shared::<TabularModel>();
        shared::<TextModel>();
        shared::<Device>();
    }

    #[test]
    fn a_panic_while_scoring_becomes_an_error() {
        let r: Result<(), String> = guarded(|| panic!("shape mismatch"));
        assert_eq!(
            r,
            Err("the model failed on these rows: shape mismatch".into())
        );
        assert_eq!(guarded(|| Ok(3)), Ok(3));
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

    #[test]
    fn rows_are_an_object_or_a_non_empty_array_within_the_limit() {
        let parse = |s: &str| -> Map<String, Value> { serde_json::from_str(s).unwrap() };
        assert_eq!(rows_of(&parse(r#"{"row": {"a": 1}}"#), 4).unwrap().len(), 1);
        assert_eq!(
            rows_of(&parse(r#"{"rows": [{"a": 1}, {"a": 2}]}"#), 4)
                .unwrap()
                .len(),
            2
        );
        let e = rows_of(&parse(r#"{"rows": []}"#), 4).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = rows_of(&parse(r#"{"rows": [{}, {}, {}]}"#), 2).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = rows_of(&parse(r#"{"rows": [{}, 3]}"#), 4).unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(rows_of(&parse(r#"{"row": {}, "rows": []}"#), 4).is_err());
    }
}
