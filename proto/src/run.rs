//! What a run is on the wire: its spec (command, environment, inputs, the
//! parts of a distributed job) and how the agent reports it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// The server of an endpoint: the agent's keeper runs the command,
    /// restarts it when it dies and probes it (see `moor_proto::endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Box<Serving>>,
    /// The experiment it belongs to (a job file's `experiment_name`,
    /// `moor run --experiment`): MLflow's `MLFLOW_EXPERIMENT_NAME` in the
    /// run; none: `Default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
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
    /// The interface of each address (`eth0`), in the same order.
    #[serde(default)]
    pub interfaces: Vec<String>,
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
    /// The latest value of each metric its code logged through MLflow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, crate::tracking::Latest>,
}

/// How the agent's keeper of an endpoint serves it (part of its run's spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serving {
    /// The endpoint's name.
    pub name: String,
    /// The port.
    pub port: u16,
    /// The address it listens on.
    pub address: String,
    /// The readiness probe's path.
    pub health_path: String,
    /// The unix socket (in the endpoint's 0700 folder) it listens on, or
    /// may: a scoring server listens there only; a server command is told
    /// it as `MOOR_ENDPOINT_SOCKET` beside `PORT`. None for a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
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
