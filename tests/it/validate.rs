//! `moor validate` against real OpenSSH servers in test-host containers:
//! every auth method, the host-key rules, every check that varies between
//! the host variants, and every bad input of issue 2 with its exit code.

use std::time::Duration;

use moor_tests::{
    assert_exit, docker_or_skip, Fixture, HostSpec, KeyPair, Keys, Moor, Output, SshAuth, TestHost,
};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");
const PASSWORD: &str = "correct horse battery staple 7f3a";

fn fixture(spec: HostSpec) -> Fixture {
    Fixture::new(MOOR, spec)
}

/// Runs without --json and checks the one-line error (cause; fix).
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    assert_exit(out, code);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {}", out.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains("; fix: "), "{}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{:?} not in {}",
        needle,
        lines[0]
    );
}

#[test]
fn key_auth_validates_a_debian_host_and_reports_every_check() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let out = f.validate(&[]);
    assert_exit(&out, 0);
    let json = out.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["host"]["address"], f.host.ip.as_str());
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "ssh.connect",
            "ssh.host_key",
            "ssh.auth",
            "os.supported",
            "os.arch",
            "network.public_ip",
            "disk.free",
            "memory",
            "cpu",
            "docker.engine",
            "docker.access",
            "conda.present",
            "python.present",
            "gpu.nvidia",
            "sudo.passwordless"
        ]
    );
    for c in json["checks"].as_array().unwrap() {
        let status = c["status"].as_str().unwrap();
        assert!(["pass", "warn", "fail", "skip"].contains(&status));
        assert_eq!(
            c["remedy"].is_string(),
            status == "warn" || status == "fail",
            "{c}"
        );
    }
    assert_eq!(
        out.check("os.supported")["detail"],
        "Debian GNU/Linux 12 (bookworm)"
    );
    assert_eq!(out.check("network.public_ip")["status"], "warn");
    assert_eq!(out.check("python.present")["status"], "pass");
    assert_eq!(out.check("gpu.nvidia")["status"], "skip");
    assert_eq!(out.check("docker.engine")["status"], "warn");
    let machine_id = f.host.exec("cat /etc/machine-id");
    assert_eq!(json["facts"]["machine_id"], machine_id.as_str());
    assert_eq!(
        json["host_key"]["fingerprint"],
        f.host.ed25519_fingerprint().as_str()
    );
    assert_eq!(json["host_key"]["status"], "learned");

    // Second run: the key is known now, no flag needed.
    let key = f.key.private.to_str().unwrap();
    let again = f.moor.run(&[
        "validate", "--json", "--host", &f.host.ip, "--user", "moor", "--key", key,
    ]);
    assert_exit(&again, 0);
    assert_eq!(again.json()["host_key"]["status"], "known");

    // Human output: aligned table, facts, result line.
    let human = f.moor.run(&[
        "validate", "--host", &f.host.ip, "--user", "moor", "--key", key,
    ]);
    assert_exit(&human, 0);
    assert!(
        human.stdout.contains("  pass  ssh.connect "),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("  WARN  network.public_ip"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("fix: "), "{}", human.stdout);
    assert!(
        human.stdout.contains(&format!("machine-id {machine_id}")),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("result: ok: 0 failed"),
        "{}",
        human.stdout
    );
}

#[test]
fn ecdsa_rsa_and_encrypted_keys() {
    if !docker_or_skip() {
        return;
    }
    let keys = Keys::new();
    let ecdsa = keys.generate("id_ecdsa", "ecdsa", None);
    let rsa = keys.generate("id_rsa", "rsa", None);
    let encrypted = keys.generate("id_enc", "ed25519", Some("open sesame"));
    let host = TestHost::start(&HostSpec {
        auth: SshAuth::Key,
        authorized_keys: vec![
            ecdsa.public.clone(),
            rsa.public.clone(),
            encrypted.public.clone(),
        ],
        ..HostSpec::default()
    });
    let mut moor = Moor::new(MOOR);
    moor.env("KEY_PASS", "open sesame")
        .env("WRONG_PASS", "closed");
    let run = |key: &KeyPair, extra: &[&str]| {
        let mut args = vec![
            "validate",
            "--json",
            "--accept-new-host-key",
            "--host",
            &host.ip,
            "--user",
            "moor",
        ];
        args.extend_from_slice(&["--key", key.private.to_str().unwrap()]);
        args.extend_from_slice(extra);
        moor.run(&args)
    };

    let out = run(&ecdsa, &[]);
    assert_exit(&out, 0);
    assert!(out.check("ssh.auth")["detail"]
        .as_str()
        .unwrap()
        .contains("ecdsa"));

    // RSA signs with rsa-sha2 (OpenSSH 9 refuses ssh-rsa/SHA-1).
    let out = run(&rsa, &[]);
    assert_exit(&out, 0);
    assert!(out.check("ssh.auth")["detail"]
        .as_str()
        .unwrap()
        .contains("rsa"));

    let out = run(&encrypted, &["--key-passphrase-env", "KEY_PASS"]);
    assert_exit(&out, 0);

    // Encrypted key without passphrase: exit 4 before connecting, one line.
    let plain = |key: &KeyPair, extra: &[&str]| {
        let mut args = vec![
            "validate",
            "--host",
            &host.ip,
            "--user",
            "moor",
            "--key",
            key.private.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        moor.run(&args)
    };
    let out = plain(&encrypted, &[]);
    assert_one_line_error(&out, 4, "is encrypted and no passphrase was given");
    assert!(
        out.stderr.contains("--key-passphrase-env"),
        "{}",
        out.stderr
    );
    let out = plain(&encrypted, &["--key-passphrase-env", "WRONG_PASS"]);
    assert_one_line_error(&out, 4, "the passphrase is wrong");
}

#[test]
fn wrong_key_and_missing_key_file() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec {
        auth: SshAuth::Key,
        ..HostSpec::default()
    });
    let other = Keys::new();
    let stranger = other.generate("stranger", "ed25519", None);
    let out = f.moor.run(&[
        "validate",
        "--accept-new-host-key",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
        "--key",
        stranger.private.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, 4, "authentication failed for moor@");
    assert!(out.stderr.contains("authorized_keys"), "{}", out.stderr);

    let out = f.moor.run(&[
        "validate",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
        "--key",
        "/nonexistent/key",
    ]);
    assert_one_line_error(
        &out,
        2,
        "cannot read key file /nonexistent/key: no such file",
    );
    assert!(
        out.elapsed < Duration::from_secs(2),
        "missing key fails before connecting"
    );
}

#[test]
fn password_from_env_and_stdin_on_a_password_only_host() {
    if !docker_or_skip() {
        return;
    }
    let host = TestHost::start(&HostSpec {
        auth: SshAuth::Password,
        password: Some(PASSWORD.into()),
        ..HostSpec::default()
    });
    let mut moor = Moor::new(MOOR);
    moor.env("MOOR_PW", PASSWORD).env("BAD_PW", "not it");
    let base = [
        "validate",
        "--json",
        "--accept-new-host-key",
        "--host",
        &host.ip,
        "--user",
        "moor",
    ];

    let out = moor.run(&[&base[..], &["--password-env", "MOOR_PW", "-vvv"]].concat());
    assert_exit(&out, 0);
    assert_eq!(out.check("ssh.auth")["detail"], "password as moor");
    // The password appears nowhere: not in output, not in trace logs, not in the workspace.
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    assert!(out.stderr.contains("TRACE"), "-vvv gives trace logs");
    for entry in std::fs::read_dir(moor.workspace()).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(PASSWORD));
    }

    let out = moor.run_with_stdin(
        &[&base[..], &["--password-stdin"]].concat(),
        Some(&format!("{PASSWORD}\n")),
    );
    assert_exit(&out, 0);

    let out = moor.run(
        &[
            &["validate"][..],
            &host.login(),
            &["--password-env", "BAD_PW"],
        ]
        .concat(),
    );
    assert_one_line_error(&out, 4, "authentication failed");
    assert!(out.stderr.contains("tried: password"), "{}", out.stderr);

    // A key against a host that takes only passwords.
    let keys = Keys::new();
    let key = keys.generate("k", "ed25519", None);
    let out = moor.run(
        &[
            &["validate"][..],
            &host.login(),
            &["--key", key.private.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_one_line_error(&out, 4, "server accepts: password");
    assert!(out.stderr.contains("--password-env"), "{}", out.stderr);

    // The variable must exist.
    let out = moor.run(
        &[
            &["validate"][..],
            &host.login(),
            &["--password-env", "UNSET_VAR"],
        ]
        .concat(),
    );
    assert_one_line_error(&out, 2, "UNSET_VAR");
}

#[test]
fn keyboard_interactive_only_host() {
    if !docker_or_skip() {
        return;
    }
    let host = TestHost::start(&HostSpec {
        auth: SshAuth::KeyboardInteractive,
        password: Some(PASSWORD.into()),
        ..HostSpec::default()
    });
    let mut moor = Moor::new(MOOR);
    moor.env("MOOR_PW", PASSWORD).env("BAD_PW", "nope");
    let out = moor.run(
        &[
            &["validate", "--json", "--accept-new-host-key"][..],
            &host.login(),
            &["--password-env", "MOOR_PW", "-vvv"],
        ]
        .concat(),
    );
    assert_exit(&out, 0);
    assert!(out.check("ssh.auth")["detail"]
        .as_str()
        .unwrap()
        .starts_with("keyboard-interactive"));
    assert!(!out.stderr.contains(PASSWORD), "password in trace logs");
    let out = moor.run(
        &[
            &["validate"][..],
            &host.login(),
            &["--password-env", "BAD_PW"],
        ]
        .concat(),
    );
    assert_one_line_error(&out, 4, "tried: keyboard-interactive");
}

#[test]
fn ssh_agent_when_no_key_or_password_is_given() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec {
        auth: SshAuth::Key,
        ..HostSpec::default()
    });
    let agent_dir = tempfile::tempdir().unwrap();
    let sock = agent_dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&f.key.private)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let mut moor = Moor::new(MOOR);
    moor.env("SSH_AUTH_SOCK", sock.to_str().unwrap());
    let out = moor.run(&[
        "validate",
        "--json",
        "--accept-new-host-key",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
    ]);
    let _ = agent.kill();
    let _ = agent.wait();
    assert_exit(&out, 0);
    assert!(out.check("ssh.auth")["detail"]
        .as_str()
        .unwrap()
        .contains("ssh-agent"));

    // No agent, no key, no password: a clear auth error.
    let bare = Moor::new(MOOR);
    let out = bare.run(&[
        "validate",
        "--accept-new-host-key",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
    ]);
    assert_one_line_error(&out, 4, "tried: nothing usable");
}

#[test]
fn ssh_config_alias_gives_hostname_user_port_and_identity() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let config = format!(
        "Host trainer\n  HostName {}\n  User moor\n  Port 22\n  IdentityFile {}\n",
        f.host.ip,
        f.key.private.display()
    );
    std::fs::write(f.moor.home().join(".ssh/config"), config).unwrap();
    let out = f.moor.run(&[
        "validate",
        "--json",
        "--accept-new-host-key",
        "--host",
        "trainer",
    ]);
    assert_exit(&out, 0);
    let json = out.json();
    assert_eq!(json["host"]["host"], f.host.ip.as_str());
    assert_eq!(json["host"]["user"], "moor");
}

#[test]
fn unknown_host_key_is_refused_with_its_fingerprint() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let fingerprint = f.host.ed25519_fingerprint();
    let key = f.key.private.to_str().unwrap();
    let base = [
        "validate", "--host", &f.host.ip, "--user", "moor", "--key", key,
    ];

    let out = f.moor.run(&base);
    assert_one_line_error(
        &out,
        5,
        &format!(
            "host key of {} is unknown: ssh-ed25519 {fingerprint}",
            f.host.ip
        ),
    );
    assert!(out
        .stderr
        .contains(&format!("--host-key-fingerprint {fingerprint}")));
    assert!(
        !f.moor.workspace().join("known_hosts").exists(),
        "nothing recorded"
    );

    let out = f.moor.run(&[&base[..], &["--json"]].concat());
    assert_exit(&out, 5);
    assert_eq!(out.json()["error"]["kind"], "host_key_unknown");
    assert_eq!(out.check("ssh.host_key")["status"], "fail");
    assert_eq!(out.check("ssh.connect")["status"], "pass");

    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let out = f
        .moor
        .run(&[&base[..], &["--host-key-fingerprint", wrong]].concat());
    assert_one_line_error(&out, 5, &format!("not the expected {wrong}"));

    let out = f
        .moor
        .run(&[&base[..], &["--host-key-fingerprint", &fingerprint]].concat());
    assert_exit(&out, 0);
    let out = f.moor.run(&base);
    assert_exit(&out, 0);
}

#[test]
fn changed_host_key_is_refused_until_forgotten() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    assert_exit(&f.validate(&[]), 0);
    let known_hosts = f.moor.workspace().join("known_hosts");
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();

    f.host.regenerate_host_keys();
    let new_fingerprint = f.host.ed25519_fingerprint();
    // Even --accept-new-host-key does not replace a changed key.
    let out = f
        .moor
        .run(&[&["validate", "--accept-new-host-key"][..], &f.login()].concat());
    assert_one_line_error(&out, 5, "HOST KEY CHANGED");
    assert!(out.stderr.contains(&new_fingerprint));
    assert!(out
        .stderr
        .contains(&format!("moor host-key forget {}", f.host.ip)));
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        recorded,
        "known_hosts untouched"
    );

    let out = f.moor.run(&["host-key", "forget", &f.host.ip, "--json"]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["removed"], 1);
    let out = f.validate(&["--host-key-fingerprint", &new_fingerprint]);
    // --accept-new-host-key and --host-key-fingerprint conflict: usage error.
    assert_exit(&out, 2);
    let out = f.moor.run(
        &[
            &["validate", "--json"][..],
            &f.login(),
            &["--host-key-fingerprint", &new_fingerprint],
        ]
        .concat(),
    );
    assert_exit(&out, 0);
}

#[test]
fn host_key_from_user_known_hosts_is_honoured() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let pubkey = f.host.exec("cat /etc/ssh/ssh_host_ed25519_key.pub");
    let pubkey: Vec<&str> = pubkey.split_whitespace().take(2).collect();
    std::fs::write(
        f.moor.home().join(".ssh/known_hosts"),
        format!("{} {}\n", f.host.ip, pubkey.join(" ")),
    )
    .unwrap();
    let out = f
        .moor
        .run(&[&["validate", "--json"][..], &f.login()].concat());
    assert_exit(&out, 0);
    assert!(out.json()["host_key"]["file"]
        .as_str()
        .unwrap()
        .ends_with(".ssh/known_hosts"));
}

#[test]
fn operating_systems() {
    if !docker_or_skip() {
        return;
    }
    for (os, status, detail) in [
        ("ubuntu-22.04", "pass", "Ubuntu 22.04.4 LTS"),
        ("ubuntu-20.04", "pass", "Ubuntu 20.04.6 LTS"),
        ("centos-7", "fail", "CentOS Linux 7 (Core) is not supported"),
    ] {
        let f = fixture(HostSpec {
            os,
            ..HostSpec::default()
        });
        let out = f.validate(&[]);
        let check = out.check("os.supported");
        assert_eq!(check["status"], status, "{os}");
        assert_eq!(check["detail"], detail, "{os}");
        if status == "fail" {
            assert_exit(&out, 3);
            assert_eq!(out.json()["ok"], false);
            assert!(check["remedy"]
                .as_str()
                .unwrap()
                .contains("Ubuntu 20.04, 22.04 or 24.04"));
            let human = f.moor.run(&[&["validate"][..], &f.login()].concat());
            assert_exit(&human, 3);
            assert!(
                human.stdout.contains("  FAIL  os.supported"),
                "{}",
                human.stdout
            );
            assert!(
                human.stdout.contains("result: FAILED: 1 failed"),
                "{}",
                human.stdout
            );
        } else {
            assert_exit(&out, 0);
        }
    }
}

#[test]
fn full_disk_in_home_fails() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec {
        home_tmpfs: Some("2m"),
        ..HostSpec::default()
    });
    f.host
        .exec("dd if=/dev/zero of=/home/moor/fill bs=64k count=40 2>/dev/null || true");
    let out = f.validate(&[]);
    assert_exit(&out, 3);
    let check = out.check("disk.free");
    assert_eq!(check["status"], "fail");
    assert!(
        check["detail"].as_str().unwrap().contains("under 2 GiB"),
        "{check}"
    );
    assert!(check["remedy"].is_string());
}

#[test]
fn docker_socket_with_and_without_access() {
    if !docker_or_skip() {
        return;
    }
    let with = fixture(HostSpec {
        docker_socket: Some(true),
        sudo: true,
        ..HostSpec::default()
    });
    let out = with.validate(&[]);
    assert_exit(&out, 0);
    assert_eq!(out.check("docker.engine")["status"], "pass");
    assert!(out.check("docker.engine")["detail"]
        .as_str()
        .unwrap()
        .starts_with("Docker "));
    assert_eq!(out.check("docker.access")["status"], "pass");
    assert_eq!(out.check("sudo.passwordless")["status"], "pass");

    let without = fixture(HostSpec {
        docker_socket: Some(false),
        ..HostSpec::default()
    });
    let out = without.validate(&[]);
    let access = out.check("docker.access");
    assert_eq!(access["status"], "warn", "{access}");
    assert!(
        access["remedy"]
            .as_str()
            .unwrap()
            .contains("usermod -aG docker moor"),
        "{access}"
    );
    assert_eq!(out.check("sudo.passwordless")["status"], "skip");
}

#[test]
fn require_public_ip_and_hdinsight_kind() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    let out = f.validate(&["--require-public-ip"]);
    assert_exit(&out, 3);
    assert_eq!(out.check("network.public_ip")["status"], "fail");

    let out = f.validate(&["--kind", "hdinsight"]);
    assert_exit(&out, 3);
    assert_eq!(out.json()["host"]["kind"], "hdinsight");
    let spark = out.check("spark.submit");
    assert_eq!(spark["status"], "fail");
    assert!(spark["remedy"].is_string());
    // No Hadoop at all: YARN and HDFS fail with their remedies.
    for id in ["yarn.resourcemanager", "hdfs.default_fs"] {
        let c = out.check(id);
        assert_eq!(c["status"], "fail", "{c}");
        assert!(c["detail"].as_str().unwrap().contains("command"), "{c}");
        assert!(c["remedy"].is_string(), "{c}");
    }
    assert_eq!(out.check("python.cluster")["status"], "warn");
    assert_eq!(out.check("ssh.endpoint")["status"], "skip");
    let out = f.validate(&["--cluster", "spark1"]);
    assert_exit(&out, 2);
    assert_eq!(
        out.json()["error"]["fix"],
        "add --kind hdinsight",
        "{}",
        out.stdout
    );
    assert_eq!(
        out.json()["facts"]["head_node"]["yarn"],
        serde_json::Value::Null
    );
    // A VM is not asked about Hadoop.
    let out = f.validate(&[]);
    assert_eq!(out.json()["facts"]["head_node"], serde_json::Value::Null);
}

#[test]
fn closed_port_non_ssh_port_and_unknown_host() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    f.host
        .exec("nohup python3 -m http.server 8080 >/dev/null 2>&1 &");
    let key = f.key.private.to_str().unwrap();
    let base = [
        "validate",
        "--connect-timeout",
        "5",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
        "--key",
        key,
    ];

    let out = f.moor.run(&[&base[..], &["--port", "2222"]].concat());
    assert_one_line_error(&out, 6, "connection refused");
    assert!(out.elapsed < Duration::from_secs(5));

    // Wait for the HTTP server, then talk SSH to it.
    f.host.exec("for i in $(seq 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080))' 2>/dev/null && break; sleep 0.1; done");
    let out = f.moor.run(&[&base[..], &["--port", "8080"]].concat());
    assert_one_line_error(&out, 6, "is not an SSH server");
    assert!(out.elapsed < Duration::from_secs(5));
    let out = f
        .moor
        .run(&[&base[..], &["--port", "8080", "--json"]].concat());
    assert_exit(&out, 6);
    assert_eq!(out.json()["error"]["kind"], "not_ssh");

    let out = f.moor.run(&[
        "validate",
        "--host",
        "no-such-host.invalid",
        "--user",
        "moor",
        "--key",
        key,
    ]);
    assert_one_line_error(&out, 6, "cannot resolve host no-such-host.invalid");
}

#[test]
fn paused_host_times_out_within_the_connect_timeout() {
    if !docker_or_skip() {
        return;
    }
    let f = fixture(HostSpec::default());
    f.host.pause();
    let out = f
        .moor
        .run(&[&["validate", "--connect-timeout", "2"][..], &f.login()].concat());
    assert_one_line_error(&out, 6, "timed out after 2s");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn usage_errors_exit_2() {
    let moor = Moor::new(MOOR);
    let out = moor.run(&["validate"]);
    assert_exit(&out, 2);
    let out = moor.run(&[
        "validate",
        "--host",
        "h",
        "--host-key-fingerprint",
        "MD5:xx",
    ]);
    assert_one_line_error(&out, 2, "is not a SHA256 fingerprint");
    let out = moor.run(&["validate", "--host", "h", "--connect-timeout", "0"]);
    assert_one_line_error(&out, 2, "--connect-timeout");
    let out = moor.run(&[
        "validate",
        "--host",
        "h",
        "--password-env",
        "A",
        "--password-stdin",
    ]);
    assert_exit(&out, 2);
    let out = moor.run(&["--help"]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("Exit codes:"));
    let out = moor.run(&["host-key", "forget", "h:notaport"]);
    assert_one_line_error(&out, 2, "is not HOST, HOST:PORT");
}
