//! `moor forward TARGET REMOTE_PORT[:LOCAL_PORT]...` (or `--run RUN PORT...`):
//! local ports on 127.0.0.1 that reach ports on the target, each local
//! connection one `direct-tcpip` channel of the target's SSH connection (as
//! `ssh -L`), with the target's stored settings and pinned host key. Many
//! connections at once; when the SSH connection drops, the next local
//! connection opens a new one. Until Ctrl-C, which ends it with exit 0 and
//! a summary.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::client::Msg;
use russh::ChannelStream;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};

use super::Context;
use crate::cli::ForwardArgs;
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::reach::{Access, Targets};
use crate::ssh::Session;
use crate::store::Target;

/// How long a channel to the remote port may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Each direction's copy buffer.
const COPY_BUFFER: usize = 256 * 1024;

/// One forwarded port.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    /// On 127.0.0.1 here.
    pub local_port: u16,
    /// On 127.0.0.1 of the target.
    pub remote_port: u16,
}

/// How forwarding went, when Ctrl-C ended it.
#[derive(Debug, Serialize)]
pub struct Forwarded {
    /// The target.
    pub target: String,
    /// The ports.
    pub forwards: Vec<Forward>,
    /// Local connections carried to the target.
    pub connections: u64,
    /// Local connections that could not reach the remote port.
    pub failed: u64,
    /// Times the SSH connection was opened again after it dropped.
    pub reconnects: u32,
}

impl Render for Forwarded {
    fn render(&self, out: &mut Text) {
        out.line(format!(
            "forwarded {} connection(s) to {} ({} failed, {} reconnect(s))",
            self.connections, self.target, self.failed, self.reconnects
        ));
    }
}

/// `REMOTE[:LOCAL]`: the remote port and the local one (the remote one when
/// not given).
pub fn port_pair(text: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::usage(
            format!("{text:?} is not PORT or REMOTE_PORT:LOCAL_PORT"),
            "give ports as numbers, e.g. `6006` or `8888:18888` (local 0: any free port)",
        )
    };
    let (remote, local) = text.split_once(':').unwrap_or((text, text));
    let remote: u16 = remote.parse().map_err(|_| bad())?;
    let local: u16 = local.parse().map_err(|_| bad())?;
    if remote == 0 {
        return Err(bad());
    }
    Ok((remote, local))
}

/// `moor forward`.
pub async fn forward(args: &ForwardArgs, ctx: &Context) -> Result<Forwarded> {
    let store = ctx.store()?;
    let (target, ports) = match &args.run {
        Some(run) => (ctx.targets.of_run(&store, run)?.0, &args.args[..]),
        None => (
            ctx.targets.attached(&store, &args.args[0])?,
            &args.args[1..],
        ),
    };
    if ports.is_empty() {
        return Err(Error::usage(
            "no port to forward",
            "name one or more: moor forward TARGET PORT[:LOCAL]...",
        ));
    }
    if target.kind == crate::target_kind::TargetKind::Local {
        return Err(Error::usage(
            "the local target is this machine: its ports need no forwarding",
            "connect to 127.0.0.1:PORT directly",
        ));
    }
    let pairs = ports
        .iter()
        .map(|p| port_pair(p))
        .collect::<Result<Vec<_>>>()?;
    let access = Access::from_args(&args.connect)?;
    let mut interrupt = crate::signals::ctrl_c()?;
    // Connected first: a wrong key or host key fails before any port opens.
    let tunnel = Arc::new(Tunnel::open(ctx.targets.clone(), target, access).await?);
    let mut forwards = Vec::new();
    let mut listeners = Vec::new();
    for (remote, local) in pairs {
        let listener = TcpListener::bind(("127.0.0.1", local))
            .await
            .map_err(|e| {
                Error::usage(
                    format!("cannot listen on 127.0.0.1:{local} ({e})"),
                    format!("choose another local port: moor forward TARGET {remote}:OTHER (0: any free port)"),
                )
            })?;
        let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(local);
        forwards.push(Forward {
            local_port,
            remote_port: remote,
        });
        listeners.push((listener, remote));
    }
    for f in &forwards {
        eprintln!(
            "moor: forwarding 127.0.0.1:{} to {} port {}",
            f.local_port, tunnel.target.name, f.remote_port
        );
    }
    eprintln!("moor: Ctrl-C stops");
    let mut accepting = Vec::new();
    for (listener, remote) in listeners {
        let tunnel = tunnel.clone();
        accepting.push(tokio::spawn(async move {
            while let Ok((local, _)) = listener.accept().await {
                let tunnel = tunnel.clone();
                tokio::spawn(async move { tunnel.carry(local, remote).await });
            }
        }));
    }
    interrupt.recv().await;
    for task in &accepting {
        task.abort();
    }
    Ok(Forwarded {
        target: tunnel.target.name.clone(),
        forwards,
        connections: tunnel.connections.load(Ordering::Relaxed),
        failed: tunnel.failed.load(Ordering::Relaxed),
        reconnects: tunnel.reconnects.load(Ordering::Relaxed),
    })
}

/// The target's SSH connection, opened again when it has dropped.
struct Tunnel {
    targets: Targets,
    target: Target,
    access: Access,
    session: tokio::sync::Mutex<Arc<Session>>,
    connections: AtomicU64,
    failed: AtomicU64,
    reconnects: AtomicU32,
}

impl Tunnel {
    async fn open(targets: Targets, target: Target, access: Access) -> Result<Tunnel> {
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
    async fn carry(&self, mut local: TcpStream, remote: u16) {
        let _ = local.set_nodelay(true);
        let mut channel = match self.channel(remote).await {
            Ok(channel) => channel,
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("moor: a connection to port {remote} failed: {e}");
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
    async fn channel(&self, remote: u16) -> Result<ChannelStream<Msg>> {
        let session = self.live_session().await?;
        match session
            .direct_tcpip("127.0.0.1", remote, OPEN_TIMEOUT)
            .await
        {
            Err(_) if session.is_closed() => {
                // It dropped just now: once more, on a new connection.
                let session = self.live_session().await?;
                session
                    .direct_tcpip("127.0.0.1", remote, OPEN_TIMEOUT)
                    .await
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

#[cfg(test)]
mod tests {
    use super::port_pair;

    #[test]
    fn ports_are_remote_then_local() {
        assert_eq!(port_pair("6006").unwrap(), (6006, 6006));
        assert_eq!(port_pair("8888:18888").unwrap(), (8888, 18888));
        assert_eq!(port_pair("8888:0").unwrap(), (8888, 0));
        for bad in ["", "0", "x", "80:", ":80", "70000", "80:70000", "1:2:3"] {
            assert!(port_pair(bad).is_err(), "{bad}");
        }
    }
}
