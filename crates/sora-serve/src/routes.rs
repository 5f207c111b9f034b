//! The routes: every request is checked here, on the HTTP threads, before it reaches the
//! scoring thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use sora_jobs::explain::{ExplainRequest, Method, Target};
use sora_jobs::{GenerateRequest, Input, OutputKind};

use crate::metrics::{Metrics, Route};
use crate::request::{
    ApiError, body_bytes, input_fields, input_of, json_body, one_or_many, parse_object, raw_file,
    type_name,
};
use crate::worker::{Arriving, Job, Piece};
use crate::{Shared, auth, timeouts};

const ROUTES: &str = "POST /v1/predict, POST /v1/explain, POST /v1/generate, POST /v1/recommend, GET /v1/model, GET /healthz, GET /metrics";

/// The routes, behind (outermost first) the metrics, CORS, the API key, the request
/// timeout, and the body's timeout and size limit.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    let metrics = Arc::clone(&shared.metrics);
    let cors = shared.cors.clone();
    let router = Router::new()
        .route("/v1/predict", post(predict_handler))
        .route("/v1/explain", post(explain_handler))
        .route("/v1/generate", post(generate_handler))
        .route("/v1/recommend", post(recommend_handler))
        .route("/v1/model", get(model_handler))
        .route("/healthz", get(health_handler))
        .route("/metrics", get(metrics_handler))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such route; routes: {ROUTES}"),
            )
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "method {} is not allowed on {}",
                    request.method(),
                    request.uri().path()
                ),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            timeouts::read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            timeouts::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::authenticate,
        ));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
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
    let mut value = shared.description.clone();
    let c = &shared.config;
    value["limits"] = json!({
        "max_body_bytes": c.max_body_bytes,
        "max_rows": c.max_rows,
        "max_batch_rows": c.max_batch_rows,
        "batch_window_us": c.batch_window_us,
        "header_timeout_ms": c.header_timeout_ms,
        "body_timeout_ms": c.body_timeout_ms,
        "request_timeout_ms": c.request_timeout_ms,
        "max_connections": c.max_connections,
        "api_key": shared.key.is_some(),
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

/// The input of a predict or explain request: a raw file upload, or a JSON body whose
/// other fields are `extra`.
fn read_input(
    shared: &Shared,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    extra: &[&str],
) -> Result<(Input, Map<String, Value>), ApiError> {
    let body = body_bytes(body)?;
    let info = shared.model.info();
    if let Some(file) = raw_file(headers, &body) {
        if !matches!(info.input, sora_jobs::InputSchema::Files { .. }) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{} models take JSON rows, not a file upload (Content-Type application/json)",
                    info.kind
                ),
            ));
        }
        return Ok((Input::Files(vec![file]), Map::new()));
    }
    let mut allowed: Vec<&str> = input_fields(info).to_vec();
    allowed.extend_from_slice(extra);
    let envelope = parse_object(&body, &allowed)?;
    let input = input_of(info, &envelope, shared.config.max_rows)?;
    Ok((input, envelope))
}

async fn predict_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arriving = Arriving::new(&shared.arriving);
    let (input, _) = read_input(&shared, &headers, body, &[])?;
    let n_asked = match &input {
        Input::Table(t) => t.n_rows(),
        Input::Files(f) => f.len(),
        Input::Path { .. } => 0,
    };
    let batch = shared
        .model
        .prepare(&input)
        .map_err(|e| ApiError::from_job(&e))?;
    if batch.len() < n_asked {
        // Rows the model leaves out (missing values, for a model trained without them).
        let kept: Vec<usize> = batch
            .keys
            .iter()
            .filter_map(|k| k.parse::<usize>().ok())
            .collect();
        let row = (1..=n_asked).find(|r| !kept.contains(r)).unwrap_or(1) - 1;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a missing value, and the model was trained with rows with missing values dropped",
        )
        .row(row));
    }
    if let Some(drift) = &batch.drift {
        shared.metrics.drift(drift);
    }
    let key = batch.key;
    let keys = batch.keys.clone();
    let n = batch.len();
    let (reply, answer) = tokio::sync::oneshot::channel();
    drop(arriving);
    shared
        .jobs
        .send(Job::Predict { batch, reply })
        .map_err(|_| ApiError::unavailable())?;
    let outputs = answer.await.map_err(|_| ApiError::unavailable())??;
    shared
        .metrics
        .rows_scored
        .fetch_add(n as u64, Ordering::Relaxed);
    let predictions: Vec<Value> = (0..outputs.len())
        .map(|i| {
            let mut row = outputs.row_json(i);
            if key != "row" {
                row[key] = json!(keys[i]);
            }
            row
        })
        .collect();
    let mut out = json!({ "predictions": predictions });
    if let OutputKind::Classes { classes } = &shared.model.info().output {
        out["classes"] = json!(classes);
    }
    Ok(json_body(&out).into_response())
}

/// A field of the envelope: absent or null gives `None`.
fn field<'a>(envelope: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    envelope.get(name).filter(|v| !v.is_null())
}

fn integer(
    envelope: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<usize>, ApiError> {
    field(envelope, name)
        .map(|v| {
            v.as_u64()
                .filter(|s| range.contains(s))
                .map(|s| s as usize)
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{name}: expected an integer in {}..={}, found {v}",
                        range.start(),
                        range.end()
                    ))
                    .field(name)
                })
        })
        .transpose()
}

fn string<'a>(envelope: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    field(envelope, name)
        .map(|v| {
            v.as_str().ok_or_else(|| {
                ApiError::bad(format!("{name}: expected a string, found {v}")).field(name)
            })
        })
        .transpose()
}

async fn explain_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let info = shared.model.info();
    let classes = info.classes().map(<[String]>::to_vec).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "explanations need a classification model; this one is a {} model",
                info.task()
            ),
        )
    })?;
    let (input, envelope) = read_input(
        &shared,
        &headers,
        body,
        &["method", "steps", "target", "layer", "patch"],
    )?;
    let mut request = ExplainRequest {
        permutation_repeats: 0,
        document: false,
        ..ExplainRequest::default()
    };
    if let Some(steps) = integer(&envelope, "steps", 1..=1000)? {
        request.steps = steps;
    }
    if let Some(patch) = integer(&envelope, "patch", 1..=4096)? {
        request.patch = patch;
    }
    request.layer = integer(&envelope, "layer", 0..=1000)?;
    if let Some(target) = string(&envelope, "target")? {
        request.target = target.parse().unwrap_or_default();
        if let Target::Class(c) = &request.target
            && !classes.contains(c)
        {
            return Err(ApiError::bad(format!(
                "target: expected \"predicted\" or a class ({}), found {c:?}",
                classes.join(", ")
            ))
            .field("target"));
        }
    }
    if let Some(method) = string(&envelope, "method")? {
        request.method = Some(
            method
                .parse::<Method>()
                .map_err(|e| ApiError::bad(e.to_string()).field("method"))?,
        );
    }
    // Every row of the request is explained.
    let n = match &input {
        Input::Table(t) => t.n_rows(),
        Input::Files(f) => f.len(),
        Input::Path { .. } => 0,
    };
    request.rows = Some(
        format!("1-{n}")
            .parse()
            .map_err(|e: sora_jobs::JobError| ApiError::bad(e.to_string()))?,
    );
    // Bad rows and options are refused before the queue.
    shared
        .model
        .prepare(&input)
        .map_err(|e| ApiError::from_job(&e))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .jobs
        .send(Job::Explain {
            input,
            request: Box::new(request),
            reply,
        })
        .map_err(|_| ApiError::unavailable())?;
    let explanation = answer.await.map_err(|_| ApiError::unavailable())??;
    shared
        .metrics
        .rows_explained
        .fetch_add(explanation.rows.len() as u64, Ordering::Relaxed);
    Ok(json_body(&json!({
        "classes": explanation.classes,
        "method": explanation.method,
        "explanations": explanation.rows,
    }))
    .into_response())
}

async fn generate_handler(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let info = shared.model.info();
    if !matches!(info.output, OutputKind::Text { .. }) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} models do not write text; POST /v1/generate is for language models",
                info.kind
            ),
        ));
    }
    let body = body_bytes(body)?;
    let request: GenerateRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "expected a JSON object of prompt, temperature, top_k, top_p, max_tokens, stop, seed: {e}"
        ))
    })?;
    request.check().map_err(|e| ApiError::from_job(&e))?;
    let (pieces, stream) = tokio::sync::mpsc::unbounded_channel();
    shared
        .jobs
        .send(Job::Generate { request, pieces })
        .map_err(|_| ApiError::unavailable())?;
    // One JSON object a line: a piece of text as it is written, then the totals.
    let lines = futures_util::stream::unfold((stream, false), |(mut stream, done)| async move {
        if done {
            return None;
        }
        let piece = stream.recv().await?;
        let (line, last) = match piece {
            Piece::Text(text) => (json!({ "text": text }), false),
            Piece::Done(g) => (
                json!({
                    "done": true,
                    "text": g.text,
                    "tokens": g.tokens,
                    "unknown": g.unknown,
                    "stopped": g.stopped,
                }),
                true,
            ),
            Piece::Failed(e) => (json!({ "error": e.message() }), true),
        };
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(bytes)),
            (stream, last),
        ))
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(lines),
    )
        .into_response())
}

async fn recommend_handler(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let info = shared.model.info();
    if !matches!(info.output, OutputKind::Ratings { .. }) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} models do not recommend items; POST /v1/recommend is for recommenders",
                info.kind
            ),
        ));
    }
    let body = body_bytes(body)?;
    let envelope = parse_object(&body, &["user", "users", "top", "because"])?;
    let users = one_or_many(&envelope, ("user", "users"), shared.config.max_rows)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if !s.is_empty() => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(ApiError::bad(format!(
                "users: expected a user id (a non-empty string or a number), found {}",
                type_name(&other)
            ))
            .row(i)
            .field("users")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let top = integer(&envelope, "top", 1..=1000)?.unwrap_or(10);
    let because = integer(&envelope, "because", 0..=100)?.unwrap_or(3);
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .jobs
        .send(Job::Recommend {
            users,
            top,
            because,
            reply,
        })
        .map_err(|_| ApiError::unavailable())?;
    let lists = answer.await.map_err(|_| ApiError::unavailable())??;
    Ok(json_body(&json!({ "recommendations": lists })).into_response())
}
