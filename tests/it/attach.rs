//! `moor attach`, `list`, `show`, `validate NAME`, `detach` against real
//! OpenSSH test hosts: agent install and idempotence, key enrollment, one
//! machine one attachment, claims across workspaces, races, kill -9, and no
//! secret anywhere it should not be.

use std::time::{Duration, Instant};

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Moor, Output, SshAuth, TestHost};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");
const PASSWORD: &str = "tr0ub4dor&3-attach-secret";
const SUB: &str = "6c2f2e4a-1b2c-4d5e-8f90-123456789abc";

fn fixture(spec: HostSpec) -> Fixture {
    Fixture::new(MOOR, spec)
}

fn agent_path(out: &Output) -> String {
    out.json()["agent"]["path"]
        .as_str()
        .unwrap()
        .replace('~', "/home/moor")
}

/// The agent crosses the link compressed: with xz where the host has it,
/// else gzip, else as it is; each time the host unpacks it and the result
/// is the very build (its sha256 checked there, and here).
#[test]
fn the_agent_goes_compressed_as_the_host_can_unpack_it() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    // This machine's xz (Debian's, like the host's liblzma) given to the host.
    let copied = std::process::Command::new("docker")
        .args([
            "cp",
            "-L",
            "/usr/bin/xz",
            &format!("{}:/usr/bin/xz", f.host.name),
        ])
        .status()
        .unwrap();
    assert!(copied.success());
    let agent = &moor_cli::AGENT_X86_64;
    for (tool, sent) in [
        ("xz", agent.xz.len()),
        ("gzip", agent.gzip(None).unwrap().len()),
        ("none", agent.binary().unwrap().len()),
    ] {
        match tool {
            "gzip" => {
                f.host.exec("rm /usr/bin/xz");
            }
            "none" => {
                f.host
                    .exec("mkdir -p /hidden && mv /bin/gzip /hidden/; rm -f /usr/bin/gzip");
            }
            _ => {}
        }
        f.host.exec("rm -rf /home/moor/.moor/agent");
        let out = f.attach("packed", &[]);
        assert_exit(&out, 0);
        let json = out.json();
        assert_eq!(json["agent"]["status"], "installed", "{tool}");
        assert_eq!(json["agent"]["bytes_sent"], sent, "{tool}");
        let path = agent_path(&out);
        let sum = f.host.exec(&format!("sha256sum {path}"));
        assert_eq!(
            sum.split_whitespace().next().unwrap(),
            agent.sha256,
            "{tool}"
        );
    }
    assert!(
        agent.xz.len() * 3 < agent.binary().unwrap().len(),
        "xz: under a third"
    );
}

#[test]
fn attach_installs_the_agent_once_and_reattach_sends_nothing() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let out = f.attach("trainer", &[]);
    assert_exit(&out, 0);
    let json = out.json();
    assert_eq!(json["agent"]["status"], "installed");
    // The test host (Debian minbase) has gzip and no xz: the gzip form went.
    assert_eq!(
        json["agent"]["bytes_sent"],
        moor_cli::AGENT_X86_64.gzip(None).unwrap().len()
    );
    assert_eq!(json["claim"], "created");
    let build = json["agent"]["build"].as_str().unwrap().to_owned();
    // The agent on the host is the very build, verified by its hash there.
    let path = agent_path(&out);
    let sum = f.host.exec(&format!("sha256sum {path}"));
    assert_eq!(sum.split_whitespace().next().unwrap(), build);
    let hello = f.host.exec_as_user(&[&path, "hello"], b"").1;
    assert!(hello.starts_with("MOOR-AGENT/1\n"), "{hello}");
    let claim: serde_json::Value =
        serde_json::from_str(&f.host.read_file("/home/moor/.moor/claim").unwrap()).unwrap();
    assert_eq!(claim["target"], "trainer");
    // Private files.
    assert_eq!(f.host.exec(&format!("stat -c %a {path}")), "700");

    // Re-attach: same name refreshes, no agent bytes, claim kept.
    let again = f.attach("trainer", &[]);
    assert_exit(&again, 0);
    assert_eq!(again.json()["agent"]["status"], "present");
    assert_eq!(again.json()["agent"]["bytes_sent"], 0);
    assert_eq!(again.json()["claim"], "kept");
    assert_eq!(
        again.json()["target"]["created_at"],
        json["target"]["created_at"]
    );

    // An agent that answers the handshake wrongly is replaced, never used.
    f.host.exec(&format!(
        "printf '#!/bin/sh\\necho MOOR-AGENT/1\\necho {{\\\"protocol\\\":1,\\\"version\\\":\\\"0.1.0\\\",\\\"build\\\":\\\"bad\\\"}}\\n' > {path}"
    ));
    let hello = f.host.exec_as_user(&[&path, "hello"], b"").1;
    assert!(hello.contains("\"build\":\"bad\""), "{hello}");
    let fixed = f.attach("trainer", &[]);
    assert_exit(&fixed, 0);
    assert_eq!(fixed.json()["agent"]["status"], "installed");
    let sum = f.host.exec(&format!("sha256sum {path}"));
    assert_eq!(sum.split_whitespace().next().unwrap(), build);

    // list / show.
    let list = f.moor.run(&["list", "--json"]);
    assert_exit(&list, 0);
    let targets = list.json();
    let t = &targets.as_array().unwrap()[0];
    for field in [
        "name",
        "kind",
        "host",
        "port",
        "user",
        "state",
        "agent_version",
        "host_key_fingerprint",
        "machine_id",
        "resource_id",
    ] {
        assert!(t.get(field).is_some(), "list --json lacks {field}: {t}");
    }
    assert_eq!(t["name"], "trainer");
    assert_eq!(t["state"], "ready");
    assert_eq!(t["machine_id"], f.host.exec("cat /etc/machine-id").as_str());
    assert_eq!(
        t["host_key_fingerprint"],
        f.host.ed25519_fingerprint().as_str()
    );
    let show = f.moor.run(&["show", "trainer", "--json"]);
    assert_exit(&show, 0);
    assert_eq!(show.json()["facts"]["os"]["id"], "debian");
    assert!(show.json()["checks"].as_array().unwrap().len() >= 14);
    let human = f.moor.run(&["list"]);
    assert!(human.stdout.starts_with("NAME"), "{}", human.stdout);

    // validate NAME uses the stored settings.
    let v = f.moor.run(&["validate", "trainer", "--json"]);
    assert_exit(&v, 0);
    assert_eq!(v.json()["facts"]["claim"]["target"], "trainer");

    // Workspace files are private.
    use std::os::unix::fs::PermissionsExt;
    let ws = f.moor.workspace();
    assert_eq!(
        std::fs::metadata(&ws).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for file in ["moor.db", "known_hosts"] {
        let mode = std::fs::metadata(ws.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}

#[test]
fn password_attach_enrolls_the_workspace_key_and_leaks_the_password_nowhere() {
    if !docker_or_skip() {
        return;
    }
    let host = TestHost::start(&HostSpec {
        password: Some(PASSWORD.into()),
        ..HostSpec::default()
    });
    let mut moor = Moor::new(MOOR);
    moor.env("PW", PASSWORD);
    // Watch argv of every process here and on the host while attaching.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let name = host.name.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let remote = std::process::Command::new("docker")
                    .args(["exec", &name, "ps", "-eo", "args"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                seen.push(remote);
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                        seen.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    let out = moor.run(
        &[
            &["attach", "vm", "pw-box", "--json", "-vvv"][..],
            &host.login(),
            &["--password-env", "PW", "--accept-new-host-key"],
        ]
        .concat(),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let argvs = watcher.join().unwrap();
    assert_exit(&out, 0);
    assert!(
        argvs.iter().all(|a| !a.contains(PASSWORD)),
        "password in some process's argv"
    );
    assert_eq!(out.json()["enrolled_key"], true);
    assert_eq!(out.json()["target"]["auth"]["method"], "workspace_key");
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "password in output or trace log"
    );
    assert!(out.stderr.contains("TRACE"));
    for entry in walk(&moor.workspace()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "password in {}",
            entry.display()
        );
    }
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(moor.workspace().join("id_ed25519"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600);

    // Enrolled once, tagged with the workspace id.
    let again = moor.run(
        &[
            &["attach", "vm", "pw-box", "--json"][..],
            &host.login(),
            &["--password-env", "PW"],
        ]
        .concat(),
    );
    assert_exit(&again, 0);
    let ak = host.read_file("/home/moor/.ssh/authorized_keys").unwrap();
    assert_eq!(
        ak.lines().filter(|l| l.contains("moor-workspace:")).count(),
        1,
        "{ak}"
    );

    // Later commands need no password.
    let mut no_pw = Moor::new(MOOR);
    no_pw.env("MOOR_WORKSPACE", moor.workspace().to_str().unwrap());
    let v = no_pw.run(&["validate", "pw-box", "--json"]);
    assert_exit(&v, 0);
    assert!(v.check_detail("ssh.auth").contains("id_ed25519"));

    // detach --purge removes claim, agent and the enrolled key.
    let d = moor.run(&["detach", "pw-box", "--purge", "--json"]);
    assert_exit(&d, 0);
    assert_eq!(d.json()["claim"], "removed");
    assert_eq!(d.json()["agent_removed"], true);
    assert_eq!(d.json()["key_removed"], true);
    assert!(host.read_file("/home/moor/.moor/claim").is_none());
    assert!(!host
        .read_file("/home/moor/.ssh/authorized_keys")
        .unwrap()
        .contains("moor-workspace:"));
    assert_eq!(host.exec("ls /home/moor/.moor"), "");
    assert_eq!(moor.run(&["list", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn no_enroll_key_keeps_password_auth() {
    if !docker_or_skip() {
        return;
    }
    let host = TestHost::start(&HostSpec {
        auth: SshAuth::Password,
        password: Some(PASSWORD.into()),
        ..HostSpec::default()
    });
    let mut moor = Moor::new(MOOR);
    moor.env("PW", PASSWORD);
    let out = moor.run(
        &[
            &["attach", "vm", "p", "--json"][..],
            &host.login(),
            &[
                "--password-env",
                "PW",
                "--accept-new-host-key",
                "--no-enroll-key",
            ],
        ]
        .concat(),
    );
    assert_exit(&out, 0);
    assert_eq!(out.json()["enrolled_key"], false);
    assert_eq!(
        out.json()["target"]["auth"],
        serde_json::json!({"method": "password", "env": "PW"})
    );
    assert!(host
        .read_file("/home/moor/.ssh/authorized_keys")
        .is_none_or(|ak| !ak.contains("moor-workspace")));
    // The stored reference is the variable's name; with it set, validate works.
    assert_exit(&moor.run(&["validate", "p"]), 0);
}

#[test]
fn one_machine_one_attachment() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    assert_exit(&f.attach("a", &[]), 0);
    let out = f.attach("b", &[]);
    assert_exit(&out, 7);
    assert_eq!(out.json()["error"]["kind"], "taken");
    assert!(out.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already attached as target \"a\""));

    let out = f.attach("b", &["--replace"]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["replaced"], "a");
    let names: Vec<String> = f
        .moor
        .run(&["list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["b"]);
    let claim = f.host.read_file("/home/moor/.moor/claim").unwrap();
    assert!(claim.contains("\"target\":\"b\""), "{claim}");

    // The name b belongs to this machine: another machine cannot take it.
    let other = TestHost::start(&HostSpec {
        authorized_keys: vec![f.key.public.clone()],
        ..HostSpec::default()
    });
    let out = f.moor.run(
        &[
            &["attach", "vm", "b", "--json"][..],
            &other.login(),
            &[
                "--key",
                f.key.private.to_str().unwrap(),
                "--accept-new-host-key",
            ],
        ]
        .concat(),
    );
    assert_exit(&out, 7);
    assert!(out.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("taken by another machine"));
    // Nothing was claimed on the other machine.
    assert!(other.read_file("/home/moor/.moor/claim").is_none());
}

#[test]
fn a_machine_claimed_by_another_workspace_needs_take_over() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    assert_exit(&f.attach("mine", &[]), 0);
    let first_id = serde_json::from_str::<serde_json::Value>(
        &f.host.read_file("/home/moor/.moor/claim").unwrap(),
    )
    .unwrap()["workspace_id"]
        .clone();

    let other = Moor::new(MOOR);
    let out = f.attach_with(&other, "theirs", &[]);
    assert_exit(&out, 7);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(first_id.as_str().unwrap()),
        "names the other workspace: {message}"
    );
    assert!(out.json()["error"]["fix"]
        .as_str()
        .unwrap()
        .contains("--take-over"));

    let out = f.attach_with(&other, "theirs", &["--take-over"]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["claim"], "replaced");
    let claim: serde_json::Value =
        serde_json::from_str(&f.host.read_file("/home/moor/.moor/claim").unwrap()).unwrap();
    assert_ne!(claim["workspace_id"], first_id);
    // The first workspace's detach leaves the new owner's claim alone.
    let d = f.moor.run(&["detach", "mine", "--json"]);
    assert_exit(&d, 0);
    assert_eq!(d.json()["claim"], "other");
    assert!(f.host.read_file("/home/moor/.moor/claim").is_some());
}

#[test]
fn racing_attaches_exactly_one_wins() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    // Known host key first, so both racers connect the same way.
    assert_exit(&f.validate(&[]), 0);

    // Two workspaces: the host-side claim decides.
    let other = Moor::new(MOOR);
    std::fs::create_dir_all(other.workspace()).unwrap();
    std::fs::copy(
        f.moor.workspace().join("known_hosts"),
        other.workspace().join("known_hosts"),
    )
    .unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| f.attach("w1", &[]));
        let b = s.spawn(|| f.attach_with(&other, "w2", &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_one_wins(&a, &b);

    // One workspace, two names at once: the reservation decides.
    let g = fixture(HostSpec::default());
    assert_exit(&g.validate(&[]), 0);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| g.attach("x1", &[]));
        let b = s.spawn(|| g.attach("x2", &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_one_wins(&a, &b);
    assert_eq!(
        g.moor
            .run(&["list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn kill_9_at_any_point_leaves_no_target_or_a_complete_one() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let args = f.attach_args("k");
    assert_exit(&f.validate(&[]), 0);
    // Time a whole attach, then kill runs at points spread over it.
    let started = Instant::now();
    assert_exit(&f.attach("probe", &[]), 0);
    let full = started.elapsed();
    assert_exit(&f.moor.run(&["detach", "probe", "--purge"]), 0);
    for step in 0..10u32 {
        let delay = full * step / 10;
        let mut child = f.moor.spawn(&args);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let list = f.moor.run(&["list", "--json"]);
        assert_exit(&list, 0);
        for t in list.json().as_array().unwrap() {
            assert_eq!(t["state"], "ready", "after kill at {delay:?}: {t}");
            assert!(!t["agent_version"].as_str().unwrap().is_empty());
        }
        // Whatever is installed under the final name is a verified agent.
        let installed = f
            .host
            .exec("ls /home/moor/.moor/agent/*/moor-agent 2>/dev/null || true");
        for path in installed.lines() {
            let code = f.host.exec_as_user(&[path, "hello"], b"").0;
            assert_eq!(code, 0, "{path} after kill at {delay:?}");
        }
        // Running attach again completes it.
        let again = f.attach("k", &[]);
        assert_exit(&again, 0);
        assert_eq!(again.json()["target"]["state"], "ready");
        assert_exit(&f.moor.run(&["detach", "k", "--purge"]), 0);
    }
}

#[test]
fn an_interrupted_upload_never_looks_installed() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let agent = &moor_cli::AGENT_X86_64;
    let id = agent.install_id();
    let sha = agent.sha256;
    let half = &agent.binary().unwrap()[..agent.binary().unwrap().len() / 2];
    // The very script attach runs, fed a cut upload.
    let (code, out) = f.host.exec_as_user(
        &["sh", "-c", moor::remote::INSTALL, "install", &id, sha],
        half,
    );
    assert_eq!(code, 65, "{out}");
    assert_eq!(
        f.host.exec(&format!("ls -A /home/moor/.moor/agent/{id}")),
        "",
        "no agent, no temp file"
    );
    let out = f.attach("after-cut", &[]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["agent"]["status"], "installed");
}

#[test]
fn a_failed_check_stops_attach_before_anything_is_installed() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec {
        os: "centos-7",
        ..HostSpec::default()
    });
    let out = f.attach("old", &[]);
    assert_exit(&out, 3);
    assert_eq!(out.check("os.supported")["status"], "fail");
    assert_eq!(
        f.host.exec("ls -A /home/moor/.moor 2>/dev/null || true"),
        ""
    );
    assert_eq!(
        f.moor.run(&["list", "--json"]).json(),
        serde_json::json!([])
    );
    // Human output shows the same table.
    let human = f
        .moor
        .run(&[&["attach", "vm", "old"][..], &f.login()].concat());
    assert_exit(&human, 3);
    assert!(
        human.stdout.contains("  FAIL  os.supported"),
        "{}",
        human.stdout
    );
}

#[test]
fn resource_ids_and_hdinsight_endpoints() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let vm_id = format!(
        "/subscriptions/{SUB}/resourceGroups/ml/providers/Microsoft.Compute/virtualMachines/dsvm"
    );
    let out = f.attach("dsvm", &["--resource-id", &vm_id]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["target"]["resource_id"], vm_id.as_str());

    let bad = format!(
        "/subscriptions/{SUB}/resourceGroups/ml/providers/Microsoft.Storage/virtualMachines/dsvm"
    );
    let out = f
        .moor
        .run(&["attach", "vm", "x", "--host", "h", "--resource-id", &bad]);
    assert_exit(&out, 2);
    assert!(
        out.stderr
            .contains("segment 6 is \"Microsoft.Storage\", expected \"Microsoft.Compute\""),
        "{}",
        out.stderr
    );

    // HDInsight: the host comes from the cluster name.
    let hdi = format!(
        "/subscriptions/{SUB}/resourceGroups/ml/providers/Microsoft.HDInsight/clusters/spark1"
    );
    let out = f.moor.run(&[
        "attach",
        "hdinsight",
        "spark",
        "--json",
        "--resource-id",
        &hdi,
        "--user",
        "sshuser",
        "--connect-timeout",
        "3",
    ]);
    assert_exit(&out, 6);
    assert_eq!(out.json()["host"]["host"], "spark1-ssh.azurehdinsight.net");
    let out = f
        .moor
        .run(&["attach", "hdinsight", "spark", "--user", "sshuser"]);
    assert_exit(&out, 2);
    // A head node without spark-submit fails its check.
    let out = f
        .moor
        .run(&[&["attach", "hdinsight", "spark", "--json"][..], &f.login()].concat());
    assert_exit(&out, 3);
    assert_eq!(out.check("spark.submit")["status"], "fail");
    // The non-zero exit says why on stderr, one line: which check, and the fix.
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("error: 3 check(s) failed: spark.submit, yarn.resourcemanager, hdfs.default_fs; fix: follow each failed check's fix"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_targets_and_bad_names() {
    let moor = Moor::new(MOOR);
    for args in [
        &["show", "nope"][..],
        &["detach", "nope"],
        &["validate", "nope"],
    ] {
        let out = moor.run(args);
        assert_exit(&out, 2);
        assert!(
            out.stderr.starts_with("error: no target named \"nope\""),
            "{}",
            out.stderr
        );
    }
    let out = moor.run(&["attach", "vm", "1bad", "--host", "h"]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("is not a valid target name"));
}

/// Of two racing attaches, one succeeded and the other was refused as taken.
fn assert_one_wins(a: &Output, b: &Output) {
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(
        codes,
        [0, 7],
        "a: {} {}\nb: {} {}",
        a.stdout,
        a.stderr,
        b.stdout,
        b.stderr
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The static agent that attach installs starts, supervises and reports runs
/// on the (Debian) host itself.
#[test]
fn the_installed_agent_runs_jobs_on_the_host() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let out = f.attach("runner", &[]);
    assert_exit(&out, 0);
    let agent = agent_path(&out);
    let (code, started) = f.host.exec_as_user(
        &[
            &agent,
            "run",
            "--workdir",
            "/tmp",
            "--",
            "sh",
            "-c",
            "echo hi from $(hostname)",
        ],
        b"",
    );
    assert_eq!(code, 0, "{started}");
    let id = serde_json::from_str::<serde_json::Value>(&started).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let run = loop {
        let (_, shown) = f.host.exec_as_user(&[&agent, "show", &id], b"");
        let run: serde_json::Value = serde_json::from_str(&shown).unwrap();
        if run["state"] == "succeeded" || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(run["state"], "succeeded", "{run}");
    let log = f
        .host
        .read_file(&format!("/home/moor/.moor/runs/{id}/log"))
        .unwrap();
    assert_eq!(log.trim(), format!("hi from {}", f.host.name));
}
