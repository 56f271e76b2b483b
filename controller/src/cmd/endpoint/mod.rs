//! `moor endpoint create`: packs the source (the scoring script and its
//! code), prepares the environment (with azureml-inference-server-http
//! added when a scoring script needs it), ships a local model or names a
//! run's outputs (copied on the host), asks the agent for the endpoint and
//! waits until it answers its probe, or fails with its log's last lines.
//! [`manage`] has the other subcommands, [`invoke`] the HTTP call.

pub mod invoke;
pub mod manage;

use std::path::Path;
use std::time::{Duration, Instant};

use moor_proto::endpoint::{EndpointInfo, EndpointSpec, EndpointState, ModelSource, Server};
use moor_proto::RunSpec;
use serde::Serialize;

use super::env_build::{prepare_on, Assets};
use super::Context;
use crate::cli::EndpointCreateArgs;
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::snapshot;
use crate::store::{Env, Store, Target};
use crate::target::{Access, Connected};

/// The package that serves a scoring script.
pub const SERVER_PACKAGE: &str = "azureml-inference-server-http";

/// An endpoint and the target serving it.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The target.
    pub target: String,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointInfo,
}

impl Render for Shown {
    fn render(&self, out: &mut Text) {
        let e = &self.endpoint;
        out.line(format!(
            "endpoint {} {} on {} at {}:{} (run {}, {} restart(s){})",
            e.name,
            e.state.as_str(),
            self.target,
            e.address,
            e.port,
            e.run_id,
            e.restarts,
            e.last_exit
                .as_deref()
                .map(|x| format!(", last exit: {x}"))
                .unwrap_or_default()
        ));
        if let Some(error) = &e.error {
            out.line(format!("  error: {error}"));
        }
        for line in &e.log_tail {
            out.line(format!("  | {line}"));
        }
    }
}

/// `moor endpoint create`.
pub async fn create(args: &EndpointCreateArgs, ctx: &Context) -> Result<Shown> {
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &args.target)?;
    if let Some(other) = store
        .endpoint_target(&args.name)?
        .filter(|t| *t != target.name)
    {
        return Err(Error::usage(
            format!("endpoint {} already exists on target {other}", args.name),
            "pick another name, or `moor endpoint delete` that one first",
        ));
    }
    let server = match &args.scoring_script {
        Some(script) => {
            if !args.source_dir.join(script).is_file() {
                return Err(Error::usage(
                    format!(
                        "no scoring script {script} in {}",
                        args.source_dir.display()
                    ),
                    "give --scoring-script relative to --source-dir",
                ));
            }
            Server::ScoringScript {
                script: script.clone(),
            }
        }
        None => Server::Command {
            command: args.command.clone(),
        },
    };
    let snap = snapshot::pack_source(
        &args.source_dir,
        args.max_snapshot_size << 20,
        &ctx.workspace.snapshot_index(),
    )?;
    let model = args
        .model
        .as_deref()
        .map(|m| model_source(&store, ctx, &target, m, args.max_snapshot_size << 20))
        .transpose()?;
    let env = args
        .env
        .as_deref()
        .map(|name| super::env::find(&store, name))
        .transpose()?;
    if env.as_ref().is_some_and(|e| e.spec.docker.is_some()) {
        return Err(Error::usage(
            "endpoints run in conda or pip environments or on the host as it is; a Docker environment cannot serve one yet",
            "give a pip or conda environment with --env, or none",
        ));
    }
    let env = match (env, &server) {
        (Some(env), Server::ScoringScript { .. }) => Some(with_server(env)?),
        (env, _) => env,
    };
    let mut variables = crate::run_env::collect(&args.env_vars, None)?;
    if let Some(env) = &env {
        let mut all = env.spec.variables();
        all.append(&mut variables);
        variables = all;
    }
    let access = Access::from_args(&args.connect)?;
    let conn = ctx.targets.connect(&target, &access).await?;
    if let Some(env) = &env {
        prepare_on(&conn, ctx, &target, env, &Assets::from(&args.assets)).await?;
    }
    let progress = crate::transfer::Transfer::new("source snapshot", Some(snap.size));
    conn.agent.put_snapshot(&snap, &progress).await?;
    drop(progress);
    let model = match model {
        Some(Model::Local(packed)) => {
            let progress = crate::transfer::Transfer::new("model", Some(packed.size));
            conn.agent.put_snapshot(&packed, &progress).await?;
            Some(ModelSource::Snapshot {
                sha256: packed.sha256.clone(),
            })
        }
        Some(Model::Run(source)) => Some(source),
        None => None,
    };
    let spec = EndpointSpec {
        name: args.name.clone(),
        port: args.port,
        public: args.public,
        health_path: args.health_path.clone(),
        server,
        model,
        run: RunSpec {
            snapshot: snap.sha256.clone(),
            env: variables,
            environment: env.as_ref().map(|e| e.hash.clone()),
            ..RunSpec::default()
        },
    };
    let created = conn.agent.create_endpoint(spec).await?;
    store.record_endpoint(&created.name, &target.name)?;
    if args.public {
        eprintln!(
            "moor: warning: endpoint {} listens on every address of {} (port {}): anyone who reaches that port can call it; keep it behind the host's firewall or a reverse proxy (see the README)",
            created.name, target.name, created.port
        );
    }
    eprintln!(
        "moor: endpoint {} starting on {} (port {}, run {}); waiting until it answers",
        created.name, target.name, created.port, created.run_id
    );
    let endpoint = wait_healthy(&conn, &target, &created.name, args.wait_timeout).await;
    conn.close().await;
    Ok(Shown {
        target: target.name,
        endpoint: endpoint?,
    })
}

/// Polls the endpoint until it answers its probe; failed: its log's last
/// lines on stderr and an error.
pub async fn wait_healthy(
    conn: &Connected,
    target: &Target,
    name: &str,
    limit_secs: u64,
) -> Result<EndpointInfo> {
    let deadline = Instant::now() + Duration::from_secs(limit_secs);
    loop {
        let endpoint = conn.agent.endpoint(name).await?;
        match endpoint.state {
            EndpointState::Healthy => return Ok(endpoint),
            EndpointState::Failed | EndpointState::Stopped => {
                for line in &endpoint.log_tail {
                    eprintln!("  | {line}");
                }
                return Err(Error::Remote {
                    host: target.name.clone(),
                    step: "endpoint",
                    cause: format!(
                        "endpoint {name} {}: {}",
                        endpoint.state.as_str(),
                        endpoint.error.as_deref().unwrap_or("its server ended")
                    ),
                    fix: format!(
                        "fix what its log says (moor endpoint logs {name}): a cause in the source or the model needs `moor endpoint delete {name}` and a new create; one on the host, `moor endpoint start {name}`"
                    ),
                });
            }
            _ if Instant::now() >= deadline => {
                return Err(Error::Remote {
                    host: target.name.clone(),
                    step: "endpoint",
                    cause: format!(
                        "endpoint {name} did not answer its probe within {limit_secs} s (it is {})",
                        endpoint.state.as_str()
                    ),
                    fix: format!(
                        "see `moor endpoint logs {name}`; it goes on starting (moor endpoint show {name})"
                    ),
                })
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

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
