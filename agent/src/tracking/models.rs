//! MLflow 3's logged models, as `autolog` and `log_model` use them: created
//! pending (`POST logged-models`), read, finalized (`PATCH`), given params
//! and tags. A model's files never come here: its `artifact_uri` is
//! `outputs/mlflow/models/ID` of the run, which the client writes itself.

use serde_json::{json, Value};

use moor_proto::tracking::Record;

use super::store::{now_ms, ApiError, Store};

/// Answers a request under `logged-models/` (`rest`: the path after it);
/// `None` for one this endpoint does not serve.
pub fn handle(
    store: &mut Store,
    method: &str,
    rest: &[&str],
    body: &Value,
) -> Option<Result<Value, ApiError>> {
    Some(match (method, rest) {
        ("POST", []) => create(store, body),
        ("GET", [id]) => answer(store, id),
        ("PATCH", [id]) => finalize(store, id, body),
        ("POST", [id, "params"]) => {
            let params = body["params"].as_array().cloned().unwrap_or_default();
            match store.models.get_mut(*id) {
                Some(model) => {
                    take_params(&mut model.params, &params);
                    Ok(json!({}))
                }
                None => Err(no_model(id)),
            }
        }
        ("PATCH", [id, "tags"]) | ("DELETE", [id, "tags", _]) => store
            .models
            .get(*id)
            .map(|_| json!({}))
            .ok_or_else(|| no_model(id)),
        _ => return None,
    })
}

fn no_model(id: &str) -> ApiError {
    ApiError::missing(format!("Logged model with ID '{id}' not found"))
}

fn take_params(into: &mut std::collections::BTreeMap<String, String>, given: &[Value]) {
    for p in given.iter().take(1000) {
        if let (Some(k), Some(v)) = (p["key"].as_str(), p["value"].as_str()) {
            into.insert(k.to_owned(), v.to_owned());
        }
    }
}

fn create(store: &mut Store, body: &Value) -> Result<Value, ApiError> {
    let run = body["source_run_id"]
        .as_str()
        .unwrap_or(&store.main)
        .to_owned();
    if !store.runs.contains_key(&run) {
        return Err(ApiError::no_run(&run));
    }
    let id = format!("m-{}", crate::sys::random_hex(16));
    let name = body["name"].as_str().unwrap_or("model").to_owned();
    store.append(&[Record::Model {
        run,
        model_id: id.clone(),
        name,
        status: "LOGGED_MODEL_PENDING".into(),
    }])?;
    let params = body["params"].as_array().cloned().unwrap_or_default();
    if let Some(model) = store.models.get_mut(&id) {
        take_params(&mut model.params, &params);
    }
    answer(store, &id)
}

fn finalize(store: &mut Store, id: &str, body: &Value) -> Result<Value, ApiError> {
    let model = store.models.get(id).cloned().ok_or_else(|| no_model(id))?;
    let status = body["status"]
        .as_str()
        .unwrap_or("LOGGED_MODEL_READY")
        .to_owned();
    store.append(&[Record::Model {
        run: model.run,
        model_id: id.to_owned(),
        name: model.name,
        status,
    }])?;
    answer(store, id)
}

fn answer(store: &Store, id: &str) -> Result<Value, ApiError> {
    let model = store.models.get(id).ok_or_else(|| no_model(id))?;
    let params: Vec<Value> = model
        .params
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect();
    Ok(json!({ "model": {
        "info": {
            "model_id": id,
            "experiment_id": model.experiment_id,
            "name": model.name,
            "artifact_uri": store.artifact_uri(&format!("models/{id}")),
            "status": model.status,
            "creation_timestamp_ms": model.created,
            "last_updated_timestamp_ms": now_ms(),
            "source_run_id": model.run,
            "tags": [],
        },
        "data": { "params": params, "metrics": [] },
    }}))
}
