//! A job: one command on several nodes (targets) at once, as one thing to
//! follow, list, cancel and download. [`launch`] is the gang start: every
//! node gets the sources, inputs and environment first, then every node's
//! run is accepted *held*, and only when all are accepted are they released;
//! a node that cannot take its run cancels the others before anything ran.
//! [`rendezvous`] says where the nodes meet, [`watch`] follows them.

mod mpi;
pub mod plan;
pub mod rendezvous;
pub mod watch;

use std::collections::BTreeMap;

use futures::future::join_all;
use moor_proto::{JobLink, MpiRole, Processes, RunInfo, RunSpec};

pub use crate::jobfile::Distribution;

use crate::cmd::env_build::{prepare_on, Assets};
use crate::cmd::Context;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::store::{Env, JobRecord, Target};
use crate::target::{Access, Connected};
use rendezvous::Rendezvous;

/// What to run, where: everything decided before any connection.
pub struct JobPlan {
    /// The job's name.
    pub name: Option<String>,
    /// Its experiment (a group to list by).
    pub experiment: Option<String>,
    /// The command (argv; a job file's command line is `sh -c LINE`).
    pub command: Vec<String>,
    /// The source snapshot (a job file without `code` has none).
    pub snapshot: Option<Snapshot>,
    /// Data inputs, each its own snapshot.
    pub inputs: BTreeMap<String, Snapshot>,
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
    /// The nodes, node 0 first.
    pub targets: Vec<Target>,
    /// The pool they came from, when one was named.
    pub pool: Option<String>,
    /// `--master-addr`.
    pub master_addr: Option<String>,
    /// GPUs each node's run needs.
    pub gpus: u32,
}

/// A started job and the connections to its nodes.
pub struct Launched {
    /// The job as recorded.
    pub record: JobRecord,
    /// Each node's run as it was started.
    pub runs: Vec<RunInfo>,
    /// Each node's connection (node 0 first).
    pub conns: Vec<Connected>,
    /// Bytes of sources and inputs sent, all nodes together.
    pub sent: usize,
}

/// Seconds a node stopped by the job link (another node failed) has
/// between SIGTERM and SIGKILL: as a `moor cancel`'s default.
const LINK_GRACE: u32 = 10;

/// A new job id: `j`, then a run id's shape (time and random hex).
fn new_job_id() -> String {
    let now = moor_proto::time::now().replace(['-', ':'], "");
    format!("j{}-{}", now.trim_end_matches('Z'), crate::random::hex(2))
}

/// Runs `f` on every node at once; the first error wins.
async fn on_all<'a, T>(
    conns: &'a [Connected],
    f: impl Fn(usize, &'a Connected) -> futures::future::BoxFuture<'a, Result<T>>,
) -> Result<Vec<T>> {
    join_all(conns.iter().enumerate().map(|(i, c)| f(i, c)))
        .await
        .into_iter()
        .collect()
}

/// Closes every connection.
async fn close_all(conns: Vec<Connected>) {
    join_all(conns.into_iter().map(Connected::close)).await;
}

/// The gang start (see the module's doc).
pub async fn launch(
    plan: &JobPlan,
    ctx: &Context,
    access: &Access,
    assets: &Assets<'_>,
) -> Result<Launched> {
    let connected = join_all(plan.targets.iter().map(|t| ctx.targets.connect(t, access))).await;
    let mut conns = Vec::new();
    let mut failed = None;
    for c in connected {
        match c {
            Ok(c) => conns.push(c),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        close_all(conns).await;
        return Err(e);
    }
    match start_held(plan, ctx, &conns, assets).await {
        Ok((record, runs, sent)) => Ok(Launched {
            record,
            runs,
            conns,
            sent,
        }),
        Err(e) => {
            close_all(conns).await;
            Err(e)
        }
    }
}

/// Prepares every node, starts every run held, records the job, releases.
async fn start_held(
    plan: &JobPlan,
    ctx: &Context,
    conns: &[Connected],
    assets: &Assets<'_>,
) -> Result<(JobRecord, Vec<RunInfo>, usize)> {
    let targets = &plan.targets;
    if let Some(env) = &plan.env {
        on_all(conns, |i, c| {
            Box::pin(async move { prepare_on(c, ctx, &targets[i], env, assets).await.map(drop) })
        })
        .await?;
    }
    let total: u64 = plan.snapshot.as_ref().map_or(0, |s| s.size)
        + plan.inputs.values().map(|s| s.size).sum::<u64>() * conns.len() as u64;
    let transfer = crate::transfer::Transfer::new("sources and inputs", Some(total));
    let progress = &transfer;
    // Each node's uploads and its addresses, asked at once.
    let answers = on_all(conns, |_, c| {
        Box::pin(async move {
            let upload = async {
                let mut sent = 0;
                if let Some(snapshot) = &plan.snapshot {
                    sent += c.agent.put_snapshot(snapshot, progress).await?;
                }
                for input in plan.inputs.values() {
                    sent += c.agent.put_snapshot(input, progress).await?;
                }
                Ok::<_, Error>(sent)
            };
            let (sent, info) = futures::join!(upload, c.agent.node_info());
            Ok((sent?, info?))
        })
    })
    .await?;
    drop(transfer);
    let sent: usize = answers.iter().map(|(s, _)| s).sum();
    let infos: Vec<moor_proto::NodeInfo> = answers.into_iter().map(|(_, i)| i).collect();
    let fallback: Vec<String> = targets.iter().map(|t| t.host.clone()).collect();
    let addresses = rendezvous::node_addresses(&infos, &fallback);
    let job_id = new_job_id();
    let r = Rendezvous {
        job_id: job_id.clone(),
        master_addr: plan
            .master_addr
            .clone()
            .unwrap_or_else(|| addresses[0].clone()),
        master_port: infos[0].free_port,
        ports: infos.iter().map(|i| i.free_port).collect(),
        addresses,
    };
    let nodes = conns.len();
    // The nodes watch one another through node 0 (agents that predate the
    // job link report no port for it: then only moor's following does).
    let token = crate::random::hex(16);
    let link = |rank: usize| {
        (nodes > 1 && infos[0].link_port != 0).then(|| {
            Box::new(JobLink {
                hub: format!("{}:{}", r.master_addr, infos[0].link_port),
                token: token.clone(),
                rank: rank as u32,
                nodes: nodes as u32,
                grace: LINK_GRACE,
            })
        })
    };
    let per_node = match plan.distribution {
        Some(Distribution::Pytorch { processes_per_node }) => Some(processes_per_node),
        _ => None,
    };
    let spec = |rank: usize, mpi: Option<MpiRole>| {
        let mut env = plan.variables.clone();
        env.extend(rendezvous::node_variables(
            &r,
            rank,
            plan.distribution.as_ref(),
        ));
        RunSpec {
            name: plan.name.clone(),
            snapshot: plan
                .snapshot
                .as_ref()
                .map(|s| s.sha256.clone())
                .unwrap_or_default(),
            command: plan.command.clone(),
            env,
            environment: plan.env.as_ref().map(|e| e.hash.clone()),
            inputs: plan
                .inputs
                .iter()
                .map(|(k, s)| (k.clone(), s.sha256.clone()))
                .collect(),
            url_inputs: plan.url_inputs.clone(),
            outputs: plan.outputs.clone(),
            hold: nodes > 1,
            processes: per_node.map(|p| Processes {
                count: p,
                first_rank: rank as u32 * p,
                world_size: nodes as u32 * p,
            }),
            mpi,
            serving: None,
            gpus: plan.gpus,
            spark: None,
            link: link(rank),
            experiment: plan.experiment.clone(),
        }
    };
    let mut runs: Vec<(usize, RunInfo)> = Vec::new();
    let refused = match &plan.distribution {
        Some(Distribution::Mpi { processes_per_node }) => {
            let roles = mpi::roles(&r, &infos, targets, &job_id, *processes_per_node)?;
            // The other nodes first: node 0 needs their runs' ids.
            let peers: Vec<usize> = (1..nodes).collect();
            let refused =
                start_some(conns, &peers, |i| spec(i, Some(roles.peer(i))), &mut runs).await;
            match refused {
                Some(refused) => Some(refused),
                None => {
                    let ids: Vec<String> = runs.iter().map(|(_, run)| run.id.clone()).collect();
                    let launcher = roles.launcher(&ids);
                    start_some(conns, &[0], |i| spec(i, Some(launcher.clone())), &mut runs).await
                }
            }
        }
        _ => {
            let all: Vec<usize> = (0..nodes).collect();
            start_some(conns, &all, |i| spec(i, None), &mut runs).await
        }
    };
    if let Some((i, e)) = refused {
        // Held runs never started their command: cancelling them is clean.
        join_all(
            runs.iter()
                .map(|(k, run)| conns[*k].agent.cancel(&run.id, 0)),
        )
        .await;
        return Err(node_failed(i, &targets[i].name, e));
    }
    runs.sort_by_key(|(i, _)| *i);
    let runs: Vec<RunInfo> = runs.into_iter().map(|(_, r)| r).collect();
    let record = JobRecord {
        id: job_id,
        name: plan.name.clone(),
        experiment: plan.experiment.clone(),
        command: plan.command.clone(),
        pool: plan.pool.clone(),
        nodes: targets
            .iter()
            .zip(&runs)
            .map(|(t, run)| (t.name.clone(), run.id.clone()))
            .collect(),
        master_addr: r.master_addr.clone(),
        created_at: moor_proto::time::now(),
    };
    ctx.store()?.record_job(&record, &runs)?;
    if nodes > 1 {
        let released = join_all(
            conns
                .iter()
                .zip(&runs)
                .map(|(c, run)| c.agent.release(&run.id)),
        )
        .await;
        if let Some((i, e)) = released
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
        {
            join_all(
                conns
                    .iter()
                    .zip(&runs)
                    .map(|(c, run)| c.agent.cancel(&run.id, 0)),
            )
            .await;
            return Err(node_failed(i, &targets[i].name, e));
        }
    }
    Ok((record, runs, sent))
}

/// Starts the runs of nodes `which` at once (each `spec(i)`), adding each
/// started one to `runs`; the first refusal, if any.
async fn start_some(
    conns: &[Connected],
    which: &[usize],
    spec: impl Fn(usize) -> RunSpec,
    runs: &mut Vec<(usize, RunInfo)>,
) -> Option<(usize, Error)> {
    let spec = &spec;
    let started = join_all(
        which
            .iter()
            .map(|&i| async move { (i, conns[i].agent.start_run(spec(i)).await) }),
    )
    .await;
    let mut refused = None;
    for (i, s) in started {
        match s {
            Ok(run) => runs.push((i, run)),
            Err(e) => refused = refused.or(Some((i, e))),
        }
    }
    refused
}

/// A node that could not take its part: the job did not start.
fn node_failed(rank: usize, target: &str, e: Error) -> Error {
    Error::JobNode {
        rank,
        target: target.to_owned(),
        cause: Box::new(e),
    }
}
