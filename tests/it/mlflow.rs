//! MLflow from unmodified training code, against real test hosts and the
//! real MLflow client (`mlflow-skinny` 3.17 from a wheelhouse, in a pip
//! environment the agent builds): the fluent API's params, a loss over 50
//! steps, tags and an artifact; `mlflow.sklearn.autolog()` with its logged
//! model; `moor metrics` returning exactly what was logged; `moor runs
//! --sort`; a request without the run's token refused; an API moor does not
//! serve named in the run's log; and a job's ranks each logging, tagged
//! with their node and rank.

use moor_tests::packages::{mlflow_wheelhouse, MLFLOW_REQUIREMENTS, SKLEARN_REQUIREMENTS};
use moor_tests::{assert_exit, docker_or_skip, heavy, source_dir as src, Cluster, HostSpec, Moor};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

const FLUENT: &str = r#"import json, os, sys, urllib.request, urllib.error
import mlflow
lr = float(sys.argv[1])
with mlflow.start_run() as run:
    print("mlflow run", run.info.run_id, "experiment", mlflow.get_experiment(run.info.experiment_id).name, flush=True)
    mlflow.log_params({"lr": lr, "epochs": 50})
    for step in range(50):
        mlflow.log_metric("loss", lr * 10 / (step + 1), step=step)
    mlflow.set_tag("stage", "test")
    mlflow.log_text("hello from the run", "notes.txt")
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    print("history", len(history), history[-1].step, history[-1].value, flush=True)
uri = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/get?run_id=" + os.environ["MOOR_RUN_ID"]
try:
    urllib.request.urlopen(uri, timeout=10)
    print("no token: let in", flush=True)
except urllib.error.HTTPError as e:
    print("no token:", e.code, json.load(e)["error_code"], flush=True)
search = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/search", data=b"{}", method="POST",
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "Content-Type": "application/json"})
try:
    urllib.request.urlopen(search, timeout=10)
except urllib.error.HTTPError as e:
    print("search:", e.code, json.load(e)["error_code"], flush=True)
"#;

const AUTOLOG: &str = r#"import mlflow, mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
mlflow.sklearn.autolog()
X, y = load_iris(return_X_y=True)
with mlflow.start_run():
    LogisticRegression(max_iter=500, C=0.5).fit(X, y)
"#;

const SLOW: &str = r#"import time, mlflow
with mlflow.start_run():
    for step in range(5):
        mlflow.log_metric("loss", 5 - step, step=step)
        time.sleep(0.5)
"#;

const RANKS: &str = r#"import os, mlflow
rank = int(os.environ["RANK"])
with mlflow.start_run():
    for step in range(5):
        mlflow.log_metric("loss", rank * 10 + step, step=step)
"#;

fn run(moor: &Moor, args: &[&str]) -> (String, serde_json::Value) {
    let out = moor.run(args);
    assert_exit(&out, 0);
    let json = out.json();
    (json["id"].as_str().unwrap().to_owned(), json)
}

fn metrics(moor: &Moor, id: &str) -> serde_json::Value {
    let out = moor.run(&["metrics", id, "--json"]);
    assert_exit(&out, 0);
    out.json()
}

#[test]
fn unmodified_mlflow_code_logs_into_the_run_and_moor_metrics_returns_it() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = heavy();
    let c = Cluster::new(MOOR, 2, HostSpec::default());
    let moor = &c.moor;
    let wheels = mlflow_wheelhouse().to_str().unwrap().to_owned();
    let code = src(&[
        ("fluent.py", FLUENT),
        ("autolog.py", AUTOLOG),
        ("ranks.py", RANKS),
        ("slow.py", SLOW),
        (
            "requirements.txt",
            &format!("{SKLEARN_REQUIREMENTS}{MLFLOW_REQUIREMENTS}"),
        ),
    ]);
    let dir = code.path().to_str().unwrap();
    let reqs = code.path().join("requirements.txt");
    assert_exit(
        &moor.run(&[
            "env",
            "create",
            "ml",
            "--pip-requirements",
            reqs.to_str().unwrap(),
        ]),
        0,
    );
    let in_env = |extra: &[&str], command: &[&str]| -> (String, serde_json::Value) {
        let mut args = vec![
            "run",
            "--env",
            "ml",
            "--wheelhouse",
            &wheels,
            "--source-dir",
            dir,
            "--json",
        ];
        args.extend(extra);
        args.push("--");
        args.extend(command);
        run(moor, &args)
    };

    // The fluent API: the code's run is the moor run, in its experiment.
    let (first, _) = in_env(
        &["--target", "node0", "--experiment", "sweep"],
        &["python", "fluent.py", "0.1"],
    );
    let log = moor.run(&["logs", &first]);
    assert!(
        log.stdout
            .contains(&format!("mlflow run {first} experiment sweep")),
        "{}",
        log.stdout
    );
    // MlflowClient.get_metric_history reads the points back.
    assert!(log.stdout.contains("history 50 49 0.02"), "{}", log.stdout);
    assert!(
        log.stdout.contains("no token: 401 UNAUTHENTICATED"),
        "{}",
        log.stdout
    );
    assert!(
        log.stdout.contains("search: 404 ENDPOINT_NOT_FOUND"),
        "{}",
        log.stdout
    );
    assert!(
        log.stdout.contains(
            "moor: MLflow: the run's MLflow client called POST /api/2.0/mlflow/runs/search"
        ),
        "{}",
        log.stdout
    );
    let m = metrics(moor, &first);
    let summary = &m["runs"][0];
    assert_eq!(
        summary["params"],
        serde_json::json!({"lr": "0.1", "epochs": "50"})
    );
    assert_eq!(summary["tags"]["stage"], "test");
    assert_eq!(summary["status"], "FINISHED");
    let loss = &summary["metrics"]["loss"];
    assert_eq!(loss["count"], 50);
    assert_eq!(loss["last_step"], 49);
    let points = m["points"].as_array().unwrap();
    assert_eq!(points.len(), 50, "exactly what was logged");
    for (step, p) in points.iter().enumerate() {
        assert_eq!(p["key"], "loss");
        assert_eq!(p["step"], step);
        let want = 0.1 * 10.0 / (step + 1) as f64;
        assert!((p["value"].as_f64().unwrap() - want).abs() < 1e-12, "{p}");
        assert!(p["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(p.get("node").is_none() && p.get("rank").is_none(), "{p}");
    }
    // The table for people: the metric with its sparkline.
    let text = moor.run(&["metrics", &first]);
    assert_exit(&text, 0);
    assert!(text.stdout.contains("lr=0.1"), "{}", text.stdout);
    assert!(
        text.stdout.contains('█') && text.stdout.contains('▁'),
        "{}",
        text.stdout
    );
    // The artifact the client wrote itself, under the run's outputs.
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &first, "--to", to.path().to_str().unwrap()]),
        0,
    );
    let notes = to
        .path()
        .join(format!("mlflow/{first}/artifacts/notes.txt"));
    assert_eq!(
        std::fs::read_to_string(notes).unwrap(),
        "hello from the run"
    );

    // A second run: `moor runs --sort` orders by the latest loss.
    let (second, _) = in_env(&["--target", "node0"], &["python", "fluent.py", "0.3"]);
    let sorted = |extra: &[&str]| -> Vec<String> {
        let out = moor.run(
            &[
                &["runs", "--target", "node0", "--sort", "loss", "--json"][..],
                extra,
            ]
            .concat(),
        );
        assert_exit(&out, 0);
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["metrics"].get("loss").is_some())
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(sorted(&[]), [first.clone(), second.clone()]);
    assert_eq!(sorted(&["--desc"]), [second.clone(), first.clone()]);
    let out = moor.run(&["runs", "--target", "node0", "--json"]);
    let row = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == second.as_str())
        .cloned()
        .unwrap();
    assert!(
        (row["metrics"]["loss"].as_f64().unwrap() - 0.3 * 10.0 / 50.0).abs() < 1e-12,
        "{row}"
    );

    // autolog: sklearn's params, training metrics and its logged model.
    let (auto, _) = in_env(&["--target", "node0"], &["python", "autolog.py"]);
    let m = metrics(moor, &auto);
    let summary = &m["runs"][0];
    assert_eq!(summary["params"]["C"], "0.5");
    assert_eq!(summary["params"]["max_iter"], "500");
    let score = summary["metrics"]["training_accuracy_score"]["last"]
        .as_f64()
        .unwrap();
    assert!(score > 0.9, "{summary}");
    let models = summary["models"].as_object().unwrap();
    assert_eq!(models.len(), 1, "{summary}");
    let model_id = models.keys().next().unwrap();
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &auto, "--to", to.path().to_str().unwrap()]),
        0,
    );
    assert!(to
        .path()
        .join(format!("mlflow/models/{model_id}/MLmodel"))
        .is_file());

    // --follow --json: a JSON line a point as they come, until the run ends.
    let (slow, _) = in_env(&["--target", "node0", "--detach"], &["python", "slow.py"]);
    let out = moor.run(&["metrics", &slow, "--follow", "--json"]);
    assert_exit(&out, 0);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    assert_eq!(lines[4]["value"], 1.0);
    assert_eq!(lines[4]["step"], 4);

    // A job of two nodes, two processes each: every rank logs, each point
    // carries its node and rank.
    let (job, _) = in_env(
        &[
            "--target",
            "node0",
            "--target",
            "node1",
            "--processes-per-node",
            "2",
        ],
        &["python", "ranks.py"],
    );
    let m = metrics(moor, &job);
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    let points = m["points"].as_array().unwrap();
    assert_eq!(points.len(), 20, "{m}");
    for p in points {
        let rank = p["rank"].as_i64().unwrap();
        assert_eq!(p["node"].as_i64().unwrap(), rank / 2, "{p}");
        assert_eq!(
            p["value"].as_f64().unwrap(),
            (rank * 10 + p["step"].as_i64().unwrap()) as f64,
            "{p}"
        );
    }
    let ranks: std::collections::BTreeSet<i64> =
        points.iter().map(|p| p["rank"].as_i64().unwrap()).collect();
    assert_eq!(ranks.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    let node1 = moor.run(&["metrics", &job, "--node", "1", "--json"]);
    assert_exit(&node1, 0);
    assert_eq!(node1.json()["points"].as_array().unwrap().len(), 10);
}
