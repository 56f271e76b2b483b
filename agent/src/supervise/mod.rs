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

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use moor_proto::RunState;

use moor_proto::env::EnvKind;

use crate::envs::{Envs, Ready};
use crate::error::{AgentError, Result};
use crate::runs::{files, note, Status, StoredSpec, Supervisor};
use crate::sys;

/// Supervises the run in `dir` to its end.
pub fn run(dir: &Path) -> Result<()> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
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
    let status_path = dir.join(files::STATUS);
    if stored.spec.hold {
        if let Err(why) = wait_for_release(dir) {
            let status = Status {
                error: Some(why),
                exit_code: Some(127),
                ..Status::default()
            };
            return finish(dir, status, RunState::Failed);
        }
    }
    if dir.join(files::CANCEL).exists() {
        return finish(dir, Status::default(), RunState::Cancelled);
    }
    // A node of a job: the nodes watch one another from here on.
    if let Some(link) = &stored.spec.link {
        crate::job::link::start(dir, link);
    }
    let gpus = match stored.spec.gpus {
        0 => None,
        want => {
            let runs = crate::runs::Runs::new(dir.parent().unwrap_or(dir).to_owned());
            match crate::runs::gpus::acquire(&runs, dir, want) {
                Ok(Some(gpus)) => Some(gpus),
                Ok(None) => return finish(dir, Status::default(), RunState::Cancelled),
                Err(why) => {
                    let status = Status {
                        error: Some(why),
                        exit_code: Some(127),
                        ..Status::default()
                    };
                    return finish(dir, status, RunState::Failed);
                }
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
        if let Err(why) = placed {
            let status = Status {
                error: Some(why),
                exit_code: Some(127),
                ..Status::default()
            };
            return finish(dir, status, RunState::Failed);
        }
    }
    let run_id = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let environment = match &stored.spec.environment {
        Some(hash) => match Envs::new(Envs::default_root()).ready(hash) {
            Some(ready) => Some(ready),
            None => {
                let status = Status {
                    error: Some(format!("environment {hash} is not ready on this host")),
                    exit_code: Some(127),
                    ..Status::default()
                };
                return finish(dir, status, RunState::Failed);
            }
        },
        None => None,
    };
    // Docker environments: the job is a container, driven by `container-run`.
    let argv: Vec<String> = match (&environment, &stored.spec.spark) {
        (Some(ready), None) if ready.kind == EnvKind::Docker => vec![
            std::env::current_exe()?.display().to_string(),
            "container-run".into(),
            dir.display().to_string(),
        ],
        (_, None) if stored.spec.mpi.is_some() => {
            let exe = std::env::current_exe()?.display().to_string();
            let dir = dir.display().to_string();
            match &stored.spec.mpi {
                Some(moor_proto::MpiRole::Peer { .. }) => vec![exe, "mpi-peer".into(), dir],
                _ => [exe, "mpi-launch".into(), dir, "--".into()]
                    .into_iter()
                    .chain(stored.spec.command.iter().cloned())
                    .collect(),
            }
        }
        (_, None) => match stored.spec.processes {
            // Several processes here: the launcher starts and watches them.
            Some(p) if p.count > 1 => [
                std::env::current_exe()?.display().to_string(),
                "launch".into(),
                dir.display().to_string(),
                "--".into(),
            ]
            .into_iter()
            .chain(stored.spec.command.iter().cloned())
            .collect(),
            _ => stored.spec.command.clone(),
        },
        (_, Some(spark)) => {
            let name = stored.spec.name.clone().unwrap_or(format!("moor-{run_id}"));
            match spark_argv(spark, &name, &stored, dir, environment.as_ref()) {
                Ok(argv) => argv,
                Err(error) => {
                    let status = Status {
                        error: Some(error.to_string()),
                        exit_code: Some(127),
                        ..Status::default()
                    };
                    let _ = io::Write::write_all(&mut &log, format!("moor: {error}\n").as_bytes());
                    return finish(dir, status, RunState::Failed);
                }
            }
        }
    };
    // An endpoint's server: the keeper runs it and restarts it. The
    // command goes in a file, not on the keeper's command line: a `pkill -f`
    // aimed at the server must not take its keeper.
    let argv: Vec<String> = match &stored.spec.serving {
        Some(_) => {
            sys::write_json_atomic(&dir.join(crate::endpoints::keeper::COMMAND), &argv)?;
            vec![
                std::env::current_exe()?.display().to_string(),
                "keep-endpoint".into(),
                dir.display().to_string(),
            ]
        }
        None => argv,
    };
    let mut command = Command::new(&argv[0]);
    if stored.spec.spark.is_some() {
        if std::env::var_os("SPARK_HOME").is_none() {
            command.env(
                "SPARK_HOME",
                crate::runs::spark::spark_home(Path::new(&argv[0])),
            );
        }
        // The environment's interpreter runs the driver and the (local)
        // executors' Python workers.
        if let Some(prefix) = environment.as_ref().and_then(|r| r.prefix.as_ref()) {
            let python = prefix.join("bin/python");
            command
                .env("PYSPARK_PYTHON", &python)
                .env("PYSPARK_DRIVER_PYTHON", &python);
        }
    }
    // What `ssh host cmd` users expect: /etc/environment, the login PATH.
    let login = crate::runs::login_env::variables();
    let login_path = login
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v));
    command
        .envs(login.iter().map(|(k, v)| (k, v)))
        .env_remove(crate::runs::login_env::LOGIN_PATH_VAR);
    // The run's MLflow endpoint, unless the run (or the host's login
    // environment) names its own server.
    let own_server = |k: &str| k == "MLFLOW_TRACKING_URI";
    let tracking = if stored.spec.env.keys().any(|k| own_server(k))
        || login.iter().any(|(k, _)| own_server(k))
    {
        None
    } else {
        // A container sees the run's outputs at /moor/outputs.
        let in_container = environment
            .as_ref()
            .is_some_and(|ready| ready.kind == EnvKind::Docker && stored.spec.spark.is_none());
        crate::tracking::start(
            dir,
            &run_id,
            stored.spec.experiment.as_deref(),
            in_container.then_some(Path::new(crate::envs::docker::OUTPUTS)),
        )
        .inspect_err(|e| {
            note_in_log(
                &log,
                &format!("no MLflow tracking endpoint for this run: {e}"),
            )
        })
        .ok()
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
        command
            .env(
                "PATH",
                std::env::join_paths(paths).map_err(io::Error::other)?,
            )
            .env(
                if ready_is_venv(environment.as_ref()) {
                    "VIRTUAL_ENV"
                } else {
                    "CONDA_PREFIX"
                },
                prefix,
            );
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
    let job = match command.spawn() {
        // Waited for below with waitpid, which also reaps adopted orphans.
        Ok(child) => child.id(),
        Err(e) => {
            let status = Status {
                error: Some(format!("cannot start {:?}: {e}", stored.spec.command[0])),
                exit_code: Some(127),
                ..Status::default()
            };
            return finish(dir, status, RunState::Failed);
        }
    };
    let mut status = Status {
        state: Some(RunState::Running),
        pid: Some(job),
        started_at: Some(moor_proto::time::now()),
        ..Status::default()
    };
    // Not fatal on a full disk: the job runs on, and its end is recorded
    // (in the reserved room if need be).
    if let Err(e) = sys::write_json_atomic(&status_path, &status) {
        note(dir, &format!("could not record that the run started: {e}"));
    }
    // A cancel that came while the job was being started may have found no
    // pid to signal: it is seen here.
    if dir.join(files::CANCEL).exists() {
        sys::signal_descendants(me, Signal::SIGTERM);
    }
    let (exit_code, signal) = wait_for(job)?;
    if let Some(endpoint) = &tracking {
        endpoint.finish();
    }
    status.exit_code = exit_code;
    status.signal = signal;
    let state = if dir.join(files::CANCEL).exists() {
        // Nothing of a cancelled run keeps running.
        stop_descendants(cancel_grace(dir));
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

/// Waits for the job `pid` to end (reaping adopted orphans meanwhile);
/// returns its exit code or the signal that ended it.
fn wait_for(pid: u32) -> Result<(Option<i32>, Option<i32>)> {
    let job = Pid::from_raw(i32::try_from(pid).map_err(|_| AgentError::internal("pid"))?);
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == job => return Ok((Some(code), None)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == job => return Ok((None, Some(sig as i32))),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(AgentError::internal(format!("waiting for the job: {e}"))),
        }
    }
}

/// Reaps every child that has ended, without waiting.
fn reap_ended() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Stops every process left of the run: SIGTERM, then SIGKILL to what is
/// still there after `grace`.
fn stop_descendants(grace: Duration) {
    let me = std::process::id();
    if sys::signal_descendants(me, Signal::SIGTERM) == 0 {
        return;
    }
    let gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            reap_ended();
            if sys::descendants(me).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if !gone(grace) {
        sys::signal_descendants(me, Signal::SIGKILL);
        gone(Duration::from_secs(5));
    }
}

/// The grace period a cancel asked for (the marker's content), 10 s if unreadable.
fn cancel_grace(dir: &Path) -> Duration {
    fs::read_to_string(dir.join(files::CANCEL))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(10))
}

/// The spark-submit command of a Spark run, or why there is none.
fn spark_argv(
    spark: &moor_proto::SparkSpec,
    name: &str,
    stored: &StoredSpec,
    dir: &Path,
    environment: Option<&Ready>,
) -> Result<Vec<String>> {
    if environment.is_some_and(|r| r.kind == EnvKind::Docker) {
        return Err(AgentError::usage(
            "a Spark run cannot use a Docker environment (spark-submit runs on the host)",
        )
        .with_fix("use a conda or pip environment, or none"));
    }
    let submit = crate::runs::spark::find_submit().ok_or_else(|| {
        AgentError::not_found(
            "no spark-submit on this host (PATH, /usr/hdp/current/spark2-client, $SPARK_HOME)",
        )
        .with_fix("attach the cluster's head node, or install Spark and put spark-submit on PATH")
    })?;
    crate::runs::spark::submit_argv(
        &submit,
        spark,
        name,
        &stored.spec.command,
        &stored.workdir,
        dir,
    )
    .map_err(AgentError::from)
}

fn ready_is_venv(ready: Option<&Ready>) -> bool {
    ready.is_some_and(|r| r.kind == EnvKind::Venv)
}

/// Records how the run ended: `status.json`, written atomically; when that
/// fails (a full disk), the room reserved in `end.json` when the run was
/// accepted, rewritten in place, and a line in the run's log saying so.
/// Then the job's other nodes hear how this one ended (node 0 waits for
/// theirs).
fn finish(dir: &Path, status: Status, state: RunState) -> Result<()> {
    let detail = end_detail(&status, state);
    let recorded = record_end(dir, status, state);
    crate::job::link::ended(state == RunState::Succeeded, &detail);
    recorded
}

/// Writes `status.json` (or the reserved `end.json`).
fn record_end(dir: &Path, mut status: Status, state: RunState) -> Result<()> {
    status.state = Some(state);
    status.ended_at = Some(moor_proto::time::now());
    let Err(e) = sys::write_json_atomic(&dir.join(files::STATUS), &status) else {
        return Ok(());
    };
    note(
        dir,
        &format!("could not write status.json ({e}); the end is kept in end.json"),
    );
    if let Some(error) = &mut status.error {
        *error = error.chars().take(1024).collect();
    }
    let bytes = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
    sys::rewrite_reserved(&dir.join(files::END), &bytes)
        .map_err(|e| AgentError::from(e).context("recording the run's end"))
}

/// How a run ended, in a few words (`exit 3`, `signal 9`, `cancelled`).
fn end_detail(status: &Status, state: RunState) -> String {
    match (state, status.exit_code, status.signal) {
        (RunState::Cancelled, ..) => "cancelled".into(),
        (_, _, Some(signal)) => format!("signal {signal}"),
        (_, Some(code), None) => format!("exit {code}"),
        _ => format!("{state:?}").to_lowercase(),
    }
}
