//! The wire under [`AgentClient`](super::AgentClient): magic bytes and
//! hellos first, then requests multiplexed by id. A reader task routes every
//! frame to the request that owns its id; an error answer becomes
//! [`Error::Refused`] here, once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moor_proto::{Frame, FrameKind, Hello, Request, Response, WireError, MAGIC, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

type Pending = Arc<Mutex<Routes>>;

/// The requests waiting for frames; once the link is closed, none more.
#[derive(Default)]
struct Routes {
    sinks: HashMap<u64, Sink>,
    closed: bool,
}

impl Routes {
    /// Ends every waiting request (dropping its sender wakes it with
    /// "closed") and refuses later ones.
    fn close(&mut self) {
        self.closed = true;
        self.sinks.clear();
    }
}

/// Where a request's frames go: most answers are small and come at once; a
/// download is bounded, so a fast agent waits for the disk instead of
/// filling memory (the reader stops reading, SSH's window closes).
#[derive(Clone)]
enum Sink {
    Unbounded(mpsc::UnboundedSender<Frame>),
    Bounded(mpsc::Sender<Frame>),
}

/// The frames of one request, as they arrive.
pub enum Frames {
    /// For answers and logs.
    Unbounded(mpsc::UnboundedReceiver<Frame>),
    /// For downloads: at most [`BOUNDED_FRAMES`] waiting.
    Bounded(mpsc::Receiver<Frame>),
}

/// How many frames of a bounded request may wait (4 MiB of 256 KiB chunks).
pub const BOUNDED_FRAMES: usize = 16;

impl Frames {
    /// The next frame; `None` once the request is over or the link closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        match self {
            Frames::Unbounded(rx) => rx.recv().await,
            Frames::Bounded(rx) => rx.recv().await,
        }
    }

    /// Whether a frame is already waiting.
    pub fn is_empty(&self) -> bool {
        match self {
            Frames::Unbounded(rx) => rx.is_empty(),
            Frames::Bounded(rx) => rx.is_empty(),
        }
    }
}

/// How long the agent may take to say hello (it may start its daemon first).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a request may wait for its answer by default. Requests that
/// take longer by design (cancel with a grace period) say so with
/// [`Connection::call_within`]; log streams ping instead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Reading half of a byte pipe to an agent.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// Writing half of a byte pipe to an agent.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to an agent.
pub struct Connection {
    writer: tokio::sync::Mutex<Writer>,
    pending: Pending,
    next: AtomicU64,
    host: String,
    /// Why the agent's hello was refused, when it was (a pipelined
    /// handshake learns it after requests went out).
    refused_hello: Arc<Mutex<Option<HelloRefused>>>,
}

/// Why a pipelined handshake failed.
#[derive(Clone)]
enum HelloRefused {
    /// No hello, or a wrong one.
    Handshake(String),
    /// The agent answered a refusal in its place (an unsafe folder).
    Agent(WireError),
}

impl Connection {
    /// Shakes hands over a byte pipe to `moor-agent stdio` (or a daemon's
    /// socket): magic and hello both ways, the agent's hello read before
    /// this returns. `host` names the agent in errors.
    pub async fn handshake(
        reader: Reader,
        mut writer: Writer,
        host: String,
        limit: Duration,
    ) -> Result<Connection> {
        send_hello(&mut writer, &host).await?;
        let (buf, reader) = read_hello(reader, &host, limit).await?;
        let conn = Self::new(writer, host);
        tokio::spawn(route(reader, buf, conn.pending.clone()));
        Ok(conn)
    }

    /// The handshake without waiting for the agent's hello: requests go out
    /// behind this side's hello at once (a round trip less on a far link,
    /// and the agent's start-up overlaps them). The agent's hello is read
    /// before any answer; a bad or missing one fails every request with the
    /// handshake's error, as [`Connection::handshake`] would have.
    pub async fn handshake_pipelined(
        reader: Reader,
        mut writer: Writer,
        host: String,
    ) -> Result<Connection> {
        send_hello(&mut writer, &host).await?;
        let conn = Self::new(writer, host);
        let (routed, refused) = (conn.pending.clone(), conn.refused_hello.clone());
        let agent = conn.host.clone();
        tokio::spawn(async move {
            match read_hello(reader, &agent, HELLO_TIMEOUT).await {
                Ok((buf, reader)) => route(reader, buf, routed).await,
                Err(e) => {
                    let why = match e {
                        Error::Refused {
                            kind, message, fix, ..
                        } => HelloRefused::Agent(WireError { kind, message, fix }),
                        e => HelloRefused::Handshake(e.to_string()),
                    };
                    *refused.lock().expect("hello lock") = Some(why);
                    routed.lock().expect("pending lock").close();
                }
            }
        });
        Ok(conn)
    }

    /// A connection with no request yet, whose reading the caller starts.
    fn new(writer: Writer, host: String) -> Connection {
        Connection {
            writer: tokio::sync::Mutex::new(writer),
            pending: Arc::default(),
            next: AtomicU64::new(1),
            host,
            refused_hello: Arc::default(),
        }
    }

    /// The host the agent runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The error for a connection to the agent that broke (exit code 6:
    /// callers that follow a log reconnect on it).
    pub fn lost(&self, cause: impl Into<String>) -> Error {
        match self.refused_hello.lock().expect("hello lock").clone() {
            Some(HelloRefused::Handshake(why)) => return handshake_error(&self.host, why),
            Some(HelloRefused::Agent(error)) => return self.refused(error),
            None => {}
        }
        Error::Agent {
            host: self.host.clone(),
            cause: cause.into(),
        }
    }

    /// The error for an agent's refusal.
    pub fn refused(&self, error: WireError) -> Error {
        Error::Refused {
            host: self.host.clone(),
            kind: error.kind,
            message: error.message,
            fix: error.fix,
        }
    }

    /// Sends a request; the receiver gets every frame with its id (the
    /// response, then any data and end frames).
    pub async fn request(&self, request: &Request) -> Result<(u64, Frames)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.send(request, Sink::Unbounded(tx)).await?;
        Ok((id, Frames::Unbounded(rx)))
    }

    /// Sends a request whose frames wait at most [`BOUNDED_FRAMES`] at a
    /// time: until they are taken, no frame of this connection is read.
    pub async fn request_bounded(&self, request: &Request) -> Result<(u64, Frames)> {
        let (tx, rx) = mpsc::channel(BOUNDED_FRAMES);
        let id = self.send(request, Sink::Bounded(tx)).await?;
        Ok((id, Frames::Bounded(rx)))
    }

    async fn send(&self, request: &Request, sink: Sink) -> Result<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut routes = self.pending.lock().expect("pending lock");
            if routes.closed {
                return Err(self.lost("closed"));
            }
            routes.sinks.insert(id, sink);
        }
        self.write(&request.to_frame(id)).await?;
        Ok(id)
    }

    /// Writes one frame.
    pub async fn write(&self, frame: &Frame) -> Result<()> {
        let bytes = frame.to_bytes().map_err(|e| match e {
            moor_proto::FrameError::TooLarge(_) => Error::usage(
                format!("the request to the agent on {} is too large: {e}", self.host),
                "send fewer or smaller variables (-e, --env-file, environment_variables) and a shorter command; large values belong in files of the source",
            ),
            e => self.lost(e.to_string()),
        })?;
        let mut w = self.writer.lock().await;
        w.write_all(&bytes)
            .await
            .map_err(|e| self.lost(e.to_string()))?;
        w.flush().await.map_err(|e| self.lost(e.to_string()))
    }

    /// Sends a request and waits for its response.
    pub async fn call(&self, request: &Request) -> Result<Response> {
        self.call_within(request, CALL_TIMEOUT).await
    }

    /// Sends a request and waits at most `limit` for its response.
    pub async fn call_within(&self, request: &Request, limit: Duration) -> Result<Response> {
        let (_, mut rx) = self.request(request).await?;
        tokio::time::timeout(limit, self.response(&mut rx))
            .await
            .map_err(|_| self.lost(format!("no answer within {}s", limit.as_secs())))?
    }

    /// The next frame of a request, as a response; an error response is an error.
    pub async fn response(&self, rx: &mut Frames) -> Result<Response> {
        let frame = rx.recv().await.ok_or_else(|| self.lost("closed"))?;
        match frame.response().map_err(|e| self.lost(e.to_string()))? {
            Response::Error { error } => Err(self.refused(error)),
            response => Ok(response),
        }
    }
}

/// The error of a handshake that failed for `cause`.
fn handshake_error(host: &str, cause: String) -> Error {
    Error::Remote {
        host: host.to_owned(),
        step: "agent handshake",
        cause,
        fix: "run `moor attach` again to reinstall the agent".into(),
    }
}

/// Writes the magic bytes and this side's hello.
async fn send_hello(writer: &mut Writer, host: &str) -> Result<()> {
    let proto_err = |cause: String| handshake_error(host, cause);
    // The agent checks the protocol; the build is for its logs.
    let mine = Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: String::new(),
    };
    let mut out = MAGIC.to_vec();
    Request::Hello { hello: mine }
        .to_frame(0)
        .encode(&mut out)
        .map_err(|e| proto_err(e.to_string()))?;
    writer
        .write_all(&out)
        .await
        .map_err(|e| proto_err(e.to_string()))?;
    writer.flush().await.map_err(|e| proto_err(e.to_string()))
}

/// Reads the agent's hello, skipping anything before the magic (shell
/// noise), within `limit`, and checks its protocol; gives back what was
/// read after it.
async fn read_hello(mut reader: Reader, host: &str, limit: Duration) -> Result<(Vec<u8>, Reader)> {
    let proto_err = |cause: String| handshake_error(host, cause);
    let mut buf = Vec::new();
    tokio::time::timeout(limit, async {
        let start = loop {
            if let Some(pos) = buf.windows(MAGIC.len()).position(|w| w == MAGIC) {
                break pos + MAGIC.len();
            }
            if buf.len() > 64 * 1024 {
                return Err(proto_err("no magic bytes from the agent".into()));
            }
            read_more(&mut reader, &mut buf).await.map_err(proto_err)?;
        };
        buf.drain(..start);
        loop {
            if let Some((frame, used)) =
                Frame::decode(&buf).map_err(|e| proto_err(e.to_string()))?
            {
                buf.drain(..used);
                return match frame.response().map_err(|e| proto_err(e.to_string()))? {
                    Response::Hello { hello } if hello.protocol == PROTOCOL_VERSION => Ok(()),
                    Response::Hello { hello } => Err(proto_err(format!(
                        "agent protocol {}, controller {PROTOCOL_VERSION}",
                        hello.protocol
                    ))),
                    // The agent refused before its hello (an unsafe folder).
                    Response::Error { error } => Err(Error::Refused {
                        host: host.to_owned(),
                        kind: error.kind,
                        message: error.message,
                        fix: error.fix,
                    }),
                    other => Err(proto_err(format!("unexpected {other:?}"))),
                };
            }
            read_more(&mut reader, &mut buf).await.map_err(proto_err)?;
        }
    })
    .await
    .map_err(|_| proto_err("the agent did not answer".into()))??;
    Ok((buf, reader))
}

/// Appends what the reader has (up to 256 KiB) to `buf`, without zeroing.
async fn read_more<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    buf.reserve(256 * 1024);
    match reader.read_buf(buf).await {
        Ok(0) => Err("the agent closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads frames and hands each to its request; drops a request's sender at
/// its end (a final response, or an end frame after a stream).
async fn route(mut reader: Reader, mut buf: Vec<u8>, pending: Pending) {
    loop {
        // Decode every whole frame in the buffer, then drop them in one move.
        let mut pos = 0;
        loop {
            match Frame::decode(&buf[pos..]) {
                Ok(Some((frame, used))) => {
                    pos += used;
                    let id = frame.id;
                    let done = match frame.kind {
                        FrameKind::End => true,
                        FrameKind::Response => {
                            !matches!(frame.response(), Ok(Response::Stream { .. }))
                        }
                        _ => false,
                    };
                    let sink = {
                        let mut pending = pending.lock().expect("pending lock");
                        let sink = pending.sinks.get(&id).cloned();
                        if done {
                            pending.sinks.remove(&id);
                        }
                        sink
                    };
                    match sink {
                        Some(Sink::Unbounded(tx)) => {
                            let _ = tx.send(frame);
                        }
                        // Waits (outside the lock) while the taker is behind.
                        Some(Sink::Bounded(tx)) => {
                            let _ = tx.send(frame).await;
                        }
                        None => {}
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("bad frame from the agent: {e}");
                    pending.lock().expect("pending lock").close();
                    return;
                }
            }
        }
        buf.drain(..pos);
        if read_more(&mut reader, &mut buf).await.is_err() {
            pending.lock().expect("pending lock").close();
            return;
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
