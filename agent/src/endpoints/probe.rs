//! The readiness probe of an endpoint: `GET PATH` over HTTP/1.1 to the
//! server's unix socket or port on this host; an answer with a status below
//! 500 within the time limit means it is up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Where a server is asked.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    /// 127.0.0.1:PORT.
    Port(u16),
    /// A unix socket.
    Socket(&'a Path),
}

/// Whether the server at `at` answers `GET path` within `limit`.
pub fn answers(at: At, path: &str, limit: Duration) -> bool {
    status(at, path, limit).is_some_and(|code| code < 500)
}

/// The HTTP status of `GET path` at `at`, if one came.
pub fn status(at: At, path: &str, limit: Duration) -> Option<u16> {
    match at {
        At::Port(port) => {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stream = TcpStream::connect_timeout(&addr, limit).ok()?;
            stream.set_read_timeout(Some(limit)).ok()?;
            stream.set_write_timeout(Some(limit)).ok()?;
            ask(stream, &format!("127.0.0.1:{port}"), path)
        }
        At::Socket(socket) => {
            // A local connect: at once, or refused.
            let stream = UnixStream::connect(socket).ok()?;
            stream.set_read_timeout(Some(limit)).ok()?;
            stream.set_write_timeout(Some(limit)).ok()?;
            ask(stream, "localhost", path)
        }
    }
}

/// Sends the probe on `stream` and reads the status line.
fn ask(mut stream: impl Read + Write, host: &str, path: &str) -> Option<u16> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: moor-agent\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    // The status line is all the probe needs.
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    parse_status(&head[..got])
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut words = text.split(' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    words.next()?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_gives_the_code() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2"), None);
    }

    #[test]
    fn a_real_server_is_probed_and_a_closed_port_is_not_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /ready HTTP/1.1\r\n"));
            conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        });
        assert!(answers(At::Port(port), "/ready", Duration::from_secs(2)));
        server.join().unwrap();
        let limit = Duration::from_millis(200);
        assert!(!answers(At::Port(port), "/ready", limit));
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET / HTTP/1.1\r\n"));
            conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        });
        assert!(answers(At::Socket(&socket), "/", limit));
        server.join().unwrap();
        assert!(!answers(At::Socket(&dir.path().join("none")), "/", limit));
    }
}
