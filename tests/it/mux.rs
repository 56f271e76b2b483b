//! Warm connections (`moor mux`) against a real OpenSSH host: later
//! commands get their agent pipe from the workspace's multiplexer (one SSH
//! connection for many commands, a run's upload and log included), its
//! socket is private, a dropped connection is made again without the user
//! seeing it, a changed or revoked host key is still refused, `--no-mux` connects
//! directly, and the mux ends when stopped, when idle and when its target
//! is detached.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use moor_tests::{assert_exit, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

fn attached(idle_secs: u64) -> Fixture {
    let mut f = Fixture::new(MOOR, HostSpec::default());
    f.moor
        .with_mux()
        .env("MOOR_MUX_IDLE", &idle_secs.to_string());
    assert_exit(&f.attach("box", &[]), 0);
    f
}

/// `moor mux status --json`.
fn mux_status(f: &Fixture) -> serde_json::Value {
    let out = f.moor.run(&["mux", "status", "--json"]);
    assert_exit(&out, 0);
    out.json()
}

/// What `probe` gives, once it gives something within `secs` seconds.
fn eventually<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// The mux's row for `box`, once its state is `state`.
fn wait_state(f: &Fixture, state: &str) -> serde_json::Value {
    eventually(20, &format!("the mux's connection {state}"), || {
        let rows = mux_status(f)["targets"].clone();
        rows.as_array()?
            .iter()
            .find(|r| r["target"] == "box" && r["state"] == state)
            .cloned()
    })
}

/// The mux's row for `box`, once it is warm.
fn wait_warm(f: &Fixture) -> serde_json::Value {
    wait_state(f, "warm")
}

/// SSH connections of the test user the host's sshd holds.
fn sessions_on_host(f: &Fixture) -> usize {
    f.host
        .exec("pgrep -f 'sshd: moo[r]@' | wc -l")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn warm_commands_share_one_connection_and_a_dropped_one_is_made_again() {
    let f = attached(600);
    // The first command that connects starts the mux (it connects by itself).
    assert_exit(&f.moor.run(&["status", "box"]), 0);
    let warm = wait_warm(&f);
    let mux_dir = f.moor.workspace().join("mux");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&mux_dir), 0o700);
    assert_eq!(mode(&mux_dir.join("sock")), 0o600);

    // Later commands go through it: a run (source upload, log stream), its
    // record, the agent's status.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("hello.py"), "print('hello from the mux')\n").unwrap();
    let run = f.moor.run(&[
        "run",
        "--target",
        "box",
        "--source-dir",
        src.path().to_str().unwrap(),
        "-v",
        "--",
        "python3",
        "hello.py",
    ]);
    assert_exit(&run, 0);
    assert!(run.stdout.contains("hello from the mux"), "{}", run.stdout);
    assert_exit(&f.moor.run(&["runs", "--target", "box"]), 0);
    let status = f.moor.run(&["status", "box", "--json", "-vv"]);
    assert_exit(&status, 0);
    assert!(
        status.stderr.contains("agent pipe from the mux"),
        "{}",
        status.stderr
    );
    assert!(
        !status.stderr.contains("authenticated"),
        "{}",
        status.stderr
    );
    let given = wait_warm(&f)["pipes_given"].as_u64().unwrap();
    assert!(given >= 3, "pipes given {given}: {}", warm);
    // One connection on the host for all of them (the mux's).
    assert_eq!(sessions_on_host(&f), 1, "{}", f.host.exec("ps ax"));

    // --no-mux connects by itself.
    let direct = f.moor.run(&["status", "box", "--no-mux", "-vv"]);
    assert_exit(&direct, 0);
    assert!(direct.stderr.contains("authenticated"), "{}", direct.stderr);
    assert!(!direct.stderr.contains("agent pipe from the mux"));

    // The connection drops (sshd ends it): the next command works all the
    // same (by itself), and the mux connects again.
    f.host.exec("pkill -f 'sshd: moo[r]' || true");
    std::thread::sleep(Duration::from_millis(300));
    assert_exit(&f.moor.run(&["status", "box"]), 0);
    let again = wait_warm(&f);
    assert_eq!(again["pipes_given"], 0, "a new connection: {again}");
    let through = f.moor.run(&["runs", "--target", "box", "-vv"]);
    assert_exit(&through, 0);
    assert!(
        through.stderr.contains("agent pipe from the mux"),
        "{}",
        through.stderr
    );

    // A new host key with the connection gone: the mux's connection is
    // refused as any other (and the command's own error is the user's).
    f.host.regenerate_host_keys();
    f.host.exec("pkill -f 'sshd: moo[r]' || true");
    std::thread::sleep(Duration::from_millis(300));
    let refused = f.moor.run(&["status", "box", "--json"]);
    assert_eq!(refused.json()[0]["up"], false, "{}", refused.stdout);
    assert!(
        refused.stdout.contains("HOST KEY CHANGED"),
        "{}",
        refused.stdout
    );
    let failed = wait_state(&f, "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("HOST KEY CHANGED"), "{failed}");

    // Stopped: no mux, no socket.
    let stop = f.moor.run(&["mux", "stop", "--json"]);
    assert_exit(&stop, 0);
    assert_eq!(stop.json()["stopped"], true);
    let sock = mux_dir.join("sock");
    eventually(10, "the socket gone after stop", || {
        (!sock.exists()).then_some(())
    });
    assert_eq!(mux_status(&f)["running"], false);
}

#[test]
fn the_mux_ends_when_idle_and_forgets_a_detached_target() {
    let f = attached(3);
    assert_exit(&f.moor.run(&["status", "box"]), 0);
    wait_warm(&f);
    // A key revoked since the mux connected: its warm connection is not
    // used (an ssh master would go on), the command's own is refused.
    let user_known_hosts = f.moor.home().join(".ssh/known_hosts");
    let revoked = format!("@revoked * {}\n", f.host.ed25519_public_key());
    std::fs::write(&user_known_hosts, revoked).unwrap();
    let refused = f.moor.run(&["status", "box", "--json"]);
    assert!(refused.stdout.contains("revoked"), "{}", refused.stdout);
    std::fs::remove_file(&user_known_hosts).unwrap();
    // Detach drops the mux's connection first: nothing of it stays on the host.
    let detached = f.moor.run(&["detach", "box", "--purge", "--json"]);
    assert_exit(&detached, 0);
    assert!(mux_status(&f)["targets"].as_array().unwrap().is_empty());
    eventually(10, "no connection left on the host", || {
        (sessions_on_host(&f) == 0).then_some(())
    });
    // Idle for 3 s (no pipe, no request): it exits and removes its socket.
    let sock = f.moor.workspace().join("mux/sock");
    eventually(15, "the idle mux gone", || (!sock.exists()).then_some(()));
    let log = std::fs::read_to_string(f.moor.workspace().join("mux/log")).unwrap();
    assert!(log.contains("idle: exiting"), "{log}");
}

#[test]
fn the_first_command_over_many_targets_warms_each_of_them() {
    let mut cluster = moor_tests::Cluster::new(MOOR, 3, HostSpec::default());
    cluster.moor.with_mux();
    // No mux yet: this status connects by itself and starts one warming all three.
    let out = cluster.moor.run(&["status", "--json"]);
    assert_exit(&out, 0);
    eventually(30, "every target warm", || {
        let out = cluster.moor.run(&["mux", "status", "--json"]);
        let rows = out.json()["targets"].as_array()?.clone();
        let warm = rows.iter().filter(|r| r["state"] == "warm").count();
        (warm == 3).then_some(())
    });
    assert_exit(&cluster.moor.run(&["mux", "stop"]), 0);
}

/// The agent's daemon killed (-9) under a warm connection: the mux sees that
/// its spare pipe's agent is gone and opens a new pipe (which starts the
/// daemon again), so the very next command works through it, every time
/// (issue 33: it failed three times in a row, "connection to the agent lost").
#[test]
fn the_first_command_after_the_agent_daemon_was_killed_goes_through() {
    let f = attached(600);
    assert_exit(&f.moor.run(&["status", "box"]), 0);
    wait_warm(&f);
    for _ in 0..3 {
        assert_exit(&f.moor.run(&["runs", "--target", "box"]), 0);
        f.host
            .exec("pkill -9 -u moor -f 'moor-agent serv[e]'; true");
        std::thread::sleep(Duration::from_millis(300));
        let out = f.moor.run(&["runs", "--target", "box", "-vv"]);
        assert_exit(&out, 0);
        assert!(
            out.stderr.contains("agent pipe from the mux"),
            "{}",
            out.stderr
        );
    }
}
