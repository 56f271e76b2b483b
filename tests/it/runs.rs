//! `moor run` and friends against real test hosts: logs and exit codes, an
//! unchanged source sent once, ignores honoured, and runs that survive a
//! killed client, a frozen network and a killed agent daemon.

use std::time::{Duration, Instant};

use moor_tests::{assert_exit, docker_or_skip, find_file, Fixture, HostSpec, Moor, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// An attached host and a source directory.
struct Attached {
    f: Fixture,
    src: tempfile::TempDir,
}

fn attached() -> Attached {
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    Attached { f, src }
}

impl Attached {
    fn write(&self, name: &str, text: &str) {
        let path = self.src.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn moor(&self) -> &Moor {
        &self.f.moor
    }

    fn run(&self, extra: &[&str], command: &[&str]) -> Output {
        let src = self.src.path().to_str().unwrap();
        let args = [
            &["run", "--target", "box", "--source-dir", src][..],
            extra,
            &["--"],
            command,
        ]
        .concat();
        self.moor().run(&args)
    }

    fn detach(&self, command: &[&str]) -> serde_json::Value {
        let out = self.run(&["--detach", "--json"], command);
        assert_exit(&out, 0);
        out.json()
    }

    fn wait_state(&self, id: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let runs = self.moor().run(&["runs", "--json"]);
            assert_exit(&runs, 0);
            let run = runs
                .json()
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned();
            if let Some(run) = run.filter(|r| r["state"] == state) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never reached {state}: {}",
                runs.stdout
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

const TRAIN: &str = r#"import os, sys, time
for epoch in range(1, 4):
    print(f"epoch {epoch}", flush=True)
    print(f"warn {epoch}", file=sys.stderr, flush=True)
    time.sleep(0.2)
open(os.path.join(os.environ["MOOR_OUTPUT_DIR"], "metrics.json"), "w").write('{"accuracy": 0.97}')
sys.exit(3)
"#;

#[test]
fn a_run_streams_its_log_and_exits_with_the_jobs_code() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    a.write("train.py", TRAIN);
    a.write("data/huge.bin", "ignored");
    a.write(".gitignore", "data/\n");
    a.write("scratch.tmp", "ignored too");
    a.write(".moorignore", "*.tmp\n");
    let out = a.run(&[], &["python3", "train.py"]);
    assert_exit(&out, 3);
    assert_eq!(
        out.stdout,
        "epoch 1\nwarn 1\nepoch 2\nwarn 2\nepoch 3\nwarn 3\n"
    );
    assert!(out.stderr.contains("source bytes sent"), "{}", out.stderr);

    // The snapshot honoured the ignores; MOOR_RUN_ID is set.
    let listing = a.run(
        &[],
        &["sh", "-c", "find . -type f | sort; echo id=$MOOR_RUN_ID"],
    );
    assert_exit(&listing, 0);
    assert!(
        listing
            .stdout
            .starts_with("./.gitignore\n./.moorignore\n./train.py\nid="),
        "{}",
        listing.stdout
    );

    // Unchanged source: no source bytes the second time.
    let again = a.detach(&["true"]);
    assert_eq!(again["snapshot_bytes_sent"], 0);

    // logs, runs, download.
    let id = again["id"].as_str().unwrap().to_owned();
    let run = a.wait_state(&id, "succeeded");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["target"], "box");
    let started = a.detach(&["python3", "train.py"]);
    let id = started["id"].as_str().unwrap();
    let logs = a.moor().run(&["logs", id, "--follow"]);
    assert_exit(&logs, 3);
    assert_eq!(
        logs.stdout,
        "epoch 1\nwarn 1\nepoch 2\nwarn 2\nepoch 3\nwarn 3\n"
    );
    let tail = a.moor().run(&["logs", id, "--offset", "8"]);
    assert_exit(&tail, 0);
    assert!(tail.stdout.starts_with("warn 1\n"), "{}", tail.stdout);
    let to = a.src.path().join("out");
    let dl = a
        .moor()
        .run(&["download", id, "--to", to.to_str().unwrap()]);
    assert_exit(&dl, 0);
    let metrics = std::fs::read_to_string(find_file(&to, "metrics.json")).unwrap();
    assert!(metrics.contains("0.97"));

    let status = a.moor().run(&["status", "--json"]);
    assert_exit(&status, 0);
    assert_eq!(status.json()[0]["up"], true);
    let human = a.moor().run(&["status"]);
    assert!(
        human.stdout.lines().nth(1).unwrap().starts_with("box "),
        "{}",
        human.stdout
    );
    let unknown = a.moor().run(&["logs", "no-such-run"]);
    assert_exit(&unknown, 2);
}

#[test]
fn killing_the_client_does_not_stop_the_run() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    let script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done; exit 4";
    let src = a.src.path().to_str().unwrap().to_owned();
    let mut child = a.moor().spawn(&[
        "run",
        "--target",
        "box",
        "--source-dir",
        &src,
        "--name",
        "k9",
        "--",
        "sh",
        "-c",
        script,
    ]);
    std::thread::sleep(Duration::from_millis(1200));
    child.kill().unwrap();
    child.wait().unwrap();
    let runs = a.moor().run(&["runs", "--json"]);
    let id = runs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "k9")
        .expect("the run exists")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = a.moor().run(&["logs", &id, "--follow"]);
    assert_exit(&logs, 4);
    assert_eq!(
        logs.stdout,
        "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\n"
    );
    assert_eq!(a.wait_state(&id, "failed")["exit_code"], 4);
}

#[test]
fn a_frozen_network_is_survived_and_the_log_resumes_where_it_stopped() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    let started = a.detach(&[
        "sh",
        "-c",
        "for i in $(seq 1 12); do echo line $i; sleep 0.5; done",
    ]);
    let id = started["id"].as_str().unwrap().to_owned();
    let logs = std::thread::scope(|s| {
        let follower = s.spawn(|| a.moor().run(&["logs", &id, "--follow"]));
        std::thread::sleep(Duration::from_millis(1500));
        a.f.host.pause();
        std::thread::sleep(Duration::from_secs(4));
        a.f.host.unpause();
        follower.join().unwrap()
    });
    assert_exit(&logs, 0);
    let expected: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        logs.stdout, expected,
        "every line once\nstderr: {}",
        logs.stderr
    );
}

#[test]
fn killing_the_agent_daemon_keeps_runs_going_and_accounted() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    let started = a.detach(&["sh", "-c", "sleep 2; echo survived"]);
    let id = started["id"].as_str().unwrap().to_owned();
    let pid_file = "cat /home/moor/.moor/agent/*/run/pid";
    let before = a.f.host.exec(pid_file);
    a.f.host.exec(&format!("kill -9 {before}"));
    std::thread::sleep(Duration::from_millis(300));
    let run = a.wait_state(&id, "succeeded");
    assert_eq!(run["exit_code"], 0);
    assert_ne!(a.f.host.exec(pid_file), before, "a new daemon answered");
    let logs = a.moor().run(&["logs", &id]);
    assert_eq!(logs.stdout, "survived\n");
}

#[test]
fn cancel_and_concurrent_runs_from_two_controllers() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    let long = a.detach(&["sleep", "60"]);
    let id = long["id"].as_str().unwrap();
    let cancelled = a.moor().run(&["cancel", id, "--grace", "2", "--json"]);
    assert_exit(&cancelled, 0);
    assert_eq!(cancelled.json()["state"], "cancelled");

    // Two controllers (two moor processes at a time, many times over) on one target.
    let src = a.src.path().to_str().unwrap().to_owned();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let src = src.clone();
                let moor = a.moor();
                s.spawn(move || {
                    moor.run(&[
                        "run",
                        "--target",
                        "box",
                        "--source-dir",
                        &src,
                        "--",
                        "sh",
                        "-c",
                        &format!("echo run {i}"),
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outs.iter().enumerate() {
        assert_exit(out, 0);
        assert_eq!(out.stdout, format!("run {i}\n"));
    }
}

#[test]
fn target_local_runs_without_ssh_and_ctrl_c_detaches() {
    let moor = Moor::new(MOOR);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("job.sh"), "echo hello from local; exit 5\n").unwrap();
    let dir = src.path().to_str().unwrap();
    let run_local = |extra: &[&str]| {
        let args = [
            &["run", "--target", "local", "--source-dir", dir][..],
            extra,
            &["--", "sh", "job.sh"],
        ];
        moor.run(&args.concat())
    };
    let out = run_local(&[]);
    assert_exit(&out, 5);
    assert_eq!(out.stdout, "hello from local\n");
    // --json: the log on stderr, the finished run on stdout.
    let out = run_local(&["--json"]);
    assert_exit(&out, 5);
    assert!(out.stderr.contains("hello from local\n"), "{}", out.stderr);
    assert_eq!(out.json()["exit_code"], 5);
    assert_eq!(out.json()["state"], "failed");
    let runs = moor.run(&["runs", "--json"]);
    assert_exit(&runs, 0);
    assert_eq!(runs.json()[0]["target"], "local");
    assert_eq!(runs.json()[0]["exit_code"], 5);

    // Ctrl-C (SIGINT) detaches, says how to follow, and the run goes on.
    std::fs::write(src.path().join("slow.sh"), "sleep 1; echo finished\n").unwrap();
    let mut child = std::process::Command::new(MOOR)
        .args([
            "run",
            "--target",
            "local",
            "--source-dir",
            dir,
            "--name",
            "slow",
            "--",
            "sh",
            "slow.sh",
        ])
        .env("HOME", moor.home())
        .env("MOOR_WORKSPACE", moor.workspace())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has started (moor says so), Ctrl-C.
    let mut stderr = String::new();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("Ctrl-C detaches") {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    for line in lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--follow"), "{stderr}");
    let runs = moor.run(&["runs", "--json"]);
    let id = runs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "slow")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = moor.run(&["logs", &id, "--follow"]);
    assert_exit(&logs, 0);
    assert_eq!(logs.stdout, "finished\n");

    // The local daemon belongs to this test's HOME: stop it.
    for pid in std::fs::read_dir(moor.home().join(".moor/agent"))
        .unwrap()
        .flatten()
    {
        if let Ok(pid) = std::fs::read_to_string(pid.path().join("run/pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn fifty_concurrent_runs_on_one_agent() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    let src = a.src.path().to_str().unwrap().to_owned();
    // 50 runs in flight at once, submitted by 10 clients at a time.
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let src = src.clone();
                let moor = a.moor();
                s.spawn(move || {
                    (0..5)
                        .map(|_| {
                            let out = moor.run(&[
                                "run",
                                "--target",
                                "box",
                                "--source-dir",
                                &src,
                                "--detach",
                                "--json",
                                "--",
                                "sh",
                                "-c",
                                "sleep 3; echo $MOOR_RUN_ID",
                            ]);
                            assert_exit(&out, 0);
                            out.json()["id"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(ids.len(), 50);
    let running = a.moor().run(&["status", "--json"]);
    assert!(
        running.json()[0]["running"].as_u64().unwrap() > 0,
        "{}",
        running.stdout
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = a.moor().run(&["runs", "--json"]).json();
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "succeeded" && r["exit_code"] == 0)
            .count();
        if done == 50 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 50 succeeded: {runs}");
        std::thread::sleep(Duration::from_millis(500));
    }
    for id in ids.iter().take(5) {
        assert_eq!(a.moor().run(&["logs", id]).stdout.trim(), id);
    }
}

#[test]
fn snapshot_links_inside_the_source_arrive_and_links_outside_are_left_out_with_a_warning() {
    if !docker_or_skip() {
        return;
    }
    let a = attached();
    a.write("train.py", "print('hello')\n");
    std::os::unix::fs::symlink("train.py", a.src.path().join("same.py")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", a.src.path().join("host")).unwrap();
    let check = "import os; print('link', os.readlink('same.py')); print('outside', os.path.lexists('host')); exec(open('same.py').read())";
    let out = a.run(&[], &["python3", "-c", check]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("link train.py\n"), "{}", out.stdout);
    assert!(out.stdout.contains("outside False\n"), "{}", out.stdout);
    assert!(out.stdout.contains("hello\n"), "{}", out.stdout);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("symbolic link"))
        .collect();
    assert_eq!(
        warnings,
        ["moor: left out 1 symbolic link(s) pointing outside the source: host -> /etc/hostname"],
        "{}",
        out.stderr
    );
}

/// Runs of one snapshot share its files, unpacked once on the host: the
/// same inode in both runs, read-only (a run cannot change what the next
/// one gets), while each run's folders stay its own.
#[test]
fn runs_of_one_snapshot_share_its_read_only_files() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = moor_tests::source_dir(&[("train.py", "print(1)\n"), ("lib/util.py", "X = 1\n")]);
    let script = "stat -c %i lib/util.py; echo mine > lib/new.txt; rm train.py; \
                  if echo more >> lib/util.py; then echo wrote; else echo refused; fi";
    let mut inodes = Vec::new();
    for _ in 0..2 {
        let out = f.run_on("box", src.path(), &[], &["sh", "-c", script]);
        assert_exit(&out, 0);
        assert!(out.stdout.contains("refused"), "{}", out.stdout);
        inodes.push(out.stdout.lines().next().unwrap().to_owned());
    }
    assert_eq!(inodes[0], inodes[1], "one copy on the host");
    // The shared copy is untouched by either run.
    let tree = f.host.exec(
        "cat /home/moor/.moor/snapshots/*.tree/lib/util.py; ls -R /home/moor/.moor/snapshots/*.tree",
    );
    assert!(tree.starts_with("X = 1\n"), "{tree}");
    assert!(
        tree.contains("train.py") && !tree.contains("new.txt"),
        "{tree}"
    );
}
