//! A run's streamed output is its log, byte for byte, however soon its
//! command ends (issue 41): hundreds of very short runs started at once
//! from two controllers of one workspace, one connecting by itself and one
//! through the workspace's warm connection (`moor mux`),
//! each run's stdout compared with what its command printed, and with the
//! log the host kept.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Moor};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// Runs per controller (`MOOR_STRESS_RUNS` for more).
fn runs() -> usize {
    env_number("MOOR_STRESS_RUNS", 100)
}

/// `moor run`s going at once per controller (`MOOR_STRESS_AT_ONCE`).
fn at_once() -> usize {
    env_number("MOOR_STRESS_AT_ONCE", 8)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `i`th run's command and the bytes it prints: a line, text with no
/// newline, a line on stdout then one on stderr, nothing at all, or 1 MiB
/// then its end.
fn shape(i: usize) -> (Vec<String>, Vec<u8>) {
    let sh = |script: String| vec!["sh".to_owned(), "-c".to_owned(), script];
    match i % 5 {
        0 => (
            sh(format!("echo run {i}")),
            format!("run {i}\n").into_bytes(),
        ),
        1 => (
            vec!["printf".into(), format!("no newline {i}")],
            format!("no newline {i}").into_bytes(),
        ),
        2 => (
            sh(format!("echo out {i}; echo err {i} >&2")),
            format!("out {i}\nerr {i}\n").into_bytes(),
        ),
        3 => (vec!["true".into()], Vec::new()),
        _ => {
            let line = format!("mib {i}\n");
            let mut bytes = line.repeat((1 << 20) / line.len() + 1).into_bytes();
            bytes.truncate(1 << 20);
            let script = format!("yes 'mib {i}' | head -c 1048576");
            (sh(script), bytes)
        }
    }
}

#[test]
fn every_short_runs_output_arrives_whole_from_two_controllers() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    // The same workspace, its commands through the warm connection.
    let mut warm = Moor::new(MOOR);
    let workspace = f.moor.workspace();
    warm.with_mux()
        .env("MOOR_WORKSPACE", workspace.to_str().unwrap());
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), "a\n").unwrap();
    let src = src.path().to_str().unwrap().to_owned();

    let wrong = Mutex::new(Vec::new());
    let ran = |moor: &Moor, label: &str, next: &AtomicUsize| loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= runs() {
            return;
        }
        let (command, expected) = shape(i);
        let mut args = vec!["run", "--target", "box", "--source-dir", &src, "--"];
        args.extend(command.iter().map(String::as_str));
        let out = moor.run(&args);
        if out.code != 0 || out.stdout.as_bytes() != expected.as_slice() {
            wrong.lock().unwrap().push(format!(
                "{label} run {i} ({command:?}): exit {}, {} bytes of {} (first {:?}); stderr: {}",
                out.code,
                out.stdout.len(),
                expected.len(),
                out.stdout.chars().take(40).collect::<String>(),
                out.stderr.trim()
            ));
        }
    };
    let (direct_next, warm_next) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..at_once() {
            s.spawn(|| ran(&f.moor, "direct", &direct_next));
            s.spawn(|| ran(&warm, "warm", &warm_next));
        }
    });
    let wrong = wrong.into_inner().unwrap();
    assert!(
        wrong.is_empty(),
        "{} of {} runs printed other than their command did:\n{}",
        wrong.len(),
        2 * runs(),
        wrong.join("\n")
    );

    // And `moor logs` of each says the same as the host's log file.
    let runs = f.moor.run(&["runs", "--json"]);
    assert_exit(&runs, 0);
    let listed = runs.json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .take(10)
        .collect();
    assert_eq!(ids.len(), 10, "{listed}");
    for id in ids {
        let logs = f.moor.run(&["logs", id]);
        assert_exit(&logs, 0);
        let kept = f
            .host
            .exec(&format!("cat /home/moor/.moor/runs/{id}/log; echo -n ."));
        assert_eq!(format!("{}.", logs.stdout), kept, "run {id}");
    }
}
