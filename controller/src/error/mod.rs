//! moor's error type: every failure carries what went wrong (the cause) and
//! what the user can do about it (the fix), and maps to a documented,
//! stable exit code.

pub mod team;

use std::path::PathBuf;
use std::time::Duration;

use moor_proto::ErrorKind;

/// Process exit codes. Stable: scripts depend on them.
pub mod exit {
    /// Success: no check failed.
    pub const OK: u8 = 0;
    /// An unexpected error (workspace not writable, internal error).
    pub const INTERNAL: u8 = 1;
    /// Bad usage: a wrong flag, a missing argument, a key file that is not there.
    pub const USAGE: u8 = 2;
    /// The host was reached and probed, and at least one check failed.
    pub const CHECK_FAILED: u8 = 3;
    /// Authentication failed (wrong password or key, or a key that cannot be decrypted).
    pub const AUTH: u8 = 4;
    /// The host key is unknown, changed or does not match the one given.
    pub const HOST_KEY: u8 = 5;
    /// The host is unreachable or timed out: refused, no route, DNS, not an SSH server.
    pub const UNREACHABLE: u8 = 6;
    /// The machine or the name is already taken (attached under another name,
    /// claimed by another workspace, or being attached right now).
    pub const TAKEN: u8 = 7;
    /// A command on the host failed (agent install, claim).
    pub const REMOTE: u8 = 8;
    /// An environment could not be built on the target (bad package, broken
    /// Dockerfile, no Docker engine or no access to it, disk full).
    pub const ENV_BUILD: u8 = 9;
}

/// Result alias for moor's library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a moor command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A team server refused, or could not be reached or trusted.
    #[error("{}", .0.message)]
    Team(Box<team::Refused>),
    /// The command line or its inputs are wrong.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A private key file could not be read or parsed.
    #[error("cannot read key file {}: {cause}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// The private key file may be read by group or others.
    #[error("permissions {mode:04o} for key file {} are too open: a private key must not be readable by others", path.display())]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file is encrypted and no passphrase was given, or the passphrase is wrong.
    #[error("key file {} is encrypted and {}", path.display(), if *given { "the passphrase is wrong" } else { "no passphrase was given" })]
    KeyPassphrase {
        /// The key file.
        path: PathBuf,
        /// Whether a passphrase was given (and so is wrong).
        given: bool,
    },
    /// The host name does not resolve.
    #[error("cannot resolve host {host}: {cause}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's answer.
        cause: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {host}:{port}: {cause}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why (refused, no route, ...).
        cause: String,
    },
    /// A step did not finish within its time.
    #[error("{step} with {host}:{port} timed out after {}s", timeout.as_secs_f32())]
    Timeout {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// What was going on ("connect", "SSH handshake", "probe").
        step: &'static str,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The peer answered, but not as an SSH server.
    #[error("{host}:{port} is not an SSH server ({cause})")]
    NotSsh {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// What went wrong in the handshake.
        cause: String,
    },
    /// A jump host could not open the connection to the next hop.
    #[error("jump host {jump} could not connect to {host}:{port}: {cause}")]
    Jump {
        /// `user@host:port` of the jump host.
        jump: String,
        /// The next hop's host, as the jump host was asked for it.
        host: String,
        /// Its port.
        port: u16,
        /// Why.
        cause: String,
    },
    /// A node of a multi-node job could not take its part: nothing ran
    /// (exit code, kind and fix are the cause's).
    #[error(
        "node {rank} ({target}) could not start its part, so no node of the job runs: {cause}"
    )]
    JobNode {
        /// The node's rank.
        rank: usize,
        /// Its target.
        target: String,
        /// Why.
        cause: Box<Error>,
    },
    /// The SSH connection broke after it was set up.
    #[error("SSH connection to {host}:{port} failed: {cause}")]
    Ssh {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// What russh reported.
        cause: String,
    },
    /// The host key is in no known_hosts file.
    #[error("host key of {}{host} is unknown: {algorithm} {fingerprint}", jump_host(.jump))]
    HostKeyUnknown {
        /// `host` or `[host]:port`.
        host: String,
        /// A jump host's, not the target's.
        jump: bool,
        /// Key algorithm, e.g. `ssh-ed25519`.
        algorithm: String,
        /// `SHA256:...`
        fingerprint: String,
    },
    /// The host key differs from the one recorded: possibly an attack.
    #[error("HOST KEY CHANGED for {host}: it now offers {algorithm} {fingerprint}, but {} line {line} records another key (possible man-in-the-middle attack; the connection was refused)", file.display())]
    HostKeyChanged {
        /// `host` or `[host]:port`.
        host: String,
        /// Key algorithm.
        algorithm: String,
        /// Fingerprint of the key the host offers now.
        fingerprint: String,
        /// The known_hosts file with the old key.
        file: PathBuf,
        /// Its line.
        line: usize,
        /// Whether `file` is the workspace's own (then `moor host-key forget` fixes it).
        in_workspace: bool,
    },
    /// The host offers another key than the one its target was attached
    /// with (the target's stored fingerprint).
    #[error("HOST KEY CHANGED for {host}: it now offers {algorithm} {fingerprint}, but target {target} was attached with {pinned} (possible man-in-the-middle attack; the connection was refused)")]
    HostKeyNotPinned {
        /// `host` or `[host]:port`.
        host: String,
        /// The target.
        target: String,
        /// Key algorithm.
        algorithm: String,
        /// Fingerprint of the key the host offers now.
        fingerprint: String,
        /// The fingerprint stored with the target.
        pinned: String,
    },
    /// The host key is marked revoked in a known_hosts file.
    #[error("host key of {host} ({fingerprint}) is marked @revoked in {}", file.display())]
    HostKeyRevoked {
        /// `host` or `[host]:port`.
        host: String,
        /// Fingerprint.
        fingerprint: String,
        /// The file that revokes it.
        file: PathBuf,
    },
    /// `--host-key-fingerprint` was given and the host offers another key.
    #[error("host key of {host} is {fingerprint}, not the expected {expected}")]
    HostKeyMismatch {
        /// `host` or `[host]:port`.
        host: String,
        /// What the host offers.
        fingerprint: String,
        /// What the user said to expect.
        expected: String,
    },
    /// No authentication method worked.
    #[error("authentication failed for {user}@{host}:{port} (tried: {tried}; server accepts: {accepted})")]
    Auth {
        /// User.
        user: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// What was tried, e.g. `publickey (~/.ssh/id_ed25519), password`.
        tried: String,
        /// Methods the server still offers.
        accepted: String,
        /// Whether a secret (password) was given; shapes the fix.
        fix: String,
    },
    /// A local file or directory problem (workspace, known_hosts).
    #[error("{what} {}: {cause}", path.display())]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The workspace holds something this moor cannot use.
    #[error("{message}")]
    Workspace {
        /// What.
        message: String,
        /// How to proceed.
        fix: String,
    },
    /// The connection to a target's agent broke.
    #[error("connection to the agent on {host} lost: {cause}")]
    Agent {
        /// Host.
        host: String,
        /// What happened.
        cause: String,
    },
    /// The agent answered, refusing the request (no such run, busy, ...).
    #[error("{}", refusal_line(host, *kind, message))]
    Refused {
        /// Host.
        host: String,
        /// Why, as a kind to act on.
        kind: moor_proto::ErrorKind,
        /// Why, for a person.
        message: String,
        /// What helps, when the agent said.
        fix: Option<String>,
    },
    /// The machine or name is taken.
    #[error("{message}")]
    Taken {
        /// What is taken, and by whom.
        message: String,
        /// How to proceed.
        fix: String,
    },
    /// A step on the host failed.
    #[error("{step} on {host} failed: {cause}")]
    Remote {
        /// Host.
        host: String,
        /// What moor was doing.
        step: &'static str,
        /// What the host said.
        cause: String,
        /// How to proceed.
        fix: String,
    },
    /// No such target in the workspace.
    #[error("no target named {name:?} in workspace {}", workspace.display())]
    NoTarget {
        /// The name asked for.
        name: String,
        /// The workspace.
        workspace: PathBuf,
    },
    /// No such environment in the workspace.
    #[error("no environment named {name:?} in the workspace")]
    NoEnv {
        /// The name asked for.
        name: String,
    },
    /// An environment failed to build on a target.
    #[error("{0}")]
    EnvBuild(Box<EnvBuildFailure>),
    /// The probe output could not be understood.
    #[error("probe of {host} failed: {cause}")]
    Probe {
        /// Host.
        host: String,
        /// Why.
        cause: String,
    },
}

/// What helps with a local file error, by its cause: a full disk, a
/// missing path, a permission, anything else.
fn io_fix(path: &std::path::Path, cause: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match cause.kind() {
        K::StorageFull | K::QuotaExceeded => format!(
            "the disk holding {} is full: free space there, then try again",
            path.display()
        ),
        K::NotFound => format!("check that {} exists", path.display()),
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            format!("check your permissions on {} (ls -ld)", path.display())
        }
        _ => format!("check {} and try again", path.display()),
    }
}

/// How an unknown key's host is introduced.
fn jump_host(jump: &bool) -> &'static str {
    if *jump {
        "jump host "
    } else {
        ""
    }
}

/// An agent's refusal for a person: which host, then the agent's words. A
/// full disk reads "no space left on HOST in DIR (N free)".
fn refusal_line(host: &str, kind: ErrorKind, message: &str) -> String {
    match (kind, message.strip_prefix("no space left ")) {
        (ErrorKind::NoSpace, Some(rest)) => format!("no space left on {host} {rest}"),
        _ => format!("the agent on {host} refused: {message}"),
    }
}

/// The JSON kind of a refusal: the agent's reason, stable.
fn refusal_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::VersionMismatch => "agent_version_mismatch",
        ErrorKind::BadRequest => "agent_bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::EnvNotReady => "env_not_ready",
        ErrorKind::Busy => "busy",
        ErrorKind::Corrupt => "corrupt",
        ErrorKind::Resources => "resources",
        ErrorKind::NoSpace => "no_space",
        ErrorKind::Unsafe => "unsafe_path",
        ErrorKind::Internal => "agent_internal",
    }
}

/// Why an environment build failed (boxed in [`Error::EnvBuild`]).
#[derive(Debug)]
pub struct EnvBuildFailure {
    /// The environment.
    pub env: String,
    /// The target.
    pub target: String,
    /// Why.
    pub cause: String,
    /// The last lines of the build log, joined with " | ".
    pub tail: String,
    /// The build run (its log is the full build log).
    pub build_run: Option<String>,
    /// The fix the agent gave, if any.
    pub fix: Option<String>,
}

impl std::fmt::Display for EnvBuildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment {} failed to build on {}: {}",
            self.env, self.target, self.cause
        )?;
        if !self.tail.is_empty() {
            write!(f, " [last lines: {}]", self.tail)?;
        }
        Ok(())
    }
}

impl Error {
    /// A team server's refusal, with its fix.
    pub fn team(fault: team::Fault, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Team(Box::new(team::Refused {
            fault,
            message: message.into(),
            fix: fix.into(),
        }))
    }

    /// A usage error: the command line or its inputs are wrong.
    pub fn usage(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The documented exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::KeyFile { .. } | Error::KeyPermissions { .. } => {
                exit::USAGE
            }
            Error::KeyPassphrase { .. } | Error::Auth { .. } => exit::AUTH,
            Error::HostKeyUnknown { .. }
            | Error::HostKeyChanged { .. }
            | Error::HostKeyNotPinned { .. }
            | Error::HostKeyRevoked { .. }
            | Error::HostKeyMismatch { .. } => exit::HOST_KEY,
            Error::Resolve { .. }
            | Error::Connect { .. }
            | Error::Jump { .. }
            | Error::Timeout { .. }
            | Error::NotSsh { .. }
            | Error::Ssh { .. }
            | Error::Agent { .. }
            | Error::Probe { .. } => exit::UNREACHABLE,
            Error::Io { .. } | Error::Workspace { .. } => exit::INTERNAL,
            Error::Taken { .. } => exit::TAKEN,
            Error::Remote { .. } | Error::Refused { .. } => exit::REMOTE,
            Error::NoTarget { .. } | Error::NoEnv { .. } => exit::USAGE,
            Error::EnvBuild(_) => exit::ENV_BUILD,
            Error::JobNode { cause, .. } => cause.exit_code(),
            Error::Team(refused) => refused.fault.exit_code(),
        }
    }

    /// A short machine-readable name of the error, for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
            Error::KeyFile { .. } => "key_file",
            Error::KeyPermissions { .. } => "key_permissions",
            Error::KeyPassphrase { .. } => "key_passphrase",
            Error::Resolve { .. } => "resolve",
            Error::Connect { .. } => "connect",
            Error::Jump { .. } => "jump_failed",
            Error::Timeout { .. } => "timeout",
            Error::NotSsh { .. } => "not_ssh",
            Error::Ssh { .. } => "ssh",
            Error::HostKeyUnknown { .. } => "host_key_unknown",
            Error::HostKeyChanged { .. } | Error::HostKeyNotPinned { .. } => "host_key_changed",
            Error::HostKeyRevoked { .. } => "host_key_revoked",
            Error::HostKeyMismatch { .. } => "host_key_mismatch",
            Error::Auth { .. } => "auth",
            Error::Io { .. } => "io",
            Error::Workspace { .. } => "workspace",
            Error::Probe { .. } => "probe",
            Error::Taken { .. } => "taken",
            Error::Agent { .. } => "agent_lost",
            Error::Remote { .. } => "remote",
            Error::Refused { kind, .. } => refusal_kind(*kind),
            Error::NoTarget { .. } => "no_target",
            Error::NoEnv { .. } => "no_env",
            Error::EnvBuild(_) => "env_build",
            Error::JobNode { cause, .. } => cause.kind(),
            Error::Team(refused) => refused.fault.kind(),
        }
    }

    /// What the user can do about it.
    pub fn fix(&self) -> String {
        match self {
            Error::JobNode { cause, .. } => cause.fix(),
            Error::Usage { fix, .. } => fix.clone(),
            Error::Team(refused) => refused.fix.clone(),
            Error::KeyFile { .. } => "pass --key with the path of an OpenSSH private key file".into(),
            Error::KeyPermissions { path, .. } => format!("chmod 600 {}", path.display()),
            Error::KeyPassphrase { given: false, .. } => {
                "put the passphrase in an environment variable and pass its name with --key-passphrase-env VAR".into()
            }
            Error::KeyPassphrase { given: true, .. } => {
                "check the passphrase in the variable named by --key-passphrase-env".into()
            }
            Error::Resolve { .. } => "check the host name, or pass an IP address with --host".into(),
            Error::Jump { jump, host, port, .. } => format!(
                "check that {jump} reaches {host}:{port} (`ssh -J {jump} -p {port} {host}` tests the same path) and that its sshd allows TCP forwarding"
            ),
            Error::Connect { port, .. } => {
                format!("check that sshd runs on the host and listens on port {port} (--port), and that no firewall blocks it")
            }
            Error::Timeout { step: "probe", .. } => {
                "the host is slow or overloaded; try again, or check it with ssh".into()
            }
            Error::Timeout { .. } => {
                "check that the host is up and reachable, or raise --connect-timeout".into()
            }
            Error::NotSsh { .. } => "check --port: it must be the port sshd listens on".into(),
            Error::Ssh { .. } => "try again; if it keeps failing, run with -vv and check the host's sshd log".into(),
            Error::HostKeyUnknown { fingerprint, jump: true, .. } => format!(
                "check the fingerprint with the jump host's owner, then pass --host-key-fingerprint {fingerprint} (repeatable: one for each host to trust), or --accept-new-host-key; or connect once with `ssh` so ~/.ssh/known_hosts has it"
            ),
            Error::HostKeyUnknown { fingerprint, .. } => format!(
                "check the fingerprint with the host's owner (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then pass --host-key-fingerprint {fingerprint} (or --accept-new-host-key)"
            ),
            Error::HostKeyChanged { host, in_workspace: true, .. } => format!(
                "if the host was really reinstalled, verify the new key, then run `moor host-key forget {host}` and connect again with --host-key-fingerprint"
            ),
            Error::HostKeyChanged { host, file, .. } => format!(
                "if the host was really reinstalled, verify the new key, then run `ssh-keygen -R '{host}' -f {}`",
                file.display()
            ),
            Error::HostKeyNotPinned { host, .. } => format!(
                "if the host was really reinstalled, verify the new key with its owner, then run `moor host-key forget {host}` and connect again with --host-key-fingerprint set to the new key"
            ),
            Error::HostKeyRevoked { .. } => "this key was revoked on purpose; ask the host's owner".into(),
            Error::HostKeyMismatch { .. } => {
                "check the fingerprint you passed with --host-key-fingerprint; if the host offers the right key, pass that".into()
            }
            Error::Auth { fix, .. } => fix.clone(),
            Error::Io { path, cause, .. } => io_fix(path, cause),
            Error::Probe { .. } => "the host's /bin/sh must be POSIX; run with -vv to see the probe output".into(),
            Error::Taken { fix, .. } | Error::Remote { fix, .. } | Error::Workspace { fix, .. } => {
                fix.clone()
            }
            Error::Agent { .. } => "run the command again; a run goes on by itself (moor logs RUN --follow)".into(),
            Error::Refused { fix: Some(fix), .. } => fix.clone(),
            Error::Refused { kind, .. } => match kind {
                ErrorKind::NotFound => "check the run id with `moor runs`".into(),
                ErrorKind::VersionMismatch => "run `moor attach` again to update the agent".into(),
                _ => "run with -vv; see the agent log in ~/.moor/agent/*/run/log on the host".into(),
            },
            Error::NoTarget { .. } => "see `moor list` for the targets, or pass --workspace".into(),
            Error::NoEnv { .. } => "see `moor env list`, or create it with `moor env create`".into(),
            Error::EnvBuild(failure) => {
                let EnvBuildFailure { build_run, env, fix, .. } = failure.as_ref();
                let log = build_run
                    .as_ref()
                    .map(|r| format!("; full log: moor logs {r}"))
                    .unwrap_or_default();
                match fix {
                    Some(fix) => format!("{fix}, then prepare again{log}"),
                    None => format!("fix the spec or the package sources (moor env show {env}), then prepare again{log}"),
                }
            }
        }
    }
}
