//! The API answered as MLflow's client calls it (the calls seen from
//! `mlflow-skinny` 3.17 for the fluent API, autolog and nested runs).

use super::*;

fn store(dir: &std::path::Path) -> Store {
    std::fs::write(dir.join(crate::runs::files::LOG), "").unwrap();
    Store::open(dir, "20261130T120000-abcd", Some("sweep"), "me").unwrap()
}

fn call(store: &mut Store, method: &str, path: &str, query: &str, body: &str) -> Value {
    handle(
        store,
        Caller::default(),
        method,
        path,
        query,
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

fn records(dir: &std::path::Path) -> Vec<Record> {
    std::fs::read_to_string(dir.join(tracking::FILE))
        .unwrap()
        .lines()
        .map(|l| tracking::parse_line(l.as_bytes()).unwrap())
        .collect()
}

#[test]
fn the_fluent_api_resumes_the_moor_run_and_logs_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let id = "20261130T120000-abcd";
    let q = format!("run_uuid={id}&run_id={id}");
    let run = call(&mut s, "GET", "runs/get", &q, "");
    assert_eq!(run["run"]["info"]["run_id"], id);
    assert_eq!(run["run"]["info"]["experiment_id"], "1");
    assert!(run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/outputs/mlflow/{id}/artifacts")));
    call(
        &mut s,
        "POST",
        "runs/update",
        "",
        &format!(r#"{{"run_id":"{id}","status":"RUNNING"}}"#),
    );
    call(
        &mut s,
        "POST",
        "runs/log-parameter",
        "",
        &format!(r#"{{"run_id":"{id}","key":"lr","value":"0.1"}}"#),
    );
    // The same value again is fine; another one is refused, as MLflow does.
    call(
        &mut s,
        "POST",
        "runs/log-parameter",
        "",
        &format!(r#"{{"run_id":"{id}","key":"lr","value":"0.1"}}"#),
    );
    let changed = handle(
        &mut s,
        Caller::default(),
        "POST",
        "runs/log-parameter",
        "",
        format!(r#"{{"run_id":"{id}","key":"lr","value":"0.2"}}"#).as_bytes(),
    );
    assert_eq!(changed.unwrap_err().code, "INVALID_PARAMETER_VALUE");
    for step in 0..3 {
        call(
            &mut s,
            "POST",
            "runs/log-metric",
            "",
            &format!(
                r#"{{"run_id":"{id}","key":"loss","value":{},"timestamp":17,"step":{step}}}"#,
                1.0 / f64::from(step + 1)
            ),
        );
    }
    call(
        &mut s,
        "POST",
        "runs/log-metric",
        "",
        &format!(r#"{{"run_id":"{id}","key":"x","value":"NaN","timestamp":"18","step":"0"}}"#),
    );
    call(
        &mut s,
        "POST",
        "runs/set-tag",
        "",
        &format!(r#"{{"run_id":"{id}","key":"t","value":"v"}}"#),
    );
    let run = call(&mut s, "GET", "runs/get", &q, "");
    let data = &run["run"]["data"];
    assert_eq!(data["params"], json!([{"key": "lr", "value": "0.1"}]));
    assert!(data["tags"]
        .as_array()
        .unwrap()
        .contains(&json!({"key": "t", "value": "v"})));
    let loss = data["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "loss")
        .unwrap();
    assert_eq!(
        (loss["step"].as_i64(), loss["value"].as_f64()),
        (Some(2), Some(1.0 / 3.0))
    );
    call(
        &mut s,
        "POST",
        "runs/update",
        "",
        &format!(r#"{{"run_id":"{id}","status":"FINISHED","end_time":99}}"#),
    );
    let kept = records(dir.path());
    assert_eq!(
        kept.iter()
            .filter(|r| matches!(r, Record::Metric { .. }))
            .count(),
        4
    );
    assert_eq!(
        kept.iter()
            .filter(|r| matches!(r, Record::Param { .. }))
            .count(),
        1
    );
    let mut summary = tracking::Summary::default();
    kept.iter().for_each(|r| summary.add(r));
    assert_eq!(summary.status.as_deref(), Some("FINISHED"));
    assert!(summary.metrics["x"].last.is_nan());
}

#[test]
fn autolog_batches_inputs_and_logged_models_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let id = s.main.clone();
    call(
        &mut s,
        "POST",
        "runs/log-batch",
        "",
        &format!(
            r#"{{"run_id":"{id}","params":[{{"key":"C","value":"1.0"}}],"metrics":[{{"key":"training_score","value":0.97,"timestamp":1,"step":0,"dataset_name":"dataset","model_id":"m-1"}}],"tags":[{{"key":"estimator_name","value":"LogisticRegression"}}]}}"#
        ),
    );
    call(
        &mut s,
        "POST",
        "runs/log-inputs",
        "",
        &format!(
            r#"{{"run_id":"{id}","datasets":[{{"tags":[{{"key":"mlflow.data.context","value":"train"}}],"dataset":{{"name":"dataset","digest":"2bf3ace3","source_type":"code"}}}}]}}"#
        ),
    );
    let model = call(
        &mut s,
        "POST",
        "logged-models",
        "",
        &format!(
            r#"{{"experiment_id":"1","name":"model","source_run_id":"{id}","params":[{{"key":"C","value":"1.0"}}]}}"#
        ),
    );
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(model["model"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/outputs/mlflow/models/{model_id}")));
    call(
        &mut s,
        "POST",
        "runs/outputs",
        "",
        &format!(r#"{{"run_id":"{id}","models":[{{"model_id":"{model_id}","step":0}}]}}"#),
    );
    let got = call(&mut s, "GET", &format!("logged-models/{model_id}"), "", "");
    assert_eq!(got["model"]["info"]["status"], "LOGGED_MODEL_PENDING");
    let done = call(
        &mut s,
        "PATCH",
        &format!("logged-models/{model_id}"),
        "",
        r#"{"status":"LOGGED_MODEL_READY"}"#,
    );
    assert_eq!(done["model"]["info"]["status"], "LOGGED_MODEL_READY");
    let mut summary = tracking::Summary::default();
    records(dir.path()).iter().for_each(|r| summary.add(r));
    assert_eq!(summary.params["C"], "1.0");
    assert_eq!(summary.metrics["training_score"].last, 0.97);
    assert_eq!(summary.inputs["dataset"], "2bf3ace3");
    assert_eq!(summary.models[&model_id], "model");
}

#[test]
fn nested_runs_and_experiments_are_made_and_unknown_calls_are_named_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let by_name = call(
        &mut s,
        "GET",
        "experiments/get-by-name",
        "experiment_name=sweep",
        "",
    );
    assert_eq!(by_name["experiment"]["experiment_id"], "1");
    let missing = handle(
        &mut s,
        Caller::default(),
        "GET",
        "experiments/get-by-name",
        "experiment_name=other+one",
        b"",
    );
    assert_eq!(missing.unwrap_err().code, "RESOURCE_DOES_NOT_EXIST");
    let made = call(
        &mut s,
        "POST",
        "experiments/create",
        "",
        r#"{"name":"other one"}"#,
    );
    let eid = made["experiment_id"].as_str().unwrap().to_owned();
    let found = call(
        &mut s,
        "GET",
        "experiments/get-by-name",
        "experiment_name=other%20one",
        "",
    );
    assert_eq!(found["experiment"]["experiment_id"], eid.as_str());
    let parent = s.main.clone();
    let child = call(
        &mut s,
        "POST",
        "runs/create",
        "",
        &format!(
            r#"{{"experiment_id":"{eid}","run_name":"second","start_time":5,"tags":[{{"key":"mlflow.parentRunId","value":"{parent}"}}]}}"#
        ),
    );
    let child_id = child["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(child["run"]["info"]["run_name"], "second");
    call(
        &mut s,
        "POST",
        "runs/log-metric",
        "",
        &format!(r#"{{"run_id":"{child_id}","key":"acc","value":0.5,"timestamp":1}}"#),
    );
    let no_run = handle(
        &mut s,
        Caller::default(),
        "POST",
        "runs/log-metric",
        "",
        br#"{"run_id":"nope","key":"acc","value":0.5}"#,
    );
    assert_eq!(no_run.unwrap_err().code, "RESOURCE_DOES_NOT_EXIST");
    let unknown = handle(&mut s, Caller::default(), "POST", "runs/search", "", b"{}");
    assert_eq!(unknown.unwrap_err().code, "ENDPOINT_NOT_FOUND");
    handle(&mut s, Caller::default(), "POST", "runs/search", "", b"{}").unwrap_err();
    let log = std::fs::read_to_string(dir.path().join(crate::runs::files::LOG)).unwrap();
    assert_eq!(
        log.matches("POST /api/2.0/mlflow/runs/search").count(),
        1,
        "{log}"
    );
    let bad = handle(
        &mut s,
        Caller::default(),
        "POST",
        "runs/log-metric",
        "",
        b"{not json",
    );
    assert_eq!(bad.unwrap_err().status, 400);
}

#[test]
fn a_ranks_points_carry_its_rank() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let id = s.main.clone();
    handle(
        &mut s,
        Caller { rank: Some(3) },
        "POST",
        "runs/log-metric",
        "",
        format!(r#"{{"run_id":"{id}","key":"loss","value":1,"timestamp":1}}"#).as_bytes(),
    )
    .unwrap();
    match &records(dir.path())[0] {
        Record::Metric { rank, .. } => assert_eq!(*rank, Some(3)),
        other => panic!("{other:?}"),
    }
}
