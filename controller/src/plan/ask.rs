//! What a command asks to run, in one shape: `moor run`'s, `moor job
//! submit`'s and `moor endpoint create`'s flags brought together, before
//! anything is resolved. A flag a command does not have is absent here, so
//! [`super::build`] decides every option once, for every path.

use std::path::PathBuf;

use crate::cli::{EndpointCreateArgs, JobFlags, JobSubmitArgs, RunArgs};

/// `moor run`'s default source folder.
const DEFAULT_SOURCE: &str = ".";

/// A run asked for (see the module's doc).
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// `--target` (repeatable), or a job file's `compute` when none.
    pub targets: Vec<String>,
    /// `--pool`.
    pub pool: Option<String>,
    /// `--nodes`.
    pub nodes: Option<u32>,
    /// An Azure ML job file (`-f`, `moor job submit`) and its `--set`s.
    pub file: Option<(PathBuf, Vec<String>)>,
    /// `--source-dir`, when given.
    pub source_dir: Option<PathBuf>,
    /// `--max-snapshot-size` in bytes.
    pub max_snapshot_bytes: u64,
    /// `--allow-private-keys`: whether a source may carry private keys.
    pub keys: crate::snapshot::Keys,
    /// `--name`.
    pub name: Option<String>,
    /// `-e KEY=VALUE`.
    pub env_vars: Vec<String>,
    /// `--env-file`.
    pub env_file: Option<PathBuf>,
    /// `--env NAME[:N]`.
    pub env: Option<String>,
    /// Whether `--channel-dir`, `--wheelhouse` or `--use-host-conda` was given.
    pub build_assets: bool,
    /// `--spark` and its settings.
    pub spark: Option<SparkAsk>,
    /// `--gpus`.
    pub gpus: u32,
    /// `--experiment`.
    pub experiment: Option<String>,
    /// `--distribution`, `--processes-per-node`, `--master-addr`.
    pub job: JobFlags,
    /// Started as a job even on one target (`moor job submit`).
    pub job_asked: bool,
    /// The command after `--`.
    pub command: Vec<String>,
    /// An endpoint to serve (`moor endpoint create`).
    pub serve: Option<ServeAsk>,
}

/// `--spark`, `--spark-master`, `--spark-conf`.
#[derive(Debug, Clone, Default)]
pub struct SparkAsk {
    /// The master, when given.
    pub master: Option<String>,
    /// `KEY=VALUE` settings.
    pub conf: Vec<String>,
}

/// `moor endpoint create`'s own flags.
#[derive(Debug, Clone, Default)]
pub struct ServeAsk {
    /// The endpoint's name.
    pub name: String,
    /// `--port`.
    pub port: Option<u16>,
    /// `--public`.
    pub public: bool,
    /// `--health-path`.
    pub health_path: String,
    /// `--scoring-script`, relative to the source folder.
    pub scoring_script: Option<String>,
    /// `--model`.
    pub model: Option<String>,
}

fn keys(allow: bool) -> crate::snapshot::Keys {
    if allow {
        crate::snapshot::Keys::Allow
    } else {
        crate::snapshot::Keys::Refuse
    }
}

impl From<&RunArgs> for Ask {
    fn from(a: &RunArgs) -> Ask {
        Ask {
            targets: a.target.clone(),
            pool: a.pool.clone(),
            nodes: a.nodes,
            file: a.file.clone().map(|f| (f, a.set.clone())),
            source_dir: a.source_dir.clone(),
            max_snapshot_bytes: a.max_snapshot_size << 20,
            keys: keys(a.allow_private_keys),
            name: a.name.clone(),
            env_vars: a.env_vars.clone(),
            env_file: a.env_file.clone(),
            env: a.env.clone(),
            build_assets: a.assets.given(),
            spark: a.spark.then(|| SparkAsk {
                master: a.spark_master.clone(),
                conf: a.spark_conf.clone(),
            }),
            gpus: a.gpus,
            experiment: a.experiment.clone(),
            job: a.job.clone(),
            job_asked: false,
            command: a.command.clone(),
            serve: None,
        }
    }
}

impl From<&JobSubmitArgs> for Ask {
    fn from(a: &JobSubmitArgs) -> Ask {
        Ask {
            targets: a.target.clone(),
            pool: a.pool.clone(),
            nodes: a.nodes,
            file: Some((a.file.clone(), a.set.clone())),
            max_snapshot_bytes: crate::snapshot::DEFAULT_MAX_BYTES,
            keys: keys(a.allow_private_keys),
            gpus: a.gpus,
            job: a.job_flags(),
            job_asked: true,
            ..Ask::default()
        }
    }
}

impl From<&EndpointCreateArgs> for Ask {
    fn from(a: &EndpointCreateArgs) -> Ask {
        Ask {
            targets: vec![a.target.clone()],
            source_dir: Some(a.source_dir.clone()),
            max_snapshot_bytes: a.max_snapshot_size << 20,
            env_vars: a.env_vars.clone(),
            env: a.env.clone(),
            build_assets: a.assets.given(),
            command: a.command.clone(),
            serve: Some(ServeAsk {
                name: a.name.clone(),
                port: a.port,
                public: a.public,
                health_path: a.health_path.clone(),
                scoring_script: a.scoring_script.clone(),
                model: a.model.clone(),
            }),
            ..Ask::default()
        }
    }
}

impl Ask {
    /// The source folder: `--source-dir`, else the current one.
    pub fn source_dir(&self) -> PathBuf {
        self.source_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOURCE))
    }

    /// Whether this is a job rather than one run, given whether its one
    /// target name is a pool's.
    pub fn is_job(&self, names_a_pool: bool) -> bool {
        self.job_asked
            || self.file.is_some()
            || self.pool.is_some()
            || self.targets.len() > 1
            || self.job.distribution.is_some()
            || self.job.processes_per_node.is_some()
            || self.nodes.is_some()
            || names_a_pool
    }
}
