//! `moor run`'s flags: one command on one target, or on several as one job
//! (`--target a --target b`, `--pool`), or an Azure ML job file (`-f`).

use std::path::PathBuf;

use clap::Args;

use super::{PrepareAssetArgs, TargetArgs};

/// Exit codes of `moor run`.
pub const RUN_EXIT_CODES: &str = "\
Exit codes: the command's own exit code; 128+N when a signal N ended it;
130 when you detach with Ctrl-C (the run goes on); moor's codes (2, 4-9)
when the run could not be started (9: its --env failed to build).";

/// `moor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The target to run on; repeated, or a pool's name, the targets of one
    /// job (node 0 first).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["pool", "file"])]
    pub target: Vec<String>,

    /// Run on a pool's targets (`moor pool create`): its first --nodes.
    #[arg(long, value_name = "POOL", conflicts_with = "target")]
    pub pool: Option<String>,

    /// How many nodes of the pool (default: all of them; with -f, the job
    /// file's `resources.instance_count`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub nodes: Option<u32>,

    /// Run an Azure ML command job file instead of CMD (as `moor job submit`).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE.yml",
        conflicts_with = "command"
    )]
    pub file: Option<PathBuf>,

    /// With -f: override a key of the job file, `inputs.NAME=VALUE`,
    /// `environment_variables.NAME=VALUE`, `compute=NAME`, `display_name=..`,
    /// `experiment_name=..`, `resources.instance_count=N` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "file")]
    pub set: Vec<String>,

    /// How the nodes of a job start their processes.
    #[command(flatten)]
    pub job: JobFlags,

    /// Directory to snapshot and run in (honours .gitignore and .moorignore;
    /// default: the current one). Not with -f: the job file's `code` says.
    #[arg(long, value_name = "DIR")]
    pub source_dir: Option<PathBuf>,

    /// A name for the run.
    #[arg(long)]
    pub name: Option<String>,

    /// Set a variable in the run's environment (repeatable). Values are
    /// never printed by `moor runs`, only names.
    #[arg(short = 'e', long = "env-var", value_name = "KEY=VALUE")]
    pub env_vars: Vec<String>,

    /// Read variables from a file of KEY=VALUE lines (`#` comments, an
    /// optional `export `, quoted values); -e wins over the file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// Run in this environment (`moor env create`); prepared first if the
    /// target lacks it.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// With --env: where its packages come from when it is built.
    #[command(flatten)]
    pub assets: PrepareAssetArgs,

    /// Submit the command's script (a .py file or a jar in the source
    /// directory; the rest are its arguments) with spark-submit. The source's
    /// other .py files go along as --py-files, its jars as --jars.
    #[arg(long)]
    pub spark: bool,

    /// With --spark: the master (`yarn`, `local[*]`, `spark://HOST:PORT`);
    /// default `yarn` on an HDInsight target, `local[*]` elsewhere.
    #[arg(long, value_name = "MASTER", requires = "spark")]
    pub spark_master: Option<String>,

    /// With --spark: a Spark setting, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", requires = "spark")]
    pub spark_conf: Vec<String>,

    /// GPUs the run needs (on each node of a job): it waits (`queued`) until
    /// that many of the target's are free, and gets them in
    /// CUDA_VISIBLE_DEVICES.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpus: u32,

    /// The experiment the run belongs to: MLflow code in it logs into this
    /// experiment (MLFLOW_EXPERIMENT_NAME); default `Default`. A job file's
    /// `experiment_name` sets it for a job.
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,

    /// Start the run and return at once (prints its id).
    #[arg(long)]
    pub detach: bool,

    /// Largest source snapshot, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_snapshot_size: u64,

    /// Send files of the source that hold a private key (refused otherwise).
    #[arg(long)]
    pub allow_private_keys: bool,

    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,

    /// The command and its arguments (after --).
    #[arg(last = true, required_unless_present = "file", value_name = "CMD")]
    pub command: Vec<String>,
}

/// How the nodes of a multi-node job start their processes.
#[derive(Debug, Clone, Default, Args)]
pub struct JobFlags {
    /// The distributed engine's variables each process gets: `pytorch`
    /// (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, NODE_RANK,
    /// LOCAL_WORLD_SIZE), `mpi` (mpirun on node 0 over a job-only SSH key),
    /// `tensorflow` (TF_CONFIG). Default: only the MOOR_* node variables.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub distribution: Option<DistributionKind>,

    /// Processes per node (pytorch: moor starts them, one per local rank;
    /// mpi: slots per host).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub processes_per_node: Option<u32>,

    /// The rendezvous address of node 0 as the other nodes reach it
    /// [default: node 0's address on the network the nodes share].
    #[arg(long, value_name = "ADDR")]
    pub master_addr: Option<String>,
}

/// `--distribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DistributionKind {
    /// torch.distributed.
    Pytorch,
    /// MPI (Open MPI's mpirun).
    Mpi,
    /// TensorFlow's TF_CONFIG.
    Tensorflow,
}
