//! From an [`Ask`] to a [`RunPlan`]: every option decided once, for every
//! path. Options that mean nothing where they were given are refused
//! (exit 2) before anything is packed or sent; none is dropped.

use std::collections::BTreeMap;

use moor_proto::env::EnvKind;
use moor_proto::SparkSpec;

use super::file::{self, FileJob};
use super::place::{self, Placement};
use super::{serve, Ask, Payloads, RunPlan};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::snapshot;
use crate::store::{Env, Store};
use crate::target_kind::TargetKind;

/// Resolves `ask` into a plan and the content it names (see the module's doc).
pub fn build(ask: &Ask, ctx: &Context) -> Result<(RunPlan, Payloads)> {
    refuse_mismatches(ask)?;
    let store = ctx.store()?;
    let job = ask.serve.is_none() && ask.is_job(place::names_a_pool(&store, &ask.targets)?);
    let mut file = ask
        .file
        .as_ref()
        .map(|(path, set)| {
            file::read(
                path,
                set,
                (ask.max_snapshot_bytes, ask.keys),
                &ctx.workspace.snapshot_index(),
            )
        })
        .transpose()?;
    let compute: Vec<String> = file
        .as_ref()
        .and_then(|f| f.file.compute.clone())
        .into_iter()
        .collect();
    let (nodes, pool) = place::place(
        ctx,
        &store,
        &Placement {
            targets: if ask.targets.is_empty() && ask.pool.is_none() {
                &compute
            } else {
                &ask.targets
            },
            pool: ask.pool.as_deref(),
            nodes: ask
                .nodes
                .or(file.as_ref().map(|f| f.file.instance_count))
                .or((!job).then_some(1)),
        },
    )?;
    refuse_spark_on_many(ask, &nodes)?;
    let env = environment(ask, ctx, &store, file.as_ref())?;
    let target = ctx.targets.named(&store, &nodes[0])?;
    let mut payloads = Payloads::default();
    let serve = match &ask.serve {
        Some(s) => Some(serve::serve(ctx, &store, ask, s, &target, &mut payloads)?),
        None => None,
    };
    let env = match &ask.serve {
        Some(s) => serve::endpoint_env(env, s)?,
        None => env,
    };
    let variables = variables(ask, env.as_ref(), file.as_ref())?;
    let source = match file.as_mut() {
        Some(f) => f.snapshot.take(),
        None => Some(pack(ask, ctx)?),
    };
    let (command, name, experiment, distribution) = match &mut file {
        Some(f) => (
            f.command.clone(),
            ask.name.clone().or(f.file.display_name.clone()),
            ask.experiment.clone().or(f.file.experiment_name.clone()),
            f.file
                .distribution
                .clone()
                .or_else(|| place::distribution(&ask.job)),
        ),
        None => (
            ask.command.clone(),
            ask.name.clone().or_else(|| default_name(&ask.command)),
            ask.experiment.clone(),
            place::distribution(&ask.job),
        ),
    };
    // A name given is checked; one made from the command is dropped when
    // it would not do (a newline in `sh -c` text).
    let name = match name {
        Some(name)
            if ask.name.is_some()
                || file.as_ref().is_some_and(|f| f.file.display_name.is_some()) =>
        {
            crate::limits::check_name(&name)?;
            Some(name)
        }
        Some(name) => crate::limits::check_name(&name).is_ok().then_some(name),
        None => None,
    };
    let plan = RunPlan {
        spark: spark_spec(ask, target.kind, env.as_ref())?,
        name: if serve.is_some() { None } else { name },
        experiment,
        command,
        pool,
        job,
        source: source.map(|s| payloads.add(s)),
        inputs: file
            .as_mut()
            .map(|f| std::mem::take(&mut f.inputs))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, s)| (k, payloads.add(s)))
            .collect(),
        url_inputs: file
            .as_ref()
            .map(|f| f.url_inputs.clone())
            .unwrap_or_default(),
        outputs: file
            .as_ref()
            .map(|f| f.file.outputs.clone())
            .unwrap_or_default(),
        env,
        variables,
        distribution,
        master_addr: ask.job.master_addr.clone(),
        gpus: ask.gpus,
        serve,
        nodes,
    };
    check(&plan)?;
    Ok((plan, payloads))
}

/// Refuses flags that mean nothing together, before anything is read.
fn refuse_mismatches(ask: &Ask) -> Result<()> {
    if ask.file.is_some() && ask.source_dir.is_some() {
        return Err(Error::usage(
            "--source-dir with a job file: the file's `code` says where its source is",
            "drop --source-dir, or set `code:` in the job file",
        ));
    }
    if ask.spark.is_some() && ask.file.is_some() {
        return Err(Error::usage(
            "--spark submits a script with spark-submit; a job file's command is a shell line",
            "run the script with `moor run --spark --target HEAD -- script.py ARGS`",
        ));
    }
    if ask.env.is_none() && ask.build_assets {
        return Err(Error::usage(
            "--channel-dir, --wheelhouse and --use-host-conda say how an environment is built, and no --env was given",
            "add --env ENV, or drop them",
        ));
    }
    Ok(())
}

/// `--spark` runs on one head node: refused on several nodes or with a
/// distribution, before anything is packed.
fn refuse_spark_on_many(ask: &Ask, nodes: &[String]) -> Result<()> {
    let distributed = place::distribution(&ask.job).is_some();
    if ask.spark.is_none() || (nodes.len() < 2 && !distributed) {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "--spark runs spark-submit on one head node, which spreads the work itself; this run has {} node(s){}",
            nodes.len(),
            if distributed { " and a distribution" } else { "" }
        ),
        "give one --target (the head node) and no --distribution, --processes-per-node or --nodes above 1",
    ))
}

/// Refuses what the resolved plan cannot run, before anything is sent.
fn check(plan: &RunPlan) -> Result<()> {
    let docker = plan.env.as_ref().is_some_and(|e| e.kind == EnvKind::Docker);
    if docker && matches!(plan.distribution, Some(super::Distribution::Mpi { .. })) {
        return Err(Error::usage(
            "MPI jobs run mpirun on the host; the environment is a Docker image",
            "use a conda or pip environment (or none) for distribution type mpi",
        ));
    }
    Ok(())
}

/// The environment: `--env`, else the job file's (made on first use when
/// inline). `--env NAME` (the latest) says when its files changed since.
fn environment(
    ask: &Ask,
    ctx: &Context,
    store: &Store,
    file: Option<&FileJob>,
) -> Result<Option<Env>> {
    let Some(name) = ask.env.as_deref() else {
        let inline = file.and_then(|f| f.file.environment.as_ref());
        return match (inline, &ask.file) {
            (Some(e), Some((path, _))) => file::environment(ctx, store, e, path).map(Some),
            _ => Ok(None),
        };
    };
    let env = crate::envs::find(store, name)?;
    if !name.contains(':') {
        if let Some(why) = crate::envs::changed_since(&env) {
            eprintln!(
                "moor: warning: {why}; this run uses {} as it was. `moor env create {} ...` again makes version {}",
                env.id(),
                env.name,
                env.version + 1
            );
        }
    }
    Ok(Some(env))
}

/// The run's variables: the environment's (a conda file's `variables:`),
/// then the job file's, then `--env-file` and `-e` (each over the ones
/// before), then the job file's inputs (`MOOR_INPUT_NAME`, which its
/// command refers to).
fn variables(
    ask: &Ask,
    env: Option<&Env>,
    file: Option<&FileJob>,
) -> Result<BTreeMap<String, String>> {
    let mut all = env.map(|e| e.spec.variables()).unwrap_or_default();
    if let Some(f) = file {
        all.extend(f.file.environment_variables.clone());
    }
    all.extend(crate::run_env::collect(
        &ask.env_vars,
        ask.env_file.as_deref(),
    )?);
    if let Some(f) = file {
        all.extend(f.variables.clone());
    }
    crate::limits::check_variables(&all)?;
    Ok(all)
}

/// The source folder packed (what the host lacks is sent later).
fn pack(ask: &Ask, ctx: &Context) -> Result<snapshot::Snapshot> {
    let snap = snapshot::pack_source(
        &ask.source_dir(),
        ask.max_snapshot_bytes,
        &ctx.workspace.snapshot_index(),
        ask.keys,
    )?;
    if let Some(warning) = snap.skipped_warning() {
        eprintln!("{warning}");
    }
    Ok(snap)
}

/// A run's name when `--name` is not given: the script's name without its
/// extension (`python3 train.py` → `train`, `bash -x prep.sh` → `prep`), else
/// the program's (`nvidia-smi`).
pub fn default_name(command: &[String]) -> Option<String> {
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

/// The Spark settings of `--spark`: the master defaults to YARN on an
/// HDInsight target, to local mode elsewhere.
fn spark_spec(ask: &Ask, kind: TargetKind, env: Option<&Env>) -> Result<Option<SparkSpec>> {
    let Some(spark) = &ask.spark else {
        return Ok(None);
    };
    if let Some(env) = env.filter(|e| e.kind == EnvKind::Docker) {
        return Err(Error::usage(
            format!(
                "--spark runs spark-submit on the host; environment {} is a Docker image",
                env.name
            ),
            "use a conda or pip environment with --spark, or none",
        ));
    }
    for conf in &spark.conf {
        let key = conf.split_once('=').map(|(k, _)| k.trim());
        if key.is_none_or(str::is_empty) {
            return Err(Error::usage(
                format!("--spark-conf {conf:?} is not KEY=VALUE"),
                "write it as --spark-conf spark.executor.memory=4g",
            ));
        }
    }
    let master = spark.master.clone().unwrap_or_else(|| {
        if kind == TargetKind::Hdinsight {
            "yarn".into()
        } else {
            "local[*]".into()
        }
    });
    Ok(Some(SparkSpec {
        master,
        conf: spark.conf.clone(),
    }))
}
