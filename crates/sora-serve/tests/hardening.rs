//! The server under abuse, over real sockets on loopback: bodies and heads that never
//! arrive, more connections than the limit, requests over their time, missing and wrong API
//! keys, cross-origin requests. Every wait is bounded; timings are checked only loosely.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sora_jobs::tabular::{TabularConfig, train};
use sora_serve::{ServeConfig, Server};

/// The longest any answer or close is waited for: far over every timeout set here.
const PATIENCE: Duration = Duration::from_secs(15);

/// A tiny model (y is 1 when x > 0), trained once for the whole file.
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut csv = String::from("x,y\n");
        for i in 0..60 {
            let x = f64::from(i) / 10.0 - 3.0;
            csv.push_str(&format!("{x},{}\n", u8::from(x > 0.0)));
        }
        let table = sora_data::Table::from_reader(csv.as_bytes(), "toy.csv").unwrap();
        let mut config = TabularConfig::new("y");
        config.train.progress = sora_train::Progress::Quiet;
        let dir = tempfile::tempdir().unwrap().keep().join("model");
        train(&table, &config, &burn::tensor::Device::flex())
            .unwrap()
            .save(&dir)
            .unwrap();
        dir
    })
}

/// A server on a free loopback port, stopped when dropped.
struct Running {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _runtime: tokio::runtime::Runtime,
}

fn start(config: ServeConfig) -> Running {
    let server = Server::load(model(), &burn::tensor::Device::flex(), config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(server.run(listener, async move {
        stopped.await.ok();
    }));
    Running {
        addr,
        _stop: stop,
        _runtime: runtime,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// One answer: the status, the head (names lowercased) and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Reads one answer (a head and a `Content-Length` body) within [`PATIENCE`].
fn read_answer(stream: &TcpStream) -> Answer {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("closed before an answer; head so far: {head:?}"),
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
            Err(e) => panic!("no answer within {PATIENCE:?}: {e}"),
        }
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let mut answer = Answer {
        status,
        head,
        body: String::new(),
    };
    let length: usize = answer
        .header("content-length")
        .map_or(0, |n| n.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    answer.body = String::from_utf8(body).unwrap();
    answer
}

/// Sends `request` on a fresh connection; its answer.
fn exchange(addr: SocketAddr, request: &str) -> Answer {
    let mut stream = connect(addr);
    stream.write_all(request.as_bytes()).unwrap();
    read_answer(&stream)
}

/// A request with `headers` (each ending in `\r\n`) and `body`.
fn request(method: &str, path: &str, headers: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

const ROW: &str = r#"{"row": {"x": 1.5}}"#;

/// How long until the server closes `stream`, reading (and dropping) whatever it sends;
/// panics after [`PATIENCE`].
fn time_to_close(mut stream: TcpStream, since: Instant) -> Duration {
    let mut sink = [0; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return since.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", since.elapsed()),
        }
    }
}

fn metric(addr: SocketAddr, line_start: &str) -> u64 {
    let answer = exchange(addr, &request("GET", "/metrics", "", ""));
    assert_eq!(answer.status, 200, "{answer:?}");
    let line = answer
        .body
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{}", answer.body));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits (within [`PATIENCE`]) for a metric counted as a connection ends to reach `value`.
fn settles_at(addr: SocketAddr, line_start: &str, value: u64) {
    let start = Instant::now();
    loop {
        let now = metric(addr, line_start);
        if now == value {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{line_start} is {now}, not {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_body_that_never_arrives_is_answered_408_and_closed_within_the_body_timeout() {
    let server = start(ServeConfig {
        body_timeout_ms: 500,
        ..ServeConfig::default()
    });
    let mut stream = connect(server.addr);
    let sent = Instant::now();
    write!(
        stream,
        "POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n{{\"row\": {{"
    )
    .unwrap();
    let answer = read_answer(&stream);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("--body-timeout-ms"),
        "{answer:?}"
    );
    let closed = time_to_close(stream, sent);
    assert!(closed >= Duration::from_millis(450), "{closed:?}");
    assert_eq!(
        metric(server.addr, "sora_timeouts_total{stage=\"body\"}"),
        1
    );
    // The server still answers.
    let answer = exchange(server.addr, &request("POST", "/v1/predict", "", ROW));
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn a_head_trickled_byte_by_byte_is_closed_after_the_header_timeout() {
    let server = start(ServeConfig {
        header_timeout_ms: 500,
        ..ServeConfig::default()
    });
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let mut sink = [0; 1024];
    // A header byte every 50 ms: each read of the server gets something, the head never ends.
    let closed = loop {
        assert!(start.elapsed() < PATIENCE, "still open after {PATIENCE:?}");
        if stream.write_all(b"X").is_err() {
            break start.elapsed();
        }
        match stream.read(&mut sink) {
            Ok(0) => break start.elapsed(),
            Ok(_) => {} // hyper's 408 before it closes
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break start.elapsed(), // reset
        }
    };
    assert!(closed >= Duration::from_millis(450), "{closed:?}");
    settles_at(server.addr, "sora_timeouts_total{stage=\"header\"}", 1);
}

#[test]
fn a_kept_alive_connection_idle_past_the_header_timeout_is_closed() {
    let server = start(ServeConfig {
        header_timeout_ms: 500,
        ..ServeConfig::default()
    });
    let mut stream = connect(server.addr);
    let keep_alive = format!(
        "POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{ROW}",
        ROW.len()
    );
    for _ in 0..2 {
        stream.write_all(keep_alive.as_bytes()).unwrap();
        let answer = read_answer(&stream);
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let idle = time_to_close(stream, Instant::now());
    assert!(idle >= Duration::from_millis(400), "{idle:?}");
}

#[test]
fn at_the_connection_limit_new_connections_wait_until_the_header_timeout_frees_slots() {
    let server = start(ServeConfig {
        max_connections: 8,
        header_timeout_ms: 500,
        ..ServeConfig::default()
    });
    let opened = Instant::now();
    // Eight connections that hold a slot: four silent, four halfway through a head.
    let held: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut stream = connect(server.addr);
            if i % 2 == 1 {
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
                    .unwrap();
            }
            stream
        })
        .collect();
    let answer = exchange(server.addr, &request("GET", "/healthz", "", ""));
    let waited = opened.elapsed();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["status"], "ok");
    // It waited for the held connections to time out.
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    for stream in held {
        let closed = time_to_close(stream, opened);
        assert!(closed < PATIENCE, "{closed:?}");
    }
    assert!(metric(server.addr, "sora_connection_limit_reached_total") >= 1);
    // Silent or halfway through a head, all eight ran out of time for their head.
    settles_at(server.addr, "sora_timeouts_total{stage=\"header\"}", 8);
    // This /metrics request's own connection is the one left open.
    settles_at(server.addr, "sora_connections_open", 1);
}

#[test]
fn a_request_not_answered_within_the_request_timeout_gets_a_json_503() {
    let server = start(ServeConfig {
        request_timeout_ms: 300,
        body_timeout_ms: 60_000,
        ..ServeConfig::default()
    });
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let sent = Instant::now();
    let answer = read_answer(&stream);
    assert!(sent.elapsed() >= Duration::from_millis(250));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let error = answer.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("--request-timeout-ms"), "{error}");
    assert_eq!(
        metric(server.addr, "sora_timeouts_total{stage=\"request\"}"),
        1
    );
}

#[test]
fn with_an_api_key_every_route_but_healthz_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "k3y-0123456789abcdef\n").unwrap();
    let server = start(ServeConfig {
        api_key_file: Some(key_file),
        ..ServeConfig::default()
    });
    let right = "Authorization: Bearer k3y-0123456789abcdef\r\n";

    let health = exchange(server.addr, &request("GET", "/healthz", "", ""));
    assert_eq!(health.status, 200, "{health:?}");

    for (headers, why) in [
        ("", "needs an API key"),
        (
            "Authorization: Bearer k3y-0123456789abcdeF\r\n",
            "wrong API key",
        ),
        ("Authorization: Bearer k3y\r\n", "wrong API key"),
        ("Authorization: Basic azN5\r\n", "not `Bearer <key>`"),
    ] {
        let answer = exchange(server.addr, &request("POST", "/v1/predict", headers, ROW));
        assert_eq!(answer.status, 401, "{headers}: {answer:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(why), "{headers}: {error}");
    }
    let model = exchange(server.addr, &request("GET", "/v1/model", "", ""));
    assert_eq!(model.status, 401, "{model:?}");

    let answer = exchange(server.addr, &request("POST", "/v1/predict", right, ROW));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["predictions"][0]["label"], "1");
    let metrics = exchange(server.addr, &request("GET", "/metrics", right, ""));
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics.body.contains("\nsora_unauthorized_total 5\n"),
        "{}",
        metrics.body
    );
}

#[test]
fn an_unusable_api_key_file_stops_the_server_from_starting_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-key");
    std::fs::write(&empty, "\n").unwrap();
    for path in [empty, dir.path().to_path_buf()] {
        let config = ServeConfig {
            api_key_file: Some(path.clone()),
            ..ServeConfig::default()
        };
        let err = Server::load(model(), &burn::tensor::Device::flex(), config).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, sora_serve::ServeError::ApiKey { .. }),
            "{text}"
        );
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}

#[test]
fn only_a_server_without_a_key_on_a_reachable_address_is_warned_about() {
    let anywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let open = Server::load(
        model(),
        &burn::tensor::Device::flex(),
        ServeConfig::default(),
    )
    .unwrap();
    let warning = open.exposure_warning(anywhere).unwrap();
    assert!(warning.contains("--api-key-file"), "{warning}");
    assert!(
        open.exposure_warning("127.0.0.1:8080".parse().unwrap())
            .is_none()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "secret").unwrap();
    let config = ServeConfig {
        api_key_file: Some(dir.path().join("key")),
        ..ServeConfig::default()
    };
    let guarded = Server::load(model(), &burn::tensor::Device::flex(), config).unwrap();
    assert!(guarded.exposure_warning(anywhere).is_none());
}

#[test]
fn cors_headers_go_to_the_configured_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "secret").unwrap();
    let server = start(ServeConfig {
        cors_origins: vec!["https://app.example".into()],
        api_key_file: Some(dir.path().join("key")),
        ..ServeConfig::default()
    });
    // The preflight carries no key, and is answered.
    let preflight = exchange(
        server.addr,
        &request(
            "OPTIONS",
            "/v1/predict",
            "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: authorization, content-type\r\n",
            "",
        ),
    );
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = preflight.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = preflight.header("access-control-allow-headers").unwrap();
    assert!(headers.contains("authorization"), "{headers}");

    let from = |origin: &str| {
        let headers = format!("Origin: {origin}\r\nAuthorization: Bearer secret\r\n");
        exchange(server.addr, &request("POST", "/v1/predict", &headers, ROW))
    };
    let answer = from("https://app.example");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let answer = from("https://elsewhere.example");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[test]
fn without_cors_origins_no_cors_header_is_sent() {
    let server = start(ServeConfig::default());
    let headers = "Origin: https://app.example\r\n";
    let answer = exchange(server.addr, &request("POST", "/v1/predict", headers, ROW));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let preflight = exchange(
        server.addr,
        &request(
            "OPTIONS",
            "/v1/predict",
            "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n",
            "",
        ),
    );
    assert_eq!(preflight.status, 405, "{preflight:?}");
    assert_eq!(preflight.header("access-control-allow-origin"), None);
}
