//! Environments in the workspace, versioned as in Azure ML (`NAME:N`;
//! `NAME` is the latest): defining a version from spec files, finding one,
//! telling when its files changed since, and making one ready on a target
//! ([`prepare`]). On a target a spec is built under its hash, so renaming
//! it or creating it again under another name costs nothing.

pub mod prepare;

use std::path::Path;

use crate::cli::EnvCreateArgs;
use crate::context::Context;
use crate::envspec::{self, Sources};
use crate::error::{Error, Result};
use crate::store::{Added, Env, EnvOrigin, EnvRef, Store};

/// Makes a new version of environment `args.name` from its spec files (or
/// finds the latest unchanged), keeping a Docker build context in the
/// workspace.
pub fn define(args: &EnvCreateArgs, ctx: &Context) -> Result<Added> {
    let sources = Sources {
        docker_base: args.docker_base.as_deref(),
        dockerfile: args.dockerfile.as_deref(),
        docker_context: args.docker_context.as_deref(),
        build_args: &args.build_arg,
        conda_file: args.conda_file.as_deref(),
        pip_requirements: args.pip_requirements.as_deref(),
        user_managed: args.user_managed,
    };
    let built = envspec::build(&sources).map_err(|e| {
        Error::usage(
            format!("invalid environment spec: {}", e.message),
            "correct the file at that line and run `moor env create` again",
        )
    })?;
    for note in &built.notes {
        eprintln!("moor: {note}");
    }
    if let Some(context) = &built.context {
        // Kept in the workspace: the version builds the same anywhere, later.
        let path = ctx.workspace.docker_context_file(&context.sha256);
        crate::private_fs::write_private_atomic(
            &path,
            context.archive().expect("a build context is packed"),
        )
        .map_err(|cause| Error::Io {
            what: "cannot keep the Docker build context in the workspace",
            path: path.clone(),
            cause,
        })?;
    }
    let spec = built.spec;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
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
        version: 0, // the store numbers it
        origin: EnvOrigin {
            docker_base: args.docker_base.clone(),
            dockerfile: args.dockerfile.as_deref().map(absolute),
            docker_context: args.docker_context.as_deref().map(absolute),
            build_args: args.build_arg.clone(),
            conda_file: args.conda_file.as_deref().map(absolute),
            pip_requirements: args.pip_requirements.as_deref().map(absolute),
            user_managed: args.user_managed,
        },
        hash: spec.hash(),
        kind: spec.kind(),
        sources: [
            args.docker_base.clone().map(|b| format!("docker-base {b}")),
            args.docker_context
                .as_deref()
                .map(|d| format!("docker-context {}", shown(d))),
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
    ctx.store()?.add_env(&env)
}

/// The spec `env` was made from, read again: `Some(why)` when its files
/// changed since (or cannot be read), for a warning.
pub fn changed_since(env: &Env) -> Option<String> {
    let origin = &env.origin;
    if origin == &EnvOrigin::default() {
        return None; // made before origins were kept
    }
    let sources = Sources {
        docker_base: origin.docker_base.as_deref(),
        dockerfile: origin.dockerfile.as_deref(),
        docker_context: origin.docker_context.as_deref(),
        build_args: &origin.build_args,
        conda_file: origin.conda_file.as_deref(),
        pip_requirements: origin.pip_requirements.as_deref(),
        user_managed: origin.user_managed,
    };
    match envspec::build(&sources) {
        Ok(built) if built.spec.hash() == env.hash => None,
        Ok(_) => Some(format!(
            "{} changed since environment {} was created from it",
            env.sources.join(", "),
            env.id()
        )),
        Err(e) => Some(format!(
            "environment {} was created from files that no longer read as a spec ({})",
            env.id(),
            e.message
        )),
    }
}

/// `NAME` or `NAME:N`, checked.
pub fn reference(text: &str) -> Result<EnvRef<'_>> {
    EnvRef::parse(text).ok_or_else(|| {
        Error::usage(
            format!("{text:?} is not an environment: expected NAME or NAME:VERSION"),
            "see `moor env list` for names and versions",
        )
    })
}

/// The environment `NAME` (its latest version) or `NAME:N` names.
pub fn find(store: &Store, name: &str) -> Result<Env> {
    store
        .env(&reference(name)?)?
        .ok_or_else(|| Error::NoEnv { name: name.into() })
}
