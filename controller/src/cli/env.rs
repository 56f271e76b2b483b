//! The flags of `moor env create|prepare|prune` and of `moor run --env`'s
//! build.

use std::path::PathBuf;

use clap::Args;

use super::connect::TargetArgs;

/// `moor env create`.
#[derive(Debug, Args)]
pub struct EnvCreateArgs {
    /// Environment name.
    pub name: String,
    /// Build a Docker image FROM this base image.
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["dockerfile", "docker_context"])]
    pub docker_base: Option<String>,
    /// Build a Docker image from this Dockerfile (COPY/ADD of local files
    /// need --docker-context).
    #[arg(long, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// A Docker build context: a folder with a Dockerfile (or --dockerfile)
    /// and the files it COPYs, shipped with the environment and part of its
    /// hash; its .dockerignore is honoured.
    #[arg(long, value_name = "DIR")]
    pub docker_context: Option<PathBuf>,
    /// A Docker build argument (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// A conda environment.yml (channels, dependencies, pip section).
    #[arg(long, value_name = "FILE")]
    pub conda_file: Option<PathBuf>,
    /// A pip requirements.txt.
    #[arg(long, value_name = "FILE")]
    pub pip_requirements: Option<PathBuf>,
    /// Install nothing: the host (or image) has what the run needs.
    #[arg(long)]
    pub user_managed: bool,
}

/// How an environment is built, for `moor env prepare` and `moor run --env`.
#[derive(Debug, Default, Args)]
pub struct PrepareAssetArgs {
    /// A local conda channel directory, shipped to the host and used instead
    /// of the spec's channels (offline hosts).
    #[arg(long, value_name = "DIR")]
    pub channel_dir: Option<PathBuf>,
    /// A directory of wheels, shipped to the host and used instead of PyPI.
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Use the host's micromamba/mamba/conda instead of the agent's own solver.
    #[arg(long)]
    pub use_host_conda: bool,
}

impl PrepareAssetArgs {
    /// Whether any of them was given.
    pub fn given(&self) -> bool {
        self.channel_dir.is_some() || self.wheelhouse.is_some() || self.use_host_conda
    }
}

/// `moor env prepare`.
#[derive(Debug, Args)]
pub struct EnvPrepareArgs {
    /// Environment name.
    pub name: String,
    /// The target.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Where the packages come from.
    #[command(flatten)]
    pub assets: PrepareAssetArgs,
    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}

/// `moor env prune`.
#[derive(Debug, Args)]
pub struct EnvPruneArgs {
    /// The target.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Also remove the builds of environments the workspace defines (any
    /// version); builds a queued or running run uses are always kept.
    #[arg(long)]
    pub all: bool,
    /// How to connect (defaults: the target's stored settings).
    #[command(flatten)]
    pub connect: TargetArgs,
}
