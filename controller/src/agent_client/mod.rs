//! The typed client of a target's agent: one method per request, each
//! returning what the request is for (a run, the runs, an environment, the
//! agent's status, a byte stream). An answer that does not fit its request is
//! an error written in one place; a refusal (no such run, busy, ...) is an
//! [`Error::Refused`] whose kind the caller can match.
//!
//! How the pipe to the agent is made (an SSH exec of `moor-agent stdio`, a
//! local process, a test's socket) is not this module's business: see
//! [`crate::reach`]. [`connection`] is the wire underneath.

pub mod connection;
mod endpoints;
mod snapshots;

use std::time::Duration;

use moor_proto::env::{EnvInfo, EnvSpec, PrepareOptions};
use moor_proto::{
    AgentStatus, ErrorKind, FrameKind, Request, Response, RunInfo, RunSpec, WireError,
};

use connection::{Connection, Frames};
pub use connection::{Reader, Writer, CALL_TIMEOUT, HELLO_TIMEOUT};
pub use snapshots::StartedRun;

use crate::error::{Error, Result};

/// Largest chunk of an upload.
const UPLOAD_CHUNK: usize = 1 << 20;

/// A connection to an agent, with one method per request.
pub struct AgentClient {
    conn: Connection,
}

/// A byte stream from the agent (a log, a download): data until the end.
pub struct ByteStream {
    rx: Frames,
}

/// One piece of a [`ByteStream`].
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes.
    Data(Vec<u8>),
    /// The stream ended, with its trailer (for a log followed to the run's
    /// end, the run as JSON, else empty; for a download, what the agent
    /// left out).
    End(Vec<u8>),
    /// The agent gave up mid-stream, and said why.
    Failed(WireError),
}

impl ByteStream {
    /// The next piece; `None` when the connection closed first.
    pub async fn next(&mut self) -> Option<Chunk> {
        loop {
            let frame = self.rx.recv().await?;
            match frame.kind {
                FrameKind::Data => return Some(Chunk::Data(frame.payload)),
                FrameKind::End => return Some(Chunk::End(frame.payload)),
                FrameKind::Response => {
                    if let Ok(Response::Error { error }) = frame.response() {
                        return Some(Chunk::Failed(error));
                    }
                }
                // Nothing else follows a stream's start; skip rather than stall.
                FrameKind::Request => continue,
            }
        }
    }

    /// Whether more has already arrived (a writer may batch its flushes).
    pub fn has_more(&self) -> bool {
        !self.rx.is_empty()
    }
}

impl AgentClient {
    /// Shakes hands over a byte pipe to `moor-agent stdio` (or to a daemon's
    /// socket); `host` names the agent in errors.
    pub async fn over(reader: Reader, writer: Writer, host: String) -> Result<AgentClient> {
        Self::over_within(reader, writer, host, HELLO_TIMEOUT).await
    }

    /// [`AgentClient::over`], the agent's hello to come within `limit` (a
    /// pipe from the mux, whose agent started before: its hello is there).
    pub async fn over_within(
        reader: Reader,
        writer: Writer,
        host: String,
        limit: Duration,
    ) -> Result<AgentClient> {
        Ok(AgentClient {
            conn: Connection::handshake(reader, writer, host, limit).await?,
        })
    }

    /// [`AgentClient::over`] without waiting for the agent's hello: requests
    /// follow this side's hello at once, and a bad hello fails them with the
    /// handshake's error (for a fresh `moor-agent stdio` over SSH, where
    /// waiting costs a round trip).
    pub async fn over_pipelined(
        reader: Reader,
        writer: Writer,
        host: String,
    ) -> Result<AgentClient> {
        Ok(AgentClient {
            conn: Connection::handshake_pipelined(reader, writer, host).await?,
        })
    }

    /// The error for a connection that broke (exit code 6: callers that follow
    /// a log reconnect on it).
    pub fn lost(&self, cause: impl Into<String>) -> Error {
        self.conn.lost(cause)
    }

    /// Sends `request` and takes the answer `pick` expects, within `limit`.
    async fn ask<T>(
        &self,
        request: Request,
        limit: Duration,
        pick: impl FnOnce(Response) -> Result<T, Box<Response>>,
    ) -> Result<T> {
        let response = self.conn.call_within(&request, limit).await?;
        pick(response).map_err(|other| self.unexpected(&request, &other))
    }

    /// An answer that does not fit its request: the agent is not this
    /// controller's (the mismatched-answer error, written once).
    fn unexpected(&self, request: &Request, answer: &Response) -> Error {
        Error::Remote {
            host: self.conn.host().to_owned(),
            step: "agent request",
            cause: format!("unexpected answer {answer:?} to {}", request_name(request)),
            fix: "run `moor attach` again to update the agent".into(),
        }
    }

    /// Whether the link is alive.
    pub async fn ping(&self, limit: Duration) -> Result<()> {
        self.ask(Request::Ping, limit, |r| match r {
            Response::Pong => Ok(()),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Version, uptime, load, runs going.
    pub async fn status(&self) -> Result<AgentStatus> {
        self.ask(Request::Status, CALL_TIMEOUT, |r| match r {
            Response::Status(status) => Ok(status),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Starts a run.
    pub async fn start_run(&self, spec: RunSpec) -> Result<RunInfo> {
        self.ask(Request::StartRun { spec }, CALL_TIMEOUT, expect_run)
            .await
    }

    /// Starts a run and follows its log in one request (the ended run comes
    /// with the log's end). An agent that does not know that request gets a
    /// start and a log request instead.
    pub async fn start_run_following(&self, spec: RunSpec) -> Result<(RunInfo, ByteStream)> {
        let request = Request::StartRunFollowing { spec: spec.clone() };
        let (_, mut rx) = self.conn.request(&request).await?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.conn.response(&mut rx))
            .await
            .map_err(|_| self.lost("the run did not start"))?;
        match answer {
            Ok(Response::Stream { run: Some(run), .. }) => Ok((*run, ByteStream { rx })),
            Ok(other) => Err(self.unexpected(&request, &other)),
            Err(Error::Refused {
                kind: ErrorKind::BadRequest,
                ..
            }) => {
                let run = self.start_run(spec).await?;
                let log = self.read_log(&run.id, 0, true).await?;
                Ok((run, log))
            }
            Err(e) => Err(e),
        }
    }

    /// Lets a held run start (gang start).
    pub async fn release(&self, run_id: &str) -> Result<RunInfo> {
        let request = Request::Release {
            run_id: run_id.to_owned(),
        };
        self.ask(request, CALL_TIMEOUT, expect_run).await
    }

    /// The host's addresses and a free port, for a multi-node job.
    pub async fn node_info(&self) -> Result<moor_proto::NodeInfo> {
        self.ask(Request::NodeInfo, CALL_TIMEOUT, |r| match r {
            Response::Node(info) => Ok(info),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Every run the agent knows, newest first.
    pub async fn runs(&self) -> Result<Vec<RunInfo>> {
        self.ask(Request::ListRuns, CALL_TIMEOUT, |r| match r {
            Response::Runs { runs } => Ok(runs),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// One run.
    pub async fn run(&self, run_id: &str) -> Result<RunInfo> {
        let request = Request::GetRun {
            run_id: run_id.to_owned(),
        };
        self.ask(request, CALL_TIMEOUT, expect_run).await
    }

    /// Stops a run (SIGTERM, SIGKILL after `grace_secs`); returns it, ended.
    pub async fn cancel(&self, run_id: &str, grace_secs: u32) -> Result<RunInfo> {
        let request = Request::Cancel {
            run_id: run_id.to_owned(),
            grace_secs,
        };
        let limit = CALL_TIMEOUT + Duration::from_secs(grace_secs.into());
        self.ask(request, limit, expect_run).await
    }

    /// A run's log from byte `offset`; with `follow`, until the run ends.
    pub async fn read_log(&self, run_id: &str, offset: u64, follow: bool) -> Result<ByteStream> {
        let request = Request::ReadLog {
            run_id: run_id.to_owned(),
            offset,
            follow,
        };
        self.stream(request, "the log stream did not start").await
    }

    /// What a run's code logged through MLflow (JSON lines of
    /// [`moor_proto::tracking::Record`]) from byte `offset`; with `follow`,
    /// until the run ends.
    pub async fn read_metrics(
        &self,
        run_id: &str,
        offset: u64,
        follow: bool,
    ) -> Result<ByteStream> {
        let request = Request::ReadMetrics {
            run_id: run_id.to_owned(),
            offset,
            follow,
        };
        // At the pace it is read: a million points are about 100 MB.
        let frames = self.conn.request_bounded(&request).await?;
        self.stream_from(request, frames, "the metrics stream did not start")
            .await
    }

    /// A run's `outputs/` as a tar archive (the files `selection` wants and
    /// lacks), at the pace it is taken; the end frame's trailer is the JSON
    /// [`moor_proto::archive::Trailer`].
    pub async fn download(
        &self,
        run_id: &str,
        selection: moor_proto::selection::Selection,
    ) -> Result<ByteStream> {
        let request = Request::Download {
            run_id: run_id.to_owned(),
            selection,
        };
        let frames = self.conn.request_bounded(&request).await?;
        self.stream_from(request, frames, "the download did not start")
            .await
    }

    /// The error for an agent that gave up mid-stream.
    pub fn refused(&self, error: WireError) -> Error {
        self.conn.refused(error)
    }

    async fn stream(&self, request: Request, stalled: &str) -> Result<ByteStream> {
        let frames = self.conn.request(&request).await?;
        self.stream_from(request, frames, stalled).await
    }

    async fn stream_from(
        &self,
        request: Request,
        (_, mut rx): (u64, Frames),
        stalled: &str,
    ) -> Result<ByteStream> {
        match tokio::time::timeout(CALL_TIMEOUT, self.conn.response(&mut rx))
            .await
            .map_err(|_| self.lost(stalled))??
        {
            Response::Stream { .. } => Ok(ByteStream { rx }),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// Makes an environment ready: ready at once on a cache hit, else
    /// building (with the run that builds it).
    pub async fn prepare_env(
        &self,
        spec: EnvSpec,
        hash: &str,
        options: PrepareOptions,
    ) -> Result<EnvInfo> {
        let request = Request::PrepareEnv {
            spec: Box::new(spec),
            hash: hash.to_owned(),
            options,
        };
        self.ask(request, CALL_TIMEOUT, expect_env).await
    }

    /// One environment.
    pub async fn env(&self, hash: &str) -> Result<EnvInfo> {
        let request = Request::GetEnv {
            hash: hash.to_owned(),
        };
        self.ask(request, CALL_TIMEOUT, expect_env).await
    }

    /// Every environment on the host.
    pub async fn envs(&self) -> Result<Vec<EnvInfo>> {
        self.ask(Request::ListEnvs, CALL_TIMEOUT, |r| match r {
            Response::Envs { envs } => Ok(envs),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Removes finished runs (older than `older_than_secs`, keeping the
    /// `keep` newest) and the snapshots no run refers to any more.
    pub async fn prune_runs(
        &self,
        older_than_secs: Option<u64>,
        keep: Option<u32>,
    ) -> Result<moor_proto::Pruned> {
        let request = Request::PruneRuns {
            older_than_secs,
            keep,
        };
        self.ask(request, CALL_TIMEOUT, |r| match r {
            Response::Pruned(pruned) => Ok(pruned),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Removes an environment (refused, [`moor_proto::ErrorKind::Busy`],
    /// while a run uses it).
    pub async fn remove_env(&self, hash: &str) -> Result<EnvInfo> {
        let request = Request::RemoveEnv {
            hash: hash.to_owned(),
        };
        self.ask(request, CALL_TIMEOUT, expect_env).await
    }
}

fn expect_run(response: Response) -> Result<RunInfo, Box<Response>> {
    match response {
        Response::Run { run } => Ok(run),
        other => Err(Box::new(other)),
    }
}

fn expect_env(response: Response) -> Result<EnvInfo, Box<Response>> {
    match response {
        Response::Env { env } => Ok(env),
        other => Err(Box::new(other)),
    }
}

/// A request's wire name, for errors.
fn request_name(request: &Request) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "a request".into())
}
