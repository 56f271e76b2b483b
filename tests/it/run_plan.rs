//! One run pipeline, against two real test hosts: `moor run` on one target
//! and on two (a job), `-f` job files and `moor job submit` all resolve
//! their flags into one plan, so each option is honoured the same way on
//! every path (`--name`, `-e`, the default name), or refused with exit 2
//! and the reason where it means nothing (`--spark` on two nodes or with a
//! job file, `--source-dir` with a job file, build assets without `--env`),
//! before anything runs.

use moor_tests::{assert_exit, docker_or_skip, source_dir as src, Cluster, HostSpec, Moor};

use crate::jobs::job_row;

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// `moor run` on `targets` with `extra` flags; the finished run's id.
fn run_on(moor: &Moor, targets: &[&str], dir: &str, extra: &[&str], command: &[&str]) -> String {
    let mut args = vec!["run", "--json", "--source-dir", dir];
    for target in targets {
        args.extend(["--target", target]);
    }
    args.extend(extra);
    args.push("--");
    args.extend(command);
    let out = moor.run(&args);
    assert_exit(&out, 0);
    out.json()["id"].as_str().unwrap().to_owned()
}

/// The log of a run or job, as `moor logs` prints it.
fn log(moor: &Moor, id: &str) -> String {
    let out = moor.run(&["logs", id]);
    assert_exit(&out, 0);
    out.stdout
}

/// Asserts `out` is exit 2 with `why` in its one-line reason on stderr.
fn refused(out: &moor_tests::Output, why: &str) {
    assert_exit(out, 2);
    assert!(
        out.stderr.contains(why),
        "expected {why:?} in: {}",
        out.stderr
    );
}

#[test]
fn an_option_means_the_same_on_a_single_run_and_a_two_node_job() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 2, HostSpec::default());
    let moor = &c.moor;
    let dir = src(&[(
        "train.py",
        "import os\nprint('greeting', os.environ['GREETING'])\n",
    )]);
    let dir = dir.path().to_str().unwrap();
    let flags = ["--name", "warmup", "-e", "GREETING=hello there"];
    let command = ["python3", "train.py"];

    // --name and -e: honoured alike on one node and on two.
    let single = run_on(moor, &["node0"], dir, &flags, &command);
    let job = run_on(moor, &["node0", "node1"], dir, &flags, &command);
    assert!(job.starts_with('j'), "two targets make a job: {job}");
    for id in [&single, &job] {
        assert_eq!(job_row(moor, id)["name"], "warmup", "{id}");
    }
    assert!(log(moor, &single).contains("greeting hello there"));
    let job_log = log(moor, &job);
    assert_eq!(
        job_log.matches("greeting hello there").count(),
        2,
        "{job_log}"
    );

    // Without --name: both are named after the script.
    let single = run_on(moor, &["node0"], dir, &["-e", "GREETING=x"], &command);
    let job = run_on(
        moor,
        &["node0", "node1"],
        dir,
        &["-e", "GREETING=x"],
        &command,
    );
    for id in [&single, &job] {
        assert_eq!(job_row(moor, id)["name"], "train", "{id}");
    }

    // A job file: --name and -e over the file's, as on the command line.
    let code = src(&[(
        "train.py",
        "import os\nprint('greeting', os.environ['GREETING'])\n",
    )]);
    let file = code.path().join("job.yml");
    std::fs::write(
        &file,
        "command: python3 train.py\ncode: .\ndisplay_name: from-file\nenvironment_variables:\n  GREETING: from the file\ncompute: azureml:node0\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = moor.run(&[
        "run",
        "--json",
        "-f",
        file,
        "--name",
        "from-flag",
        "-e",
        "GREETING=from a flag",
    ]);
    assert_exit(&out, 0);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(job_row(moor, &id)["name"], "from-flag");
    assert!(log(moor, &id).contains("greeting from a flag"));
    let out = moor.run(&["job", "submit", file, "--json"]);
    assert_exit(&out, 0);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(job_row(moor, &id)["name"], "from-file");
    assert!(log(moor, &id).contains("greeting from the file"));

    // Refused alike wherever they mean nothing, before anything runs.
    let before = moor
        .run(&["runs", "--json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    let spark = ["--spark"];
    refused(
        &moor.run(
            &[
                &["run", "--target", "node0", "--target", "node1"][..],
                &spark,
                &["--", "wc.py"],
            ]
            .concat(),
        ),
        "--spark runs spark-submit on one head node",
    );
    refused(
        &moor.run(&["run", "-f", file, "--spark"]),
        "--spark submits a script",
    );
    refused(
        &moor.run(&["run", "-f", file, "--source-dir", dir]),
        "--source-dir with a job file",
    );
    for targets in [
        &["--target", "node0"][..],
        &["--target", "node0", "--target", "node1"],
    ] {
        let out = moor.run(&[&["run"][..], targets, &["--wheelhouse", dir, "--", "true"]].concat());
        refused(&out, "no --env was given");
    }
    refused(
        &moor.run(&["job", "submit", "no-such.yml"]),
        "no such job file: no-such.yml",
    );
    let after = moor
        .run(&["runs", "--json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused plan started nothing");
}
