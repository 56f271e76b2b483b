//! The controller's end of the agent protocol: `moor-agent stdio` run over
//! an SSH exec channel, magic bytes and hellos first, then requests
//! multiplexed by id. A reader task routes every frame to the request that
//! owns its id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moor_proto::{Frame, Hello, Kind, Request, Response, MAGIC, PROTOCOL_VERSION};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::ssh::Session;

type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Frame>>>>;

/// How long the agent may take to say hello (it may start its daemon first).
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a request may wait for its answer by default. Requests that
/// take longer by design (cancel with a grace period) say so with
/// [`AgentConn::call_within`]; log streams ping instead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to a target's agent.
pub struct AgentConn {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next: AtomicU64,
    host: String,
    /// The agent's hello.
    pub hello: Hello,
}

/// The agent's command line for an install id (`[0-9a-z.-]`, quoted anyway).
pub fn stdio_command(install_id: &str) -> String {
    format!(
        "\"$HOME\"/.moor/agent/{}/moor-agent stdio",
        crate::remote::quote(install_id)
    )
}

impl AgentConn {
    /// Starts `moor-agent stdio` on the session's host and shakes hands.
    pub async fn open(session: &Session, install_id: &str) -> Result<AgentConn> {
        let stream = session.exec_stream(&stdio_command(install_id)).await?;
        let host = session.endpoint.host.clone();
        let (reader, writer) = tokio::io::split(stream);
        Self::handshake(Box::new(reader), Box::new(writer), host).await
    }

    /// Runs the embedded agent on this machine (`--target local`): installs
    /// it under `~/.moor/agent/` here if needed, then speaks to `moor-agent
    /// stdio` over its stdin and stdout.
    pub async fn open_local() -> Result<AgentConn> {
        let path = install_local()?;
        let mut child = tokio::process::Command::new(&path)
            .arg("stdio")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|cause| Error::Io {
                what: "cannot start the local agent",
                path: path.clone(),
                cause,
            })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // The relay ends when its stdin closes; the daemon lives on.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Self::handshake(Box::new(stdout), Box::new(stdin), "localhost".into()).await
    }

    async fn handshake(
        mut reader: Box<dyn AsyncRead + Send + Unpin>,
        mut writer: Box<dyn AsyncWrite + Send + Unpin>,
        host: String,
    ) -> Result<AgentConn> {
        let proto_err = |cause: String| Error::Remote {
            host: host.clone(),
            step: "agent handshake",
            cause,
            fix: "run `moor attach` again to reinstall the agent".into(),
        };
        let mine = Hello {
            protocol: PROTOCOL_VERSION,
            version: crate::agent_bundle::VERSION.to_owned(),
            build: crate::agent_bundle::sha256().to_owned(),
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
        writer.flush().await.map_err(|e| proto_err(e.to_string()))?;

        // Skip anything before the magic (shell noise), then read the hello.
        let mut buf = Vec::new();
        let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
            let start = loop {
                if let Some(pos) = buf.windows(MAGIC.len()).position(|w| w == MAGIC) {
                    break pos + MAGIC.len();
                }
                if buf.len() > 64 * 1024 {
                    return Err(proto_err("no magic bytes from the agent".into()));
                }
                read_more(&mut reader, &mut buf).await.map_err(&proto_err)?;
            };
            buf.drain(..start);
            loop {
                if let Some((frame, used)) =
                    Frame::decode(&buf).map_err(|e| proto_err(e.to_string()))?
                {
                    buf.drain(..used);
                    return match frame.response().map_err(|e| proto_err(e.to_string()))? {
                        Response::Hello { hello } if hello.protocol == PROTOCOL_VERSION => {
                            Ok(hello)
                        }
                        Response::Hello { hello } => Err(proto_err(format!(
                            "agent protocol {}, controller {PROTOCOL_VERSION}",
                            hello.protocol
                        ))),
                        Response::Error { error } => Err(proto_err(error.message)),
                        other => Err(proto_err(format!("unexpected {other:?}"))),
                    };
                }
                read_more(&mut reader, &mut buf).await.map_err(&proto_err)?;
            }
        })
        .await
        .map_err(|_| proto_err("the agent did not answer".into()))??;

        let pending: Pending = Arc::default();
        tokio::spawn(route(reader, buf, pending.clone()));
        Ok(AgentConn {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next: AtomicU64::new(1),
            host,
            hello,
        })
    }

    /// The error for a connection to the agent that broke (exit code 6:
    /// callers that follow a log reconnect on it).
    pub fn lost(&self, cause: impl Into<String>) -> Error {
        Error::Agent {
            host: self.host.clone(),
            cause: cause.into(),
        }
    }

    /// Sends a request; the receiver gets every frame with its id (the
    /// response, then any data and end frames).
    pub async fn request(
        &self,
        request: &Request,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Frame>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        self.write(&request.to_frame(id)).await?;
        Ok((id, rx))
    }

    /// Writes one frame.
    pub async fn write(&self, frame: &Frame) -> Result<()> {
        let bytes = frame.to_bytes().map_err(|e| self.lost(e.to_string()))?;
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
    pub async fn response(&self, rx: &mut mpsc::UnboundedReceiver<Frame>) -> Result<Response> {
        let frame = rx.recv().await.ok_or_else(|| self.lost("closed"))?;
        match frame.response().map_err(|e| self.lost(e.to_string()))? {
            Response::Error { error } => Err(Error::Remote {
                host: self.host.clone(),
                step: "agent request",
                cause: format!("{:?}: {}", error.kind, error.message),
                fix: match error.kind {
                    moor_proto::ErrorKind::NotFound => "check the run id with `moor runs`".into(),
                    _ => "run with -vv; see the agent log in ~/.moor/agent/*/run/log on the host"
                        .into(),
                },
            }),
            response => Ok(response),
        }
    }
}

/// Installs the embedded agent in `~/.moor/agent/<id>/` on this machine
/// (atomically, verified by its hash) unless it is there; returns its path.
fn install_local() -> Result<std::path::PathBuf> {
    let home = crate::workspace::home_dir().ok_or_else(|| {
        Error::usage(
            "HOME is not set",
            "set HOME: the local agent lives in ~/.moor",
        )
    })?;
    let dir = home
        .join(".moor/agent")
        .join(crate::agent_bundle::install_id());
    let path = dir.join("moor-agent");
    let io = |cause| Error::Io {
        what: "cannot install the local agent",
        path: path.clone(),
        cause,
    };
    let present = std::fs::read(&path)
        .map(|bytes| {
            crate::agent_bundle::hex(&sha2::Sha256::digest(&bytes)) == crate::agent_bundle::sha256()
        })
        .unwrap_or(false);
    if !present {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        let tmp = dir.join(format!(".moor-agent.tmp.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o700)
            .open(&tmp)
            .map_err(io)?;
        std::io::Write::write_all(&mut file, crate::agent_bundle::BINARY).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io)?;
    }
    Ok(path)
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
async fn route(mut reader: Box<dyn AsyncRead + Send + Unpin>, mut buf: Vec<u8>, pending: Pending) {
    loop {
        // Decode every whole frame in the buffer, then drop them in one move.
        let mut pos = 0;
        loop {
            match Frame::decode(&buf[pos..]) {
                Ok(Some((frame, used))) => {
                    pos += used;
                    let id = frame.id;
                    let done = match frame.kind {
                        Kind::End => true,
                        Kind::Response => !matches!(frame.response(), Ok(Response::Stream { .. })),
                        _ => false,
                    };
                    let mut pending = pending.lock().expect("pending lock");
                    if let Some(tx) = pending.get(&id) {
                        let _ = tx.send(frame);
                    }
                    if done {
                        pending.remove(&id);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("bad frame from the agent: {e}");
                    pending.lock().expect("pending lock").clear();
                    return;
                }
            }
        }
        buf.drain(..pos);
        if read_more(&mut reader, &mut buf).await.is_err() {
            // Dropping the senders wakes every waiting request with "closed".
            pending.lock().expect("pending lock").clear();
            return;
        }
    }
}
