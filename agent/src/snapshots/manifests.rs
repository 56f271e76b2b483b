//! Snapshots sent file by file ([`moor_proto::tree`]): a manifest received,
//! checked against its hash and kept pending (`.SHA.manifest.pending`) in
//! `~/.moor/snapshots` until its contents are all here, then its tree
//! `SHA.tree/` built from the blob store
//! ([`crate::snapshots::blobs`]) with hard links (a staging folder renamed into place,
//! so a tree is whole or absent). Runs use that tree as they use one
//! unpacked from an archive ([`crate::snapshots::trees`]).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc;

use moor_proto::tree::{BlobHeader, Manifest};
use moor_proto::{ErrorKind, Frame, Response};

use crate::snapshots::{self, blobs};
use crate::sys;

/// The largest manifest taken (about 200 bytes a file).
const MAX_MANIFEST: u64 = 256 << 20;

/// Receives the manifest `sha256` (`size` bytes) from `data`, keeps it,
/// and builds its tree if every content is here; else names those missing.
pub fn put(
    dir: &Path,
    sha256: &str,
    size: u64,
    data: mpsc::Receiver<Frame>,
) -> io::Result<Response> {
    if !moor_proto::is_sha256_hex(sha256) || size > MAX_MANIFEST {
        return Ok(Response::error(
            ErrorKind::BadRequest,
            "a manifest is named by 64 lowercase hex digits and under 256 MiB",
        ));
    }
    // zstd on the wire (its hex hashes halve), `size` bytes unpacked.
    let mut bytes = Vec::new();
    let read = zstd::stream::read::Decoder::new(blobs::FrameReader::new(data))
        .and_then(|unpacked| unpacked.take(size + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Ok(Response::error(
            ErrorKind::Corrupt,
            format!("manifest: {e}"),
        ));
    }
    let hex = moor_proto::sha256_hex(&bytes);
    if bytes.len() as u64 != size || hex != sha256 {
        return Ok(Response::error(
            ErrorKind::Corrupt,
            format!(
                "manifest upload: {} of {size} bytes, sha256 {hex}",
                bytes.len()
            ),
        ));
    }
    if let Err(e) = Manifest::parse(&bytes) {
        return Ok(Response::error(ErrorKind::BadRequest, e));
    }
    sys::create_private_dir(dir)?;
    let kept = snapshots::pending_manifest_path(dir, sha256);
    if !snapshots::manifest_path(dir, sha256).exists() && !kept.exists() {
        let tmp_path = dir.join(format!(".{sha256}.{}.manifest.tmp", sys::random_hex(4)));
        let written = sys::TempFile::create(tmp_path).and_then(|(tmp, mut file)| {
            io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
            tmp.keep(&kept)
        });
        if let Err(e) = written {
            return crate::error::no_space_answer(dir, e);
        }
    }
    build(dir, sha256)
}

/// Builds the tree of the kept manifest `sha256` unless it is built: the
/// snapshot answer, or the contents still missing.
pub fn build(dir: &Path, sha256: &str) -> io::Result<Response> {
    build_once(dir, sha256, true)
}

fn build_once(dir: &Path, sha256: &str, again: bool) -> io::Result<Response> {
    if !moor_proto::is_sha256_hex(sha256) {
        return Ok(Response::error(ErrorKind::BadRequest, "bad manifest hash"));
    }
    let tree = snapshots::tree_path(dir, sha256);
    if tree.is_dir() {
        return Ok(Response::Snapshot { present: true });
    }
    let (kept, pending) = (
        snapshots::manifest_path(dir, sha256),
        snapshots::pending_manifest_path(dir, sha256),
    );
    // Pending first, then kept: another upload's build renames the one
    // into the other, so whichever moment it happens at, one read finds it
    // (kept first could miss both: kept not yet there, pending just gone).
    let Ok(bytes) = fs::read(&pending).or_else(|_| fs::read(&kept)) else {
        // Or that build finished since the look above: its tree is whole.
        if tree.is_dir() {
            return Ok(Response::Snapshot { present: true });
        }
        return Ok(Response::error(
            ErrorKind::NotFound,
            format!("no manifest {sha256}"),
        ));
    };
    let manifest = match Manifest::parse(&bytes) {
        Ok(manifest) => manifest,
        Err(e) => return Ok(Response::error(ErrorKind::Corrupt, e)),
    };
    let missing: BTreeSet<String> = manifest
        .files
        .iter()
        .filter(|f| !blobs::path(dir, &f.sha256, f.executable).exists())
        .map(|f| BlobHeader::blob_name(&f.sha256, f.executable))
        .collect();
    if !missing.is_empty() {
        return Ok(Response::TreeMissing {
            blobs: missing.into_iter().collect(),
        });
    }
    match make_tree(dir, &manifest, &tree).and_then(|()| match fs::rename(&pending, &kept) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && kept.exists() => Ok(()),
        other => other,
    }) {
        Ok(()) => Ok(Response::Snapshot { present: true }),
        Err(e) if again && e.kind() == io::ErrorKind::NotFound => {
            // A content pruned between the check and the link: ask again.
            build_once(dir, sha256, false)
        }
        Err(e) => crate::error::no_space_answer(dir, e),
    }
}

/// Makes `tree` from the blob store: folders, a hard link per file (a copy
/// where a link cannot be made), then the links.
fn make_tree(dir: &Path, manifest: &Manifest, tree: &Path) -> io::Result<()> {
    crate::snapshots::trees::made_whole(tree, |staging| {
        let mut folders = BTreeSet::new();
        let mut pairs = Vec::with_capacity(manifest.files.len());
        for file in &manifest.files {
            if let Some((parent, _)) = file.path.rsplit_once('/') {
                folders.insert(parent);
            }
            let blob = blobs::path(dir, &file.sha256, file.executable);
            pairs.push((blob, staging.join(&file.path)));
        }
        for link in &manifest.links {
            if let Some((parent, _)) = link.path.rsplit_once('/') {
                folders.insert(parent);
            }
        }
        for folder in folders {
            fs::create_dir_all(staging.join(folder))?;
        }
        // A copy keeps the blob's read-only mode.
        crate::snapshots::trees::link_all(&pairs)?;
        for link in &manifest.links {
            std::os::unix::fs::symlink(&link.target, staging.join(&link.path))?;
        }
        Ok(())
    })
}
