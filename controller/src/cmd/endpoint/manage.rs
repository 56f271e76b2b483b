//! `moor endpoint list|show|logs|stop|start|delete`: an endpoint is found
//! by name on the target this workspace created it on (or `--target`).

use serde::Serialize;

use super::{wait_healthy, Shown};
use crate::cli::{EndpointNameArgs, TargetArgs};
use crate::cmd::Context;
use crate::error::{exit, Error, Result};
use crate::follow;
use crate::output::{Render, Table, Text};
use crate::progress::LogSink;
use crate::reach::{Access, Connected};
use crate::store::Target;

/// The target serving the endpoint `args` names.
pub fn locate(ctx: &Context, args: &EndpointNameArgs) -> Result<Target> {
    let store = ctx.store()?;
    let name = match &args.target {
        Some(target) => target.clone(),
        None => store.endpoint_target(&args.name)?.ok_or_else(|| {
            Error::usage(
                format!(
                    "no endpoint {} was created from workspace {}",
                    args.name,
                    ctx.targets.workspace().dir().display()
                ),
                "see `moor endpoint list`, or give --target",
            )
        })?,
    };
    ctx.targets.named(&store, &name)
}

async fn connect(ctx: &Context, args: &EndpointNameArgs) -> Result<(Target, Connected)> {
    let target = locate(ctx, args)?;
    let conn = ctx
        .targets
        .connect(&target, &Access::from_args(&args.connect)?)
        .await?;
    Ok((target, conn))
}

/// `moor endpoint show`.
pub async fn show(ctx: &Context, args: &EndpointNameArgs) -> Result<Shown> {
    let (target, conn) = connect(ctx, args).await?;
    let endpoint = conn.agent.endpoint(&args.name).await;
    conn.close().await;
    Ok(Shown {
        target: target.name,
        endpoint: endpoint?,
    })
}

/// `moor endpoint stop`.
pub async fn stop(ctx: &Context, args: &EndpointNameArgs) -> Result<Shown> {
    let (target, conn) = connect(ctx, args).await?;
    let endpoint = conn.agent.stop_endpoint(&args.name).await;
    conn.close().await;
    Ok(Shown {
        target: target.name,
        endpoint: endpoint?,
    })
}

/// `moor endpoint start`: waits until it answers.
pub async fn start(ctx: &Context, args: &EndpointNameArgs, wait_secs: u64) -> Result<Shown> {
    let (target, conn) = connect(ctx, args).await?;
    let result = match conn.agent.start_endpoint(&args.name).await {
        Ok(started) => {
            eprintln!(
                "moor: endpoint {} starting on {} (run {}); waiting until it answers",
                started.name, target.name, started.run_id
            );
            wait_healthy(&conn, &target, &args.name, wait_secs).await
        }
        Err(e) => Err(e),
    };
    conn.close().await;
    Ok(Shown {
        target: target.name,
        endpoint: result?,
    })
}

/// What `moor endpoint delete` removed.
#[derive(Debug, Serialize)]
pub struct Deleted {
    /// The endpoint as it was, stopped.
    #[serde(flatten)]
    pub shown: Shown,
    /// Always true.
    pub deleted: bool,
}

impl Render for Deleted {
    fn render(&self, out: &mut Text) {
        let e = &self.shown.endpoint;
        let freed = match &e.socket {
            Some(_) => String::new(),
            None => format!(" (port {} is free)", e.port),
        };
        out.line(format!(
            "deleted endpoint {} from {}{freed}",
            e.name, self.shown.target
        ));
    }
}

/// `moor endpoint delete`: stopped, removed from the target and the
/// workspace.
pub async fn delete(ctx: &Context, args: &EndpointNameArgs) -> Result<Deleted> {
    let (target, conn) = connect(ctx, args).await?;
    let endpoint = conn.agent.delete_endpoint(&args.name).await;
    conn.close().await;
    let endpoint = endpoint?;
    ctx.store()?.forget_endpoint(&args.name)?;
    Ok(Deleted {
        shown: Shown {
            target: target.name,
            endpoint,
        },
        deleted: true,
    })
}

/// What `moor endpoint logs` ends with.
#[derive(Debug, Serialize)]
pub struct Logged {
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

/// `moor endpoint logs [--follow]`: the log of the run serving it (with
/// `--json`, one JSON line per log line).
pub async fn logs(ctx: &Context, args: &EndpointNameArgs, follow: bool) -> Result<Logged> {
    let (target, conn) = connect(ctx, args).await?;
    let endpoint = conn.agent.endpoint(&args.name).await?;
    let mut sink = if ctx.json {
        LogSink::json_lines(0)
    } else {
        LogSink::for_log(false)
    };
    follow::follow(
        &ctx.targets,
        &target,
        &Access::from_args(&args.connect)?,
        &endpoint.run_id,
        0,
        follow,
        Some(conn),
        &mut sink,
    )
    .await?;
    sink.finish();
    Ok(Logged {
        exit_code: exit::OK,
    })
}

/// `moor endpoint list`.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// Every endpoint found.
    pub endpoints: Vec<Shown>,
    /// Targets that could not be asked, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<Unreachable>,
}

/// A target `moor endpoint list` could not ask.
#[derive(Debug, Serialize)]
pub struct Unreachable {
    /// The target.
    pub target: String,
    /// Why.
    pub error: String,
}

impl Render for Listed {
    fn render(&self, out: &mut Text) {
        if self.endpoints.is_empty() && self.unreachable.is_empty() {
            out.note("no endpoints (moor endpoint create NAME --target T ...)");
            return;
        }
        let mut table = Table::new(&[
            "NAME",
            "TARGET",
            "STATE",
            "ADDRESS",
            "RESTARTS",
            "LAST EXIT",
            "RUN",
        ])
        .right(4);
        for Shown {
            target,
            endpoint: e,
        } in &self.endpoints
        {
            table.row(vec![
                e.name.clone(),
                target.clone(),
                e.state.as_str().into(),
                super::place(e),
                e.restarts.to_string(),
                e.last_exit.clone().unwrap_or_else(|| "-".into()),
                e.run_id.clone(),
            ]);
        }
        out.raw(&table.render());
        for u in &self.unreachable {
            out.note(format!("moor: could not ask {}: {}", u.target, u.error));
        }
    }

    fn exit_code(&self) -> u8 {
        if self.unreachable.is_empty() {
            exit::OK
        } else {
            exit::UNREACHABLE
        }
    }
}

/// `moor endpoint list [--target T]`: a target's endpoints, or those this
/// workspace created, target by target.
pub async fn list(ctx: &Context, target: Option<&str>, connect: &TargetArgs) -> Result<Listed> {
    let store = ctx.store()?;
    let access = Access::from_args(connect)?;
    let recorded = store.recorded_endpoints()?;
    let mut targets: Vec<String> = match target {
        Some(t) => vec![t.to_owned()],
        None => recorded.iter().map(|(_, t)| t.clone()).collect(),
    };
    targets.sort();
    targets.dedup();
    let given = target.is_some();
    let mut listed = Listed {
        endpoints: Vec::new(),
        unreachable: Vec::new(),
    };
    for name in targets {
        let target = ctx.targets.named(&store, &name)?;
        let asked = async {
            let conn = ctx.targets.connect(&target, &access).await?;
            let endpoints = conn.agent.endpoints().await;
            conn.close().await;
            endpoints
        }
        .await;
        match asked {
            Ok(endpoints) => listed.endpoints.extend(
                endpoints
                    .into_iter()
                    .filter(|e| {
                        given
                            || recorded
                                .iter()
                                .any(|(n, t)| *n == e.name && *t == target.name)
                    })
                    .map(|endpoint| Shown {
                        target: target.name.clone(),
                        endpoint,
                    }),
            ),
            Err(e) => listed.unreachable.push(Unreachable {
                target: target.name.clone(),
                error: crate::output::error_line(&e),
            }),
        }
    }
    Ok(listed)
}
