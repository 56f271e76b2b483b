//! Answering one request: each family (snapshots, environments, runs,
//! endpoints, streams) in its own function, so that a new request is one
//! arm in [`handle`] (which names every request: none is forgotten) and
//! one in its family's answer.

use std::io;
use std::sync::mpsc;
use std::time::Duration;

use moor_proto::{AgentStatus, DiskUse, ErrorKind, Frame, Pruned, Request, Response};

use super::{send, Daemon, Writer};
use crate::runs::{files, outputs, stream};
use crate::snapshots;
use crate::sys;

fn not_found(what: impl std::fmt::Display) -> Response {
    Response::error(ErrorKind::NotFound, what.to_string())
}

/// Handles one request; errors become `internal` error responses.
pub fn handle(
    daemon: &Daemon,
    writer: &Writer,
    id: u64,
    request: Request,
    data: Option<mpsc::Receiver<Frame>>,
) -> io::Result<()> {
    let reply = |r: Response| send(writer, &r.to_frame(id));
    match request {
        Request::Hello { .. } => reply(Response::error(
            ErrorKind::BadRequest,
            "hello was already said",
        )),
        Request::Ping => reply(Response::Pong),
        Request::Status => reply(status(daemon)?),
        Request::NodeInfo => reply(Response::Node(crate::job::node::info()?)),
        r @ (Request::HasSnapshot { .. }
        | Request::PutSnapshot { .. }
        | Request::PutTree { .. }
        | Request::PutBlobs { .. }
        | Request::BuildTree { .. }) => reply(snapshot(daemon, r, data)?),
        r @ (Request::PrepareEnv { .. }
        | Request::GetEnv { .. }
        | Request::ListEnvs
        | Request::RemoveEnv { .. }) => reply(env(daemon, r)?),
        r @ (Request::CreateEndpoint { .. }
        | Request::ListEndpoints
        | Request::GetEndpoint { .. }
        | Request::StopEndpoint { .. }
        | Request::StartEndpoint { .. }
        | Request::DeleteEndpoint { .. }) => reply(endpoint(daemon, r)),
        r @ (Request::StartRunFollowing { .. }
        | Request::ReadLog { .. }
        | Request::ReadMetrics { .. }
        | Request::Download { .. }) => streamed(daemon, writer, id, r),
        r @ (Request::StartRun { .. }
        | Request::Release { .. }
        | Request::ListRuns
        | Request::GetRun { .. }
        | Request::Cancel { .. }
        | Request::PruneRuns { .. }) => reply(run(daemon, r)?),
    }
}

/// The daemon's state: version, uptime, load, live runs, disk use.
fn status(daemon: &Daemon) -> io::Result<Response> {
    let running = daemon
        .runs
        .list()?
        .iter()
        .filter(|r| !r.state.is_final())
        .count() as u32;
    Ok(Response::Status(AgentStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: daemon.started.elapsed().as_secs(),
        load: sys::load_average(),
        running,
        disk: Some(DiskUse {
            runs_bytes: sys::tree_bytes(daemon.runs.root()),
            snapshots_bytes: sys::tree_bytes(&daemon.snapshots),
            envs_bytes: sys::tree_bytes(daemon.envs.root()),
        }),
    }))
}

/// Snapshots: asked for, uploaded whole or file by file, built.
fn snapshot(
    daemon: &Daemon,
    request: Request,
    data: Option<mpsc::Receiver<Frame>>,
) -> io::Result<Response> {
    let dir = &daemon.snapshots;
    let data = || data.expect("uploads get a data channel");
    Ok(match request {
        Request::HasSnapshot { sha256 } => Response::Snapshot {
            present: snapshots::has(dir, &sha256),
        },
        Request::PutSnapshot { sha256, size } => snapshots::put(dir, &sha256, size, data())?,
        Request::PutTree { sha256, size } => snapshots::manifests::put(dir, &sha256, size, data())?,
        Request::PutBlobs { count, size, build } => {
            match (snapshots::blobs::put(dir, count, size, data())?, build) {
                (Response::Blobs { .. }, Some(sha256)) => {
                    snapshots::manifests::build(dir, &sha256)?
                }
                (answer, _) => answer,
            }
        }
        Request::BuildTree { sha256 } => snapshots::manifests::build(dir, &sha256)?,
        other => unreachable!("not a snapshot request: {other:?}"),
    })
}

/// Environments: prepared (one build at a time), asked for, listed, removed.
fn env(daemon: &Daemon, request: Request) -> io::Result<Response> {
    let answer = |r: crate::error::Result<moor_proto::env::EnvInfo>| match r {
        Ok(env) => Response::Env { env },
        Err(e) => e.to_response(),
    };
    Ok(match request {
        Request::PrepareEnv {
            spec,
            hash,
            options,
        } => {
            let _one = daemon.preparing.lock().expect("prepare lock");
            answer(daemon.envs.prepare(
                &daemon.runs,
                &daemon.exe,
                &daemon.snapshots,
                *spec,
                &hash,
                options,
            ))
        }
        Request::GetEnv { hash } => match daemon.envs.info(&daemon.runs, &hash) {
            Ok(env) => Response::Env { env },
            Err(_) => not_found(format!("no environment {hash}")),
        },
        Request::ListEnvs => Response::Envs {
            envs: daemon.envs.list(&daemon.runs)?,
        },
        Request::RemoveEnv { hash } => {
            let _one = daemon.preparing.lock().expect("prepare lock");
            answer(daemon.envs.remove(&daemon.runs, &hash))
        }
        other => unreachable!("not an environment request: {other:?}"),
    })
}

/// Endpoints: created, listed, asked for, stopped, started, deleted.
fn endpoint(daemon: &Daemon, request: Request) -> Response {
    let one = |r: crate::error::Result<moor_proto::endpoint::EndpointInfo>| match r {
        Ok(endpoint) => Response::Endpoint {
            endpoint: Box::new(endpoint),
        },
        Err(e) => e.to_response(),
    };
    match request {
        Request::CreateEndpoint { spec } => {
            one(daemon.with_endpoints(|e, host| e.create(host, *spec)))
        }
        Request::ListEndpoints => match daemon.with_endpoints(|e, host| e.list(host)) {
            Ok(endpoints) => Response::Endpoints { endpoints },
            Err(e) => e.to_response(),
        },
        Request::GetEndpoint { name } => one(daemon.with_endpoints(|e, host| e.get(host, &name))),
        Request::StopEndpoint { name } => one(daemon.with_endpoints(|e, host| e.stop(host, &name))),
        Request::StartEndpoint { name } => {
            one(daemon.with_endpoints(|e, host| e.start(host, &name)))
        }
        Request::DeleteEndpoint { name } => {
            one(daemon.with_endpoints(|e, host| e.delete(host, &name)))
        }
        other => unreachable!("not an endpoint request: {other:?}"),
    }
}

/// Runs: started, released, listed, asked for, cancelled, pruned.
fn run(daemon: &Daemon, request: Request) -> io::Result<Response> {
    let run = |r: Result<moor_proto::RunInfo, _>, id: &str| match r {
        Ok(run) => Response::Run { run },
        Err(_) => not_found(format!("no run {id}")),
    };
    Ok(match request {
        Request::StartRun { spec } => match daemon.start_run(spec) {
            Ok(run) => Response::Run { run },
            Err(e) => e.to_response(),
        },
        Request::Release { run_id } => run(daemon.runs.release(&run_id), &run_id),
        Request::ListRuns => Response::Runs {
            runs: daemon.runs.list()?,
        },
        Request::GetRun { run_id } => run(daemon.runs.info(&run_id), &run_id),
        Request::Cancel { run_id, grace_secs } => run(
            daemon
                .runs
                .cancel(&run_id, Duration::from_secs(grace_secs.into())),
            &run_id,
        ),
        Request::PruneRuns {
            older_than_secs,
            keep,
        } => {
            let older_than = older_than_secs.map(Duration::from_secs);
            let serving = daemon.endpoints.runs();
            let (runs, mut freed) =
                daemon
                    .runs
                    .prune(older_than, keep.unwrap_or(0) as usize, &serving)?;
            let (snapshots, bytes) = snapshots::prune(&daemon.snapshots, &daemon.runs)?;
            freed += bytes;
            Response::Pruned(Pruned {
                runs,
                snapshots,
                bytes_freed: freed,
            })
        }
        other => unreachable!("not a run request: {other:?}"),
    })
}

/// Answers that stream: a run started and its log followed, a log or a
/// run's MLflow records read (and followed), a run's outputs downloaded.
fn streamed(daemon: &Daemon, writer: &Writer, id: u64, request: Request) -> io::Result<()> {
    let reply = |r: Response| send(writer, &r.to_frame(id));
    match request {
        Request::StartRunFollowing { spec } => match daemon.start_run(spec) {
            Ok(run) => {
                let run_id = run.id.clone();
                reply(Response::Stream {
                    offset: 0,
                    run: Some(Box::new(run)),
                })?;
                stream::stream(&daemon.runs, writer, id, &run_id, files::LOG, 0, true)
            }
            Err(e) => reply(e.to_response()),
        },
        Request::ReadLog {
            run_id,
            offset,
            follow,
        } => stream::answer(
            &daemon.runs,
            writer,
            id,
            &run_id,
            files::LOG,
            offset,
            follow,
        ),
        Request::ReadMetrics {
            run_id,
            offset,
            follow,
        } => {
            let name = moor_proto::tracking::FILE;
            stream::answer(&daemon.runs, writer, id, &run_id, name, offset, follow)
        }
        Request::Download { run_id, selection } => {
            if daemon.runs.info(&run_id).is_err() {
                return reply(not_found(format!("no run {run_id}")));
            }
            reply(Response::Stream {
                offset: 0,
                run: None,
            })?;
            let outputs = daemon.runs.dir(&run_id).join(files::OUTPUTS);
            let frames =
                outputs::Chunked::new(|chunk: &[u8]| send(writer, &Frame::data(id, chunk)));
            let trailer = outputs::write_archive(&outputs, &selection, frames)?;
            let trailer = serde_json::to_vec(&trailer).map_err(io::Error::other)?;
            send(writer, &Frame::end_with(id, trailer))
        }
        other => unreachable!("not a streamed request: {other:?}"),
    }
}
