//! Node 0's side of the job link: it listens, lets in the nodes that show
//! the job's token, and tells every node to stop when one ends without
//! success or falls silent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use moor_proto::JobLink;

use super::{note, read_line, send, Stopper, BEAT, JOIN_LIMIT, SILENCE};

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

/// Node 0's side of one node's connection.
pub(super) fn serve_node(stream: TcpStream, token: &str, nodes: u32, events: &Sender<Event>) {
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
