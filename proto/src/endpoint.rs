//! Endpoints on the wire: a model served over HTTP from a host, kept up by
//! the agent. An endpoint's server is one run (its log is the run's log);
//! the agent restarts the server inside that run when it dies and starts a
//! new run for it after a host reboot.

use serde::{Deserialize, Serialize};

use crate::run::RunSpec;

/// What to serve, as the controller asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// Its name, unique on the host (letters, digits, `_`, `-`).
    pub name: String,
    /// The port it listens on; none: the agent picks a free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Listen on every address instead of 127.0.0.1.
    #[serde(default)]
    pub public: bool,
    /// The path its readiness probe asks (`GET`).
    pub health_path: String,
    /// The server.
    pub server: Server,
    /// The model, placed under `AZUREML_MODEL_DIR` before the server starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSource>,
    /// The run that serves it: snapshot, environment and variables (the
    /// agent fills in the command).
    pub run: RunSpec,
}

/// The HTTP server of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Server {
    /// Azure ML's scoring-script contract, served by
    /// `azureml-inference-server-http`: `init()` then `run(raw_data)` for
    /// every `POST /score`.
    ScoringScript {
        /// The script, relative to the source folder.
        script: String,
    },
    /// Any HTTP server: the command, with `PORT` set.
    Command {
        /// The command and its arguments.
        command: Vec<String>,
    },
}

/// Why `--port` is refused for a scoring server that is not public, and
/// the fix: said by the controller (exit 2, before connecting) and by the
/// agent (for any other caller) in the same words.
pub const PORT_NEEDS_PUBLIC: (&str, &str) = (
    "--port is for a --public endpoint: one that is not listens on a unix socket only you reach (moor endpoint invoke and moor forward --endpoint use it)",
    "leave --port out, or add --public",
);

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum ModelSource {
    /// A run's outputs on the same host (copied there, never through the
    /// controller): `path` under its `outputs/`, or all of them.
    Run {
        /// The run's id.
        run_id: String,
        /// A file or folder under the run's outputs (relative, no `..`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// An uploaded snapshot (a local file or folder), unpacked as is.
    Snapshot {
        /// Hex sha256 of the snapshot.
        sha256: String,
    },
}

/// States of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointState {
    /// Its server was (re)started and has not answered the probe yet.
    Starting,
    /// Its server answers the probe.
    Healthy,
    /// Its server runs and answered before, but no longer answers.
    Unhealthy,
    /// Its server died before it ever answered, or kept dying: not
    /// restarted until `moor endpoint start`.
    Failed,
    /// Stopped on request.
    Stopped,
}

impl EndpointState {
    /// The state's name, as `--json` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Starting => "starting",
            EndpointState::Healthy => "healthy",
            EndpointState::Unhealthy => "unhealthy",
            EndpointState::Failed => "failed",
            EndpointState::Stopped => "stopped",
        }
    }
}

/// An endpoint as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: EndpointState,
    /// The port it listens on.
    pub port: u16,
    /// The address it listens on (`127.0.0.1`, or `0.0.0.0` when public).
    pub address: String,
    /// The unix socket it answers on (in the endpoint's 0700 folder, so
    /// only its owner and moor through SSH reach it); none: it answers on
    /// `address`:`port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// The path of its readiness probe.
    pub health_path: String,
    /// The server.
    pub server: Server,
    /// The model, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSource>,
    /// The environment it runs in (hash), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The run serving it now (its log is the endpoint's).
    pub run_id: String,
    /// Times its server was restarted after it died, in this run.
    pub restarts: u32,
    /// How its server last ended (`exit 3`, `signal 9`), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// Since when it has been healthy (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When failed: the last lines of its log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}
