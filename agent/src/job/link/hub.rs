//! Node 0's side of the job link: it listens on the address the nodes use,
//! lets in the nodes that show the job's token (a stranger has
//! [`HELLO_WITHIN`] to, and is never counted against a node), and tells
//! every node to stop when one ends without success or falls silent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::net::{Ipv4Addr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use moor_proto::JobLink;

use super::{note, read_line, send, Stopper, BEAT, HELLO_WITHIN, JOIN_LIMIT, SILENCE};

/// Connections served at once that have not shown the token.
const MAX_STRANGERS: usize = 64;

/// What node 0's coordinator hears.
pub(super) enum Event {
    Joined(u32, TcpStream),
    Ended(u32, bool, String),
    Lost(u32, String),
    OwnEnded(bool, String),
}

/// Node 0: listens, and runs the coordinator.
pub(super) fn hub(
    link: &JobLink,
    stopper: Stopper,
) -> Result<(Sender<Event>, JoinHandle<()>), String> {
    let port: u16 = link
        .hub
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {:?}", link.hub))?;
    let listener = listen(&link.hub, port, &stopper)?;
    let (events, inbox) = channel();
    let token = link.token.clone();
    let nodes = link.nodes;
    let to_coordinator = events.clone();
    std::thread::spawn(move || accept(listener, token, nodes, to_coordinator));
    let mut coordinator = Coordinator::new(link.nodes, stopper);
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

/// Listens on the address the nodes use (the hub's), else, when this host
/// cannot bind it (a name or a NAT address given as `--master-addr`), on
/// every address, saying so in the run's log.
fn listen(hub: &str, port: u16, stopper: &Stopper) -> Result<TcpListener, String> {
    let host = hub.rsplit_once(':').map_or(hub, |(h, _)| h);
    let ip = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4()))
        .map(|a| a.ip());
    if let Some(ip) = ip {
        if let Ok(listener) = TcpListener::bind((ip, port)) {
            return Ok(listener);
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    note(
        &stopper.dir,
        &format!("job link: {host} is not an address of this host; listening on all of them"),
    );
    Ok(listener)
}

/// Serves every connection: a node is counted against nothing once it
/// showed the token; a connection that has not yet has [`HELLO_WITHIN`] to
/// do so, and at most [`MAX_STRANGERS`] such are served at once (anyone on
/// the network may connect; a real node's is never closed for lack of
/// room: it joins as soon as room is free, and retries until it does).
fn accept(listener: TcpListener, token: String, nodes: u32, events: Sender<Event>) {
    let strangers = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if strangers.fetch_add(1, Ordering::SeqCst) >= MAX_STRANGERS {
            strangers.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let events = events.clone();
        let token = token.clone();
        let strangers = strangers.clone();
        std::thread::spawn(move || {
            let mut counted = Some(strangers);
            serve_node(stream, &token, nodes, &events, &mut || {
                if let Some(s) = counted.take() {
                    s.fetch_sub(1, Ordering::SeqCst);
                }
            });
        });
    }
}

/// Node 0's view of the job.
pub(super) struct Coordinator {
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
    pub(super) fn new(nodes: u32, stopper: Stopper) -> Coordinator {
        Coordinator {
            nodes,
            stopper,
            joined: BTreeMap::new(),
            done: BTreeSet::new(),
            own_ended: false,
            stopping: None,
        }
    }

    /// Node 0 has ended, and every other node has too (or is gone).
    pub(super) fn finished(&self) -> bool {
        self.own_ended && (1..self.nodes).all(|r| self.done.contains(&r))
    }

    pub(super) fn hear(&mut self, event: Event) {
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

/// Node 0's side of one node's connection; `known()` is called once the
/// peer showed the token, or once it will not (the connection is done).
pub(super) fn serve_node(
    stream: TcpStream,
    token: &str,
    nodes: u32,
    events: &Sender<Event>,
    known: &mut dyn FnMut(),
) {
    let rank = hello(&stream, token, nodes);
    known();
    let Some((rank, mut lines)) = rank else {
        return;
    };
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    if send(&writer, "welcome").is_err() || stream.set_read_timeout(Some(SILENCE)).is_err() {
        return;
    }
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

/// The rank of a peer that says `hello TOKEN RANK` within [`HELLO_WITHIN`].
fn hello(stream: &TcpStream, token: &str, nodes: u32) -> Option<(u32, BufReader<TcpStream>)> {
    stream.set_read_timeout(Some(HELLO_WITHIN)).ok()?;
    let mut lines = stream.try_clone().map(BufReader::new).ok()?;
    let line = read_line(&mut lines).ok()?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("hello"), Some(t), Some(rank)) if t == token => rank
            .parse::<u32>()
            .ok()
            .filter(|r| (1..nodes).contains(r))
            .map(|r| (r, lines)),
        _ => None,
    }
}
