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
    let out = f.moor.run(&[
        "run",
        "--target",
        "box",
        "--json",
        "--source-dir",
        src.path().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
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
