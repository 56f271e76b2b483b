//! Where a plan runs: its nodes' targets from `--target`, `--pool`, a job
//! file's `compute` and a node count, node 0 first; and the distribution
//! the flags ask for.

use crate::cli::{DistributionKind, JobFlags};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::{Pool, Store};

use super::Distribution;

/// The pool `name`, or the error saying there is none.
pub fn find_pool(store: &Store, name: &str) -> Result<Pool> {
    store.pool(name)?.ok_or_else(|| no_pool(name))
}

/// The error for a pool that does not exist.
pub fn no_pool(name: &str) -> Error {
    Error::usage(
        format!("no pool {name:?} in this workspace"),
        "see `moor pool list`, or make it with `moor pool create NAME --target A --target B`",
    )
}

/// Where a plan runs, as asked.
pub struct Placement<'a> {
    /// Target names (or one pool's name).
    pub targets: &'a [String],
    /// `--pool`.
    pub pool: Option<&'a str>,
    /// How many nodes, when said.
    pub nodes: Option<u32>,
}

/// Whether `targets` is one name that is a pool's and no target's.
pub fn names_a_pool(store: &Store, targets: &[String]) -> Result<bool> {
    Ok(match targets {
        [one] => store.target(one)?.is_none() && store.pool(one)?.is_some(),
        _ => false,
    })
}

/// The nodes' target names (node 0 first, each checked to exist) and the
/// pool they came from.
pub fn place(
    ctx: &Context,
    store: &Store,
    p: &Placement<'_>,
) -> Result<(Vec<String>, Option<String>)> {
    let pool_name = match p.pool {
        Some(pool) => Some(pool.to_owned()),
        None => names_a_pool(store, p.targets)?.then(|| p.targets[0].clone()),
    };
    let names: Vec<String> = match &pool_name {
        Some(name) => find_pool(store, name)?.targets,
        None => p.targets.to_vec(),
    };
    if names.is_empty() {
        return Err(Error::usage(
            "the job names no target",
            "pass --target NAME (repeatable) or --pool NAME, or set `compute:` in the job file",
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::usage(
                format!("target {name} is named twice"),
                "name each node's target once",
            ));
        }
    }
    let wanted = p.nodes.map_or(names.len(), |n| n as usize);
    if wanted > names.len() {
        let of = match &pool_name {
            Some(pool) => format!("pool {pool} has {}", names.len()),
            None => format!("{} given", names.len()),
        };
        return Err(Error::usage(
            format!("the job asks for {wanted} nodes; {of} target(s)"),
            "add targets (--target, `moor pool create`), or ask for fewer nodes (--nodes, resources.instance_count)",
        ));
    }
    let nodes = names[..wanted]
        .iter()
        .map(|n| ctx.targets.named(store, n).map(|t| t.name))
        .collect::<Result<Vec<_>>>()?;
    Ok((nodes, pool_name))
}

/// The distribution the flags ask for.
pub fn distribution(flags: &JobFlags) -> Option<Distribution> {
    let p = flags.processes_per_node.unwrap_or(1);
    match flags.distribution {
        Some(DistributionKind::Pytorch) => Some(Distribution::Pytorch {
            processes_per_node: p,
        }),
        Some(DistributionKind::Mpi) => Some(Distribution::Mpi {
            processes_per_node: p,
        }),
        Some(DistributionKind::Tensorflow) => Some(Distribution::Tensorflow {
            workers: 0,
            parameter_servers: 0,
        }),
        // Processes per node alone: moor starts them, torch-style.
        None => flags.processes_per_node.map(|p| Distribution::Pytorch {
            processes_per_node: p,
        }),
    }
}
