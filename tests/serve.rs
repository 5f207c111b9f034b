//! `sora serve` as a user runs it: a child process on a free loopback port, spoken to over
//! plain HTTP/1.1 (`std::net::TcpStream`). Its answers equal `sora predict`'s for the same
//! rows; bad input gets a 4xx JSON answer naming the row and column and never stops the
//! server; SIGTERM lets a request in flight finish; listening on a reachable address without
//! an API key is warned about.

mod common;

use common::http::{Serve, http, parse, read_answer};
use common::{device, fails, ok};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const GERMAN: &str = "data/german_credit/german_credit.csv";

/// A German-credit model trained once for the whole file, and a CSV of 60 of its rows with
/// missing cells and an unseen category put in.
fn german() -> &'static (PathBuf, PathBuf) {
    static MODEL: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let dir = root.join("german");
        ok(&[
            "train",
            "--data",
            GERMAN,
            "--target",
            "class",
            "--seed",
            "3",
            "--epochs",
            "20",
            "--progress",
            "quiet",
            "--out",
            dir.to_str().unwrap(),
            "--device",
            &device(),
        ]);
        let text = std::fs::read_to_string(GERMAN).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let n_cols = header.split(',').count();
        let mut csv = format!("{header}\n");
        for (i, line) in lines.take(60).enumerate() {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if i % 3 == 0 {
                cells[i % (n_cols - 1)] = String::new(); // a missing value (not the target)
            }
            if i == 7 {
                cells[3] = "time machine".into(); // `purpose`: a category never seen
            }
            csv.push_str(&cells.join(","));
            csv.push('\n');
        }
        let rows = root.join("rows.csv");
        std::fs::write(&rows, csv).unwrap();
        (dir, rows)
    })
}

/// The CSV rows as JSON rows for the model: numbers for numeric columns, strings for
/// categorical ones, null for an empty cell; the target column left out.
fn json_rows(csv: &Path, model: &Value) -> Vec<Value> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let input = model["input"].as_array().unwrap();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let mut row = serde_json::Map::new();
            for column in input {
                let name = column["name"].as_str().unwrap();
                let cell = cells[header.iter().position(|h| *h == name).unwrap()];
                let value = if cell.is_empty() {
                    Value::Null
                } else if column["type"] == "number" {
                    json!(cell.parse::<f64>().unwrap())
                } else {
                    json!(cell)
                };
                row.insert(name.to_string(), value);
            }
            Value::Object(row)
        })
        .collect()
}

/// `sora predict`'s answer: per row, the label and the class probabilities.
fn cli_predictions(model: &Path, csv: &Path) -> Vec<(String, Vec<f64>)> {
    let out = ok(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--device",
        &device(),
    ]);
    out.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let p = cells[2..].iter().map(|c| c.parse().unwrap()).collect();
            (cells[1].to_string(), p)
        })
        .collect()
}

fn assert_same(server: &Value, cli: &(String, Vec<f64>), what: &str) {
    assert_eq!(server["label"], cli.0.as_str(), "{what}: {server}");
    let p: Vec<f64> = server["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), cli.1.len());
    for (a, b) in p.iter().zip(&cli.1) {
        // `sora predict` prints 6 decimals: up to 5e-7 of rounding, plus float noise.
        assert!((a - b).abs() <= 1e-6, "{what}: server {a} vs CLI {b}");
    }
}

#[test]
fn serve_answers_as_sora_predict_does() {
    let (model, rows) = german();
    let server = Serve::start(model, &[]);
    let (status, info) = server.get("/v1/model");
    assert_eq!(status, 200, "{info}");
    let info = parse(&info);
    assert_eq!(info["kind"], "tabular");
    assert_eq!(info["target"], "class");
    assert_eq!(info["classes"], json!(["bad", "good"]));
    assert!(
        info["metrics"]["accuracy"].as_f64().unwrap() > 0.5,
        "{info}"
    );
    let summary = info["summary"].as_str().unwrap();
    assert!(summary.contains("Total params"), "{summary}");
    let inputs: Vec<&str> = info["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.len(), 20, "{inputs:?}");
    assert!(!inputs.contains(&"class"));

    let cli = cli_predictions(model, rows);
    let json = json_rows(rows, &info);
    assert_eq!(cli.len(), 60);
    assert_eq!(json.len(), 60);

    // One batch of all the rows.
    let (status, answer) = server.post("/v1/predict", &json!({ "rows": json }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["classes"], json!(["bad", "good"]));
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 60);
    for (i, (s, c)) in predictions.iter().zip(&cli).enumerate() {
        assert_same(s, c, &format!("batch row {i}"));
    }
    // And one row per request.
    for i in [0, 3, 7, 8, 59] {
        let (status, answer) = server.post("/v1/predict", &json!({ "row": json[i] }));
        assert_eq!(status, 200, "{answer}");
        assert_same(
            &answer["predictions"][0],
            &cli[i],
            &format!("single row {i}"),
        );
    }
}

#[test]
fn explain_gives_attributions_per_raw_column() {
    let (model, rows) = german();
    let server = Serve::start(model, &[]);
    let info = parse(&server.get("/v1/model").1);
    let json = json_rows(rows, &info);
    let (_, predicted) = server.post("/v1/predict", &json!({ "rows": [json[0], json[1]] }));

    let (status, answer) = server.post("/v1/explain", &json!({ "rows": [json[0], json[1]] }));
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["method"]
            .as_str()
            .unwrap()
            .starts_with("Integrated Gradients"),
        "{answer}"
    );
    for i in 0..2 {
        let e = &answer["explanations"][i];
        assert_eq!(e["label"], predicted["predictions"][i]["label"], "{e}");
        assert_eq!(e["explained"], e["label"]);
        let p = &predicted["predictions"][i]["probabilities"];
        for c in 0..2 {
            let (a, b) = (e["probabilities"][c].as_f64(), p[c].as_f64());
            assert!((a.unwrap() - b.unwrap()).abs() <= 1e-6, "{e} vs {p}");
        }
        let columns: Vec<&str> = e["attributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["column"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = info["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, expected);
        // Integrated gradients with 50 Gauss–Legendre steps: attributions add up to the
        // logit difference from the baseline, up to the quadrature error.
        assert!(e["delta"].as_f64().unwrap().abs() < 0.1, "{e}");
    }
    // Row 0 has a missing `checking_status`: it is marked as imputed.
    let first = &answer["explanations"][0]["attributions"][0];
    assert_eq!(first["column"], "checking_status");
    assert_eq!(first["imputed"], true, "{first}");

    // Another method and another class.
    let (status, answer) = server.post(
        "/v1/explain",
        &json!({ "row": json[2], "method": "saliency", "target": "bad" }),
    );
    assert_eq!(status, 200, "{answer}");
    let e = &answer["explanations"][0];
    assert_eq!(e["explained"], "bad");
    assert!(
        e["attributions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["attribution"].as_f64().unwrap() >= 0.0),
        "saliency is |gradient|: {e}"
    );
}

/// A bad request: body, status, the row and column the answer names, words in its message.
type Case = (
    Vec<u8>,
    u16,
    Option<u64>,
    Option<&'static str>,
    &'static str,
);

#[test]
fn bad_input_gets_a_4xx_json_answer_naming_the_problem() {
    let (model, rows) = german();
    let server = Serve::start(model, &["--max-rows", "8", "--max-body-bytes", "16384"]);
    let info = parse(&server.get("/v1/model").1);
    assert_eq!(info["limits"]["max_rows"], 8);
    let good = json_rows(rows, &info)[1].clone();
    let with = |key: &str, value: Value| {
        let mut row = good.clone();
        row[key] = value;
        row
    };
    let mut no_age = good.clone();
    no_age.as_object_mut().unwrap().remove("age");

    let cases: Vec<Case> = vec![
        (b"{\"rows\": [".to_vec(), 400, None, None, "malformed JSON"),
        (b"\xff\xfe".to_vec(), 400, None, None, "malformed JSON"),
        (
            b"[1, 2]".to_vec(),
            400,
            None,
            None,
            "expected a JSON object",
        ),
        (b"{}".to_vec(), 400, None, None, "no rows"),
        (b"{\"rows\": []}".to_vec(), 400, None, None, "empty"),
        (
            b"{\"rows\": {}}".to_vec(),
            400,
            None,
            None,
            "expected an array",
        ),
        (
            json!({"rows": [good, 7]}).to_string().into_bytes(),
            400,
            Some(1),
            None,
            "expected a row object",
        ),
        (
            json!({"rows": [good, no_age]}).to_string().into_bytes(),
            400,
            Some(1),
            Some("age"),
            "missing column",
        ),
        (
            json!({"row": with("agee", json!(30))})
                .to_string()
                .into_bytes(),
            400,
            Some(0),
            Some("agee"),
            "unknown column",
        ),
        (
            json!({"row": with("class", json!("good"))})
                .to_string()
                .into_bytes(),
            400,
            Some(0),
            Some("class"),
            "target column",
        ),
        (
            json!({"rows": [good, good, with("age", json!("old"))]})
                .to_string()
                .into_bytes(),
            400,
            Some(2),
            Some("age"),
            "expected a number",
        ),
        (
            json!({"row": with("purpose", json!(["radio/tv"]))})
                .to_string()
                .into_bytes(),
            400,
            Some(0),
            Some("purpose"),
            "expected a string",
        ),
        (
            json!({"row": with("age", json!(1e300))})
                .to_string()
                .into_bytes(),
            422,
            Some(0),
            Some("age"),
            "finite",
        ),
        (
            json!({"row": good, "threshold": 0.5})
                .to_string()
                .into_bytes(),
            400,
            None,
            None,
            "unknown field",
        ),
        (
            json!({"rows": vec![good.clone(); 9]})
                .to_string()
                .into_bytes(),
            413,
            None,
            None,
            "--max-rows",
        ),
        (
            json!({"row": with("purpose", json!("x".repeat(20_000)))})
                .to_string()
                .into_bytes(),
            413,
            None,
            None,
            "size limit",
        ),
    ];
    for (body, status, row, column, words) in &cases {
        let (got, text) = http(server.addr, "POST", "/v1/predict", body);
        let shown = String::from_utf8_lossy(body);
        assert_eq!(got, *status, "{shown}: {text}");
        let answer = parse(&text);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(words), "{shown}: {answer}");
        assert_eq!(answer["row"].as_u64(), *row, "{shown}: {answer}");
        assert_eq!(answer["column"].as_str(), *column, "{shown}: {answer}");
    }

    // Explanation options are checked too.
    let (status, answer) = server.post("/v1/explain", &json!({"row": good, "method": "magic"}));
    assert_eq!((status, answer["field"].as_str()), (400, Some("method")));
    let (status, answer) = server.post("/v1/explain", &json!({"row": good, "target": "maybe"}));
    assert_eq!((status, answer["field"].as_str()), (400, Some("target")));
    let (status, answer) = server.post("/v1/explain", &json!({"row": good, "steps": 0}));
    assert_eq!((status, answer["field"].as_str()), (400, Some("steps")));

    // Unknown routes and methods.
    let (status, text) = http(server.addr, "GET", "/v2/predict", b"");
    assert_eq!(status, 404, "{text}");
    assert!(parse(&text)["error"].is_string());
    for (method, path) in [
        ("GET", "/v1/predict"),
        ("DELETE", "/v1/predict"),
        ("POST", "/healthz"),
    ] {
        let (status, text) = http(server.addr, method, path, b"");
        assert_eq!(status, 405, "{method} {path}: {text}");
        assert!(parse(&text)["error"].as_str().unwrap().contains(method));
    }

    // The server still answers, and counted all of it.
    let (status, answer) = server.post("/v1/predict", &json!({ "row": good }));
    assert_eq!(status, 200, "{answer}");
    let (status, health) = server.get("/healthz");
    assert_eq!((status, parse(&health)), (200, json!({"status": "ok"})));
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let count = |line: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert_eq!(
        count("sora_http_requests_total{route=\"/v1/predict\",status=\"400\"}"),
        13,
        "{metrics}"
    );
    assert_eq!(
        count("sora_http_requests_total{route=\"/v1/predict\",status=\"413\"}"),
        2
    );
    assert_eq!(
        count("sora_http_errors_total{route=\"/v1/predict\",class=\"client\"}"),
        16 + 2,
        "{metrics}"
    );
    assert_eq!(
        count("sora_http_requests_total{route=\"other\",status=\"404\"}"),
        1
    );
    // 16 bad bodies, GET and DELETE, and the good one.
    assert_eq!(
        count("sora_http_request_duration_seconds_count{route=\"/v1/predict\"}"),
        19
    );
    assert_eq!(
        count("sora_http_requests_total{route=\"/v1/explain\",status=\"400\"}"),
        3
    );
    assert_eq!(count("sora_rows_scored_total"), 1);
    assert_eq!(count("sora_scoring_errors_total"), 0);
}

#[test]
fn concurrent_requests_with_bad_ones_mixed_in() {
    let (model, rows) = german();
    let server = Serve::start(model, &["--batch-window-us", "500"]);
    let info = parse(&server.get("/v1/model").1);
    let json = json_rows(rows, &info);
    let cli = cli_predictions(model, rows);
    let addr = server.addr;
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (json, cli) = (&json, &cli);
            scope.spawn(move || {
                for k in 0..30 {
                    let i = (t * 30 + k) % 60;
                    if k % 4 == 3 {
                        let (status, text) = http(addr, "POST", "/v1/predict", b"{\"row\": nope}");
                        assert_eq!(status, 400, "{text}");
                    } else {
                        let body = json!({ "row": json[i] }).to_string();
                        let (status, text) = http(addr, "POST", "/v1/predict", body.as_bytes());
                        assert_eq!(status, 200, "{text}");
                        assert_same(&parse(&text)["predictions"][0], &cli[i], "concurrent");
                    }
                }
            });
        }
    });
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains("sora_http_requests_total{route=\"/v1/predict\",status=\"200\"} 184\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sora_rows_scored_total 184\n"),
        "{metrics}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let (model, rows) = german();
    let mut server = Serve::start(model, &[]);
    let info = parse(&server.get("/v1/model").1);
    let body = json!({ "row": json_rows(rows, &info)[0] }).to_string();
    let (head, tail) = body.split_at(body.len() / 2);

    // A request whose body is half sent when the signal comes.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The shell's own `kill`: no procps needed.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", server.child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(tail.as_bytes()).unwrap();
    let (status, text) = read_answer(stream);
    assert_eq!(status, 200, "{text}");
    assert!(parse(&text)["predictions"][0]["label"].is_string());

    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    server.stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    // No new connection is accepted.
    assert!(TcpStream::connect(server.addr).is_err());
}

/// `sora serve --addr addr` with `extra` options until it listens; then stopped. Its
/// standard error.
fn serve_stderr(addr: &str, extra: &[&str]) -> String {
    let (model, _) = german();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(["serve", "--model", model.to_str().unwrap(), "--addr", addr])
        .args(["--device", &device()])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("listening on") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "sora serve ended before listening");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[test]
fn a_reachable_address_without_an_api_key_is_warned_about() {
    let stderr = serve_stderr("0.0.0.0:0", &[]);
    assert!(
        stderr.contains("warning: listening on 0.0.0.0:"),
        "{stderr}"
    );
    assert!(stderr.contains("--api-key-file"), "{stderr}");
    let key = tempfile::tempdir().unwrap();
    let file = key.path().join("key");
    std::fs::write(&file, "0123456789abcdef\n").unwrap();
    let stderr = serve_stderr("0.0.0.0:0", &["--api-key-file", file.to_str().unwrap()]);
    assert!(!stderr.contains("warning"), "{stderr}");
    let stderr = serve_stderr("127.0.0.1:0", &[]);
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn directories_that_are_not_models_are_refused_at_start_naming_the_file() {
    // A Sora 0.1 image directory that is missing all but its input pipeline.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("input.json"), "{}").unwrap();
    let err = fails(&[
        "serve",
        "--model",
        root.path().to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(
        err.contains(&root.path().join("input.json").display().to_string()),
        "{err}"
    );
    let err = fails(&["serve", "--model", "no/such/dir", "--addr", "127.0.0.1:0"]);
    assert!(
        err.contains("no/such/dir: not a Sora model directory"),
        "{err}"
    );
}

#[test]
fn text_models_take_the_text_column() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("notes.csv");
    let mut csv = String::from("note,mood\n");
    let good = [
        "lovely day",
        "great food and lovely people",
        "so happy today",
        "a great film",
    ];
    let bad = [
        "awful rain",
        "terrible food and rude people",
        "so sad today",
        "an awful film",
    ];
    for i in 0..15 {
        csv.push_str(&format!("{} {i},happy\n", good[i % 4]));
        csv.push_str(&format!("{} {i},sad\n", bad[i % 4]));
    }
    std::fs::write(&data, &csv).unwrap();
    let dir = root.path().join("model");
    let (d, m) = (data.to_str().unwrap(), dir.to_str().unwrap());
    ok(&[
        "train",
        "--data",
        d,
        "--text",
        "note",
        "--target",
        "mood",
        "--epochs",
        "5",
        "--progress",
        "quiet",
        "--out",
        m,
        "--device",
        &device(),
    ]);
    let cli = cli_predictions(&dir, &data);
    let server = Serve::start(&dir, &[]);
    let info = parse(&server.get("/v1/model").1);
    assert_eq!(info["kind"], "text");
    assert_eq!(
        info["input"],
        json!([{"name": "note", "type": "text", "missing": "not accepted"}])
    );

    let notes: Vec<Value> = csv
        .lines()
        .skip(1)
        .map(|l| json!({ "note": l.split(',').next().unwrap() }))
        .collect();
    let (status, answer) = server.post("/v1/predict", &json!({ "rows": notes }));
    assert_eq!(status, 200, "{answer}");
    for (i, (s, c)) in answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&cli)
        .enumerate()
    {
        assert_same(s, c, &format!("note {i}"));
    }
    let (status, answer) = server.post("/v1/explain", &json!({ "row": {"note": "lovely food"} }));
    assert_eq!(status, 200, "{answer}");
    let tokens: Vec<&str> = answer["explanations"][0]["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["lovely", "food"]);

    let (status, answer) = server.post("/v1/predict", &json!({ "row": {"note": 3} }));
    assert_eq!(
        (status, answer["column"].as_str()),
        (400, Some("note")),
        "{answer}"
    );
    let (status, answer) = server.post("/v1/predict", &json!({ "row": {"text": "hi"} }));
    assert_eq!(
        (status, answer["column"].as_str()),
        (400, Some("text")),
        "{answer}"
    );
}

/// `/metrics` counts, per input column, what the predicted rows hold against the training
/// rows, and flags a column that drifted: here `duration`, sent empty in every row.
#[test]
fn metrics_say_which_input_columns_drift_from_the_training_data() {
    let (model, rows) = german();
    let server = Serve::start(model, &[]);
    let info = parse(&server.get("/v1/model").1);
    let mut json = json_rows(rows, &info);
    for row in &mut json {
        row["duration"] = Value::Null;
    }
    let (status, answer) = server.post("/v1/predict", &json!({ "rows": json[..40] }));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.post("/v1/predict", &json!({ "row": json[40] }));
    assert_eq!(status, 200, "{answer}");
    let metrics = server.get("/metrics").1;
    for line in [
        "sora_input_cells_total{column=\"duration\"} 41\n",
        "sora_input_missing_total{column=\"duration\"} 41\n",
        "sora_training_missing_ratio{column=\"duration\"} 0\n",
        "sora_input_drifted{column=\"duration\"} 1\n",
        "sora_input_cells_total{column=\"age\"} 41\n",
        "sora_input_drifted{column=\"age\"} 0\n",
    ] {
        assert!(metrics.contains(line), "{line:?} not in\n{metrics}");
    }
    let drifted = metrics
        .lines()
        .filter(|l| l.starts_with("sora_input_drifted{") && l.ends_with(" 1"))
        .count();
    assert_eq!(drifted, 1, "{metrics}");
}
