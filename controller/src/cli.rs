//! The command line, with clap derive: the doc comments here are `moor --help`.
//! Parsing only; `cmd` resolves arguments into validated settings before any
//! connection is opened.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::checks::Kind;

/// Exit codes, shown under `moor --help` and in the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success: no check failed
  1  unexpected error (e.g. the workspace is not writable)
  2  usage: bad flag or argument, key file missing or unreadable
  3  the host was probed and at least one check failed
  4  authentication failed (wrong password, key or passphrase)
  5  host key unknown, changed, revoked, or not the expected fingerprint
  6  unreachable or timed out: DNS, refused, no route, not an SSH server";

/// moor: attach machines you already own as ML compute targets, over SSH.
#[derive(Debug, Parser)]
#[command(name = "moor", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// Workspace directory [default: $XDG_DATA_HOME/moor, i.e. ~/.local/share/moor].
    #[arg(long, global = true, env = "MOOR_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// moor's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a machine over SSH and check that it can be a compute target.
    ///
    /// One SSH connection, one probe round trip. Every check is pass, warn,
    /// fail or skip, with a remedy for every warning and failure.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),

    /// Manage the host keys recorded in the workspace.
    #[command(subcommand, name = "host-key")]
    HostKey(HostKeyCommand),
}

/// `moor validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Where to connect and how to authenticate.
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// What the machine is: a VM/server, or an HDInsight (Spark) head node.
    #[arg(long, value_enum, default_value_t = Kind::Vm)]
    pub kind: Kind,

    /// Fail (instead of warn) when the machine has no public IP address.
    #[arg(long)]
    pub require_public_ip: bool,
}

/// Connection and authentication flags, shared by every command that connects.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Host name, address, or a Host alias from ~/.ssh/config.
    #[arg(long, value_name = "HOST")]
    pub host: String,

    /// SSH port [default: from ~/.ssh/config, else 22].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Remote user [default: from ~/.ssh/config, else $USER].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Seconds allowed for name lookup, connect, handshake and authentication together.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,

    /// ssh client config to read Host aliases from.
    #[arg(long, value_name = "PATH", help_heading = "Connection")]
    pub ssh_config: Option<PathBuf>,

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

    /// Trust the host key if no known_hosts file has one for this host, and record it.
    #[arg(
        long,
        help_heading = "Host key",
        conflicts_with = "host_key_fingerprint"
    )]
    pub accept_new_host_key: bool,

    /// Trust an unknown host key only if its fingerprint is this one (SHA256:...), and record it.
    #[arg(long, value_name = "SHA256:...", help_heading = "Host key")]
    pub host_key_fingerprint: Option<String>,
}

/// `moor host-key ...`.
#[derive(Debug, Subcommand)]
pub enum HostKeyCommand {
    /// Remove a host's keys from the workspace known_hosts, after a legitimate key change.
    Forget {
        /// HOST, HOST:PORT or [HOST]:PORT.
        host: String,
    },
}
