//! Unpacking a tar archive that comes from a host (a run's outputs, or the
//! outputs a container left) into a folder the user chose, so that nothing
//! in it can write outside that folder, whatever the job put there.
//!
//! The rules, entry by entry:
//! - a path must be plain and relative (no `/`, `..` or prefix): else skipped;
//! - nothing is ever written through a symbolic link: every parent folder
//!   must be a real folder (created when missing), and an existing file or
//!   link at the entry's own path is removed and the file created anew
//!   (`O_EXCL`, which never follows a link);
//! - a symbolic link is kept when it is relative and stays inside the
//!   folder by its text (see [`stays_inside`]), else skipped;
//! - a hard link becomes a link to (or a copy of) a file already unpacked;
//! - special files (FIFOs, devices) are skipped; so is an entry whose path
//!   is a folder where a file is meant (or the other way round).
//!
//! Skipped entries are reported (the first [`MAX_SKIPS_KEPT`] of them, and how
//! many in all); they never stop the unpacking. Memory stays bounded: data
//! is copied through a fixed buffer.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use tar::EntryType;

/// How many skipped entries a report keeps by name.
pub const MAX_SKIPS_KEPT: usize = 20;

/// What one unpacking did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Files written (hard-link copies included).
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Symbolic links kept.
    pub links: u64,
    /// What was left out.
    pub skipped: Skips,
}

/// Entries left out: the first [`MAX_SKIPS_KEPT`] by name, and how many in
/// all. The agent sends its own (what it would not put in an archive) in a
/// download's [`Trailer`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skips {
    /// The first ones, each with why.
    pub first: Vec<Skipped>,
    /// How many in all.
    pub total: u64,
}

impl Skips {
    /// Notes one more left-out entry.
    pub fn add(&mut self, path: &Path, reason: impl Into<String>) {
        self.total += 1;
        if self.first.len() < MAX_SKIPS_KEPT {
            self.first.push(Skipped {
                path: path.display().to_string(),
                reason: reason.into(),
            });
        }
    }

    /// Adds another list's entries (as many as fit) and count.
    pub fn extend(&mut self, other: Skips) {
        let room = MAX_SKIPS_KEPT.saturating_sub(self.first.len());
        self.first.extend(other.first.into_iter().take(room));
        self.total += other.total;
    }
}

/// What the agent says at the end of a download (the end frame's
/// payload): what it left out, and what it did not send because the
/// destination already held it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// Entries it would not send.
    pub skipped: Skips,
    /// Files the destination already held (same size and sha256).
    pub unchanged_files: u64,
    /// Their bytes.
    pub unchanged_bytes: u64,
}

/// An entry left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Its path in the archive.
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl Unpacked {
    fn skip(&mut self, path: &Path, reason: impl Into<String>) {
        self.skipped.add(path, reason);
    }
}

/// Unpacks the archive read from `reader` into `dest` (created if missing),
/// after dropping the first `strip` components of every path (a container's
/// archive of `/moor/outputs` starts with `outputs/`). Errors are the
/// reader's and the destination's (a full disk, no permission); everything a
/// host could put in the archive is skipped and reported instead.
pub fn unpack_within(reader: impl Read, dest: &Path, strip: usize) -> io::Result<Unpacked> {
    fs::create_dir_all(dest)?;
    let mut done = Unpacked::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let Some(rel) = plain_relative(&raw, strip) else {
            done.skip(&raw, "not a plain relative path");
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue; // the root folder itself
        }
        if !parents_are_folders(dest, &rel)? {
            done.skip(&rel, "a folder on its path is a link or a file");
            continue;
        }
        let path = dest.join(&rel);
        let existing = fs::symlink_metadata(&path).ok();
        let kind = entry.header().entry_type();
        if kind == EntryType::Directory {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => done.skip(&rel, "a file or link of that name is already there"),
                None => fs::create_dir(&path)?,
            }
            continue;
        }
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            done.skip(&rel, "a folder of that name is already there");
            continue;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_if(&path, existing.is_some())?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                done.bytes += copy_sparse(&mut entry, &mut file)?;
                done.files += 1;
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                file.set_permissions(fs::Permissions::from_mode(mode | 0o600))?;
                if let Ok(mtime) = entry.header().mtime() {
                    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                    let _ = file.set_modified(when);
                }
            }
            EntryType::Symlink => {
                let Some(target) = entry.link_name()?.map(|t| t.into_owned()) else {
                    done.skip(&rel, "a link without a target");
                    continue;
                };
                if !stays_inside(&rel, &target) {
                    let reason = format!("a link to {} (outside the folder)", target.display());
                    done.skip(&rel, reason);
                    continue;
                }
                remove_if(&path, existing.is_some())?;
                symlink(&target, &path)?;
                done.links += 1;
            }
            EntryType::Link => {
                let source = entry
                    .link_name()?
                    .and_then(|t| plain_relative(&t, strip))
                    .filter(|t| !t.as_os_str().is_empty());
                let Some(source) = source else {
                    done.skip(&rel, "a hard link to a path outside the folder");
                    continue;
                };
                let from = dest.join(&source);
                let is_file = parents_are_folders(dest, &source)?
                    && fs::symlink_metadata(&from).is_ok_and(|m| m.is_file());
                if !is_file {
                    done.skip(&rel, "a hard link to a file not in the folder");
                    continue;
                }
                remove_if(&path, existing.is_some())?;
                if fs::hard_link(&from, &path).is_err() {
                    done.bytes += fs::copy(&from, &path)?;
                }
                done.files += 1;
            }
            other => done.skip(&rel, format!("a special file ({})", kind_name(other))),
        }
    }
    Ok(done)
}

/// Copies `from` into the new file `to`, seeking over every 4 KiB block of
/// zeros instead of writing it: a sparse file (a disk image) stays sparse,
/// taking on this disk what it took on the host's. The bytes copied.
fn copy_sparse(from: &mut impl Read, to: &mut fs::File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    const BLOCK: usize = 4096;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        for block in buf[..filled].chunks(BLOCK) {
            if block.iter().all(|b| *b == 0) {
                to.seek(SeekFrom::Current(block.len() as i64))?;
            } else {
                to.write_all(block)?;
            }
        }
        total += filled as u64;
    }
    // A hole at the end is made real by the file's length.
    to.set_len(total)?;
    Ok(total)
}

/// `path` without its first `strip` components, if what is left has only
/// plain names (`.` components dropped).
fn plain_relative(path: &Path, strip: usize) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut seen = 0;
    for c in path.components() {
        match c {
            Component::CurDir => continue,
            Component::Normal(name) => {
                seen += 1;
                if seen > strip {
                    out.push(name);
                }
            }
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Makes sure every folder above `rel` inside `dest` is a real folder
/// (creating missing ones); false when one is a link or a file.
fn parents_are_folders(dest: &Path, rel: &Path) -> io::Result<bool> {
    let mut at = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(true);
    };
    for c in parent.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&at)?,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Whether a link at `rel` (inside the folder) pointing at `target` stays
/// inside the folder: relative, its `..` components all leading and no more
/// of them than folders above the link, then plain names only. A `..` after
/// a name is refused even when the text looks inside (`a/..`), because `a`
/// may itself be a link (`a -> .` makes `a/..` the folder's parent). With
/// every kept link so made, no chain of links leads out: each starts from a
/// real folder inside and only goes down from there.
pub fn stays_inside(rel: &Path, target: &Path) -> bool {
    // Folders above the link, below the root.
    let mut up = rel.components().count().saturating_sub(1);
    let mut names = false;
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if !names && up > 0 => up -= 1,
            Component::Normal(_) => names = true,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    !target.as_os_str().is_empty()
}

fn remove_if(path: &Path, exists: bool) -> io::Result<()> {
    if exists {
        fs::remove_file(path)?;
    }
    Ok(())
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Fifo => "a FIFO",
        EntryType::Char => "a character device",
        EntryType::Block => "a block device",
        _ => "an entry type moor does not unpack",
    }
}

/// A [`Read`] over chunks pulled one at a time (from a stream of frames,
/// from a container), so an archive can be unpacked while it arrives.
pub struct PullReader<F> {
    pull: F,
    chunk: Vec<u8>,
    at: usize,
    /// Bytes read so far.
    pub read: u64,
}

impl<F: FnMut() -> io::Result<Option<Vec<u8>>>> PullReader<F> {
    /// A reader that calls `pull` for the next chunk; `Ok(None)` is the end.
    pub fn new(pull: F) -> PullReader<F> {
        PullReader {
            pull,
            chunk: Vec::new(),
            at: 0,
            read: 0,
        }
    }
}

impl<F: FnMut() -> io::Result<Option<Vec<u8>>>> Read for PullReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match (self.pull)()? {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
