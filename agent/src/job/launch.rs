//! `moor-agent launch RUN_DIR -- CMD ARGS...`: the job of a run with several
//! processes on this host (distributed training, like Azure ML's
//! `process_count_per_instance`). It starts the command once per local rank
//! with `RANK`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE` and `WORLD_SIZE` set (the
//! rendezvous variables, `MASTER_ADDR` and the like, come with the run), all
//! in the run's process group and writing to the run's log, and waits for
//! them. The first that fails stops the others (SIGTERM, SIGKILL after 10
//! s) and its exit code is the run's; all succeeding is success.
//!
//! moor starts the processes itself rather than through `torchrun`: Debian's
//! torch 1.13 `torchrun` fails on Python 3.11 inside its elastic agent, while
//! processes started with these variables work (and `torchrun` can still be
//! the command, with one process per node).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{AgentError, Result};
use crate::runs::{files, StoredSpec};
use crate::sys;

/// The per-process variables of local rank `local`.
/// With the run's MLflow token (`tracking_token`), the rank's own token.
pub fn rank_variables(
    p: &moor_proto::Processes,
    local: u32,
    tracking_token: Option<&str>,
) -> BTreeMap<&'static str, String> {
    let rank = p.first_rank + local;
    let mut variables = BTreeMap::from([
        ("RANK", rank.to_string()),
        ("LOCAL_RANK", local.to_string()),
        ("LOCAL_WORLD_SIZE", p.count.to_string()),
        ("WORLD_SIZE", p.world_size.to_string()),
    ]);
    if let Some(token) = tracking_token {
        variables.insert(
            "MLFLOW_TRACKING_TOKEN",
            crate::tracking::rank_token(token, rank),
        );
    }
    variables
}

/// Runs `argv` once per local rank of the run in `dir`; returns the exit
/// code for the run.
pub fn run(dir: &Path, argv: &[String]) -> Result<i32> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    let processes = stored
        .spec
        .processes
        .ok_or_else(|| AgentError::usage("the run has no processes to launch"))?;
    run_ranks(processes, argv)
}

/// The `--ranks` argument that gives a launcher `p` without a run folder
/// (in a container): `COUNT,FIRST_RANK,WORLD_SIZE`.
pub fn ranks_arg(p: &moor_proto::Processes) -> String {
    format!("{},{},{}", p.count, p.first_rank, p.world_size)
}

/// Reads a `--ranks` argument.
pub fn parse_ranks(text: &str) -> Option<moor_proto::Processes> {
    let mut parts = text.split(',').map(|n| n.parse::<u32>().ok());
    let (Some(Some(count)), Some(Some(first_rank)), Some(Some(world_size)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (count > 0 && first_rank + count <= world_size).then_some(moor_proto::Processes {
        count,
        first_rank,
        world_size,
    })
}

/// Runs `argv` once per local rank of `processes`; returns the exit code.
pub fn run_ranks(processes: moor_proto::Processes, argv: &[String]) -> Result<i32> {
    let program = argv
        .first()
        .ok_or_else(|| AgentError::usage("launch: no command"))?;
    // A SIGTERM (a cancel; docker-init's in a container) is passed on to
    // every rank, and their ends are waited for, not cut short.
    let term = sys::survive_sigterm();
    let tracking_token = std::env::var(crate::tracking::TOKEN_VAR).ok();
    let mut children: Vec<Pid> = Vec::new();
    for local in 0..processes.count {
        let mut command = Command::new(program);
        command
            .args(&argv[1..])
            .envs(rank_variables(&processes, local, tracking_token.as_deref()));
        match command.spawn() {
            Ok(child) => children.push(Pid::from_raw(child.id() as i32)),
            Err(e) => {
                eprintln!("moor: cannot start local rank {local} ({program:?}): {e}");
                stop(&children);
                return Ok(127);
            }
        }
    }
    if let Some((runtime, mut term)) = term {
        let ranks = children.clone();
        std::thread::spawn(move || {
            while runtime.block_on(term.recv()).is_some() {
                for pid in &ranks {
                    let _ = kill(*pid, Signal::SIGTERM);
                }
            }
        });
    }
    let mut left = children.len();
    let mut failed: Option<i32> = None;
    while left > 0 {
        let (pid, code) = match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => break,
            Err(e) => return Err(AgentError::internal(format!("waiting for the ranks: {e}"))),
        };
        let Some(local) = children.iter().position(|c| *c == pid) else {
            continue; // an orphan of a rank, reaped
        };
        left -= 1;
        if code != 0 && failed.is_none() {
            let rank = processes.first_rank + local as u32;
            eprintln!(
                "moor: rank {rank} (local rank {local}) exited with {code}; stopping the others"
            );
            failed = Some(code);
            stop(&children);
        }
    }
    Ok(failed.unwrap_or(0))
}

/// SIGTERM to every rank still there, SIGKILL to those left after 10 s.
fn stop(children: &[Pid]) {
    let alive = |pid: &Pid| kill(*pid, None).is_ok();
    for pid in children.iter().filter(|p| alive(p)) {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // Reap what ended so `alive` sees it gone.
        while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        if !children.iter().any(alive) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in children.iter().filter(|p| alive(p)) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranks_count_from_the_nodes_first() {
        let p = moor_proto::Processes {
            count: 2,
            first_rank: 4,
            world_size: 6,
        };
        let v = super::rank_variables(&p, 1, None);
        assert_eq!(v["RANK"], "5");
        assert_eq!(v["LOCAL_RANK"], "1");
        assert_eq!(v["LOCAL_WORLD_SIZE"], "2");
        assert_eq!(v["WORLD_SIZE"], "6");
        assert_eq!(super::parse_ranks(&super::ranks_arg(&p)), Some(p));
        for bad in ["", "2,4", "0,0,1", "2,5,6", "2,4,6,1", "a,b,c"] {
            assert_eq!(super::parse_ranks(bad), None, "{bad}");
        }
    }
}
