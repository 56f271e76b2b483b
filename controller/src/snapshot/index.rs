//! The workspace's snapshot index, as git's index and rsync's quick check
//! keep one: for each source directory, every file's name, size,
//! modification and change times, inode and mode when it was last hashed,
//! with its content's sha256. A file that stats the same is not read again,
//! so an unchanged source is known without reading a file, and a changed
//! one costs reading only what changed. One small JSON file per directory
//! in `<workspace>/snapshot-index/`, written atomically (0600); a missing or
//! unreadable entry only means hashing again.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Bumped whenever the same files could be hashed otherwise.
/// (3: files recorded are known to hold no private key.)
const FORMAT: &str = "moor-snapshot-index 3";

/// What the index keeps of one file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether any execute bit is set.
    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// One file as it was hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownFile {
    /// Its metadata then.
    pub stat: FileStat,
    /// Its content's hex sha256.
    pub sha256: String,
}

/// What the index keeps of one directory.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    format: String,
    /// Relative path (UTF-8) → the file as hashed.
    files: HashMap<String, KnownFile>,
    /// The snapshot the folder made last time.
    #[serde(default)]
    last: Option<String>,
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

    fn file(&self, source: &Path) -> PathBuf {
        let source = source.canonicalize().unwrap_or_else(|_| source.to_owned());
        let name = moor_proto::sha256_hex(source.as_os_str().as_bytes());
        self.dir.join(format!("{}.json", &name[..32]))
    }

    /// The files of `source` as they were last hashed (none if unknown),
    /// and the snapshot it made last.
    pub fn files(&self, source: &Path) -> (HashMap<String, KnownFile>, Option<String>) {
        let Ok(text) = std::fs::read(self.file(source)) else {
            return (HashMap::new(), None);
        };
        match serde_json::from_slice::<Entry>(&text) {
            Ok(entry) if entry.format == FORMAT => (entry.files, entry.last),
            _ => (HashMap::new(), None),
        }
    }

    /// Records `files` as the hashed files of `source` and `last` as its
    /// snapshot (best effort: an index that cannot be written only costs
    /// hashing again).
    pub fn put(&self, source: &Path, files: HashMap<String, KnownFile>, last: &str) {
        let (dir, file) = (&self.dir, self.file(source));
        let entry = Entry {
            format: FORMAT.into(),
            files,
            last: Some(last.to_owned()),
        };
        let text = serde_json::to_vec(&entry).expect("index entries serialize");
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
        }
        let written = crate::private_fs::write_private_atomic(&file, &text);
        if let Err(e) = written {
            tracing::debug!(file = %file.display(), error = %e, "snapshot index not written");
        }
    }
}
