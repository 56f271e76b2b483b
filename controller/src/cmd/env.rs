//! `moor env create|list|show|delete`: environments in the workspace. A
//! spec lives under a name; on a target it is built (see
//! [`super::env_build`]) under its hash, so renaming it or creating it again
//! under another name costs nothing.

use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::EnvCreateArgs;
use crate::envspec::{self, Sources};
use crate::error::{Error, Result};
use crate::output::{Render, Table, Text};
use crate::store::Env;

/// A created environment.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Created(Env);

impl Render for Created {
    fn render(&self, out: &mut Text) {
        let env = &self.0;
        out.line(format!(
            "environment {} ({}, {})",
            env.name,
            env.kind.as_str(),
            &env.hash[..12]
        ));
    }
}

/// `moor env create`.
pub fn create(args: &EnvCreateArgs, ctx: &Context) -> Result<Created> {
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
        kind: spec.kind(),
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
    let mut store = ctx.store()?;
    match store.add_env(&env)? {
        Some(existing) if existing.hash != env.hash => Err(Error::Taken {
            message: format!(
                "environment {} exists with another spec (hash {})",
                env.name,
                &existing.hash[..12]
            ),
            fix: format!(
                "choose another name, or `moor env delete {}` first",
                env.name
            ),
        }),
        _ => Ok(Created(env)),
    }
}

/// The named environment.
pub fn find(ctx: &Context, name: &str) -> Result<Env> {
    ctx.store()?
        .env(name)?
        .ok_or_else(|| Error::NoEnv { name: name.into() })
}

/// The workspace's environments.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Listed(Vec<Env>);

impl Render for Listed {
    fn render(&self, out: &mut Text) {
        if self.0.is_empty() {
            out.line("no environments; define one with `moor env create NAME --pip-requirements requirements.txt`");
            return;
        }
        let mut table = Table::new(&["NAME", "KIND", "HASH", "FROM"]);
        for env in &self.0 {
            table.row(vec![
                env.name.clone(),
                env.kind.as_str().into(),
                env.hash[..12].into(),
                env.sources.join(", "),
            ]);
        }
        out.raw(&table.render());
    }
}

/// `moor env list`.
pub fn list(ctx: &Context) -> Result<Listed> {
    Ok(Listed(ctx.store()?.envs()?))
}

/// One environment in full.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Shown(Env);

impl Render for Shown {
    fn render(&self, out: &mut Text) {
        let env = &self.0;
        out.line(format!("name:    {}", env.name));
        out.line(format!("kind:    {}", env.kind.as_str()));
        out.line(format!("hash:    {}", env.hash));
        out.line(format!(
            "image:   {}",
            moor_proto::env::image_tag(&env.hash)
        ));
        out.line(format!("from:    {}", env.sources.join(", ")));
        out.line(format!(
            "spec:    {}",
            serde_json::to_string_pretty(&env.spec).expect("specs serialize")
        ));
    }
}

/// `moor env show`.
pub fn show(ctx: &Context, name: &str) -> Result<Shown> {
    Ok(Shown(find(ctx, name)?))
}

/// A deleted environment.
#[derive(Debug, Serialize)]
pub struct Deleted {
    deleted: String,
}

impl Render for Deleted {
    fn render(&self, out: &mut Text) {
        out.line(format!("deleted environment {}", self.deleted));
    }
}

/// `moor env delete`.
pub fn delete(ctx: &Context, name: &str) -> Result<Deleted> {
    if !ctx.store()?.delete_env(name)? {
        return Err(Error::NoEnv { name: name.into() });
    }
    Ok(Deleted {
        deleted: name.to_owned(),
    })
}
