//! The daemon's side of the protocol: the handshake, then one thread per
//! request, answers and streams written as frames under one lock.

mod requests;
pub mod start_run;

use std::collections::HashMap;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moor_proto::{
    read_frame, ErrorKind, Frame, FrameKind, Hello, Request, Response, MAGIC, PROTOCOL_VERSION,
};

use crate::envs::Envs;
use crate::error::AgentError;
use crate::runs::Runs;
use crate::sys;

/// What the daemon shares between connections.
pub struct Daemon {
    started: Instant,
    /// The home whose `.moor` it keeps (and whose authorized_keys holds MPI
    /// jobs' keys).
    home: PathBuf,
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
            home: home.to_owned(),
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
        // MPI job keys a killed peer (and its supervisor) left behind.
        let keys = crate::job::mpi::sweep_job_keys(&self.home, &self.runs);
        if keys > 0 {
            tracing::info!("removed {keys} ended MPI jobs' keys from authorized_keys");
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
                    let result = requests::handle(&daemon, &writer, id, request, data);
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
