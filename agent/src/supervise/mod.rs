//! `moor-agent supervise RUN_DIR`: the supervisor of one run, the parent of
//! its job. Started detached (own process group, no stdio) by whoever accepts
//! the run, it records its identity, starts the job with stdout and stderr
//! both on the run's log (one file description, so their order is kept, and
//! the job keeps logging even if the supervisor dies), waits for it, and
//! records the exit status atomically.
//!
//! The supervisor is the job's child subreaper: a process the job starts
//! and abandons (a double fork, a `setsid` daemon) is adopted by it rather
//! than by init, so every process of the run stays its descendant. A cancel
//! (the `cancel` marker, holding the grace period) stops all of them, also
//! ones that ignore SIGTERM, before the run is recorded as cancelled; and a
//! cancel that lands while the job is being started is seen right after.

pub mod container;
mod end;
mod kind;

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moor_proto::env::EnvKind;
use moor_proto::RunState;
use nix::sys::signal::Signal;

use crate::envs::{Envs, Ready};
use crate::error::{AgentError, Result};
use crate::runs::{files, note, Status, StoredSpec, Supervisor};
use crate::sys;
use crate::tracking::Endpoint;
use end::finish;
use kind::RunKind;

/// Why a run ended before its job started: the one failure path of every
/// step before the spawn.
enum Stop {
    /// Recorded as failed (exit 127) with this reason.
    Failed(String),
    /// Cancelled before its job started.
    Cancelled,
    /// The supervisor itself cannot go on (its run folder is unwritable).
    Error(AgentError),
}

impl From<AgentError> for Stop {
    fn from(e: AgentError) -> Stop {
        Stop::Error(e)
    }
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Error(e.into())
    }
}

/// What the steps before the spawn made ready.
struct Prepared {
    /// The run's log (stdout and stderr of the job).
    log: fs::File,
    /// The run's id (its folder's name).
    run_id: String,
    /// The GPUs it was given.
    gpus: Option<Vec<u32>>,
    /// Its environment, ready on this host.
    environment: Option<Ready>,
}

/// A job that started, and what the supervisor keeps for its end.
struct Started {
    pid: u32,
    status: Status,
    tracking: Option<Endpoint>,
}

/// Supervises the run in `dir` to its end: prepare, the command line of its
/// kind, spawn, wait, finish.
pub fn run(dir: &Path) -> Result<()> {
    let ended = run_to_end(dir);
    // An MPI peer's job key goes, also when `mpi-peer` was killed first.
    crate::job::mpi::after_run(dir);
    ended
}

/// The run's steps, and its end recorded.
fn run_to_end(dir: &Path) -> Result<()> {
    match start(dir) {
        Ok(started) => wait_and_finish(dir, started),
        Err(Stop::Failed(why)) => {
            let status = Status {
                error: Some(why),
                exit_code: Some(127),
                ..Status::default()
            };
            finish(dir, status, RunState::Failed)
        }
        Err(Stop::Cancelled) => finish(dir, Status::default(), RunState::Cancelled),
        Err(Stop::Error(e)) => Err(e),
    }
}

/// Every step up to the job's spawn.
fn start(dir: &Path) -> std::result::Result<Started, Stop> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    register(dir)?;
    let prepared = prepare(dir, &stored)?;
    let environment = prepared.environment.as_ref();
    let argv = RunKind::of(&stored, environment)
        .argv(dir, &stored, &prepared.run_id, environment)
        .map_err(|error| {
            note_in_log(&prepared.log, &error.to_string());
            Stop::Failed(error.to_string())
        })?;
    let argv = kind::kept(dir, &stored, argv)?;
    let (command, tracking) = command(dir, &stored, prepared, &argv)?;
    spawn(dir, &stored, command, tracking)
}

/// Records who supervises the run, and adopts the job's orphans.
fn register(dir: &Path) -> Result<()> {
    let me = std::process::id();
    // Orphans of the job come to us, not to init (Linux 3.4+; without it a
    // double-forked process can escape a cancel, nothing worse).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("cannot become the run's subreaper: {e}");
    }
    sys::write_json_atomic(
        &dir.join(files::SUPERVISOR),
        &Supervisor {
            pid: me,
            start: sys::process_start(me).unwrap_or_default(),
            boot_id: sys::boot_id(),
        },
    )?;
    Ok(())
}

/// Waits for a held run's release, joins the job's link, takes GPUs, opens
/// the log, downloads URL inputs and finds the environment ready.
fn prepare(dir: &Path, stored: &StoredSpec) -> std::result::Result<Prepared, Stop> {
    if stored.spec.hold {
        wait_for_release(dir).map_err(Stop::Failed)?;
    }
    if dir.join(files::CANCEL).exists() {
        return Err(Stop::Cancelled);
    }
    // A node of a job: the nodes watch one another from here on.
    if let Some(link) = &stored.spec.link {
        crate::job::link::start(dir, link);
    }
    let gpus = match stored.spec.gpus {
        0 => None,
        want => {
            let runs = crate::runs::Runs::new(dir.parent().unwrap_or(dir).to_owned());
            match crate::runs::gpus::acquire(&runs, dir, want).map_err(Stop::Failed)? {
                Some(gpus) => Some(gpus),
                None => return Err(Stop::Cancelled),
            }
        }
    };
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(files::LOG))?
    };
    // URL inputs: downloaded (once per URL on this host) before the job.
    if !stored.spec.url_inputs.is_empty() {
        let placed = crate::runs::url_inputs::place(dir, &stored.spec.url_inputs);
        let lines = match &placed {
            Ok(lines) => lines.join(""),
            Err(why) => format!("moor: {why}\n"),
        };
        let _ = io::Write::write_all(&mut &log, lines.as_bytes());
        placed.map_err(Stop::Failed)?;
    }
    let environment = match &stored.spec.environment {
        Some(hash) => Some(Envs::new(Envs::default_root()).ready(hash).ok_or_else(|| {
            Stop::Failed(format!("environment {hash} is not ready on this host"))
        })?),
        None => None,
    };
    Ok(Prepared {
        log,
        run_id: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        gpus,
        environment,
    })
}

/// The job's command: `argv` with what `ssh host cmd` users expect (the
/// login `PATH`, /etc/environment), the run's MLflow endpoint, the
/// environment's interpreter first, the run's variables, the log as stdout
/// and stderr, and its own process group.
fn command(
    dir: &Path,
    stored: &StoredSpec,
    prepared: Prepared,
    argv: &[String],
) -> Result<(Command, Option<Endpoint>)> {
    let Prepared {
        log,
        run_id,
        gpus,
        environment,
    } = prepared;
    let mut command = Command::new(&argv[0]);
    if stored.spec.spark.is_some() {
        spark_env(&mut command, &argv[0], environment.as_ref());
    }
    let login = crate::runs::login_env::variables();
    let login_path = login
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v));
    command
        .envs(login.iter().map(|(k, v)| (k, v)))
        .env_remove(crate::runs::login_env::LOGIN_PATH_VAR);
    let own_server = |k: &str| k == "MLFLOW_TRACKING_URI";
    let tracking = if stored.spec.env.keys().any(|k| own_server(k))
        || login.iter().any(|(k, _)| own_server(k))
    {
        None // the run (or the host) names its own MLflow server
    } else {
        tracking(dir, stored, &run_id, environment.as_ref(), &log)
    };
    if let Some(endpoint) = &tracking {
        command.envs(endpoint.env());
    }
    if let Some(prefix) = environment.as_ref().and_then(|r| r.prefix.as_ref()) {
        // conda and venv: the environment's interpreter and tools come first.
        let path = login_path
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let paths = std::iter::once(prefix.join("bin")).chain(std::env::split_paths(&path));
        let var = if ready_is_venv(environment.as_ref()) {
            "VIRTUAL_ENV"
        } else {
            "CONDA_PREFIX"
        };
        command
            .env(
                "PATH",
                std::env::join_paths(paths).map_err(io::Error::other)?,
            )
            .env(var, prefix);
    }
    command
        .args(&argv[1..])
        .current_dir(&stored.workdir)
        .envs(&stored.spec.env)
        .env("MOOR_RUN_ID", &run_id)
        .env("MOOR_OUTPUT_DIR", dir.join(files::OUTPUTS))
        .env("MOOR_INPUTS_DIR", dir.join(files::INPUTS))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // The job leads its own process group: cancel signals all of it.
        .process_group(0);
    if let Some(gpus) = &gpus {
        let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
        command.env("CUDA_VISIBLE_DEVICES", list.join(","));
    }
    if let Some(p) = stored.spec.processes.filter(|p| p.count == 1) {
        let token = tracking.as_ref().map(|t| t.token());
        command.envs(crate::job::launch::rank_variables(&p, 0, token));
    }
    Ok((command, tracking))
}

/// A Spark run's `SPARK_HOME`, and the environment's interpreter for the
/// driver and the (local) executors' Python workers.
fn spark_env(command: &mut Command, submit: &str, environment: Option<&Ready>) {
    if std::env::var_os("SPARK_HOME").is_none() {
        command.env(
            "SPARK_HOME",
            crate::runs::spark::spark_home(Path::new(submit)),
        );
    }
    if let Some(prefix) = environment.and_then(|r| r.prefix.as_ref()) {
        let python = prefix.join("bin/python");
        command
            .env("PYSPARK_PYTHON", &python)
            .env("PYSPARK_DRIVER_PYTHON", &python);
    }
}

/// The run's MLflow endpoint (a container sees the run's outputs at
/// /moor/outputs), or none with a line in the log saying why.
fn tracking(
    dir: &Path,
    stored: &StoredSpec,
    run_id: &str,
    environment: Option<&Ready>,
    log: &fs::File,
) -> Option<Endpoint> {
    let in_container = environment
        .is_some_and(|ready| ready.kind == EnvKind::Docker && stored.spec.spark.is_none());
    crate::tracking::start(
        dir,
        run_id,
        stored.spec.experiment.as_deref(),
        in_container.then_some(Path::new(crate::envs::docker::OUTPUTS)),
    )
    .inspect_err(|e| {
        note_in_log(
            log,
            &format!("no MLflow tracking endpoint for this run: {e}"),
        )
    })
    .ok()
}

/// Starts the job and records that it runs; a cancel that came while it
/// was being started (and found no pid to signal) is seen here.
fn spawn(
    dir: &Path,
    stored: &StoredSpec,
    mut command: Command,
    tracking: Option<Endpoint>,
) -> std::result::Result<Started, Stop> {
    // Waited for with waitpid, which also reaps adopted orphans.
    let pid = command
        .spawn()
        .map_err(|e| Stop::Failed(format!("cannot start {:?}: {e}", stored.spec.command[0])))?
        .id();
    let status = Status {
        state: Some(RunState::Running),
        pid: Some(pid),
        started_at: Some(moor_proto::time::now()),
        ..Status::default()
    };
    // Not fatal on a full disk: the job runs on, and its end is recorded
    // (in the reserved room if need be).
    if let Err(e) = sys::write_json_atomic(&dir.join(files::STATUS), &status) {
        note(dir, &format!("could not record that the run started: {e}"));
    }
    if dir.join(files::CANCEL).exists() {
        sys::signal_descendants(std::process::id(), Signal::SIGTERM);
    }
    Ok(Started {
        pid,
        status,
        tracking,
    })
}

/// Waits for the job, stops what is left of a cancelled run, records the end.
fn wait_and_finish(dir: &Path, started: Started) -> Result<()> {
    let Started {
        pid,
        mut status,
        tracking,
    } = started;
    let (exit_code, signal) = end::wait_for(pid)?;
    if let Some(endpoint) = &tracking {
        endpoint.finish();
    }
    status.exit_code = exit_code;
    status.signal = signal;
    let state = if dir.join(files::CANCEL).exists() {
        // Nothing of a cancelled run keeps running.
        end::stop_descendants(end::cancel_grace(dir));
        RunState::Cancelled
    } else if exit_code == Some(0) {
        RunState::Succeeded
    } else {
        RunState::Failed
    };
    finish(dir, status, state)
}

/// A `moor:` line in the run's log.
fn note_in_log(log: &fs::File, line: &str) {
    let _ = io::Write::write_all(&mut &*log, format!("moor: {line}\n").as_bytes());
}

/// How long a held run waits for its release: the controller that started
/// the job releases every node within seconds, or cancels them.
const HOLD_LIMIT: Duration = Duration::from_secs(600);

/// A held run (gang start): waits until it is released or cancelled.
fn wait_for_release(dir: &Path) -> std::result::Result<(), String> {
    let deadline = Instant::now() + HOLD_LIMIT;
    while !dir.join(files::RELEASE).exists() && !dir.join(files::CANCEL).exists() {
        if Instant::now() >= deadline {
            return Err(format!(
                "the job's other nodes did not start within {} s (the controller that started it went away); nothing ran",
                HOLD_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn ready_is_venv(ready: Option<&Ready>) -> bool {
    ready.is_some_and(|r| r.kind == EnvKind::Venv)
}
