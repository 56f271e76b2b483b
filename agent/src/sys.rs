//! File and process helpers of the host the agent runs on: private
//! directories, atomic writes, JSON files, executables on PATH, process start
//! times and the boot id (to tell a live process from a reused pid or an
//! earlier boot), the agent's own build hash, and random ids.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The user's home (`/tmp` when `HOME` is unset).
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Creates a directory (and parents), mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Reads a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes a JSON file atomically: temporary file, fsync, rename. A reader
/// (or a crash) sees the old or the new content, never half of it.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &serde_json::to_vec(value).map_err(io::Error::other)?)
}

/// Writes a file atomically (mode 0600), as [`write_json_atomic`]. The
/// temporary file is removed when any step fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Its own name per writer: two threads of the daemon may write the
    // same file at once (the last rename wins, whole).
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), random_hex(4)));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Bytes of the files under `path` (links not followed; a file with
/// several hard links, as runs share their snapshot's files, counts once;
/// what cannot be read counts nothing).
pub fn tree_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut linked = std::collections::HashSet::new();
    let mut todo = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&p) {
                todo.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.nlink() < 2 || linked.insert((meta.dev(), meta.ino())) {
            total += meta.len();
        }
    }
    total
}

/// Bytes free for this user on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// A temporary file removed when dropped, unless [`TempFile::keep`] moved
/// it into place: no error path can leave it behind.
pub struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    /// Creates `path` (0600, must not exist) and returns it open for writing.
    pub fn create(path: PathBuf) -> io::Result<(TempFile, fs::File)> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok((TempFile { path, kept: false }, file))
    }

    /// Renames it to `to`; from then on it is not removed.
    pub fn keep(mut self, to: &Path) -> io::Result<()> {
        fs::rename(&self.path, to)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// How long ago a folder entry last changed (`None` if unknown, or in the
/// future).
pub fn changed_ago(entry: &fs::DirEntry) -> Option<std::time::Duration> {
    entry.metadata().ok()?.modified().ok()?.elapsed().ok()
}

/// Removes the files in `dir` whose names start with `.` and end with
/// `.tmp`, last changed more than `age` ago: what a killed process left
/// (a live writer keeps its file's time fresh). Returns how many went.
pub fn sweep_temp_files(dir: &Path, age: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = changed_ago(&entry).is_some_and(|ago| ago > age);
        if name.starts_with('.') && name.ends_with(".tmp") && stale {
            removed += usize::from(fs::remove_file(entry.path()).is_ok());
        }
    }
    removed
}

/// Creates `path` (0600) holding `len` spaces: room taken while there is
/// some, for [`rewrite_reserved`] to use when the disk is full.
pub fn reserve(path: &Path, len: usize) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // Written, not synced: the file system takes the room at the write
    // (ext4's delayed allocation reserves it too), and an fsync per run
    // start would slow every start down.
    file.write_all(&vec![b' '; len])
}

/// Writes `bytes` over the start of a file made by [`reserve`], padding
/// with spaces to its length: no new blocks are needed, so it works on a
/// full disk. Refused when `bytes` do not fit.
pub fn rewrite_reserved(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len() as usize;
    if bytes.len() > len {
        return Err(io::Error::other(format!(
            "{} bytes do not fit the {len} reserved in {}",
            bytes.len(),
            path.display()
        )));
    }
    let mut padded = bytes.to_vec();
    padded.resize(len, b' ');
    file.write_all(&padded)?;
    file.sync_all()
}

/// The first executable file called `name` in a directory of `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Whether `path` is a file someone may execute.
pub fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): a run recorded in
/// another boot cannot still be going.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` if it is gone (or a zombie, which will not
/// run again). Read from its main thread's `task/PID/stat` (the same
/// field): a process reading its own `/proc/PID/stat` under qemu-user (an
/// arm64 machine emulated) gets qemu's made-up start time, its main
/// thread's file is the kernel's, for itself and for others alike.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow ") ".
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19).map(|s| (*s).to_owned())
}

/// The parent of every live process (from `/proc/PID/stat`).
fn parents() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Every live descendant of `root` (children, their children, ...), found
/// through the parent links in `/proc`. A process that left its session or
/// process group is still found, and so is an orphan adopted by `root` as
/// its subreaper.
pub fn descendants(root: u32) -> Vec<u32> {
    let links = parents();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            links
                .iter()
                .filter(|(pid, ppid)| *ppid == parent && !found.contains(pid))
                .map(|(pid, _)| *pid)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Sends `signal` to every live descendant of `root`; returns how many there were.
pub fn signal_descendants(root: u32, signal: nix::sys::signal::Signal) -> usize {
    let all = descendants(root);
    for pid in &all {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }
    all.len()
}

/// Hex sha256 of the running executable: the build hash in [`moor_proto::Hello`].
pub fn self_hash() -> io::Result<String> {
    sha256_file(Path::new("/proc/self/exe"))
}

/// Hex sha256 of a file, read in 64 KiB pieces.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(moor_proto::hex(&hasher.finalize()))
}

/// Writes one protocol frame on a connection shared by several answers.
pub fn send_frame(
    writer: &std::sync::Mutex<std::os::unix::net::UnixStream>,
    frame: &moor_proto::Frame,
) -> io::Result<()> {
    let bytes = frame.to_bytes().map_err(io::Error::other)?;
    writer.lock().expect("writer lock").write_all(&bytes)
}

/// `n` random bytes as hex, from the kernel.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    moor_proto::hex(&bytes)
}

/// `n` random bytes as hex, from the kernel, for a secret: an error when
/// the kernel gives none (never a predictable value).
pub fn secret_hex(n: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(moor_proto::hex(&bytes))
}

/// 1, 5 and 15 minute load averages.
pub fn load_average() -> [f64; 3] {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

/// Makes this process outlive SIGTERM (the children it starts afterwards
/// keep the default: a handler, unlike an ignored signal, is not
/// inherited); the returned stream hears each SIGTERM. Keep it alive.
pub fn survive_sigterm() -> Option<(tokio::runtime::Runtime, tokio::signal::unix::Signal)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let term = {
        let _entered = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()?
    };
    Some((runtime, term))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temporary_file_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        let back: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(back["a"], 1);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A write that cannot rename (the target is a directory) cleans up.
        fs::create_dir(dir.path().join("d")).unwrap();
        assert!(write_atomic(&dir.path().join("d"), b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn descendants_are_found_through_a_double_fork_and_setsid() {
        use std::process::Command;
        // sh forks a subshell that starts a setsid'd sleep and exits: the
        // sleep is orphaned (its parent gone) unless we adopt it.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 37011 & setsid sleep 37012 & wait"])
            .spawn()
            .unwrap();
        let me = std::process::id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let found = loop {
            let found = descendants(me);
            if found.len() >= 3 || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(found.len() >= 3, "sh and two sleeps: {found:?}");
        signal_descendants(child.id(), nix::sys::signal::Signal::SIGKILL);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn this_process_has_a_start_time_and_a_boot() {
        let me = std::process::id();
        // The main thread's start time is the process's.
        let stat = fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let field_22 = after.split_whitespace().nth(19).unwrap();
        assert_eq!(process_start(me).as_deref(), Some(field_22));
        assert!(!boot_id().is_empty());
        assert_eq!(random_hex(4).len(), 8);
        assert_eq!(self_hash().unwrap().len(), 64);
    }
}
