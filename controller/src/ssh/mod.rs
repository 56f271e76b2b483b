//! moor's SSH client, on russh: connect with a deadline (through jump
//! hosts when there are any), verify every host key strictly, authenticate,
//! run commands.
//!
//! One [`Session`] is one SSH connection to a target, and the connections
//! to the jump hosts it goes through. Every step of [`Session::connect`]
//! (DNS, TCP, handshake, authentication) of one hop shares one deadline, the
//! connect timeout; after that the connection has TCP and SSH keepalives
//! and no inactivity timeout, so a long quiet command is not cut off.

pub mod auth;
pub mod config;
mod connect;
mod host_key;
mod interactive;
pub mod jump;
pub mod known_hosts;
mod pattern;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use russh::client;
use russh::ChannelMsg;

use crate::error::{Error, Result};
use crate::transfer::Transfer;
pub use auth::{AuthUsed, Credentials};
use connect::{establish, open_channel, open_tcp};
use host_key::Handler;
pub use host_key::{same_fingerprint, HostKeyInfo, HostKeyPolicy, HostKeyStatus, Pin};
pub use interactive::Pty;
pub use jump::JumpHost;
pub use known_hosts::{KnownHosts, Verdict};

/// Large uploads streaming at once in this process (see [`Session::exec_with`]).
static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

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
    /// Jump hosts to go through, in order (none: connect directly). Each
    /// one's host key is verified against the same known_hosts files and
    /// policy (never the target's pin).
    pub jumps: Vec<Hop>,
}

/// One jump host and how to authenticate to it.
#[derive(Debug)]
pub struct Hop {
    /// Where.
    pub jump: JumpHost,
    /// Its own credentials (its ssh-config keys, the default keys, ssh-agent).
    pub credentials: Credentials,
}

/// One authenticated SSH connection.
pub struct Session {
    handle: client::Handle<Handler>,
    /// The jump hosts' connections, first hop first: each carries the next.
    through: Vec<client::Handle<Handler>>,
    /// Where it is connected.
    pub endpoint: Endpoint,
    /// The jump hosts it went through.
    pub via: Vec<JumpHost>,
    /// The verified host key.
    pub host_key: HostKeyInfo,
    /// That key itself (a warm connection's is checked again against the
    /// known_hosts files before each use).
    pub public_key: russh::keys::PublicKey,
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
    /// The TCP connection was made to this address (the first jump host's
    /// when there are jump hosts), in this time.
    pub tcp: Option<(SocketAddr, Duration)>,
    /// The jump hosts passed: verified and authenticated.
    pub jumps: Vec<JumpPassed>,
    /// The target's host key was verified.
    pub host_key: Option<HostKeyInfo>,
}

/// A jump host a connection went through.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JumpPassed {
    /// `user@host:port`.
    pub jump: String,
    /// Its verified host key.
    pub host_key: HostKeyInfo,
    /// How authentication succeeded.
    pub auth_method: String,
}

impl Session {
    /// Connects (through `options.jumps`, each hop within `options.timeout`)
    /// and authenticates. `progress` records the steps that passed, also
    /// when a later one fails.
    #[tracing::instrument(level = "debug", skip_all, fields(endpoint = %endpoint))]
    pub async fn connect(
        endpoint: &Endpoint,
        options: ConnectOptions,
        progress: &mut ConnectProgress,
    ) -> Result<Session> {
        let started = Instant::now();
        let mut through: Vec<client::Handle<Handler>> = Vec::new();
        let mut via: Vec<JumpHost> = Vec::new();
        for hop in &options.jumps {
            let hop_endpoint = hop.jump.endpoint();
            let established = match through.last() {
                None => {
                    let stream = open_tcp(&hop_endpoint, options.timeout, progress).await?;
                    establish(stream, &hop_endpoint, None, &hop.credentials, &options).await?
                }
                Some(previous) => {
                    let stream =
                        open_channel(previous, &via, &hop_endpoint, options.timeout).await?;
                    establish(stream, &hop_endpoint, None, &hop.credentials, &options).await?
                }
            };
            tracing::debug!(jump = %hop.jump, method = %established.auth_method, "through jump host");
            progress.jumps.push(JumpPassed {
                jump: hop.jump.to_string(),
                host_key: established.host_key,
                auth_method: established.auth_method,
            });
            through.push(established.handle);
            via.push(hop.jump.clone());
        }
        let established = match through.last() {
            None => {
                let stream = open_tcp(endpoint, options.timeout, progress).await?;
                let target = Some(progress);
                establish(stream, endpoint, target, &options.credentials, &options).await?
            }
            Some(previous) => {
                let stream = open_channel(previous, &via, endpoint, options.timeout).await?;
                let target = Some(progress);
                establish(stream, endpoint, target, &options.credentials, &options).await?
            }
        };
        tracing::debug!(method = %established.auth_method, elapsed_ms = started.elapsed().as_millis() as u64, "authenticated");
        Ok(Session {
            handle: established.handle,
            through,
            endpoint: endpoint.clone(),
            via,
            host_key: established.host_key,
            public_key: established.public_key,
            auth_method: established.auth_method,
            auth_used: established.auth_used,
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
        let ssh_err = |e: russh::Error| self.ssh_error(e);
        let mut channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        channel.exec(true, command).await.map_err(ssh_err)?;
        // Each upload in flight holds up to a channel window of data in
        // memory: a fleet's stays bounded whatever its `--parallel`.
        let _streaming = if stdin.len() > 1024 * 1024 {
            UPLOADS.acquire().await.ok()
        } else {
            None
        };
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
                    return Err(self.ssh_error("the server refused to run the command"))
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Runs `command` with its stdin and stdout as one byte stream (stderr is
    /// dropped): the transport of the agent protocol.
    pub async fn exec_stream(&self, command: &str) -> Result<russh::ChannelStream<client::Msg>> {
        let ssh_err = |e: russh::Error| self.ssh_error(e);
        let channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        channel.exec(true, command).await.map_err(ssh_err)?;
        Ok(channel.into_stream())
    }

    /// A `direct-tcpip` channel to `host:port` as the server reaches it
    /// (what `ssh -L` opens per connection), within `timeout`.
    pub async fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<russh::ChannelStream<client::Msg>> {
        let opened = tokio::time::timeout(
            timeout,
            self.handle
                .channel_open_direct_tcpip(host, port.into(), "127.0.0.1", 0),
        )
        .await;
        Err(self.ssh_error(match opened {
            Ok(Ok(channel)) => return Ok(channel.into_stream()),
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => format!(
                "cannot reach {host}:{port} from the host: {}",
                connect::open_failure(&reason)
            ),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no channel to {host}:{port} within {} s", timeout.as_secs()),
        }))
    }

    /// A `direct-streamlocal@openssh.com` channel to the unix socket at
    /// `path` on the host (what `ssh -L PORT:/path` opens per connection),
    /// within `timeout`. The server connects as the logged-in user, so the
    /// socket's folder permissions hold.
    pub async fn direct_streamlocal(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<russh::ChannelStream<client::Msg>> {
        let opened =
            tokio::time::timeout(timeout, self.handle.channel_open_direct_streamlocal(path)).await;
        Err(self.ssh_error(match opened {
            Ok(Ok(channel)) => return Ok(channel.into_stream()),
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => format!(
                "cannot reach the unix socket {path} on the host: {} (is AllowStreamLocalForwarding off in its sshd_config?)",
                connect::open_failure(&reason)
            ),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no channel to {path} within {} s", timeout.as_secs()),
        }))
    }

    /// An SSH error of this connection.
    fn ssh_error(&self, cause: impl std::fmt::Display) -> Error {
        Error::Ssh {
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            cause: cause.to_string(),
        }
    }

    /// A keepalive the server must answer, within `limit`: whether it did
    /// (a network gone without a FIN leaves it unanswered).
    pub async fn answers_within(&self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.handle.send_ping()).await,
            Ok(Ok(())) if !self.handle.is_closed()
        )
    }

    /// Whether the connection has ended (dropped, or closed by the server).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        for jump in self.through.iter().rev() {
            let _ = jump
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}
