//! File contents kept by their sha256 in `~/.moor/snapshots/blobs`, for
//! snapshots sent file by file ([`moor_proto::tree`]): a tree's files are
//! hard links to them, so a content sent once serves every later snapshot
//! that holds it. Contents arrive as a zstd stream of records; each is
//! written to a temporary file, kept only if its hash matches, read-only.
//! One no tree links to any more (a single link) goes with `runs prune`.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use moor_proto::tree::BlobHeader;
use moor_proto::{ErrorKind, Frame, FrameKind, Response};
use sha2::{Digest, Sha256};

use crate::error::AgentError;
use crate::sys;

/// The blob store of the snapshots folder `snapshots`.
pub fn dir(snapshots: &Path) -> PathBuf {
    snapshots.join("blobs")
}

/// Where the content `sha256` is kept with that mode.
pub fn path(snapshots: &Path, sha256: &str, executable: bool) -> PathBuf {
    dir(snapshots).join(BlobHeader::blob_name(sha256, executable))
}

/// Receives a blob stream (`count` contents, `size` bytes unpacked at most)
/// from `data`; answers how many were new.
pub fn put(
    snapshots: &Path,
    count: u64,
    size: u64,
    data: mpsc::Receiver<Frame>,
) -> io::Result<Response> {
    let store = dir(snapshots);
    sys::create_private_dir(&store)?;
    let mut stream = match zstd::stream::read::Decoder::new(FrameReader::new(data)) {
        Ok(decoder) => decoder,
        Err(e) => return Ok(corrupt(e)),
    };
    let (mut seen, mut bytes, mut stored) = (0u64, 0u64, 0u64);
    let mut written = Vec::new();
    loop {
        let header = match BlobHeader::read_from(&mut stream) {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(e) => return Ok(corrupt(e)),
        };
        seen += 1;
        bytes += header.size;
        if seen > count || bytes > size {
            return Ok(corrupt(format!(
                "more than the {count} contents and {size} bytes announced"
            )));
        }
        match receive(&store, &header, &mut stream) {
            Ok(true) => {
                stored += 1;
                if written.len() <= 16 {
                    written.push(BlobHeader::blob_name(&header.sha256, header.executable));
                }
            }
            Ok(false) => {}
            Err(e) if crate::error::is_no_space(&e) => {
                crate::snapshots::drop_pending_manifests(snapshots);
                return Ok(AgentError::no_space(snapshots).to_response());
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(corrupt(e)),
            Err(e) => return Err(e),
        }
    }
    if seen != count {
        return Ok(corrupt(format!("{seen} of {count} contents arrived")));
    }
    // On disk before they are answered for: each written file flushed when
    // they are few, one flush of the file system when they are many.
    if stored > 16 {
        nix::unistd::syncfs(fs::File::open(&store)?).map_err(io::Error::from)?;
    } else {
        for name in &written {
            fs::File::open(store.join(name))?.sync_all()?;
        }
    }
    Ok(Response::Blobs { stored })
}

fn corrupt(e: impl std::fmt::Display) -> Response {
    Response::error(ErrorKind::Corrupt, format!("blob upload: {e}"))
}

/// Writes one content from `stream` into the store, unless it is there;
/// whether it was new. A content whose hash differs is refused.
fn receive(store: &Path, header: &BlobHeader, stream: &mut impl Read) -> io::Result<bool> {
    if !moor_proto::is_sha256_hex(&header.sha256) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad hash"));
    }
    let target = store.join(BlobHeader::blob_name(&header.sha256, header.executable));
    let tmp_path = store.join(format!(".{}.{}.tmp", header.sha256, sys::random_hex(4)));
    let (tmp, mut file) = sys::TempFile::create(tmp_path)?;
    let mut hasher = Sha256::new();
    let mut left = header.size;
    let mut buf = vec![0u8; 64 << 10];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        // A stream that cannot be read (cut, damaged, stalled) is bad data.
        let n = stream
            .read(&mut buf[..want])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "stream cut"));
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let hex = moor_proto::hex(&hasher.finalize());
    if hex != header.sha256 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a content hashed {hex}, announced {}", header.sha256),
        ));
    }
    if target.exists() {
        return Ok(false);
    }
    let mode = if header.executable { 0o555 } else { 0o444 };
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.keep(&target)?;
    Ok(true)
}

/// Removes the contents no tree links to (one link left) that have not
/// changed for 10 minutes, and what a killed upload left; returns the
/// bytes freed.
pub fn prune(snapshots: &Path) -> u64 {
    let store = dir(snapshots);
    sys::sweep_temp_files(&store, Duration::from_secs(600));
    let Ok(entries) = fs::read_dir(&store) else {
        return 0;
    };
    let mut freed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        // Written 10 minutes ago at least (linking a file keeps its mtime).
        let old = sys::changed_ago(&entry).is_some_and(|ago| ago > Duration::from_secs(600));
        if meta.is_file() && meta.nlink() == 1 && old && fs::remove_file(entry.path()).is_ok() {
            freed += meta.len();
        }
    }
    freed
}

/// The data frames of one upload as a byte stream (120 s at most between
/// frames; the end frame ends it).
pub struct FrameReader {
    frames: mpsc::Receiver<Frame>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl FrameReader {
    /// Reads the frames `frames` gets.
    pub fn new(frames: mpsc::Receiver<Frame>) -> FrameReader {
        FrameReader {
            frames,
            chunk: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for FrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.frames.recv_timeout(Duration::from_secs(120)) {
                Ok(frame) if frame.kind == FrameKind::Data => {
                    self.chunk = frame.payload;
                    self.at = 0;
                }
                Ok(_) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the upload stopped arriving",
                    ))
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(records: &[(&BlobHeader, &[u8])], cut: usize) -> mpsc::Receiver<Frame> {
        let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        for (header, body) in records {
            zstd.write_all(&header.encode()).unwrap();
            zstd.write_all(body).unwrap();
        }
        let mut bytes = zstd.finish().unwrap();
        bytes.truncate(bytes.len() - cut);
        let (tx, rx) = mpsc::channel();
        tx.send(Frame::data(1, bytes)).unwrap();
        tx.send(Frame::end(1)).unwrap();
        rx
    }

    fn header(body: &[u8], executable: bool) -> BlobHeader {
        BlobHeader {
            sha256: moor_proto::sha256_hex(body),
            executable,
            size: body.len() as u64,
        }
    }

    fn kept(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(super::dir(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn contents_are_kept_by_hash_and_mode_and_only_when_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (header(b"alpha", false), header(b"beta", true));
        let answer = put(
            dir.path(),
            2,
            9,
            stream(&[(&a, b"alpha"), (&b, b"beta")], 0),
        )
        .unwrap();
        assert_eq!(answer, Response::Blobs { stored: 2 });
        assert_eq!(
            kept(dir.path()),
            [a.sha256.clone(), format!("{}.x", b.sha256)]
        );
        let mode = fs::metadata(path(dir.path(), &b.sha256, true))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        // Again: nothing new.
        let answer = put(dir.path(), 1, 5, stream(&[(&a, b"alpha")], 0)).unwrap();
        assert_eq!(answer, Response::Blobs { stored: 0 });

        // A content that does not hash to its name, a cut stream, more than
        // announced: refused, nothing kept, no temporary file left.
        let liar = BlobHeader {
            sha256: moor_proto::sha256_hex(b"other"),
            ..header(b"gamma", false)
        };
        let c = header(b"gamma", false);
        for (answer, what) in [
            (
                put(dir.path(), 1, 5, stream(&[(&liar, b"gamma")], 0)),
                "hash",
            ),
            (put(dir.path(), 1, 5, stream(&[(&c, b"gamma")], 4)), "cut"),
            (put(dir.path(), 1, 4, stream(&[(&c, b"gamma")], 0)), "size"),
        ] {
            match answer.unwrap() {
                Response::Error { error } => assert_eq!(error.kind, ErrorKind::Corrupt, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(kept(dir.path()).len(), 2);
    }
}
