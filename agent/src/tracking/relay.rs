//! MLflow in Docker-environment runs. A run's tracking endpoint listens on
//! the host's 127.0.0.1, which a container on a network of its own does
//! not see (and the Docker engine may even be another machine's). So the
//! agent carries the connections: in the container, `moor-agent
//! tracking-relay PORT` (started with `docker exec`, its stdin and stdout
//! attached to the agent) listens on the container's 127.0.0.1:PORT and
//! sends each connection's bytes, framed, over its stdio; on the host the
//! agent opens a connection to the endpoint for each and sends the answers
//! back ([`carry`] is both halves). The run's command starts once the relay
//! listens (`moor-agent await-port PORT -- COMMAND`), so its first MLflow
//! call finds it.
//!
//! A frame is a connection's id (u32), a length (u32, big-endian) and that
//! many bytes; length 0 says the connection closed on that side.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The most bytes one frame carries.
const CHUNK: usize = 64 * 1024;
/// How long `await-port` waits for the relay before starting the command
/// anyway (its MLflow calls then fail, as they would without moor).
const AWAIT: Duration = Duration::from_secs(30);
/// How long the host side waits for the endpoint to accept a connection.
const DIAL: Duration = Duration::from_secs(10);

/// Carries connections over one framed stream: those `accepted` here (the
/// container's side) get new ids; a frame with an id not seen before opens
/// a connection to `dial` (the host's side). Returns when `frames_in` ends.
pub async fn carry<R, W>(
    mut frames_in: R,
    frames_out: W,
    mut accepted: Option<mpsc::Receiver<TcpStream>>,
    dial: Option<SocketAddr>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, out_rx) = mpsc::channel::<(u32, Vec<u8>)>(64);
    let writer = tokio::spawn(write_frames(frames_out, out_rx));
    let mut conns: HashMap<u32, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut next_id = 0u32;
    // Ids only grow: a frame for an id at or below the highest seen belongs
    // to a connection already closed here, and opens nothing.
    let mut highest = 0u32;
    let result = loop {
        let new_conn = async {
            match accepted.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = read_frame(&mut frames_in) => {
                let (id, bytes) = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
                if let Entry::Vacant(slot) = conns.entry(id) {
                    let Some(addr) = dial.filter(|_| !bytes.is_empty() && id > highest) else {
                        continue;
                    };
                    highest = id;
                    match tokio::time::timeout(DIAL, TcpStream::connect(addr)).await {
                        Ok(Ok(stream)) => {
                            slot.insert(open(id, stream, out.clone()));
                        }
                        _ => {
                            // Refused or slow: the other side sees it closed.
                            let _ = out.send((id, Vec::new())).await;
                            continue;
                        }
                    }
                }
                let closed = bytes.is_empty();
                if let Some(conn) = conns.get(&id) {
                    let _ = conn.send(bytes);
                }
                if closed {
                    conns.remove(&id);
                }
            }
            Some(stream) = new_conn => {
                next_id = next_id.wrapping_add(1);
                conns.insert(next_id, open(next_id, stream, out.clone()));
            }
        }
    };
    drop(conns);
    drop(out);
    let _ = writer.await;
    result
}

/// Starts carrying one connection: its bytes out as frames of `id`, and
/// what comes for it (an empty chunk: close) written to it.
fn open(
    id: u32,
    stream: TcpStream,
    out: mpsc::Sender<(u32, Vec<u8>)>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = out.send((id, Vec::new())).await;
                    return;
                }
                Ok(n) => {
                    if out.send((id, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if bytes.is_empty() || write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    tx
}

async fn write_frames<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<(u32, Vec<u8>)>) {
    while let Some((id, bytes)) = rx.recv().await {
        let mut frame = Vec::with_capacity(8 + bytes.len());
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        frame.extend_from_slice(&bytes);
        if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

/// The next frame; `None` at the stream's end.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(u32, Vec<u8>)>> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > CHUNK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a relay frame of {len} bytes (at most {CHUNK})"),
        ));
    }
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes).await?;
    Ok(Some((id, bytes)))
}

/// `moor-agent tracking-relay PORT`, in the container: listens on its
/// 127.0.0.1:PORT and carries each connection over stdin/stdout until
/// stdin ends.
pub fn relay_in_container(port: &str) -> crate::error::Result<()> {
    let port: u16 = port.parse().map_err(|_| format!("not a port: {port}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if tx.send(stream).await.is_err() {
                    return;
                }
            }
        });
        carry(tokio::io::stdin(), tokio::io::stdout(), Some(rx), None).await
    })?;
    Ok(())
}

/// `moor-agent await-port PORT -- COMMAND...`: waits (at most 30 s) until
/// something listens on 127.0.0.1:PORT, then becomes COMMAND (127 when
/// there is no such command, as a shell exits).
pub fn await_port_then_exec(port: &str, argv: &[String]) -> crate::error::Result<()> {
    use std::os::unix::process::CommandExt;
    let port: u16 = port.parse().map_err(|_| format!("not a port: {port}"))?;
    let at = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while std::net::TcpStream::connect_timeout(&at, Duration::from_millis(200)).is_err() {
        if started.elapsed() > AWAIT {
            eprintln!(
                "moor: the run's MLflow endpoint is not reachable in this container (no relay on port {port}); starting anyway"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let error = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    // As a shell says it: 127 for a command not found, 126 otherwise.
    eprintln!("moor: cannot start {}: {error}", argv[0]);
    std::process::exit(if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server standing for the endpoint: answers each chunk with
    /// "echo:" and the chunk, closes when the client does.
    async fn echo_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let mut answer = b"echo:".to_vec();
                        answer.extend_from_slice(&buf[..n]);
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn connections_on_one_side_reach_the_server_on_the_other() {
        let server = echo_server().await;
        // The container's listener, and the framed pipe between the sides.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_at = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = tx.send(stream).await;
            }
        });
        let (container_end, host_end) = tokio::io::duplex(1 << 16);
        let (c_read, c_write) = tokio::io::split(container_end);
        let (h_read, h_write) = tokio::io::split(host_end);
        tokio::spawn(carry(c_read, c_write, Some(rx), None));
        tokio::spawn(carry(h_read, h_write, None, Some(server)));
        // Three clients at once, each with two requests.
        let mut clients = Vec::new();
        for n in 0..3 {
            clients.push(tokio::spawn(async move {
                let mut c = TcpStream::connect(relay_at).await.unwrap();
                let mut got = Vec::new();
                for request in [format!("a{n}"), format!("b{n}")] {
                    c.write_all(request.as_bytes()).await.unwrap();
                    let mut buf = vec![0u8; 64];
                    let k = c.read(&mut buf).await.unwrap();
                    got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
                }
                c.shutdown().await.unwrap();
                // The server closes after the client: the relay says so.
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).await.unwrap();
                (got, rest.len())
            }));
        }
        for (n, client) in clients.into_iter().enumerate() {
            let (got, rest) = tokio::time::timeout(Duration::from_secs(10), client)
                .await
                .expect("answered in time")
                .unwrap();
            assert_eq!(got, vec![format!("echo:a{n}"), format!("echo:b{n}")]);
            assert_eq!(rest, 0);
        }
    }

    #[tokio::test]
    async fn a_refused_dial_closes_the_connection_and_bad_frames_end_the_stream() {
        // Nothing listens at the endpoint's address.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let (mut ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(theirs);
        let host = tokio::spawn(carry(r, w, None, Some(dead)));
        let mut frame = 7u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&3u32.to_be_bytes());
        frame.extend_from_slice(b"GET");
        ours.write_all(&frame).await.unwrap();
        let back = read_frame(&mut ours).await.unwrap().unwrap();
        assert_eq!(back, (7, Vec::new()), "the connection is said closed");
        // A frame longer than any the relay sends: the stream is refused.
        let mut bad = 8u32.to_be_bytes().to_vec();
        bad.extend_from_slice(&u32::MAX.to_be_bytes());
        ours.write_all(&bad).await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), host)
            .await
            .unwrap();
        assert!(ended.unwrap().is_err());
    }
}
