//! Source snapshots sent file by file ([`moor_proto::tree`]): a listing's
//! manifest, each file's hash taken from the [`SnapshotIndex`] when the
//! file stats as it did (else read and hashed now, and recorded), and the
//! contents a host asks for read back from the source, each checked
//! against its hash as it is sent.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use moor_proto::tree::{BlobHeader, Manifest, TreeFile, TreeLink};

use super::index::{KnownFile, SnapshotIndex};
use super::{Keys, Listing};
use crate::error::{Error, Result};

/// A source as a manifest, and where each of its contents is read from.
#[derive(Debug)]
pub struct TreeSource {
    dir: PathBuf,
    manifest: Vec<u8>,
    /// Blob name (hash, `.x` if executable) → a file with that content.
    blobs: HashMap<String, (PathBuf, BlobHeader)>,
}

impl TreeSource {
    /// The manifest's bytes (their sha256 is the snapshot's).
    pub fn manifest(&self) -> &[u8] {
        &self.manifest
    }

    /// Where the content a host names `blob` is read from, and its header.
    pub fn blob(&self, blob: &str) -> Option<(PathBuf, &BlobHeader)> {
        self.blobs
            .get(blob)
            .map(|(rel, header)| (self.dir.join(rel), header))
    }

    /// The source folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A listing made a tree.
pub(super) struct Tree {
    pub source: TreeSource,
    /// The manifest's sha256.
    pub id: String,
    /// The files' sizes summed.
    pub size: u64,
    /// How many files were read (the others' hashes came from the index).
    pub hashed: usize,
    /// Whether it differs from the snapshot the folder made last time.
    pub new: bool,
}

/// A file's sha256, and whether it holds a private key (its first bytes).
fn hash_file(path: &Path) -> std::io::Result<(String, bool)> {
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(super::guard::HEAD);
    (&mut file)
        .take(super::guard::HEAD as u64)
        .read_to_end(&mut head)?;
    let is_key = super::guard::is_private_key(&head);
    let sha256 = moor_proto::sha256_of(std::io::Cursor::new(head).chain(file))?;
    Ok((sha256, is_key))
}

/// The tree of `listing` (taken from `dir` when packing `started`); `None` when a name is not UTF-8 or a link's text is not
/// plainly inside, which only an archive carries.
pub(super) fn of_listing(
    dir: &Path,
    listing: &Listing,
    index: &SnapshotIndex,
    started: SystemTime,
) -> Result<Option<Tree>> {
    let io = |path: &Path, cause: std::io::Error| Error::Io {
        what: "cannot read the source",
        path: path.to_owned(),
        cause,
    };
    let (mut known, last) = index.files(dir);
    let mut kept = HashMap::with_capacity(listing.paths.len());
    let mut files = Vec::with_capacity(listing.paths.len());
    let mut blobs = HashMap::with_capacity(listing.paths.len());
    // Files changed within this of the packing never vouch for their hash
    // (their time may not change again with their content: racily clean).
    let settled = started - Duration::from_secs(2);
    let mut hashed = 0usize;
    for (rel, stat) in listing.paths.iter().zip(&listing.stats) {
        let Some(name) = rel.to_str() else {
            return Ok(None);
        };
        let mut key = false;
        let sha256 = match known.remove(name) {
            Some(file) if file.stat == *stat => file.sha256,
            _ => {
                hashed += 1;
                let full = dir.join(rel);
                let (sha256, is_key) = hash_file(&full).map_err(|e| io(&full, e))?;
                if is_key && listing.keys == Keys::Refuse {
                    return Err(super::guard::refused(&full));
                }
                key = is_key;
                sha256
            }
        };
        // A key sent on purpose is read again next time (and refused then
        // unless allowed again).
        if stat.newest() < settled && !key {
            let file = KnownFile {
                stat: stat.clone(),
                sha256: sha256.clone(),
            };
            kept.insert(name.to_owned(), file);
        }
        let header = BlobHeader {
            sha256: sha256.clone(),
            executable: stat.executable(),
            size: stat.size(),
        };
        blobs
            .entry(BlobHeader::blob_name(&sha256, header.executable))
            .or_insert_with(|| (rel.clone(), header.clone()));
        files.push(TreeFile {
            path: name.to_owned(),
            sha256,
            size: stat.size(),
            executable: header.executable,
        });
    }
    let mut links = Vec::with_capacity(listing.links.len());
    for (rel, to) in &listing.links {
        let (Some(path), Some(target)) = (rel.to_str(), to.to_str()) else {
            return Ok(None);
        };
        if !moor_proto::archive::stays_inside(rel, to) {
            return Ok(None);
        }
        links.push(TreeLink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
    }
    let manifest = Manifest::new(files, links);
    if Manifest::parse(&manifest.to_bytes()).is_err() {
        return Ok(None);
    }
    let id = manifest.id();
    let new = last.as_deref() != Some(id.as_str());
    // Written when a file was hashed or is gone (else the same again).
    if hashed > 0 || !known.is_empty() || new {
        index.put(dir, kept, &id);
    }
    Ok(Some(Tree {
        id,
        size: manifest.size(),
        hashed,
        new,
        source: TreeSource {
            dir: dir.to_owned(),
            manifest: manifest.to_bytes(),
            blobs,
        },
    }))
}

/// Reads the content `header` names from `path` into `out`, checking its
/// size and hash on the way (a file changed since it was hashed is refused,
/// not sent).
pub fn send_blob(path: &Path, header: &BlobHeader, out: &mut impl std::io::Write) -> Result<()> {
    let io = |cause: std::io::Error| Error::Io {
        what: "cannot read the source",
        path: path.to_owned(),
        cause,
    };
    let changed = || {
        Error::usage(
            format!("{} changed while moor read it", path.display()),
            "run the command again once the files stop changing",
        )
    };
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let mut left = header.size;
    let mut buf = vec![0u8; 256 << 10];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want]).map_err(io)?;
        if n == 0 {
            return Err(changed());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    let longer = file.read(&mut [0u8; 1]).map_err(io)? != 0;
    if longer || moor_proto::hex(&hasher.finalize()) != header.sha256 {
        return Err(changed());
    }
    Ok(())
}
