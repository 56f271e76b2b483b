//! A target's SSH connection carrying local connections, as `ssh -L` does:
//! each one a channel to a port on the host's 127.0.0.1 (`direct-tcpip`) or
//! to a unix socket on the host (`direct-streamlocal`), opened as the
//! target's user. When the connection drops, the next local connection
//! opens a new one. `moor forward` is its one user.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::client::Msg;
use russh::ChannelStream;
use tokio::net::TcpStream;

use super::{Access, Targets};
use crate::error::Result;
use crate::ssh::Session;
use crate::store::Target;

/// How long a channel to the remote end may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Each direction's copy buffer.
const COPY_BUFFER: usize = 256 * 1024;

/// Where a carried connection goes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A port on the host's 127.0.0.1.
    Port(u16),
    /// A unix socket on the host (an endpoint's).
    Socket(String),
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remote::Port(port) => write!(f, "port {port}"),
            Remote::Socket(path) => write!(f, "unix:{path}"),
        }
    }
}

/// The target's SSH connection, opened again when it has dropped, and what
/// it carried.
pub struct Tunnel {
    targets: Targets,
    /// The target.
    pub target: Target,
    access: Access,
    session: tokio::sync::Mutex<Arc<Session>>,
    /// Local connections carried.
    pub connections: AtomicU64,
    /// Local connections that could not reach the remote end.
    pub failed: AtomicU64,
    /// Times the SSH connection was opened again.
    pub reconnects: AtomicU32,
}

impl Tunnel {
    /// Connects to `target` (a wrong key or host key fails here, before
    /// any local port opens).
    pub async fn open(targets: Targets, target: Target, access: Access) -> Result<Tunnel> {
        let session = targets.session(&target, &access).await?;
        Ok(Tunnel {
            targets,
            target,
            access,
            session: tokio::sync::Mutex::new(Arc::new(session)),
            connections: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            reconnects: AtomicU32::new(0),
        })
    }

    /// Carries one local connection to `remote` on the target, both ways,
    /// until either side closes.
    pub async fn carry(&self, mut local: TcpStream, remote: &Remote) {
        let _ = local.set_nodelay(true);
        let mut channel = match self.channel(remote).await {
            Ok(channel) => channel,
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("moor: a connection to {remote} failed: {e}");
                return;
            }
        };
        self.connections.fetch_add(1, Ordering::Relaxed);
        // Buffers of a few SSH packets each way (the default 8 KiB cut every
        // 32 KiB packet in four).
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut local,
            &mut channel,
            COPY_BUFFER,
            COPY_BUFFER,
        )
        .await;
    }

    /// A channel to `remote`, on a new SSH connection if the last one dropped.
    async fn channel(&self, remote: &Remote) -> Result<ChannelStream<Msg>> {
        let session = self.live_session().await?;
        match open(&session, remote).await {
            Err(_) if session.is_closed() => {
                // It dropped just now: once more, on a new connection.
                open(&*self.live_session().await?, remote).await
            }
            opened => opened,
        }
    }

    /// The SSH connection, reconnected first if it has ended.
    async fn live_session(&self) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        if current.is_closed() {
            eprintln!(
                "moor: the SSH connection to {} ended; connecting again",
                self.target.name
            );
            *current = Arc::new(self.targets.session(&self.target, &self.access).await?);
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(current.clone())
    }
}

async fn open(session: &Session, remote: &Remote) -> Result<ChannelStream<Msg>> {
    match remote {
        Remote::Port(port) => session.direct_tcpip("127.0.0.1", *port, OPEN_TIMEOUT).await,
        Remote::Socket(path) => session.direct_streamlocal(path, OPEN_TIMEOUT).await,
    }
}
