//! `moor download RUN [--to DIR]`: a run's outputs, unpacked while they
//! arrive. The archive is never held whole: frames go (a few at a time, see
//! [`crate::agent_client::connection::BOUNDED_FRAMES`]) from the connection
//! to an unpacker on a blocking thread, which writes each file straight to
//! disk. The unpacker is [`moor_proto::archive`]'s: nothing the host sends
//! can write outside the folder the user chose, and what is left out
//! (links leading outside it, special files) is listed, never fatal.
//! Downloads are incremental: the files the folder already holds are named
//! to the agent with their size and time (rsync's quick check) or hash,
//! and it does not send them again;
//! `--include`/`--exclude` globs choose files.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use moor_proto::archive::{unpack_within, PullReader, Skipped, Trailer};
use moor_proto::selection::Selection;
use moor_proto::WireError;
use serde::Serialize;

use super::Context;
use crate::agent_client::{ByteStream, Chunk, CALL_TIMEOUT};
use crate::cli::DownloadArgs;
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::reach::Access;
use crate::transfer::Transfer;

/// Downloaded outputs.
#[derive(Debug, Serialize)]
pub struct Downloaded {
    run: String,
    to: PathBuf,
    /// Bytes of the archive received.
    bytes: u64,
    /// Files written.
    files: u64,
    /// Bytes of file content written.
    file_bytes: u64,
    /// Symbolic links kept (they stay inside the folder).
    links: u64,
    /// Files not sent: the folder already held them (same size and sha256).
    unchanged_files: u64,
    /// Their bytes.
    unchanged_bytes: u64,
    /// The first entries left out, each with why.
    skipped: Vec<Skipped>,
    /// How many were left out in all.
    skipped_total: u64,
}

impl Render for Downloaded {
    fn render(&self, out: &mut Text) {
        let unchanged = if self.unchanged_files > 0 {
            format!(
                "; {} unchanged, not sent ({})",
                self.unchanged_files,
                moor_proto::human_bytes(self.unchanged_bytes)
            )
        } else {
            String::new()
        };
        out.line(format!(
            "outputs of {} in {} ({} files, {}{unchanged})",
            self.run,
            self.to.display(),
            self.files,
            moor_proto::human_bytes(self.file_bytes)
        ));
        for skipped in &self.skipped {
            out.note(format!("warning: left out {skipped}"));
        }
        let more = self.skipped_total - self.skipped.len() as u64;
        if more > 0 {
            out.note(format!("warning: and {more} more left out"));
        }
    }
}

/// Why the stream stopped early, as seen from the blocking side.
enum Stopped {
    Lost(String),
    Refused(WireError),
}

/// Pulls the stream's chunks from the blocking unpacker's thread.
struct Puller {
    stream: ByteStream,
    progress: Transfer,
    runtime: tokio::runtime::Handle,
    trailer: Option<Vec<u8>>,
    stopped: Option<Stopped>,
}

impl Puller {
    fn pull(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.trailer.is_some() {
            return Ok(None);
        }
        let next = self
            .runtime
            .block_on(tokio::time::timeout(CALL_TIMEOUT, self.stream.next()));
        let stopped = match next {
            Ok(Some(Chunk::Data(data))) => {
                self.progress.add(data.len() as u64);
                return Ok(Some(data));
            }
            Ok(Some(Chunk::End(trailer))) => {
                self.trailer = Some(trailer);
                return Ok(None);
            }
            Ok(Some(Chunk::Failed(error))) => Stopped::Refused(error),
            Ok(None) => Stopped::Lost("the agent closed the download".into()),
            Err(_) => Stopped::Lost(format!(
                "no data for {}s during the download",
                CALL_TIMEOUT.as_secs()
            )),
        };
        self.stopped = Some(stopped);
        Err(io::Error::other("the download stopped"))
    }
}

/// `moor download RUN [--to DIR]`.
pub async fn download(args: &DownloadArgs, ctx: &Context) -> Result<Fetched> {
    let store = ctx.store()?;
    if let Some(job) = crate::history::find(&store, &args.run)? {
        return download_job(&job, args, ctx).await.map(Fetched::Job);
    }
    let (target, run_id) = ctx.targets.of_run(&store, &args.run)?;
    let dest = args
        .to
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::snapshot::DOWNLOADS_DIR).join(&run_id));
    download_run(ctx, &target, &run_id, dest, args)
        .await
        .map(Fetched::Run)
}

/// What `moor download` fetched: one run's outputs, or each node's of a job.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Fetched {
    /// A run's.
    Run(Downloaded),
    /// A job's, `node-N/` each.
    Job(JobDownloaded),
}

impl Render for Fetched {
    fn render(&self, out: &mut Text) {
        match self {
            Fetched::Run(d) => d.render(out),
            Fetched::Job(j) => j.render(out),
        }
    }
}

/// Downloads the outputs of run `run_id` on `target` into `dest`.
pub async fn download_run(
    ctx: &Context,
    target: &crate::store::Target,
    run_id: &str,
    dest: PathBuf,
    args: &DownloadArgs,
) -> Result<Downloaded> {
    let run_id = run_id.to_owned();
    let (have, mtimes) = files_in(&dest);
    let selection = Selection {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        have,
        mtimes,
    };
    let access = Access::from_args(&args.connect)?;
    let c = ctx.targets.connect(target, &access).await?;
    let stream = c.agent.download(&run_id, selection).await?;
    let mut puller = Puller {
        stream,
        progress: Transfer::new(&format!("outputs of {run_id}"), None),
        runtime: tokio::runtime::Handle::current(),
        trailer: None,
        stopped: None,
    };
    let into = dest.clone();
    let unpacking = tokio::task::spawn_blocking(move || {
        let mut reader = PullReader::new(|| puller.pull());
        // tar stops at its end block: read on to the stream's end frame.
        let unpacked = unpack_within(&mut reader, &into, 0)
            .and_then(|u| io::copy(&mut reader, &mut io::sink()).map(|_| u));
        let received = reader.read;
        (unpacked, received, puller)
    });
    let (unpacked, received, puller) = unpacking.await.map_err(|e| Error::Io {
        what: "the unpacker stopped",
        path: dest.clone(),
        cause: io::Error::other(e.to_string()),
    })?;
    let stopped = match puller.stopped {
        Some(Stopped::Refused(error)) => Err(c.agent.refused(error)),
        Some(Stopped::Lost(cause)) => Err(c.agent.lost(cause)),
        None => Ok(()),
    };
    c.close().await;
    stopped?;
    let unpacked = unpacked.map_err(|cause| Error::Io {
        what: "cannot write the outputs",
        path: dest.clone(),
        cause,
    })?;
    // The agent's own list (what it would not send) comes first.
    let trailer: Trailer = puller
        .trailer
        .as_deref()
        .and_then(|t| serde_json::from_slice(t).ok())
        .unwrap_or_default();
    let mut skipped = trailer.skipped;
    skipped.extend(unpacked.skipped);
    Ok(Downloaded {
        run: run_id,
        to: dest,
        bytes: received,
        files: unpacked.files,
        file_bytes: unpacked.bytes,
        links: unpacked.links,
        unchanged_files: trailer.unchanged_files,
        unchanged_bytes: trailer.unchanged_bytes,
        skipped: skipped.first,
        skipped_total: skipped.total,
    })
}

/// The regular files under `dest` (links not followed), by `/`-separated
/// relative path, with their size and modification time: what need not be
/// sent again. A file moor wrote (its time whole seconds, the host's, as the
/// unpacker sets it) goes by rsync's quick check, unread; any other (written
/// or touched since: its time has nanoseconds) is hashed, so that the same
/// content is still not sent again. Nothing when `dest` does not exist yet.
fn files_in(dest: &Path) -> (BTreeMap<String, (u64, String)>, BTreeMap<String, i64>) {
    use std::os::unix::fs::MetadataExt;
    let (mut have, mut mtimes) = (BTreeMap::new(), BTreeMap::new());
    let mut folders = vec![dest.to_path_buf()];
    while let Some(dir) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                folders.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(dest).unwrap_or(&path);
                let rel = rel.to_string_lossy().into_owned();
                let hash = if meta.mtime_nsec() == 0 {
                    mtimes.insert(rel.clone(), meta.mtime());
                    String::new()
                } else {
                    match std::fs::File::open(&path).and_then(moor_proto::sha256_of) {
                        Ok(hash) => hash,
                        Err(_) => continue,
                    }
                };
                have.insert(rel, (meta.len(), hash));
            }
        }
    }
    (have, mtimes)
}

/// What `moor download JOB` fetched: each node's outputs in `node-N/`.
#[derive(Debug, Serialize)]
pub struct JobDownloaded {
    job: String,
    to: std::path::PathBuf,
    nodes: Vec<Downloaded>,
}

impl Render for JobDownloaded {
    fn render(&self, out: &mut Text) {
        out.line(format!(
            "outputs of job {} in {}:",
            self.job,
            self.to.display()
        ));
        for node in &self.nodes {
            node.render(out);
        }
    }
}

/// `moor download JOB`: node N's outputs into `DEST/node-N/`.
pub async fn download_job(
    job: &crate::store::JobRecord,
    args: &DownloadArgs,
    ctx: &Context,
) -> Result<JobDownloaded> {
    let store = ctx.store()?;
    let to = args
        .to
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(crate::snapshot::DOWNLOADS_DIR).join(&job.id));
    let mut nodes = Vec::new();
    for node in crate::history::nodes(ctx, &store, job, None)? {
        let dest = to.join(format!("node-{}", node.rank));
        nodes.push(download_run(ctx, &node.target, &node.run_id, dest, args).await?);
    }
    Ok(JobDownloaded {
        job: job.id.clone(),
        to,
        nodes,
    })
}
