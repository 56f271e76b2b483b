//! Finding runs the way people refer to them, against a real test host:
//! a run is named after its script unless `--name` says otherwise, every run
//! command takes an id, a unique id prefix or a name (its newest run), the
//! `runs` table shows names and durations, and cancelling a finished run
//! says it had already ended.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn runs_are_found_by_name_or_id_prefix_and_a_finished_one_is_not_cancelled() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("train.py"), "print('trained')\n").unwrap();
    let run = |extra: &[&str], command: &[&str]| {
        let args = [
            &["run", "--target", "box", "--json", "--source-dir"][..],
            &[src.path().to_str().unwrap()],
            extra,
            &["--"],
            command,
        ]
        .concat();
        let out = f.moor.run(&args);
        assert_exit(&out, 0);
        out.json()["id"].as_str().unwrap().to_owned()
    };
    let first = run(&[], &["python3", "train.py"]);
    let second = run(&["--name", "eval"], &["python3", "train.py"]);

    let table = f.moor.run(&["runs"]);
    assert_exit(&table, 0);
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["RUN", "NAME", "TARGET", "STATE", "EXIT", "DURATION", "COMMAND"]
    );
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&first))
        .unwrap();
    assert!(
        row.contains(" train ") && row.contains(" succeeded "),
        "{row}"
    );
    assert!(row.contains("s "), "no duration in {row}");

    // By name, by unique prefix; an ambiguous prefix is refused with the ids.
    let logs = f.moor.run(&["logs", "train"]);
    assert_exit(&logs, 0);
    assert_eq!(logs.stdout, "trained\n");
    let logs = f.moor.run(&["logs", "eval"]);
    assert_eq!(logs.stdout, "trained\n");
    // --json: the log as JSON lines.
    let lines = f.moor.run(&["logs", "eval", "--json"]);
    assert_exit(&lines, 0);
    assert_eq!(lines.stdout, "{\"offset\":0,\"text\":\"trained\"}\n");
    let prefix = &second[..second.len() - 4];
    assert_exit(&f.moor.run(&["logs", prefix]), 0);
    let shared: String = first
        .chars()
        .zip(second.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let ambiguous = f.moor.run(&["logs", &shared]);
    assert_exit(&ambiguous, 2);
    assert!(
        ambiguous.stderr.contains("matches 2 runs"),
        "{}",
        ambiguous.stderr
    );

    // Cancelling a finished run stops nothing and says so.
    let cancel = f.moor.run(&["cancel", "train"]);
    assert_exit(&cancel, 0);
    assert_eq!(
        cancel.stdout,
        format!("run {first} had already ended: succeeded (exit 0)\n")
    );
    let cancel = f.moor.run(&["cancel", "train", "--json"]);
    assert_eq!(cancel.json()["already_ended"], true);

    // show names the auth method in words; status has a readable uptime.
    let shown = f.moor.run(&["show", "box"]);
    assert!(
        shown.stdout.contains("  auth         key "),
        "{}",
        shown.stdout
    );

    let to = f.moor.home().join("dl");
    let dl = f
        .moor
        .run(&["download", "eval", "--to", to.to_str().unwrap(), "--json"]);
    assert_exit(&dl, 0);
    assert_eq!(dl.json()["run"], second.as_str());
}
