//! The workspace's run history against a real test host: a target that
//! does not answer still has its runs listed (as last heard, `reachable:
//! false`, exit 6), and runs of a detached target stay listed with `--all`.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn runs_of_an_unreachable_or_detached_target_are_listed_from_the_history() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    let out = f.run_on("box", src.path(), &["--json"], &["sh", "-c", "exit 3"]);
    assert_exit(&out, 3);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let live = f.moor.run(&["runs", "--json"]);
    assert_exit(&live, 0);
    assert_eq!(live.json()[0]["reachable"], true);

    f.host.pause();
    let down = f.moor.run(&["runs", "--json", "--connect-timeout", "2"]);
    f.host.unpause();
    assert_exit(&down, 6);
    let run = &down.json()[0];
    assert_eq!(run["id"], id.as_str());
    assert_eq!(run["reachable"], false);
    assert_eq!(run["state"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert!(down.stderr.contains("(target box)"), "{}", down.stderr);

    assert_exit(&f.moor.run(&["detach", "box", "--local-only"]), 0);
    let now = f.moor.run(&["runs", "--json"]);
    assert_exit(&now, 0);
    assert_eq!(now.json(), serde_json::json!([]));
    let all = f.moor.run(&["runs", "--all", "--json"]);
    assert_exit(&all, 0);
    assert_eq!(all.json()[0]["id"], id.as_str());
    assert_eq!(all.json()[0]["target_detached"], true);
    let table = f.moor.run(&["runs", "--all"]);
    assert!(
        table.stdout.contains("detached (failed)"),
        "{}",
        table.stdout
    );
}

#[test]
fn runs_prune_removes_finished_runs_and_unused_snapshots_and_status_shows_the_space() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(a.path().join("data.bin"), vec![1u8; 2 << 20]).unwrap();
    std::fs::write(b.path().join("train.py"), "print(1)\n").unwrap();
    let mut ids = Vec::new();
    for src in [&a, &a, &b] {
        let out = f.run_on("box", src.path(), &["--json"], &["true"]);
        assert_exit(&out, 0);
        ids.push(out.json()["id"].as_str().unwrap().to_owned());
        // Runs are ordered by their start, to the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let status = f.moor.run(&["status", "box", "--json"]);
    assert_exit(&status, 0);
    let before = status.json()[0]["disk"].clone();
    // The two runs of `a` share its snapshot's files (hard links to its
    // tree, counted once); the tree's files are links to the host's content
    // store (counted once too).
    assert!(
        before["runs_bytes"].as_u64().unwrap() >= 2 << 20,
        "{before}"
    );
    assert!(
        before["snapshots_bytes"].as_u64().unwrap() >= 2 << 20,
        "{before}"
    );
    assert!(f.moor.run(&["status"]).stdout.contains("DISK"));

    // Snapshots just uploaded are left alone for 10 minutes: age them.
    f.host
        .exec("touch -d '1 hour ago' /home/moor/.moor/snapshots/*.manifest /home/moor/.moor/snapshots/blobs/*");
    let pruned = f
        .moor
        .run(&["runs", "prune", "--target", "box", "--keep", "1", "--json"]);
    assert_exit(&pruned, 0);
    let json = pruned.json();
    let mut removed: Vec<String> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    let mut oldest = ids[..2].to_vec();
    oldest.sort();
    assert_eq!(removed, oldest);
    assert_eq!(json["snapshots"], 1);
    assert!(json["bytes_freed"].as_u64().unwrap() >= 6 << 20, "{json}");
    let left = f.moor.run(&["runs", "--json"]);
    assert_eq!(left.json().as_array().unwrap().len(), 1);
    assert_eq!(left.json()[0]["id"], ids[2].as_str());
    let bad = f
        .moor
        .run(&["runs", "prune", "--target", "box", "--older-than", "7x"]);
    assert_exit(&bad, 2);
}
