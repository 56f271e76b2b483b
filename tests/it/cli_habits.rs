//! What users of ssh, docker and kubectl expect from a command line, run on
//! the real `moor` binary: shell completions that load, a manual page, a
//! version naming the agent build, and usage errors as JSON under `--json`.

use moor_tests::{assert_exit, Moor};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn completions_load_in_bash_and_the_manual_page_renders() {
    let moor = Moor::new(MOOR);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = moor.run(&["completions", shell]);
        assert_exit(&out, 0);
        assert!(out.stdout.contains("moor"), "{shell}: {}", out.stdout);
    }
    let script = moor.home().join("moor.bash");
    std::fs::write(&script, moor.run(&["completions", "bash"]).stdout).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p moor", script.display()))
        .output()
        .unwrap();
    let loaded = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.contains("-F _moor") && loaded.trim_end().ends_with("moor"),
        "{loaded}"
    );
    let bad = moor.run(&["completions", "tcsh"]);
    assert_exit(&bad, 2);

    let man = moor.run(&["man"]);
    assert_exit(&man, 0);
    assert!(man.stdout.contains(".TH moor 1"), "{}", man.stdout);
    assert!(man.stdout.contains("attach"), "subcommands missing");
}

#[test]
fn the_version_names_the_agent_and_usage_errors_are_json_under_json() {
    let moor = Moor::new(MOOR);
    let version = moor.run(&["--version"]);
    assert_exit(&version, 0);
    assert!(
        version.stdout.starts_with("moor 0.")
            && version.stdout.contains("x86_64 0.")
            && version.stdout.contains("aarch64 0."),
        "{}",
        version.stdout
    );
    let out = moor.run(&["run", "--json", "--no-such-flag"]);
    assert_exit(&out, 2);
    let json = out.json();
    assert_eq!(json["error"]["kind"], "usage");
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--no-such-flag"));
    // ...and said on stderr, one line, as every non-zero exit is.
    assert!(
        out.stderr.starts_with("error: unexpected argument"),
        "{}",
        out.stderr
    );
    let plain = moor.run(&["run", "--no-such-flag"]);
    assert_exit(&plain, 2);
    assert!(plain.stdout.is_empty());
}

#[test]
fn check_marks_are_coloured_on_a_terminal_only() {
    if !moor_tests::docker_or_skip() {
        return;
    }
    let f = moor_tests::Fixture::new(MOOR, moor_tests::HostSpec::default());
    assert_exit(&f.validate(&[]), 0);
    let validate = format!(
        "{MOOR} validate --host {} --user moor --key {}",
        f.host.ip,
        f.key_path()
    );
    // `script` gives moor a terminal for stdout.
    let on_tty = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &validate, "/dev/null"])
            .env("HOME", f.moor.home())
            .env("MOOR_WORKSPACE", f.moor.workspace());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[32mpass"), "{coloured:?}");
    assert!(!on_tty(true).contains('\x1b'), "NO_COLOR is honoured");
    let piped = f.moor.run(&[
        "validate",
        "--host",
        &f.host.ip,
        "--user",
        "moor",
        "--key",
        f.key_path(),
    ]);
    assert!(piped.stdout.contains("pass") && !piped.stdout.contains('\x1b'));
}

#[test]
fn long_transfers_show_progress_on_a_terminal_only() {
    if !moor_tests::docker_or_skip() {
        return;
    }
    let f = moor_tests::Fixture::new(MOOR, moor_tests::HostSpec::default());
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("data.bin"), vec![3u8; 48 << 20]).unwrap();
    let run = format!(
        "{MOOR} run --target box --source-dir {} -- sh -c 'head -c 67108864 /dev/zero > $MOOR_OUTPUT_DIR/big'",
        src.path().display()
    );
    let on_tty = |command: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .env("HOME", f.moor.home())
            .env("MOOR_WORKSPACE", f.moor.workspace())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The agent's upload at attach, then the source snapshot's.
    let attach = format!(
        "{MOOR} attach vm box --host {} --user moor --key {} --accept-new-host-key",
        f.host.ip,
        f.key_path()
    );
    let attached = on_tty(&attach);
    assert!(
        attached.contains("agent") && attached.contains("iB/s"),
        "{attached:?}"
    );
    let uploaded = on_tty(&run);
    assert!(
        uploaded.contains("source snapshot") && uploaded.contains("iB/s"),
        "{uploaded:?}"
    );
    let id = f.moor.run(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let to = f.moor.home().join("dl");
    let downloaded = on_tty(&format!("{MOOR} download {id} --to {}", to.display()));
    assert!(downloaded.contains("iB/s"), "{downloaded:?}");
    // Piped: no bar, no escape codes; the summary line says it all.
    let piped = f.moor.run(&[
        "download",
        &id,
        "--to",
        f.moor.home().join("dl2").to_str().unwrap(),
    ]);
    assert_exit(&piped, 0);
    assert!(
        !piped.stderr.contains("iB/s") && !piped.stderr.contains('\x1b'),
        "{}",
        piped.stderr
    );
}

#[test]
fn a_proxycommand_in_ssh_config_is_refused_never_bypassed() {
    let moor = Moor::new(MOOR);
    let config = moor.home().join(".ssh/config");
    std::fs::write(
        &config,
        "Host jumped\n  HostName 192.0.2.7\n  ProxyCommand nc %h %p\nHost direct\n  ProxyJump none\n  HostName 192.0.2.8\nHost *\n  ProxyJump bastion.example\n",
    )
    .unwrap();
    let out = moor.run(&["validate", "--host", "jumped", "--user", "u", "--json"]);
    assert_exit(&out, 2);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.ends_with(".ssh/config:3: ProxyCommand for jumped is not supported by moor, and connecting directly would bypass it"),
        "{message}"
    );
    // A jump host's own ProxyCommand is refused too.
    let out = moor.run(&["validate", "--host", "x", "--user", "u", "--jump", "jumped"]);
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("ProxyCommand for jumped"),
        "{}",
        out.stderr
    );
    // `none` is honoured: that host is tried directly (and is unreachable).
    let direct = moor.run(&[
        "validate",
        "--host",
        "direct",
        "--user",
        "u",
        "--connect-timeout",
        "1",
    ]);
    assert_ne!(direct.code, 2, "{}", direct.stderr);
}
