//! `moor endpoint ...`'s flags: serve a model from a target over HTTP.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{PrepareAssetArgs, TargetArgs};

/// Exit codes of `moor endpoint`.
pub const ENDPOINT_EXIT_CODES: &str = "\
Exit codes: 0 done (create and start: the endpoint answers its probe); 8 the
endpoint failed (its server died before it answered: the log's last lines
are printed), did not answer in --wait-timeout, the target refused (a model
path that does not exist, a taken port, a name in use), or `invoke` got an
HTTP error status; 2 bad usage; 4-6 connecting; 9 its --env failed to build.";

/// `moor endpoint ...`.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Serve a model from a target: the Azure ML scoring-script contract
    /// (`init()`, `run(raw_data)` on `POST /score`) with
    /// azureml-inference-server-http, or any HTTP server (`-- CMD`, with
    /// $PORT set). Waits until it answers its probe.
    #[command(after_help = ENDPOINT_EXIT_CODES)]
    Create(EndpointCreateArgs),
    /// List endpoints (those this workspace created, or a target's).
    List {
        /// Only this target's (also endpoints created elsewhere).
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// How to connect (defaults: the targets' stored settings).
        #[command(flatten)]
        connect: TargetArgs,
    },
    /// Show an endpoint: state, port, restarts, last exit.
    Show(EndpointNameArgs),
    /// Print an endpoint's log (its server's output and moor's lines).
    Logs {
        #[command(flatten)]
        endpoint: EndpointNameArgs,
        /// Keep printing until the endpoint stops or fails (Ctrl-C leaves).
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop an endpoint's server (it stays, `stopped`; `start` brings it back).
    Stop(EndpointNameArgs),
    /// Start a stopped or failed endpoint again and wait until it answers.
    #[command(after_help = ENDPOINT_EXIT_CODES)]
    Start {
        #[command(flatten)]
        endpoint: EndpointNameArgs,
        /// How long to wait for it to answer, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        wait_timeout: u64,
    },
    /// Stop an endpoint and remove it from the target (its port is free
    /// after).
    Delete(EndpointNameArgs),
    /// Send a request to an endpoint through the SSH connection and print
    /// the answer's body (`POST /score` with JSON by default).
    #[command(after_help = ENDPOINT_EXIT_CODES)]
    Invoke(EndpointInvokeArgs),
}

/// An endpoint by name.
#[derive(Debug, Args)]
pub struct EndpointNameArgs {
    /// The endpoint's name.
    pub name: String,
    /// Its target (default: the one this workspace created it on).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor endpoint create`.
#[derive(Debug, Args)]
pub struct EndpointCreateArgs {
    /// The endpoint's name (letters, digits, '_' and '-').
    pub name: String,

    /// The target that serves it.
    #[arg(long, value_name = "NAME")]
    pub target: String,

    /// The environment it runs in (`moor env create`); a scoring script
    /// gets azureml-inference-server-http added to it when it lacks it.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// With --env: where its packages come from when it is built.
    #[command(flatten)]
    pub assets: PrepareAssetArgs,

    /// The folder with the scoring script and its code (snapshotted as for
    /// `moor run`).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub source_dir: PathBuf,

    /// The scoring script, relative to --source-dir.
    #[arg(
        long,
        value_name = "FILE.py",
        required_unless_present = "command",
        conflicts_with = "command"
    )]
    pub scoring_script: Option<String>,

    /// The model: `RUN` (a run's outputs), `RUN:PATH` (a file or folder in
    /// them), copied on the target; or a local file or folder, uploaded.
    /// The server finds it in $AZUREML_MODEL_DIR: a file under its own name
    /// (`RUN:model/m.pkl` is $AZUREML_MODEL_DIR/m.pkl), a folder's contents.
    #[arg(long, value_name = "RUN[:PATH]|PATH")]
    pub model: Option<String>,

    /// The TCP port it listens on [default: a free one]. A scoring server
    /// that is not `--public` listens on a unix socket instead (only you
    /// reach it), so this needs `--public`; a server command gets `PORT` and
    /// `MOOR_ENDPOINT_SOCKET`.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The path its readiness probe asks (`GET`).
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub health_path: String,

    /// Listen on every address of the target, not on a unix socket only you
    /// reach (anyone who reaches the port can call it: see
    /// docs/reference.md).
    #[arg(long)]
    pub public: bool,

    /// Set a variable in the server's environment (repeatable).
    #[arg(short = 'e', long = "env-var", value_name = "KEY=VALUE")]
    pub env_vars: Vec<String>,

    /// How long to wait for it to answer, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub wait_timeout: u64,

    /// Largest source snapshot, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_snapshot_size: u64,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,

    /// Any HTTP server instead of a scoring script (after --; $PORT tells
    /// it the port).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `moor endpoint invoke`.
#[derive(Debug, Args)]
pub struct EndpointInvokeArgs {
    #[command(flatten)]
    pub endpoint: EndpointNameArgs,
    /// The request body (JSON); `-` or none: standard input.
    #[arg(long, value_name = "FILE.json")]
    pub data: Option<PathBuf>,
    /// The path to call.
    #[arg(long, value_name = "PATH", default_value = "/score")]
    pub path: String,
    /// How long the answer may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}
