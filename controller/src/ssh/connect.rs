//! The steps of one hop's connection: name lookup and TCP to the first
//! hop, or a `direct-tcpip` channel through the previous one; the SSH
//! handshake with the host-key decision; authentication. Each has the
//! connect timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client;
use russh::Preferred;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::host_key::{Handler, KeyDecision};
use super::{auth, known_hosts, AuthUsed, ConnectOptions, ConnectProgress, Credentials, Endpoint};
use super::{HostKeyInfo, HostKeyStatus, JumpHost};
use crate::error::{Error, Result};

/// One hop's SSH connection, authenticated.
pub(super) struct Established {
    pub(super) handle: client::Handle<Handler>,
    pub(super) host_key: HostKeyInfo,
    pub(super) public_key: russh::keys::PublicKey,
    pub(super) auth_method: String,
    pub(super) auth_used: AuthUsed,
}

/// Name lookup and TCP connect to the first hop, within `timeout`.
pub(super) async fn open_tcp(
    endpoint: &Endpoint,
    timeout: Duration,
    progress: &mut ConnectProgress,
) -> Result<TcpStream> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let (host, port) = (endpoint.host.clone(), endpoint.port);
    let timed_out = |step| Error::Timeout {
        host: host.clone(),
        port,
        step,
        timeout,
    };
    let addrs: Vec<SocketAddr> =
        timeout_at(deadline, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| timed_out("name lookup"))?
            .map_err(|e| Error::Resolve {
                host: host.clone(),
                cause: resolve_cause(&e),
            })?
            .collect();
    tracing::debug!(?addrs, "resolved");
    let stream = timeout_at(deadline, connect_tcp(&addrs))
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|e| Error::Connect {
            host: host.clone(),
            port,
            cause: connect_cause(&e),
        })?;
    let peer = stream.peer_addr().map_err(|e| Error::Connect {
        host: host.clone(),
        port,
        cause: e.to_string(),
    })?;
    progress.tcp = Some((peer, started.elapsed()));
    set_keepalive(&stream);
    Ok(stream)
}

/// A `direct-tcpip` channel from the last jump host to the next hop, within
/// `timeout`. The jump host resolves the name (it may be one only its
/// network knows).
pub(super) async fn open_channel(
    jump: &client::Handle<Handler>,
    via: &[JumpHost],
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<russh::ChannelStream<client::Msg>> {
    let last = via.last().expect("a jump host before a channel");
    let opened = tokio::time::timeout(
        timeout,
        jump.channel_open_direct_tcpip(endpoint.host.clone(), endpoint.port.into(), "127.0.0.1", 0),
    )
    .await;
    let refused = |cause: String| Error::Jump {
        jump: last.to_string(),
        host: endpoint.host.clone(),
        port: endpoint.port,
        cause,
    };
    match opened {
        Err(_) => Err(refused(format!(
            "no answer within {}s",
            timeout.as_secs_f64()
        ))),
        Ok(Err(russh::Error::ChannelOpenFailure(reason))) => Err(refused(open_failure(&reason))),
        Ok(Err(e)) => Err(refused(e.to_string())),
        Ok(Ok(channel)) => Ok(channel.into_stream()),
    }
}

/// Why a server refused a `direct-tcpip` channel, for people.
pub(super) fn open_failure(reason: &russh::ChannelOpenFailure) -> String {
    match reason {
        russh::ChannelOpenFailure::AdministrativelyProhibited => {
            "it does not allow TCP forwarding (sshd AllowTcpForwarding)".into()
        }
        russh::ChannelOpenFailure::ConnectFailed => {
            "it could not connect there (refused, unreachable or no such host)".into()
        }
        other => format!("{other:?}"),
    }
}

/// SSH over `stream` to `endpoint`: handshake with the host-key decision,
/// then authentication, within `options.timeout`. `target` (the target, not
/// a jump host) carries the pin and records the verified key in progress.
pub(super) async fn establish<S>(
    stream: S,
    endpoint: &Endpoint,
    target: Option<&mut ConnectProgress>,
    credentials: &Credentials,
    options: &ConnectOptions,
) -> Result<Established>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + options.timeout;
    let (host, port) = (endpoint.host.clone(), endpoint.port);
    let timed_out = |step| Error::Timeout {
        host: host.clone(),
        port,
        step,
        timeout: options.timeout,
    };
    let decision = Arc::new(Mutex::new(None));
    let handler = Handler {
        host: host.clone(),
        port,
        jump: target.is_none(),
        policy: options.host_key_policy.clone(),
        known_hosts: options.known_hosts.clone(),
        pin: target.as_ref().and(options.pin.clone()),
        decision: decision.clone(),
    };
    let config = Arc::new(client_config(
        &options.known_hosts.known_key_types(&host, port),
    ));
    let handshake = timeout_at(deadline, client::connect_stream(config, stream, handler)).await;
    let decided = decision.lock().expect("decision lock").take();
    let (mut handle, host_key, public_key) = match (handshake, decided) {
        (_, Some(KeyDecision::Refuse(e))) => return Err(e),
        (Err(_), _) => return Err(timed_out("SSH handshake")),
        (Ok(Ok(handle)), Some(KeyDecision::Accept { key, learn, file })) => {
            let info = HostKeyInfo {
                algorithm: known_hosts::key_type(&key.algorithm()),
                fingerprint: known_hosts::fingerprint(&key),
                status: if learn {
                    HostKeyStatus::Learned
                } else {
                    HostKeyStatus::Known
                },
                file,
            };
            if learn {
                options.known_hosts.learn(&host, port, &key)?;
                tracing::info!(host = %host, port, fingerprint = %info.fingerprint, "recorded new host key");
            }
            (handle, info, key)
        }
        (Ok(Ok(_)), None) => {
            unreachable!("russh completed a handshake without checking the host key")
        }
        (Ok(Err(e)), None) => {
            return Err(Error::NotSsh {
                host,
                port,
                cause: e.to_string(),
            })
        }
        (Ok(Err(e)), Some(_)) => {
            return Err(Error::Ssh {
                host,
                port,
                cause: e.to_string(),
            })
        }
    };
    if let Some(progress) = target {
        progress.host_key = Some(host_key.clone());
    }
    let (auth_method, auth_used) = timeout_at(
        deadline,
        auth::authenticate(&mut handle, endpoint, credentials),
    )
    .await
    .map_err(|_| timed_out("authentication"))??;
    Ok(Established {
        handle,
        host_key,
        public_key,
        auth_method,
        auth_used,
    })
}

/// russh client settings: SSH keepalive every 15 s (dead after 4 missed), no
/// inactivity timeout, host key types recorded for this host asked for first.
fn client_config(known_types: &[String]) -> client::Config {
    let mut preferred = Preferred::default();
    // AES-GCM first: with the AES instructions every x86-64 and arm64
    // server CPU has, ring's AES-GCM moves bulk data (uploads, downloads,
    // forwarded ports) much faster than ChaCha20-Poly1305; both are AEADs.
    let mut ciphers = preferred.cipher.to_vec();
    ciphers.sort_by_key(|c| ![russh::cipher::AES_256_GCM, russh::cipher::AES_128_GCM].contains(c));
    preferred.cipher = ciphers.into();
    if !known_types.is_empty() {
        let mut keys = preferred.key.to_vec();
        keys.sort_by_key(|alg| !known_types.contains(&known_hosts::key_type(alg)));
        preferred.key = keys.into();
    }
    client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        inactivity_timeout: None,
        nodelay: true,
        preferred,
        ..Default::default()
    }
}

async fn connect_tcp(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "TCP connect failed");
                last = e;
            }
        }
    }
    Err(last)
}

fn set_keepalive(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(4);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot set TCP keepalive");
    }
}

fn connect_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::HostUnreachable => "no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}

fn resolve_cause(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("Name or service not known") || text.contains("No address associated") {
        "no such host".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_are_preferred() {
        let config = client_config(&["ssh-rsa".to_owned()]);
        assert_eq!(known_hosts::key_type(&config.preferred.key[0]), "ssh-rsa");
        let config = client_config(&[]);
        assert_eq!(config.preferred.key, Preferred::default().key);
    }
}
