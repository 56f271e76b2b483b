//! `moor env create|list|show|delete|prepare|prune`: environments.
//!
//! A spec lives in the workspace under a name; on a target it is built by the
//! agent under its hash (so renaming or re-creating it under another name
//! costs nothing). `prepare` ships local channels and wheels as snapshots
//! (sent only when the agent lacks them), asks the agent, and follows the
//! build run's log; a cache hit answers in one request.

use std::path::Path;

use moor_proto::env::{EnvInfo, EnvState, PrepareOptions};
use moor_proto::{Kind, Request, Response};
use serde::Serialize;

use super::run::{connect, stream_log, target_named, unexpected, Connected};
use super::Context;
use crate::cli::{AuthArgs, EnvCreateArgs, EnvPrepareArgs, PrepareAssetArgs};
use crate::envspec::{self, Sources};
use crate::error::{exit, EnvBuildFailure, Error, Result};
use crate::progress::LogSink;
use crate::snapshot;
use crate::store::{Env, Store, Target};

/// Largest local channel or wheelhouse shipped with a prepare.
const MAX_ASSET_BYTES: u64 = 8 << 30;

/// `moor env create`.
pub fn create(ctx: &Context, args: &EnvCreateArgs) -> Result<u8> {
    let sources = Sources {
        docker_base: args.docker_base.as_deref(),
        dockerfile: args.dockerfile.as_deref(),
        conda_file: args.conda_file.as_deref(),
        pip_requirements: args.pip_requirements.as_deref(),
        user_managed: args.user_managed,
    };
    let spec = envspec::build(&sources).map_err(|e| {
        Error::usage(
            format!("invalid environment spec: {}", e.message),
            "correct the file at that line and run `moor env create` again",
        )
    })?;
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::usage(
            format!("{:?} is not an environment name", args.name),
            "use letters, digits, '-', '_' and '.'",
        ));
    }
    let shown = |p: &Path| p.display().to_string();
    let env = Env {
        name: args.name.clone(),
        hash: spec.hash(),
        kind: spec.kind().as_str().into(),
        sources: [
            args.docker_base.clone().map(|b| format!("docker-base {b}")),
            args.dockerfile.as_deref().map(shown),
            args.conda_file.as_deref().map(shown),
            args.pip_requirements.as_deref().map(shown),
        ]
        .into_iter()
        .flatten()
        .collect(),
        spec,
        created_at: crate::time::now(),
    };
    let mut store = ctx.workspace.store()?;
    match store.add_env(&env)? {
        Some(existing) if existing.hash != env.hash => {
            return Err(Error::Taken {
                message: format!(
                    "environment {} exists with another spec (hash {})",
                    env.name,
                    &existing.hash[..12]
                ),
                fix: format!(
                    "choose another name, or `moor env delete {}` first",
                    env.name
                ),
            })
        }
        _ => {}
    }
    if ctx.json {
        crate::output::json(&env);
    } else {
        crate::outln!(
            "environment {} ({}, {})",
            env.name,
            env.kind,
            &env.hash[..12]
        );
    }
    Ok(exit::OK)
}

fn find(ctx: &Context, name: &str) -> Result<Env> {
    ctx.workspace
        .store()?
        .env(name)?
        .ok_or_else(|| Error::NoEnv { name: name.into() })
}

/// `moor env list`.
pub fn list(ctx: &Context) -> Result<u8> {
    let envs = ctx.workspace.store()?.envs()?;
    if ctx.json {
        crate::output::json(&envs);
    } else if envs.is_empty() {
        crate::outln!("no environments; define one with `moor env create NAME --pip-requirements requirements.txt`");
    } else {
        for env in &envs {
            crate::outln!(
                "{:<20} {:<7} {}  {}",
                env.name,
                env.kind,
                &env.hash[..12],
                env.sources.join(", ")
            );
        }
    }
    Ok(exit::OK)
}

/// `moor env show`.
pub fn show(ctx: &Context, name: &str) -> Result<u8> {
    let env = find(ctx, name)?;
    if ctx.json {
        crate::output::json(&env);
        return Ok(exit::OK);
    }
    crate::outln!("name:    {}", env.name);
    crate::outln!("kind:    {}", env.kind);
    crate::outln!("hash:    {}", env.hash);
    crate::outln!("image:   {}", moor_proto::env::image_tag(&env.hash));
    crate::outln!("from:    {}", env.sources.join(", "));
    crate::outln!(
        "spec:    {}",
        serde_json::to_string_pretty(&env.spec).expect("specs serialize")
    );
    Ok(exit::OK)
}

/// `moor env delete`.
pub fn delete(ctx: &Context, name: &str) -> Result<u8> {
    if !ctx.workspace.store()?.delete_env(name)? {
        return Err(Error::NoEnv { name: name.into() });
    }
    if ctx.json {
        crate::output::json(&serde_json::json!({ "deleted": name }));
    } else {
        crate::outln!("deleted environment {name}");
    }
    Ok(exit::OK)
}

/// `moor env prepare`.
pub async fn prepare(ctx: &Context, args: &EnvPrepareArgs) -> Result<u8> {
    let env = find(ctx, &args.name)?;
    let store = ctx.workspace.store()?;
    let target = target_named(&store, &args.target, ctx)?;
    let conn = connect(ctx, &target, &args.auth, args.connect_timeout).await?;
    let started = std::time::Instant::now();
    let assets = Assets::from(&args.assets);
    let connected = started.elapsed();
    let result = prepare_on(&conn, &store, &target, &env, &assets).await;
    let prepared = started.elapsed() - connected;
    conn.close().await;
    let (info, cached) = result?;
    #[derive(Serialize)]
    struct Prepared<'a> {
        name: &'a str,
        target: &'a str,
        cached: bool,
        /// Connect, prepare and close.
        seconds: f64,
        /// The prepare alone, on the open connection (a cache hit: one
        /// request to the agent).
        prepare_ms: f64,
        #[serde(flatten)]
        env: &'a EnvInfo,
    }
    let seconds = started.elapsed().as_secs_f64();
    if ctx.json {
        crate::output::json(&Prepared {
            name: &env.name,
            target: &target.name,
            cached,
            seconds,
            prepare_ms: prepared.as_secs_f64() * 1000.0,
            env: &info,
        });
    } else {
        crate::outln!(
            "environment {} ready on {} ({}, {:.2}s)",
            env.name,
            target.name,
            if cached { "cached" } else { "built" },
            seconds
        );
    }
    Ok(exit::OK)
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
    store: &Store,
    target: &Target,
    env: &Env,
    assets: &Assets<'_>,
) -> Result<(EnvInfo, bool)> {
    let agent = &conn.agent;
    let mut options = PrepareOptions {
        use_host_conda: assets.use_host_conda,
        ..PrepareOptions::default()
    };
    for (dir, slot) in [
        (assets.channel_dir, &mut options.channel_dir),
        (assets.wheelhouse, &mut options.wheelhouse),
    ] {
        if let Some(dir) = dir {
            let snap = snapshot::pack_all(dir, MAX_ASSET_BYTES)?;
            let sent = super::run::upload_snapshot(agent, &snap).await?;
            tracing::info!(dir = %dir.display(), sent, "asset");
            *slot = Some(snap.sha256);
        }
    }
    let request = Request::PrepareEnv {
        spec: env.spec.clone(),
        hash: env.hash.clone(),
        options,
    };
    let info = expect_env(target, agent.call(&request).await?)?;
    // Building, or a build that already ended (a fast failure): either
    // way its log tells what happened.
    let run_id = match (info.state, &info.build_run) {
        (EnvState::Ready, _) => return Ok((info, true)),
        (_, Some(run)) => run.clone(),
        (_, None) => return Err(unexpected_state(target, &info)),
    };
    // The build is a run: `moor logs` and `moor cancel` work on it.
    if let Response::Run { run } = agent
        .call(&Request::GetRun {
            run_id: run_id.clone(),
        })
        .await?
    {
        store.record_run(&run, &target.name)?;
    }
    eprintln!(
        "moor: building environment {} on {} (build run {run_id}; its log: moor logs {run_id})",
        env.name, target.name
    );
    let mut offset = 0;
    let mut sink = LogSink::progress(format!("moor: building {}", env.name));
    let streamed = stream_log(agent, &run_id, &mut offset, true, &mut sink).await;
    sink.finish();
    streamed?;
    let info = expect_env(
        target,
        agent
            .call(&Request::GetEnv {
                hash: env.hash.clone(),
            })
            .await?,
    )?;
    match info.state {
        EnvState::Ready => Ok((info, false)),
        EnvState::Failed | EnvState::Absent => {
            let tail = log_tail(conn, &run_id, offset).await;
            // Absent after its build: the build was cancelled or killed.
            let error = info.error.clone().unwrap_or_else(|| {
                "the build ended before the environment was complete (cancelled or killed); fix: see why in its log".into()
            });
            let (cause, fix) = match error.split_once("; fix: ") {
                Some((cause, fix)) => (cause.to_owned(), Some(fix.to_owned())),
                None => (error, None),
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

fn expect_env(target: &Target, response: Response) -> Result<EnvInfo> {
    match response {
        Response::Env { env } => Ok(env),
        other => Err(unexpected(target, other)),
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

/// The last few lines of a build log, joined with " | ".
async fn log_tail(conn: &Connected, run_id: &str, end: u64) -> String {
    let start = end.saturating_sub(4096);
    let mut bytes = Vec::new();
    if let Ok((_, mut rx)) = conn
        .agent
        .request(&Request::ReadLog {
            run_id: run_id.into(),
            offset: start,
            follow: false,
        })
        .await
    {
        while let Ok(Some(frame)) =
            tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await
        {
            match frame.kind {
                Kind::Data => bytes.extend_from_slice(&frame.payload),
                Kind::End => break,
                _ => {}
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// `moor env prune`.
pub async fn prune(ctx: &Context, target_name: &str, auth: &AuthArgs) -> Result<u8> {
    let store = ctx.workspace.store()?;
    let target = target_named(&store, target_name, ctx)?;
    let conn = connect(ctx, &target, auth, 10.0).await?;
    let envs = match conn.agent.call(&Request::ListEnvs).await? {
        Response::Envs { envs } => envs,
        other => return Err(unexpected(&target, other)),
    };
    #[derive(Serialize)]
    struct Pruned {
        removed: Vec<String>,
        kept: Vec<(String, String)>,
    }
    let mut pruned = Pruned {
        removed: vec![],
        kept: vec![],
    };
    for env in envs {
        let request = Request::RemoveEnv {
            hash: env.hash.clone(),
        };
        match conn.agent.call(&request).await {
            Ok(Response::Env { .. }) => pruned.removed.push(env.hash),
            Ok(other) => return Err(unexpected(&target, other)),
            // The agent refused (an environment a live run uses): kept, with
            // its reason; a broken link (Error::Agent) ends the prune.
            Err(Error::Remote { cause, .. }) => pruned.kept.push((env.hash, cause)),
            Err(e) => return Err(e),
        }
    }
    conn.close().await;
    if ctx.json {
        crate::output::json(&pruned);
    } else {
        for hash in &pruned.removed {
            crate::outln!("removed {}", &hash[..12]);
        }
        for (hash, why) in &pruned.kept {
            crate::outln!("kept    {}: {why}", &hash[..12]);
        }
        crate::outln!(
            "{} removed, {} kept on {}",
            pruned.removed.len(),
            pruned.kept.len(),
            target.name
        );
    }
    Ok(exit::OK)
}
