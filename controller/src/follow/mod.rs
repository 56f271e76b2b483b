//! Following a run's log, for `moor run`, `moor logs` and the build of an
//! environment (and its MLflow records, for `moor metrics`): bytes go to a
//! [`ByteSink`] (a [`LogSink`] for a log) as they come, a quiet stream is
//! pinged so a dead link is noticed within seconds, and a broken connection
//! is reconnected (with the user's flags) and resumed at the byte where it
//! stopped. [`nodes`] follows every node of a job at once.

pub mod nodes;

use std::time::Duration;

use moor_proto::RunInfo;

use crate::agent_client::{AgentClient, ByteStream, Chunk};
use crate::error::{exit, Result};
use crate::progress::LogSink;
use crate::reach::{Access, Connected, Targets};
use crate::store::Target;

/// A quiet log stream is pinged after this long.
const QUIET: Duration = Duration::from_secs(5);
/// How often a status line redraws its clock while the log is quiet.
const TICK: Duration = Duration::from_millis(500);
/// A ping must come back within this long, or the link is dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`follow`] keeps trying to reconnect.
const RECONNECT_FOR: Duration = Duration::from_secs(600);

/// Where the bytes of a followed stream go.
pub trait ByteSink {
    /// Bytes as they came (`more`: others are already waiting).
    fn write(&mut self, bytes: &[u8], more: bool);
    /// Nothing came for a while.
    fn tick(&mut self) {}
}

impl ByteSink for LogSink {
    fn write(&mut self, bytes: &[u8], more: bool) {
        LogSink::write(self, bytes, more);
    }

    fn tick(&mut self) {
        LogSink::tick(self);
    }
}

/// Which of a run's growing files to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFile {
    /// Its log.
    Log,
    /// Its MLflow records (`metrics.jsonl`).
    Metrics,
}

/// Streams a run's log into `sink` from `offset`, reconnecting when the
/// link breaks; returns the run once the stream ends (with `until_end`, when
/// the run has ended). `conn` is an open connection to start with.
#[allow(clippy::too_many_arguments)]
pub async fn follow(
    targets: &Targets,
    target: &Target,
    access: &Access,
    run_id: &str,
    offset: u64,
    until_end: bool,
    conn: Option<Connected>,
    sink: &mut LogSink,
) -> Result<RunInfo> {
    let file = RunFile::Log;
    follow_file(
        targets, target, access, run_id, file, offset, until_end, conn, sink,
    )
    .await
}

/// [`follow`] for any of the run's growing files.
#[allow(clippy::too_many_arguments)]
pub async fn follow_file(
    targets: &Targets,
    target: &Target,
    access: &Access,
    run_id: &str,
    file: RunFile,
    mut offset: u64,
    until_end: bool,
    mut conn: Option<Connected>,
    sink: &mut (dyn ByteSink + Send),
) -> Result<RunInfo> {
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let c = match conn.take() {
            Some(c) => c,
            None => match targets.connect(target, access).await {
                Ok(c) => c,
                Err(e)
                    if started.elapsed() < RECONNECT_FOR && e.exit_code() == exit::UNREACHABLE =>
                {
                    tracing::info!("reconnecting to {}: {e}", target.name);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        match stream_file(&c.agent, run_id, file, &mut offset, until_end, sink).await {
            Ok(ended) => return finish(c, run_id, ended).await,
            Err(e) if e.exit_code() == exit::UNREACHABLE && started.elapsed() < RECONNECT_FOR => {
                eprintln!(
                    "moor: connection to {} lost ({e}); resuming at byte {offset}",
                    target.name
                );
                backoff = Duration::from_millis(200);
            }
            Err(e) => return Err(e),
        }
    }
}

/// [`follow`] for a run started with its log streaming (`log`, from its
/// first byte, on `conn`): the log goes to `sink` until the run ends, and a
/// broken connection is made again as [`follow`] does.
pub async fn follow_started(
    targets: &Targets,
    target: &Target,
    access: &Access,
    run_id: &str,
    conn: Connected,
    log: ByteStream,
    sink: &mut LogSink,
) -> Result<RunInfo> {
    let mut offset = 0;
    match read(&conn.agent, log, &mut offset, sink).await {
        Ok(ended) => finish(conn, run_id, ended).await,
        Err(e) if e.exit_code() == exit::UNREACHABLE => {
            eprintln!(
                "moor: connection to {} lost ({e}); resuming at byte {offset}",
                target.name
            );
            follow(targets, target, access, run_id, offset, true, None, sink).await
        }
        Err(e) => Err(e),
    }
}

/// The run once its stream ended: as the agent sent it with the log's end
/// (an older agent does not: then asked); closes the connection.
async fn finish(conn: Connected, run_id: &str, ended: Option<RunInfo>) -> Result<RunInfo> {
    let run = match ended {
        Some(run) => run,
        None => conn.agent.run(run_id).await?,
    };
    conn.close().await;
    Ok(run)
}

/// One attempt at streaming; `offset` advances with every byte written.
/// With `until_end`, the ended run when the agent sent it with the end.
pub async fn stream(
    agent: &AgentClient,
    run_id: &str,
    offset: &mut u64,
    until_end: bool,
    sink: &mut LogSink,
) -> Result<Option<RunInfo>> {
    stream_file(agent, run_id, RunFile::Log, offset, until_end, sink).await
}

/// [`stream`] for any of the run's growing files.
pub async fn stream_file(
    agent: &AgentClient,
    run_id: &str,
    file: RunFile,
    offset: &mut u64,
    until_end: bool,
    sink: &mut (dyn ByteSink + Send),
) -> Result<Option<RunInfo>> {
    let bytes = match file {
        RunFile::Log => agent.read_log(run_id, *offset, until_end).await?,
        RunFile::Metrics => agent.read_metrics(run_id, *offset, until_end).await?,
    };
    read(agent, bytes, offset, sink).await
}

/// Reads an open log stream into `sink`, pinging the agent while it is
/// quiet; `offset` advances with every byte written.
async fn read(
    agent: &AgentClient,
    mut log: ByteStream,
    offset: &mut u64,
    sink: &mut (dyn ByteSink + Send),
) -> Result<Option<RunInfo>> {
    let mut heard = tokio::time::Instant::now();
    loop {
        let chunk = match tokio::time::timeout(TICK, log.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Err(agent.lost("the agent closed the stream")),
            Err(_) => {
                sink.tick();
                if heard.elapsed() < QUIET {
                    continue;
                }
                // Quiet: is the link alive?
                agent
                    .ping(PING_TIMEOUT)
                    .await
                    .map_err(|_| agent.lost("no answer to a ping"))?;
                heard = tokio::time::Instant::now();
                continue;
            }
        };
        heard = tokio::time::Instant::now();
        match chunk {
            Chunk::Data(bytes) => {
                sink.write(&bytes, log.has_more());
                *offset += bytes.len() as u64;
            }
            Chunk::End(trailer) if trailer.is_empty() => return Ok(None),
            Chunk::End(trailer) => {
                return serde_json::from_slice(&trailer)
                    .map(Some)
                    .map_err(|e| agent.lost(format!("a log's end that is not a run: {e}")));
            }
            Chunk::Failed(error) => return Err(agent.refused(error)),
        }
    }
}

/// The last few lines of a log before byte `end`, joined with " | " (for
/// an error that says how a build ended).
pub async fn tail(agent: &AgentClient, run_id: &str, end: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut log) = agent
        .read_log(run_id, end.saturating_sub(4096), false)
        .await
    {
        while let Ok(Some(Chunk::Data(data))) =
            tokio::time::timeout(Duration::from_secs(10), log.next()).await
        {
            bytes.extend_from_slice(&data);
        }
    }
    summary(&String::from_utf8_lossy(&bytes))
}

/// Lines of a failed build's log that name a root cause (pip's and conda's
/// `ERROR:` lines, TLS and name-resolution failures).
const CAUSES: &[&str] = &[
    "ERROR:",
    "Connection refused",
    "Failed to establish a new connection",
    "SSLError",
    "CERTIFICATE_VERIFY_FAILED",
    "certificate verify failed",
    "Could not resolve host",
    "Name or service not known",
    "Temporary failure in name resolution",
    "ProxyError",
];

/// The last three non-empty lines of a log's tail, after the first line
/// naming a root cause when that one is earlier: `CAUSE | ... | L1 | L2 | L3`.
fn summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = lines.len().saturating_sub(3);
    let cause = lines[..last]
        .iter()
        .find(|line| CAUSES.iter().any(|c| line.contains(c)));
    let tail = lines[last..].join(" | ");
    match cause {
        Some(cause) => format!("{cause} | ... | {tail}"),
        None => tail,
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_failed_builds_summary_keeps_the_root_cause() {
        let log = "Collecting six\nERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n    six from x:\n        Expected sha256 0\n             Got        1\n\nmoor-agent: pip failed\n";
        assert_eq!(
            summary(log),
            "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. | ... | Expected sha256 0 | Got        1 | moor-agent: pip failed"
        );
        assert_eq!(summary("a\nb\n"), "a | b");
    }
}
