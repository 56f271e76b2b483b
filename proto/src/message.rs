//! The messages of the controller/agent protocol: one [`Request`] enum, one
//! [`Response`] enum, errors as `{kind, message}`. Each travels as the JSON
//! payload of a frame whose id ties a response (and any data frames) to its
//! request.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::endpoint::{EndpointInfo, EndpointSpec};
use crate::env::{EnvInfo, EnvSpec, PrepareOptions};
use crate::frame::{Frame, FrameError, FrameKind};
use crate::run::{NodeInfo, RunInfo, RunSpec};
use crate::Hello;

/// What the controller asks the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first request on a connection: the controller's hello. The agent
    /// answers with its own, or a `version_mismatch` error.
    Hello {
        /// The controller's protocol and build.
        hello: Hello,
    },
    /// Liveness check; answered with [`Response::Pong`].
    Ping,
    /// Agent status: version, uptime, load, runs going.
    Status,
    /// Whether the agent has the source snapshot with this hash.
    HasSnapshot {
        /// Hex sha256 of the snapshot archive.
        sha256: String,
    },
    /// Upload a snapshot: data frames with the archive follow, then an end
    /// frame. The agent checks size and hash before keeping it.
    PutSnapshot {
        /// Hex sha256 of the archive.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Offer a snapshot file by file ([`crate::tree`]): data frames with
    /// the manifest's bytes (zstd-compressed) follow, then an end frame. The agent checks its
    /// hash, keeps it, and answers [`Response::Snapshot`] once the tree is
    /// built, or [`Response::TreeMissing`] with the contents it lacks.
    PutTree {
        /// Hex sha256 of the manifest.
        sha256: String,
        /// The manifest's size in bytes (unpacked).
        size: u64,
    },
    /// File contents: a zstd stream of [`crate::tree::BlobHeader`] records
    /// in data frames, then an end frame; each content is kept only if its
    /// hash matches. Answered with [`Response::Blobs`], or, with `build`,
    /// as [`Request::BuildTree`] of that manifest is (one round trip less).
    PutBlobs {
        /// How many contents the stream holds.
        count: u64,
        /// Their sizes summed (unpacked).
        size: u64,
        /// A manifest sent before whose tree to build once they are kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build: Option<String>,
    },
    /// Build the tree of a manifest sent before, from contents the agent
    /// has: answered like [`Request::PutTree`].
    BuildTree {
        /// Hex sha256 of the manifest.
        sha256: String,
    },
    /// Start a run.
    StartRun {
        /// What to run.
        spec: RunSpec,
    },
    /// Start a run and follow its log: answered with [`Response::Stream`]
    /// carrying the run, then the log as with [`Request::ReadLog`]
    /// `follow` (the ended run in the end frame's trailer). One request
    /// where a start and a log would take two round trips.
    StartRunFollowing {
        /// What to run.
        spec: RunSpec,
    },
    /// Let a held run's process start (gang start); answered with the run.
    Release {
        /// The run's id.
        run_id: String,
    },
    /// The host's addresses and a free port ([`Response::Node`]).
    NodeInfo,
    /// Every run the agent knows.
    ListRuns,
    /// One run.
    GetRun {
        /// The run's id.
        run_id: String,
    },
    /// A run's log (stdout and stderr, in order) from a byte offset, as data
    /// frames. With `follow`, the stream goes on until the run ends, and
    /// its end frame's trailer is the ended run ([`RunInfo`], JSON);
    /// otherwise it ends at the log's current end, with no trailer.
    ReadLog {
        /// The run's id.
        run_id: String,
        /// Byte offset to start at: a broken stream resumes where it stopped.
        offset: u64,
        /// Keep streaming until the run ends.
        follow: bool,
    },
    /// What a run's code logged through MLflow (its `metrics.jsonl`, JSON
    /// lines of [`crate::tracking::Record`]) from a byte offset, streamed
    /// as [`Request::ReadLog`] streams the log.
    ReadMetrics {
        /// The run's id.
        run_id: String,
        /// Byte offset to start at.
        offset: u64,
        /// Keep streaming until the run ends.
        follow: bool,
    },
    /// Stop a run: SIGTERM to its process group, SIGKILL after the grace period.
    Cancel {
        /// The run's id.
        run_id: String,
        /// Seconds between SIGTERM and SIGKILL.
        grace_secs: u32,
    },
    /// A run's `outputs/` as a tar archive in data frames: the files the
    /// selection wants and the destination does not already hold.
    Download {
        /// The run's id.
        run_id: String,
        /// Which files.
        #[serde(default)]
        selection: crate::selection::Selection,
    },
    /// Make an environment ready: answered at once with [`Response::Env`],
    /// `ready` on a cache hit, else `building` with the run that builds it
    /// (one build per environment and host, however many ask).
    PrepareEnv {
        /// What to build (boxed: the largest request).
        spec: Box<EnvSpec>,
        /// Its hash as the controller computed it (the agent checks it).
        hash: String,
        /// Local channels and wheels, already uploaded as snapshots.
        #[serde(default)]
        options: PrepareOptions,
    },
    /// One environment.
    GetEnv {
        /// Its hash.
        hash: String,
    },
    /// Every environment on the host.
    ListEnvs,
    /// Remove an environment (refused while a run uses it).
    RemoveEnv {
        /// Its hash.
        hash: String,
    },
    /// Remove finished runs (folders, logs, outputs) and the snapshots no
    /// remaining run refers to. Runs queued or running are never touched.
    PruneRuns {
        /// Only runs that ended more than this many seconds ago.
        #[serde(default)]
        older_than_secs: Option<u64>,
        /// Keep this many of the newest finished runs whatever their age.
        #[serde(default)]
        keep: Option<u32>,
    },
    /// Create an endpoint and start its server; answered at once with
    /// [`Response::Endpoint`] (`starting`).
    CreateEndpoint {
        /// What to serve (boxed: large).
        spec: Box<EndpointSpec>,
    },
    /// Every endpoint on the host.
    ListEndpoints,
    /// One endpoint.
    GetEndpoint {
        /// Its name.
        name: String,
    },
    /// Stop an endpoint's server (it stays, `stopped`).
    StopEndpoint {
        /// Its name.
        name: String,
    },
    /// Start a stopped or failed endpoint's server again (a new run).
    StartEndpoint {
        /// Its name.
        name: String,
    },
    /// Stop an endpoint and remove it, its run and its model copy.
    DeleteEndpoint {
        /// Its name.
        name: String,
    },
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The agent's hello.
    Hello {
        /// The agent's protocol and build.
        hello: Hello,
    },
    /// Answer to [`Request::Ping`].
    Pong,
    /// Answer to [`Request::Status`].
    Status(AgentStatus),
    /// Answer to [`Request::HasSnapshot`] and [`Request::PutSnapshot`].
    Snapshot {
        /// Whether the agent has it now.
        present: bool,
    },
    /// Answer to [`Request::PutTree`] and [`Request::BuildTree`]: the
    /// contents to send before the tree can be built.
    TreeMissing {
        /// Their names: hex sha256, `.x` for an executable one
        /// ([`crate::tree::BlobHeader::blob_name`]), each once.
        blobs: Vec<String>,
    },
    /// Answer to [`Request::PutBlobs`].
    Blobs {
        /// How many contents were new to the host.
        stored: u64,
    },
    /// A run, answering [`Request::StartRun`], [`Request::GetRun`] and
    /// [`Request::Cancel`].
    Run {
        /// The run.
        run: RunInfo,
    },
    /// Answer to [`Request::NodeInfo`].
    Node(NodeInfo),
    /// Answer to [`Request::ListRuns`].
    Runs {
        /// Every run, newest first.
        runs: Vec<RunInfo>,
    },
    /// An environment, answering [`Request::PrepareEnv`], [`Request::GetEnv`]
    /// and [`Request::RemoveEnv`].
    Env {
        /// The environment.
        env: EnvInfo,
    },
    /// Answer to [`Request::ListEnvs`].
    Envs {
        /// Every environment on the host.
        envs: Vec<EnvInfo>,
    },
    /// Answer to [`Request::PruneRuns`].
    Pruned(Pruned),
    /// An endpoint, answering the endpoint requests but the list.
    Endpoint {
        /// The endpoint.
        endpoint: Box<EndpointInfo>,
    },
    /// Answer to [`Request::ListEndpoints`].
    Endpoints {
        /// Every endpoint, by name.
        endpoints: Vec<EndpointInfo>,
    },
    /// A byte stream (log, download) starts: data frames and an end frame
    /// with this request's id follow.
    Stream {
        /// Offset of the first byte that follows.
        offset: u64,
        /// The run just started ([`Request::StartRunFollowing`] only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<Box<RunInfo>>,
    },
    /// The request failed.
    Error {
        /// Why.
        error: WireError,
    },
}

/// The agent's state, answering [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Agent version.
    pub version: String,
    /// Seconds since the agent daemon started.
    pub uptime_secs: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    /// Runs queued or running.
    pub running: u32,
    /// The space moor uses on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUse>,
}

/// Bytes moor keeps on a host, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUse {
    /// Run folders (sources, logs, outputs).
    pub runs_bytes: u64,
    /// Source snapshots.
    pub snapshots_bytes: u64,
    /// Environments (conda, venv; Docker images are the engine's).
    pub envs_bytes: u64,
}

/// What a [`Request::PruneRuns`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// The runs removed.
    pub runs: Vec<String>,
    /// How many snapshots went with them.
    pub snapshots: u32,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// An error on the wire: its kind, its cause for a person, and what helps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The cause, one line for a person.
    pub message: String,
    /// What helps, when the agent knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match &self.fix {
            Some(fix) => write!(f, "; fix: {fix}"),
            None => Ok(()),
        }
    }
}

/// Kinds of protocol errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peers speak different protocol versions or builds: reinstall.
    VersionMismatch,
    /// The request is malformed or not allowed now.
    BadRequest,
    /// No such run, snapshot or environment.
    NotFound,
    /// A run asked for an environment that is not ready, or one in use was
    /// to be removed.
    EnvNotReady,
    /// The environment is in use by a queued or running run.
    Busy,
    /// An upload did not match its declared size or hash.
    Corrupt,
    /// The host ran out of something (processes, memory).
    Resources,
    /// The host's disk is full where the agent had to write.
    NoSpace,
    /// A folder on the way to the agent belongs to another user or is
    /// writable by others: the agent refuses to run from it.
    Unsafe,
    /// Anything else on the agent's side.
    Internal,
}

impl Request {
    /// The request as a frame with `id`.
    pub fn to_frame(&self, id: u64) -> Frame {
        json_frame(FrameKind::Request, id, self)
    }
}

impl Response {
    /// The response as a frame answering request `id`.
    pub fn to_frame(&self, id: u64) -> Frame {
        json_frame(FrameKind::Response, id, self)
    }

    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            error: WireError {
                kind,
                message: message.into(),
                fix: None,
            },
        }
    }
}

fn json_frame<T: Serialize>(kind: FrameKind, id: u64, message: &T) -> Frame {
    Frame {
        kind,
        id,
        payload: serde_json::to_vec(message).expect("protocol messages serialize"),
    }
}

impl Frame {
    /// The request this frame carries.
    pub fn request(&self) -> Result<Request, FrameError> {
        self.message(FrameKind::Request)
    }

    /// The response this frame carries.
    pub fn response(&self) -> Result<Response, FrameError> {
        self.message(FrameKind::Response)
    }

    fn message<T: DeserializeOwned>(&self, want: FrameKind) -> Result<T, FrameError> {
        if self.kind != want {
            return Err(FrameError::BadMessage(format!(
                "expected a {want:?} frame, got {:?}",
                self.kind
            )));
        }
        serde_json::from_slice(&self.payload).map_err(|e| FrameError::BadMessage(e.to_string()))
    }
}
