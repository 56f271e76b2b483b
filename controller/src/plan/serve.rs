//! What an endpoint serves, resolved for its plan: the server (a scoring
//! script that must exist, or a command), the model (a local file or folder
//! packed, or a run's outputs on the same target), and the environment with
//! the scoring server added when a scoring script needs it.

use std::path::Path;

use moor_proto::endpoint::{ModelSource, Server};

use super::{Ask, Payloads, ServeAsk};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::snapshot;
use crate::store::{Env, Store, Target};

/// The package that serves a scoring script.
pub const SERVER_PACKAGE: &str = "azureml-inference-server-http";

/// A model as `--model` gives it.
enum Model {
    /// A local file or folder, packed.
    Local(snapshot::Snapshot),
    /// A run's outputs on the target.
    Run(ModelSource),
}

/// `--model`: a local path when one exists, else `RUN[:PATH]` of a run
/// this workspace started on the same target.
fn model_source(
    store: &Store,
    ctx: &Context,
    target: &Target,
    text: &str,
    max_bytes: u64,
) -> Result<Model> {
    let local = Path::new(text);
    if local.is_file() {
        return Ok(Model::Local(snapshot::pack_file(local, max_bytes)?));
    }
    if local.is_dir() {
        return Ok(Model::Local(snapshot::pack_all(local, max_bytes)?));
    }
    let (run, path) = match text.split_once(':') {
        Some((run, path)) => (run, Some(path.to_owned())),
        None => (text, None),
    };
    let (run_target, run_id) = ctx.targets.of_run(store, run).map_err(|_| {
        Error::usage(
            format!(
                "--model {text:?} is neither a local file or folder nor a run of this workspace"
            ),
            "give a local path, or RUN[:PATH] with a run id or name from `moor runs`",
        )
    })?;
    if run_target.name != target.name {
        return Err(Error::usage(
            format!(
                "the model's run {run_id} ran on {}, not on {}: a run's model is copied on its own host",
                run_target.name, target.name
            ),
            format!(
                "create the endpoint on --target {}, or `moor download {run_id}` and give the local path",
                run_target.name
            ),
        ));
    }
    Ok(Model::Run(ModelSource::Run { run_id, path }))
}

/// The environment with the scoring server in it: `SERVER_PACKAGE` added
/// to its pip requirements when they lack it (a new hash: built once).
fn with_server(mut env: Env) -> Result<Env> {
    let has = env.spec.pip_requirements().iter().any(|r| {
        let r = r.trim().to_ascii_lowercase().replace('_', "-");
        r.starts_with(SERVER_PACKAGE)
    });
    if has || env.spec.user_managed {
        return Ok(env);
    }
    if env.spec.pip_hashed() {
        return Err(Error::usage(
            format!(
                "environment {} pins its pip packages with hashes and lacks {SERVER_PACKAGE}, which serves a scoring script",
                env.name
            ),
            format!("add {SERVER_PACKAGE} with its hashes to its requirements and `moor env create` it again"),
        ));
    }
    let mut spec = env.spec.clone();
    match (&mut spec.conda, &mut spec.pip) {
        (_, Some(pip)) => pip.requirements.push(SERVER_PACKAGE.into()),
        (Some(conda), None) => conda.pip.push(SERVER_PACKAGE.into()),
        (None, None) => {
            spec.pip = Some(moor_proto::env::PipSpec {
                requirements: vec![SERVER_PACKAGE.into()],
                ..Default::default()
            })
        }
    }
    env.hash = spec.hash();
    env.kind = spec.kind();
    env.spec = spec;
    env.name = format!("{}+{SERVER_PACKAGE}", env.name);
    Ok(env)
}

/// The endpoint's part of a plan; the local model goes into `payloads`.
pub fn serve(
    ctx: &Context,
    store: &Store,
    ask: &Ask,
    serve: &ServeAsk,
    target: &Target,
    payloads: &mut Payloads,
) -> Result<super::Serve> {
    check_endpoint_name(&serve.name)?;
    if let Some(other) = store
        .endpoint_target(&serve.name)?
        .filter(|t| *t != target.name)
    {
        return Err(Error::usage(
            format!("endpoint {} already exists on target {other}", serve.name),
            "pick another name, or `moor endpoint delete` that one first",
        ));
    }
    let source = ask.source_dir();
    let server = match &serve.scoring_script {
        Some(script) => {
            if !source.join(script).is_file() {
                return Err(Error::usage(
                    format!("no scoring script {script} in {}", source.display()),
                    "give --scoring-script relative to --source-dir",
                ));
            }
            Server::ScoringScript {
                script: script.clone(),
            }
        }
        None => Server::Command {
            command: ask.command.clone(),
        },
    };
    let model = match serve.model.as_deref() {
        Some(m) => Some(
            match model_source(store, ctx, target, m, ask.max_snapshot_bytes)? {
                Model::Local(packed) => ModelSource::Snapshot {
                    sha256: payloads.add(packed).sha256,
                },
                Model::Run(source) => source,
            },
        ),
        None => None,
    };
    Ok(super::Serve {
        name: serve.name.clone(),
        port: serve.port,
        public: serve.public,
        health_path: serve.health_path.clone(),
        server,
        model,
    })
}

/// The environment an endpoint runs in: refused when it is a Docker image,
/// with the scoring server added for a scoring script.
pub fn endpoint_env(env: Option<Env>, serve: &ServeAsk) -> Result<Option<Env>> {
    if env.as_ref().is_some_and(|e| e.spec.docker.is_some()) {
        return Err(Error::usage(
            "endpoints run in conda or pip environments or on the host as it is; a Docker environment cannot serve one yet",
            "give a pip or conda environment with --env, or none",
        ));
    }
    match env {
        Some(env) if serve.scoring_script.is_some() => with_server(env).map(Some),
        env => Ok(env),
    }
}

/// Endpoint names as the agent takes them (letters, digits, `_`, `-`, not
/// starting with `-`, at most 255), checked before anything is sent.
fn check_endpoint_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    Err(Error::usage(
        format!("{name:?} is not a valid endpoint name"),
        "use letters, digits, '_' and '-' (not first), e.g. churn-model",
    ))
}
