//! Endpoints against real test hosts: a scikit-learn model trained in a run
//! and served from the run's outputs with a real scoring script by the real
//! azureml-inference-server-http (installed from a wheelhouse into the
//! environment, which lacked it), invoked through SSH; its server killed on
//! the host and restarted; stopped, started, deleted (the port free, nothing
//! left running); a failing `init()`, a taken port and a missing model
//! refused or failed with the reason. Any HTTP server (`-- CMD`) with a
//! local model, kept across an agent daemon restart and a lost run (as
//! after a host reboot).

use std::time::{Duration, Instant};

use moor_tests::packages::{serving_wheelhouse, SKLEARN_REQUIREMENTS};
use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `moor endpoint show NAME --json` until `ok` holds (60 s at most).
fn wait_for(
    f: &Fixture,
    name: &str,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = f.moor.run(&["endpoint", "show", name, "--json"]);
        if out.code == 0 && ok(&out.json()) {
            return out.json();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} {}",
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The endpoint's socket: no TCP port of the server listens, and another
/// user of the host (`nobody`) cannot connect to the socket.
fn only_its_owner_reaches(f: &Fixture, socket: &str) {
    let tcp = f.host.exec("ss -ltnpH | grep -c python || true");
    assert_eq!(tcp.trim(), "0", "no TCP listener of the server");
    let other = f.host.exec(&format!(
        "runuser -u nobody -- python3 -c \"import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('{socket}'); print('reached')\nexcept OSError as e:\n    print('refused', e.errno)\n\""
    ));
    assert_eq!(other.trim(), "refused 13", "another user: {other}");
}

/// `moor forward --endpoint NAME PORT`: a plain HTTP POST to that local
/// port reaches the endpoint (its socket, through SSH); the answer's JSON
/// has `field`.
fn forwarded_from_here(f: &Fixture, name: &str, body: &str, field: &str) {
    use std::io::{Read, Write};
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = local.local_addr().unwrap().port();
    drop(local);
    let forward = f
        .moor
        .spawn_piped(&["forward", "--endpoint", name, &port.to_string(), "--json"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let asked = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut conn| {
            let request = format!(
                "POST /score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(request.as_bytes())?;
            let mut answer = String::new();
            conn.read_to_string(&mut answer)?;
            Ok(answer)
        });
        match asked {
            Ok(answer) if answer.starts_with("HTTP/1.") => break answer,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!("no answer through moor forward --endpoint: {other:?}"),
        }
    };
    assert!(answer.split(' ').nth(1) == Some("200"), "{answer}");
    assert!(answer.contains(field), "{answer}");
    nix_interrupt(&forward);
    let out = forward.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["connections"], 1, "{summary}");
}

/// Ctrl-C, as a terminal sends it.
fn nix_interrupt(child: &std::process::Child) {
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

fn invoke(f: &Fixture, name: &str, data: &str) -> Output {
    f.moor
        .run_with_stdin(&["endpoint", "invoke", name, "--json"], Some(data))
}

/// Whether nothing listens on the host's `port` and no process matching
/// `pattern` (bracketed, so that it does not match this shell) is left.
fn port_free_and_nothing_runs(f: &Fixture, port: u64, pattern: &str) -> String {
    f.host.exec(&format!(
        "python3 -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", {port}))' 2>&1 && echo port-free; \
         pgrep -f '{pattern}' >/dev/null && echo still-running || echo nothing-runs"
    ))
}

const TRAIN: &str = "import json, os\n\
import joblib\n\
from sklearn.datasets import load_iris\n\
from sklearn.linear_model import LogisticRegression\n\
X, y = load_iris(return_X_y=True)\n\
model = LogisticRegression(max_iter=1000).fit(X, y)\n\
out = os.environ['MOOR_OUTPUT_DIR']\n\
os.makedirs(os.path.join(out, 'model'))\n\
joblib.dump(model, os.path.join(out, 'model', 'iris.joblib'))\n\
rows = [X[0].tolist(), X[75].tolist(), X[149].tolist()]\n\
json.dump({'data': rows, 'expected': model.predict(rows).tolist()}, open(os.path.join(out, 'request.json'), 'w'))\n";

const SCORE: &str = "import json, os\n\
import joblib\n\
def init():\n\
\x20   global model\n\
\x20   model = joblib.load(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'iris.joblib'))\n\
def run(raw_data):\n\
\x20   rows = json.loads(raw_data)['data']\n\
\x20   return {'predictions': model.predict(rows).tolist()}\n";

const FAILING_SCORE: &str = "def init():\n\
\x20   raise RuntimeError('no model file here, says init')\n\
def run(raw_data):\n\
\x20   return raw_data\n";

#[test]
fn a_trained_model_is_served_kept_up_and_removed() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let dir = tempfile::tempdir().unwrap();
    let wheels = serving_wheelhouse().to_str().unwrap().to_owned();
    let reqs = write(dir.path(), "requirements.txt", SKLEARN_REQUIREMENTS);
    assert_exit(
        &f.moor
            .run(&["env", "create", "sk", "--pip-requirements", &reqs]),
        0,
    );

    // Train in a run: the model lands in the run's outputs on the host.
    let train = dir.path().join("train");
    write(&train, "train.py", TRAIN);
    let out = f.moor.run(&[
        "run",
        "--target",
        "box",
        "--env",
        "sk",
        "--wheelhouse",
        &wheels,
        "--source-dir",
        train.to_str().unwrap(),
        "--json",
        "--",
        "python",
        "train.py",
    ]);
    assert_exit(&out, 0);
    let run_id = out.json()["id"].as_str().unwrap().to_owned();
    let request = f.moor.download_json(&run_id, "request.json");
    let expected = request["expected"].clone();
    assert_eq!(expected, serde_json::json!([0, 1, 2]), "the model itself");

    // Serve it: the environment gets the server package, the model is
    // copied on the host from the run's outputs.
    let serve = dir.path().join("serve");
    write(&serve, "score.py", SCORE);
    write(&serve, "bad_score.py", FAILING_SCORE);
    let model = format!("{run_id}:model/iris.joblib");
    let create = |name: &str, script: &str, extra: &[&str]| {
        f.moor.run(
            &[
                &[
                    "endpoint",
                    "create",
                    name,
                    "--target",
                    "box",
                    "--env",
                    "sk",
                    "--wheelhouse",
                    &wheels,
                    "--source-dir",
                    serve.to_str().unwrap(),
                    "--scoring-script",
                    script,
                    "--json",
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let out = create("iris", "score.py", &["--model", &model]);
    assert_exit(&out, 0);
    let created = out.json();
    assert_eq!(created["state"], "healthy", "{created}");
    let socket = created["socket"].as_str().unwrap().to_owned();
    assert_eq!(socket, "/home/moor/.moor/endpoints/iris/sock");
    assert_eq!(created["address"], format!("unix:{socket}"));
    assert_eq!(created["port"], 0, "no TCP port: {created}");
    let body = serde_json::json!({ "data": request["data"] }).to_string();
    let out = invoke(&f, "iris", &body);
    assert_exit(&out, 0);
    assert_eq!(out.json()["status"], 200);
    assert_eq!(
        out.json()["body"]["predictions"],
        expected,
        "{}",
        out.stdout
    );
    only_its_owner_reaches(&f, &socket);
    forwarded_from_here(&f, "iris", &body, "predictions");

    // The server killed on the host: restarted, answers again.
    f.host.exec("pkill -9 -f '^python3 -c import sys' || true");
    let shown = wait_for(&f, "iris", "restarted and healthy", |e| {
        e["restarts"] == 1 && e["state"] == "healthy"
    });
    assert_eq!(shown["last_exit"], "signal 9", "{shown}");
    let out = invoke(&f, "iris", &body);
    assert_exit(&out, 0);
    assert_eq!(out.json()["body"]["predictions"], expected);
    let logs = f.moor.run(&["endpoint", "logs", "iris"]);
    assert_exit(&logs, 0);
    assert!(
        logs.stdout.contains(&format!("healthy on unix:{socket}")),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("restart 1 in 1 s"), "{}", logs.stdout);
    let listed = f.moor.run(&["endpoint", "list", "--json"]);
    assert_exit(&listed, 0);
    assert_eq!(listed.json()["endpoints"][0]["name"], "iris");
    assert_eq!(listed.json()["endpoints"][0]["target"], "box");

    // A port is for a public endpoint only; a model path that is not
    // there refuses the endpoint before anything starts.
    let out = create("second", "score.py", &["--model", &model, "--port", "5001"]);
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("--port is for a --public endpoint"),
        "{}",
        out.stderr
    );
    let out = create(
        "second",
        "score.py",
        &["--model", &format!("{run_id}:model/nope.pkl")],
    );
    assert_exit(&out, 8);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("has no outputs/model/nope.pkl"),
        "{message}"
    );
    let listed = f
        .moor
        .run(&["endpoint", "list", "--target", "box", "--json"]);
    assert_eq!(
        listed.json()["endpoints"].as_array().unwrap().len(),
        1,
        "{}",
        listed.stdout
    );

    // init() raises: failed, with the traceback's last lines.
    let out = create("broken", "bad_score.py", &[]);
    assert_exit(&out, 8);
    assert!(
        out.stderr
            .contains("RuntimeError: no model file here, says init"),
        "{}",
        out.stderr
    );
    let shown = f.moor.run(&["endpoint", "show", "broken", "--json"]);
    assert_eq!(shown.json()["state"], "failed");
    let tail = shown.json()["log_tail"].to_string();
    assert!(tail.contains("no model file here"), "{tail}");
    assert_exit(&f.moor.run(&["endpoint", "delete", "broken"]), 0);

    // --public: every address, with a warning.
    let out = create("open", "score.py", &["--model", &model, "--public"]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["address"], "0.0.0.0");
    assert!(
        out.stderr.contains("listens on every address"),
        "{}",
        out.stderr
    );
    let open_port = out.json()["port"].as_u64().unwrap();
    let reached = f.host.exec(&format!(
        "python3 - <<'EOF'\nimport socket\na = [x for x in socket.gethostbyname_ex(socket.gethostname())[2] if not x.startswith('127.')][0]\nsocket.create_connection((a, {open_port}), timeout=2); print('reached', a)\nEOF"
    ));
    assert!(reached.contains("reached"), "{reached}");
    // A taken port is refused with the reason.
    let out = create(
        "second",
        "score.py",
        &[
            "--model",
            &model,
            "--public",
            "--port",
            &open_port.to_string(),
        ],
    );
    assert_exit(&out, 8);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&format!("port {open_port} on 0.0.0.0 is taken")),
        "{message}"
    );
    assert_exit(&f.moor.run(&["endpoint", "delete", "open"]), 0);

    // Stopped: no answer; started again: answers.
    let stopped = f.moor.run(&["endpoint", "stop", "iris", "--json"]);
    assert_exit(&stopped, 0);
    assert_eq!(stopped.json()["state"], "stopped");
    let refused = invoke(&f, "iris", &body);
    assert_exit(&refused, 8);
    assert!(
        refused.stderr.contains("endpoint iris is stopped"),
        "{}",
        refused.stderr
    );
    let started = f.moor.run(&["endpoint", "start", "iris", "--json"]);
    assert_exit(&started, 0);
    assert_eq!(started.json()["state"], "healthy");
    assert_eq!(
        invoke(&f, "iris", &body).json()["body"]["predictions"],
        expected
    );

    // Deleted: its socket is gone and nothing of it runs.
    let deleted = f.moor.run(&["endpoint", "delete", "iris", "--json"]);
    assert_exit(&deleted, 0);
    let left = port_free_and_nothing_runs(&f, open_port, "[a]zureml_inference_server_http");
    assert!(
        left.contains("port-free") && left.contains("nothing-runs"),
        "{left}"
    );
    assert_eq!(
        f.host
            .exec(&format!("test -e {socket} && echo left || echo gone"))
            .trim(),
        "gone"
    );
    let gone = f
        .moor
        .run(&["endpoint", "show", "iris", "--target", "box", "--json"]);
    assert_exit(&gone, 8);
    assert_eq!(gone.json()["error"]["kind"], "not_found");
}

const SERVER: &str = "import http.server, json, os, socketserver, sys\n\
model = open(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'weights.txt')).read().strip()\n\
class Handler(http.server.BaseHTTPRequestHandler):\n\
\x20   sick = False\n\
\x20   def do_GET(self):\n\
\x20       self.send_response(503 if Handler.sick else 200); self.end_headers(); self.wfile.write(b'up')\n\
\x20   def do_POST(self):\n\
\x20       if self.path in ('/sick', '/well'):\n\
\x20           Handler.sick = self.path == '/sick'\n\
\x20           self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()\n\
\x20           self.wfile.write(b'ok'); return\n\
\x20       try:\n\
\x20           data = json.loads(self.rfile.read(int(self.headers['Content-Length'])))\n\
\x20       except ValueError:\n\
\x20           self.send_response(400); self.send_header('Content-Length', '8'); self.end_headers()\n\
\x20           self.wfile.write(b'bad json'); return\n\
\x20       out = json.dumps({'sum': sum(data['data']), 'model': model}).encode()\n\
\x20       self.send_response(200); self.send_header('Content-Type', 'application/json')\n\
\x20       self.send_header('Content-Length', str(len(out))); self.end_headers(); self.wfile.write(out)\n\
\x20   def log_message(self, *args):\n\
\x20       pass\n\
if sys.argv[1:] == ['--socket']:\n\
\x20   socketserver.UnixStreamServer(os.environ['MOOR_ENDPOINT_SOCKET'], Handler).serve_forever()\n\
http.server.HTTPServer((os.environ['MOOR_ENDPOINT_ADDRESS'], int(os.environ['PORT'])), Handler).serve_forever()\n";

#[test]
fn any_http_server_with_a_local_model_outlives_the_agent_and_a_lost_run() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "server.py", SERVER);
    let weights = write(dir.path(), "weights.txt", "w-42\n");
    let out = f.moor.run(&[
        "endpoint",
        "create",
        "sum",
        "--target",
        "box",
        "--source-dir",
        src.to_str().unwrap(),
        "--model",
        &weights,
        "--health-path",
        "/ready",
        "--json",
        "--",
        "python3",
        "server.py",
    ]);
    assert_exit(&out, 0);
    let first_run = out.json()["run_id"].as_str().unwrap().to_owned();
    let port = out.json()["port"].as_u64().unwrap();
    let answer = invoke(&f, "sum", r#"{"data": [1, 2, 3]}"#);
    assert_exit(&answer, 0);
    assert_eq!(
        answer.json()["body"],
        serde_json::json!({"sum": 6, "model": "w-42"})
    );

    // The agent daemon restarts: the endpoint serves on, untouched.
    f.host.exec("pkill -9 -f '[m]oor-agent serve' || true");
    let answer = invoke(&f, "sum", r#"{"data": [4]}"#);
    assert_exit(&answer, 0);
    assert_eq!(answer.json()["body"]["sum"], 4);
    let shown = f.moor.run(&["endpoint", "show", "sum", "--json"]);
    assert_eq!(shown.json()["run_id"], first_run.as_str());
    assert_eq!(shown.json()["restarts"], 0);

    // Everything of its run killed at once, as a host reboot does: the
    // next contact serves it again in a new run.
    f.host.exec(&format!(
        "pkill -9 -f '[m]oor-agent serve'; pkill -9 -f '[s]upervise .*{first_run}'; \
         pkill -9 -f '[k]eep-endpoint'; pkill -9 -f '[s]erver.py'; true"
    ));
    let shown = wait_for(&f, "sum", "served again after its run was lost", |e| {
        e["state"] == "healthy" && e["run_id"] != first_run.as_str()
    });
    assert_eq!(shown["port"].as_u64(), Some(port));
    let answer = invoke(&f, "sum", r#"{"data": [5, 5]}"#);
    assert_exit(&answer, 0);
    assert_eq!(answer.json()["body"]["sum"], 10);

    // A server that stops answering its probe is unhealthy, until it
    // answers again.
    let path = |p: &str| {
        f.moor
            .run_with_stdin(&["endpoint", "invoke", "sum", "--path", p], Some("{}"))
    };
    assert_exit(&path("/sick"), 0);
    wait_for(&f, "sum", "unhealthy", |e| e["state"] == "unhealthy");
    assert_exit(&path("/well"), 0);
    let shown = wait_for(&f, "sum", "healthy again", |e| e["state"] == "healthy");
    assert_eq!(shown["restarts"], 0, "{shown}");

    // `logs --follow` follows until the endpoint stops.
    let follow = f.moor.spawn_piped(&["endpoint", "logs", "sum", "--follow"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_exit(&f.moor.run(&["endpoint", "stop", "sum"]), 0);
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success(), "{followed:?}");
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(text.contains("does not answer its probe"), "{text}");
    assert_exit(&f.moor.run(&["endpoint", "start", "sum"]), 0);

    // An HTTP error status is said and exits 8.
    let bad = invoke(&f, "sum", "not json");
    assert_exit(&bad, 8);
    // It answers on the loopback port, not on its socket: said in its log.
    let logs = f.moor.run(&["endpoint", "logs", "sum"]);
    assert!(
        logs.stdout
            .contains("where every user of this host can call it"),
        "{}",
        logs.stdout
    );
    let deleted = f.moor.run(&["endpoint", "delete", "sum"]);
    assert_exit(&deleted, 0);
    let left = port_free_and_nothing_runs(&f, port, "[s]erver.py");
    assert!(
        left.contains("port-free") && left.contains("nothing-runs"),
        "{left}"
    );

    // The same server on $MOOR_ENDPOINT_SOCKET: only its owner reaches it.
    let out = f.moor.run(&[
        "endpoint",
        "create",
        "own",
        "--target",
        "box",
        "--source-dir",
        src.to_str().unwrap(),
        "--model",
        &weights,
        "--json",
        "--",
        "python3",
        "server.py",
        "--socket",
    ]);
    assert_exit(&out, 0);
    let socket = "/home/moor/.moor/endpoints/own/sock";
    let shown = wait_for(&f, "own", "on its socket", |e| e["socket"] == socket);
    assert_eq!(shown["address"], format!("unix:{socket}"));
    let answer = invoke(&f, "own", r#"{"data": [2, 3]}"#);
    assert_exit(&answer, 0);
    assert_eq!(answer.json()["body"]["sum"], 5);
    only_its_owner_reaches(&f, socket);
    forwarded_from_here(&f, "own", r#"{"data": [1]}"#, "\"sum\": 1");
    let logs = f.moor.run(&["endpoint", "logs", "own"]);
    assert!(
        !logs.stdout.contains("every user of this host"),
        "{}",
        logs.stdout
    );
    assert_exit(&f.moor.run(&["endpoint", "delete", "own"]), 0);
}
