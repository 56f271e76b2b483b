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
//! RANK`, `beat`, `end ok|fail DETAIL`. From node 0: `beat`, `stop REASON`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use moor_proto::JobLink;
use nix::sys::signal::Signal;

use crate::runs::files;
use crate::sys;

/// How often each side says it is alive.
const BEAT: Duration = Duration::from_secs(2);
/// Silence after which the other side is taken for gone.
const SILENCE: Duration = Duration::from_secs(15);
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

/// What node 0's coordinator hears.
enum Event {
    Joined(u32, TcpStream),
    Ended(u32, bool, String),
    Lost(u32, String),
    OwnEnded(bool, String),
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
        // The cancel marker: a run not started yet never starts, and the
        // supervisor records the end as a cancel and sweeps what is left.
        let _ = std::fs::write(
            self.dir.join(files::CANCEL),
            self.grace.as_secs().to_string(),
        );
        let me = std::process::id();
        sys::signal_descendants(me, Signal::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.ended.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        sys::signal_descendants(me, Signal::SIGKILL);
    }
}

/// Node 0: listens, and runs the coordinator.
fn hub(link: &JobLink, stopper: Stopper) -> Result<(Sender<Event>, JoinHandle<()>), String> {
    let port: u16 = link
        .hub
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {:?}", link.hub))?;
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let (events, inbox) = channel();
    let token = link.token.clone();
    let nodes = link.nodes;
    let to_coordinator = events.clone();
    // Connections served at once: the nodes, plus room for strays (anyone
    // on the network may connect; only the token gets a node in).
    let open = Arc::new(AtomicUsize::new(0));
    let limit = 2 * nodes as usize + 8;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if open.fetch_add(1, Ordering::SeqCst) >= limit {
                open.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let events = to_coordinator.clone();
            let token = token.clone();
            let open = open.clone();
            std::thread::spawn(move || {
                serve_node(stream, &token, nodes, &events);
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let mut coordinator = Coordinator {
        nodes: link.nodes,
        stopper,
        joined: BTreeMap::new(),
        done: BTreeSet::new(),
        own_ended: false,
        stopping: None,
    };
    let coordinator = std::thread::spawn(move || {
        let started = Instant::now();
        while !coordinator.finished() {
            match inbox.recv_timeout(BEAT) {
                Ok(event) => coordinator.hear(event),
                Err(RecvTimeoutError::Timeout) => coordinator.send_all("beat"),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if started.elapsed() > JOIN_LIMIT {
                coordinator.give_up_on_absent();
            }
        }
    });
    Ok((events, coordinator))
}

/// Node 0's view of the job.
struct Coordinator {
    nodes: u32,
    stopper: Stopper,
    /// The nodes that joined, by rank, and where to write to them.
    joined: BTreeMap<u32, TcpStream>,
    /// The other nodes that ended, are gone, or never joined.
    done: BTreeSet<u32>,
    own_ended: bool,
    /// Why the job stops, once it does (told to nodes that join late too).
    stopping: Option<String>,
}

impl Coordinator {
    /// Node 0 has ended, and every other node has too (or is gone).
    fn finished(&self) -> bool {
        self.own_ended && (1..self.nodes).all(|r| self.done.contains(&r))
    }

    fn hear(&mut self, event: Event) {
        match event {
            Event::Joined(rank, stream) => {
                if let Some(reason) = &self.stopping {
                    let _ = send(&stream, &format!("stop {reason}"));
                }
                self.joined.insert(rank, stream);
            }
            Event::Ended(rank, ok, detail) => {
                self.done.insert(rank);
                if !ok {
                    self.stop_all(format!("node {rank} ended without success ({detail})"));
                }
            }
            Event::Lost(rank, why) => {
                if self.done.insert(rank) {
                    self.stop_all(format!("node {rank} is gone ({why})"));
                }
            }
            Event::OwnEnded(ok, detail) => {
                self.own_ended = true;
                if !ok {
                    self.stop_all(format!("node 0 ended without success ({detail})"));
                }
            }
        }
    }

    /// Tells every node to stop, and stops this one (once).
    fn stop_all(&mut self, reason: String) {
        if self.stopping.is_some() {
            return;
        }
        self.send_all(&format!("stop {reason}"));
        self.stopping = Some(reason.clone());
        let stopper = self.stopper.clone();
        std::thread::spawn(move || stopper.stop(&reason));
    }

    fn send_all(&self, line: &str) {
        for stream in self.joined.values() {
            let _ = send(stream, line);
        }
    }

    /// Nodes that have not joined by now are not waited for.
    fn give_up_on_absent(&mut self) {
        let absent: Vec<u32> = (1..self.nodes)
            .filter(|r| !self.joined.contains_key(r) && !self.done.contains(r))
            .collect();
        for rank in absent {
            self.done.insert(rank);
            note(
                &self.stopper.dir,
                &format!(
                    "job link: node {rank} did not join within {} s; it is watched only while moor follows the job",
                    JOIN_LIMIT.as_secs()
                ),
            );
        }
    }
}

/// Node 0's side of one node's connection.
fn serve_node(stream: TcpStream, token: &str, nodes: u32, events: &Sender<Event>) {
    let _ = stream.set_read_timeout(Some(SILENCE));
    let Ok(mut lines) = stream.try_clone().map(BufReader::new) else {
        return;
    };
    let rank = match read_line(&mut lines).as_deref().map(str::split_whitespace) {
        Ok(mut words) => match (words.next(), words.next(), words.next()) {
            (Some("hello"), Some(t), Some(rank)) if t == token => match rank.parse::<u32>() {
                Ok(rank) if (1..nodes).contains(&rank) => rank,
                _ => return,
            },
            _ => return,
        },
        Err(_) => return,
    };
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let _ = events.send(Event::Joined(rank, writer));
    loop {
        match read_line(&mut lines) {
            Ok(line) if line == "beat" => {}
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("end ") {
                    let (word, detail) = rest.split_once(' ').unwrap_or((rest, ""));
                    let _ = events.send(Event::Ended(rank, word == "ok", detail.to_owned()));
                    return;
                }
            }
            Err(why) => {
                let _ = events.send(Event::Lost(rank, why));
                return;
            }
        }
    }
}

/// Another node: connects to node 0 and listens for a stop.
fn spoke(link: &JobLink, stopper: Stopper) -> Arc<Mutex<Connection>> {
    let conn = Arc::new(Mutex::new(Connection::Joining));
    let shared = conn.clone();
    let link = link.clone();
    std::thread::spawn(move || {
        let joined = join(&link, &stopper).and_then(|stream| {
            stream.set_read_timeout(Some(SILENCE)).ok()?;
            let lines = BufReader::new(stream.try_clone().ok()?);
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

/// Connects to node 0 and says hello, trying for [`JOIN_LIMIT`].
fn join(link: &JobLink, stopper: &Stopper) -> Option<TcpStream> {
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
                Ok(stream) => {
                    if send(&stream, &format!("hello {} {}", link.token, link.rank)).is_ok() {
                        return Some(stream);
                    }
                }
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

/// A line from moor in the run's log.
fn note(dir: &Path, line: &str) {
    crate::supervise::note(dir, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (near, listener.accept().unwrap().0)
    }

    fn lines_of(stream: &TcpStream) -> BufReader<TcpStream> {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        BufReader::new(stream.try_clone().unwrap())
    }

    #[test]
    fn node_0_lets_in_only_a_node_with_the_token_and_hears_its_end() {
        let (events, inbox) = channel();
        let (mut stray, theirs) = pair();
        let tx = events.clone();
        let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &tx));
        stray.write_all(b"hello wrong 1\n").unwrap();
        served.join().unwrap();
        assert!(inbox.try_recv().is_err(), "a wrong token joins nothing");

        let (mut node, theirs) = pair();
        let tx = events.clone();
        let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &tx));
        node.write_all(b"hello secret 2\nbeat\nend fail exit 3\n")
            .unwrap();
        served.join().unwrap();
        assert!(matches!(inbox.recv().unwrap(), Event::Joined(2, _)));
        match inbox.recv().unwrap() {
            Event::Ended(2, false, detail) => assert_eq!(detail, "exit 3"),
            _ => panic!("not the node's end"),
        }

        let (mut node, theirs) = pair();
        let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &events));
        node.write_all(b"hello secret 1\n").unwrap();
        drop(node);
        served.join().unwrap();
        assert!(matches!(inbox.recv().unwrap(), Event::Joined(1, _)));
        match inbox.recv().unwrap() {
            Event::Lost(1, why) => assert_eq!(why, "its connection closed"),
            _ => panic!("the node is not taken for gone"),
        }
    }

    #[test]
    fn a_line_too_long_is_refused() {
        let (mut near, far) = pair();
        near.write_all(&[b'x'; 300]).unwrap();
        let mut lines = lines_of(&far);
        assert_eq!(
            read_line(&mut lines).unwrap_err(),
            "it sent a line too long"
        );
    }

    #[test]
    fn a_failed_node_stops_every_node_that_joined_or_joins_later() {
        let dir = tempfile::tempdir().unwrap();
        let ended = Arc::new(AtomicBool::new(true)); // nothing of this process is signalled
        let mut c = Coordinator {
            nodes: 3,
            stopper: Stopper {
                dir: dir.path().to_owned(),
                grace: Duration::from_secs(1),
                ended,
            },
            joined: BTreeMap::new(),
            done: BTreeSet::new(),
            own_ended: false,
            stopping: None,
        };
        let (one, one_far) = pair();
        c.hear(Event::Joined(1, one_far));
        c.hear(Event::Ended(1, false, "signal 9".into()));
        assert_eq!(
            read_line(&mut lines_of(&one)).unwrap(),
            "stop node 1 ended without success (signal 9)"
        );
        let (two, two_far) = pair();
        c.hear(Event::Joined(2, two_far));
        assert_eq!(
            read_line(&mut lines_of(&two)).unwrap(),
            "stop node 1 ended without success (signal 9)"
        );
        assert!(!c.finished());
        c.hear(Event::OwnEnded(false, "cancelled".into()));
        c.hear(Event::Ended(2, false, "cancelled".into()));
        assert!(c.finished());
    }
}
