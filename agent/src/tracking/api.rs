//! The part of MLflow's tracking REST API (2.0) that MLflow's client uses
//! for the fluent API and `autolog` (found by running the real client,
//! `mlflow-skinny` 3.17): runs (get, create, update, log-metric,
//! log-parameter, set-tag, delete-tag, log-batch, log-inputs, outputs,
//! log-model), experiments (get, get-by-name, create) and MLflow 3's logged
//! models (create, get, finalize, params, tags: [`super::models`]). Artifacts never come here:
//! a run's `artifact_uri` is a `file://` folder under its outputs, which
//! the client writes itself. Anything else is answered with MLflow's own
//! error shape (`ENDPOINT_NOT_FOUND`) and a line in the run's log.

use serde_json::{json, Value};

use moor_proto::tracking::{self, Record};

use super::store::{now_ms, ApiError, MlRun, Store};

/// Longest key MLflow takes.
const MAX_KEY: usize = 250;
/// Longest param value (MLflow's limit).
const MAX_PARAM_VALUE: usize = 6000;
/// Longest tag value (MLflow's limit).
const MAX_TAG_VALUE: usize = 8000;

/// Who sent a request: the rank of the process, if the run has several.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    /// The process's rank (from its token).
    pub rank: Option<u32>,
}

/// Answers one request: `path` is after `/api/2.0/mlflow/`, `query` the
/// URL's query, `body` the JSON body (may be empty).
pub fn handle(
    store: &mut Store,
    caller: Caller,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::new(400, "MALFORMED_REQUEST", format!("not JSON: {e}")))?
    };
    let args = Args {
        query: query_pairs(query),
        body: &body,
    };
    let segments: Vec<&str> = path.split('/').collect();
    if let ["logged-models", rest @ ..] = segments.as_slice() {
        if let Some(answer) = super::models::handle(store, method, rest, &body) {
            return answer;
        }
    }
    match (method, segments.as_slice()) {
        ("GET", ["runs", "get"]) => run_answer(store, &args.run_id()?),
        ("POST", ["runs", "create"]) => create_run(store, &args),
        ("POST", ["runs", "update"]) => update_run(store, &args),
        ("POST", ["runs", "log-metric"]) => {
            let run = args.known_run(store)?;
            let metric = metric(&run, args.body, caller)?;
            store.append(&[metric]).map(|()| json!({}))
        }
        ("POST", ["runs", "log-parameter"]) => {
            let run = args.known_run(store)?;
            let records = params(store, &run, std::slice::from_ref(args.body))?;
            store.append(&records).map(|()| json!({}))
        }
        ("POST", ["runs", "set-tag"]) => {
            let run = args.known_run(store)?;
            let tag = tag(&run, args.body)?;
            store.append(&[tag]).map(|()| json!({}))
        }
        ("POST", ["runs", "delete-tag"]) => {
            // Kept as an empty value: the records only ever grow.
            let run = args.known_run(store)?;
            let key = args.str("key")?;
            store
                .append(&[Record::Tag {
                    run,
                    key: key.to_owned(),
                    value: String::new(),
                }])
                .map(|()| json!({}))
        }
        ("POST", ["runs", "log-batch"]) => log_batch(store, &args, caller),
        ("POST", ["runs", "log-inputs"]) => log_inputs(store, &args),
        // Which models a run produced: the models are recorded when created.
        ("POST", ["runs", "outputs"]) | ("POST", ["runs", "log-model"]) => {
            args.known_run(store).map(|_| json!({}))
        }
        ("GET", ["metrics", "get-history"]) => {
            let run = args.known_run(store)?;
            super::history::page(
                &store.records_path(),
                &run,
                args.str("metric_key")?,
                args.str("max_results").ok(),
                args.str("page_token").ok(),
            )
        }
        ("GET", ["experiments", "get-by-name"]) => {
            let name = args.str("experiment_name")?;
            store
                .experiments
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(id, _)| json!({ "experiment": experiment(store, id) }))
                .ok_or_else(|| {
                    ApiError::missing(format!("Could not find experiment with name '{name}'"))
                })
        }
        ("GET", ["experiments", "get"]) => {
            let id = args.str("experiment_id")?;
            if store.experiments.contains_key(id) {
                Ok(json!({ "experiment": experiment(store, id) }))
            } else {
                Err(ApiError::missing(format!(
                    "No Experiment with id={id} exists"
                )))
            }
        }
        ("POST", ["experiments", "create"]) => {
            let name = args.str("name")?.to_owned();
            if store.experiments.values().any(|n| *n == name) {
                return Err(ApiError::new(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    format!("Experiment '{name}' already exists."),
                ));
            }
            let id = (store.experiments.len() as u64).to_string();
            store.append(&[Record::Experiment {
                id: id.clone(),
                name,
            }])?;
            Ok(json!({ "experiment_id": id }))
        }
        _ => {
            let what = format!("{method} /api/2.0/mlflow/{path}");
            store.note_once(&what, &format!("the run's MLflow client called {what}, which moor's tracking endpoint does not serve (answered ENDPOINT_NOT_FOUND)"));
            Err(ApiError::new(
                404,
                "ENDPOINT_NOT_FOUND",
                format!("moor's tracking endpoint does not serve {what}"),
            ))
        }
    }
}

/// A request's arguments: the query's for GET, the body's otherwise.
struct Args<'a> {
    query: Vec<(String, String)>,
    body: &'a Value,
}

impl Args<'_> {
    fn str(&self, name: &str) -> Result<&str, ApiError> {
        self.body[name]
            .as_str()
            .or_else(|| {
                self.query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
            .ok_or_else(|| {
                ApiError::invalid(format!("Missing value for required parameter '{name}'"))
            })
    }

    fn run_id(&self) -> Result<String, ApiError> {
        self.str("run_id")
            .or_else(|_| self.str("run_uuid"))
            .map(str::to_owned)
    }

    fn known_run(&self, store: &Store) -> Result<String, ApiError> {
        let id = self.run_id()?;
        if store.runs.contains_key(&id) {
            Ok(id)
        } else {
            Err(ApiError::no_run(&id))
        }
    }
}

/// A URL query's pairs, `%XX` and `+` decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn checked_key(key: Option<&str>) -> Result<String, ApiError> {
    match key {
        Some(k) if !k.is_empty() && k.len() <= MAX_KEY => Ok(k.to_owned()),
        Some(k) => Err(ApiError::invalid(format!(
            "key of {} characters (1 to {MAX_KEY})",
            k.len()
        ))),
        None => Err(ApiError::invalid(
            "Missing value for required parameter 'key'",
        )),
    }
}

fn metric(run: &str, m: &Value, caller: Caller) -> Result<Record, ApiError> {
    let value: f64 = tracking::float::deserialize(&m["value"])
        .map_err(|e| ApiError::invalid(format!("metric value: {e}")))?;
    Ok(Record::Metric {
        run: run.to_owned(),
        key: checked_key(m["key"].as_str())?,
        value,
        step: int(&m["step"]).unwrap_or(0),
        timestamp: int(&m["timestamp"]).unwrap_or_else(now_ms),
        rank: caller.rank,
    })
}

fn tag(run: &str, t: &Value) -> Result<Record, ApiError> {
    let value = t["value"].as_str().unwrap_or_default();
    if value.len() > MAX_TAG_VALUE {
        return Err(ApiError::invalid(format!(
            "tag value of {} characters (at most {MAX_TAG_VALUE})",
            value.len()
        )));
    }
    Ok(Record::Tag {
        run: run.to_owned(),
        key: checked_key(t["key"].as_str())?,
        value: value.to_owned(),
    })
}

/// Params as records; a param logged again with another value is refused,
/// as MLflow does (the same value again is not recorded twice).
fn params(store: &Store, run: &str, given: &[Value]) -> Result<Vec<Record>, ApiError> {
    let mut records = Vec::new();
    for p in given {
        let key = checked_key(p["key"].as_str())?;
        let value = p["value"].as_str().unwrap_or_default();
        if value.len() > MAX_PARAM_VALUE {
            return Err(ApiError::invalid(format!(
                "param value of {} characters (at most {MAX_PARAM_VALUE})",
                value.len()
            )));
        }
        match store.runs[run].params.get(&key) {
            Some(old) if old == value => continue,
            Some(old) => {
                return Err(ApiError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run}'. Attempted logging new value '{value}'."
                )))
            }
            None => records.push(Record::Param {
                run: run.to_owned(),
                key,
                value: value.to_owned(),
            }),
        }
    }
    Ok(records)
}

fn log_batch(store: &mut Store, args: &Args, caller: Caller) -> Result<Value, ApiError> {
    let run = args.known_run(store)?;
    let list = |name: &str| args.body[name].as_array().cloned().unwrap_or_default();
    let (metrics, given_params, tags) = (list("metrics"), list("params"), list("tags"));
    // MLflow's own batch limits.
    if metrics.len() > 1000 || given_params.len() > 100 || tags.len() > 100 {
        return Err(ApiError::invalid(
            "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags",
        ));
    }
    let mut records = params(store, &run, &given_params)?;
    for m in &metrics {
        records.push(metric(&run, m, caller)?);
    }
    for t in &tags {
        records.push(tag(&run, t)?);
    }
    store.append(&records).map(|()| json!({}))
}

fn log_inputs(store: &mut Store, args: &Args) -> Result<Value, ApiError> {
    let run = args.known_run(store)?;
    let mut records = Vec::new();
    for input in args.body["datasets"]
        .as_array()
        .into_iter()
        .flatten()
        .take(100)
    {
        let dataset = &input["dataset"];
        let context = input["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == "mlflow.data.context")
            .and_then(|t| t["value"].as_str())
            .map(str::to_owned);
        records.push(Record::Input {
            run: run.clone(),
            name: dataset["name"].as_str().unwrap_or("dataset").to_owned(),
            digest: dataset["digest"].as_str().unwrap_or_default().to_owned(),
            context,
        });
    }
    store.append(&records).map(|()| json!({}))
}

fn create_run(store: &mut Store, args: &Args) -> Result<Value, ApiError> {
    let experiment_id = args.body["experiment_id"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    if !store.experiments.contains_key(&experiment_id) {
        return Err(ApiError::missing(format!(
            "No Experiment with id={experiment_id} exists"
        )));
    }
    let id = crate::sys::random_hex(16);
    let name = args.body["run_name"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| id.clone());
    let mut records = vec![Record::Run {
        run: id.clone(),
        name: Some(name),
        status: Some("RUNNING".into()),
        start_time: Some(int(&args.body["start_time"]).unwrap_or_else(now_ms)),
        end_time: None,
        experiment_id: Some(experiment_id),
    }];
    for t in args.body["tags"].as_array().into_iter().flatten().take(100) {
        records.push(tag(&id, t)?);
    }
    // The run exists before its tags are taken in.
    store.append(&records[..1])?;
    store.append(&records[1..])?;
    run_answer(store, &id)
}

fn update_run(store: &mut Store, args: &Args) -> Result<Value, ApiError> {
    let run = args.known_run(store)?;
    store.append(&[Record::Run {
        run: run.clone(),
        name: args.body["run_name"].as_str().map(str::to_owned),
        status: args.body["status"].as_str().map(str::to_owned),
        start_time: None,
        end_time: int(&args.body["end_time"]),
        experiment_id: None,
    }])?;
    Ok(json!({ "run_info": run_info(store, &run, &store.runs[&run]) }))
}

fn run_info(store: &Store, id: &str, run: &MlRun) -> Value {
    let mut info = json!({
        "run_id": id,
        "run_uuid": id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.tags.get("mlflow.user").cloned().unwrap_or_default(),
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": store.artifact_uri(&format!("{id}/artifacts")),
        "lifecycle_stage": "active",
    });
    if let Some(end) = run.end_time {
        info["end_time"] = end.into();
    }
    info
}

fn run_answer(store: &Store, id: &str) -> Result<Value, ApiError> {
    let run = store.runs.get(id).ok_or_else(|| ApiError::no_run(id))?;
    let pairs = |map: &std::collections::BTreeMap<String, String>| -> Vec<Value> {
        map.iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect()
    };
    let metrics: Vec<Value> = run
        .latest
        .iter()
        .map(|(key, (value, step, timestamp))| {
            json!({ "key": key, "value": tracking::Latest(*value), "step": step, "timestamp": timestamp })
        })
        .collect();
    Ok(json!({ "run": {
        "info": run_info(store, id, run),
        "data": { "metrics": metrics, "params": pairs(&run.params), "tags": pairs(&run.tags) },
        "inputs": {},
    }}))
}

fn experiment(store: &Store, id: &str) -> Value {
    json!({
        "experiment_id": id,
        "name": store.experiments.get(id).cloned().unwrap_or_default(),
        "artifact_location": store.artifact_uri(&format!("experiments/{id}")),
        "lifecycle_stage": "active",
        "tags": [],
    })
}

#[cfg(test)]
mod tests;
