//! One description of a run to start, whoever asks for it.
//!
//! `moor run` (one target or several), `moor run -f`/`moor job submit` (an
//! Azure ML job file), `moor endpoint create` and the dashboard all say what
//! they want as an [`Ask`] (the commands' flags, brought to one shape:
//! ripgrep's low args to high args), [`build`] resolves it once into a
//! [`RunPlan`] (targets, source and inputs packed by content, environment,
//! variables, distribution, Spark, what an endpoint serves), and
//! [`crate::launch`] starts it: one node's run, a gang-started job, or an
//! endpoint's kept run. A single run is a one-node plan; each node's
//! [`RunSpec`] comes from [`RunPlan::node_spec`], so an option means the same
//! on every path, or is refused (exit 2) where it means nothing.
//!
//! A plan is serialisable (serde): what it names by content (source,
//! inputs, a local model) travels beside it in [`Payloads`], so a plan can
//! be sent ahead and the content only where it is missing.

mod ask;
mod build;
pub mod file;
mod place;
mod serve;

use std::collections::BTreeMap;

use moor_proto::endpoint::{ModelSource, Server};
use moor_proto::{RunSpec, SparkSpec};
use serde::{Deserialize, Serialize};

pub use crate::jobfile::Distribution;
pub use ask::{Ask, ServeAsk, SparkAsk};
pub use build::build;
pub use place::{find_pool, no_pool};
pub use serve::SERVER_PACKAGE;

use crate::snapshot::Snapshot;
use crate::store::Env;

/// A run to start, resolved: everything decided before any connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The run's (or job's) name.
    pub name: Option<String>,
    /// Its experiment (a group to list and compare by).
    pub experiment: Option<String>,
    /// The command (argv; a job file's command line is `sh -c LINE`).
    pub command: Vec<String>,
    /// The nodes' targets by name, node 0 first (each checked to exist).
    pub nodes: Vec<String>,
    /// The pool they came from, when one was named.
    pub pool: Option<String>,
    /// Started, recorded and followed as a job (several targets, a pool, a
    /// distribution or a job file), even on one node.
    pub job: bool,
    /// The source snapshot (a job file without `code` has none).
    pub source: Option<Content>,
    /// Data inputs, each its own snapshot.
    pub inputs: BTreeMap<String, Content>,
    /// URL inputs, downloaded on each host.
    pub url_inputs: BTreeMap<String, String>,
    /// Named output folders.
    pub outputs: Vec<String>,
    /// The environment, if any.
    pub env: Option<Env>,
    /// The run's variables (the environment's under them already).
    pub variables: BTreeMap<String, String>,
    /// The distributed engine.
    pub distribution: Option<Distribution>,
    /// `--master-addr`.
    pub master_addr: Option<String>,
    /// GPUs each node's run needs.
    pub gpus: u32,
    /// spark-submit's settings (`moor run --spark`).
    pub spark: Option<SparkSpec>,
    /// What an endpoint serves (`moor endpoint create`).
    pub serve: Option<Serve>,
}

/// Content a plan names by its hash; the bytes travel in [`Payloads`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// The snapshot's hex sha256.
    pub sha256: String,
    /// Its bytes (a tree's files summed).
    pub size: u64,
}

impl Content {
    fn of(snapshot: &Snapshot) -> Content {
        Content {
            sha256: snapshot.sha256.clone(),
            size: snapshot.size,
        }
    }
}

/// An endpoint: the run the agent keeps up, and how it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serve {
    /// The endpoint's name.
    pub name: String,
    /// Its port on the host (the agent picks one when absent).
    pub port: Option<u16>,
    /// Listen on every address, not only 127.0.0.1.
    pub public: bool,
    /// The path its probe asks.
    pub health_path: String,
    /// A scoring script or a command.
    pub server: Server,
    /// The model, local (in the payloads) or a run's outputs on the host.
    pub model: Option<ModelSource>,
}

/// The snapshots a plan names, by hash: packed here, uploaded where the
/// agent lacks them.
#[derive(Debug, Default)]
pub struct Payloads(BTreeMap<String, Snapshot>);

impl Payloads {
    /// Keeps `snapshot` and returns what a plan names it by.
    fn add(&mut self, snapshot: Snapshot) -> Content {
        let content = Content::of(&snapshot);
        self.0.insert(snapshot.sha256.clone(), snapshot);
        content
    }

    /// The snapshot behind `content`, if it was packed here.
    pub fn get(&self, content: &Content) -> Option<&Snapshot> {
        self.by_hash(&content.sha256)
    }

    /// The snapshot whose hash is `sha256`, if it was packed here.
    pub fn by_hash(&self, sha256: &str) -> Option<&Snapshot> {
        self.0.get(sha256)
    }
}

impl RunPlan {
    /// Every content the plan names, source first.
    pub fn contents(&self) -> impl Iterator<Item = &Content> {
        self.source.iter().chain(self.inputs.values())
    }

    /// Bytes all nodes receive at most (source once per node and inputs).
    pub fn bytes(&self) -> u64 {
        self.contents().map(|c| c.size).sum::<u64>() * self.nodes.len() as u64
    }

    /// What node `rank` runs, before a job's own parts (rendezvous
    /// variables, hold, link, MPI roles) are added by [`crate::launch`]: the
    /// same fields on every path.
    pub fn node_spec(&self, rank: usize) -> RunSpec {
        let processes = match self.distribution {
            Some(Distribution::Pytorch { processes_per_node }) => Some(moor_proto::Processes {
                count: processes_per_node,
                first_rank: rank as u32 * processes_per_node,
                world_size: self.nodes.len() as u32 * processes_per_node,
            }),
            _ => None,
        };
        RunSpec {
            name: self.name.clone(),
            snapshot: self
                .source
                .as_ref()
                .map(|s| s.sha256.clone())
                .unwrap_or_default(),
            command: self.command.clone(),
            env: self.variables.clone(),
            environment: self.env.as_ref().map(|e| e.hash.clone()),
            spark: self.spark.clone(),
            inputs: self
                .inputs
                .iter()
                .map(|(k, s)| (k.clone(), s.sha256.clone()))
                .collect(),
            url_inputs: self.url_inputs.clone(),
            outputs: self.outputs.clone(),
            processes,
            gpus: self.gpus,
            experiment: self.experiment.clone(),
            ..RunSpec::default()
        }
    }
}

#[cfg(test)]
mod tests;
