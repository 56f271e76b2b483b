//! `moor env create|list|show|delete`: environments in the workspace,
//! versioned as in Azure ML (`NAME:N`; `NAME` is the latest). On a target a
//! spec is built (see [`super::env_build`]) under its hash, so renaming it
//! or creating it again under another name costs nothing.

use serde::Serialize;

use super::Context;
use crate::cli::EnvCreateArgs;
use crate::envs::{find, reference};
use crate::error::{Error, Result};
use crate::output::{Render, Table, Text};
use crate::store::{Added, Env};

/// A created environment version, or the latest one when its spec is the same.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The version.
    #[serde(flatten)]
    pub env: Env,
    /// The latest version already had this spec.
    unchanged: bool,
}

impl Render for Created {
    fn render(&self, out: &mut Text) {
        let env = &self.env;
        let what = if self.unchanged {
            "unchanged: environment"
        } else {
            "environment"
        };
        out.line(format!(
            "{what} {} ({}, {})",
            env.id(),
            env.kind.as_str(),
            &env.hash[..12]
        ));
    }
}

/// `moor env create`.
pub fn create(args: &EnvCreateArgs, ctx: &Context) -> Result<Created> {
    Ok(match crate::envs::define(args, ctx)? {
        Added::New(env) => Created {
            env,
            unchanged: false,
        },
        Added::Unchanged(env) => Created {
            env,
            unchanged: true,
        },
    })
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
        let mut table = Table::new(&["NAME", "VERSION", "KIND", "HASH", "FROM"]);
        for env in &self.0 {
            table.row(vec![
                env.name.clone(),
                env.version.to_string(),
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
        out.line(format!("version: {}", env.version));
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
    Ok(Shown(find(&ctx.store()?, name)?))
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
    if ctx.store()?.delete_env(&reference(name)?)? == 0 {
        return Err(Error::NoEnv { name: name.into() });
    }
    Ok(Deleted {
        deleted: name.to_owned(),
    })
}
