//! `moor env prepare|prune`: environments on a target. `prepare` makes one
//! ready through [`crate::envs::prepare`] (as runs, jobs and endpoints do);
//! `prune` removes the builds no version refers to.

use moor_proto::env::EnvInfo;
use moor_proto::ErrorKind;
use serde::Serialize;

use super::Context;
use crate::cli::{EnvPrepareArgs, EnvPruneArgs};
use crate::envs::prepare::{prepare_on, Assets};
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::reach::Access;
use crate::store::Env;

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
    let env = crate::envs::find(&ctx.store()?, &args.name)?;
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
