//! The controller's typed agent client against the agent's own connection
//! handler: in-process over `UnixStream::pair()` (the protocol end to end,
//! no SSH), and through the `moor-agent stdio` relay as a host runs it
//! (a second connection finds the same daemon). Runs are real: supervised
//! processes of the agent binary.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use moor::agent_client::{AgentClient, Chunk};
use moor::snapshot::Snapshot;
use moor::Error;
use moor_agent::handler::{self, Daemon};
use moor_proto::{ErrorKind, RunSpec, RunState};

const AGENT: &str = env!("CARGO_BIN_EXE_moor-agent");

/// A daemon on a temporary home, in this process, and a client of it.
async fn in_process(home: &Path) -> AgentClient {
    let daemon = Arc::new(Daemon::at(home, PathBuf::from(AGENT)));
    let (ours, theirs) = UnixStream::pair().unwrap();
    std::thread::spawn(move || handler::connection(&daemon, theirs));
    ours.set_nonblocking(true).unwrap();
    let stream = tokio::net::UnixStream::from_std(ours).unwrap();
    let (reader, writer) = stream.into_split();
    AgentClient::over(Box::new(reader), Box::new(writer), "in-process".into())
        .await
        .unwrap()
}

fn snapshot() -> Snapshot {
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
    Snapshot {
        sha256: moor_proto::sha256_hex(&bytes),
        bytes,
        files: 1,
    }
}

async fn read_all(
    client: &AgentClient,
    stream: moor::Result<moor::agent_client::ByteStream>,
) -> Vec<u8> {
    let mut stream = stream.unwrap();
    let mut out = Vec::new();
    loop {
        match stream.next().await {
            Some(Chunk::Data(bytes)) => out.extend_from_slice(&bytes),
            Some(Chunk::End) => return out,
            None => panic!("{}", client.lost("closed mid-stream")),
        }
    }
}

#[tokio::test]
async fn upload_run_stream_cancel_and_download_in_process() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    client
        .ping(std::time::Duration::from_secs(5))
        .await
        .unwrap();

    let snap = snapshot();
    assert!(!client.has_snapshot(&snap.sha256).await.unwrap());
    assert_eq!(client.put_snapshot(&snap).await.unwrap(), snap.bytes.len());
    assert!(client.has_snapshot(&snap.sha256).await.unwrap());
    // Sent once: the second put finds it.
    assert_eq!(client.put_snapshot(&snap).await.unwrap(), 0);

    let spec = RunSpec {
        name: Some("train".into()),
        snapshot: snap.sha256.clone(),
        command: vec!["python3".into(), "train.py".into()],
        env: Default::default(),
        environment: None,
        spark: None,
    };
    let run = client.start_run(spec).await.unwrap();
    let log = read_all(&client, client.read_log(&run.id, 0, true).await).await;
    assert_eq!(log, b"training\n");
    let done = client.run(&run.id).await.unwrap();
    assert_eq!((done.state, done.exit_code), (RunState::Succeeded, Some(0)));
    // Resume from an offset.
    let tail = read_all(&client, client.read_log(&run.id, 4, false).await).await;
    assert_eq!(tail, b"ning\n");

    let outputs = read_all(&client, client.download(&run.id).await).await;
    let names: Vec<String> = tar::Archive::new(&outputs[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("metrics.json")),
        "{names:?}"
    );

    // A long run, cancelled: the answer is the ended run.
    let spec = RunSpec {
        name: None,
        snapshot: snap.sha256.clone(),
        command: vec!["sleep".into(), "300".into()],
        env: Default::default(),
        environment: None,
        spark: None,
    };
    let sleeper = client.start_run(spec).await.unwrap();
    assert_eq!(client.status().await.unwrap().running, 1);
    let cancelled = client.cancel(&sleeper.id, 1).await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    let runs = client.runs().await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().any(|r| r.id == sleeper.id));
    assert_eq!(client.status().await.unwrap().running, 0);
    assert!(client.envs().await.unwrap().is_empty());
}

#[tokio::test]
async fn refusals_reach_the_client_as_typed_errors() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    // An upload whose bytes do not hash to what it claims.
    let mut bad = snapshot();
    bad.bytes.truncate(bad.bytes.len() / 2);
    match client.put_snapshot(&bad).await {
        Err(Error::Refused { kind, .. }) => assert_eq!(kind, ErrorKind::Corrupt),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(!client.has_snapshot(&bad.sha256).await.unwrap());
    for result in [
        client.run("nope").await.map(drop),
        client.cancel("nope", 1).await.map(drop),
        client.read_log("nope", 0, false).await.map(drop),
        client.env(&"0".repeat(64)).await.map(drop),
    ] {
        match result {
            Err(e @ Error::Refused { .. }) => {
                assert!(
                    matches!(
                        e,
                        Error::Refused {
                            kind: ErrorKind::NotFound,
                            ..
                        }
                    ),
                    "{e}"
                );
                assert_eq!(e.kind(), "not_found");
                assert_eq!(e.exit_code(), 8);
            }
            other => panic!("{:?}", other),
        }
    }
}

/// `moor-agent stdio` as attach installs it, in a home of its own.
struct Installed {
    home: tempfile::TempDir,
    agent: PathBuf,
}

impl Installed {
    fn new() -> Installed {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".moor/agent/test");
        std::fs::create_dir_all(&dir).unwrap();
        let agent = dir.join("moor-agent");
        std::fs::copy(AGENT, &agent).unwrap();
        Installed { home, agent }
    }

    async fn connect(&self) -> AgentClient {
        let mut child = tokio::process::Command::new(&self.agent)
            .arg("stdio")
            .env("HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        tokio::spawn(async move { child.wait().await });
        AgentClient::over(Box::new(stdout), Box::new(stdin), "relay".into())
            .await
            .unwrap()
    }

    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.agent.with_file_name("run/pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

#[tokio::test]
async fn the_relay_starts_one_daemon_that_every_connection_reaches() {
    let host = Installed::new();
    let first = host.connect().await;
    let snap = snapshot();
    first.put_snapshot(&snap).await.unwrap();
    let spec = RunSpec {
        name: None,
        snapshot: snap.sha256.clone(),
        command: vec!["python3".into(), "train.py".into()],
        env: Default::default(),
        environment: None,
        spark: None,
    };
    let run = first.start_run(spec).await.unwrap();
    let log = read_all(&first, first.read_log(&run.id, 0, true).await).await;
    assert_eq!(log, b"training\n");
    let pid = host.daemon_pid().expect("the relay started a daemon");
    drop(first);

    let second = host.connect().await;
    assert_eq!(second.runs().await.unwrap().len(), 1);
    assert_eq!(host.daemon_pid(), Some(pid), "one daemon");
    assert_eq!(second.status().await.unwrap().running, 0);
}
