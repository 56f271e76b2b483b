//! The command's process and its stream: `moor ARGV` with the team's
//! workspace, a HOME of the server's folder (`DATA/home`: never the
//! operator's ~/.ssh), the caller's name and secrets in its environment
//! (nothing else of the server's), its output relayed in frames through a bounded
//! channel, a keepalive while it is quiet, its exit code last, and an
//! audit line once it has ended.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use moor::team::api::Fault;
use moor::team::frames::{self, ALIVE, ALIVE_EVERY, EXIT, STDERR, STDOUT};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::policy::Plan;
use crate::db::{Caller, Refusal};
use crate::shared::Shared;

/// Chunks in flight to one caller: a slow reader slows the command.
const IN_FLIGHT: usize = 8;

/// How much one read of the command's output takes.
const CHUNK: usize = 64 * 1024;

/// Starts the command; the channel of its frames.
pub async fn stream(
    shared: Arc<Shared>,
    caller: Caller,
    plan: Plan,
    argv: Vec<String>,
    secrets: BTreeMap<String, String>,
) -> Result<mpsc::Receiver<Bytes>, Refusal> {
    let workspace = shared.data.dir().join("workspace");
    // A HOME of the server's own: the team's commands never see the
    // operator's ~/.ssh (keys, agent, config), only the workspace's key.
    let home = shared.data.dir().join("home");
    moor::private_fs::create_private_dir(&home).map_err(|e| {
        Refusal::new(
            Fault::Unavailable,
            format!(
                "the server cannot make its commands' home {}: {e}",
                home.display()
            ),
            "the server's operator should check the disk of its folder",
        )
    })?;
    let mut command = Command::new(&shared.moor);
    command
        .args(&argv)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("MOOR_WORKSPACE", &workspace)
        .env("HOME", &home)
        .env(moor::store::TEAM_USER_ENV, &caller.name)
        .envs(&secrets)
        .current_dir(shared.data.dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for keep in ["LANG", "TMPDIR", "MOOR_MUX_IDLE", "MOOR_NO_MUX"] {
        if let Some(value) = std::env::var_os(keep) {
            command.env(keep, value);
        }
    }
    let mut child = command.spawn().map_err(|e| {
        Refusal::new(
            Fault::Unavailable,
            format!("the server cannot start moor for the command: {e}"),
            "the server's operator should check the server's log and limits",
        )
    })?;
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    tokio::spawn(async move {
        let code = relay(&mut child, stdout, stderr, &tx).await;
        let _ = tx.send(frames::encode(EXIT, &[code])).await;
        if !plan.action.is_empty() {
            let detail = format!("exit {code}");
            if let Err(e) = shared
                .db
                .record(&caller.name, plan.action, &plan.subject, &detail)
                .await
            {
                tracing::warn!("audit of {} by {}: {}", plan.action, caller.name, e.message);
            }
        }
    });
    Ok(rx)
}

/// Relays the command's output until it ends; its exit code (128+N for a
/// signal N). A caller gone is a SIGINT to the command, whose output is
/// then drained and dropped.
async fn relay(
    child: &mut tokio::process::Child,
    mut stdout: impl AsyncRead + Unpin,
    mut stderr: impl AsyncRead + Unpin,
    tx: &mpsc::Sender<Bytes>,
) -> u8 {
    let (mut out_open, mut err_open, mut gone) = (true, true, false);
    let (mut out_buf, mut err_buf) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut alive = tokio::time::interval(ALIVE_EVERY);
    alive.tick().await;
    while out_open || err_open {
        let (kind, n) = tokio::select! {
            n = stdout.read(&mut out_buf), if out_open => (STDOUT, n.unwrap_or(0)),
            n = stderr.read(&mut err_buf), if err_open => (STDERR, n.unwrap_or(0)),
            _ = alive.tick() => (ALIVE, 0),
        };
        if n == 0 && kind != ALIVE {
            if kind == STDOUT {
                out_open = false
            } else {
                err_open = false
            }
            continue;
        }
        let data = match kind {
            STDOUT => &out_buf[..n],
            STDERR => &err_buf[..n],
            _ => &[][..],
        };
        if !gone && tx.send(frames::encode(kind, data)).await.is_err() {
            gone = true;
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
        }
    }
    match child.wait().await {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .map(|c| c as u8)
                .or(status.signal().map(|s| (128 + s) as u8))
                .unwrap_or(1)
        }
        Err(_) => 1,
    }
}
