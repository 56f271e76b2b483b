//! A run's MLflow tracking endpoint over real HTTP on 127.0.0.1: the token
//! checked on every request, keep-alive, MLflow's error shape, and records
//! on disk before the answer. (The real MLflow client against it is in the
//! integration tests: `tests/it/mlflow.rs`.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code: u16 = status.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (code, String::from_utf8(body).unwrap())
}

#[test]
fn the_endpoint_takes_only_the_runs_token_and_keeps_what_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("log"), "").unwrap();
    let endpoint = moor_agent::tracking::start(dir.path(), "run-1", Some("sweep"), None).unwrap();
    let env = endpoint.env();
    assert_eq!(env["MLFLOW_RUN_ID"], "run-1");
    assert_eq!(env["MLFLOW_EXPERIMENT_NAME"], "sweep");
    let address = env["MLFLOW_TRACKING_URI"]
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let token = env["MLFLOW_TRACKING_TOKEN"].clone();
    assert!(token.len() >= 32);
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let get = "/api/2.0/mlflow/runs/get?run_id=run-1";
    let (code, body) = request(&mut stream, "GET", get, None, "");
    assert_eq!(code, 401, "{body}");
    assert!(
        body.contains("\"error_code\":\"UNAUTHENTICATED\""),
        "{body}"
    );
    let (code, _) = request(&mut stream, "GET", get, Some("0123"), "");
    assert_eq!(code, 401);
    // The same connection, kept alive, with the token.
    let (code, body) = request(&mut stream, "GET", get, Some(&token), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"run_id\":\"run-1\""), "{body}");
    let metric = r#"{"run_id":"run-1","key":"loss","value":0.25,"timestamp":5,"step":1}"#;
    let (code, body) = request(
        &mut stream,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(&token),
        metric,
    );
    assert_eq!((code, body.as_str()), (200, "{}"));
    let rank = moor_agent::tracking::rank_token(&token, 2);
    let (code, _) = request(
        &mut stream,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(&rank),
        metric,
    );
    assert_eq!(code, 200);
    let (code, body) = request(
        &mut stream,
        "GET",
        "/api/2.0/mlflow/artifacts/list",
        Some(&token),
        "",
    );
    assert_eq!(code, 404);
    assert!(body.contains("ENDPOINT_NOT_FOUND"), "{body}");
    let (code, _) = request(&mut stream, "GET", "/other", Some(&token), "");
    assert_eq!(code, 404);

    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let records: Vec<moor_proto::tracking::Record> = lines
        .lines()
        .map(|l| moor_proto::tracking::parse_line(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{lines}");
    match &records[1] {
        moor_proto::tracking::Record::Metric { rank, value, .. } => {
            assert_eq!((*rank, *value), (Some(2), 0.25));
        }
        other => panic!("{other:?}"),
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("metrics.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    endpoint.finish();
    let latest = std::fs::read_to_string(dir.path().join("metrics-latest.json")).unwrap();
    assert_eq!(latest.trim(), r#"{"loss":0.25}"#);
}
