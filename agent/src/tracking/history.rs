//! `metrics/get-history`: one metric's points as the run logged them
//! (MLflow's `MlflowClient.get_metric_history`), read back from the run's
//! records a page at a time, so an answer's memory is bounded whatever the
//! run logged. A page token is the byte offset in the records where the
//! next page starts.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};

use moor_proto::tracking::{self, Record};

use super::store::ApiError;

/// The most points one page holds (MLflow's server pages by 25,000 too).
pub const PAGE: usize = 25_000;

/// The points of `key` logged into MLflow run `run`, from the page at
/// `page_token` (the first when none), at most `max_results` (at most
/// [`PAGE`]). A line being written (no newline yet) ends the page.
pub fn page(
    records: &Path,
    run: &str,
    key: &str,
    max_results: Option<&str>,
    page_token: Option<&str>,
) -> Result<Value, ApiError> {
    let number = |what: &str, text: &str| {
        text.parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("{what} {text:?} is not valid")))
    };
    let limit = match max_results {
        Some(text) => (number("max_results", text)? as usize).clamp(1, PAGE),
        None => PAGE,
    };
    let mut offset = match page_token.filter(|t| !t.is_empty()) {
        Some(token) => number("page_token", token)?,
        None => 0,
    };
    let io =
        |e: std::io::Error| ApiError::new(500, "INTERNAL_ERROR", format!("the run's records: {e}"));
    let mut file = File::open(records).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut metrics = Vec::new();
    while metrics.len() < limit {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        offset += n as u64;
        if let Some(Record::Metric {
            run: r,
            key: k,
            value,
            step,
            timestamp,
            ..
        }) = tracking::parse_line(&line)
        {
            if r == run && k == key {
                let value = tracking::float::serialize(&value, serde_json::value::Serializer)
                    .unwrap_or(Value::Null);
                metrics
                    .push(json!({"key": k, "value": value, "timestamp": timestamp, "step": step}));
            }
        }
    }
    let mut answer = json!({ "metrics": metrics });
    if metrics_full(&answer, limit) {
        answer["next_page_token"] = json!(offset.to_string());
    }
    Ok(answer)
}

fn metrics_full(answer: &Value, limit: usize) -> bool {
    answer["metrics"]
        .as_array()
        .is_some_and(|m| m.len() == limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(dir: &Path) -> std::path::PathBuf {
        let path = dir.join(tracking::FILE);
        let mut text = String::new();
        for step in 0..60 {
            for (run, key) in [("r", "loss"), ("r", "acc"), ("nested", "loss")] {
                text.push_str(&format!(
                    "{{\"t\":\"metric\",\"run\":\"{run}\",\"key\":\"{key}\",\"value\":{step},\"step\":{step},\"timestamp\":7}}\n"
                ));
            }
        }
        text.push_str("{\"t\":\"metric\",\"run\":\"r\",\"key\":\"loss\",\"value\":\"NaN\",\"step\":60,\"timestamp\":7}\n");
        // A last line being written: not read yet.
        text.push_str("{\"t\":\"metric\",\"run\":\"r\",\"key\":\"lo");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_metric_s_points_come_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = records(dir.path());
        let first = page(&path, "r", "loss", Some("25"), None).unwrap();
        assert_eq!(first["metrics"].as_array().unwrap().len(), 25);
        assert_eq!(
            first["metrics"][3],
            json!({"key": "loss", "value": 3.0, "timestamp": 7, "step": 3})
        );
        let token = first["next_page_token"].as_str().unwrap();
        let second = page(&path, "r", "loss", Some("25"), Some(token)).unwrap();
        assert_eq!(second["metrics"][0]["step"], 25);
        let token = second["next_page_token"].as_str().unwrap();
        let last = page(&path, "r", "loss", Some("25"), Some(token)).unwrap();
        let points = last["metrics"].as_array().unwrap();
        assert_eq!(points.len(), 11, "steps 50-59 and the NaN at 60");
        assert_eq!(points[10]["value"], "NaN");
        assert!(last.get("next_page_token").is_none());
        // Without max_results: one page of everything.
        let all = page(&path, "r", "loss", None, None).unwrap();
        assert_eq!(all["metrics"].as_array().unwrap().len(), 61);
        assert!(page(&path, "r", "loss", Some("x"), None).is_err());
        assert!(page(&path, "r", "loss", None, Some("-1")).is_err());
    }
}
