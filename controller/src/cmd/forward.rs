//! `moor forward TARGET REMOTE_PORT[:LOCAL_PORT]...` (or `--run RUN PORT...`,
//! or `--endpoint NAME [LOCAL_PORT]`): local ports on 127.0.0.1 that reach
//! ports on the target (or an endpoint's unix socket), each local
//! connection one channel of the target's SSH connection (as `ssh -L`),
//! with the target's stored settings and pinned host key
//! ([`crate::reach::tunnel`]). Many connections at once; when the SSH
//! connection drops, the next local connection opens a new one. Until
//! Ctrl-C, which ends it with exit 0 and a summary.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;

use super::Context;
use crate::cli::ForwardArgs;
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::reach::tunnel::{Remote, Tunnel};
use crate::reach::Access;
use crate::store::Target;

/// One forwarded port.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    /// On 127.0.0.1 here.
    pub local_port: u16,
    /// On 127.0.0.1 of the target (0 for a socket).
    pub remote_port: u16,
    /// The unix socket on the target (an endpoint's), if that is where it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
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
    let access = Access::from_args(&args.connect)?;
    let (target, pairs) = match &args.endpoint {
        Some(name) => endpoint_pair(ctx, &access, name, &args.args).await?,
        None => port_pairs(ctx, args)?,
    };
    if target.kind == crate::target_kind::TargetKind::Local {
        return Err(Error::usage(
            "the local target is this machine: its ports need no forwarding",
            "connect to 127.0.0.1:PORT directly",
        ));
    }
    let mut interrupt = crate::signals::ctrl_c()?;
    // Connected first: a wrong key or host key fails before any port opens.
    let tunnel = Arc::new(Tunnel::open(ctx.targets.clone(), target, access).await?);
    let mut forwards = Vec::new();
    let mut listeners = Vec::new();
    for (remote, local) in pairs {
        let listener = TcpListener::bind(("127.0.0.1", local)).await.map_err(|e| {
            Error::usage(
                format!("cannot listen on 127.0.0.1:{local} ({e})"),
                "choose another local port (0: any free port)",
            )
        })?;
        let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(local);
        eprintln!(
            "moor: forwarding 127.0.0.1:{local_port} to {} {remote}",
            tunnel.target.name
        );
        forwards.push(Forward {
            local_port,
            remote_port: match remote {
                Remote::Port(port) => port,
                Remote::Socket(_) => 0,
            },
            socket: match &remote {
                Remote::Socket(path) => Some(path.clone()),
                Remote::Port(_) => None,
            },
        });
        listeners.push((listener, remote));
    }
    eprintln!("moor: Ctrl-C stops");
    let mut accepting = Vec::new();
    for (listener, remote) in listeners {
        let tunnel = tunnel.clone();
        let remote = Arc::new(remote);
        accepting.push(tokio::spawn(async move {
            while let Ok((local, _)) = listener.accept().await {
                let (tunnel, remote) = (tunnel.clone(), remote.clone());
                tokio::spawn(async move { tunnel.carry(local, &remote).await });
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

/// `TARGET PORT...` or `--run RUN PORT...`: the target and each port pair.
fn port_pairs(ctx: &Context, args: &ForwardArgs) -> Result<(Target, Vec<(Remote, u16)>)> {
    let store = ctx.store()?;
    let (target, ports) = match &args.run {
        Some(run) => (ctx.targets.of_run(&store, run)?.0, &args.args[..]),
        None => {
            let Some((name, ports)) = args.args.split_first() else {
                return Err(Error::usage(
                    "no target to forward to",
                    "moor forward TARGET PORT[:LOCAL]...",
                ));
            };
            (ctx.targets.attached(&store, name)?, ports)
        }
    };
    if ports.is_empty() {
        return Err(Error::usage(
            "no port to forward",
            "name one or more: moor forward TARGET PORT[:LOCAL]...",
        ));
    }
    let pairs = ports
        .iter()
        .map(|p| port_pair(p).map(|(remote, local)| (Remote::Port(remote), local)))
        .collect::<Result<Vec<_>>>()?;
    Ok((target, pairs))
}

/// `--endpoint NAME [LOCAL_PORT]`: the endpoint's target, and its socket
/// (or port) as the agent reports it.
async fn endpoint_pair(
    ctx: &Context,
    access: &Access,
    name: &str,
    args: &[String],
) -> Result<(Target, Vec<(Remote, u16)>)> {
    let local = match args {
        [] => 0,
        [port] => port.parse().map_err(|_| {
            Error::usage(
                format!("{port:?} is not a local port"),
                "give a number (0: any free port), e.g. moor forward --endpoint NAME 8080",
            )
        })?,
        _ => {
            return Err(Error::usage(
                "--endpoint takes one local port at most",
                "moor forward --endpoint NAME [LOCAL_PORT]",
            ))
        }
    };
    let store = ctx.store()?;
    let Some(target) = store.endpoint_target(name)? else {
        return Err(Error::usage(
            format!("no endpoint {name} was created from this workspace"),
            "see `moor endpoint list`",
        ));
    };
    let target = ctx.targets.named(&store, &target)?;
    let conn = ctx.targets.connect(&target, access).await?;
    let endpoint = conn.agent.endpoint(name).await;
    conn.close().await;
    let endpoint = endpoint?;
    let remote = match endpoint.socket {
        Some(socket) => Remote::Socket(socket),
        None => Remote::Port(endpoint.port),
    };
    Ok((target, vec![(remote, local)]))
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
