//! Runs on disk: `~/.moor/runs/<id>/` holds everything about one run, so a
//! run outlives the SSH connection, the daemon, and the controller.
//!
//! ```text
//! spec.json        what to run (RunSpec), its working directory, boot id
//! supervisor.json  the supervisor's pid and start time
//! status.json      state, pid, exit code or signal, times (atomic rewrites)
//! cancel           present once a cancel was asked for
//! log              stdout and stderr of the job, in order
//! outputs/         where the job writes results (MOOR_OUTPUT_DIR)
//! ```
//!
//! Each run has its own supervisor process ([`crate::supervise`]), the
//! parent of the job, which records the exit status. A run's state is read
//! from these files: a final `status.json` is the answer; otherwise the run is
//! going only while its supervisor lives in this boot, and is `lost` after.

pub mod gpus;
pub mod inputs;
pub mod login_env;
pub mod outputs;
pub mod spark;
pub mod stream;
pub mod url_inputs;

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moor_proto::{RunInfo, RunSpec, RunState};
use serde::{Deserialize, Serialize};

use nix::sys::signal::Signal;

use crate::sys::{
    self, boot_id, create_private_dir, home, process_start, random_hex, read_json,
    write_json_atomic,
};

/// A run's spec as stored: the protocol's spec plus where it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSpec {
    /// What to run.
    pub spec: RunSpec,
    /// The job's working directory.
    pub workdir: PathBuf,
    /// When it was accepted.
    pub created_at: String,
    /// The boot it was started in.
    pub boot_id: String,
}

/// What the supervisor records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// State.
    pub state: Option<RunState>,
    /// The job's pid (and process group id).
    pub pid: Option<u32>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Terminating signal.
    pub signal: Option<i32>,
    /// When the job started.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Why it could not start, if it could not.
    pub error: Option<String>,
}

/// Who supervises a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Supervisor {
    /// Its pid.
    pub pid: u32,
    /// Its start time (field 22 of /proc/PID/stat), against pid reuse.
    pub start: String,
    /// The boot it runs in.
    pub boot_id: String,
}

/// The runs directory of one user.
#[derive(Debug, Clone)]
pub struct Runs {
    root: PathBuf,
    /// The login shell's PATH, asked at most once a minute (a login shell
    /// can take 100 ms): handed to each supervisor.
    login_path: std::sync::Arc<std::sync::Mutex<Option<LoginPath>>>,
}

/// When the login shell's PATH was asked, and what it said.
type LoginPath = (Instant, Option<String>);

/// File names inside a run directory.
pub mod files {
    /// The stored spec.
    pub const SPEC: &str = "spec.json";
    /// The supervisor's identity.
    pub const SUPERVISOR: &str = "supervisor.json";
    /// The recorded status.
    pub const STATUS: &str = "status.json";
    /// Room taken when the run is accepted, where the supervisor records the
    /// end if the disk is full by then (see [`super::END_ROOM`]).
    pub const END: &str = "end.json";
    /// The cancel marker.
    pub const CANCEL: &str = "cancel";
    /// The release marker of a held run (gang start).
    pub const RELEASE: &str = "release";
    /// The data inputs (`MOOR_INPUTS_DIR`).
    pub const INPUTS: &str = "inputs";
    /// The log.
    pub const LOG: &str = "log";
    /// The outputs directory.
    pub const OUTPUTS: &str = "outputs";
}

/// A run's recorded status: `status.json`, or the end kept in the reserved
/// `end.json` when the disk was full as the run ended.
fn recorded_status(dir: &Path) -> Status {
    let status: Status = read_json(&dir.join(files::STATUS)).unwrap_or_default();
    if status.state.is_some_and(|s| s.is_final()) {
        return status;
    }
    match read_json::<Status>(&dir.join(files::END)) {
        Ok(end) if end.state.is_some_and(|s| s.is_final()) => end,
        _ => status,
    }
}

/// Bytes reserved in [`files::END`].
pub const END_ROOM: usize = 4096;

impl Runs {
    /// Runs under `root` (created 0700 on first use).
    pub fn new(root: PathBuf) -> Runs {
        Runs {
            root,
            login_path: std::sync::Arc::default(),
        }
    }

    /// `~/.moor/runs`.
    pub fn default_root() -> PathBuf {
        home().join(".moor/runs")
    }

    /// The login shell's PATH, cached for a minute.
    fn login_path(&self) -> Option<String> {
        let mut cached = self.login_path.lock().expect("login path lock");
        match &*cached {
            Some((at, path)) if at.elapsed() < Duration::from_secs(60) => path.clone(),
            _ => {
                let path = crate::runs::login_env::login_path();
                *cached = Some((Instant::now(), path.clone()));
                path
            }
        }
    }

    /// Where the runs are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A run's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Accepts a run and starts its supervisor (`exe supervise DIR`), which
    /// outlives this process. Returns the run as it stands.
    pub fn start(&self, exe: &Path, spec: RunSpec, workdir: PathBuf) -> io::Result<RunInfo> {
        self.start_with(exe, spec, |_| Ok(workdir))
    }

    /// Like [`Runs::start`], with the working directory made by `prepare`
    /// inside the new run directory (e.g. a snapshot extracted there).
    pub fn start_with(
        &self,
        exe: &Path,
        spec: RunSpec,
        prepare: impl FnOnce(&Path) -> io::Result<PathBuf>,
    ) -> io::Result<RunInfo> {
        if spec.command.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        }
        create_private_dir(&self.root)?;
        let id = new_run_id();
        let dir = self.dir(&id);
        create_private_dir(&dir)?;
        // A run that cannot be set up (a full disk) leaves nothing behind.
        let set_up = (|| {
            create_private_dir(&dir.join(files::OUTPUTS))?;
            sys::reserve(&dir.join(files::END), END_ROOM)?;
            let workdir = prepare(&dir)?;
            let stored = StoredSpec {
                spec,
                workdir,
                created_at: moor_proto::time::now(),
                boot_id: boot_id(),
            };
            write_json_atomic(&dir.join(files::SPEC), &stored)
        })();
        if let Err(e) = set_up {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        // Its own process group, stdio away from ours: the supervisor does
        // not die with the SSH session or the daemon that started it.
        let mut supervise = Command::new(exe);
        if let Some(path) = self.login_path() {
            supervise.env(crate::runs::login_env::LOGIN_PATH_VAR, path);
        }
        let child = supervise
            .arg("supervise")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .inspect_err(|_| {
                let _ = fs::remove_dir_all(&dir);
            })?;
        // Recorded here too, at once: however long the supervisor takes to
        // start on a loaded host, the run is never taken for lost meanwhile
        // (its pid and start time are the supervisor's from the fork on).
        let pid = child.id();
        // Whoever started it reaps it when it ends: a long-lived daemon
        // must not collect a zombie per run.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        if let Some(start) = process_start(pid) {
            let supervisor = Supervisor {
                pid,
                start,
                boot_id: boot_id(),
            };
            let _ = write_json_atomic(&dir.join(files::SUPERVISOR), &supervisor);
        }
        self.info(&id)
    }

    /// Removes run folders whose start never finished (no spec written)
    /// and that are older than `age`: what a daemon killed mid-start left.
    pub fn sweep_unstarted(&self, age: Duration) -> usize {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let old = sys::changed_ago(&entry).is_some_and(|ago| ago > age);
            if moor_proto::is_run_id(&name.to_string_lossy())
                && old
                && !path.join(files::SPEC).exists()
            {
                removed += usize::from(fs::remove_dir_all(&path).is_ok());
            }
        }
        removed
    }

    /// Removes finished runs that ended more than `older_than` ago (all
    /// finished ones without it), keeping the `keep` newest finished runs
    /// whatever their age, and the runs in `kept` (endpoints' runs).
    /// Returns the ids removed and the bytes freed.
    pub fn prune(
        &self,
        older_than: Option<Duration>,
        keep: usize,
        kept: &std::collections::HashSet<String>,
    ) -> io::Result<(Vec<String>, u64)> {
        let now = moor_proto::time::parse(&moor_proto::time::now()).unwrap_or(0);
        let finished = self.list()?.into_iter().filter(|r| r.state.is_final());
        let mut removed = Vec::new();
        let mut freed = 0;
        for run in finished.skip(keep).filter(|r| !kept.contains(&r.id)) {
            let ended = run
                .ended_at
                .as_deref()
                .or(Some(run.created_at.as_str()))
                .and_then(moor_proto::time::parse)
                .unwrap_or(now);
            let old_enough =
                older_than.is_none_or(|age| now.saturating_sub(ended) >= age.as_secs());
            if !old_enough {
                continue;
            }
            let dir = self.dir(&run.id);
            let bytes = sys::tree_bytes(&dir);
            if fs::remove_dir_all(&dir).is_ok() {
                freed += bytes;
                removed.push(run.id);
            }
        }
        Ok((removed, freed))
    }

    /// Every run, newest first.
    pub fn list(&self) -> io::Result<Vec<RunInfo>> {
        let mut runs = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(runs),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Ok(info) = self.info(&name) {
                runs.push(info);
            }
        }
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(runs)
    }

    /// The snapshots the runs on disk refer to: their sources and their
    /// data inputs.
    pub fn snapshots_in_use(&self) -> io::Result<std::collections::HashSet<String>> {
        let mut used = std::collections::HashSet::new();
        for run in self.list()? {
            if let Ok(stored) = read_json::<StoredSpec>(&self.dir(&run.id).join(files::SPEC)) {
                used.extend(stored.spec.inputs.into_values());
            }
            used.insert(run.snapshot);
        }
        Ok(used)
    }

    /// One run, its state read from its files.
    pub fn info(&self, id: &str) -> io::Result<RunInfo> {
        if !moor_proto::is_run_id(id) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no run {id:?}"),
            ));
        }
        let dir = self.dir(id);
        let stored: StoredSpec = read_json(&dir.join(files::SPEC))?;
        let mut status = recorded_status(&dir);
        let state = match status.state {
            Some(state) if state.is_final() => state,
            _ => {
                let alive = read_json::<Supervisor>(&dir.join(files::SUPERVISOR))
                    .ok()
                    .is_some_and(|s| supervisor_alive(&s));
                // A supervisor records the end before it exits: one seen gone
                // may have ended since the status was read. Read it again.
                if !alive {
                    status = recorded_status(&dir);
                }
                match (alive, status.state) {
                    (_, Some(state)) if state.is_final() => state,
                    (true, Some(state)) => state,
                    (true, None) => RunState::Queued,
                    // Started (or never started) and the supervisor is gone
                    // without a final status: a reboot, or it was killed.
                    (false, None)
                        if !dir.join(files::SUPERVISOR).exists() && young(&dir, &stored) =>
                    {
                        RunState::Queued
                    }
                    (false, _) => RunState::Lost,
                }
            }
        };
        let log_bytes = fs::metadata(dir.join(files::LOG))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(RunInfo {
            id: id.to_owned(),
            name: stored.spec.name,
            state,
            exit_code: status.exit_code,
            signal: status.signal,
            command: stored.spec.command,
            snapshot: stored.spec.snapshot,
            environment: stored.spec.environment,
            created_at: stored.created_at,
            started_at: status.started_at,
            ended_at: status.ended_at,
            log_bytes,
            yarn_application: stored
                .spec
                .spark
                .as_ref()
                .filter(|s| s.on_yarn())
                .and_then(|_| crate::runs::spark::application_id(&dir.join(files::LOG))),
            env_names: stored.spec.env.keys().cloned().collect(),
            spark: stored.spec.spark,
            metrics: sys::read_json(&dir.join(moor_proto::tracking::LATEST_FILE))
                .unwrap_or_default(),
            error: status.error.or_else(|| {
                (state == RunState::Lost).then(|| {
                    "its supervisor ended without recording how the run ended (the host restarted, or the supervisor was killed)".to_owned()
                })
            }),
        })
    }

    /// Lets a held run's process start (gang start): the release marker its
    /// supervisor waits for. A run that ended is left as it is.
    pub fn release(&self, id: &str) -> io::Result<RunInfo> {
        let dir = self.dir(id);
        let info = self.info(id)?;
        if !info.state.is_final() {
            sys::write_atomic(&dir.join(files::RELEASE), b"")?;
        }
        Ok(info)
    }

    /// Cancels a run: marks it (with the grace period), sends SIGTERM to
    /// every process of the run (its supervisor's descendants, however they
    /// detached), and SIGKILL to those still there after `grace`. A run not
    /// started yet never starts (a held one included); one starting right
    /// now is stopped by its supervisor. Returns the final run.
    pub fn cancel(&self, id: &str, grace: Duration) -> io::Result<RunInfo> {
        let dir = self.dir(id);
        let info = self.info(id)?;
        if info.state.is_final() {
            return Ok(info);
        }
        fs::write(dir.join(files::CANCEL), grace.as_secs().to_string())?;
        // A Spark job on YARN is killed there first: in cluster mode it
        // outlives spark-submit. The outcome goes to the run's log.
        if let Some(app) = &info.yarn_application {
            let outcome = match crate::runs::spark::kill_application(app, Duration::from_secs(20)) {
                Ok(()) => format!("moor: killed YARN application {app}\n"),
                Err(e) => format!("moor: could not kill YARN application {app}: {e}\n"),
            };
            let _ = fs::OpenOptions::new()
                .append(true)
                .open(dir.join(files::LOG))
                .and_then(|mut log| io::Write::write_all(&mut log, outcome.as_bytes()));
        }
        let Some(supervisor) = read_json::<Supervisor>(&dir.join(files::SUPERVISOR))
            .ok()
            .filter(supervisor_alive)
        else {
            // Not started yet: the supervisor sees the marker and never starts it.
            return self.wait_final(id, grace + Duration::from_secs(5));
        };
        sys::signal_descendants(supervisor.pid, Signal::SIGTERM);
        let info = self.wait_final(id, grace)?;
        if info.state.is_final() {
            return Ok(info);
        }
        sys::signal_descendants(supervisor.pid, Signal::SIGKILL);
        self.wait_final(id, Duration::from_secs(5))
    }

    /// Polls until the run is final or `limit` passes.
    pub fn wait_final(&self, id: &str, limit: Duration) -> io::Result<RunInfo> {
        let started = Instant::now();
        loop {
            let info = self.info(id)?;
            if info.state.is_final() || started.elapsed() >= limit {
                return Ok(info);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A line from moor in the run's log (best effort: the disk may be full).
pub fn note(dir: &Path, line: &str) {
    tracing::warn!("{}: {line}", dir.display());
    let _ = fs::OpenOptions::new()
        .append(true)
        .open(dir.join(files::LOG))
        .and_then(|mut log| io::Write::write_all(&mut log, format!("moor: {line}\n").as_bytes()));
}

/// A run accepted moments ago (in this boot) whose supervisor has not yet
/// written its identity is queued, not lost.
fn young(dir: &Path, stored: &StoredSpec) -> bool {
    let age = fs::metadata(dir.join(files::SPEC))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    stored.boot_id == boot_id() && age.is_some_and(|a| a < Duration::from_secs(10))
}

/// Whether `s` is a live process in this boot (not a reuse of its pid).
pub fn supervisor_alive(s: &Supervisor) -> bool {
    s.boot_id == boot_id() && process_start(s.pid).is_some_and(|start| start == s.start)
}

/// A new run id: time-ordered, then random (`20261127T183000-1a2b3c4d`).
fn new_run_id() -> String {
    let now = moor_proto::time::now().replace(['-', ':'], "");
    format!("{}-{}", now.trim_end_matches('Z'), random_hex(4))
}
