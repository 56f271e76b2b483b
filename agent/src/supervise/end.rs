//! How a run ends: waiting for its job (reaping adopted orphans), stopping
//! whatever is left of a cancelled run, and recording the end atomically
//! (in the room reserved at its start when the disk is full), then telling
//! the job's other nodes.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use moor_proto::RunState;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{AgentError, Result};
use crate::runs::{files, note, Status};
use crate::sys;

/// Waits for the job `pid` to end (reaping adopted orphans meanwhile);
/// returns its exit code or the signal that ended it.
pub fn wait_for(pid: u32) -> Result<(Option<i32>, Option<i32>)> {
    let job = Pid::from_raw(i32::try_from(pid).map_err(|_| AgentError::internal("pid"))?);
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == job => return Ok((Some(code), None)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == job => return Ok((None, Some(sig as i32))),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(AgentError::internal(format!("waiting for the job: {e}"))),
        }
    }
}

/// Reaps every child that has ended, without waiting.
fn reap_ended() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Stops every process left of the run: SIGTERM, then SIGKILL to what is
/// still there after `grace`.
pub fn stop_descendants(grace: Duration) {
    let me = std::process::id();
    if sys::signal_descendants(me, Signal::SIGTERM) == 0 {
        return;
    }
    let gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            reap_ended();
            if sys::descendants(me).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if !gone(grace) {
        sys::signal_descendants(me, Signal::SIGKILL);
        gone(Duration::from_secs(5));
    }
}

/// The grace period a cancel asked for (the marker's content), 10 s if unreadable.
pub fn cancel_grace(dir: &Path) -> Duration {
    fs::read_to_string(dir.join(files::CANCEL))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(10))
}

/// Records how the run ended: `status.json`, written atomically; when that
/// fails (a full disk), the room reserved in `end.json` when the run was
/// accepted, rewritten in place, and a line in the run's log saying so.
/// Then the job's other nodes hear how this one ended (node 0 waits for
/// theirs).
pub fn finish(dir: &Path, status: Status, state: RunState) -> Result<()> {
    let detail = end_detail(&status, state);
    let recorded = record_end(dir, status, state);
    crate::job::link::ended(state == RunState::Succeeded, &detail);
    recorded
}

/// Writes `status.json` (or the reserved `end.json`).
fn record_end(dir: &Path, mut status: Status, state: RunState) -> Result<()> {
    status.state = Some(state);
    status.ended_at = Some(moor_proto::time::now());
    let Err(e) = sys::write_json_atomic(&dir.join(files::STATUS), &status) else {
        return Ok(());
    };
    note(
        dir,
        &format!("could not write status.json ({e}); the end is kept in end.json"),
    );
    if let Some(error) = &mut status.error {
        *error = error.chars().take(1024).collect();
    }
    let bytes = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
    sys::rewrite_reserved(&dir.join(files::END), &bytes)
        .map_err(|e| AgentError::from(e).context("recording the run's end"))
}

/// How a run ended, in a few words (`exit 3`, `signal 9`, `cancelled`).
fn end_detail(status: &Status, state: RunState) -> String {
    match (state, status.exit_code, status.signal) {
        (RunState::Cancelled, ..) => "cancelled".into(),
        (_, _, Some(signal)) => format!("signal {signal}"),
        (_, Some(code), None) => format!("exit {code}"),
        _ => format!("{state:?}").to_lowercase(),
    }
}
