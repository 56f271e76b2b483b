//! `moor env prepare|prune`: environments on a target. `prepare` (and `moor
//! run --env`, through [`prepare_on`]) ships local channels and wheels as
//! snapshots (sent only when the agent lacks them), asks the agent, and
//! follows the build run's log; a cache hit answers in one request.

use std::path::Path;

use moor_proto::env::{EnvInfo, EnvState, PrepareOptions};
use moor_proto::ErrorKind;
use serde::Serialize;

use super::Context;
use crate::cli::{EnvPrepareArgs, EnvPruneArgs, PrepareAssetArgs};
use crate::error::{EnvBuildFailure, Error, Result};
use crate::follow;
use crate::output::{Render, Text};
use crate::progress::LogSink;
use crate::snapshot;
use crate::store::{Env, Target};
use crate::target::{Access, Connected};

/// Largest local channel or wheelhouse shipped with a prepare.
const MAX_ASSET_BYTES: u64 = 8 << 30;

/// A prepared environment.
#[derive(Debug, Serialize)]
pub struct Prepared {
    name: String,
    target: String,
    cached: bool,
    /// Connect, prepare and close.
    seconds: f64,
    /// The prepare alone, on the open connection (a cache hit: one request
    /// to the agent).
    prepare_ms: f64,
    #[serde(flatten)]
    env: EnvInfo,
}

impl Render for Prepared {
    fn render(&self, out: &mut Text) {
        out.line(format!(
            "environment {} ready on {} ({}, {:.2}s)",
            self.name,
            self.target,
            if self.cached { "cached" } else { "built" },
            self.seconds
        ));
    }
}

/// `moor env prepare`.
pub async fn prepare(args: &EnvPrepareArgs, ctx: &Context) -> Result<Prepared> {
    let env = super::env::find(&ctx.store()?, &args.name)?;
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &args.target)?;
    let access = Access::from_args(&args.connect)?;
    let started = std::time::Instant::now();
    let conn = ctx.targets.connect(&target, &access).await?;
    let connected = started.elapsed();
    let result = prepare_on(&conn, ctx, &target, &env, &Assets::from(&args.assets)).await;
    let prepared = started.elapsed() - connected;
    conn.close().await;
    let (info, cached) = result?;
    Ok(Prepared {
        name: env.name,
        target: target.name,
        cached,
        seconds: started.elapsed().as_secs_f64(),
        prepare_ms: prepared.as_secs_f64() * 1000.0,
        env: info,
    })
}

/// What a prepare ships besides the spec.
#[derive(Debug, Default)]
pub struct Assets<'a> {
    /// A local conda channel.
    pub channel_dir: Option<&'a Path>,
    /// A wheelhouse.
    pub wheelhouse: Option<&'a Path>,
    /// Use the host's conda.
    pub use_host_conda: bool,
}

impl<'a> From<&'a PrepareAssetArgs> for Assets<'a> {
    fn from(args: &'a PrepareAssetArgs) -> Self {
        Assets {
            channel_dir: args.channel_dir.as_deref(),
            wheelhouse: args.wheelhouse.as_deref(),
            use_host_conda: args.use_host_conda,
        }
    }
}

/// Makes `env` ready on the connected target: returns its state and whether
/// it was a cache hit. The build log goes to stderr while it builds.
pub async fn prepare_on(
    conn: &Connected,
    ctx: &Context,
    target: &Target,
    env: &Env,
    assets: &Assets<'_>,
) -> Result<(EnvInfo, bool)> {
    let agent = &conn.agent;
    let shipped = assets.channel_dir.is_some()
        || assets.wheelhouse.is_some()
        || env
            .spec
            .docker
            .as_ref()
            .is_some_and(|d| d.context.is_some());
    if shipped {
        // Nothing to ship for a build the host already has.
        match agent.env(&env.hash).await {
            Ok(info) if info.state == EnvState::Ready => return Ok((info, true)),
            Ok(_)
            | Err(Error::Refused {
                kind: ErrorKind::NotFound,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut options = PrepareOptions {
        use_host_conda: assets.use_host_conda,
        network: target.network.clone(),
        ..PrepareOptions::default()
    };
    // The spec's build context (its sha256 is in the spec).
    if let Some(sha) = env.spec.docker.as_ref().and_then(|d| d.context.clone()) {
        let path = ctx.workspace.docker_context_file(&sha);
        let bytes = std::fs::read(&path).map_err(|_| {
            Error::usage(
                format!(
                    "the Docker build context of environment {} is missing from the workspace ({})",
                    env.id(),
                    path.display()
                ),
                format!(
                    "create the environment again: moor env create {} --docker-context DIR ...",
                    env.name
                ),
            )
        })?;
        if moor_proto::sha256_hex(&bytes) != sha {
            return Err(Error::usage(
                format!("the Docker build context {} is damaged", path.display()),
                format!(
                    "create the environment again: moor env create {} --docker-context DIR ...",
                    env.name
                ),
            ));
        }
        let snap = snapshot::Snapshot::packed(bytes, 0, Vec::new());
        let progress = crate::transfer::Transfer::new("Docker build context", Some(snap.size));
        agent.put_snapshot(&snap, &progress).await?;
        drop(progress);
    }
    for (dir, slot) in [
        (assets.channel_dir, &mut options.channel_dir),
        (assets.wheelhouse, &mut options.wheelhouse),
    ] {
        if let Some(dir) = dir {
            let snap = snapshot::pack_all(dir, MAX_ASSET_BYTES)?;
            let progress = crate::transfer::Transfer::new("package files", Some(snap.size));
            let sent = agent.put_snapshot(&snap, &progress).await?;
            drop(progress);
            tracing::info!(dir = %dir.display(), sent, "asset");
            *slot = Some(snap.sha256);
        }
    }
    let info = agent
        .prepare_env(env.spec.clone(), &env.hash, options)
        .await?;
    // Building, or a build that already ended (a fast failure): either
    // way its log tells what happened.
    let run_id = match (info.state, &info.build_run) {
        (EnvState::Ready, _) => return Ok((info, true)),
        (_, Some(run)) => run.clone(),
        (_, None) => return Err(unexpected_state(target, &info)),
    };
    // The build is a run: `moor logs` and `moor cancel` work on it.
    if let Ok(run) = agent.run(&run_id).await {
        ctx.store()?.record_run(&run, &target.name)?;
    }
    eprintln!(
        "moor: building environment {} on {} (build run {run_id}; its log: moor logs {run_id})",
        env.name, target.name
    );
    let mut offset = 0;
    let mut sink = LogSink::progress(format!("moor: building {}", env.name));
    let streamed = follow::stream(agent, &run_id, &mut offset, true, &mut sink).await;
    sink.finish();
    streamed?;
    let info = agent.env(&env.hash).await?;
    match info.state {
        EnvState::Ready => Ok((info, false)),
        EnvState::Failed | EnvState::Absent => {
            let tail = follow::tail(agent, &run_id, offset).await;
            // Absent after its build: the build was cancelled or killed.
            let (cause, fix) = match &info.error {
                Some(error) => (error.clone(), info.fix.clone()),
                None => (
                    "the build ended before the environment was complete (cancelled or killed)"
                        .into(),
                    Some("see why in its log".into()),
                ),
            };
            Err(Error::EnvBuild(Box::new(EnvBuildFailure {
                env: env.name.clone(),
                target: target.name.clone(),
                cause,
                tail,
                build_run: Some(run_id),
                fix,
            })))
        }
        _ => Err(unexpected_state(target, &info)),
    }
}

fn unexpected_state(target: &Target, info: &EnvInfo) -> Error {
    Error::Remote {
        host: target.host.clone(),
        step: "environment prepare",
        cause: format!("the environment is {:?} without a build run", info.state),
        fix: "prepare again".into(),
    }
}

/// What a prune removed and kept.
#[derive(Debug, Serialize)]
pub struct Pruned {
    #[serde(skip)]
    target: String,
    removed: Vec<String>,
    /// Kept environments, each with why.
    kept: Vec<(String, String)>,
}

impl Render for Pruned {
    fn render(&self, out: &mut Text) {
        for hash in &self.removed {
            out.line(format!("removed {}", &hash[..12]));
        }
        for (hash, why) in &self.kept {
            out.line(format!("kept    {}: {why}", &hash[..12]));
        }
        out.line(format!(
            "{} removed, {} kept on {}",
            self.removed.len(),
            self.kept.len(),
            self.target
        ));
    }
}

/// `moor env prune`.
pub async fn prune(args: &EnvPruneArgs, ctx: &Context) -> Result<Pruned> {
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &args.target)?;
    let access = Access::from_args(&args.connect)?;
    let conn = ctx.targets.connect(&target, &access).await?;
    let mut pruned = Pruned {
        target: target.name.clone(),
        removed: vec![],
        kept: vec![],
    };
    // Builds a defined version refers to are kept unless --all.
    let defined: Vec<Env> = if args.all { Vec::new() } else { store.envs()? };
    for env in conn.agent.envs().await? {
        let users: Vec<String> = defined
            .iter()
            .filter(|d| d.hash == env.hash)
            .map(Env::id)
            .collect();
        if !users.is_empty() {
            let why = format!("defined as {} (--all removes it too)", users.join(", "));
            pruned.kept.push((env.hash, why));
            continue;
        }
        match conn.agent.remove_env(&env.hash).await {
            Ok(_) => pruned.removed.push(env.hash),
            // A live run uses it, or it is being built: kept, with the reason.
            Err(Error::Refused {
                kind: ErrorKind::Busy,
                message,
                ..
            }) => pruned.kept.push((env.hash, message)),
            Err(e) => return Err(e),
        }
    }
    conn.close().await;
    Ok(pruned)
}
