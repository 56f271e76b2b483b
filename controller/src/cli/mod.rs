//! The command line, with clap derive: the doc comments here are `moor --help`.
//! Parsing only; [`crate::reach`] resolves the connection flags into
//! validated settings before any connection is opened. Every command that
//! connects to a target flattens [`TargetArgs`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod attach;
mod connect;
mod endpoint;
mod env;
mod exit_codes;
mod fleet;
mod job;
mod network;
mod run;
mod ssh;
mod team;

pub use attach::{
    AttachArgs, AttachArgsTop, AttachCommand, AttachHdinsightArgs, AttachOptions, AttachVmArgs,
    ValidateArgs,
};
pub use connect::{AuthArgs, ConnectArgs, TargetArgs};
pub use endpoint::{
    EndpointCommand, EndpointCreateArgs, EndpointInvokeArgs, EndpointNameArgs, ENDPOINT_EXIT_CODES,
};
pub use env::{EnvCreateArgs, EnvPrepareArgs, EnvPruneArgs, PrepareAssetArgs};
pub use exit_codes::EXIT_CODES;
pub use fleet::{AttachFleetArgs, InventoryArgs};
pub use job::{JobCommand, JobSubmitArgs, PoolCommand};
pub use network::NetworkArgs;
pub use run::{DistributionKind, JobFlags, RunArgs, RUN_EXIT_CODES};
pub use ssh::{ForwardArgs, SshArgs};
pub use team::{
    AuditArgs, LoginArgs, RoleArg, ServerCommand, ServerInitArgs, ServerStartArgs, UserCommand,
};

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
    /// Check that a machine can be a compute target.
    ///
    /// Connect to a machine over SSH and check that it can be a compute target.
    ///
    /// One SSH connection, one probe round trip. Every check is pass, warn,
    /// fail or skip, with a remedy for every warning and failure. `moor
    /// validate NAME` re-validates an attached target with its stored settings.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),

    /// Attach a machine (or an inventory's fleet) as a compute target.
    ///
    /// Attach a machine as a compute target: validate it, claim it, install
    /// the agent, and record it in the workspace; or every machine of an
    /// inventory at once (`--inventory FILE`), each pool a moor pool.
    #[command(after_help = EXIT_CODES)]
    Attach(Box<AttachArgsTop>),

    /// List the attached targets.
    List,

    /// Show one target: settings, facts, checks.
    ///
    /// Show one target: its settings, facts and checks from the last attach or validate.
    Show {
        /// Target name.
        name: String,
    },

    /// Show or change a target's proxy and CA for package indexes.
    ///
    /// Show or change how a target reaches package indexes (proxy, CA):
    /// every environment build on it honours the settings.
    Network {
        /// Target name.
        name: String,
        /// The settings to change (none given: show them).
        #[command(flatten)]
        network: NetworkArgs,
    },

    /// Detach a target and remove its claim from the host.
    ///
    /// Detach a target: remove it from the workspace and its claim from the host.
    #[command(after_help = EXIT_CODES)]
    Detach(DetachArgs),

    /// Run a command on a target (or several as one job), following its log.
    ///
    /// Run a command on a target in a snapshot of a source directory, and
    /// stream its log; on several targets or a pool as one job (`--target a
    /// --target b`, `--pool`), or an Azure ML job file (`-f`). Exits with the
    /// command's exit code.
    #[command(after_help = RUN_EXIT_CODES)]
    Run(RunArgs),

    /// Submit an Azure ML command job file.
    ///
    /// Jobs from Azure ML command job files (`moor job submit FILE.yml`).
    #[command(subcommand)]
    Job(JobCommand),

    /// Named lists of targets.
    ///
    /// Pools: named lists of targets, usable wherever a target is (a job's
    /// nodes are the pool's first N).
    #[command(subcommand)]
    Pool(PoolCommand),

    /// Environments: Docker, conda or pip, built once per target.
    ///
    /// Environments: specs of what a run needs (Docker image, conda, pip),
    /// built once per target and content hash.
    #[command(subcommand)]
    Env(EnvCommand),

    /// List runs; `runs prune` removes finished ones.
    ///
    /// List runs on the targets (all, or --target); `moor runs prune`
    /// removes finished ones from a target.
    Runs(RunsArgs),

    /// Print or follow a run's log.
    ///
    /// Print a run's log (stdout and stderr, in order); a job's, every
    /// node's lines after `[node N]`.
    Logs(LogsArgs),

    /// What a run logged through MLflow.
    ///
    /// What a run's code logged through MLflow (every run gets a tracking
    /// endpoint: MLFLOW_TRACKING_URI): params, tags, each metric's last
    /// value, range, point count and a sparkline; a job's, node by node.
    /// `--json` gives every point.
    Metrics(MetricsArgs),

    /// Stop a run or a job.
    ///
    /// Stop a run (a job: every node): SIGTERM to its processes, SIGKILL
    /// after the grace period.
    Cancel(CancelArgs),

    /// Fetch a run's outputs.
    ///
    /// Fetch a run's outputs/ directory (a job's: each node's into node-N/).
    Download(DownloadArgs),

    /// The agents' status on targets.
    ///
    /// Agent status of targets (all, or those named): version, uptime, load, runs going.
    Status(StatusArgs),

    /// Serve a model from a target, and call it.
    ///
    /// Endpoints: a model served over HTTP from a target (a scoring script
    /// or any server), kept up by the agent; `invoke` calls it through SSH.
    #[command(subcommand)]
    Endpoint(EndpointCommand),

    /// Forward local ports to a target.
    ///
    /// Forward local ports to ports on a target (`ssh -L` with the target's
    /// stored settings and pinned host key): listens on 127.0.0.1 until
    /// Ctrl-C, reconnecting when the SSH connection drops.
    Forward(ForwardArgs),

    /// A shell or one command on a target.
    ///
    /// A shell on a target (a pseudo-terminal when this is a terminal), or
    /// one command (`-- CMD`), with the target's stored settings and pinned
    /// host key. Exits with the remote exit code (a signal N: 128+N; no
    /// status: 255).
    Ssh(SshArgs),

    /// Warm connections: the workspace's SSH multiplexer.
    ///
    /// Warm connections: the workspace's multiplexer, started on demand by
    /// commands (as ssh's ControlMaster/ControlPersist), keeps one SSH
    /// connection per target and exits after an idle time (MOOR_MUX_IDLE
    /// seconds, default 600); `--no-mux` or MOOR_NO_MUX=1 connects directly.
    #[command(subcommand)]
    Mux(MuxCommand),

    /// A local web dashboard of runs, metrics and targets.
    ///
    /// A local web dashboard: targets with their checks and facts, runs and
    /// jobs (a run's log live, its MLflow metrics as charts, several runs
    /// compared), environments, endpoints. Served on 127.0.0.1 with a random
    /// token in the URL it prints (the page needs it); until Ctrl-C.
    Ui(UiArgs),

    /// A team workspace's server: `init`, then `start`.
    ///
    /// A team workspace served over HTTPS to many people, on PostgreSQL or a
    /// SQLite file: `moor server init --data DIR` once, then `moor server
    /// start --data DIR`.
    #[command(subcommand)]
    Server(ServerCommand),

    /// Log in to a team server.
    ///
    /// Log in to a team server: checks its certificate (pinned, as a host
    /// key is) and the token, then saves the login (0600) in
    /// ~/.config/moor/login.json.
    #[command(after_help = EXIT_CODES)]
    Login(LoginArgs),

    /// Who this login is, on which server.
    Whoami,

    /// Forget the saved login.
    Logout,

    /// The team's users and their tokens.
    ///
    /// The team's users: add (prints the token once), list, remove, and a new
    /// token for one. Adding, removing and others' tokens are for admins.
    #[command(subcommand)]
    User(UserCommand),

    /// Who did what on the team server, and when (admins).
    Audit(AuditArgs),

    /// Manage the host keys recorded in the workspace.
    #[command(subcommand, name = "host-key")]
    HostKey(HostKeyCommand),

    /// Print a shell completion script.
    ///
    /// Print a shell completion script: `moor completions bash >
    /// ~/.local/share/bash-completion/completions/moor` (zsh: into a folder
    /// of $fpath as `_moor`; fish: ~/.config/fish/completions/moor.fish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print moor's manual page.
    ///
    /// Print moor's manual page (roff): `moor man > moor.1; man ./moor.1`.
    Man,
}

/// `moor ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port on 127.0.0.1 [default: 8650, or the next free one up to
    /// 8659, else any free port]; 0: any free port.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
}

/// `moor detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// Target name.
    pub name: String,

    /// Remove everything moor put on the host: the agent, runs and their
    /// logs, snapshots, environments (and the Docker images built for
    /// them), and the enrolled workspace key.
    #[arg(long)]
    pub purge: bool,

    /// Cancel the target's queued and running runs first (without it,
    /// detach refuses while any are going).
    #[arg(long, conflicts_with = "local_only")]
    pub cancel_runs: bool,

    /// Only forget the target here; do not connect to the host (e.g. it is gone).
    #[arg(long, conflicts_with = "purge")]
    pub local_only: bool,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this target.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// Only the jobs of this experiment (a job file's `experiment_name`).
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,

    /// Also the runs of targets detached since (from the workspace's history).
    #[arg(long, conflicts_with = "target")]
    pub all: bool,

    /// Order by the latest value of this MLflow metric, smallest first
    /// (runs without it last), and show it as a column.
    #[arg(long, value_name = "METRIC")]
    pub sort: Option<String>,

    /// With --sort: largest first.
    #[arg(long, requires = "sort")]
    pub desc: bool,

    /// `prune`: remove finished runs.
    #[command(subcommand)]
    pub action: Option<RunsCommand>,

    /// How to connect (defaults: the targets' stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Remove finished runs (their folders, logs and outputs) from a target,
    /// and the snapshots no remaining run refers to. Runs queued or running
    /// are never touched; the history keeps their records.
    Prune(PruneArgs),
}

/// `moor runs prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The target to clean.
    #[arg(long, value_name = "NAME")]
    pub target: String,

    /// Only runs that ended longer ago than this: `30m`, `12h`, `7d`.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<u64>,

    /// Keep this many of the newest finished runs whatever their age.
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// An age as `90s`, `30m`, `12h`, `7d` or `2w`, in seconds.
pub fn parse_age(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("{s:?} is not an age like 30m, 12h or 7d");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).ok_or_else(bad)
}

/// `moor logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run or job id (or name).
    pub run: String,

    /// A job's node N only (its log without the `[node N]` prefixes).
    #[arg(long, value_name = "N")]
    pub node: Option<u32>,

    /// Keep streaming until the run ends.
    #[arg(long, short)]
    pub follow: bool,

    /// Start at this byte of the log.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Run or job id (or name).
    pub run: String,

    /// A job's node N only.
    #[arg(long, value_name = "N")]
    pub node: Option<u32>,

    /// Keep reading until the run ends: on a terminal the table is redrawn
    /// as points come; with --json, one JSON line a point.
    #[arg(long, short)]
    pub follow: bool,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Run id.
    pub run: String,

    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub grace: u32,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Run id.
    pub run: String,

    /// Where to put them [default: ./moor-outputs/RUN].
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,

    /// Only files matching this glob (repeatable): `*.json`, `checkpoints/**`.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Not files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Targets.
    pub targets: Vec<String>,

    /// How to connect (defaults: the targets' stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor env ...`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Define an environment from standard files (checked now, with the line
    /// and reason of any problem).
    Create(EnvCreateArgs),
    /// List the environments.
    List,
    /// Show an environment's spec and hash.
    Show {
        /// Environment name.
        name: String,
    },
    /// Delete an environment from the workspace (targets keep their builds
    /// until `moor env prune`).
    Delete {
        /// Environment name.
        name: String,
    },
    /// Build an environment on a target (a cache hit returns at once).
    #[command(after_help = EXIT_CODES)]
    Prepare(EnvPrepareArgs),
    /// Remove the environment builds on a target that no defined version refers to (--all: any) and no queued or running run uses.
    Prune(EnvPruneArgs),
}

/// `moor mux ...`.
#[derive(Debug, Subcommand)]
pub enum MuxCommand {
    /// Whether the multiplexer runs, and its connections.
    Status,
    /// Close the multiplexer's connections and end it.
    Stop,
    /// Run the multiplexer (commands start it by themselves).
    #[command(hide = true)]
    Serve {
        /// Exit after this many seconds with no pipe open.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        idle: u64,
        /// Connect to these targets at once (repeatable).
        #[arg(long, value_name = "NAME")]
        warm: Vec<String>,
    },
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

#[cfg(test)]
mod docs_tests;
