//! `moor run` and `moor job submit`: their flags become a
//! [`crate::plan::RunPlan`] (one run, or a job on several targets or from
//! an Azure ML job file), started by [`crate::launch::start`]; then the
//! run's log is followed (see [`crate::follow`]), or every node of a job
//! at once ([`crate::follow::nodes`]), its end summed up as one row.
//! Ctrl-C detaches; the run goes on.

use serde::Serialize;
use tokio::signal::unix::Signal;

use super::Context;
use crate::agent_client::ByteStream;
use crate::cli::{JobSubmitArgs, PrepareAssetArgs, RunArgs};
use crate::envs::prepare::Assets;
use crate::error::{exit, Result};
use crate::follow;
use crate::follow::nodes as watch;
use crate::history::RunJson;
use crate::launch::{self, Launched, Started};
use crate::output::{Render, Text};
use crate::plan::{self, Ask};
use crate::progress::LogSink;
use crate::reach::{Access, Connected};
use crate::store::Target;

/// How `moor run` ended.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Ran {
    /// `--detach`: the run was started.
    Started {
        /// Run id.
        id: String,
        /// Target name.
        target: String,
        /// The snapshot's hash.
        snapshot: String,
        /// Source bytes sent (0 when the target had the snapshot).
        snapshot_bytes_sent: usize,
    },
    /// Followed to its end.
    Ended {
        /// The run (or job) as `moor runs --json` shows it.
        #[serde(flatten)]
        run: Box<RunJson>,
        /// Source bytes sent (0 when the target had the snapshot).
        snapshot_bytes_sent: usize,
    },
    /// Ctrl-C: before the run started (nothing runs), or after (it goes on).
    Interrupted {
        /// The run that goes on, if it had started.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Always true.
        interrupted: bool,
    },
}

impl Render for Ran {
    fn render(&self, out: &mut Text) {
        match self {
            Ran::Started { id, .. } => out.line(id),
            Ran::Ended { run, .. } => {
                if let Some(app) = &run.yarn_application {
                    out.note(format!("moor: run {} was YARN application {app}", run.id));
                }
                if let Some(line) = run.error_line() {
                    out.note(line);
                }
            }
            Ran::Interrupted { .. } => {}
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Ran::Started { .. } => exit::OK,
            Ran::Ended { run, .. } => run.exit_code(),
            Ran::Interrupted { .. } => 130,
        }
    }

    fn has_json(&self) -> bool {
        !matches!(self, Ran::Interrupted { .. })
    }
}

/// `moor run`: one run, or a job (several targets, a pool, a
/// distribution, `-f`).
pub async fn run(args: &RunArgs, ctx: &Context) -> Result<Ran> {
    let access = Access::from_args(&args.connect)?;
    let assets = Assets::from(&args.assets);
    go(&Ask::from(args), ctx, &access, &assets, args.detach).await
}

/// `moor job submit FILE.yml`.
pub async fn submit(args: &JobSubmitArgs, ctx: &Context) -> Result<Ran> {
    let access = Access::from_args(&args.connect)?;
    let assets = PrepareAssetArgs::default();
    go(
        &Ask::from(args),
        ctx,
        &access,
        &Assets::from(&assets),
        args.detach,
    )
    .await
}

/// Builds the plan, starts it and follows it (or returns at once with
/// `detach`). Ctrl-C is ours from the start: before the run starts it stops
/// moor (nothing was started), after it detaches.
pub async fn go(
    ask: &Ask,
    ctx: &Context,
    access: &Access,
    assets: &Assets<'_>,
    detach: bool,
) -> Result<Ran> {
    let mut interrupt = crate::signals::ctrl_c()?;
    let starting = async {
        let (plan, payloads) = plan::build(ask, ctx)?;
        let started = launch::start(&plan, &payloads, ctx, access, assets, !detach).await?;
        Ok::<_, crate::error::Error>((plan, started))
    };
    let (plan, started) = tokio::select! {
        started = starting => started?,
        _ = interrupt.recv() => {
            eprintln!("moor: interrupted before the run started; nothing runs");
            return Ok(Ran::Interrupted { id: None, interrupted: true });
        }
    };
    let snapshot = plan
        .source
        .as_ref()
        .map(|s| s.sha256.clone())
        .unwrap_or_default();
    match started {
        Started::Run {
            run,
            target,
            conn,
            log,
            sent,
        } => {
            if detach {
                conn.close().await;
                return Ok(Ran::Started {
                    id: run.id,
                    target: target.name,
                    snapshot,
                    snapshot_bytes_sent: sent,
                });
            }
            let one = One {
                run,
                target,
                access,
                conn,
                log,
                sent,
            };
            follow_one(one, ctx, &mut interrupt).await
        }
        Started::Job(launched) => {
            follow_job(launched, ctx, access, detach, snapshot, &mut interrupt).await
        }
        Started::Endpoint { .. } => unreachable!("a run's plan serves no endpoint"),
    }
}

/// A started run and what `moor run` still holds for it.
struct One<'a> {
    run: moor_proto::RunInfo,
    target: Target,
    access: &'a Access,
    conn: Connected,
    /// The run's log, streaming (unless detached).
    log: Option<ByteStream>,
    sent: usize,
}

/// Follows one run to its end; Ctrl-C detaches.
async fn follow_one(one: One<'_>, ctx: &Context, interrupt: &mut Signal) -> Result<Ran> {
    let (run, target, access, sent) = (one.run, one.target, one.access, one.sent);
    let (conn, log) = (one.conn, one.log);
    eprintln!(
        "moor: run {} on {} ({sent} source bytes sent); Ctrl-C detaches",
        run.id, target.name
    );
    let mut sink = LogSink::for_log(ctx.json);
    let followed = async {
        match log {
            Some(log) => {
                follow::follow_started(&ctx.targets, &target, access, &run.id, conn, log, &mut sink)
                    .await
            }
            None => {
                follow::follow(
                    &ctx.targets,
                    &target,
                    access,
                    &run.id,
                    0,
                    true,
                    Some(conn),
                    &mut sink,
                )
                .await
            }
        }
    };
    tokio::select! {
        done = followed => {
            let done = done?;
            ctx.store()?.heard_runs(std::slice::from_ref(&done))?;
            Ok(Ran::Ended {
                run: Box::new(RunJson::new(done, &target.name)),
                snapshot_bytes_sent: sent,
            })
        }
        _ = interrupt.recv() => {
            eprintln!(
                "moor: detached; run {} goes on. Follow it again with: moor logs {} --follow",
                run.id, run.id
            );
            Ok(Ran::Interrupted { id: Some(run.id), interrupted: true })
        }
    }
}

/// Follows a launched job to its end (or returns at once with `detach`).
async fn follow_job(
    launched: Launched,
    ctx: &Context,
    access: &Access,
    detach: bool,
    snapshot: String,
    interrupt: &mut Signal,
) -> Result<Ran> {
    let record = launched.record;
    let nodes = record.nodes.len();
    if detach {
        for conn in launched.conns {
            conn.close().await;
        }
        return Ok(Ran::Started {
            id: record.id,
            target: record
                .nodes
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            snapshot,
            snapshot_bytes_sent: launched.sent,
        });
    }
    eprintln!(
        "moor: job {} on {nodes} node(s) ({}), master {}; {} bytes sent; Ctrl-C detaches",
        record.id,
        record
            .nodes
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        record.master_addr,
        launched.sent
    );
    let watched: Vec<watch::Node> = launched
        .targets
        .into_iter()
        .zip(launched.conns)
        .zip(&launched.runs)
        .enumerate()
        .map(|(rank, ((target, conn), run))| watch::Node {
            rank,
            target,
            run_id: run.id.clone(),
            conn: Some(conn),
        })
        .collect();
    tokio::select! {
        ended = watch::follow_nodes(&ctx.targets, access, watched, 0, true, ctx.json, 10) => {
            let heard: Vec<moor_proto::RunInfo> = ended.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
            ctx.store()?.heard_runs(&heard)?;
            let row = crate::history::summarize(&record, ended)?;
            Ok(Ran::Ended { run: Box::new(row), snapshot_bytes_sent: launched.sent })
        }
        _ = interrupt.recv() => {
            eprintln!(
                "moor: detached; job {} goes on. Follow it again with: moor logs {} --follow",
                record.id, record.id
            );
            Ok(Ran::Interrupted { id: Some(record.id), interrupted: true })
        }
    }
}
