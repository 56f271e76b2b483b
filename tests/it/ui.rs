//! `moor ui` in a real browser (Debian's headless chromium, driven over
//! WebDriver by chromedriver) against real test hosts: the runs page lists
//! the runs; a run's chart has exactly the points its code logged, and
//! zooms; a job's chart has a line per node; two runs compare on one chart;
//! a log line written after the page opened appears in it; a request
//! without the token (or for another host name) is refused, and a cancel
//! from the page with its token stops the run; a run and a job started from
//! the page (`moor run`'s own arguments, the same plan) run, and what the
//! command line refuses the page is refused. Screenshots of each page go to
//! `target/test-artifacts/ui/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use moor_tests::browser::Browser;
use moor_tests::{assert_exit, docker_or_skip, source_dir as src, Cluster, HostSpec, Moor};
use serde_json::{json, Value};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// Logs a param and a loss over 50 steps into the run's MLflow endpoint
/// (MLflow's REST API, as its client calls it).
const METRICS: &str = r#"import json, os, sys, urllib.request
scale = float(sys.argv[1])
body = {"run_id": os.environ["MLFLOW_RUN_ID"],
        "params": [{"key": "lr", "value": sys.argv[1]}],
        "metrics": [{"key": "loss", "value": scale * 10 / (s + 1), "step": s, "timestamp": 1700000000000 + s}
                    for s in range(50)]}
request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-batch",
    data=json.dumps(body).encode(), method="POST",
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10).read()
print("logged 50 points", flush=True)
"#;

/// Writes a line, waits for the test's signal, writes another, then waits.
const LINES: &str = r#"import os, time
print("first line", flush=True)
while not os.path.exists("/tmp/moor-ui-go"):
    time.sleep(0.02)
print("late line", flush=True)
time.sleep(600)
"#;

fn started(moor: &Moor, args: &[&str]) -> String {
    let out = moor.run(args);
    assert_exit(&out, 0);
    out.json()["id"].as_str().unwrap().to_owned()
}

/// `GET path` with `host` as the Host header: (status, body).
fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts/ui")
}

/// Shows the page `hash` and waits until it is drawn.
fn show(browser: &Browser, hash: &str, page: &str) {
    browser.execute(
        "delete document.body.dataset.ready; location.hash = arguments[0];",
        &[json!(hash)],
    );
    let script = format!("return document.body.dataset.ready === '{page}';");
    browser.wait_for(&format!("page {hash}"), &script, Duration::from_secs(30));
}

#[test]
fn the_dashboard_in_a_real_browser_shows_runs_charts_and_a_live_log() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 2, HostSpec::default());
    let moor = &c.moor;
    let code = src(&[("metrics.py", METRICS), ("lines.py", LINES)]);
    let dir = code.path().to_str().unwrap();
    let on = |target: &str, extra: &[&str], command: &[&str]| -> String {
        let mut args = vec!["run", "--target", target, "--source-dir", dir, "--json"];
        args.extend(extra);
        args.push("--");
        args.extend(command);
        started(moor, &args)
    };
    let a = on(
        "node0",
        &["--name", "lr-1"],
        &["python3", "metrics.py", "1"],
    );
    let b = on(
        "node1",
        &["--name", "lr-2"],
        &["python3", "metrics.py", "2"],
    );
    let job = started(
        moor,
        &[
            "run",
            "--target",
            "node0",
            "--target",
            "node1",
            "--source-dir",
            dir,
            "--json",
            "--",
            "python3",
            "metrics.py",
            "3",
        ],
    );
    let live = on("node1", &["--detach"], &["python3", "lines.py"]);

    let mut ui = moor.spawn_piped(&["ui", "--port", "0", "--json"]);
    let mut first = String::new();
    BufReader::new(ui.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let started_ui: Value = serde_json::from_str(&first).expect("moor ui --json prints its URL");
    let url = started_ui["url"].as_str().unwrap().to_owned();
    let port = started_ui["port"].as_u64().unwrap() as u16;
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/?token=")),
        "{url}"
    );
    let token = url.split("token=").nth(1).unwrap().to_owned();
    assert!(token.len() >= 32, "{token}");

    // Without the token, or for another host name: refused.
    let (status, _) = get(port, &format!("127.0.0.1:{port}"), "/api/runs");
    assert_eq!(status, 401);
    let (status, _) = get(port, &format!("127.0.0.1:{port}"), "/");
    assert_eq!(status, 401);
    let (status, _) = get(
        port,
        &format!("evil.example:{port}"),
        &format!("/api/runs?token={token}"),
    );
    assert_eq!(status, 403);
    let (status, body) = get(
        port,
        &format!("localhost:{port}"),
        &format!("/api/runs?token={token}"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("content-security-policy"), "{body}");
    // A zoomed curve: only the steps asked for.
    let (status, body) = get(
        port,
        &format!("127.0.0.1:{port}"),
        &format!("/api/chart?token={token}&run={a}&key=loss&from=10&to=19"),
    );
    assert_eq!(status, 200, "{body}");
    let chart: Value = serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(chart["series"][0]["count"], 10, "{chart}");

    let browser = Browser::start();
    let shots = artifacts();
    browser.goto(&url);
    browser.wait_for(
        "the runs page",
        "return document.body.dataset.ready === 'runs';",
        Duration::from_secs(30),
    );
    let rows = browser.execute(
        "return [...document.querySelectorAll('#runs-table tbody tr')].map(r => r.innerText);",
        &[],
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for id in [&a, &b, &job, &live] {
        assert!(
            rows.iter()
                .any(|r| r.as_str().unwrap().contains(id.as_str())),
            "{id} not in {rows:?}"
        );
    }
    assert!(
        rows.iter().any(|r| r.as_str().unwrap().contains("lr-1")),
        "{rows:?}"
    );
    browser.screenshot(&shots.join("runs.png"));

    // A run's chart: exactly the 50 points logged; a drag zooms in.
    show(&browser, &format!("#/run/{a}"), "run");
    let chart = ".chart-box[data-key=\"loss\"]";
    let count = browser.wait_for(
        "the loss chart",
        &format!("const s = document.querySelector('{chart} svg'); return s && s.dataset.count;"),
        Duration::from_secs(10),
    );
    assert_eq!(count, "50");
    let drawn = browser.execute(&format!("return [...document.querySelectorAll('{chart} path.line')].map(p => p.dataset.points);"), &[]);
    assert_eq!(drawn, json!(["50"]));
    let params = browser.execute("return document.getElementById('logged').innerText;", &[]);
    assert!(params.as_str().unwrap().contains("lr=1"), "{params}");
    browser.screenshot(&shots.join("run.png"));
    browser.execute(
        &format!(
            "const svg = document.querySelector('{chart} svg'); const r = svg.getBoundingClientRect();
             const at = (type, f) => svg.dispatchEvent(new PointerEvent(type, {{bubbles: true, pointerId: 1, clientX: r.left + r.width * f, clientY: r.top + r.height / 2}}));
             at('pointerdown', 0.3); at('pointermove', 0.6); at('pointerup', 0.6);"
        ),
        &[],
    );
    let zoomed = browser.wait_for(
        "the zoomed chart",
        &format!("const b = document.querySelector('{chart}'); return b.dataset.zoomed && Number(b.querySelector('svg').dataset.count);"),
        Duration::from_secs(10),
    );
    let zoomed = zoomed.as_u64().unwrap();
    assert!(zoomed > 5 && zoomed < 30, "zoomed to {zoomed} points");
    browser.screenshot(&shots.join("run-zoomed.png"));

    // A job: its nodes, and a line per node.
    show(&browser, &format!("#/run/{job}"), "run");
    let lines = browser.wait_for(
        "the job's chart",
        &format!("const p = [...document.querySelectorAll('{chart} path.line')].map(p => p.dataset.points); return p.length && p;"),
        Duration::from_secs(10),
    );
    assert_eq!(lines, json!(["50", "50"]));
    let nodes = browser.execute(
        "return document.querySelectorAll('#nodes-table tbody tr').length;",
        &[],
    );
    assert_eq!(nodes, 2);
    browser.screenshot(&shots.join("job.png"));

    // Two runs on one chart.
    show(
        &browser,
        &format!("#/compare?runs={a},{b}&key=loss"),
        "compare",
    );
    let compared = browser.execute("const s = document.querySelector('#chart svg'); return [s.dataset.count, s.querySelectorAll('path.line').length];", &[]);
    assert_eq!(compared, json!(["100", 2]));
    browser.screenshot(&shots.join("compare.png"));

    // A line written after the page opened appears in it.
    show(&browser, &format!("#/run/{live}"), "run");
    browser.wait_for(
        "the first log line",
        "return document.getElementById('log').textContent.includes('first line');",
        Duration::from_secs(20),
    );
    let written = Instant::now();
    c.hosts[1].exec("touch /tmp/moor-ui-go");
    browser.wait_for(
        "the late log line",
        "return document.getElementById('log').textContent.includes('late line');",
        Duration::from_secs(10),
    );
    eprintln!(
        "a new log line showed in the page {:?} after it was asked for",
        written.elapsed()
    );
    browser.screenshot(&shots.join("log.png"));

    // Cancel: refused without the token; with it, the run stops.
    let refused = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/api/runs/' + arguments[0] + '/cancel', {method: 'POST'}).then(r => done(r.status));",
        &[json!(live)],
    );
    assert_eq!(refused, 401);
    let cancelled = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         moor.api('runs/' + arguments[0] + '/cancel', 'POST').then(() => done('ok'), e => done(e.message));",
        &[json!(live)],
    );
    assert_eq!(cancelled, "ok");
    browser.wait_for(
        "the cancelled state",
        "return document.querySelector('#info .state').textContent === 'cancelled';",
        Duration::from_secs(30),
    );

    // A new run from the page, and a job: `moor run`'s own arguments,
    // through the same plan as the command line.
    show(&browser, "#/runs", "runs");
    let from_page = |targets: &str, name: &str| -> String {
        browser.execute(
            "const f = (id, v) => { document.getElementById(id).value = v; };
             f('new-target', arguments[0]); f('new-source', arguments[1]);
             f('new-name', arguments[2]); f('new-command', 'python3 metrics.py 4');
             document.getElementById('started').textContent = '';
             document.getElementById('start').click();",
            &[json!(targets), json!(dir), json!(name)],
        );
        let id = browser.wait_for(
            "the started run",
            "const a = document.querySelector('#started a'); return a && a.textContent;",
            Duration::from_secs(60),
        );
        id.as_str().unwrap().to_owned()
    };
    let one = from_page("node0", "from-page");
    let pair = from_page("node0 node1", "pair-from-page");
    assert!(
        pair.starts_with('j') && !one.starts_with('j'),
        "{one} {pair}"
    );
    browser.screenshot(&shots.join("new-run.png"));
    for (id, name) in [(&one, "from-page"), (&pair, "pair-from-page")] {
        crate::jobs::wait_for("the run from the page", Duration::from_secs(60), || {
            crate::jobs::job_row(moor, id)["state"] == "succeeded"
        });
        assert_eq!(crate::jobs::job_row(moor, id)["name"], name);
    }
    let refused = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         const no = (body) => moor.api('runs', 'POST', body).then(() => 'started', e => e.message);
         Promise.all([no({argv: ['--target', 'node0', '--spark', '--target', 'node1', '--', 'x.py']}),
                      no({argv: ['--nope']}), no({argv: [], extra: 1})]).then(done);",
        &[],
    );
    let refused: Vec<String> = serde_json::from_value(refused).unwrap();
    assert!(refused[0].contains("one head node"), "{refused:?}");
    assert!(refused[1].contains("not valid"), "{refused:?}");
    assert!(refused[2].contains("unknown field"), "{refused:?}");

    // The other pages.
    show(&browser, "#/targets", "targets");
    let targets = browser.wait_for(
        "the targets' status",
        "const up = document.querySelectorAll('#targets-table .up'); return up.length === 2 && document.querySelectorAll('#targets-table > tbody > tr').length;",
        Duration::from_secs(30),
    );
    assert_eq!(targets, 2);
    browser.screenshot(&shots.join("targets.png"));
    show(&browser, "#/envs", "envs");
    let built = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         moor.api('envs/targets').then(t => done(t.map(x => x.target + ':' + Array.isArray(x.envs))), e => done(e.message));",
        &[],
    );
    assert_eq!(built, json!(["node0:true", "node1:true"]));
    browser.wait_for(
        "the targets' environments",
        "return !document.getElementById('built').textContent.includes('Asking');",
        Duration::from_secs(30),
    );
    browser.screenshot(&shots.join("envs.png"));
    show(&browser, "#/endpoints", "endpoints");

    // SIGTERM ends it with exit 0.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &ui.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = ui.wait().unwrap();
    let mut stderr = String::new();
    ui.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "moor ui ended with {status}: {stderr}");
    assert!(stderr.contains("stopped after"), "{stderr}");
}
