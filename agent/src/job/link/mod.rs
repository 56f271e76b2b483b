//! The job link: the nodes of a multi-node job watch one another, with no
//! controller in between. Node 0's supervisor listens (the hub); every
//! other node's supervisor connects to it, shows the job's token, sends a
//! heartbeat and, at the end, how its run ended. When a node ends without
//! success or falls silent (its host died, the network between them went),
//! node 0 tells every other node to stop and stops its own run; a node that
//! loses node 0 stops itself. A node is stopped the way `moor cancel` stops
//! a run (SIGTERM, SIGKILL after the job's grace period) with the reason in
//! its log. So a detached job, or one whose laptop closed, does not wait on
//! a dead rank for ever.
//!
//! A node that cannot reach node 0 (nodes on networks that do not see each
//! other: `moor run --target a --target b` of independent commands) says so
//! in its log and runs on, watched only while moor follows the job.
//!
//! Wire: lines of at most [`MAX_LINE`] bytes. To node 0: `hello TOKEN
//! RANK`, `beat`, `end ok|fail DETAIL`. From node 0: `welcome` (the node
//! joined: until then a closed connection only means trying again),
//! `beat`, `stop REASON`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use moor_proto::JobLink;

use crate::runs::{note, Runs};
use hub::{hub, Event};

mod hub;

/// How often each side says it is alive.
const BEAT: Duration = Duration::from_secs(2);
/// Silence after which the other side is taken for gone.
const SILENCE: Duration = Duration::from_secs(15);
/// How long a connection to node 0 has to show the token, and a node to
/// hear node 0's welcome.
const HELLO_WITHIN: Duration = Duration::from_secs(2);
/// How long a node keeps trying to reach node 0, and node 0 waits for it.
const JOIN_LIMIT: Duration = Duration::from_secs(60);
/// How long a node that ended before it joined keeps trying to tell node 0.
const END_WAIT: Duration = Duration::from_secs(10);
/// The longest line either side sends.
const MAX_LINE: u64 = 256;

/// This supervisor's link, once started.
static LINK: OnceLock<Link> = OnceLock::new();

/// One node's end of the link.
struct Link {
    /// Set when this node's run has ended: nothing is stopped after that.
    ended: Arc<AtomicBool>,
    role: Role,
}

enum Role {
    /// Node 0: the coordinator's inbox and thread.
    Hub(Sender<Event>, Mutex<Option<JoinHandle<()>>>),
    /// Another node: its connection to node 0.
    Spoke(Arc<Mutex<Connection>>),
}

/// Another node's connection to node 0.
enum Connection {
    /// Still trying to reach node 0.
    Joining,
    /// Joined: heartbeats and the end go there.
    Joined(TcpStream),
    /// Given up, or this node's end sent.
    Gone,
}

/// Starts the link of the run in `dir` (once its job may start).
pub fn start(dir: &Path, link: &JobLink) {
    let ended = Arc::new(AtomicBool::new(false));
    let stopper = Stopper {
        dir: dir.to_owned(),
        grace: Duration::from_secs(link.grace.into()),
        ended: ended.clone(),
    };
    let role = if link.rank == 0 {
        match hub(link, stopper) {
            Ok((events, coordinator)) => Role::Hub(events, Mutex::new(Some(coordinator))),
            Err(why) => {
                note(dir, &format!("job link: {why}; the nodes watch one another only while moor follows the job"));
                return;
            }
        }
    } else {
        Role::Spoke(spoke(link, stopper))
    };
    let _ = LINK.set(Link { ended, role });
}

/// Tells the link how this node's run ended; on node 0, waits until every
/// other node has ended (or is gone), so they stay watched.
pub fn ended(ok: bool, detail: &str) {
    let Some(link) = LINK.get() else {
        return;
    };
    link.ended.store(true, Ordering::SeqCst);
    match &link.role {
        Role::Hub(events, coordinator) => {
            let _ = events.send(Event::OwnEnded(ok, detail.to_owned()));
            if let Some(handle) = coordinator.lock().ok().and_then(|mut c| c.take()) {
                let _ = handle.join();
            }
        }
        Role::Spoke(conn) => {
            // A run that ends moments after it started may end before it
            // joined: its end still reaches node 0 (which waits for it).
            let deadline = Instant::now() + END_WAIT;
            loop {
                let Ok(mut slot) = conn.lock() else { return };
                match std::mem::replace(&mut *slot, Connection::Gone) {
                    Connection::Joined(stream) => {
                        let word = if ok { "ok" } else { "fail" };
                        let _ = send(&stream, &format!("end {word} {detail}"));
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    Connection::Gone => return,
                    Connection::Joining if Instant::now() >= deadline => return,
                    Connection::Joining => *slot = Connection::Joining,
                }
                drop(slot);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Stops this node's run as a cancel does, unless it has ended.
#[derive(Clone)]
struct Stopper {
    dir: PathBuf,
    grace: Duration,
    ended: Arc<AtomicBool>,
}

impl Stopper {
    fn stop(&self, reason: &str) {
        if self.ended.load(Ordering::SeqCst) {
            return;
        }
        note(&self.dir, &format!("{reason}; stopping this node"));
        // Exactly what `moor cancel` does to the run (this supervisor's
        // own): the run ends `cancelled`, nothing of it left running.
        let (Some(runs), Some(id)) = (self.dir.parent(), self.dir.file_name()) else {
            return;
        };
        let _ = Runs::new(runs.to_owned()).cancel(&id.to_string_lossy(), self.grace);
    }
}

/// Another node: connects to node 0 and listens for a stop.
fn spoke(link: &JobLink, stopper: Stopper) -> Arc<Mutex<Connection>> {
    let conn = Arc::new(Mutex::new(Connection::Joining));
    let shared = conn.clone();
    let link = link.clone();
    std::thread::spawn(move || {
        let joined = join(&link, &stopper).and_then(|(stream, lines)| {
            stream.set_read_timeout(Some(SILENCE)).ok()?;
            Some((stream, lines))
        });
        let Ok(mut slot) = shared.lock() else { return };
        let Some((stream, mut lines)) = joined else {
            *slot = Connection::Gone;
            return;
        };
        *slot = Connection::Joined(stream);
        drop(slot);
        let beats = shared.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(BEAT);
            let Ok(slot) = beats.lock() else { return };
            match &*slot {
                Connection::Joined(stream) if send(stream, "beat").is_ok() => {}
                _ => return,
            }
        });
        loop {
            match read_line(&mut lines) {
                Ok(line) if line == "beat" => {}
                Ok(line) => {
                    if let Some(reason) = line.strip_prefix("stop ") {
                        stopper.stop(reason);
                        return;
                    }
                }
                Err(why) => {
                    stopper.stop(&format!("node 0 is gone ({why})"));
                    return;
                }
            }
        }
    });
    conn
}

/// Connects to node 0 and says hello until welcomed, trying for
/// [`JOIN_LIMIT`]; the connection and its reader (which may hold what node
/// 0 said after the welcome).
fn join(link: &JobLink, stopper: &Stopper) -> Option<(TcpStream, BufReader<TcpStream>)> {
    let deadline = Instant::now() + JOIN_LIMIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        let addrs: Vec<SocketAddr> = link
            .hub
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(stream) => match welcomed(&stream, link) {
                    Ok(lines) => return Some((stream, lines)),
                    Err(why) => last = why,
                },
                Err(e) => last = e.to_string(),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    note(
        &stopper.dir,
        &format!(
            "job link: cannot reach node 0 at {} ({last}); this node is watched only while moor follows the job",
            link.hub
        ),
    );
    None
}

/// Says hello and waits for node 0's welcome (within [`HELLO_WITHIN`], as
/// long as node 0 gives a stranger).
fn welcomed(stream: &TcpStream, link: &JobLink) -> Result<BufReader<TcpStream>, String> {
    send(stream, &format!("hello {} {}", link.token, link.rank)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(HELLO_WITHIN * 2))
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    match read_line(&mut lines)?.as_str() {
        "welcome" => Ok(lines),
        other => Err(format!("node 0 said {other:?}")),
    }
}

/// Sends one line (with a write timeout: a stuck peer never blocks us).
fn send(mut stream: &TcpStream, line: &str) -> std::io::Result<()> {
    stream.set_write_timeout(Some(SILENCE))?;
    stream.write_all(format!("{line}\n").as_bytes())
}

/// Reads one line of at most [`MAX_LINE`] bytes; why the peer is gone if
/// it cannot (end of stream, silence, a line too long).
fn read_line(lines: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    match lines.by_ref().take(MAX_LINE).read_line(&mut line) {
        Ok(0) => Err("its connection closed".into()),
        Ok(_) if !line.ends_with('\n') => Err("it sent a line too long".into()),
        Ok(_) => Ok(line.trim_end().to_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("silent for {} s", SILENCE.as_secs()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
