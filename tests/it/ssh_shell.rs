//! `moor ssh` against a real test host: a command's output, stderr, exit
//! code and words arriving exactly as given; stdin piped; and, in a real
//! pseudo-terminal (util-linux `script`), a PTY on the host with a window
//! size, and Ctrl-C reaching the remote command as typed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// `moor ARGS` inside a pseudo-terminal (`script`), stdin and stdout piped.
fn in_a_terminal(f: &Fixture, args: &str) -> std::process::Child {
    Command::new("script")
        .args(["-qec", &format!("{MOOR} {args}"), "/dev/null"])
        .env("HOME", f.moor.home())
        .env("MOOR_WORKSPACE", f.moor.workspace())
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script (a pseudo-terminal)")
}

#[test]
fn moor_ssh_runs_commands_and_shells_on_the_target() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);

    // A command: stdout, stderr, exit code; words as given.
    let out = f.moor.run(&[
        "ssh",
        "box",
        "--",
        "sh",
        "-c",
        "printf '%s|' \"$@\"; echo err >&2; exit 3",
        "x",
        "a b",
        "it's",
        "$HOME",
        "*",
    ]);
    assert_exit(&out, 3);
    assert_eq!(out.stdout, "a b|it's|$HOME|*|");
    assert!(out.stderr.contains("err"), "{}", out.stderr);

    // stdin piped to the command.
    let out = f
        .moor
        .run_with_stdin(&["ssh", "box", "--", "wc", "-c"], Some("hello"));
    assert_exit(&out, 0);
    assert_eq!(out.stdout.trim(), "5");

    // No terminal: Ctrl-C (SIGINT to moor) is passed to the command.
    let mut child = f.moor.spawn_piped(&[
        "ssh",
        "box",
        "--",
        "sh",
        "-c",
        // (sleep's output elsewhere: it would hold the channel open.)
        "trap 'echo got INT; exit 4' INT; echo ready; sleep 30 >/dev/null 2>&1 & wait",
    ]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let interrupted = std::time::Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got INT\n");
    assert_eq!(status.code(), Some(4));
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "the INT came late"
    );

    // A pseudo-terminal on the host, and the remote exit code.
    // (`script` with piped stdin has no window size: moor's 80x24 default.)
    let child = in_a_terminal(&f, "ssh box -- sh -c 'tty; stty size; exit 7'");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("24 80"), "{text}");
    assert_eq!(out.status.code(), Some(7), "{text}");

    // Ctrl-C typed goes to the remote command.
    let mut child = in_a_terminal(
        &f,
        "ssh box -- sh -c 'trap \"echo got INT; exit 5\" INT; echo ready; sleep 30 & wait'",
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("ready") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(rest.contains("got INT"), "{seen}{rest}");
    assert_eq!(status.code(), Some(5), "{seen}{rest}");
}
