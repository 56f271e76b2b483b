//! `moor forward` against a real test host: an HTTP server listening on the
//! host's 127.0.0.1 is reached from here through the target's SSH
//! connection, 50 requests at once; the SSH connection killed on the host
//! is opened again for the next request; `--run` reaches a server a run
//! started; a taken local port and a remote port nothing listens on are
//! said; Ctrl-C ends it with a summary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// `GET /PATH` over HTTP/1.0 on 127.0.0.1:`port`: the status line and body.
fn get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    Ok((
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    ))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn forward_reaches_a_server_on_the_host_and_survives_a_dropped_connection() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let body: String = (1..=12000).map(|i| format!("{i}\n")).collect();
    f.host.exec(
        "mkdir -p /srv/www && seq 1 12000 > /srv/www/data.txt && \
         (setsid python3 -m http.server 8765 --bind 127.0.0.1 --directory /srv/www \
          >/dev/null 2>&1 &) && \
         for i in $(seq 100); do \
           python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8765))' \
             2>/dev/null && break; sleep 0.1; done",
    );
    let port = free_port();
    let mut child = f
        .moor
        .spawn_piped(&["forward", "box", &format!("8765:{port}"), "--json"]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    assert!(
        said.contains(&format!("forwarding 127.0.0.1:{port} to box port 8765")),
        "{said}"
    );
    let (status, got) = get(port, "data.txt").unwrap();
    assert!(status.contains("200") && got == body, "{status}");

    // 50 requests at once, every one answered in full.
    let answers: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || get(port, "data.txt")))
        .collect();
    for answer in answers {
        let (status, got) = answer.join().unwrap().unwrap();
        assert!(status.contains("200"), "{status}");
        assert!(
            got == body,
            "a body of {} bytes, not {}",
            got.len(),
            body.len()
        );
    }

    // The SSH connection is killed on the host: the next request reconnects.
    f.host.exec("pkill -f '^sshd: moor' || true");
    std::thread::sleep(Duration::from_millis(500));
    let (status, got) = get(port, "data.txt").unwrap();
    assert!(status.contains("200") && got == body, "{status}");

    // A taken local port is said, with the fix.
    let taken = f.moor.run(&["forward", "box", &format!("8765:{port}")]);
    assert_exit(&taken, 2);
    assert!(
        taken
            .stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        taken.stderr
    );

    // Nothing listens on the host's port 1: the local connection is closed.
    let nothing = free_port();
    let mut idle = f
        .moor
        .spawn_piped(&["forward", "box", &format!("1:{nothing}")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", nothing)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the second forward never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = get(nothing, "").unwrap_or_default();
    assert_eq!(status, "", "an answer from nowhere");
    idle.kill().unwrap();
    let _ = idle.wait();

    // --run: the port a run serves, on that run's target.
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("hello.txt"), "from the run\n").unwrap();
    let run = f.moor.run(&[
        "run",
        "--target",
        "box",
        "--source-dir",
        served.path().to_str().unwrap(),
        "--detach",
        "--json",
        "--",
        "python3",
        "-m",
        "http.server",
        "8766",
        "--bind",
        "127.0.0.1",
    ]);
    assert_exit(&run, 0);
    let id = run.json()["id"].as_str().unwrap().to_owned();
    let by_run = free_port();
    let mut of_run = f
        .moor
        .spawn_piped(&["forward", "--run", &id, &format!("8766:{by_run}")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((status, got)) = get(by_run, "hello.txt") {
            if status.contains("200") {
                assert_eq!(got, "from the run\n");
                break;
            }
        }
        assert!(Instant::now() < deadline, "the run's server never answered");
        std::thread::sleep(Duration::from_millis(300));
    }
    of_run.kill().unwrap();
    let _ = of_run.wait();
    assert_exit(&f.moor.run(&["cancel", &id, "--grace", "1"]), 0);

    // Ctrl-C: exit 0 and a summary.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    for line in stderr {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("connecting again"), "{said}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["connections"].as_u64().unwrap() >= 52, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["reconnects"], 1, "{summary}");
    assert_eq!(summary["forwards"][0]["local_port"], port);
}
