//! `moor logs` and `moor cancel` given a job's id or name: they act on every
//! node (`[node N]` prefixes, `--node N`). Finding jobs and their rows is
//! [`crate::history`]'s.

use moor_proto::RunInfo;

use super::Context;
use crate::cli::{CancelArgs, LogsArgs};
use crate::error::Result;
use crate::follow::nodes as watch;
use crate::history::{self, RunJson};
use crate::reach::Access;
use crate::store::JobRecord;

/// `moor logs JOB [--node N] [--follow]`.
pub async fn logs(job: &JobRecord, args: &LogsArgs, ctx: &Context) -> Result<(RunJson, bool)> {
    let mut store = ctx.store()?;
    let access = Access::from_args(&args.connect)?;
    let nodes = history::nodes(ctx, &store, job, args.node)?;
    let ended = watch::follow_nodes(
        &ctx.targets,
        &access,
        nodes,
        args.offset,
        args.follow,
        ctx.json,
        10,
    )
    .await;
    let heard: Vec<RunInfo> = ended
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().cloned())
        .collect();
    store.heard_runs(&heard)?;
    let row = history::summarize(job, ended)?;
    let ended = args.follow && row.state.is_final();
    Ok((row, ended))
}

/// `moor cancel JOB`: every node at once.
pub async fn cancel(job: &JobRecord, args: &CancelArgs, ctx: &Context) -> Result<(RunJson, bool)> {
    let mut store = ctx.store()?;
    let access = Access::from_args(&args.connect)?;
    let nodes = history::nodes(ctx, &store, job, None)?;
    let access = &access;
    let answers = futures::future::join_all(nodes.iter().map(|n| async move {
        let c = ctx.targets.connect(&n.target, access).await?;
        let before = c.agent.run(&n.run_id).await;
        let after = match before {
            Ok(run) if run.state.is_final() => Ok((run, true)),
            Ok(_) => c
                .agent
                .cancel(&n.run_id, args.grace)
                .await
                .map(|r| (r, false)),
            Err(e) => Err(e),
        };
        c.close().await;
        after
    }))
    .await;
    let already = answers.iter().all(|a| matches!(a, Ok((_, true))));
    let ended: Vec<(usize, Result<RunInfo>)> = answers
        .into_iter()
        .enumerate()
        .map(|(rank, a)| (rank, a.map(|(r, _)| r)))
        .collect();
    let heard: Vec<RunInfo> = ended
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().cloned())
        .collect();
    store.heard_runs(&heard)?;
    Ok((history::summarize(job, ended)?, already))
}
