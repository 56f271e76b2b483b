//! GPUs shared by the runs of one host: a run that asks for N GPUs waits
//! (`queued`) until N are free, then gets them in `CUDA_VISIBLE_DEVICES`;
//! runs that ask for none start at once. The inventory is what `nvidia-smi`
//! lists, or, when present, the file `~/.moor/gpus` (one GPU index per
//! line): it lets an operator hand moor a subset of a host's GPUs, and
//! tests a host with GPUs it does not have. A run's GPUs are recorded in its
//! folder (`gpus`); they are free again once the run has ended (or is lost).
//! Assignments are made under an exclusive lock (`~/.moor/gpus.lock`), the
//! oldest waiting run first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::runs::{Runs, StoredSpec};
use crate::sys;

/// The file in a run's folder with the GPUs it was given.
pub const ASSIGNED: &str = "gpus";

/// The inventory file.
pub fn inventory_file() -> PathBuf {
    sys::home().join(".moor/gpus")
}

/// The host's GPU indices: the inventory file's, else nvidia-smi's.
pub fn inventory() -> Vec<u32> {
    if let Ok(text) = fs::read_to_string(inventory_file()) {
        return text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    }
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn assigned(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join(ASSIGNED))
        .map(|t| t.split(',').filter_map(|g| g.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Waits until `want` GPUs are free for the run in `dir`, the runs that
/// asked before it served first; records and returns them. `Err` with the
/// reason when the host has fewer than `want`, or the run was cancelled
/// while it waited (`Ok(None)`).
pub fn acquire(runs: &Runs, dir: &Path, want: u32) -> Result<Option<Vec<u32>>, String> {
    let all = inventory();
    if (all.len() as u32) < want {
        return Err(format!(
            "the run asks for {want} GPU(s); this host has {} ({})",
            all.len(),
            if inventory_file().exists() {
                "~/.moor/gpus"
            } else {
                "nvidia-smi"
            }
        ));
    }
    let me = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let lock_path = runs
        .root()
        .parent()
        .unwrap_or(runs.root())
        .join("gpus.lock");
    loop {
        if dir.join(crate::runs::files::CANCEL).exists() {
            return Ok(None);
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("{}: {e}", lock_path.display()))?;
        let (busy, first) = look(runs, &me).map_err(|e| e.to_string())?;
        let free: Vec<u32> = all.iter().copied().filter(|g| !busy.contains(g)).collect();
        if first && free.len() as u32 >= want {
            let mine: Vec<u32> = free.into_iter().take(want as usize).collect();
            let text = mine
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            sys::write_atomic(&dir.join(ASSIGNED), text.as_bytes()).map_err(|e| e.to_string())?;
            drop(lock);
            return Ok(Some(mine));
        }
        drop(lock);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The GPUs held by runs going, and whether `me` is the oldest run still
/// waiting for GPUs.
fn look(runs: &Runs, me: &str) -> io::Result<(Vec<u32>, bool)> {
    let mut busy = Vec::new();
    let mut first = true;
    for run in runs.list()? {
        if run.state.is_final() || run.id == me {
            continue;
        }
        let dir = runs.dir(&run.id);
        let held = assigned(&dir);
        if !held.is_empty() {
            busy.extend(held);
            continue;
        }
        let wants = sys::read_json::<StoredSpec>(&dir.join(crate::runs::files::SPEC))
            .map(|s| s.spec.gpus)
            .unwrap_or(0);
        // `list` is newest first: an older run waiting goes before `me`.
        if wants > 0 && run.id.as_str() < me {
            first = false;
        }
    }
    Ok((busy, first))
}
