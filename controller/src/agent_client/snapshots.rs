//! Snapshot uploads: an archive sent whole, or a source tree sent file by
//! file ([`moor_proto::tree`]): its manifest first, then only the contents
//! the host lacks, zstd-compressed in one stream read from the source as it
//! goes (memory stays bounded whatever the source's size).

use moor_proto::tree::BlobHeader;
use moor_proto::{ErrorKind, Frame, Request, Response, RunInfo, RunSpec};
use tokio::sync::mpsc;

use super::{AgentClient, ByteStream, CALL_TIMEOUT, UPLOAD_CHUNK};
use crate::error::{Error, Result};
use crate::snapshot::{Snapshot, TreeSource};
use crate::transfer::Transfer;

/// zstd's level for contents on the wire: fast enough to keep up with a
/// LAN, and random data passes through it at memory speed.
const ZSTD_LEVEL: i32 = 3;

/// A run just started, and its log when it was asked to follow.
pub struct StartedRun {
    /// The run.
    pub run: RunInfo,
    /// Its log, streaming from its first byte until it ends.
    pub log: Option<ByteStream>,
}

impl AgentClient {
    /// Whether the agent has the snapshot `sha256`.
    pub async fn has_snapshot(&self, sha256: &str) -> Result<bool> {
        let request = Request::HasSnapshot {
            sha256: sha256.to_owned(),
        };
        self.ask(request, CALL_TIMEOUT, |r| match r {
            Response::Snapshot { present } => Ok(present),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Uploads a snapshot unless the agent has it; returns the bytes sent
    /// (what crossed the link). `progress` hears of every chunk.
    pub async fn put_snapshot(&self, snap: &Snapshot, progress: &Transfer) -> Result<usize> {
        // A source that changed since its last snapshot here is new to the
        // host as a rule: its manifest goes at once (the host answers
        // "present" if it has it), one round trip less.
        let changed = snap.tree().is_some() && snap.new;
        if !changed && self.has_snapshot(&snap.sha256).await? {
            return Ok(0);
        }
        self.upload_snapshot(snap, progress).await
    }

    /// Starts the run `spec` (whose source is `snap`), uploading `snap`
    /// first when the host lacks it, and with `follow` its log streaming
    /// from the same request; returns the bytes sent and the run. A source
    /// sent before (the usual next run) is not asked about first: the start
    /// goes with the question, a round trip less; a host without it refuses
    /// the start before anything happens, and it goes again after the
    /// upload.
    pub async fn start_with_snapshot(
        &self,
        snap: &Snapshot,
        spec: RunSpec,
        follow: bool,
        progress: &Transfer,
    ) -> Result<(usize, StartedRun)> {
        if snap.tree().is_some() && snap.new {
            let sent = self.put_snapshot(snap, progress).await?;
            return Ok((sent, self.start(spec, follow).await?));
        }
        let (has, started) = tokio::join!(
            self.has_snapshot(&snap.sha256),
            self.start(spec.clone(), follow)
        );
        match (has?, started) {
            (_, Ok(started)) => Ok((0, started)),
            // Refused for want of the snapshot: sent (or, when the question
            // says the host has it, another controller's upload of it
            // finished between the two answers: sent again all the same,
            // the host keeps one), then started once more.
            (
                _,
                Err(Error::Refused {
                    kind: ErrorKind::NotFound,
                    ..
                }),
            ) => {
                let sent = self.upload_snapshot(snap, progress).await?;
                Ok((sent, self.start(spec, follow).await?))
            }
            (_, Err(e)) => Err(e),
        }
    }

    async fn start(&self, spec: RunSpec, follow: bool) -> Result<StartedRun> {
        if follow {
            let (run, log) = self.start_run_following(spec).await?;
            Ok(StartedRun {
                run,
                log: Some(log),
            })
        } else {
            Ok(StartedRun {
                run: self.start_run(spec).await?,
                log: None,
            })
        }
    }

    /// Uploads a snapshot (whether or not the host has it).
    async fn upload_snapshot(&self, snap: &Snapshot, progress: &Transfer) -> Result<usize> {
        match (snap.archive(), snap.tree()) {
            (Some(bytes), _) => self.put_archive(&snap.sha256, bytes, progress).await,
            (None, Some(tree)) => self.put_tree(&snap.sha256, tree, progress).await,
            (None, None) => unreachable!("a snapshot is an archive or a tree"),
        }
    }

    async fn put_archive(&self, sha256: &str, bytes: &[u8], progress: &Transfer) -> Result<usize> {
        let request = Request::PutSnapshot {
            sha256: sha256.to_owned(),
            size: bytes.len() as u64,
        };
        let answer = self.upload(&request, bytes, progress).await?;
        match answer {
            Response::Snapshot { present: true } => Ok(bytes.len()),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// The manifest, the contents the host asks for, the tree built: at
    /// most twice (a content pruned on the host meanwhile is asked again).
    async fn put_tree(
        &self,
        sha256: &str,
        tree: &TreeSource,
        progress: &Transfer,
    ) -> Result<usize> {
        let manifest = tree.manifest();
        let request = Request::PutTree {
            sha256: sha256.to_owned(),
            size: manifest.len() as u64,
        };
        let packed = zstd::bulk::compress(manifest, ZSTD_LEVEL)
            .map_err(|e| self.lost(format!("cannot compress the manifest: {e}")))?;
        let mut answer = self.upload(&request, &packed, &Transfer::hidden()).await?;
        let mut sent = packed.len();
        for _ in 0..2 {
            let missing = match answer {
                Response::Snapshot { present: true } => return Ok(sent),
                Response::TreeMissing { blobs } => blobs,
                other => return Err(self.unexpected(&request, &other)),
            };
            let (bytes, built) = self.put_blobs(sha256, tree, &missing, progress).await?;
            sent += bytes;
            answer = built;
        }
        Err(self.lost("the host kept asking for the same source files"))
    }

    /// Sends the contents `names` (blob names the host gave) as one zstd
    /// stream, the host to build the tree `sha256` once they are kept;
    /// returns the bytes sent and the host's answer to the build.
    async fn put_blobs(
        &self,
        sha256: &str,
        tree: &TreeSource,
        names: &[String],
        progress: &Transfer,
    ) -> Result<(usize, Response)> {
        let mut blobs = Vec::with_capacity(names.len());
        for name in names {
            let (path, header) = tree.blob(name).ok_or_else(|| {
                self.lost(format!(
                    "the host asked for a content the source lacks ({name})"
                ))
            })?;
            blobs.push((path, header.clone()));
        }
        let request = Request::PutBlobs {
            count: blobs.len() as u64,
            size: blobs.iter().map(|(_, h)| h.size).sum(),
            build: Some(sha256.to_owned()),
        };
        let (id, mut rx) = self.conn.request(&request).await?;
        // Read and compressed on a blocking thread, sent from here: a few
        // chunks in flight at most.
        let (tx, mut chunks) = mpsc::channel::<Vec<u8>>(4);
        let producer = tokio::task::spawn_blocking(move || compress(&blobs, tx));
        let mut sent = 0;
        while let Some(chunk) = chunks.recv().await {
            sent += chunk.len();
            progress.add(chunk.len() as u64);
            self.conn.write(&Frame::data(id, chunk)).await?;
        }
        producer
            .await
            .map_err(|e| self.lost(format!("the upload stopped: {e}")))??;
        self.conn.write(&Frame::end(id)).await?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.conn.response(&mut rx))
            .await
            .map_err(|_| self.lost("the source upload was not acknowledged"))??;
        Ok((sent, answer))
    }

    /// Sends `request` with `bytes` as its data; its answer.
    async fn upload(
        &self,
        request: &Request,
        bytes: &[u8],
        progress: &Transfer,
    ) -> Result<Response> {
        let (id, mut rx) = self.conn.request(request).await?;
        for chunk in bytes.chunks(UPLOAD_CHUNK) {
            self.conn.write(&Frame::data(id, chunk.to_vec())).await?;
            progress.add(chunk.len() as u64);
        }
        self.conn.write(&Frame::end(id)).await?;
        tokio::time::timeout(CALL_TIMEOUT, self.conn.response(&mut rx))
            .await
            .map_err(|_| self.lost("the snapshot upload was not acknowledged"))?
    }
}

/// Writes each content after its header into a zstd stream cut into
/// chunks for `tx`.
fn compress(blobs: &[(std::path::PathBuf, BlobHeader)], tx: mpsc::Sender<Vec<u8>>) -> Result<()> {
    let io = |cause: std::io::Error| Error::Io {
        what: "cannot compress the source",
        path: std::path::PathBuf::from("-"),
        cause,
    };
    let sink = Chunks {
        tx,
        buf: Vec::with_capacity(UPLOAD_CHUNK),
    };
    let mut zstd = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL).map_err(io)?;
    for (path, header) in blobs {
        std::io::Write::write_all(&mut zstd, &header.encode()).map_err(io)?;
        crate::snapshot::send_blob(path, header, &mut zstd)?;
    }
    let mut sink = zstd.finish().map_err(io)?;
    sink.flush_chunk().map_err(io)
}

/// Chunks of [`UPLOAD_CHUNK`] bytes for the sending task.
struct Chunks {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(UPLOAD_CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(UPLOAD_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == UPLOAD_CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
