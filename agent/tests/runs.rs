//! Runs through the real `moor-agent` binary on this machine: the supervisor
//! records every ending (success, failure, signal, cancel), logs keep stdout
//! and stderr in order, a run outlives the process that started it, and a run
//! whose supervisor vanished is reported lost, never running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_moor-agent");

struct Agent {
    home: tempfile::TempDir,
}

impl Agent {
    fn new() -> Agent {
        Agent {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(AGENT)
            .args(args)
            .env("HOME", self.home.path())
            .current_dir(self.home.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> Value {
        let (code, out, err) = self.cmd(args);
        assert_eq!(code, 0, "moor-agent {args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn start(&self, command: &[&str]) -> String {
        let run = self.json(&[&["run", "--"][..], command].concat());
        run["id"].as_str().unwrap().to_owned()
    }

    fn show(&self, id: &str) -> Value {
        self.json(&["show", id])
    }

    fn wait_final(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let run = self.show(id);
            if !["queued", "running"].contains(&run["state"].as_str().unwrap()) {
                return run;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "run {id} did not end: {run}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.home.path().join(".moor/runs").join(id)
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.run_dir(id).join("log")).unwrap_or_default()
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn status_pid(dir: &Path) -> u64 {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("status.json")) {
            if let Some(pid) = serde_json::from_str::<Value>(&text).unwrap()["pid"].as_u64() {
                return pid;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "job never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_run_succeeds_with_ordered_logs_and_outputs() {
    let agent = Agent::new();
    let id = agent.start(&[
        "sh",
        "-c",
        r#"echo out1; echo err1 >&2; echo out2; echo "$MOOR_RUN_ID" > "$MOOR_OUTPUT_DIR/id.txt""#,
    ]);
    let run = agent.wait_final(&id);
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["exit_code"], 0);
    assert!(run["started_at"].is_string() && run["ended_at"].is_string());
    assert_eq!(agent.log(&id), "out1\nerr1\nout2\n");
    assert_eq!(run["log_bytes"], 15);
    let written = std::fs::read_to_string(agent.run_dir(&id).join("outputs/id.txt")).unwrap();
    assert_eq!(written.trim(), id);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(agent.run_dir(&id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn failures_keep_their_exit_code_or_signal() {
    let agent = Agent::new();
    let failed = agent.start(&["sh", "-c", "exit 3"]);
    let killed = agent.start(&["sh", "-c", "kill -SEGV $$"]);
    let missing = agent.start(&["/nonexistent/train"]);
    let run = agent.wait_final(&failed);
    assert_eq!(
        (run["state"].as_str(), run["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    let run = agent.wait_final(&killed);
    assert_eq!(
        (run["state"].as_str(), run["signal"].as_i64()),
        (Some("failed"), Some(11))
    );
    assert!(run["exit_code"].is_null());
    let run = agent.wait_final(&missing);
    assert_eq!(
        (run["state"].as_str(), run["exit_code"].as_i64()),
        (Some("failed"), Some(127))
    );
}

#[test]
fn a_run_outlives_the_process_that_started_it() {
    let agent = Agent::new();
    let started = Instant::now();
    let id = agent.start(&["sh", "-c", "sleep 1; echo done"]);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "start returns at once"
    );
    assert!(["queued", "running"].contains(&agent.show(&id)["state"].as_str().unwrap()));
    let run = agent.wait_final(&id);
    assert_eq!(run["state"], "succeeded");
    assert_eq!(agent.log(&id), "done\n");
    let list = agent.json(&["runs"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn cancel_terms_then_kills_the_process_group() {
    let agent = Agent::new();
    // A polite job ends on SIGTERM.
    let polite = agent.start(&["sh", "-c", "sleep 30 & wait"]);
    let pid = status_pid(&agent.run_dir(&polite));
    let started = Instant::now();
    let run = agent.json(&["cancel", &polite, "--grace", "5"]);
    assert_eq!(run["state"], "cancelled", "{run}");
    assert_eq!(run["signal"], 15);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(!alive(pid));

    // A job that ignores SIGTERM (and its child, in the same group) is killed after the grace.
    let stubborn = agent.start(&["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"]);
    status_pid(&agent.run_dir(&stubborn));
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let run = agent.json(&["cancel", &stubborn, "--grace", "1"]);
    assert_eq!(run["state"], "cancelled", "{run}");
    assert_eq!(run["signal"], 9);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Cancelling a finished run changes nothing.
    let done = agent.start(&["true"]);
    agent.wait_final(&done);
    assert_eq!(agent.json(&["cancel", &done])["state"], "succeeded");
}

#[test]
fn a_vanished_supervisor_or_another_boot_means_lost() {
    let agent = Agent::new();
    let id = agent.start(&["sh", "-c", "sleep 2; echo finished"]);
    let dir = agent.run_dir(&id);
    let job = status_pid(&dir);
    let supervisor: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("supervisor.json")).unwrap())
            .unwrap();
    let supervisor_pid = supervisor["pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-9", &supervisor_pid.to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while alive(supervisor_pid) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(agent.show(&id)["state"], "lost");
    // The job itself keeps going and keeps logging.
    assert!(alive(job));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(agent.log(&id), "finished\n");

    // A run recorded as running in another boot is lost, not running.
    let other = agent.start(&["sleep", "5"]);
    let dir = agent.run_dir(&other);
    status_pid(&dir);
    let mut sup: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("supervisor.json")).unwrap())
            .unwrap();
    sup["boot_id"] = "an-earlier-boot".into();
    std::fs::write(dir.join("supervisor.json"), sup.to_string()).unwrap();
    assert_eq!(agent.show(&other)["state"], "lost");
    let _ = agent.cmd(&["cancel", &other, "--grace", "1"]);
}

#[test]
fn fifty_concurrent_runs_each_with_its_own_log() {
    let agent = Agent::new();
    let ids: Vec<String> = (0..50)
        .map(|_| agent.start(&["sh", "-c", r#"sleep 0.2; echo "$MOOR_RUN_ID""#]))
        .collect();
    for id in &ids {
        let run = agent.wait_final(id);
        assert_eq!(run["state"], "succeeded", "{run}");
        assert_eq!(agent.log(id).trim(), id);
    }
    assert_eq!(agent.json(&["runs"]).as_array().unwrap().len(), 50);
}

#[test]
fn bad_usage_and_unknown_runs() {
    let agent = Agent::new();
    assert_eq!(agent.cmd(&["run"]).0, 2);
    assert_eq!(agent.cmd(&["run", "--"]).0, 2);
    assert_eq!(agent.cmd(&["bogus"]).0, 2);
    let (code, _, err) = agent.cmd(&["show", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("No such file") || err.contains("no run"),
        "{err}"
    );
    assert_eq!(agent.cmd(&["show", "../../etc"]).0, 1);
}
