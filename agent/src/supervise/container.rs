//! `moor-agent container-run RUN_DIR`: the job of a run in a Docker
//! environment. It runs the command in a container of the environment's
//! image (through [`crate::envs::docker`]) with the run's variables, inputs and
//! output folders; with several processes per node, the command is the
//! agent's own launcher, copied into the container. The run's MLflow
//! endpoint is carried into the container ([`crate::tracking::relay`]).

use std::fs;
use std::path::Path;

use crate::envs::Envs;
use crate::error::{AgentError, Result};
use crate::runs::{files, StoredSpec};
use crate::sys;

/// Runs the job of the run in `dir` in its container; the exit code.
pub fn run(dir: &Path) -> Result<i32> {
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
    env.push("MOOR_INPUTS_DIR=/moor/inputs".into());
    if let Ok(gpus) = fs::read_to_string(dir.join(crate::runs::gpus::ASSIGNED)) {
        env.push(format!("CUDA_VISIBLE_DEVICES={gpus}"));
    }
    // Several processes: the agent's launcher starts them in the container.
    let launcher = std::env::current_exe()?;
    let mut command = stored.spec.command.clone();
    match stored.spec.processes {
        Some(p) if p.count > 1 => {
            command = [
                crate::envs::docker::LAUNCHER.to_owned(),
                "launch".into(),
                "--ranks".into(),
                crate::job::launch::ranks_arg(&p),
                "--".into(),
            ]
            .into_iter()
            .chain(command)
            .collect();
        }
        Some(p) => env.extend(
            crate::job::launch::rank_variables(&p, 0, None)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        ),
        None => {}
    }
    // The run's MLflow endpoint: its variables, and (unless the container
    // shares the host's network) the endpoint carried in, the command
    // started once it listens there.
    let host_network = stored.spec.processes.is_some();
    let tracking_port = tracking_variables(&mut env);
    let tracking_port = tracking_port.filter(|_| !host_network);
    if let Some(port) = tracking_port {
        command = [
            crate::envs::docker::LAUNCHER.to_owned(),
            "await-port".into(),
            port.to_string(),
            "--".into(),
        ]
        .into_iter()
        .chain(command)
        .collect();
    }
    let launches = command.first().map(String::as_str) == Some(crate::envs::docker::LAUNCHER);
    let outputs = dir.join(files::OUTPUTS);
    let inputs = dir.join(files::INPUTS);
    let code = crate::envs::docker::block_on(async {
        let docker = crate::envs::docker::connect()?;
        crate::envs::docker::run_container(
            &docker,
            crate::envs::docker::ContainerRun {
                image: &image,
                command: &command,
                env,
                run_id: &run_id,
                src: &stored.workdir,
                outputs: &outputs,
                inputs: inputs.is_dir().then_some(inputs.as_path()),
                output_folders: &stored.spec.outputs,
                host_network,
                gpus: Path::new("/dev/nvidia0").exists(),
                launcher: launches.then_some(launcher.as_path()),
                tracking_port,
            },
        )
        .await
    })?;
    Ok(i32::try_from(code).unwrap_or(1))
}

/// Adds the run's MLflow variables (the supervisor gave them to this
/// process) to the container's; the endpoint's port when it is moor's.
fn tracking_variables(env: &mut Vec<String>) -> Option<u16> {
    std::env::var_os(crate::tracking::TOKEN_VAR)?;
    for name in [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_NAME",
        crate::tracking::TOKEN_VAR,
    ] {
        if let Ok(value) = std::env::var(name) {
            env.push(format!("{name}={value}"));
        }
    }
    std::env::var("MLFLOW_TRACKING_URI")
        .ok()?
        .strip_prefix("http://127.0.0.1:")?
        .parse()
        .ok()
}
