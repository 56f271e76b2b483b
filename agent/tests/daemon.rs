//! The daemon through its stdio relay, as the controller reaches it over SSH:
//! handshake, snapshot upload, a run in the snapshot, the log streamed to
//! the end, outputs, and a second connection finding the same daemon.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use moor_proto::{
    read_frame, Frame, Hello, Kind, Request, Response, RunSpec, RunState, MAGIC, PROTOCOL_VERSION,
};
use sha2::{Digest, Sha256};

const AGENT: &str = env!("CARGO_BIN_EXE_moor-agent");

/// A user's home with the agent installed as attach installs it.
struct Home {
    dir: tempfile::TempDir,
    agent: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let agent_dir = dir.path().join(".moor/agent/test");
        std::fs::create_dir_all(&agent_dir).unwrap();
        let agent = agent_dir.join("moor-agent");
        std::fs::copy(AGENT, &agent).unwrap();
        Home { dir, agent }
    }

    fn connect(&self) -> Conn {
        let mut child = Command::new(&self.agent)
            .arg("stdio")
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut conn = Conn {
            child,
            stdin,
            stdout,
            next: 1,
        };
        conn.stdin.write_all(MAGIC).unwrap();
        let mut magic = vec![0u8; MAGIC.len()];
        conn.stdout.read_exact(&mut magic).unwrap();
        assert_eq!(magic, MAGIC);
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            version: "test".into(),
            build: "test".into(),
        };
        match conn.call(Request::Hello { hello }) {
            Response::Hello { hello } => assert_eq!(hello.protocol, PROTOCOL_VERSION),
            other => panic!("{other:?}"),
        }
        conn
    }

    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.agent.with_file_name("run/pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

struct Conn {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Conn {
    fn send(&mut self, request: Request) -> u64 {
        let id = self.next;
        self.next += 1;
        self.stdin
            .write_all(&request.to_frame(id).to_bytes().unwrap())
            .unwrap();
        id
    }

    fn frame(&mut self) -> Frame {
        read_frame(&mut self.stdout).unwrap().expect("a frame")
    }

    fn call(&mut self, request: Request) -> Response {
        let id = self.send(request);
        let frame = self.frame();
        assert_eq!(frame.id, id);
        frame.response().unwrap()
    }

    /// Reads a stream (after its Stream response) to its end frame.
    fn stream(&mut self, id: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let frame = self.frame();
            assert_eq!(frame.id, id);
            match frame.kind {
                Kind::Data => out.extend_from_slice(&frame.payload),
                Kind::End => return out,
                _ => panic!("unexpected {:?}", frame.response()),
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn snapshot() -> (Vec<u8>, String) {
    let mut archive = tar::Builder::new(Vec::new());
    let script = b"import os\nprint('training')\nopen(os.environ['MOOR_OUTPUT_DIR'] + '/metrics.json', 'w').write('{\"acc\": 1}')\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "train.py", &script[..])
        .unwrap();
    let bytes = archive.into_inner().unwrap();
    let sha = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (bytes, sha)
}

#[test]
fn upload_run_stream_and_download_through_the_relay() {
    let home = Home::new();
    let mut conn = home.connect();
    assert_eq!(conn.call(Request::Ping), Response::Pong);

    let (tar, sha) = snapshot();
    assert_eq!(
        conn.call(Request::HasSnapshot {
            sha256: sha.clone()
        }),
        Response::Snapshot { present: false }
    );
    let id = conn.send(Request::PutSnapshot {
        sha256: sha.clone(),
        size: tar.len() as u64,
    });
    for chunk in tar.chunks(1000) {
        conn.stdin
            .write_all(&Frame::data(id, chunk.to_vec()).to_bytes().unwrap())
            .unwrap();
    }
    conn.stdin
        .write_all(&Frame::end(id).to_bytes().unwrap())
        .unwrap();
    assert_eq!(
        conn.frame().response().unwrap(),
        Response::Snapshot { present: true }
    );
    assert_eq!(
        conn.call(Request::HasSnapshot {
            sha256: sha.clone()
        }),
        Response::Snapshot { present: true }
    );

    let spec = RunSpec {
        name: Some("train".into()),
        snapshot: sha.clone(),
        command: vec!["python3".into(), "train.py".into()],
        env: Default::default(),
        environment: None,
        spark: None,
    };
    let run = match conn.call(Request::StartRun { spec }) {
        Response::Run { run } => run,
        other => panic!("{other:?}"),
    };
    let id = conn.send(Request::ReadLog {
        run_id: run.id.clone(),
        offset: 0,
        follow: true,
    });
    assert_eq!(
        conn.frame().response().unwrap(),
        Response::Stream { offset: 0 }
    );
    assert_eq!(conn.stream(id), b"training\n");
    let done = match conn.call(Request::GetRun {
        run_id: run.id.clone(),
    }) {
        Response::Run { run } => run,
        other => panic!("{other:?}"),
    };
    assert_eq!((done.state, done.exit_code), (RunState::Succeeded, Some(0)));

    // Resume from an offset.
    let id = conn.send(Request::ReadLog {
        run_id: run.id.clone(),
        offset: 4,
        follow: false,
    });
    conn.frame();
    assert_eq!(conn.stream(id), b"ning\n");

    let id = conn.send(Request::Download {
        run_id: run.id.clone(),
    });
    conn.frame();
    let outputs = conn.stream(id);
    let mut archive = tar::Archive::new(&outputs[..]);
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("metrics.json")),
        "{names:?}"
    );

    // A second connection reaches the same daemon and sees the run.
    let pid = home.daemon_pid().unwrap();
    let mut second = home.connect();
    match second.call(Request::ListRuns) {
        Response::Runs { runs } => assert_eq!(runs.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(home.daemon_pid(), Some(pid), "one daemon");
    match second.call(Request::Status) {
        Response::Status { running, .. } => assert_eq!(running, 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_uploads_and_unknown_runs_are_errors() {
    let home = Home::new();
    let mut conn = home.connect();
    let (tar, sha) = snapshot();
    let id = conn.send(Request::PutSnapshot {
        sha256: sha.clone(),
        size: tar.len() as u64,
    });
    conn.stdin
        .write_all(
            &Frame::data(id, tar[..tar.len() / 2].to_vec())
                .to_bytes()
                .unwrap(),
        )
        .unwrap();
    conn.stdin
        .write_all(&Frame::end(id).to_bytes().unwrap())
        .unwrap();
    match conn.frame().response().unwrap() {
        Response::Error { error } => assert_eq!(error.kind, moor_proto::ErrorKind::Corrupt),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        conn.call(Request::HasSnapshot { sha256: sha }),
        Response::Snapshot { present: false }
    );
    match conn.call(Request::GetRun {
        run_id: "nope".into(),
    }) {
        Response::Error { error } => assert_eq!(error.kind, moor_proto::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}
