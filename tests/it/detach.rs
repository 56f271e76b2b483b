//! `moor detach` against a real test host: refused while runs are going
//! (they are listed), `--cancel-runs` stops them first, and `--purge` takes
//! away everything moor put on the host and says how much it freed.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn detach_refuses_while_runs_go_and_purge_with_cancel_runs_leaves_nothing() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("data.bin"), vec![7u8; 3 << 20]).unwrap();
    let started = f.run_on(
        "box",
        src.path(),
        &["--detach", "--json", "--name", "long"],
        &["sleep", "3601"],
    );
    assert_exit(&started, 0);
    let id = started.json()["id"].as_str().unwrap().to_owned();

    let refused = f.moor.run(&["detach", "box"]);
    assert_exit(&refused, 7);
    let line = refused.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains(&format!("has 1 run(s) going: {id} (long)"))
            && line.contains("--cancel-runs"),
        "{}",
        refused.stderr
    );
    assert_exit(&f.moor.run(&["list"]), 0);
    assert!(
        f.moor.run(&["list"]).stdout.contains("box"),
        "the target went"
    );

    let purged = f
        .moor
        .run(&["detach", "box", "--purge", "--cancel-runs", "--json"]);
    assert_exit(&purged, 0);
    let json = purged.json();
    assert_eq!(json["runs_cancelled"][0], id.as_str());
    assert!(json["freed_kib"].as_u64().unwrap() >= 3 * 1024, "{json}");
    assert_eq!(json["agent_removed"], true);
    let left = f
        .host
        .exec("ls -A /home/moor/.moor 2>/dev/null; pgrep -x sleep || true");
    assert_eq!(left.trim(), "", "moor left something on the host");
}
