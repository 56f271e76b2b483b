//! Jobs where a run is expected: found by id, id prefix or name, one row of
//! `moor runs` (its state the worst of its nodes', each node in `--json`'s
//! `nodes`), and the runs behind a run-or-job key.

use moor_proto::{RunInfo, RunState};

use super::row::{NodeJson, RunJson};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::follow::nodes::{self as watch, job_state};
use crate::store::{JobRecord, Store, Target};

/// The job named by `key` (id, id prefix, name), if one is.
pub fn find(store: &Store, key: &str) -> Result<Option<JobRecord>> {
    let found = store.find_jobs(key)?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        [newest, ..] if found.iter().all(|j| j.name.as_deref() == Some(key)) => {
            Ok(Some(newest.clone()))
        }
        many => Err(Error::usage(
            format!(
                "job id prefix {key:?} matches {} jobs: {}",
                many.len(),
                many.iter()
                    .take(5)
                    .map(|j| j.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "give more of the id",
        )),
    }
}

/// A job's row, from its nodes' runs as known (`None`: never heard of).
pub fn row(job: &JobRecord, runs: &[Option<RunJson>]) -> RunJson {
    let nodes: Vec<NodeJson> = job
        .nodes
        .iter()
        .zip(runs)
        .enumerate()
        .map(|(rank, ((target, run), info))| NodeJson {
            rank,
            target: target.clone(),
            run: run.clone(),
            state: info.as_ref().map(|r| r.state),
            exit_code: info.as_ref().and_then(|r| r.exit_code),
            signal: info.as_ref().and_then(|r| r.signal),
            error: info.as_ref().and_then(|r| r.error.clone()),
        })
        .collect();
    let known: Vec<&RunJson> = runs.iter().flatten().collect();
    let states: Vec<RunState> = nodes
        .iter()
        .map(|n| n.state.unwrap_or(RunState::Lost))
        .collect();
    let state = job_state(&states);
    // The exit of the node whose state is the job's (the first that
    // failed, not one stopped because of it), else node 0's.
    let deciding = known.iter().find(|r| r.state == state).or(known.first());
    let all_ended = states.iter().all(|s| s.is_final());
    let started_at = known.iter().filter_map(|r| r.started_at.clone()).min();
    let ended_at = all_ended
        .then(|| known.iter().filter_map(|r| r.ended_at.clone()).max())
        .flatten();
    let error = nodes
        .iter()
        .find_map(|n| n.error.as_ref().map(|e| format!("node {}: {e}", n.rank)));
    let duration_secs = known.iter().filter_map(|r| r.duration_secs).max();
    RunJson {
        id: job.id.clone(),
        target: job.pool.clone().unwrap_or_else(|| {
            job.nodes
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
        name: job.name.clone(),
        state,
        exit_code: deciding.and_then(|r| r.exit_code),
        signal: deciding.and_then(|r| r.signal),
        command: job.command.clone(),
        created_at: job.created_at.clone(),
        started_at,
        ended_at,
        spark: None,
        yarn_application: None,
        error,
        duration_secs,
        environment: known.first().and_then(|r| r.environment.clone()),
        env: known.first().map(|r| r.env.clone()).unwrap_or_default(),
        reachable: runs.iter().all(|r| r.as_ref().is_some_and(|r| r.reachable)),
        target_detached: known.iter().any(|r| r.target_detached),
        experiment: job.experiment.clone(),
        // Rank 0 logs for the job, as distributed training code does.
        metrics: runs
            .first()
            .and_then(|r| r.as_ref())
            .map(|r| r.metrics.clone())
            .unwrap_or_default(),
        nodes,
        user: None,
    }
}

/// `moor runs`' list with each job's node runs folded into the job's row
/// (a node whose run was not listed, its target filtered out or detached,
/// as the history last heard of it); with `experiment`, only that
/// experiment's jobs.
pub fn fold(
    runs: Vec<RunJson>,
    jobs: &[JobRecord],
    history: &[(String, Option<RunInfo>, String)],
    experiment: Option<&str>,
) -> Vec<RunJson> {
    let mut runs = runs;
    let mut rows = Vec::new();
    for job in jobs {
        let mine: Vec<Option<RunJson>> = job
            .nodes
            .iter()
            .map(|(_, id)| {
                runs.iter()
                    .position(|r| &r.id == id)
                    .map(|i| runs.remove(i))
            })
            .collect();
        if mine.iter().all(Option::is_none) {
            continue;
        }
        let mine: Vec<Option<RunJson>> = mine
            .into_iter()
            .zip(&job.nodes)
            .map(|(listed, (target, id))| {
                listed.or_else(|| {
                    history
                        .iter()
                        .find(|(_, _, h)| h == id)
                        .and_then(|(_, info, _)| info.clone())
                        .map(|info| RunJson::recorded(info, target, false))
                })
            })
            .collect();
        if mine.iter().all(Option::is_none) {
            continue;
        }
        rows.push(row(job, &mine));
    }
    match experiment {
        Some(name) => rows.retain(|r| r.experiment.as_deref() == Some(name)),
        None => rows.append(&mut runs),
    }
    rows.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    rows
}

/// The runs behind `key`: a job's nodes (`only` one of them), each with
/// its node; or one run (`only` is refused: it is not a job).
pub fn runs_of(
    ctx: &Context,
    store: &Store,
    key: &str,
    only: Option<u32>,
) -> Result<Vec<(Option<usize>, Target, String)>> {
    match find(store, key)? {
        Some(job) => Ok(nodes(ctx, store, &job, only)?
            .into_iter()
            .map(|n| (Some(n.rank), n.target, n.run_id))
            .collect()),
        None if only.is_some() => Err(Error::usage(
            format!("--node: {key} is a run, not a job"),
            "give a job's id (see `moor runs`), or drop --node",
        )),
        None => {
            let (target, run_id) = ctx.targets.of_run(store, key)?;
            Ok(vec![(None, target, run_id)])
        }
    }
}

/// The job's nodes (`only` one of them), resolved to targets.
pub fn nodes(
    ctx: &Context,
    store: &Store,
    job: &JobRecord,
    only: Option<u32>,
) -> Result<Vec<watch::Node>> {
    if let Some(n) = only.filter(|n| *n as usize >= job.nodes.len()) {
        return Err(Error::usage(
            format!(
                "job {} has {} nodes; there is no node {n}",
                job.id,
                job.nodes.len()
            ),
            "nodes count from 0",
        ));
    }
    job.nodes
        .iter()
        .enumerate()
        .filter(|(rank, _)| only.is_none_or(|n| n as usize == *rank))
        .map(|(rank, (target, run))| {
            Ok(watch::Node {
                rank,
                target: ctx.targets.named(store, target)?,
                run_id: run.clone(),
                conn: None,
            })
        })
        .collect()
}

/// Each node's run as followed, in a row; the exit code of a followed end.
pub fn summarize(job: &JobRecord, ended: Vec<(usize, Result<RunInfo>)>) -> Result<RunJson> {
    let mut runs: Vec<Option<RunJson>> = job.nodes.iter().map(|_| None).collect();
    let mut first_error = None;
    for (rank, run) in ended {
        match run {
            Ok(run) => runs[rank] = Some(RunJson::new(run, &job.nodes[rank].0)),
            Err(e) => {
                eprintln!(
                    "moor: node {rank} ({}): {}",
                    job.nodes[rank].0,
                    crate::output::error_line(&e)
                );
                first_error = first_error.or(Some(e));
            }
        }
    }
    if runs.iter().all(Option::is_none) {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(row(job, &runs))
}
