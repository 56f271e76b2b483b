//! Endpoints on this host: `~/.moor/endpoints/NAME/` holds `endpoint.json`
//! (the spec, its port, the run serving it, whether it should run) and
//! `model/` (the model's copy, `AZUREML_MODEL_DIR`). The server itself is a
//! run whose job is the [`keeper`]: it restarts the server when it dies and
//! probes it; its log is the endpoint's log.
//!
//! After a host reboot the run is `lost`; the daemon starts a new one for
//! every endpoint that should run when it starts (the next moor contact with
//! the host) and whenever an endpoint is looked at.

pub mod keeper;
pub mod model;
pub mod probe;

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use moor_proto::endpoint::{EndpointInfo, EndpointSpec, EndpointState, Server};
use moor_proto::env::EnvKind;
use moor_proto::run::Serving;
use moor_proto::{ErrorKind, RunState};
use moor_proto::{RunInfo, RunSpec};
use serde::{Deserialize, Serialize};

use crate::envs::Envs;
use crate::error::{AgentError, Result};
use crate::runs::{files, Runs};
use crate::sys;

/// The endpoint's record, `endpoint.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// As the controller asked (the command filled in).
    pub spec: EndpointSpec,
    /// The port it has.
    pub port: u16,
    /// The run serving it now.
    pub run_id: String,
    /// Whether it should run (false once stopped).
    pub wanted: bool,
    /// When it was created.
    pub created_at: String,
}

/// The keeper's report, `serving.json` in the run's folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Its state; none before the keeper wrote one.
    pub state: Option<EndpointState>,
    /// Restarts after the server died.
    pub restarts: u32,
    /// How the server last ended.
    pub last_exit: Option<String>,
    /// Since when it answers.
    pub healthy_since: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the server answered on its unix socket (a server command
    /// may answer on `PORT` instead).
    #[serde(default)]
    pub on_socket: bool,
}

/// The longest path a unix socket can have (`sun_path` less its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// The keeper's report file in a run's folder.
pub const REPORT: &str = "serving.json";

/// Lines of log a failed endpoint shows.
const TAIL_LINES: usize = 20;

/// How long a stopped server gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The endpoints of this user.
pub struct Endpoints {
    root: PathBuf,
    /// Serialises changes: one create, start, stop or delete at a time.
    changing: Mutex<()>,
}

impl Endpoints {
    /// Endpoints kept under `root` (`~/.moor/endpoints`).
    pub fn new(root: PathBuf) -> Endpoints {
        Endpoints {
            root,
            changing: Mutex::new(()),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The unix socket of a non-public endpoint, in its 0700 folder: only
    /// its owner (and moor, through SSH as the owner) can connect. None when
    /// public, or when the path is too long for a socket.
    fn socket(&self, spec: &EndpointSpec) -> Option<PathBuf> {
        let path = self.dir(&spec.name).join("sock");
        (!spec.public && path.as_os_str().len() <= SOCKET_PATH_MAX).then_some(path)
    }

    fn stored(&self, name: &str) -> Result<Stored> {
        if !crate::runs::inputs::valid_name(name) {
            return Err(AgentError::usage(format!(
                "endpoint name {name:?}: letters, digits, '_' and '-'"
            )));
        }
        sys::read_json(&self.dir(name).join("endpoint.json")).map_err(|_| {
            AgentError::not_found(format!("no endpoint {name} on this host"))
                .with_fix("see `moor endpoint list`")
        })
    }

    fn save(&self, stored: &Stored) -> Result<()> {
        let dir = self.dir(&stored.spec.name);
        sys::write_json_atomic(&dir.join("endpoint.json"), stored)
            .map_err(|e| AgentError::io_in(&dir, e))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("endpoint.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// The runs serving endpoints (kept by `moor prune`).
    pub fn runs(&self) -> std::collections::HashSet<String> {
        self.names()
            .iter()
            .filter_map(|n| self.stored(n).ok())
            .map(|s| s.run_id)
            .collect()
    }
}

/// What endpoints need of the daemon: its runs, its environments, its
/// snapshots, and how it starts a run.
pub struct Host<'a> {
    /// The runs.
    pub runs: &'a Runs,
    /// The environments.
    pub envs: &'a Envs,
    /// The snapshots' folder.
    pub snapshots: &'a Path,
    /// Starts a run (checked as a `StartRun` request is).
    pub start: &'a dyn Fn(RunSpec) -> Result<RunInfo>,
}

impl Endpoints {
    /// Creates an endpoint and starts its server.
    pub fn create(&self, host: &Host, mut spec: EndpointSpec) -> Result<EndpointInfo> {
        let endpoints = self;
        let _one = endpoints.changing.lock().expect("endpoints lock");
        if !crate::runs::inputs::valid_name(&spec.name) {
            return Err(AgentError::usage(format!(
                "endpoint name {:?}: letters, digits, '_' and '-'",
                spec.name
            )));
        }
        let dir = endpoints.dir(&spec.name);
        if dir.join("endpoint.json").exists() {
            return Err(AgentError::new(
                ErrorKind::Busy,
                format!("endpoint {} already exists on this host", spec.name),
            )
            .with_fix("pick another name, or `moor endpoint delete` it first"));
        }
        if let Some(hash) = &spec.run.environment {
            if host
                .envs
                .ready(hash)
                .is_some_and(|r| r.kind == EnvKind::Docker)
            {
                return Err(AgentError::usage(
                    "endpoints run in conda or pip environments or on the host as it is; a Docker environment cannot serve one yet",
                )
                .with_fix("use a pip or conda environment (--env)"));
            }
        }
        let port = match (&spec.server, self.socket(&spec)) {
            // A scoring server not public listens on its socket only.
            (Server::ScoringScript { .. }, _) if !spec.public && spec.port.is_some() => {
                let (cause, fix) = moor_proto::endpoint::PORT_NEEDS_PUBLIC;
                return Err(AgentError::usage(cause).with_fix(fix));
            }
            (Server::ScoringScript { .. }, None) if !spec.public => {
                return Err(AgentError::usage(format!(
                    "endpoint name {:?} makes its socket's path under {} longer than the {SOCKET_PATH_MAX} bytes a unix socket can have",
                    spec.name,
                    endpoints.root.display()
                ))
                .with_fix("pick a shorter name"));
            }
            (Server::ScoringScript { .. }, Some(_)) => 0,
            _ => free_port(address(&spec), spec.port)?,
        };
        spec.port = Some(port);
        // The model first: a model that is not there refuses the endpoint
        // before anything starts.
        let staging = endpoints.root.join(format!(".{}.new", spec.name));
        let _ = fs::remove_dir_all(&staging);
        sys::create_private_dir(&staging).map_err(|e| AgentError::io_in(&endpoints.root, e))?;
        let placed = match &spec.model {
            Some(model) => model::place(host, model, &staging.join("model")),
            None => Ok(()),
        };
        if let Err(e) = placed {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir).map_err(|e| AgentError::io_in(&endpoints.root, e))?;
        let stored = Stored {
            run_id: String::new(),
            port,
            wanted: true,
            created_at: moor_proto::time::now(),
            spec,
        };
        match self.serve(host, stored) {
            Ok(stored) => self.info(host, &stored),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Starts a run serving `stored`, records it, and returns the record.
    fn serve(&self, host: &Host, mut stored: Stored) -> Result<Stored> {
        let spec = &stored.spec;
        let address = address(spec);
        let socket = self.socket(spec);
        let mut run = spec.run.clone();
        run.name = Some(format!("endpoint-{}", spec.name));
        run.command = match &spec.server {
            Server::ScoringScript { script } => {
                let bind = match &socket {
                    Some(socket) if stored.port == 0 => format!("unix:{}", socket.display()),
                    _ => format!("{address}:{}", stored.port),
                };
                keeper::scoring_command(script, &bind)
            }
            Server::Command { command } => command.clone(),
        };
        if stored.port != 0 {
            run.env.insert("PORT".into(), stored.port.to_string());
        }
        if let Some(socket) = &socket {
            run.env
                .insert("MOOR_ENDPOINT_SOCKET".into(), socket.display().to_string());
        }
        // Its output in the log as it comes, in order (Python buffers a
        // file's stdout otherwise, and a traceback would come before it).
        run.env
            .entry("PYTHONUNBUFFERED".into())
            .or_insert_with(|| "1".into());
        run.env.insert("MOOR_ENDPOINT".into(), spec.name.clone());
        run.env
            .insert("MOOR_ENDPOINT_ADDRESS".into(), address.to_owned());
        let model = self.dir(&spec.name).join("model");
        if model.exists() {
            run.env
                .insert("AZUREML_MODEL_DIR".into(), model.display().to_string());
        }
        run.serving = Some(Box::new(Serving {
            name: spec.name.clone(),
            port: stored.port,
            address: address.into(),
            health_path: spec.health_path.clone(),
            socket: socket.map(|s| s.display().to_string()),
        }));
        let info = (host.start)(run)?;
        stored.run_id = info.id;
        stored.wanted = true;
        // Unrecorded (a full disk), the run would serve with no endpoint.
        if let Err(e) = self.save(&stored) {
            let _ = host.runs.cancel(&stored.run_id, STOP_GRACE);
            let _ = fs::remove_dir_all(host.runs.dir(&stored.run_id));
            return Err(e);
        }
        Ok(stored)
    }

    /// One endpoint, started again first if the host restarted under it.
    pub fn get(&self, host: &Host, name: &str) -> Result<EndpointInfo> {
        let stored = self.stored(name)?;
        let stored = self.resume(host, stored);
        self.info(host, &stored)
    }

    /// Every endpoint, by name.
    pub fn list(&self, host: &Host) -> Result<Vec<EndpointInfo>> {
        Ok(self
            .names()
            .iter()
            .filter_map(|name| self.get(host, name).ok())
            .collect())
    }

    /// Starts every endpoint that should run and whose run was lost (a host
    /// reboot): called when the daemon starts.
    pub fn resume_all(&self, host: &Host) {
        for name in self.names() {
            if let Ok(stored) = self.stored(&name) {
                self.resume(host, stored);
            }
        }
    }

    fn resume(&self, host: &Host, stored: Stored) -> Stored {
        let lost = match host.runs.info(&stored.run_id) {
            Ok(run) => run.state == RunState::Lost,
            Err(_) => true,
        };
        if !stored.wanted || !lost {
            return stored;
        }
        let _one = self.changing.lock().expect("endpoints lock");
        let old = stored.run_id.clone();
        match self.serve(host, stored.clone()) {
            Ok(new) => {
                tracing::info!(
                    "endpoint {}: run {old} was lost; serving again in {}",
                    new.spec.name,
                    new.run_id
                );
                let _ = fs::remove_dir_all(host.runs.dir(&old));
                new
            }
            Err(e) => {
                tracing::warn!("endpoint {}: cannot serve again: {e}", stored.spec.name);
                stored
            }
        }
    }

    /// Stops an endpoint's server; it stays, `stopped`.
    pub fn stop(&self, host: &Host, name: &str) -> Result<EndpointInfo> {
        let _one = self.changing.lock().expect("endpoints lock");
        let stored = self.halt(host, name)?;
        self.info(host, &stored)
    }

    /// Marks the endpoint not wanted and stops its run (the caller holds
    /// the change lock).
    fn halt(&self, host: &Host, name: &str) -> Result<Stored> {
        let mut stored = self.stored(name)?;
        stored.wanted = false;
        self.save(&stored)?;
        if host.runs.info(&stored.run_id).is_ok() {
            host.runs.cancel(&stored.run_id, STOP_GRACE)?;
        }
        Ok(stored)
    }

    /// Starts a stopped or failed endpoint again, in a new run.
    pub fn start(&self, host: &Host, name: &str) -> Result<EndpointInfo> {
        let _one = self.changing.lock().expect("endpoints lock");
        let stored = self.stored(name)?;
        if let Ok(run) = host.runs.info(&stored.run_id) {
            if !run.state.is_final() {
                return self.info(host, &stored);
            }
        }
        if stored.port != 0 {
            free_port(address(&stored.spec), Some(stored.port))?;
        }
        let old = stored.run_id.clone();
        let stored = self.serve(host, stored)?;
        let _ = fs::remove_dir_all(host.runs.dir(&old));
        self.info(host, &stored)
    }

    /// Stops an endpoint and removes it: its run, its log, its model copy.
    pub fn delete(&self, host: &Host, name: &str) -> Result<EndpointInfo> {
        let _one = self.changing.lock().expect("endpoints lock");
        let stored = self.halt(host, name)?;
        let mut info = self.info(host, &stored)?;
        info.state = EndpointState::Stopped;
        let _ = fs::remove_dir_all(host.runs.dir(&stored.run_id));
        fs::remove_dir_all(self.dir(name))?;
        Ok(info)
    }

    /// The endpoint as it stands: its run's state and its keeper's report.
    fn info(&self, host: &Host, stored: &Stored) -> Result<EndpointInfo> {
        let run = host.runs.info(&stored.run_id).ok();
        let run_dir = host.runs.dir(&stored.run_id);
        let report: Report = sys::read_json(&run_dir.join(REPORT)).unwrap_or_default();
        let (state, error) = match &run {
            Some(run) if !run.state.is_final() => {
                (report.state.unwrap_or(EndpointState::Starting), None)
            }
            Some(run) if run.state == RunState::Cancelled => (EndpointState::Stopped, None),
            Some(run) => {
                let why = report
                    .error
                    .clone()
                    .or(run.error.clone())
                    .unwrap_or_else(|| format!("its keeper ended ({})", end_of(run)));
                (EndpointState::Failed, Some(why))
            }
            None if !stored.wanted => (EndpointState::Stopped, None),
            None => (
                EndpointState::Failed,
                Some(format!("its run {} is gone", stored.run_id)),
            ),
        };
        let log_tail = if state == EndpointState::Failed {
            failure_tail(&run_dir.join(files::LOG))
        } else {
            Vec::new()
        };
        let spec = &stored.spec;
        let socket = self
            .socket(spec)
            .filter(|_| stored.port == 0 || report.on_socket)
            .map(|s| s.display().to_string());
        Ok(EndpointInfo {
            name: spec.name.clone(),
            state,
            port: stored.port,
            address: match &socket {
                Some(socket) => format!("unix:{socket}"),
                None => address(spec).into(),
            },
            socket,
            health_path: spec.health_path.clone(),
            server: spec.server.clone(),
            model: spec.model.clone(),
            environment: spec.run.environment.clone(),
            run_id: stored.run_id.clone(),
            restarts: report.restarts,
            last_exit: report.last_exit,
            healthy_since: report
                .healthy_since
                .filter(|_| state == EndpointState::Healthy),
            created_at: stored.created_at.clone(),
            error,
            log_tail,
        })
    }
}

/// The address an endpoint listens on.
fn address(spec: &EndpointSpec) -> &'static str {
    if spec.public {
        "0.0.0.0"
    } else {
        "127.0.0.1"
    }
}

fn end_of(run: &moor_proto::RunInfo) -> String {
    match (run.exit_code, run.signal) {
        (_, Some(signal)) => format!("signal {signal}"),
        (Some(code), None) => format!("exit {code}"),
        _ => format!("{:?}", run.state).to_lowercase(),
    }
}

/// `want` if it is free on `address`, else a clear refusal; with no
/// `want`, a free port the system picks.
pub fn free_port(address: &str, want: Option<u16>) -> Result<u16> {
    match TcpListener::bind((address, want.unwrap_or(0))) {
        Ok(listener) => Ok(listener.local_addr()?.port()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(AgentError::new(
            ErrorKind::Busy,
            format!(
                "port {} on {address} is taken by another process",
                want.unwrap_or(0)
            ),
        )
        .with_fix("pick another --port, or leave --port out and moor picks a free one")),
        Err(e) => Err(AgentError::from(e).context(format!("cannot listen on {address}"))),
    }
}

/// What a failed endpoint's log says of the failure: its last Python
/// traceback, from the first exception of its chain (60 lines at most),
/// else its last lines.
fn failure_tail(log: &Path) -> Vec<String> {
    const TRACEBACK: &str = "Traceback (most recent call last)";
    let lines = tail(log, 300);
    let Some(mut start) = lines.iter().rposition(|l| l.contains(TRACEBACK)) else {
        return lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec();
    };
    // "The above exception was the direct cause of the following
    // exception:" (or "During handling of ..."): the cause comes first.
    while let Some(above) = lines[..start].iter().rposition(|l| !l.trim().is_empty()) {
        let chained = lines[above].contains("the direct cause of the following exception")
            || lines[above].contains("another exception occurred");
        match lines[..above].iter().rposition(|l| l.contains(TRACEBACK)) {
            Some(cause) if chained => start = cause,
            _ => break,
        }
    }
    lines[start..].iter().take(60).cloned().collect()
}

/// The last `lines` lines of the file at `path` (its last 16 KiB at most).
pub fn tail(path: &Path, lines: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(16 * 1024);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().skip(usize::from(from > 0)).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.chars().take(400).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::failure_tail;

    #[test]
    fn a_failure_shows_the_first_exception_of_the_last_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let text = "Traceback (most recent call last):\n  old\nValueError: earlier\n\
            starting again\n\
            2026 E azmlinfsrv - Encountered Exception Traceback (most recent call last):\n\
            \x20 File \"score.py\", line 2, in init\n\
            RuntimeError: no model\n\
            \n\
            The above exception was the direct cause of the following exception:\n\
            \n\
            Traceback (most recent call last):\n\
            \x20 File \"user_script.py\"\n\
            UserScriptException: Caught an unhandled exception\n\
            Reason: Worker failed to boot.\n";
        std::fs::write(&log, text).unwrap();
        let tail = failure_tail(&log);
        assert!(tail[0].contains("Encountered Exception"), "{tail:?}");
        assert!(tail.iter().any(|l| l == "RuntimeError: no model"));
        assert_eq!(tail.last().unwrap(), "Reason: Worker failed to boot.");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        assert_eq!(failure_tail(&log), ["one", "two"]);
    }
}
