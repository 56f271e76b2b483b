//! `moor run`: packs the source, connects to the target's agent, prepares
//! the environment when one is asked for, uploads the snapshot only when the
//! agent lacks that hash, starts the run and follows its log (see
//! [`crate::follow`]). Ctrl-C detaches; the run goes on.

use moor_proto::{RunSpec, SparkSpec};
use serde::Serialize;

use super::env_build::{prepare_on, Assets};
use super::run_json::RunJson;
use super::Context;
use crate::agent_client::{ByteStream, StartedRun};
use crate::cli::RunArgs;
use crate::error::{exit, Error, Result};
use crate::follow;
use crate::output::{Render, Text};
use crate::progress::LogSink;
use crate::snapshot;
use crate::store::{Env, Target};
use crate::target::{Access, Connected};
use crate::target_kind::TargetKind;

/// How `moor run` ended.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Ran {
    /// `--detach`: the run was started.
    Started {
        /// Run id.
        id: String,
        /// Target name.
        target: String,
        /// The snapshot's hash.
        snapshot: String,
        /// Source bytes sent (0 when the target had the snapshot).
        snapshot_bytes_sent: usize,
    },
    /// Followed to its end.
    Ended {
        /// The run (or job) as `moor runs --json` shows it.
        #[serde(flatten)]
        run: Box<RunJson>,
        /// Source bytes sent (0 when the target had the snapshot).
        snapshot_bytes_sent: usize,
    },
    /// Ctrl-C: before the run started (nothing runs), or after (it goes on).
    Interrupted {
        /// The run that goes on, if it had started.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Always true.
        interrupted: bool,
    },
}

impl Render for Ran {
    fn render(&self, out: &mut Text) {
        match self {
            Ran::Started { id, .. } => out.line(id),
            Ran::Ended { run, .. } => {
                if let Some(app) = &run.yarn_application {
                    out.note(format!("moor: run {} was YARN application {app}", run.id));
                }
                if let Some(line) = run.error_line() {
                    out.note(line);
                }
            }
            Ran::Interrupted { .. } => {}
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Ran::Started { .. } => exit::OK,
            Ran::Ended { run, .. } => run.exit_code(),
            Ran::Interrupted { .. } => 130,
        }
    }

    fn has_json(&self) -> bool {
        !matches!(self, Ran::Interrupted { .. })
    }
}

/// A started run and what `moor run` still holds for it.
struct Started {
    run: moor_proto::RunInfo,
    target: Target,
    access: Access,
    conn: Connected,
    /// The run's log, streaming (unless detached).
    log: Option<ByteStream>,
    snapshot: String,
    sent: usize,
}

/// Ctrl-C, handled by moor from now on (`moor run` and jobs: before the
/// start it stops moor, after it detaches).
pub fn ctrl_c() -> Result<tokio::signal::unix::Signal> {
    signal(tokio::signal::unix::SignalKind::interrupt())
}

/// A stream of the signals of `kind` this process gets (from now on they
/// no longer have their default effect).
pub fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::Io {
        what: "cannot handle signals",
        path: std::path::PathBuf::from(format!("signal {}", kind.as_raw_value())),
        cause: e,
    })
}

/// `moor run`.
pub async fn run(args: &RunArgs, ctx: &Context) -> Result<Ran> {
    // Ctrl-C is ours from the start: before the run starts it stops moor
    // (nothing was started), after it detaches.
    let mut interrupt = ctrl_c()?;
    let started = tokio::select! {
        started = start(args, ctx) => started?,
        _ = interrupt.recv() => {
            eprintln!("moor: interrupted before the run started; nothing runs");
            return Ok(Ran::Interrupted { id: None, interrupted: true });
        }
    };
    let Started {
        run,
        target,
        access,
        conn,
        log,
        snapshot,
        sent,
    } = started;
    if args.detach {
        return Ok(Ran::Started {
            id: run.id,
            target: target.name,
            snapshot,
            snapshot_bytes_sent: sent,
        });
    }
    eprintln!(
        "moor: run {} on {} ({sent} source bytes sent); Ctrl-C detaches",
        run.id, target.name
    );
    let mut sink = LogSink::for_log(ctx.json);
    let followed = async {
        match log {
            Some(log) => {
                follow::follow_started(
                    &ctx.targets,
                    &target,
                    &access,
                    &run.id,
                    conn,
                    log,
                    &mut sink,
                )
                .await
            }
            None => {
                follow::follow(
                    &ctx.targets,
                    &target,
                    &access,
                    &run.id,
                    0,
                    true,
                    Some(conn),
                    &mut sink,
                )
                .await
            }
        }
    };
    tokio::select! {
        done = followed => {
            let done = done?;
            ctx.store()?.heard_runs(std::slice::from_ref(&done))?;
            Ok(Ran::Ended {
                run: Box::new(RunJson::new(done, &target.name)),
                snapshot_bytes_sent: sent,
            })
        }
        _ = interrupt.recv() => {
            eprintln!(
                "moor: detached; run {} goes on. Follow it again with: moor logs {} --follow",
                run.id, run.id
            );
            Ok(Ran::Interrupted { id: Some(run.id), interrupted: true })
        }
    }
}

/// Packs, connects, prepares the environment, uploads, starts the run.
async fn start(args: &RunArgs, ctx: &Context) -> Result<Started> {
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &args.target[0])?;
    let variables = crate::run_env::collect(&args.env_vars, args.env_file.as_deref())?;
    let snap = snapshot::pack_source(
        &args.source_dir,
        args.max_snapshot_size << 20,
        &ctx.workspace.snapshot_index(),
    )?;
    if let Some(warning) = snap.skipped_warning() {
        eprintln!("{warning}");
    }
    let env = args
        .env
        .as_deref()
        .map(|name| super::env::find(&store, name))
        .transpose()?;
    // `--env NAME` (the latest version): say when its files changed since.
    let latest = args.env.as_deref().is_some_and(|name| !name.contains(':'));
    if let Some(why) = env
        .as_ref()
        .filter(|_| latest)
        .and_then(super::env::changed_since)
    {
        let env = env.as_ref().expect("checked above");
        eprintln!(
            "moor: warning: {why}; this run uses {} as it was. `moor env create {} ...` again makes version {}",
            env.id(),
            env.name,
            env.version + 1
        );
    }
    // The environment's variables (a conda file's `variables:`), under the run's own.
    let variables = match &env {
        Some(env) => {
            let mut all = env.spec.variables();
            all.extend(variables);
            all
        }
        None => variables,
    };
    let spark = spark_spec(args, &target, env.as_ref())?;
    let a = &args.assets;
    if env.is_none() && (a.channel_dir.is_some() || a.wheelhouse.is_some() || a.use_host_conda) {
        return Err(Error::usage(
            "--channel-dir, --wheelhouse and --use-host-conda say how an environment is built, and no --env was given",
            "add --env ENV, or drop them",
        ));
    }
    let access = Access::from_args(&args.connect)?;
    let conn = ctx.targets.connect(&target, &access).await?;
    if let Some(env) = &env {
        // A cache hit is one request; otherwise the build log shows first.
        prepare_on(&conn, ctx, &target, env, &Assets::from(&args.assets)).await?;
    }
    let spec = RunSpec {
        name: args.name.clone().or_else(|| default_name(&args.command)),
        snapshot: snap.sha256.clone(),
        command: args.command.clone(),
        env: variables,
        environment: env.as_ref().map(|e| e.hash.clone()),
        spark,
        gpus: args.gpus,
        experiment: args.experiment.clone(),
        ..RunSpec::default()
    };
    let progress = crate::transfer::Transfer::new("source snapshot", Some(snap.size));
    let (sent, StartedRun { run, log }) = conn
        .agent
        .start_with_snapshot(&snap, spec, !args.detach, &progress)
        .await?;
    drop(progress);
    tracing::info!(sha256 = %snap.sha256, files = snap.files, sent, "snapshot");
    store.record_run(&run, &target.name)?;
    Ok(Started {
        run,
        target,
        access,
        conn,
        log,
        snapshot: snap.sha256,
        sent,
    })
}

/// A run's name when `--name` is not given: the script's name without its
/// extension (`python3 train.py` → `train`, `bash -x prep.sh` → `prep`), else
/// the program's (`nvidia-smi`).
fn default_name(command: &[String]) -> Option<String> {
    let stem = |s: &str| {
        let file = s.rsplit('/').next().unwrap_or(s);
        file.split('.').next().unwrap_or(file).to_owned()
    };
    let program = stem(command.first()?);
    let interpreters = [
        "python", "python3", "bash", "sh", "Rscript", "julia", "node", "torchrun",
    ];
    let script = interpreters
        .iter()
        .any(|i| program == *i || program.starts_with("python3"))
        .then(|| command[1..].iter().find(|a| !a.starts_with('-')))
        .flatten()
        .filter(|a| a.contains('.') || a.contains('/'));
    Some(script.map_or(program, |s| stem(s))).filter(|n| !n.is_empty())
}

/// The Spark settings of `moor run --spark`: the master defaults to YARN on
/// an HDInsight target, to local mode elsewhere.
fn spark_spec(args: &RunArgs, target: &Target, env: Option<&Env>) -> Result<Option<SparkSpec>> {
    if !args.spark {
        return Ok(None);
    }
    if let Some(env) = env.filter(|e| e.kind == moor_proto::env::EnvKind::Docker) {
        return Err(Error::usage(
            format!(
                "--spark runs spark-submit on the host; environment {} is a Docker image",
                env.name
            ),
            "use a conda or pip environment with --spark, or none",
        ));
    }
    for conf in &args.spark_conf {
        let key = conf.split_once('=').map(|(k, _)| k.trim());
        if key.is_none_or(str::is_empty) {
            return Err(Error::usage(
                format!("--spark-conf {conf:?} is not KEY=VALUE"),
                "write it as --spark-conf spark.executor.memory=4g",
            ));
        }
    }
    let master = args.spark_master.clone().unwrap_or_else(|| {
        if target.kind == TargetKind::Hdinsight {
            "yarn".into()
        } else {
            "local[*]".into()
        }
    });
    Ok(Some(SparkSpec {
        master,
        conf: args.spark_conf.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::default_name;

    fn name(argv: &[&str]) -> Option<String> {
        default_name(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_run_is_named_after_its_script_or_program() {
        assert_eq!(name(&["python3", "train.py"]).as_deref(), Some("train"));
        assert_eq!(
            name(&["python3", "-u", "src/fit.py", "--lr", "3"]).as_deref(),
            Some("fit")
        );
        assert_eq!(
            name(&["/usr/bin/python3.11", "x/eval.py"]).as_deref(),
            Some("eval")
        );
        assert_eq!(name(&["bash", "-x", "prep.sh"]).as_deref(), Some("prep"));
        assert_eq!(name(&["sh", "-c", "echo hi"]).as_deref(), Some("sh"));
        assert_eq!(name(&["nvidia-smi"]).as_deref(), Some("nvidia-smi"));
        assert_eq!(name(&["./train.sh"]).as_deref(), Some("train"));
        assert_eq!(name(&[]), None);
    }
}
