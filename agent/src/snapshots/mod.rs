//! Source snapshots on the host, kept under `~/.moor/snapshots` by their
//! sha256: an upload received into a temporary file that no error path
//! leaves behind (a full disk says so), and pruning the ones no run refers
//! to any more (with their shared trees, [`crate::snapshots::trees`]).

pub mod blobs;
pub mod manifests;
pub mod trees;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use moor_proto::{ErrorKind, Frame, FrameKind, Response};
use sha2::{Digest, Sha256};

use crate::runs::Runs;
use crate::sys;

/// Removes the snapshots no run refers to any more (left alone for 10
/// minutes after they arrive: an upload is followed by its run's start).
pub fn prune(dir: &Path, runs: &Runs) -> io::Result<(u32, u64)> {
    let used = runs.snapshots_in_use()?;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok((0, 0));
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A tree whose archive or manifest is gone, or a staging folder a
        // killed daemon left.
        let orphan = name
            .strip_suffix(".tree")
            .is_some_and(|hash| !path(dir, hash).exists() && !manifest_path(dir, hash).exists());
        if orphan || crate::snapshots::trees::is_stale_staging(&entry) {
            bytes += sys::tree_bytes(&entry.path());
            let _ = fs::remove_dir_all(entry.path());
            continue;
        }
        if name.ends_with(".manifest.pending")
            && sys::changed_ago(&entry).is_some_and(|ago| ago > Duration::from_secs(600))
        {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        let Some(hash) = name
            .strip_suffix(".tar")
            .or_else(|| name.strip_suffix(".manifest"))
            .filter(|h| moor_proto::is_sha256_hex(h))
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        let fresh = sys::changed_ago(&entry).is_none_or(|ago| ago < Duration::from_secs(600));
        if used.contains(hash) || fresh {
            continue;
        }
        if fs::remove_file(entry.path()).is_ok() {
            count += 1;
            bytes += meta.len();
            // Its shared tree goes with it (runs keep their own links). A
            // tree sent file by file holds links to the blob store, whose
            // contents are freed (and counted) by the blob pruning below.
            let tree = tree_path(dir, hash);
            if name.ends_with(".tar") {
                bytes += sys::tree_bytes(&tree);
            }
            let _ = fs::remove_dir_all(&tree);
        }
    }
    bytes += crate::snapshots::blobs::prune(dir);
    Ok((count, bytes))
}

/// Whether the host has the snapshot `sha256`: its archive, or its
/// manifest with the tree built from it.
pub fn has(dir: &Path, sha256: &str) -> bool {
    moor_proto::is_sha256_hex(sha256)
        && (path(dir, sha256).exists()
            || (manifest_path(dir, sha256).exists() && tree_path(dir, sha256).is_dir()))
}

/// Where the snapshot `sha256` is kept (packed).
pub fn path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.tar"))
}

/// Where the manifest of the snapshot `sha256` is kept, when it came file
/// by file ([`crate::snapshots::manifests`]).
pub fn manifest_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.manifest"))
}

/// Where a manifest waits for its contents: it becomes
/// [`manifest_path`] once its tree is built, so nothing names a snapshot
/// whose content never arrived (a full disk mid-upload leaves only this,
/// removed then, or by the next prune).
pub fn pending_manifest_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!(".{sha256}.manifest.pending"))
}

/// Removes every manifest still waiting for its contents (a full disk
/// ended their uploads).
pub fn drop_pending_manifests(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(".manifest.pending")
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Where its shared tree is kept ([`crate::snapshots::trees`]).
pub fn tree_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.tree"))
}

/// Receives an upload into a temporary file, keeps it only if size and hash match.
pub fn put(
    dir: &Path,
    sha256: &str,
    size: u64,
    data: mpsc::Receiver<Frame>,
) -> io::Result<Response> {
    if !moor_proto::is_sha256_hex(sha256) {
        return Ok(Response::error(
            ErrorKind::BadRequest,
            "snapshot hash must be 64 lowercase hex digits",
        ));
    }
    let no_space = |e: io::Error| crate::error::no_space_answer(dir, e);
    sys::create_private_dir(dir)?;
    // Removed on every path but the one that keeps it (a full disk included).
    let tmp_path = dir.join(format!(".{sha256}.{}.tmp", sys::random_hex(4)));
    let (tmp, mut file) = match sys::TempFile::create(tmp_path) {
        Ok(created) => created,
        Err(e) => return no_space(e),
    };
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let complete = loop {
        match data.recv_timeout(Duration::from_secs(120)) {
            Ok(frame) if frame.kind == FrameKind::Data => {
                got += frame.payload.len() as u64;
                if got > size {
                    break false;
                }
                hasher.update(&frame.payload);
                if let Err(e) = file.write_all(&frame.payload) {
                    return no_space(e);
                }
            }
            Ok(_) => break true,
            Err(_) => break false,
        }
    };
    let hex = moor_proto::hex(&hasher.finalize());
    if !complete || got != size || hex != sha256 {
        return Ok(Response::error(
            ErrorKind::Corrupt,
            format!("snapshot upload: {got} of {size} bytes, sha256 {hex}"),
        ));
    }
    if let Err(e) = file.sync_all() {
        return no_space(e);
    }
    tmp.keep(&path(dir, sha256))?;
    Ok(Response::Snapshot { present: true })
}
