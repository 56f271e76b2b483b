//! The daemon's side of the protocol: the handshake, then one thread per
//! request, answers and streams written as frames under one lock.

pub mod start_run;

use std::collections::HashMap;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moor_proto::{
    read_frame, AgentStatus, DiskUse, ErrorKind, Frame, FrameKind, Hello, Pruned, Request,
    Response, MAGIC, PROTOCOL_VERSION,
};

use crate::envs::Envs;
use crate::error::AgentError;
use crate::runs::outputs;
use crate::runs::stream;
use crate::runs::{files, Runs};
use crate::snapshots;
use crate::sys;

/// What the daemon shares between connections.
pub struct Daemon {
    started: Instant,
    pub(crate) runs: Runs,
    pub(crate) envs: Envs,
    /// Serialises prepares: one build per environment, however many ask.
    preparing: Mutex<()>,
    pub(crate) snapshots: PathBuf,
    pub(crate) endpoints: crate::endpoints::Endpoints,
    pub(crate) exe: PathBuf,
    build: String,
}

impl Daemon {
    /// The daemon of this user and build: state under `~/.moor`, runs
    /// supervised by this very executable.
    pub fn new() -> Daemon {
        Daemon::at(
            &sys::home(),
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("moor-agent")),
        )
    }

    /// A daemon keeping its state under `home/.moor`, starting supervisors
    /// with the agent executable `exe` (tests run one in-process).
    pub fn at(home: &Path, exe: PathBuf) -> Daemon {
        let moor = home.join(".moor");
        Daemon {
            started: Instant::now(),
            runs: Runs::new(moor.join("runs")),
            envs: Envs::new(moor.join("envs")),
            preparing: Mutex::new(()),
            snapshots: moor.join("snapshots"),
            endpoints: crate::endpoints::Endpoints::new(moor.join("endpoints")),
            build: sys::self_hash().unwrap_or_default(),
            exe,
        }
    }
}

impl Daemon {
    /// Removes what a killed daemon left: snapshot uploads cut short (a
    /// live upload touches its file at least every 2 minutes) and run
    /// folders whose start never finished.
    pub fn sweep(&self) {
        let stale = Duration::from_secs(10 * 60);
        let uploads = sys::sweep_temp_files(&self.snapshots, stale)
            + sys::sweep_temp_files(&crate::snapshots::blobs::dir(&self.snapshots), stale);
        let runs = self.runs.sweep_unstarted(stale);
        if uploads + runs > 0 {
            tracing::info!("removed {uploads} cut-short uploads and {runs} unstarted runs");
        }
    }
}

impl Daemon {
    /// Runs `f` with the endpoints and what they need of this daemon.
    pub fn with_endpoints<T>(
        &self,
        f: impl FnOnce(&crate::endpoints::Endpoints, &crate::endpoints::Host) -> T,
    ) -> T {
        let start = |spec| self.start_run(spec);
        let host = crate::endpoints::Host {
            runs: &self.runs,
            envs: &self.envs,
            snapshots: &self.snapshots,
            start: &start,
        };
        f(&self.endpoints, &host)
    }
}

impl Default for Daemon {
    fn default() -> Daemon {
        Daemon::new()
    }
}

/// The connection's writing half, shared by the requests answered at once.
type Writer = Arc<Mutex<UnixStream>>;

/// Writes one frame.
fn send(writer: &Writer, frame: &Frame) -> io::Result<()> {
    sys::send_frame(writer, frame)
}

/// Serves one connection: magic and hello first, then requests. This
/// side's hello goes at once, before the controller's is read: a pipe opened
/// ahead (the mux's spare) holds it when a command takes it over, and each
/// side checks the other's protocol.
pub fn connection(daemon: &Arc<Daemon>, stream: UnixStream) -> io::Result<()> {
    let mut reader = io::BufReader::new(stream.try_clone()?);
    let writer: Writer = Arc::new(Mutex::new(stream));
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: daemon.build.clone(),
    };
    let mut greeting = MAGIC.to_vec();
    greeting.extend(
        Response::Hello { hello }
            .to_frame(0)
            .to_bytes()
            .map_err(io::Error::other)?,
    );
    writer.lock().expect("writer lock").write_all(&greeting)?;
    let mut magic = vec![0u8; MAGIC.len()];
    reader.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer did not start with moor's magic bytes",
        ));
    }
    match read_frame(&mut reader).map_err(io::Error::other)? {
        Some(frame) => match frame.request() {
            Ok(Request::Hello { hello: theirs }) if theirs.protocol == PROTOCOL_VERSION => {}
            Ok(Request::Hello { hello: theirs }) => {
                let message = format!(
                    "agent speaks protocol {PROTOCOL_VERSION}, controller {}",
                    theirs.protocol
                );
                send(
                    &writer,
                    &Response::error(ErrorKind::VersionMismatch, message).to_frame(frame.id),
                )?;
                return Ok(());
            }
            _ => {
                send(
                    &writer,
                    &Response::error(ErrorKind::BadRequest, "the first request must be hello")
                        .to_frame(frame.id),
                )?;
                return Ok(());
            }
        },
        None => return Ok(()),
    }

    // Data frames of uploads go to the thread handling their request.
    let uploads: Arc<Mutex<HashMap<u64, mpsc::Sender<Frame>>>> = Arc::default();
    loop {
        let frame = match read_frame(&mut reader) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => return Err(io::Error::other(e)),
        };
        match frame.kind {
            FrameKind::Request => {
                let request = match frame.request() {
                    Ok(r) => r,
                    Err(e) => {
                        send(
                            &writer,
                            &Response::error(ErrorKind::BadRequest, e.to_string())
                                .to_frame(frame.id),
                        )?;
                        continue;
                    }
                };
                let data = if matches!(
                    request,
                    Request::PutSnapshot { .. }
                        | Request::PutTree { .. }
                        | Request::PutBlobs { .. }
                ) {
                    let (tx, rx) = mpsc::channel();
                    uploads.lock().expect("uploads lock").insert(frame.id, tx);
                    Some(rx)
                } else {
                    None
                };
                let (daemon, writer, uploads, id) =
                    (daemon.clone(), writer.clone(), uploads.clone(), frame.id);
                std::thread::spawn(move || {
                    let result = handle(&daemon, &writer, id, request, data);
                    uploads.lock().expect("uploads lock").remove(&id);
                    if let Err(e) = result {
                        tracing::warn!(request = id, "request failed: {e}");
                        let _ = send(&writer, &AgentError::from(e).to_response().to_frame(id));
                    }
                });
            }
            FrameKind::Data | FrameKind::End => {
                if let Some(tx) = uploads.lock().expect("uploads lock").get(&frame.id) {
                    let _ = tx.send(frame);
                }
            }
            FrameKind::Response => {}
        }
    }
}

fn not_found(what: impl std::fmt::Display) -> Response {
    Response::error(ErrorKind::NotFound, what.to_string())
}

/// Handles one request; errors become `internal` error responses.
fn handle(
    daemon: &Daemon,
    writer: &Writer,
    id: u64,
    request: Request,
    data: Option<mpsc::Receiver<Frame>>,
) -> io::Result<()> {
    let reply = |r: Response| send(writer, &r.to_frame(id));
    let endpoint = |r: crate::error::Result<moor_proto::endpoint::EndpointInfo>| match r {
        Ok(endpoint) => reply(Response::Endpoint {
            endpoint: Box::new(endpoint),
        }),
        Err(e) => reply(e.to_response()),
    };
    match request {
        Request::Hello { .. } => reply(Response::error(
            ErrorKind::BadRequest,
            "hello was already said",
        )),
        Request::Ping => reply(Response::Pong),
        Request::Status => {
            let running = daemon
                .runs
                .list()?
                .iter()
                .filter(|r| !r.state.is_final())
                .count() as u32;
            reply(Response::Status(AgentStatus {
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
        Request::HasSnapshot { sha256 } => reply(Response::Snapshot {
            present: snapshots::has(&daemon.snapshots, &sha256),
        }),
        Request::PutSnapshot { sha256, size } => {
            let data = data.expect("uploads get a data channel");
            reply(snapshots::put(&daemon.snapshots, &sha256, size, data)?)
        }
        Request::PutTree { sha256, size } => {
            let data = data.expect("uploads get a data channel");
            reply(crate::snapshots::manifests::put(
                &daemon.snapshots,
                &sha256,
                size,
                data,
            )?)
        }
        Request::PutBlobs { count, size, build } => {
            let data = data.expect("uploads get a data channel");
            let stored = crate::snapshots::blobs::put(&daemon.snapshots, count, size, data)?;
            match (stored, build) {
                (Response::Blobs { .. }, Some(sha256)) => reply(
                    crate::snapshots::manifests::build(&daemon.snapshots, &sha256)?,
                ),
                (answer, _) => reply(answer),
            }
        }
        Request::BuildTree { sha256 } => reply(crate::snapshots::manifests::build(
            &daemon.snapshots,
            &sha256,
        )?),
        Request::PrepareEnv {
            spec,
            hash,
            options,
        } => {
            let _one = daemon.preparing.lock().expect("prepare lock");
            match daemon.envs.prepare(
                &daemon.runs,
                &daemon.exe,
                &daemon.snapshots,
                *spec,
                &hash,
                options,
            ) {
                Ok(env) => reply(Response::Env { env }),
                Err(e) => reply(e.to_response()),
            }
        }
        Request::GetEnv { hash } => match daemon.envs.info(&daemon.runs, &hash) {
            Ok(env) => reply(Response::Env { env }),
            Err(_) => reply(not_found(format!("no environment {hash}"))),
        },
        Request::ListEnvs => reply(Response::Envs {
            envs: daemon.envs.list(&daemon.runs)?,
        }),
        Request::RemoveEnv { hash } => {
            let _one = daemon.preparing.lock().expect("prepare lock");
            match daemon.envs.remove(&daemon.runs, &hash) {
                Ok(env) => reply(Response::Env { env }),
                Err(e) => reply(e.to_response()),
            }
        }
        Request::StartRun { spec } => match daemon.start_run(spec) {
            Ok(run) => reply(Response::Run { run }),
            Err(e) => reply(e.to_response()),
        },
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
            reply(Response::Pruned(Pruned {
                runs,
                snapshots,
                bytes_freed: freed,
            }))
        }
        Request::Release { run_id } => match daemon.runs.release(&run_id) {
            Ok(run) => reply(Response::Run { run }),
            Err(_) => reply(not_found(format!("no run {run_id}"))),
        },
        Request::CreateEndpoint { spec } => {
            endpoint(daemon.with_endpoints(|e, host| e.create(host, *spec)))
        }
        Request::ListEndpoints => match daemon.with_endpoints(|e, host| e.list(host)) {
            Ok(endpoints) => reply(Response::Endpoints { endpoints }),
            Err(e) => reply(e.to_response()),
        },
        Request::GetEndpoint { name } => {
            endpoint(daemon.with_endpoints(|e, host| e.get(host, &name)))
        }
        Request::StopEndpoint { name } => {
            endpoint(daemon.with_endpoints(|e, host| e.stop(host, &name)))
        }
        Request::StartEndpoint { name } => {
            endpoint(daemon.with_endpoints(|e, host| e.start(host, &name)))
        }
        Request::DeleteEndpoint { name } => {
            endpoint(daemon.with_endpoints(|e, host| e.delete(host, &name)))
        }
        Request::NodeInfo => reply(Response::Node(crate::job::node::info()?)),
        Request::ListRuns => reply(Response::Runs {
            runs: daemon.runs.list()?,
        }),
        Request::GetRun { run_id } => match daemon.runs.info(&run_id) {
            Ok(run) => reply(Response::Run { run }),
            Err(_) => reply(not_found(format!("no run {run_id}"))),
        },
        Request::Cancel { run_id, grace_secs } => match daemon
            .runs
            .cancel(&run_id, Duration::from_secs(grace_secs.into()))
        {
            Ok(run) => reply(Response::Run { run }),
            Err(_) => reply(not_found(format!("no run {run_id}"))),
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
    }
}
