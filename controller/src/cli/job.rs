//! `moor job` (Azure ML command job files) and `moor pool` (named lists of
//! targets).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{JobFlags, TargetArgs};

/// `moor job ...`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run an Azure ML command job file (`$schema: .../commandJob.schema.json`)
    /// on its `compute` (a target or a pool), and stream its log. Exits
    /// with the job's exit code.
    #[command(after_help = super::RUN_EXIT_CODES)]
    Submit(JobSubmitArgs),
}

/// `moor job submit`.
#[derive(Debug, Args)]
pub struct JobSubmitArgs {
    /// The job file.
    #[arg(value_name = "FILE.yml")]
    pub file: PathBuf,

    /// Override a key of the job file, `inputs.NAME=VALUE`,
    /// `environment_variables.NAME=VALUE`, `compute=NAME`, `display_name=..`,
    /// `experiment_name=..`, `resources.instance_count=N` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Send files of the code folder that hold a private key (refused otherwise).
    #[arg(long)]
    pub allow_private_keys: bool,

    /// Run on these targets instead of the file's `compute` (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,

    /// Run on this pool instead of the file's `compute`.
    #[arg(long, value_name = "POOL", conflicts_with = "target")]
    pub pool: Option<String>,

    /// How many nodes (default: the file's `resources.instance_count`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub nodes: Option<u32>,

    /// The rendezvous address of node 0 as the other nodes reach it.
    #[arg(long, value_name = "ADDR")]
    pub master_addr: Option<String>,

    /// GPUs each node's run needs (it waits, `queued`, until they are free).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpus: u32,

    /// Start the job and return at once (prints its id).
    #[arg(long)]
    pub detach: bool,

    /// How to connect (defaults: the targets' stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

impl JobSubmitArgs {
    /// The job flags these arguments give (the rest comes from the file).
    pub fn job_flags(&self) -> JobFlags {
        JobFlags {
            master_addr: self.master_addr.clone(),
            ..JobFlags::default()
        }
    }
}

/// `moor pool ...`.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a pool of attached targets (node 0 is the first).
    Create {
        /// Pool name (not a target's).
        name: String,
        /// Its targets, in order (repeatable; at least one).
        #[arg(long, value_name = "NAME", required = true)]
        target: Vec<String>,
    },
    /// List the pools.
    List,
    /// Show a pool and its targets.
    Show {
        /// Pool name.
        name: String,
    },
    /// Delete a pool (its targets stay attached).
    Delete {
        /// Pool name.
        name: String,
    },
}
