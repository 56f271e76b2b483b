//! An aarch64 machine: an arm64 Debian test host run under qemu-user-static
//! (the real sshd, python3 and pip of Debian's arm64 packages, emulated).
//! Attach finds its architecture and installs the aarch64 agent, a Python
//! script runs on it, and a pip environment builds there from a wheelhouse.

use moor_tests::packages::{small_wheelhouse, SMALL_REQUIREMENTS};
use moor_tests::{assert_exit, docker_or_skip, find_file, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn an_arm64_host_gets_the_aarch64_agent_runs_python_and_builds_a_pip_env() {
    if !docker_or_skip() {
        return;
    }
    // Emulation takes this machine's cores.
    let _heavy = moor_tests::heavy();
    let f = Fixture::new(
        MOOR,
        HostSpec {
            arm64: true,
            ..HostSpec::default()
        },
    );
    let arm = &moor_cli::AGENT_AARCH64;

    let out = f.validate(&[]);
    assert_exit(&out, 0);
    let checks = out.json()["checks"].as_array().unwrap().clone();
    let arch = checks.iter().find(|c| c["id"] == "os.arch").unwrap();
    assert_eq!(arch["status"], "pass", "{arch}");
    assert!(
        arch["detail"].as_str().unwrap().starts_with("aarch64"),
        "{arch}"
    );

    // The aarch64 build went, packed, and is that very build on the host.
    let out = f.attach("arm", &[]);
    assert_exit(&out, 0);
    let json = out.json();
    assert_eq!(json["agent"]["status"], "installed");
    assert_eq!(json["agent"]["build"], arm.sha256);
    let sent = json["agent"]["bytes_sent"].as_u64().unwrap() as usize;
    assert!(
        sent == arm.gzip(None).unwrap().len() || sent == arm.xz.len(),
        "{sent} bytes sent: not the packed aarch64 agent"
    );
    let path = json["agent"]["path"]
        .as_str()
        .unwrap()
        .replace('~', "/home/moor");
    let file = f.host.exec(&format!("od -An -tx1 -j18 -N2 {path}"));
    assert_eq!(file.trim(), "b7 00", "an aarch64 ELF (e_machine 183)");
    // Again: the probe finds the aarch64 agent, nothing is sent.
    let out = f.attach("arm", &[]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["agent"]["status"], "present");
    assert_eq!(out.json()["agent"]["bytes_sent"], 0);

    // A Python script runs there, its output comes back.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("train.py"),
        "import json, os, platform\n\
         loss = [1.0 / (step + 1) for step in range(10)]\n\
         out = os.path.join(os.environ['MOOR_OUTPUT_DIR'], 'result.json')\n\
         json.dump({'machine': platform.machine(), 'loss': loss[-1]}, open(out, 'w'))\n\
         print('trained on', platform.machine())\n",
    )
    .unwrap();
    let out = f.run_on("arm", &src, &["--json"], &["python3", "train.py"]);
    assert_exit(&out, 0);
    let run = out.json();
    assert_eq!(run["exit_code"], 0, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let logs = f.moor.run(&["logs", &id]);
    assert_exit(&logs, 0);
    assert!(
        logs.stdout.contains("trained on aarch64"),
        "{}",
        logs.stdout
    );
    let into = dir.path().join("got");
    let into = into.to_str().unwrap();
    assert_exit(&f.moor.run(&["download", &id, "--to", into]), 0);
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(find_file(&dir.path().join("got"), "result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["machine"], "aarch64");

    // A pip environment, built by the aarch64 agent from a wheelhouse.
    let reqs = dir.path().join("requirements.txt");
    std::fs::write(&reqs, SMALL_REQUIREMENTS).unwrap();
    let reqs = reqs.to_str().unwrap();
    assert_exit(
        &f.moor.run(&[
            "env",
            "create",
            "small",
            "--pip-requirements",
            reqs,
            "--json",
        ]),
        0,
    );
    let wheels = small_wheelhouse().to_str().unwrap();
    let out = f.moor.run(&[
        "env",
        "prepare",
        "small",
        "--target",
        "arm",
        "--wheelhouse",
        wheels,
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["cached"], false);
    let out = f.run_on(
        "arm",
        &src,
        &["--env", "small"],
        &[
            "python3",
            "-c",
            "import idna, platform, six, sys; print(sys.prefix.count('/.moor/envs/'), six.__version__, idna.encode('moor.example').decode(), platform.machine())",
        ],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("1 1.16.0 moor.example aarch64"),
        "{}",
        out.stdout
    );
}
