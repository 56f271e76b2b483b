//! Unit tests of the job link on loopback sockets.

use super::hub::{serve_node, Coordinator, Event};
use super::*;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::mpsc::channel;

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
    let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &tx, &mut || {}));
    stray.write_all(b"hello wrong 1\n").unwrap();
    served.join().unwrap();
    assert!(inbox.try_recv().is_err(), "a wrong token joins nothing");

    let (mut node, theirs) = pair();
    let tx = events.clone();
    let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &tx, &mut || {}));
    node.write_all(b"hello secret 2\nbeat\nend fail exit 3\n")
        .unwrap();
    served.join().unwrap();
    assert!(matches!(inbox.recv().unwrap(), Event::Joined(2, _)));
    match inbox.recv().unwrap() {
        Event::Ended(2, false, detail) => assert_eq!(detail, "exit 3"),
        _ => panic!("not the node's end"),
    }

    let (mut node, theirs) = pair();
    let served = std::thread::spawn(move || serve_node(theirs, "secret", 3, &events, &mut || {}));
    node.write_all(b"hello secret 1\n").unwrap();
    assert_eq!(read_line(&mut lines_of(&node)).unwrap(), "welcome");
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
    let mut c = Coordinator::new(
        3,
        Stopper {
            dir: dir.path().to_owned(),
            grace: Duration::from_secs(1),
            ended,
        },
    );
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

#[test]
fn a_flood_of_idle_connections_never_keeps_a_node_out() {
    // Node 0 listening on loopback (the nodes' address here), 100 idle
    // connections from a stranger, then the real node joins at once.
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let link = JobLink {
        hub: format!("127.0.0.1:{port}"),
        token: "secret".into(),
        rank: 1,
        nodes: 2,
        grace: 1,
    };
    let stopper = Stopper {
        dir: dir.path().to_owned(),
        grace: Duration::from_secs(1),
        ended: Arc::new(AtomicBool::new(true)),
    };
    let (events, _coordinator) = super::hub::hub(&link, stopper.clone()).unwrap();
    let idle: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    let started = Instant::now();
    let (stream, mut lines) = join(&link, &stopper).expect("the node joined");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Strangers are dropped within the hello deadline; the node stays.
    std::thread::sleep(HELLO_WITHIN * 2);
    let mut closed = 0;
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if matches!(s.read(&mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 100, "every stranger let go");
    send(&stream, "beat").unwrap();
    stream.set_read_timeout(Some(BEAT * 2)).unwrap();
    assert_eq!(read_line(&mut lines).unwrap(), "beat");
    drop(events);
}
