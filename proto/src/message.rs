//! The messages of the controller/agent protocol: one [`Request`] enum, one
//! [`Response`] enum, errors as `{kind, message}`. Each travels as the JSON
//! payload of a frame whose id ties a response (and any data frames) to its
//! request.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::env::{EnvInfo, EnvSpec, PrepareOptions};
use crate::frame::{Frame, FrameError, FrameKind};
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
    /// Start a run.
    StartRun {
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
    /// frames. With `follow`, the stream goes on until the run ends;
    /// otherwise it ends at the log's current end.
    ReadLog {
        /// The run's id.
        run_id: String,
        /// Byte offset to start at: a broken stream resumes where it stopped.
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
    /// A byte stream (log, download) starts: data frames and an end frame
    /// with this request's id follow.
    Stream {
        /// Offset of the first byte that follows.
        offset: u64,
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
    /// Anything else on the agent's side.
    Internal,
}

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// A name for people (not unique).
    pub name: Option<String>,
    /// Hex sha256 of the source snapshot to run in.
    pub snapshot: String,
    /// The command and its arguments, run without a shell.
    pub command: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// The hash of the (ready) environment to run in; none: the host as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Run the command's script with spark-submit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,
    /// Data inputs: name → hex sha256 of an uploaded snapshot holding it,
    /// unpacked into the run's `inputs/NAME/` (`MOOR_INPUTS_DIR`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// URL inputs: name → `https://` (or `http://`) URL, downloaded on the
    /// host once per URL and copied into the run's `inputs/NAME/`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub url_inputs: BTreeMap<String, String>,
    /// Named output folders made under the run's outputs before it starts
    /// (a job file's `outputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Gang start: the run is accepted and set up, and its process waits
    /// for [`Request::Release`] (or a cancel; 10 minutes at most).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Distributed training: several processes of the command on this host,
    /// each with its ranks in `RANK`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`,
    /// `WORLD_SIZE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Processes>,
    /// This node's part in an MPI job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi: Option<MpiRole>,
    /// GPUs the run needs: it waits (`queued`) until that many are free on
    /// the host and gets them in `CUDA_VISIBLE_DEVICES`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus: u32,
    /// A node of a multi-node job: the nodes watch one another through
    /// node 0 (a node that ends without success stops the others), with or
    /// without a controller following them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Box<JobLink>>,
}

/// How the nodes of a job watch one another: node 0's supervisor listens on
/// `hub`; every other node's supervisor connects to it with `token`, sends
/// a heartbeat and its end; node 0 tells every node to stop when one ends
/// without success or falls silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLink {
    /// Node 0's `ADDR:PORT` (node 0 listens on every address at that port).
    pub hub: String,
    /// A random secret of the job, shown by each node when it connects.
    pub token: String,
    /// This node's rank.
    pub rank: u32,
    /// How many nodes the job has.
    pub nodes: u32,
    /// Seconds between SIGTERM and SIGKILL when a node is stopped.
    pub grace: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A node's part in an MPI job: Open MPI's `mpirun` on node 0 starts the
/// ranks on every node over SSH, with a key made for the job alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum MpiRole {
    /// Node 0: runs `mpirun` over every node, then tells the others the
    /// job ended.
    Launcher {
        /// Every node, node 0 first.
        hosts: Vec<MpiHost>,
        /// Processes (slots) per node.
        slots: u32,
        /// The job key (OpenSSH private key), kept 0600 while the job runs.
        private_key: String,
        /// The other nodes' host keys, `ADDR KEY` lines, as moor pinned them.
        known_hosts: String,
    },
    /// Another node: lets node 0 in with the job key while the job lasts.
    Peer {
        /// The job key's public half.
        public_key: String,
        /// Node 0's address: the key is accepted only from there.
        from: String,
    },
}

/// One node of an MPI job, as node 0 reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpiHost {
    /// Its address on the nodes' network.
    pub addr: String,
    /// The user its agent runs as (node 0 logs in as this user).
    pub user: String,
    /// Its run (empty for node 0).
    pub run_id: String,
    /// Its runs' folder (absolute): the ranks there start in
    /// `RUNS/RUN/src` and write to `RUNS/RUN/outputs`.
    pub runs_dir: String,
}

/// The processes of one node of a distributed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processes {
    /// How many on this host (`LOCAL_WORLD_SIZE`).
    pub count: u32,
    /// The global rank of the first (`RANK` = first_rank + `LOCAL_RANK`).
    pub first_rank: u32,
    /// Processes in the whole job (`WORLD_SIZE`).
    pub world_size: u32,
}

/// A host's addresses and a free port, for a multi-node job's rendezvous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its IPv4 addresses with prefix length (`10.0.3.7/24`), loopback
    /// excepted, in interface order.
    pub addresses: Vec<String>,
    /// A TCP port free on all its interfaces when asked.
    pub free_port: u16,
    /// Another one (the job link's), distinct from `free_port`.
    #[serde(default)]
    pub link_port: u16,
    /// Its host name.
    pub hostname: String,
    /// Its SSH host keys (`TYPE BASE64` lines of /etc/ssh/ssh_host_*.pub).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_keys: Vec<String>,
    /// The absolute folder of its runs (`~/.moor/runs`).
    #[serde(default)]
    pub runs_dir: String,
}

/// A Spark run: `command[0]` (a `.py` file or a jar in the snapshot) is
/// submitted with spark-submit, the rest of the command are its arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparkSpec {
    /// `--master`: `yarn`, `local[*]`, `spark://...`.
    pub master: String,
    /// `--conf` settings, `key=value`, in order.
    #[serde(default)]
    pub conf: Vec<String>,
}

impl SparkSpec {
    /// Whether the job runs on YARN (and so has an application id).
    pub fn on_yarn(&self) -> bool {
        self.master == "yarn" || self.master.starts_with("yarn-")
    }
}

/// States of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Accepted, not started.
    Queued,
    /// Its process is going.
    Running,
    /// Exited with status 0.
    Succeeded,
    /// Exited non-zero or was killed by a signal.
    Failed,
    /// Stopped by [`Request::Cancel`].
    Cancelled,
    /// Its supervisor vanished without recording an end (the host rebooted).
    Lost,
}

impl RunState {
    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }
}

/// A run as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Unique id.
    pub id: String,
    /// The spec's name.
    pub name: Option<String>,
    /// State.
    pub state: RunState,
    /// Exit code, once exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The command.
    pub command: Vec<String>,
    /// The snapshot it runs in.
    pub snapshot: String,
    /// The environment it runs in (hash), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When its process started.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Bytes of log so far.
    pub log_bytes: u64,
    /// For a Spark run: its spark settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,
    /// For a Spark run on YARN: the application id, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yarn_application: Option<String>,
    /// Why the run failed or was lost without its command's own say (it
    /// could not start, its environment was not ready, its supervisor
    /// vanished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The names of the variables the run was given (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_on_yarn_is_told_by_its_master() {
        let on = |m: &str| {
            SparkSpec {
                master: m.into(),
                conf: vec![],
            }
            .on_yarn()
        };
        assert!(on("yarn"));
        assert!(on("yarn-client"));
        assert!(!on("local[*]"));
        assert!(!on("spark://head:7077"));
    }
}
