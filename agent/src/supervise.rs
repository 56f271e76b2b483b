//! `moor-agent supervise RUN_DIR`: the supervisor of one run, the parent of
//! its job. Started detached (own process group, no stdio) by whoever accepts
//! the run, it records its identity, starts the job with stdout and stderr
//! both on the run's log (one file description, so their order is kept, and
//! the job keeps logging even if the supervisor dies), waits for it, and
//! records the exit status atomically.

use std::fs;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

use moor_proto::RunState;

use moor_proto::env::EnvKind;

use crate::envs::{Envs, Ready};
use crate::error::{AgentError, Result};
use crate::runs::{files, Status, StoredSpec, Supervisor};
use crate::sys;

/// Supervises the run in `dir` to its end.
pub fn run(dir: &Path) -> Result<()> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    let me = std::process::id();
    sys::write_json_atomic(
        &dir.join(files::SUPERVISOR),
        &Supervisor {
            pid: me,
            start: sys::process_start(me).unwrap_or_default(),
            boot_id: sys::boot_id(),
        },
    )?;
    let status_path = dir.join(files::STATUS);
    if dir.join(files::CANCEL).exists() {
        return finish(&status_path, Status::default(), RunState::Cancelled);
    }

    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(files::LOG))?
    };
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
                return finish(&status_path, status, RunState::Failed);
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
        (_, None) => stored.spec.command.clone(),
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
                    return finish(&status_path, status, RunState::Failed);
                }
            }
        }
    };
    let mut command = Command::new(&argv[0]);
    if stored.spec.spark.is_some() {
        if std::env::var_os("SPARK_HOME").is_none() {
            command.env("SPARK_HOME", crate::spark::spark_home(Path::new(&argv[0])));
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
    if let Some(prefix) = environment.as_ref().and_then(|r| r.prefix.as_ref()) {
        // conda and venv: the environment's interpreter and tools come first.
        let path = std::env::var_os("PATH").unwrap_or_default();
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
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // The job leads its own process group: cancel signals all of it.
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let status = Status {
                error: Some(format!("cannot start {:?}: {e}", stored.spec.command[0])),
                exit_code: Some(127),
                ..Status::default()
            };
            return finish(&status_path, status, RunState::Failed);
        }
    };
    let mut status = Status {
        state: Some(RunState::Running),
        pid: Some(child.id()),
        started_at: Some(moor_proto::time::now()),
        ..Status::default()
    };
    sys::write_json_atomic(&status_path, &status)?;
    let exit = child.wait()?;
    status.exit_code = exit.code();
    status.signal = exit.signal();
    let state = if dir.join(files::CANCEL).exists() {
        RunState::Cancelled
    } else if exit.success() {
        RunState::Succeeded
    } else {
        RunState::Failed
    };
    finish(&status_path, status, state)
}

/// The spark-submit command of a Spark run, or why there is none.
fn spark_argv(
    spark: &moor_proto::message::SparkSpec,
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
    let submit = crate::spark::find_submit().ok_or_else(|| {
        AgentError::not_found(
            "no spark-submit on this host (PATH, /usr/hdp/current/spark2-client, $SPARK_HOME)",
        )
        .with_fix("attach the cluster's head node, or install Spark and put spark-submit on PATH")
    })?;
    crate::spark::submit_argv(
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

/// `container-run RUN_DIR`: the job of a run in a Docker environment.
pub fn container_run(dir: &Path) -> Result<i32> {
    let stored: StoredSpec =
        sys::read_json(&dir.join(files::SPEC)).map_err(|e| format!("spec.json: {e}"))?;
    let hash = stored.spec.environment.clone().unwrap_or_default();
    let ready = Envs::new(Envs::default_root())
        .ready(&hash)
        .ok_or_else(|| AgentError::not_found(format!("environment {hash} is not ready")))?;
    let image = ready.image.ok_or("the environment has no image")?;
    let run_id = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut env: Vec<String> = stored
        .spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.push(format!("MOOR_RUN_ID={run_id}"));
    env.push("MOOR_OUTPUT_DIR=/moor/outputs".into());
    let outputs = dir.join(files::OUTPUTS);
    let code = crate::docker::block_on(async {
        let docker = crate::docker::connect()?;
        crate::docker::run_container(
            &docker,
            crate::docker::ContainerRun {
                image: &image,
                command: &stored.spec.command,
                env,
                run_id: &run_id,
                src: &stored.workdir,
                outputs: &outputs,
                gpus: Path::new("/dev/nvidia0").exists(),
            },
        )
        .await
    })?;
    Ok(i32::try_from(code).unwrap_or(1))
}

fn finish(path: &Path, mut status: Status, state: RunState) -> Result<()> {
    status.state = Some(state);
    status.ended_at = Some(moor_proto::time::now());
    Ok(sys::write_json_atomic(path, &status)?)
}
