//! `moor forward` (local ports that reach ports on a target) and `moor ssh`
//! (a shell or a command on it): the target's SSH connection, for people.

use clap::Args;

use super::TargetArgs;

/// `moor forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The target, then one or more `REMOTE_PORT[:LOCAL_PORT]` (the local
    /// port defaults to the remote one; 0: any free port). With `--run`, only
    /// the ports.
    #[arg(
        value_name = "TARGET PORT[:LOCAL]",
        required_unless_present = "endpoint"
    )]
    pub args: Vec<String>,

    /// Reach this endpoint (its unix socket, or its port) from one local
    /// port: the only argument then is that port (default: any free one).
    #[arg(long, value_name = "NAME", conflicts_with = "run")]
    pub endpoint: Option<String>,

    /// Reach ports on the target of this run (an id, id prefix or name), e.g.
    /// a TensorBoard it serves.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor ssh`.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// The target.
    pub target: String,

    /// A command to run instead of the login shell (each word quoted for the
    /// host's shell, so it arrives as given).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// No pseudo-terminal, even when this terminal is one.
    #[arg(short = 'T', long)]
    pub no_pty: bool,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}
