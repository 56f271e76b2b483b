//! A job's gang start: one command on several nodes (targets) at once, as
//! one thing to follow, list, cancel and download. Every node gets the
//! sources, inputs and environment first, then every node's run is accepted
//! *held*, and only when all are accepted are they released; a node that
//! cannot take its run cancels the others before anything ran.
//! [`super::rendezvous`] says where the nodes meet,
//! [`crate::follow::nodes`] follows them.

use futures::future::join_all;
use moor_proto::{JobLink, MpiRole, RunInfo, RunSpec};

use super::mpi;
use super::rendezvous::{self, Rendezvous};
use crate::context::Context;
use crate::envs::prepare::{prepare_on, Assets};
use crate::error::{Error, Result};
use crate::plan::{Distribution, Payloads, RunPlan};
use crate::reach::{Access, Connected};
use crate::store::{JobRecord, Target};

/// A started job and the connections to its nodes.
pub struct Launched {
    /// The job as recorded.
    pub record: JobRecord,
    /// Each node's run as it was started.
    pub runs: Vec<RunInfo>,
    /// Each node's connection (node 0 first).
    pub conns: Vec<Connected>,
    /// Each node's target (node 0 first).
    pub targets: Vec<Target>,
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
    plan: &RunPlan,
    payloads: &Payloads,
    ctx: &Context,
    access: &Access,
    assets: &Assets<'_>,
) -> Result<Launched> {
    let store = ctx.store()?;
    let targets = plan
        .nodes
        .iter()
        .map(|n| ctx.targets.named(&store, n))
        .collect::<Result<Vec<_>>>()?;
    let connected = join_all(targets.iter().map(|t| ctx.targets.connect(t, access))).await;
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
    let nodes = Nodes {
        targets: &targets,
        conns: &conns,
    };
    match start_held(plan, payloads, ctx, &nodes, assets).await {
        Ok((record, runs, sent)) => Ok(Launched {
            record,
            runs,
            conns,
            targets,
            sent,
        }),
        Err(e) => {
            close_all(conns).await;
            Err(e)
        }
    }
}

/// The job's nodes: their targets and connections, node 0 first.
struct Nodes<'a> {
    targets: &'a [Target],
    conns: &'a [Connected],
}

/// Prepares every node, starts every run held, records the job, releases.
async fn start_held(
    plan: &RunPlan,
    payloads: &Payloads,
    ctx: &Context,
    nodes: &Nodes<'_>,
    assets: &Assets<'_>,
) -> Result<(JobRecord, Vec<RunInfo>, usize)> {
    let (sent, infos) = ship(plan, payloads, ctx, nodes, assets).await?;
    let fallback: Vec<String> = nodes.targets.iter().map(|t| t.host.clone()).collect();
    let addresses = rendezvous::node_addresses(&infos, &fallback);
    let r = Rendezvous {
        job_id: new_job_id(),
        master_addr: plan
            .master_addr
            .clone()
            .unwrap_or_else(|| addresses[0].clone()),
        master_port: infos[0].free_port,
        ports: infos.iter().map(|i| i.free_port).collect(),
        interfaces: infos
            .iter()
            .zip(&addresses)
            .map(|(info, address)| rendezvous::interface_of(info, address))
            .collect(),
        addresses,
    };
    let runs = start_all(plan, nodes, &r, &infos).await?;
    let record = JobRecord {
        id: r.job_id.clone(),
        name: plan.name.clone(),
        experiment: plan.experiment.clone(),
        command: plan.command.clone(),
        pool: plan.pool.clone(),
        nodes: nodes
            .targets
            .iter()
            .zip(&runs)
            .map(|(t, run)| (t.name.clone(), run.id.clone()))
            .collect(),
        master_addr: r.master_addr.clone(),
        created_at: moor_proto::time::now(),
    };
    ctx.store()?.record_job(&record, &runs)?;
    release(nodes, &runs).await?;
    Ok((record, runs, sent))
}

/// Makes the environment ready on every node, sends each node the content
/// it lacks and asks its addresses, all at once: the bytes sent and each
/// node's answer.
async fn ship(
    plan: &RunPlan,
    payloads: &Payloads,
    ctx: &Context,
    nodes: &Nodes<'_>,
    assets: &Assets<'_>,
) -> Result<(usize, Vec<moor_proto::NodeInfo>)> {
    let (targets, conns) = (nodes.targets, nodes.conns);
    let contents = plan
        .contents()
        .map(|c| super::payload(payloads, c))
        .collect::<Result<Vec<_>>>()?;
    if let Some(env) = &plan.env {
        on_all(conns, |i, c| {
            Box::pin(async move { prepare_on(c, ctx, &targets[i], env, assets).await.map(drop) })
        })
        .await?;
    }
    let transfer = crate::transfer::Transfer::new("sources and inputs", Some(plan.bytes()));
    let (progress, contents) = (&transfer, &contents);
    let answers = on_all(conns, |_, c| {
        Box::pin(async move {
            let upload = async {
                let mut sent = 0;
                for snapshot in contents {
                    sent += c.agent.put_snapshot(snapshot, progress).await?;
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
    Ok((sent, answers.into_iter().map(|(_, i)| i).collect()))
}

/// Starts every node's run, held while there are several (MPI's peers
/// before node 0, which needs their ids); a refusal cancels the others.
async fn start_all(
    plan: &RunPlan,
    nodes: &Nodes<'_>,
    r: &Rendezvous,
    infos: &[moor_proto::NodeInfo],
) -> Result<Vec<RunInfo>> {
    let (targets, conns) = (nodes.targets, nodes.conns);
    let count = conns.len();
    // The nodes watch one another through node 0 (agents that predate the
    // job link report no port for it: then only moor's following does).
    let token = crate::random::hex(16);
    let link = |rank: usize| {
        (count > 1 && infos[0].link_port != 0).then(|| {
            Box::new(JobLink {
                hub: format!("{}:{}", r.master_addr, infos[0].link_port),
                token: token.clone(),
                rank: rank as u32,
                nodes: count as u32,
                grace: LINK_GRACE,
            })
        })
    };
    let spec = |rank: usize, mpi: Option<MpiRole>| {
        let mut spec = plan.node_spec(rank);
        spec.env.extend(rendezvous::node_variables(
            r,
            rank,
            plan.distribution.as_ref(),
        ));
        // Unless the user chose the interfaces.
        for (name, value) in rendezvous::interface_variables(r, rank) {
            spec.env.entry(name).or_insert(value);
        }
        RunSpec {
            hold: count > 1,
            mpi,
            link: link(rank),
            ..spec
        }
    };
    let mut runs: Vec<(usize, RunInfo)> = Vec::new();
    let refused = match &plan.distribution {
        Some(Distribution::Mpi { processes_per_node }) => {
            let roles = mpi::roles(r, infos, targets, &r.job_id, *processes_per_node)?;
            let peers: Vec<usize> = (1..count).collect();
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
            let all: Vec<usize> = (0..count).collect();
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
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// Releases every held run at once; one that cannot be released cancels
/// them all.
async fn release(nodes: &Nodes<'_>, runs: &[RunInfo]) -> Result<()> {
    let conns = nodes.conns;
    if conns.len() < 2 {
        return Ok(());
    }
    let released = join_all(
        conns
            .iter()
            .zip(runs)
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
                .zip(runs)
                .map(|(c, run)| c.agent.cancel(&run.id, 0)),
        )
        .await;
        return Err(node_failed(i, &nodes.targets[i].name, e));
    }
    Ok(())
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
