//! `moor mux serve`: the multiplexer process. It holds the workspace's
//! `mux/lock` for its whole life (one per workspace), listens on
//! `mux/sock` (0600, and only its own user's connections are served),
//! answers each command's one request and, for a pipe, relays bytes between
//! the command and the agent until either side closes. It exits when idle,
//! when its socket or workspace is removed, or when asked to.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use super::warm::Pool;
use crate::error::{Error, Result};
use crate::mux::{build_id, Answer, MuxStatus, Request};
use crate::reach::Targets;

/// How often the mux looks at its idle time and its socket.
const TICK: Duration = Duration::from_secs(2);

/// How long a command may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the connection under a pipe may take to answer a keepalive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Relay buffers, each way (a snapshot or a download goes through).
const RELAY_BUFFER: usize = 256 * 1024;

struct Mux {
    pool: Arc<Pool>,
    build: String,
    uid: u32,
    started: Instant,
    idle: Duration,
    pipes_open: AtomicUsize,
    last_active: Mutex<Instant>,
    stop: Notify,
}

/// Serves the workspace's mux until idle for `idle`; warms the targets
/// `warm` first.
/// Returns at once when another mux holds the lock.
pub async fn serve(targets: Targets, idle: Duration, warm: Vec<String>) -> Result<()> {
    let dir = crate::mux::dir(targets.workspace());
    let io = |what: &'static str| {
        let path = dir.clone();
        move |cause| Error::Io { what, path, cause }
    };
    crate::private_fs::create_private_dir(&dir).map_err(io("cannot create the mux folder"))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io("cannot open the mux lock"))?;
    let Some(_lock) = lock_within(lock, LOCK_WAIT).await else {
        tracing::info!("a mux already runs for {}", dir.display());
        return Ok(());
    };
    let sock = crate::mux::socket_path(targets.workspace()).ok_or_else(|| {
        Error::usage(
            format!(
                "the workspace path {} is too long for a Unix socket",
                dir.display()
            ),
            "use a shorter --workspace path, or --no-mux",
        )
    })?;
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(io("cannot listen on the mux socket"))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(io("cannot make the mux socket private"))?;
    let inode = std::fs::metadata(&sock)
        .map_err(io("cannot read the mux socket"))?
        .ino();
    let uid = std::fs::metadata(&dir)
        .map_err(io("cannot read the mux folder"))?
        .uid();
    let mux = Arc::new(Mux {
        pool: Arc::new(Pool::new(targets)),
        build: build_id(),
        uid,
        started: Instant::now(),
        idle,
        pipes_open: AtomicUsize::new(0),
        last_active: Mutex::new(Instant::now()),
        stop: Notify::new(),
    });
    tracing::info!(pid = std::process::id(), socket = %sock.display(), "mux listening");
    for name in &warm {
        mux.pool.warm(name);
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    mux.touch();
                    tokio::spawn(mux.clone().serve_one(stream));
                }
                Err(e) => tracing::warn!(error = %e, "accept"),
            },
            _ = tick.tick() => {
                if !still_ours(&sock, inode) {
                    tracing::info!("the mux socket is gone: exiting");
                    return Ok(());
                }
                if mux.idle_for() > mux.idle {
                    tracing::info!(idle_secs = mux.idle.as_secs(), "idle: exiting");
                    break;
                }
            }
            _ = mux.stop.notified() => {
                tracing::info!("asked to stop: exiting");
                break;
            }
        }
    }
    if still_ours(&sock, inode) {
        let _ = std::fs::remove_file(&sock);
    }
    Ok(())
}

/// How long a new mux waits for the lock (a stale mux exiting).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The lock, once no other mux holds it (`None` after `wait`).
async fn lock_within(
    mut file: std::fs::File,
    wait: Duration,
) -> Option<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let started = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(lock),
            Err((back, _)) if started.elapsed() < wait => {
                file = back;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => return None,
        }
    }
}

/// Whether the socket file is still the one this mux bound (not removed
/// with its workspace, not replaced).
fn still_ours(sock: &Path, inode: u64) -> bool {
    std::fs::symlink_metadata(sock).is_ok_and(|m| m.ino() == inode)
}

impl Mux {
    fn touch(&self) {
        *self.last_active.lock().expect("mux clock") = Instant::now();
    }

    /// How long no pipe has been open and no request came.
    fn idle_for(&self) -> Duration {
        if self.pipes_open.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_active.lock().expect("mux clock").elapsed()
    }

    async fn serve_one(self: Arc<Self>, mut stream: UnixStream) {
        // The socket is 0600 in a 0700 folder; the peer's uid is checked
        // as well (a folder made wider by hand lets no one else in).
        if !stream.peer_cred().is_ok_and(|c| c.uid() == self.uid) {
            tracing::warn!("refused a connection from another user");
            return;
        }
        let line = tokio::time::timeout(REQUEST_TIMEOUT, crate::mux::read_line(&mut stream)).await;
        let Some(request) = line
            .ok()
            .flatten()
            .and_then(|l| serde_json::from_slice::<Request>(&l).ok())
        else {
            return;
        };
        let answer = match request {
            Request::Open { build, .. } if build != self.build => {
                let _ = reply(&mut stream, &Answer::Stale).await;
                self.stop.notify_one();
                return;
            }
            Request::Open {
                target, settings, ..
            } => match self.pool.open(&target, &settings).await {
                Ok(pipe) => return self.relay(&target, stream, pipe).await,
                Err(why) => Answer::Cold { why },
            },
            Request::Status => Answer::Status(MuxStatus {
                pid: std::process::id(),
                uptime_secs: self.started.elapsed().as_secs(),
                idle_limit_secs: self.idle.as_secs(),
                pipes_open: self.pipes_open.load(Ordering::SeqCst),
                targets: self.pool.status(),
            }),
            Request::Forget { target } => {
                self.pool.forget(&target);
                Answer::Done
            }
            Request::Stop => {
                let _ = reply(&mut stream, &Answer::Done).await;
                self.stop.notify_one();
                return;
            }
        };
        let _ = reply(&mut stream, &answer).await;
    }

    /// Says `ready`, then copies bytes both ways until either side is
    /// done, while the connection is probed once: one that does not answer
    /// a keepalive within [`PROBE_TIMEOUT`] (its network gone without a
    /// FIN) ends the pipe, so the command fails at once instead of waiting
    /// for the keepalives to give up, and the connection is dropped.
    async fn relay(&self, target: &str, mut stream: UnixStream, mut pipe: super::warm::Pipe) {
        self.pipes_open.fetch_add(1, Ordering::SeqCst);
        let ready = async {
            reply(&mut stream, &Answer::Ready).await?;
            // What the agent said already (a spare's hello) goes first.
            stream.write_all(&pipe.head).await
        };
        if ready.await.is_ok() {
            let session = pipe.session.clone();
            let probe = async {
                match session {
                    Some(s) if !s.answers_within(PROBE_TIMEOUT).await => {}
                    _ => std::future::pending().await,
                }
            };
            let copy = tokio::io::copy_bidirectional_with_sizes(
                &mut stream,
                &mut pipe.stream,
                RELAY_BUFFER,
                RELAY_BUFFER,
            );
            tokio::select! {
                copied = copy => if let Err(e) = copied {
                    tracing::debug!(error = %e, "pipe ended");
                },
                () = probe => {
                    tracing::info!(%target, "no answer to a keepalive within {} s: the connection is dropped", PROBE_TIMEOUT.as_secs());
                    self.pool.forget(target);
                }
            }
        }
        self.pipes_open.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }
}

async fn reply(stream: &mut UnixStream, answer: &Answer) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(answer)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    stream.flush().await
}
