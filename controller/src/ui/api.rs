//! The dashboard's JSON API: each answer is what the matching command
//! prints with `--json` (the same functions compute it), so the page shows
//! nothing the command line does not.
//!
//! | request                         | answer (command)                     |
//! |---------------------------------|--------------------------------------|
//! | `GET targets`                   | every target as `moor show --json`   |
//! | `GET status`                    | `moor status --json`                 |
//! | `GET runs[?all=1]`              | `moor runs --json [--all]`           |
//! | `GET runs/ID`                   | the run's (or job's) row of `runs`   |
//! | `GET runs/ID/log[?node&tail&offset]` | its log as it grows ([`super::live`]) |
//! | `GET runs/ID/metrics`           | `moor metrics ID` (curves downsampled)|
//! | `GET chart?run=ID&key=K[&from&to]` | one metric's curves ([`super::live`]) |
//! | `GET envs`, `GET pools`         | `moor env list`, `moor pool list`    |
//! | `GET envs/targets`              | each target's built environments     |
//! | `GET endpoints`                 | `moor endpoint list --json`          |
//! | `POST runs/ID/cancel`           | `moor cancel ID` (token in a header) |
//! | `POST runs` `{"argv": [...]}`   | `moor run ARGV --detach --json`: a new run or job, through the same plan as the command line |

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::args::parse;
use super::http::{self, Answer};
use super::{live, Shared};
use crate::cli::{CancelArgs, MetricsArgs, RunArgs, RunsArgs, StatusArgs, TargetArgs};
use crate::cmd::{self, Context};
use crate::error::Result;
use crate::output::error_line;
use crate::reach::Access;

/// Answers `method path?query` (path without `/api/`).
pub async fn answer(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    let ctx = &shared.ctx;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let answered = match parts.as_slice() {
        ["targets"] if get => targets(ctx).map(|t| http::json(&t)),
        ["status"] if get => status(ctx).await,
        ["runs"] if get => runs(ctx, query_flag(query, "all"))
            .await
            .map(|r| http::json(&r)),
        ["runs"] if post => start(ctx, body).await,
        ["runs", id] if get => run(ctx, id).await,
        ["runs", id, "log"] if get => live::log(shared, id, query).await,
        ["runs", id, "metrics"] if get => metrics(ctx, id).await,
        ["runs", id, "cancel"] if post => cancel(ctx, id).await,
        ["chart"] if get => live::chart(ctx, query).await,
        ["envs"] if get => cmd::env::list(ctx).map(|e| http::json(&e)),
        ["envs", "targets"] if get => built_envs(ctx).await,
        ["pools"] if get => cmd::pool::list(ctx).map(|p| http::json(&p)),
        ["endpoints"] if get => endpoints(ctx).await,
        ["about"] if get => Ok(http::json(&serde_json::json!({
            "workspace": ctx.workspace.dir(),
            "version": env!("CARGO_PKG_VERSION"),
        }))),
        _ => Ok(http::problem(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no API {method} /api/{path}"),
            "the page calls only the API it is served with: reload it",
        )),
    };
    answered.unwrap_or_else(|e| http::error(&e))
}

/// Whether the query has `name=1` (or `name=true`).
fn query_flag(query: &str, name: &str) -> bool {
    matches!(
        http::query_value(query, name).as_deref(),
        Some("1" | "true")
    )
}

/// Every target with its facts and checks, as `moor show` has them.
fn targets(ctx: &Context) -> Result<Vec<cmd::targets::Shown>> {
    let store = ctx.store()?;
    let names: Vec<String> = store.targets()?.into_iter().map(|t| t.name).collect();
    names
        .iter()
        .map(|name| cmd::targets::show(ctx, name))
        .collect()
}

async fn status(ctx: &Context) -> Result<Answer> {
    let args: StatusArgs = parse(&[])?;
    Ok(http::json(&cmd::status::run(&args, ctx).await?))
}

/// `moor runs` (`--all`: with the runs of detached targets).
async fn runs(ctx: &Context, all: bool) -> Result<cmd::runs::Runs> {
    let argv: &[&str] = if all { &["--all"] } else { &[] };
    let args: RunsArgs = parse(argv)?;
    cmd::runs::list(&args, ctx).await
}

/// One run's (or job's) row: its id, the start of it, or its name. A run
/// is asked of its agent alone; a job (or a run its agent cannot tell of
/// now) is found in the whole list, as `moor runs --all` has it.
async fn run(ctx: &Context, id: &str) -> Result<Answer> {
    if let Ok(Some(row)) = one_run(ctx, id).await {
        return Ok(http::json(&row));
    }
    let runs = runs(ctx, true).await?;
    let rows = runs.rows();
    let found = rows.iter().find(|row| row.id == id).or_else(|| {
        let mut starting = rows.iter().filter(|row| row.id.starts_with(id));
        let first = starting.next();
        first.filter(|_| starting.next().is_none())
    });
    match found {
        Some(row) => Ok(http::json(row)),
        None => Ok(http::problem(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no run or job {id}"),
            "see the runs page (moor runs)",
        )),
    }
}

/// A run as its agent tells of it now (`None`: `id` is a job's).
async fn one_run(ctx: &Context, id: &str) -> Result<Option<crate::history::RunJson>> {
    let mut store = ctx.store()?;
    if crate::history::find(&store, id)?.is_some() {
        return Ok(None);
    }
    let (target, run_id) = ctx.targets.of_run(&store, id)?;
    let access = Access::from_args(&parse::<TargetArgs>(&[])?)?;
    let conn = ctx.targets.connect(&target, &access).await?;
    let info = conn.agent.run(&run_id).await;
    conn.close().await;
    let info = info?;
    store.heard_runs(std::slice::from_ref(&info))?;
    Ok(Some(crate::history::RunJson::new(info, &target.name)))
}

async fn metrics(ctx: &Context, id: &str) -> Result<Answer> {
    let args: MetricsArgs = parse(&[id])?;
    Ok(http::json(&cmd::metrics::metrics(&args, ctx).await?))
}

/// A new run from the page: `moor run`'s own arguments (parsed as its
/// command line, so the same flags and checks), always detached.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    argv: Vec<String>,
}

/// `moor run ARGV --detach`: the run (or job) started, as `--json` says it.
async fn start(ctx: &Context, body: &[u8]) -> Result<Answer> {
    let request: StartRequest = serde_json::from_slice(body).map_err(|e| {
        crate::error::Error::usage(
            format!("the dashboard's request is not valid: {e}"),
            r#"send {"argv": ["--target", "NAME", "--", "CMD", "ARG"]}"#,
        )
    })?;
    let argv: Vec<&str> = request.argv.iter().map(String::as_str).collect();
    let mut args: RunArgs = parse(&argv)?;
    args.detach = true;
    let ran = cmd::run::run(&args, ctx).await?;
    Ok(http::json(&ran))
}

/// `moor cancel ID`: what it says of the run, and whether it is stopped.
async fn cancel(ctx: &Context, id: &str) -> Result<Answer> {
    let args: CancelArgs = parse(&[id])?;
    let cancelled = cmd::runs::cancel(&args, ctx).await?;
    Ok(http::json(&cancelled))
}

/// What each attached target holds of environments (built, building,
/// failed), asked of all at once; a target that does not answer says why.
async fn built_envs(ctx: &Context) -> Result<Answer> {
    let targets = ctx.store()?.targets()?;
    let access = Access::from_args(&parse::<TargetArgs>(&[])?)?;
    let answers = ctx
        .targets
        .ask_all(&targets, &access, async |agent| agent.envs().await)
        .await;
    let rows: Vec<serde_json::Value> = targets
        .iter()
        .zip(answers)
        .map(|(target, answer)| match answer {
            Ok(envs) => serde_json::json!({"target": target.name, "envs": envs}),
            Err(e) => serde_json::json!({"target": target.name, "error": error_line(&e)}),
        })
        .collect();
    Ok(http::json(&rows))
}

async fn endpoints(ctx: &Context) -> Result<Answer> {
    let connect: TargetArgs = parse(&[])?;
    Ok(http::json(
        &cmd::endpoint::manage::list(ctx, None, &connect).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_queries() {
        assert!(query_flag("all=1", "all"));
        assert!(query_flag("x=2&all=true", "all"));
        assert!(!query_flag("all=0", "all"));
    }
}
