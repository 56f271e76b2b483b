//! The workspace's snapshot index, as git's index and rsync's quick check
//! keep one: for each source directory, the listing it had when it was last
//! packed (every file's name, size, modification and change times, inode
//! and mode; every link) and the snapshot's hash and size. A run whose
//! source lists the same needs no file read to know its snapshot, and none
//! at all when the host has it. One small JSON file per directory in
//! `<workspace>/snapshot-index/`, written atomically (0600); a missing or
//! unreadable entry only means packing again.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Listing, Snapshot};

/// Bumped whenever packing could give other bytes for the same files.
const FORMAT: &str = "moor-snapshot-index 1";

/// What the index keeps of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    mode: u32,
}

impl FileStat {
    /// From a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> FileStat {
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStat {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            mode: meta.mode(),
        }
    }

    /// The later of its modification and change times.
    pub fn newest(&self) -> SystemTime {
        let ns = self.mtime_ns.max(self.ctime_ns).max(0);
        SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// A directory and the fingerprint of its listing.
#[derive(Debug)]
pub struct Key {
    dir: PathBuf,
    fingerprint: String,
}

impl Key {
    /// The key of `dir` as `listing` found it.
    pub fn of(dir: &Path, listing: &Listing) -> Key {
        let mut text = Vec::with_capacity(64 * (listing.paths.len() + 1));
        text.extend_from_slice(FORMAT.as_bytes());
        text.push(0);
        for (rel, s) in listing.paths.iter().zip(&listing.stats) {
            text.extend_from_slice(rel.as_os_str().as_bytes());
            text.extend_from_slice(
                format!(
                    "\0{} {} {} {} {}\n",
                    s.size, s.mtime_ns, s.ctime_ns, s.ino, s.mode
                )
                .as_bytes(),
            );
        }
        for (kind, links) in [("link", &listing.links), ("out", &listing.skipped_links)] {
            for (rel, to) in links {
                text.extend_from_slice(kind.as_bytes());
                text.push(0);
                text.extend_from_slice(rel.as_os_str().as_bytes());
                text.push(0);
                text.extend_from_slice(to.as_os_str().as_bytes());
                text.push(b'\n');
            }
        }
        Key {
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_owned()),
            fingerprint: moor_proto::sha256_hex(&text),
        }
    }
}

/// What the index knows of a source.
#[derive(Debug, Serialize, Deserialize)]
pub struct Known {
    /// The listing's fingerprint.
    fingerprint: String,
    /// The snapshot's hex sha256.
    pub sha256: String,
    /// Its archive's size.
    pub size: u64,
}

/// The index of one workspace.
#[derive(Debug, Clone)]
pub struct SnapshotIndex {
    dir: PathBuf,
}

impl SnapshotIndex {
    /// The index kept in `dir` (`<workspace>/snapshot-index`).
    pub fn in_dir(dir: PathBuf) -> SnapshotIndex {
        SnapshotIndex { dir }
    }

    fn file(&self, key: &Key) -> PathBuf {
        let name = moor_proto::sha256_hex(key.dir.as_os_str().as_bytes());
        self.dir.join(format!("{}.json", &name[..32]))
    }

    /// The snapshot `key`'s listing had when it was packed, if it is the same.
    pub fn get(&self, key: &Key) -> Option<Known> {
        let text = std::fs::read(self.file(key)).ok()?;
        let known: Known = serde_json::from_slice(&text).ok()?;
        (known.fingerprint == key.fingerprint).then_some(known)
    }

    /// Records `snap` as the snapshot of `key` (best effort: an index that
    /// cannot be written only costs packing again).
    pub fn put(&self, key: &Key, snap: &Snapshot) {
        let (dir, file) = (&self.dir, self.file(key));
        let known = Known {
            fingerprint: key.fingerprint.clone(),
            sha256: snap.sha256.clone(),
            size: snap.size,
        };
        let text = serde_json::to_vec(&known).expect("index entries serialize");
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
        }
        let written = crate::workspace::write_private_atomic(&file, &text);
        if let Err(e) = written {
            tracing::debug!(file = %file.display(), error = %e, "snapshot index not written");
        }
    }
}
