//! The connection flags: where (`--host`, `--port`, `--user`, ssh config),
//! and how ([`TargetArgs`]: timeout, authentication, host keys), shared by
//! every command that connects.

use std::path::PathBuf;

use clap::Args;

/// Connection and authentication flags, shared by every command that connects.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Host name, address, or a Host alias from ~/.ssh/config.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// SSH port [default: from ~/.ssh/config, else 22].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Remote user [default: from ~/.ssh/config, else $USER].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// ssh client config to read Host aliases from.
    #[arg(long, value_name = "PATH", help_heading = "Connection")]
    pub ssh_config: Option<PathBuf>,

    /// Go through this jump host (bastion), as `ssh -J`: repeatable or
    /// comma-separated, in order; `none` connects directly [default: the
    /// host's ProxyJump in ~/.ssh/config]. Each hop's host key is verified
    /// and it authenticates with its own keys (ssh config, defaults, agent).
    #[arg(
        long,
        short = 'J',
        value_name = "[USER@]HOST[:PORT]",
        help_heading = "Connection"
    )]
    pub jump: Vec<String>,

    /// Timeout, authentication and host-key flags.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// How to connect to a target: flattened into every command that connects,
/// so each takes the same flags and every reconnect honours them. For an
/// attached target, what is not given comes from its stored settings.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Seconds allowed for name lookup, connect, handshake and authentication together.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10.0,
        help_heading = "Connection"
    )]
    pub connect_timeout: f64,

    /// How to authenticate.
    #[command(flatten)]
    pub auth: AuthArgs,

    /// Trust the host key if no known_hosts file has one for this host, and record it.
    #[arg(
        long,
        help_heading = "Host key",
        conflicts_with = "host_key_fingerprint"
    )]
    pub accept_new_host_key: bool,

    /// Trust an unknown host key only if its fingerprint is this one (SHA256:...), and record it; repeatable, one for each host to trust (the target, its jump hosts).
    #[arg(long, value_name = "SHA256:...", help_heading = "Host key")]
    pub host_key_fingerprint: Vec<String>,

    /// Trust the host keys this OpenSSH known_hosts file records for the hosts it names (a fleet's keys from their owners or an inventory system, e.g. `ssh-keyscan` output checked out of band), and record them in the workspace; repeatable. A key the workspace or ~/.ssh/known_hosts records differently is still refused.
    #[arg(long, value_name = "FILE", help_heading = "Host key")]
    pub known_hosts: Vec<PathBuf>,

    /// Connect directly, not through the workspace's warm connection
    /// (`moor mux`); `MOOR_NO_MUX=1` does the same for every command.
    #[arg(long, help_heading = "Connection")]
    pub no_mux: bool,
}

impl Default for TargetArgs {
    fn default() -> Self {
        TargetArgs {
            connect_timeout: 10.0,
            auth: AuthArgs::default(),
            accept_new_host_key: false,
            host_key_fingerprint: Vec::new(),
            known_hosts: Vec::new(),
            no_mux: false,
        }
    }
}

/// Authentication flags. Secrets come from the environment or stdin, never argv.
#[derive(Debug, Clone, Args, Default)]
pub struct AuthArgs {
    /// Private key file (ed25519, ecdsa or rsa, OpenSSH or PEM format).
    #[arg(long, value_name = "PATH", help_heading = "Authentication")]
    pub key: Option<PathBuf>,

    /// Name of the environment variable holding the key's passphrase.
    #[arg(long, value_name = "VAR", help_heading = "Authentication")]
    pub key_passphrase_env: Option<String>,

    /// Name of the environment variable holding the password (never the password itself).
    #[arg(
        long,
        value_name = "VAR",
        help_heading = "Authentication",
        conflicts_with = "password_stdin"
    )]
    pub password_env: Option<String>,

    /// Read the password from the first line of standard input.
    #[arg(long, help_heading = "Authentication")]
    pub password_stdin: bool,
}

impl AuthArgs {
    /// Whether any credential flag was given.
    pub fn any(&self) -> bool {
        self.key.is_some() || self.password_env.is_some() || self.password_stdin
    }
}
