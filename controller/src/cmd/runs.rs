//! Looking at runs: `moor runs` (every target at once), `moor logs`, `moor
//! cancel` (`moor download` is [`super::download`]). A run is found through
//! the workspace's record of the target it was started on.

use moor_proto::RunInfo;

pub use crate::history::{state_name, RunJson};
use serde::Serialize;

use super::Context;
use crate::cli::{CancelArgs, LogsArgs, PruneArgs, RunsArgs};
use crate::error::{exit, Result};
use crate::follow;
use crate::output::{error_line, Render, Table, Text};
use crate::progress::LogSink;
use crate::reach::Access;

/// What `moor runs` found.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Runs {
    runs: Vec<RunJson>,
    #[serde(skip)]
    sorted_by: Option<String>,
    #[serde(skip)]
    failures: Vec<String>,
    #[serde(skip)]
    exit_code: u8,
}

impl Runs {
    /// The rows, as `--json` prints them.
    pub fn rows(&self) -> &[RunJson] {
        &self.runs
    }
}

impl Render for Runs {
    fn render(&self, out: &mut Text) {
        let metric = self.sorted_by.as_deref();
        let column = metric.map(str::to_uppercase);
        // A team workspace's runs say who started them.
        let users = self.runs.iter().any(|r| r.user.is_some());
        let mut headers = vec!["RUN", "NAME"];
        if users {
            headers.push("USER");
        }
        let shift = usize::from(users);
        headers.extend(["TARGET", "STATE", "EXIT", "DURATION"]);
        headers.extend(column.as_deref());
        headers.push("COMMAND");
        let mut table = Table::new(&headers).right(4 + shift).right(5 + shift);
        if metric.is_some() {
            table = table.right(6 + shift);
        }
        for r in &self.runs {
            let exit = r
                .exit_code
                .map(|c| c.to_string())
                .or(r.signal.map(|s| format!("s{s}")))
                .unwrap_or_default();
            let state = match (r.reachable, r.target_detached) {
                (true, _) => state_name(r.state),
                (false, false) => format!("unreachable ({})", state_name(r.state)),
                (false, true) => format!("detached ({})", state_name(r.state)),
            };
            let mut row = vec![r.id.clone(), r.name.clone().unwrap_or_default()];
            if users {
                row.push(r.user.clone().unwrap_or_default());
            }
            row.extend([
                r.target.clone(),
                state,
                exit,
                r.duration_secs
                    .map(crate::output::duration)
                    .unwrap_or_default(),
            ]);
            if let Some(metric) = metric {
                let value = r.metrics.get(metric).map(|v| super::metrics::number(v.0));
                row.push(value.unwrap_or_default());
            }
            row.push(r.shown_command());
            table.row(row);
        }
        out.raw(&table.render());
        for failure in &self.failures {
            out.note(failure);
        }
    }

    fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// `moor runs`: every target's runs, asked of all targets at once. What an
/// agent says updates the workspace's history; a target that does not
/// answer has its runs listed from the history (`reachable: false`) and
/// makes the exit code non-zero. `--all` adds the runs of targets detached
/// since.
pub async fn list(args: &RunsArgs, ctx: &Context) -> Result<Runs> {
    let mut store = ctx.store()?;
    let targets = match &args.target {
        Some(name) => vec![ctx.targets.named(&store, name)?],
        None => ctx.targets.all_with_runs(&store)?,
    };
    let access = Access::from_args(&args.connect)?;
    let answers = ctx
        .targets
        .ask_all(&targets, &access, async |agent| agent.runs().await)
        .await;
    let history = store.recorded_runs()?;
    let recorded_on = |name: &str| -> Vec<RunInfo> {
        history
            .iter()
            .filter(|(target, _, _)| target == name)
            .filter_map(|(_, info, _)| info.clone())
            .collect()
    };
    let mut found = Runs {
        runs: Vec::new(),
        sorted_by: args.sort.clone(),
        failures: Vec::new(),
        exit_code: exit::OK,
    };
    for (target, answer) in targets.iter().zip(answers) {
        match answer {
            Ok(runs) => {
                store.heard_runs(&runs)?;
                found
                    .runs
                    .extend(runs.into_iter().map(|r| RunJson::new(r, &target.name)));
            }
            Err(e) => {
                found
                    .failures
                    .push(format!("{} (target {})", error_line(&e), target.name));
                found.exit_code = e.exit_code();
                found.runs.extend(
                    recorded_on(&target.name)
                        .into_iter()
                        .map(|r| RunJson::recorded(r, &target.name, false)),
                );
            }
        }
    }
    if args.all {
        let attached: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        for (target, info, _) in &history {
            if let Some(info) = info
                .as_ref()
                .filter(|_| !attached.contains(&target.as_str()))
            {
                found
                    .runs
                    .push(RunJson::recorded(info.clone(), target, true));
            }
        }
    }
    found.runs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let runs = std::mem::take(&mut found.runs);
    found.runs = crate::history::fold(runs, &store.jobs()?, &history, args.experiment.as_deref());
    let owners = store.run_owners()?;
    for row in &mut found.runs {
        let first = row.nodes.first().map_or(&row.id, |node| &node.run);
        row.user = owners.get(first).cloned();
    }
    if let Some(metric) = &args.sort {
        sort_by_metric(&mut found.runs, metric, args.desc);
    }
    Ok(found)
}

/// Orders runs by their latest value of `metric` (smallest first, or
/// largest with `desc`); runs without it (or with NaN) go last, newest first.
fn sort_by_metric(runs: &mut [RunJson], metric: &str, desc: bool) {
    let value = |r: &RunJson| r.metrics.get(metric).map(|v| v.0).filter(|v| !v.is_nan());
    // Stable: runs with equal values (and those without) keep their order.
    runs.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) if desc => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// What `moor runs prune` removed.
#[derive(Debug, Serialize)]
pub struct PrunedRuns {
    target: String,
    #[serde(flatten)]
    pruned: moor_proto::Pruned,
}

impl Render for PrunedRuns {
    fn render(&self, out: &mut Text) {
        out.line(format!(
            "removed {} finished run(s) and {} snapshot(s) from {}, freed {}",
            self.pruned.runs.len(),
            self.pruned.snapshots,
            self.target,
            moor_proto::human_bytes(self.pruned.bytes_freed)
        ));
    }
}

/// `moor runs prune --target T [--older-than AGE] [--keep N]`.
pub async fn prune(args: &PruneArgs, ctx: &Context) -> Result<PrunedRuns> {
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &args.target)?;
    let access = Access::from_args(&args.connect)?;
    let c = ctx.targets.connect(&target, &access).await?;
    let pruned = c.agent.prune_runs(args.older_than, args.keep).await;
    c.close().await;
    Ok(PrunedRuns {
        target: target.name,
        pruned: pruned?,
    })
}

/// What `moor logs` ends with: the run as the stream left it.
#[derive(Debug, Serialize)]
pub struct Logged {
    run: RunJson,
    #[serde(skip)]
    exit_code: u8,
}

impl Render for Logged {
    fn render(&self, _: &mut Text) {}

    fn exit_code(&self) -> u8 {
        self.exit_code
    }

    fn has_json(&self) -> bool {
        false
    }
}

/// `moor logs RUN [--follow]`: exits with the run's code when it followed
/// the run to its end.
pub async fn logs(args: &LogsArgs, ctx: &Context) -> Result<Logged> {
    let mut store = ctx.store()?;
    if let Some(job) = crate::history::find(&store, &args.run)? {
        let (run, ended) = super::jobs::logs(&job, args, ctx).await?;
        return Ok(Logged {
            exit_code: if ended { run.exit_code() } else { exit::OK },
            run,
        });
    }
    if args.node.is_some() {
        return Err(crate::error::Error::usage(
            format!("--node: {} is a run, not a job", args.run),
            "give a job's id (see `moor runs`), or drop --node",
        ));
    }
    let (target, run_id) = ctx.targets.of_run(&store, &args.run)?;
    let access = Access::from_args(&args.connect)?;
    // With --json, the log itself is the output: one JSON line per line.
    let mut sink = if ctx.json {
        LogSink::json_lines(args.offset)
    } else {
        LogSink::for_log(false)
    };
    let run = follow::follow(
        &ctx.targets,
        &target,
        &access,
        &run_id,
        args.offset,
        args.follow,
        None,
        &mut sink,
    )
    .await?;
    sink.finish();
    store.heard_runs(std::slice::from_ref(&run))?;
    let ended = args.follow && run.state.is_final();
    let run = RunJson::new(run, &target.name);
    Ok(Logged {
        exit_code: if ended { run.exit_code() } else { exit::OK },
        run,
    })
}

/// A cancelled run, or one that had already ended.
#[derive(Debug, Serialize)]
pub struct Cancelled {
    #[serde(flatten)]
    run: RunJson,
    /// The run had ended before the cancel: nothing was stopped.
    already_ended: bool,
}

impl Render for Cancelled {
    fn render(&self, out: &mut Text) {
        let state = state_name(self.run.state);
        if self.already_ended {
            let exit = self
                .run
                .exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            let what = if self.run.is_job() { "job" } else { "run" };
            out.line(format!(
                "{what} {} had already ended: {state}{exit}",
                self.run.id
            ));
        } else {
            let what = if self.run.is_job() { "job" } else { "run" };
            out.line(format!("{what} {}: {state}", self.run.id));
        }
    }
}

/// `moor cancel RUN`.
pub async fn cancel(args: &CancelArgs, ctx: &Context) -> Result<Cancelled> {
    let mut store = ctx.store()?;
    if let Some(job) = crate::history::find(&store, &args.run)? {
        let (run, already_ended) = super::jobs::cancel(&job, args, ctx).await?;
        return Ok(Cancelled { run, already_ended });
    }
    let (target, run_id) = ctx.targets.of_run(&store, &args.run)?;
    let access = Access::from_args(&args.connect)?;
    let c = ctx.targets.connect(&target, &access).await?;
    let cancelled = async {
        let before = c.agent.run(&run_id).await?;
        if before.state.is_final() {
            return Ok((before, true));
        }
        Ok::<_, crate::error::Error>((c.agent.cancel(&run_id, args.grace).await?, false))
    }
    .await;
    c.close().await;
    let (run, already_ended) = cancelled?;
    store.heard_runs(std::slice::from_ref(&run))?;
    Ok(Cancelled {
        run: RunJson::new(run, &target.name),
        already_ended,
    })
}
