//! The controller's typed agent client against the agent's own connection
//! handler: in-process over `UnixStream::pair()` (the protocol end to end,
//! no SSH), and through the `moor-agent stdio` relay as a host runs it
//! (a second connection finds the same daemon). Runs are real: supervised
//! processes of the agent binary.

use std::path::PathBuf;
use std::process::Stdio;

use moor::agent_client::{AgentClient, Chunk};
use moor::snapshot::Snapshot;
use moor::transfer::Transfer;
use moor::Error;
use moor_proto::{ErrorKind, RunSpec, RunState};

mod support;
use support::{in_process, AGENT};

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
    Snapshot::packed(bytes, 1, Vec::new())
}

async fn read_all(
    client: &AgentClient,
    stream: moor::Result<moor::agent_client::ByteStream>,
) -> Vec<u8> {
    read_with_end(client, stream).await.0
}

/// The bytes of a stream and its end frame's trailer.
async fn read_with_end(
    client: &AgentClient,
    stream: moor::Result<moor::agent_client::ByteStream>,
) -> (Vec<u8>, Vec<u8>) {
    let mut stream = stream.unwrap();
    let mut out = Vec::new();
    loop {
        match stream.next().await {
            Some(Chunk::Data(bytes)) => out.extend_from_slice(&bytes),
            Some(Chunk::End(trailer)) => return (out, trailer),
            Some(Chunk::Failed(e)) => panic!("{e}"),
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
    assert_eq!(
        client
            .put_snapshot(&snap, &Transfer::hidden())
            .await
            .unwrap(),
        snap.archive().unwrap().len()
    );
    assert!(client.has_snapshot(&snap.sha256).await.unwrap());
    // Sent once: the second put finds it.
    assert_eq!(
        client
            .put_snapshot(&snap, &Transfer::hidden())
            .await
            .unwrap(),
        0
    );

    let job = spec(&snap.sha256, &["python3", "train.py"]);
    let run = client.start_run(job).await.unwrap();
    let (log, end) = read_with_end(&client, client.read_log(&run.id, 0, true).await).await;
    assert_eq!(log, b"training\n");
    let done = client.run(&run.id).await.unwrap();
    assert_eq!((done.state, done.exit_code), (RunState::Succeeded, Some(0)));
    // A log followed to the end says how the run ended.
    let ended: moor_proto::RunInfo = serde_json::from_slice(&end).unwrap();
    assert_eq!(
        (ended.id, ended.state, ended.exit_code),
        (run.id.clone(), RunState::Succeeded, Some(0))
    );
    // Started and followed in one request: the run, its log, how it ended.
    let (started, log) = client
        .start_run_following(spec(&snap.sha256, &["python3", "train.py"]))
        .await
        .unwrap();
    assert_ne!(started.id, run.id);
    let (log, end) = read_with_end(&client, Ok(log)).await;
    assert_eq!(log, b"training\n");
    let ended: moor_proto::RunInfo = serde_json::from_slice(&end).unwrap();
    assert_eq!((ended.id, ended.exit_code), (started.id, Some(0)));
    // Resume from an offset; not followed: no trailer.
    let (tail, end) = read_with_end(&client, client.read_log(&run.id, 4, false).await).await;
    assert_eq!(tail, b"ning\n");
    assert!(end.is_empty());

    let outputs = read_all(&client, client.download(&run.id, Default::default()).await).await;
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
    let job = spec(&snap.sha256, &["sleep", "300"]);
    let sleeper = client.start_run(job).await.unwrap();
    assert_eq!(client.status().await.unwrap().running, 1);
    let cancelled = client.cancel(&sleeper.id, 1).await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    let runs = client.runs().await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().any(|r| r.id == sleeper.id));
    assert_eq!(client.status().await.unwrap().running, 0);
    assert!(client.envs().await.unwrap().is_empty());
}

#[tokio::test]
async fn refusals_reach_the_client_as_typed_errors() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    // An upload whose bytes do not hash to what it claims.
    let good = snapshot();
    let half = good.archive().unwrap()[..good.size as usize / 2].to_vec();
    let bad = Snapshot::packed(half, 1, Vec::new()).with_claimed_sha256(good.sha256.clone());
    match client.put_snapshot(&bad, &Transfer::hidden()).await {
        Err(Error::Refused { kind, .. }) => assert_eq!(kind, ErrorKind::Corrupt),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(!client.has_snapshot(&bad.sha256).await.unwrap());
    // What names a path on the host is checked before any file is touched.
    match client
        .start_run(spec("../../../etc/passwd", &["true"]))
        .await
    {
        Err(Error::Refused { kind, message, .. }) => {
            assert_eq!(kind, ErrorKind::BadRequest);
            assert!(message.contains("hex"), "{message}");
        }
        other => panic!("{:?}", other.map(drop)),
    }
    for result in [
        client.run("../../.ssh").await.map(drop),
        client
            .cancel("20261127T183000-1a2b3c4d/..", 1)
            .await
            .map(drop),
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
        // A fork elsewhere in this test process may still hold the copy's
        // write descriptor for a moment (ETXTBSY): try again.
        let mut tries = 0;
        let mut child = loop {
            let spawned = tokio::process::Command::new(&self.agent)
                .arg("stdio")
                .env("HOME", self.home.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => break other.unwrap(),
            }
        };
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
    first
        .put_snapshot(&snap, &Transfer::hidden())
        .await
        .unwrap();
    let job = spec(&snap.sha256, &["python3", "train.py"]);
    let run = first.start_run(job).await.unwrap();
    let log = read_all(&first, first.read_log(&run.id, 0, true).await).await;
    assert_eq!(log, b"training\n");
    let pid = host.daemon_pid().expect("the relay started a daemon");
    drop(first);

    let second = host.connect().await;
    assert_eq!(second.runs().await.unwrap().len(), 1);
    assert_eq!(host.daemon_pid(), Some(pid), "one daemon");
    assert_eq!(second.status().await.unwrap().running, 0);
}

fn spec(snapshot: &str, command: &[&str]) -> RunSpec {
    RunSpec {
        name: None,
        snapshot: snapshot.to_owned(),
        command: command.iter().map(|s| s.to_string()).collect(),
        env: Default::default(),
        environment: None,
        spark: None,
        ..RunSpec::default()
    }
}

/// Children of this process that have ended and nobody reaped.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                return false;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

/// Processes whose command line is `command` (arguments joined by spaces).
fn processes_running(command: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .trim_end()
                == command
        })
        .collect()
}

#[tokio::test]
async fn the_daemon_leaves_no_zombie_supervisors_after_200_runs() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    let snap = snapshot();
    client
        .put_snapshot(&snap, &Transfer::hidden())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(
            client
                .start_run(spec(&snap.sha256, &["true"]))
                .await
                .unwrap()
                .id,
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for id in &ids {
        while !client.run(id).await.unwrap().state.is_final() {
            assert!(std::time::Instant::now() < deadline, "run {id} never ended");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // The reaper of the last supervisor may be a moment behind its end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !zombie_children().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(zombie_children(), Vec::<u32>::new(), "zombie supervisors");
}

#[tokio::test]
async fn a_run_cancelled_right_after_its_start_never_keeps_running() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    let snap = snapshot();
    client
        .put_snapshot(&snap, &Transfer::hidden())
        .await
        .unwrap();
    let job = ["sh", "-c", "sleep 1; touch \"$MOOR_OUTPUT_DIR/ran\""];
    let mut ids = Vec::new();
    for _ in 0..50 {
        let run = client.start_run(spec(&snap.sha256, &job)).await.unwrap();
        let cancelled = client.cancel(&run.id, 1).await.unwrap();
        assert_eq!(cancelled.state, RunState::Cancelled, "{cancelled:?}");
        ids.push(run.id);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for id in &ids {
        let outputs = home.path().join(".moor/runs").join(id).join("outputs");
        assert!(
            !outputs.join("ran").exists(),
            "run {id} went on after its cancel"
        );
    }
}

#[tokio::test]
async fn cancel_stops_every_descendant_however_it_detached() {
    let home = tempfile::tempdir().unwrap();
    let client = in_process(home.path()).await;
    let snap = snapshot();
    client
        .put_snapshot(&snap, &Transfer::hidden())
        .await
        .unwrap();
    // A child in its own session, an orphan of a double fork, and a child
    // that ignores SIGTERM (as does the job's shell).
    let script = "setsid sleep 36011 & (sleep 36012 &); \
                  (trap '' TERM; exec sleep 36013) & trap '' TERM; wait";
    let run = client
        .start_run(spec(&snap.sha256, &["sh", "-c", script]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ["36011", "36012", "36013"]
        .iter()
        .any(|n| processes_running(&format!("sleep {n}")).is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not start its children"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cancelled = client.cancel(&run.id, 1).await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    for n in ["36011", "36012", "36013"] {
        assert_eq!(
            processes_running(&format!("sleep {n}")),
            Vec::<u32>::new(),
            "sleep {n} survived the cancel"
        );
    }
}
