//! The host's Docker engine, through its API (bollard over the Unix socket):
//! image builds for environments, and runs as containers. No docker CLI.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::Path;

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use moor_proto::archive::{unpack_within, PullReader};

use crate::error::{AgentError, Result};

/// Runs a future on a small runtime of its own (the agent is threaded, not async).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The engine at `DOCKER_HOST` or `/var/run/docker.sock`. A Unix socket is
/// tried first, so that "no engine" and "no access" are told apart (the
/// client library folds both into one connect error).
pub fn connect() -> Result<Docker> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let socket = match host.strip_prefix("unix://") {
        Some(path) => Some(path.to_owned()),
        None if host.is_empty() => Some("/var/run/docker.sock".to_owned()),
        None => None,
    };
    if let Some(socket) = socket {
        if let Err(e) = std::os::unix::net::UnixStream::connect(&socket) {
            return Err(match e.kind() {
                io::ErrorKind::PermissionDenied => no_access(&socket),
                _ => no_engine(&format!("{socket} ({e})")),
            });
        }
    }
    Docker::connect_with_local_defaults().map_err(|e| explain(&e))
}

fn no_access(socket: &str) -> AgentError {
    AgentError::internal(format!("no access to the Docker socket {socket}")).with_fix(
        "add the user to the docker group (sudo usermod -aG docker $USER) and log in again",
    )
}

fn no_engine(at: &str) -> AgentError {
    AgentError::internal(format!("no Docker engine answers at {at}"))
        .with_fix("install Docker and start it (systemctl start docker)")
}

/// What went wrong talking to the engine, with a fix when there is one.
pub fn explain(e: &DockerError) -> AgentError {
    let text = e.to_string();
    let socket = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "/var/run/docker.sock".into());
    let lower = text.to_ascii_lowercase();
    if lower.contains("permission denied") {
        no_access(&socket)
    } else if lower.contains("no such file")
        || lower.contains("socket not found")
        || lower.contains("connection refused")
    {
        no_engine(&socket)
    } else {
        AgentError::internal(format!("Docker engine: {text}"))
    }
}

/// Builds `tag` from a tar context (with a `Dockerfile`), printing the build
/// output to stdout. Any error in the build stream fails the build. (No
/// image label: the classic builder commits one more layer for it, seconds
/// on some storage drivers; the tag names the environment's hash.)
pub async fn build(
    docker: &Docker,
    tag: &str,
    context: Vec<u8>,
    build_args: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let build_args: std::collections::HashMap<String, String> = build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&build_args)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut out = io::stdout().lock();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| match e {
            DockerError::DockerStreamError { error } => AgentError::internal(error),
            other => explain(&other),
        })?;
        if let Some(text) = info.stream {
            let _ = out.write_all(text.as_bytes());
        }
        if let Some(status) = info.status {
            let _ = writeln!(out, "{status}");
        }
        if let Some(detail) = info.error_detail {
            return Err(AgentError::internal(
                detail.message.unwrap_or_else(|| "the build failed".into()),
            ));
        }
        let _ = out.flush();
    }
    Ok(())
}

/// What a container run needs.
pub struct ContainerRun<'a> {
    /// The image.
    pub image: &'a str,
    /// The command.
    pub command: &'a [String],
    /// Environment variables.
    pub env: Vec<String>,
    /// The run id (container name `moor-run-<id>`).
    pub run_id: &'a str,
    /// The source tree, copied to /moor/src.
    pub src: &'a Path,
    /// Where /moor/outputs is copied back to.
    pub outputs: &'a Path,
    /// The run's data inputs, copied to /moor/inputs (when it has some).
    pub inputs: Option<&'a Path>,
    /// Named output folders, made under /moor/outputs before the start.
    pub output_folders: &'a [String],
    /// The host's network (a node of a multi-node job: its peers reach it at
    /// the host's address).
    pub host_network: bool,
    /// Request the host's NVIDIA GPUs.
    pub gpus: bool,
    /// This agent's executable, copied to [`LAUNCHER`] when the command is
    /// the launcher of several processes or the run's MLflow endpoint is
    /// carried in (static: it runs in any image).
    pub launcher: Option<&'a Path>,
    /// The port of the run's MLflow endpoint on the host's 127.0.0.1, to
    /// carry into the container ([`crate::tracking::relay`]).
    pub tracking_port: Option<u16>,
}

/// Where a container finds the agent's launcher.
pub const LAUNCHER: &str = "/moor/bin/moor-agent";

/// Where a container's command finds its outputs folder.
pub const OUTPUTS: &str = "/moor/outputs";

/// Runs a job in a container to its end: creates it, copies the sources in,
/// streams its output to stdout, copies /moor/outputs back, removes it.
/// SIGTERM stops the container (cancel). Returns the container's exit code.
pub async fn run_container(docker: &Docker, job: ContainerRun<'_>) -> Result<i64> {
    // SIGTERM (cancel) is handled from the start: one arriving while the
    // container is being created or filled must not kill this process and
    // orphan the container; it stops the container as soon as it runs.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let name = format!("moor-run-{}", job.run_id);
    let gpus = job.gpus;
    let config = ContainerCreateBody {
        image: Some(job.image.to_owned()),
        cmd: Some(job.command.to_vec()),
        // The command runs as given, not as arguments to the image's own
        // entrypoint ([""] resets it).
        entrypoint: Some(vec![String::new()]),
        env: Some(job.env.clone()),
        working_dir: Some("/moor/src".into()),
        labels: Some(HashMap::from([("moor.run".into(), job.run_id.to_owned())])),
        host_config: Some(HostConfig {
            init: Some(true),
            network_mode: job.host_network.then(|| "host".to_owned()),
            device_requests: gpus.then(|| {
                vec![DeviceRequest {
                    driver: Some("nvidia".into()),
                    count: Some(-1),
                    capabilities: Some(vec![vec!["gpu".into()]]),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = CreateContainerOptionsBuilder::new().name(&name).build();
    docker
        .create_container(Some(create), config)
        .await
        .map_err(|e| explain(&e))?;
    let result = drive(docker, &name, &job, &mut term).await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(&name, Some(remove)).await;
    result
}

async fn drive(
    docker: &Docker,
    name: &str,
    job: &ContainerRun<'_>,
    term: &mut tokio::signal::unix::Signal,
) -> Result<i64> {
    // Sources in as a tar (the engine may not share this filesystem: a
    // remote engine, or Docker-in-Docker), outputs/ made empty.
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    archive
        .append_dir_all("moor/src", job.src)
        .map_err(|e| format!("packing the sources: {e}"))?;
    if let Some(inputs) = job.inputs {
        archive
            .append_dir_all("moor/inputs", inputs)
            .map_err(|e| format!("packing the inputs: {e}"))?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o777);
    header.set_size(0);
    archive
        .append_data(&mut header, "moor/outputs/", io::empty())
        .map_err(|e| e.to_string())?;
    for folder in job.output_folders {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o777);
        header.set_size(0);
        archive
            .append_data(&mut header, format!("moor/outputs/{folder}/"), io::empty())
            .map_err(|e| e.to_string())?;
    }
    if let Some(launcher) = job.launcher {
        let mut file = std::fs::File::open(launcher)
            .map_err(|e| format!("reading the launcher {}: {e}", launcher.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_size(file.metadata().map_err(|e| e.to_string())?.len());
        archive
            .append_data(&mut header, LAUNCHER.trim_start_matches('/'), &mut file)
            .map_err(|e| format!("packing the launcher: {e}"))?;
    }
    let bytes = archive.into_inner().map_err(|e| e.to_string())?;
    let upload = UploadToContainerOptionsBuilder::new().path("/").build();
    docker
        .upload_to_container(name, Some(upload), bollard::body_full(bytes.into()))
        .await
        .map_err(|e| explain(&e))?;
    docker.start_container(name, None).await.map_err(|e| {
        let text = e.to_string();
        if job.gpus && text.contains("device driver") {
            AgentError::internal(format!(
                "the host has NVIDIA GPUs (/dev/nvidia0) but its Docker engine cannot give them to containers ({text})"
            ))
            .with_fix("install the NVIDIA Container Toolkit (nvidia-ctk runtime configure --runtime=docker) and restart Docker")
        } else {
            explain(&e)
        }
    })?;

    let logs = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(name, Some(logs));
    let copy_logs = async {
        let mut out = io::stdout().lock();
        while let Some(Ok(chunk)) = logs.next().await {
            let _ = out.write_all(&chunk.into_bytes());
            let _ = out.flush();
        }
    };
    let stop = async {
        term.recv().await;
        let stop = StopContainerOptionsBuilder::new().t(5).build();
        let _ = docker.stop_container(name, Some(stop)).await;
    };
    let relay = async {
        if let Some(port) = job.tracking_port {
            if let Err(e) = relay_tracking(docker, name, port).await {
                println!("moor: the run's MLflow endpoint is not carried into the container: {e}");
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = copy_logs => {}
        _ = stop => {}
        _ = relay => {}
    }
    let mut wait = docker.wait_container(name, None::<WaitContainerOptions>);
    let code = match wait.next().await {
        Some(Ok(r)) => r.status_code,
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(explain(&e)),
        None => -1,
    };
    copy_outputs(docker, name, job.outputs).await?;
    Ok(code)
}

/// Carries the run's MLflow endpoint (127.0.0.1:`port` here) into the
/// container: `moor-agent tracking-relay PORT` runs there with its stdio
/// attached, until the container ends.
async fn relay_tracking(docker: &Docker, name: &str, port: u16) -> Result<()> {
    use bollard::container::LogOutput;
    use bollard::exec::StartExecResults;
    use tokio::io::AsyncWriteExt;
    let config = bollard::models::ExecConfig {
        cmd: Some(vec![
            LAUNCHER.to_owned(),
            "tracking-relay".into(),
            port.to_string(),
        ]),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let exec = docker
        .create_exec(name, config)
        .await
        .map_err(|e| explain(&e))?;
    let StartExecResults::Attached { mut output, input } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| explain(&e))?
    else {
        return Err("the relay's exec did not attach".into());
    };
    let (mut feed, frames_in) = tokio::io::duplex(256 * 1024);
    let pump = async move {
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdOut { message } = chunk {
                if feed.write_all(&message).await.is_err() {
                    break;
                }
            }
        }
    };
    let endpoint = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let carried = crate::tracking::relay::carry(frames_in, input, None, Some(endpoint));
    let ((), carried) = tokio::join!(pump, carried);
    carried.map_err(|e| AgentError::internal(format!("relaying: {e}")))
}

/// Copies the container's /moor/outputs into `dest` while the engine sends
/// it, through the same unpacker as downloads: no link or hard link from the
/// container can lead a write outside `dest`. What is left out is said in
/// the run's log.
async fn copy_outputs(docker: &Docker, name: &str, dest: &Path) -> Result<()> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path("/moor/outputs")
        .build();
    let mut stream = docker.download_from_container(name, Some(options));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(8);
    let into = dest.to_path_buf();
    // The archive holds `outputs/...`: the first component is stripped.
    let unpacking = tokio::task::spawn_blocking(move || {
        let reader = PullReader::new(|| rx.blocking_recv().transpose());
        unpack_within(reader, &into, 1)
    });
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| io::Error::other(explain(&e).to_string()));
        let failed = chunk.is_err();
        if tx.send(chunk.map(|b| b.to_vec())).await.is_err() || failed {
            break; // the unpacker stopped (its error says why)
        }
    }
    drop(tx);
    let unpacked = unpacking
        .await
        .map_err(|e| AgentError::internal(e.to_string()))?
        .map_err(|e| AgentError::from(e).context("copying the outputs out of the container"))?;
    let mut out = io::stdout().lock();
    for skipped in &unpacked.skipped.first {
        let _ = writeln!(out, "moor: left out outputs/{skipped}");
    }
    let more = unpacked.skipped.total - unpacked.skipped.first.len() as u64;
    if more > 0 {
        let _ = writeln!(out, "moor: and {more} more left out of the outputs");
    }
    Ok(())
}
