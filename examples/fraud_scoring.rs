//! Real-time scoring: the Taiwan credit-default model (as in `credit_risk`: 30,000 clients,
//! 22 % default; balanced class weights) behind `sora serve`'s HTTP API, fed the test split
//! one client per request, the way a payment system asks "approve or review?" for each
//! transaction.
//!
//! The model directory is trained and saved on the first run (`target/fraud-model`) and
//! loaded afterwards. The server runs in-process on a free loopback port; the client holds
//! one keep-alive connection and sends `POST /v1/predict` with one row at a time, waiting for
//! each answer. Printed: the first decisions, the decision counts against the truth, the
//! latency percentiles and the server's own metrics; the server is then stopped gracefully.
//!
//! ```text
//! cargo run --release --example fraud_scoring [-- --device ndarray --requests 2000 --retrain]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use sora::data::Table;
use sora::jobs::tabular::{ClassWeights, TabularConfig, prepare, train_prepared};
use sora::serve::{ServeConfig, Server};
use sora::train::Progress;

const TARGET: &str = "default_payment_next_month";
/// Clients whose probability of default is at least this are sent to manual review.
const REVIEW_AT: f64 = 0.5;

/// A minimal HTTP/1.1 client on one keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one request and reads the answer: status and JSON body.
    fn call(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        write!(
            self.writer,
            "{method} {path} HTTP/1.1\r\nHost: sora\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        self.writer.flush()?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP answer: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8(body)?))
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut device_name, mut requests, mut retrain) = ("flex".to_string(), usize::MAX, false);
    let mut dir = PathBuf::from("target/fraud-model");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device_name = args.next().unwrap_or_default(),
            "--requests" => requests = args.next().unwrap_or_default().parse()?,
            "--model" => dir = args.next().unwrap_or_default().into(),
            "--retrain" => retrain = true,
            other => anyhow::bail!(
                "unknown argument {other:?} (expected --device NAME, --requests N, --model DIR, --retrain)"
            ),
        }
    }
    let device = sora::device::device(&device_name)?;
    let file = sora::datasets::data_dir().join("credit_default_taiwan/credit_default.csv");
    let table = Table::read_csv(&file)?;
    let mut config = TabularConfig::new(TARGET);
    config.class_weights = ClassWeights::Balanced;
    config.train = config.train.with_progress(Progress::Quiet);
    // The same seeded split as training: the test rows were never seen by the model.
    let prepared = prepare(&table, &config)?;
    let test_rows = prepared.split.test.clone();
    if retrain || !dir.join("model.safetensors").is_file() {
        let start = Instant::now();
        let run = train_prepared(prepared, &config, &device)?;
        run.save(&dir)?;
        println!(
            "trained the credit-default model in {:.1} s (best epoch {}), saved {}",
            start.elapsed().as_secs_f64(),
            run.fitted.best_epoch,
            dir.display()
        );
    } else {
        println!("loading {}", dir.display());
    }

    // The server, in-process, on a free port; `stop` ends it gracefully.
    let server = Server::load(
        &dir,
        &device,
        ServeConfig {
            device_name: device_name.clone(),
            ..ServeConfig::default()
        },
    )?;
    let info = server.description().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(listener, async move {
        stopped.await.ok();
    }));
    println!(
        "serving on http://{addr}: {} inputs, {} parameters, test AUROC at training {:.4}",
        info["input"].as_array().map_or(0, Vec::len),
        info["parameters"],
        info["metrics"]["auroc"].as_f64().unwrap_or(f64::NAN)
    );

    // Each test client as the JSON row a payment system would send.
    let classes: Vec<String> = serde_json::from_value(info["classes"].clone()).unwrap_or_default();
    let default_class = classes
        .iter()
        .position(|c| c == "1")
        .context("class `1` (default)")?;
    let target_col = table.column_index(TARGET).context("target column")?;
    let columns: Vec<(usize, bool, String)> = info["input"]
        .as_array()
        .context("input columns")?
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let col = table.column_index(&name).expect("input column in the file");
            (col, c["type"] == "number", name)
        })
        .collect();
    let body = |row: usize| -> String {
        let mut map = Map::new();
        for (col, numeric, name) in &columns {
            let cell = table.cell(row, *col);
            let value = match (cell, numeric) {
                ("", _) => Value::Null,
                (c, true) => c.parse::<f64>().map_or(Value::Null, |v| json!(v)),
                (c, false) => json!(c),
            };
            map.insert(name.clone(), value);
        }
        json!({ "row": map }).to_string()
    };

    let mut client = Client::connect(addr)?;
    let n = test_rows.len().min(requests);
    let (mut latencies, mut matrix) = (Vec::with_capacity(n), [[0usize; 2]; 2]);
    println!(
        "\nstreaming {n} test clients, one request each (review when p(default) ≥ {REVIEW_AT}):"
    );
    println!(
        "{:>6}  {:>10}  {:>8}  {:>9}  {:>10}",
        "ID", "p(default)", "decision", "defaulted", "latency µs"
    );
    let started = Instant::now();
    for (k, &row) in test_rows.iter().take(n).enumerate() {
        let request = body(row);
        let sent = Instant::now();
        let (status, answer) = client.call("POST", "/v1/predict", &request)?;
        let latency = sent.elapsed();
        anyhow::ensure!(status == 200, "status {status}: {answer}");
        let answer: Value = serde_json::from_str(&answer)?;
        let p = answer["predictions"][0]["probabilities"][default_class]
            .as_f64()
            .context("probability")?;
        let review = p >= REVIEW_AT;
        let defaulted = table.cell(row, target_col) == "1";
        matrix[usize::from(defaulted)][usize::from(review)] += 1;
        latencies.push(latency);
        if k < 8 {
            println!(
                "{:>6}  {p:>10.3}  {:>8}  {:>9}  {:>10.0}",
                table.cell(row, 0),
                if review { "review" } else { "approve" },
                if defaulted { "yes" } else { "no" },
                latency.as_secs_f64() * 1e6
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let [[tn, fp], [fn_, tp]] = matrix;
    println!(
        "\ndecisions: {} approved, {} sent to review",
        tn + fn_,
        tp + fp
    );
    println!(
        "of the {} clients who defaulted, {tp} were sent to review (recall {:.3}); {:.1} % of the reviews were defaults (precision {:.3})",
        tp + fn_,
        tp as f64 / (tp + fn_).max(1) as f64,
        100.0 * tp as f64 / (tp + fp).max(1) as f64,
        tp as f64 / (tp + fp).max(1) as f64
    );
    latencies.sort();
    println!(
        "latency per request (client side, keep-alive, loopback): p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.0} requests/s over {n} sequential requests",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        n as f64 / wall
    );

    // One explanation, as a reviewer would ask for it.
    if let Some(&row) = test_rows.first() {
        let request = body(row).replacen("{\"row\"", "{\"method\":\"ig\",\"row\"", 1);
        let (status, answer) = client.call("POST", "/v1/explain", &request)?;
        anyhow::ensure!(status == 200, "status {status}: {answer}");
        let answer: Value = serde_json::from_str(&answer)?;
        let e = &answer["explanations"][0];
        let mut top: Vec<(&str, f64)> = e["attributions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["column"].as_str().unwrap_or(""),
                            x["attribution"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        println!(
            "\nwhy client {} got label {} (integrated gradients, strongest columns):",
            table.cell(row, 0),
            e["label"]
        );
        for (column, a) in top.iter().take(4) {
            println!("  {column:<10} {a:+.3}");
        }
    }

    let (_, metrics) = client.call("GET", "/metrics", "")?;
    println!("\nfrom GET /metrics:");
    for line in metrics.lines().filter(|l| {
        l.starts_with("sora_http_requests_total")
            || l.starts_with("sora_rows_scored_total")
            || l.starts_with("sora_batch_rows_count")
            || l.starts_with(
                "sora_http_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.001\"}",
            )
    }) {
        println!("  {line}");
    }
    drop(client);
    stop.send(()).ok();
    runtime.block_on(serving)??;
    println!("server stopped");
    Ok(())
}
