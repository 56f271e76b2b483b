//! Making an environment ready on a connected target: ships local
//! channels, wheelhouses and a Docker build context as snapshots (sent only
//! when the agent lacks them), asks the agent, and follows the build run's
//! log; a cache hit answers in one request. `moor env prepare`, runs, jobs
//! and endpoints all come through [`prepare_on`].

use std::path::Path;

use moor_proto::env::{EnvInfo, EnvState, PrepareOptions};
use moor_proto::ErrorKind;

use crate::cli::PrepareAssetArgs;
use crate::context::Context;
use crate::error::{EnvBuildFailure, Error, Result};
use crate::follow;
use crate::progress::LogSink;
use crate::reach::Connected;
use crate::snapshot;
use crate::store::{Env, Target};

/// Largest local channel or wheelhouse shipped with a prepare.
const MAX_ASSET_BYTES: u64 = 8 << 30;

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
    ship_context(conn, ctx, env).await?;
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

/// Sends the Docker build context of `env`'s spec (kept in the workspace
/// when the version was made, checked against its hash), when it has one.
async fn ship_context(conn: &Connected, ctx: &Context, env: &Env) -> Result<()> {
    let Some(sha) = env.spec.docker.as_ref().and_then(|d| d.context.clone()) else {
        return Ok(());
    };
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
    conn.agent.put_snapshot(&snap, &progress).await?;
    drop(progress);
    Ok(())
}

fn unexpected_state(target: &Target, info: &EnvInfo) -> Error {
    Error::Remote {
        host: target.host.clone(),
        step: "environment prepare",
        cause: format!("the environment is {:?} without a build run", info.state),
        fix: "prepare again".into(),
    }
}
