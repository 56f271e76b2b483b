//! moor's SSH client, on russh: connect with a deadline, verify the host key
//! strictly, authenticate, run commands.
//!
//! One [`Session`] is one SSH connection. Every step of [`Session::connect`]
//! (DNS, TCP, handshake, authentication) shares one deadline, the connect
//! timeout; after that the connection has TCP and SSH keepalives and no
//! inactivity timeout, so a long quiet command is not cut off.

pub mod auth;
pub mod config;
pub mod known_hosts;
mod pattern;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::error::{Error, Result};
use crate::transfer::Transfer;
pub use auth::{AuthUsed, Credentials};
pub use known_hosts::{KnownHosts, Verdict};

/// Where to connect, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// What to do with a host key that no known_hosts file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it (the default).
    Strict,
    /// Trust it and record it in the workspace (`--accept-new-host-key`).
    AcceptNew,
    /// Trust it only if its fingerprint is this one (`--host-key-fingerprint`).
    Fingerprint(String),
}

/// Whether a host key was recorded before this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyStatus {
    /// A known_hosts file had it.
    Known,
    /// Trusted now (`--accept-new-host-key` or a matching
    /// `--host-key-fingerprint`) and recorded in the workspace.
    Learned,
}

impl std::fmt::Display for HostKeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostKeyStatus::Known => "known",
            HostKeyStatus::Learned => "learned",
        })
    }
}

/// How the host key was verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostKeyInfo {
    /// Key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...`
    pub fingerprint: String,
    /// Recorded before, or now.
    pub status: HostKeyStatus,
    /// The known_hosts file that has it.
    pub file: String,
}

/// Connection settings.
#[derive(Debug)]
pub struct ConnectOptions {
    /// Deadline for DNS, TCP, handshake and authentication together.
    pub timeout: Duration,
    /// Unknown host keys.
    pub host_key_policy: HostKeyPolicy,
    /// Where host keys are recorded.
    pub known_hosts: KnownHosts,
    /// The key an attached target was recorded with: any other is refused
    /// as changed, unless no known_hosts file records the host any more
    /// (`moor host-key forget`) and `--host-key-fingerprint` names it.
    pub pin: Option<Pin>,
    /// How to authenticate.
    pub credentials: Credentials,
}

/// The host key fingerprint an attached target was recorded with.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The target's name.
    pub target: String,
    /// `SHA256:...`
    pub fingerprint: String,
}

/// What the host-key check decided, kept so a refused handshake can say why.
#[derive(Debug)]
enum KeyDecision {
    Accept {
        key: PublicKey,
        learn: bool,
        file: String,
    },
    Refuse(Error),
}

struct Handler {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    known_hosts: KnownHosts,
    pin: Option<Pin>,
    decision: Arc<Mutex<Option<KeyDecision>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let decision = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.decide(key),
            PublicKeyOrCertificate::Certificate(_) => KeyDecision::Refuse(Error::Ssh {
                host: self.host.clone(),
                port: self.port,
                cause: "the host presented a certificate, which moor does not verify".into(),
            }),
        };
        let accept = matches!(decision, KeyDecision::Accept { .. });
        *self.decision.lock().expect("decision lock") = Some(decision);
        Ok(accept)
    }
}

impl Handler {
    fn decide(&self, key: &PublicKey) -> KeyDecision {
        let host = known_hosts::host_entry_name(&self.host, self.port);
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = known_hosts::key_type(&key.algorithm());
        tracing::debug!(%host, %fingerprint, %algorithm, "host key offered");
        let accept = |learn: bool, file: String| KeyDecision::Accept {
            key: key.clone(),
            learn,
            file,
        };
        // The user named this very key.
        let named = matches!(&self.policy, HostKeyPolicy::Fingerprint(expected)
            if same_fingerprint(expected, &fingerprint));
        // The target was recorded with another key.
        let unpinned = self
            .pin
            .as_ref()
            .filter(|pin| !same_fingerprint(&pin.fingerprint, &fingerprint));
        let pinned_refusal = |pin: &Pin| {
            KeyDecision::Refuse(Error::HostKeyNotPinned {
                host: host.clone(),
                target: pin.target.clone(),
                algorithm: algorithm.clone(),
                fingerprint: fingerprint.clone(),
                pinned: pin.fingerprint.clone(),
            })
        };
        match self.known_hosts.check(&self.host, self.port, key) {
            Verdict::Revoked { file } => KeyDecision::Refuse(Error::HostKeyRevoked {
                host,
                fingerprint,
                file,
            }),
            Verdict::Changed {
                file,
                line,
                in_workspace,
            } => KeyDecision::Refuse(Error::HostKeyChanged {
                host,
                algorithm,
                fingerprint,
                file,
                line,
                in_workspace,
            }),
            Verdict::Known { file, .. } => match unpinned {
                Some(pin) if !named => pinned_refusal(pin),
                _ => accept(false, file.display().to_string()),
            },
            Verdict::Unknown => {
                let learned = accept(
                    true,
                    self.known_hosts.workspace_file().display().to_string(),
                );
                match (&self.policy, unpinned) {
                    _ if named => learned,
                    (_, Some(pin)) => pinned_refusal(pin),
                    // The target's own key, forgotten from known_hosts.
                    (_, None) if self.pin.is_some() => learned,
                    (HostKeyPolicy::AcceptNew, None) => learned,
                    (HostKeyPolicy::Fingerprint(expected), None) => {
                        KeyDecision::Refuse(Error::HostKeyMismatch {
                            host,
                            fingerprint,
                            expected: expected.clone(),
                        })
                    }
                    (HostKeyPolicy::Strict, None) => KeyDecision::Refuse(Error::HostKeyUnknown {
                        host,
                        algorithm,
                        fingerprint,
                    }),
                }
            }
        }
    }
}

/// Fingerprints compare with or without the `SHA256:` prefix and base64 padding.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches("SHA256:")
            .trim_end_matches('=')
            .to_owned()
    };
    norm(a) == norm(b)
}

/// One authenticated SSH connection.
pub struct Session {
    handle: client::Handle<Handler>,
    /// Where it is connected.
    pub endpoint: Endpoint,
    /// The address actually connected to.
    pub peer: SocketAddr,
    /// The verified host key.
    pub host_key: HostKeyInfo,
    /// How authentication succeeded, e.g. `publickey (ssh-ed25519 key ~/.ssh/id)`.
    pub auth_method: String,
    /// Which credential it was.
    pub auth_used: AuthUsed,
    /// Time from start to authenticated.
    pub connect_time: Duration,
}

/// The result of a command run over [`Session::exec`].
#[derive(Debug, Default)]
pub struct ExecOutput {
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Its exit status, if the server sent one.
    pub exit_status: Option<u32>,
    /// The signal that killed it, if any.
    pub exit_signal: Option<String>,
}

/// Progress of a connection attempt, for reporting which steps passed.
#[derive(Debug, Default, Clone)]
pub struct ConnectProgress {
    /// The TCP connection was made to this address, in this time.
    pub tcp: Option<(SocketAddr, Duration)>,
    /// The host key was verified.
    pub host_key: Option<HostKeyInfo>,
}

impl Session {
    /// Connects and authenticates within `options.timeout`. `progress` records
    /// the steps that passed, also when a later one fails.
    #[tracing::instrument(level = "debug", skip_all, fields(endpoint = %endpoint))]
    pub async fn connect(
        endpoint: &Endpoint,
        options: ConnectOptions,
        progress: &mut ConnectProgress,
    ) -> Result<Session> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + options.timeout;
        let (host, port) = (endpoint.host.clone(), endpoint.port);
        let timed_out = |step| Error::Timeout {
            host: host.clone(),
            port,
            step,
            timeout: options.timeout,
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

        let decision = Arc::new(Mutex::new(None));
        let handler = Handler {
            host: host.clone(),
            port,
            policy: options.host_key_policy.clone(),
            known_hosts: options.known_hosts.clone(),
            pin: options.pin.clone(),
            decision: decision.clone(),
        };
        let config = Arc::new(client_config(
            &options.known_hosts.known_key_types(&host, port),
        ));
        let handshake = timeout_at(deadline, client::connect_stream(config, stream, handler)).await;
        let decided = decision.lock().expect("decision lock").take();
        let mut handle = match (handshake, decided) {
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
                progress.host_key = Some(info);
                handle
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

        let (auth_method, auth_used) = timeout_at(
            deadline,
            auth::authenticate(&mut handle, endpoint, &options.credentials),
        )
        .await
        .map_err(|_| timed_out("authentication"))??;
        let host_key = progress.host_key.clone().expect("host key recorded above");
        tracing::debug!(method = %auth_method, elapsed_ms = started.elapsed().as_millis() as u64, "authenticated");
        Ok(Session {
            handle,
            endpoint: endpoint.clone(),
            peer,
            host_key,
            auth_method,
            auth_used,
            connect_time: started.elapsed(),
        })
    }

    /// Runs `command` (a fixed string, never built from user input without
    /// quoting), writes `stdin` to it, and reads until the channel closes: the
    /// exit status can arrive after EOF.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput> {
        self.exec_with(command, stdin, &Transfer::hidden()).await
    }

    /// [`Session::exec`], telling `progress` of each piece of stdin sent.
    pub async fn exec_with(
        &self,
        command: &str,
        stdin: &[u8],
        progress: &Transfer,
    ) -> Result<ExecOutput> {
        let ssh_err = |e: russh::Error| Error::Ssh {
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            cause: e.to_string(),
        };
        let mut channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        channel.exec(true, command).await.map_err(ssh_err)?;
        for piece in stdin.chunks(256 * 1024) {
            channel.data_bytes(piece.to_vec()).await.map_err(ssh_err)?;
            progress.add(piece.len() as u64);
        }
        channel.eof().await.map_err(ssh_err)?;
        let mut out = ExecOutput::default();
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.exit_signal = Some(format!("{signal_name:?}"))
                }
                ChannelMsg::Failure => {
                    return Err(Error::Ssh {
                        host: self.endpoint.host.clone(),
                        port: self.endpoint.port,
                        cause: "the server refused to run the command".into(),
                    })
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Runs `command` with its stdin and stdout as one byte stream (stderr is
    /// dropped): the transport of the agent protocol.
    pub async fn exec_stream(&self, command: &str) -> Result<russh::ChannelStream<client::Msg>> {
        let ssh_err = |e: russh::Error| Error::Ssh {
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            cause: e.to_string(),
        };
        let channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        channel.exec(true, command).await.map_err(ssh_err)?;
        Ok(channel.into_stream())
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// russh client settings: SSH keepalive every 15 s (dead after 4 missed), no
/// inactivity timeout, host key types recorded for this host asked for first.
fn client_config(known_types: &[String]) -> client::Config {
    let mut preferred = Preferred::default();
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
    fn fingerprints_compare_loosely() {
        assert!(same_fingerprint("SHA256:abc=", "SHA256:abc"));
        assert!(same_fingerprint("abc", "SHA256:abc"));
        assert!(!same_fingerprint("SHA256:abd", "SHA256:abc"));
    }

    #[test]
    fn known_types_are_preferred() {
        let config = client_config(&["ssh-rsa".to_owned()]);
        assert_eq!(known_hosts::key_type(&config.preferred.key[0]), "ssh-rsa");
        let config = client_config(&[]);
        assert_eq!(config.preferred.key, Preferred::default().key);
    }
}
