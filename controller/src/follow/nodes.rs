//! Following a job: every node's log at once, each line after its node's
//! `[node N]` prefix (one node alone: as is), reconnecting per node like a
//! single run. When a node ends without success while others still run,
//! the others are cancelled (SIGTERM, SIGKILL after the grace period): a
//! distributed job whose rank died would otherwise wait on it for ever.

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use moor_proto::{RunInfo, RunState};

use crate::error::Result;
use crate::progress::LogSink;
use crate::reach::{Access, Connected, Targets};
use crate::store::Target;

/// One node to follow.
pub struct Node {
    /// Its rank.
    pub rank: usize,
    /// Its target.
    pub target: Target,
    /// Its run.
    pub run_id: String,
    /// An open connection to start with.
    pub conn: Option<Connected>,
}

/// How following ends for each node.
enum Event {
    Ended(usize, Box<Result<RunInfo>>),
    Cancelled,
}

/// Follows `nodes` (from byte `offset` of each log); with `until_end`, to
/// the end of every run, cancelling the rest when one fails. Returns each
/// node's run (in the order given) or why it could not be followed.
pub async fn follow_nodes(
    targets: &Targets,
    access: &Access,
    nodes: Vec<Node>,
    offset: u64,
    until_end: bool,
    json: bool,
    grace: u32,
) -> Vec<(usize, Result<RunInfo>)> {
    let prefixed = nodes.len() > 1;
    let who: Vec<(usize, Target, String)> = nodes
        .iter()
        .map(|n| (n.rank, n.target.clone(), n.run_id.clone()))
        .collect();
    let mut going: FuturesUnordered<BoxFuture<'_, Event>> = FuturesUnordered::new();
    for node in nodes {
        let Node {
            rank,
            target,
            run_id,
            conn,
        } = node;
        going.push(Box::pin(async move {
            let mut sink = if prefixed {
                LogSink::prefixed(format!("[node {rank}] "), json)
            } else {
                LogSink::for_log(json)
            };
            let run = super::follow(
                targets, &target, access, &run_id, offset, until_end, conn, &mut sink,
            )
            .await;
            sink.finish();
            Event::Ended(rank, Box::new(run))
        }));
    }
    let mut ended: Vec<(usize, Result<RunInfo>)> = Vec::new();
    let mut stopping = false;
    while let Some(event) = going.next().await {
        let Event::Ended(rank, run) = event else {
            continue;
        };
        let run = *run;
        let failed = match &run {
            Ok(run) => run.state.is_final() && run.state != RunState::Succeeded,
            Err(_) => false,
        };
        ended.push((rank, run));
        if until_end && failed && !stopping && ended.len() < who.len() {
            stopping = true;
            eprintln!("moor: node {rank} ended without success; stopping the job's other nodes");
            for (other, target, run_id) in who
                .iter()
                .filter(|(r, ..)| !ended.iter().any(|(e, _)| e == r))
            {
                let other = *other;
                going.push(Box::pin(async move {
                    let stopped = async {
                        let c = targets.connect(target, access).await?;
                        let run = c.agent.cancel(run_id, grace).await;
                        c.close().await;
                        run
                    }
                    .await;
                    if let Err(e) = stopped {
                        eprintln!("moor: could not stop node {other} ({}): {e}", target.name);
                    }
                    Event::Cancelled
                }));
            }
        }
    }
    let order: Vec<usize> = who.iter().map(|(r, ..)| *r).collect();
    ended.sort_by_key(|(r, _)| order.iter().position(|o| o == r));
    ended
}

/// The state of a job: the worst of its nodes' (a failure, a loss or a
/// cancel wins over running, running over queued, all succeeded is
/// success).
pub fn job_state(states: &[RunState]) -> RunState {
    let rank = |s: &RunState| match s {
        RunState::Failed => 0,
        RunState::Lost => 1,
        RunState::Cancelled => 2,
        RunState::Running => 3,
        RunState::Queued => 4,
        RunState::Succeeded => 5,
    };
    states
        .iter()
        .min_by_key(|s| rank(s))
        .copied()
        .unwrap_or(RunState::Lost)
}

#[cfg(test)]
mod tests {
    use super::job_state;
    use moor_proto::RunState::*;

    #[test]
    fn a_job_is_as_bad_as_its_worst_node() {
        assert_eq!(job_state(&[Succeeded, Succeeded]), Succeeded);
        assert_eq!(job_state(&[Succeeded, Running]), Running);
        assert_eq!(job_state(&[Queued, Running]), Running);
        assert_eq!(job_state(&[Running, Failed, Cancelled]), Failed);
        assert_eq!(job_state(&[Cancelled, Succeeded]), Cancelled);
        assert_eq!(job_state(&[Lost, Running]), Lost);
    }
}
