//! Warm connections, the client side (the mux process itself is
//! [`crate::muxd`]), as OpenSSH's `ControlMaster`/`ControlPersist`: one
//! multiplexer process per workspace (`moor mux serve`, started on demand)
//! keeps an authenticated SSH connection to each target a command reached,
//! and later commands get a pipe to the target's agent from it over a Unix
//! socket instead of connecting again (no TCP, key exchange or
//! authentication: about one round trip instead of five or more).
//!
//! Where it lives: `mux/` in the workspace (0700): `sock` (the socket,
//! 0600, and the mux serves only its own user), `lock` (held for the mux's
//! life: one per workspace), `log`. It exits after an idle time
//! (`MOOR_MUX_IDLE`, seconds, default 600) with no pipe open, when its
//! workspace is removed, or on `moor mux stop`.
//!
//! What it never changes: every error a user sees comes from the command's
//! own connection. The mux answers "cold" whenever it has no live
//! connection to give (first use, connecting, a dropped connection, a
//! target whose settings changed), and the command connects by itself as
//! without a mux, while the mux connects (again) in the background. Host
//! keys and authentication are checked, with the target's stored settings,
//! when the mux connects. Targets that need a secret (a password, a key
//! passphrase) and commands given credential or host-key flags are never
//! multiplexed: no secret is handed to another process. `--no-mux` or
//! `MOOR_NO_MUX=1` turns it off.

mod protocol;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub use protocol::{build_id, Answer, MuxStatus, Request, WarmTarget};

use crate::store::{AuthRef, Target};
use crate::target_kind::TargetKind;
use crate::workspace::Workspace;

/// How long the mux stays after its last pipe closed, by default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// The environment variable that sets the idle time, in seconds.
pub const IDLE_VAR: &str = "MOOR_MUX_IDLE";

/// A Unix socket path must fit `sun_path` (108 bytes, with its NUL).
const MAX_SOCKET_PATH: usize = 100;

/// How long a command waits for the mux's answer before connecting itself.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The mux's folder in a workspace.
pub fn dir(workspace: &Workspace) -> PathBuf {
    workspace.dir().join("mux")
}

/// The mux's socket, when its path fits a Unix socket address.
pub fn socket_path(workspace: &Workspace) -> Option<PathBuf> {
    let path = dir(workspace).join("sock");
    (path.as_os_str().len() <= MAX_SOCKET_PATH).then_some(path)
}

/// Whether `MOOR_NO_MUX` turns the mux off (set, not empty, not `0`).
pub fn off_by_env() -> bool {
    std::env::var("MOOR_NO_MUX").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether the mux may serve `target`: one reached over SSH whose stored
/// authentication needs no secret.
pub fn serves(target: &Target) -> bool {
    target.kind != TargetKind::Local && needs_no_secret(&target.auth)
}

/// Authentication the mux can do by itself: a key file without a
/// passphrase (the workspace key, a stored key), or ssh-agent.
pub fn needs_no_secret(auth: &AuthRef) -> bool {
    match auth {
        AuthRef::WorkspaceKey | AuthRef::Agent => true,
        AuthRef::Key { passphrase_env, .. } => passphrase_env.is_none(),
        AuthRef::Password { .. } => false,
    }
}

/// What a connection to `target` depends on (never a secret): a target
/// re-attached, re-pinned or moved is connected to anew.
pub fn settings_key(target: &Target) -> String {
    format!(
        "{}|{}|{}|{:?}|{:?}|{}|{}|{}",
        target.user,
        target.host,
        target.port,
        target.jumps,
        target.auth,
        target.host_key_fingerprint,
        target.agent_version,
        target.agent_build
    )
}

/// A pipe to `target`'s agent from the workspace's mux, or `None` (the
/// caller connects by itself): no mux runs (one is started, warming this
/// target), or it has no live connection to the target yet.
pub async fn open(workspace: &Workspace, target: &Target) -> Option<UnixStream> {
    let request = Request::Open {
        target: target.name.clone(),
        settings: settings_key(target),
        build: protocol::build_id(),
    };
    let Some((answer, stream)) = ask_stream(workspace, &request).await else {
        start(workspace, &[target.name.as_str()]);
        return None;
    };
    match answer {
        Answer::Ready => Some(stream),
        Answer::Stale => {
            // A mux of another moor build is going away: a new one starts.
            tracing::debug!("the mux is of another moor build; starting a new one");
            start(workspace, &[target.name.as_str()]);
            None
        }
        Answer::Cold { why } => {
            tracing::debug!(target = %target.name, %why, "no warm connection from the mux");
            None
        }
        other => {
            tracing::debug!(?other, "unexpected mux answer");
            None
        }
    }
}

/// Asks the running mux (none: `None`) and returns its answer.
pub async fn ask(workspace: &Workspace, request: &Request) -> Option<Answer> {
    ask_stream(workspace, request)
        .await
        .map(|(answer, _)| answer)
}

/// Sends `request` and reads the one-line answer, leaving the stream at the
/// first byte after it (the agent's, for an open).
async fn ask_stream(workspace: &Workspace, request: &Request) -> Option<(Answer, UnixStream)> {
    let path = socket_path(workspace)?;
    let exchange = async {
        let mut stream = UnixStream::connect(&path).await.ok()?;
        let mut line = serde_json::to_vec(request).ok()?;
        line.push(b'\n');
        stream.write_all(&line).await.ok()?;
        let answer = read_line(&mut stream).await?;
        Some((serde_json::from_slice(&answer).ok()?, stream))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// One line, read a byte at a time so that nothing after it is taken.
pub async fn read_line(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let byte = stream.read_u8().await.ok()?;
        if byte == b'\n' {
            return Some(line);
        }
        if line.len() > 64 * 1024 {
            return None;
        }
        line.push(byte);
    }
}

/// Before a command reaches many targets: when no mux answers, starts one
/// warming all of `targets` (those it serves), so that the next command
/// finds each of them warm, not only the first one asked for.
pub async fn warm_ahead(workspace: &Workspace, targets: &[&Target]) {
    let names: Vec<&str> = targets
        .iter()
        .filter(|t| serves(t))
        .map(|t| t.name.as_str())
        .collect();
    if names.len() > 1 && ask(workspace, &Request::Status).await.is_none() {
        start(workspace, &names);
    }
}

/// Starts the workspace's mux in the background (once per process), to
/// warm `targets` at once. A mux that finds another one running exits.
pub fn start(workspace: &Workspace, targets: &[&str]) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) || socket_path(workspace).is_none() {
        return;
    }
    if let Err(e) = spawn(workspace, targets) {
        tracing::debug!(error = %e, "cannot start the mux");
    }
}

fn spawn(workspace: &Workspace, targets: &[&str]) -> std::io::Result<()> {
    let dir = dir(workspace);
    crate::private_fs::create_private_dir(&dir)?;
    let log = crate::private_fs::open_private_append(&dir.join("log"))?;
    let idle = std::env::var(IDLE_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_IDLE.as_secs());
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("--workspace")
        .arg(workspace.dir())
        // Its log (`mux/log`) says what it connected to and why it ended.
        .args(["mux", "serve", "-v", "--idle", &idle.to_string()]);
    for target in targets {
        command.args(["--warm", target]);
    }
    // A long-lived process gets no secret: only what finding keys, the
    // ssh-agent and its logging need, whatever the command's environment.
    command.env_clear();
    for var in KEPT_ENV {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // Its own process group: Ctrl-C at the terminal ends the command,
        // not the mux.
        .process_group(0)
        .spawn()?;
    Ok(())
}

/// The environment a mux keeps from the command that starts it.
const KEPT_ENV: [&str; 8] = [
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "SSH_AUTH_SOCK",
    "RUST_LOG",
    "TMPDIR",
    "XDG_DATA_HOME",
];

/// Tells the mux to drop its connection to `name` (the target is being
/// detached or replaced); nothing when no mux runs.
pub async fn forget(workspace: &Workspace, name: &str) {
    let request = Request::Forget {
        target: name.to_owned(),
    };
    let _ = ask(workspace, &request).await;
}
