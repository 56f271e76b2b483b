//! `moor job submit FILE.yml`, `moor run -f FILE.yml`, and `moor run` on
//! several targets or a pool: plans the job (targets, sources, inputs,
//! environment, distribution), gang-starts it ([`crate::job::launch`]) and
//! follows every node ([`crate::job::watch`]). Ctrl-C detaches; the job goes
//! on.

use std::collections::BTreeMap;
use std::path::Path;

use super::env_build::Assets;
use super::run::Ran;
use super::Context;
use crate::cli::{
    DistributionKind, JobFlags, JobSubmitArgs, PrepareAssetArgs, RunArgs, TargetArgs,
};
use crate::error::{Error, Result};
use crate::job::{self, watch, Distribution, JobPlan};
use crate::jobfile::Environment;
use crate::snapshot;
use crate::store::{Env, Store, Target};
use crate::target::Access;

/// `moor run`: one run on one target ([`super::run`]), or a job.
pub async fn run_or_job(args: &RunArgs, ctx: &Context) -> Result<Ran> {
    if is_job(args, &ctx.store()?)? {
        run(args, ctx).await
    } else {
        super::run::run(args, ctx).await
    }
}

/// Whether `moor run` with these flags is a job rather than one run.
fn is_job(args: &RunArgs, store: &Store) -> Result<bool> {
    Ok(args.file.is_some()
        || args.pool.is_some()
        || args.target.len() > 1
        || args.job.distribution.is_some()
        || args.job.processes_per_node.is_some()
        || args.nodes.is_some()
        || match args.target.as_slice() {
            [one] => store.target(one)?.is_none() && store.pool(one)?.is_some(),
            _ => false,
        })
}

/// Where a job runs, as asked.
struct Placement<'a> {
    targets: &'a [String],
    pool: Option<&'a str>,
    nodes: Option<u32>,
}

/// The job's targets (node 0 first) and the pool they came from.
fn place(ctx: &Context, store: &Store, p: &Placement<'_>) -> Result<(Vec<Target>, Option<String>)> {
    let pool_name = p.pool.map(str::to_owned).or_else(|| match p.targets {
        [one]
            if store.target(one).ok().flatten().is_none()
                && store.pool(one).ok().flatten().is_some() =>
        {
            Some(one.clone())
        }
        _ => None,
    });
    let names: Vec<String> = match &pool_name {
        Some(name) => super::pool::find(store, name)?.targets,
        None => p.targets.to_vec(),
    };
    if names.is_empty() {
        return Err(Error::usage(
            "the job names no target",
            "pass --target NAME (repeatable) or --pool NAME, or set `compute:` in the job file",
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::usage(
                format!("target {name} is named twice"),
                "name each node's target once",
            ));
        }
    }
    let wanted = p.nodes.map_or(names.len(), |n| n as usize);
    if wanted > names.len() {
        let of = match &pool_name {
            Some(pool) => format!("pool {pool} has {}", names.len()),
            None => format!("{} given", names.len()),
        };
        return Err(Error::usage(
            format!("the job asks for {wanted} nodes; {of} target(s)"),
            "add targets (--target, `moor pool create`), or ask for fewer nodes (--nodes, resources.instance_count)",
        ));
    }
    let targets = names[..wanted]
        .iter()
        .map(|n| ctx.targets.named(store, n))
        .collect::<Result<Vec<_>>>()?;
    Ok((targets, pool_name))
}

/// The distribution the flags ask for.
fn distribution(flags: &JobFlags) -> Option<Distribution> {
    let p = flags.processes_per_node.unwrap_or(1);
    match flags.distribution {
        Some(DistributionKind::Pytorch) => Some(Distribution::Pytorch {
            processes_per_node: p,
        }),
        Some(DistributionKind::Mpi) => Some(Distribution::Mpi {
            processes_per_node: p,
        }),
        Some(DistributionKind::Tensorflow) => Some(Distribution::Tensorflow {
            workers: 0,
            parameter_servers: 0,
        }),
        // Processes per node alone: moor starts them, torch-style.
        None => flags.processes_per_node.map(|p| Distribution::Pytorch {
            processes_per_node: p,
        }),
    }
}

/// Checks what moor cannot run (yet), before anything is sent.
fn check(plan: &JobPlan) -> Result<()> {
    let docker = plan
        .env
        .as_ref()
        .is_some_and(|e| e.kind == moor_proto::env::EnvKind::Docker);
    if docker && matches!(plan.distribution, Some(Distribution::Mpi { .. })) {
        return Err(Error::usage(
            "MPI jobs run mpirun on the host; the environment is a Docker image",
            "use a conda or pip environment (or none) for distribution type mpi",
        ));
    }
    Ok(())
}

/// The environment a job file names, made a moor environment on first use
/// when it is inline (`job-<file stem>`, a new version when it changes).
fn file_env(ctx: &Context, store: &Store, env: &Environment, file: &Path) -> Result<Env> {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    let name: String = format!("job-{stem}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let create = |args: crate::cli::EnvCreateArgs| -> Result<Env> {
        let created = super::env::create(&args, ctx)?;
        eprintln!("moor: the job's inline environment is {}", created.env.id());
        Ok(created.env)
    };
    let blank = |name: String| crate::cli::EnvCreateArgs {
        name,
        docker_base: None,
        dockerfile: None,
        docker_context: None,
        build_arg: Vec::new(),
        conda_file: None,
        pip_requirements: None,
        user_managed: false,
    };
    match env {
        Environment::Named { name, version } => {
            let key = match version {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            super::env::find(store, &key)
        }
        Environment::Image { image, conda_file } => create(crate::cli::EnvCreateArgs {
            docker_base: Some(image.clone()),
            conda_file: conda_file.clone(),
            user_managed: conda_file.is_none(),
            ..blank(name)
        }),
        Environment::Build {
            context,
            dockerfile,
        } => create(crate::cli::EnvCreateArgs {
            docker_context: Some(context.clone()),
            dockerfile: dockerfile.as_ref().map(|d| context.join(d)),
            ..blank(name)
        }),
    }
}

/// `moor run` as a job: several targets, a pool, a distribution, or `-f`.
pub async fn run(args: &RunArgs, ctx: &Context) -> Result<Ran> {
    let store = ctx.store()?;
    let max = args.max_snapshot_size << 20;
    let mut variables = crate::run_env::collect(&args.env_vars, args.env_file.as_deref())?;
    let env = args
        .env
        .as_deref()
        .map(|n| super::env::find(&store, n))
        .transpose()?;
    let plan = match &args.file {
        Some(file) => {
            let read = job::plan::read(file, &args.set, max, &ctx.workspace.snapshot_index())?;
            let placement = Placement {
                targets: &args.target,
                pool: args.pool.as_deref(),
                nodes: args.nodes.or(Some(read.file.instance_count)),
            };
            let mut plan = file_plan(
                ctx, &store, file, read, &placement, env, variables, &args.job,
            )?;
            if args.experiment.is_some() {
                plan.experiment = args.experiment.clone();
            }
            plan
        }
        None => {
            let (targets, pool) = place(
                ctx,
                &store,
                &Placement {
                    targets: &args.target,
                    pool: args.pool.as_deref(),
                    nodes: args.nodes,
                },
            )?;
            if let Some(env) = &env {
                let mut all = env.spec.variables();
                all.append(&mut variables);
                variables = all;
            }
            let snap =
                snapshot::pack_source(&args.source_dir, max, &ctx.workspace.snapshot_index())?;
            if let Some(warning) = snap.skipped_warning() {
                eprintln!("{warning}");
            }
            JobPlan {
                name: args.name.clone(),
                experiment: args.experiment.clone(),
                command: args.command.clone(),
                snapshot: Some(snap),
                inputs: BTreeMap::new(),
                url_inputs: BTreeMap::new(),
                outputs: Vec::new(),
                env,
                variables,
                distribution: distribution(&args.job),
                targets,
                pool,
                master_addr: args.job.master_addr.clone(),
                gpus: args.gpus,
            }
        }
    };
    go(plan, ctx, &args.connect, &args.assets, args.detach).await
}

/// `moor job submit FILE.yml`.
pub async fn submit(args: &JobSubmitArgs, ctx: &Context) -> Result<Ran> {
    let store = ctx.store()?;
    let read = job::plan::read(
        &args.file,
        &args.set,
        snapshot::DEFAULT_MAX_BYTES,
        &ctx.workspace.snapshot_index(),
    )?;
    let placement = Placement {
        targets: &args.target,
        pool: args.pool.as_deref(),
        nodes: args.nodes.or(Some(read.file.instance_count)),
    };
    let mut plan = file_plan(
        ctx,
        &store,
        &args.file,
        read,
        &placement,
        None,
        BTreeMap::new(),
        &args.job_flags(),
    )?;
    plan.gpus = args.gpus;
    go(
        plan,
        ctx,
        &args.connect,
        &PrepareAssetArgs::default(),
        args.detach,
    )
    .await
}

/// A job file's plan.
#[allow(clippy::too_many_arguments)]
fn file_plan(
    ctx: &Context,
    store: &Store,
    path: &Path,
    read: job::plan::FileJob,
    placement: &Placement<'_>,
    env: Option<Env>,
    extra: BTreeMap<String, String>,
    flags: &JobFlags,
) -> Result<JobPlan> {
    let file = &read.file;
    let compute = file.compute.clone().map(|c| vec![c]).unwrap_or_default();
    let placement = Placement {
        targets: if placement.targets.is_empty() && placement.pool.is_none() {
            &compute
        } else {
            placement.targets
        },
        ..*placement
    };
    let (targets, pool) = place(ctx, store, &placement)?;
    let env = match (env, &file.environment) {
        (Some(env), _) => Some(env),
        (None, Some(e)) => Some(file_env(ctx, store, e, path)?),
        (None, None) => None,
    };
    let mut variables = env.as_ref().map(|e| e.spec.variables()).unwrap_or_default();
    variables.extend(file.environment_variables.clone());
    variables.extend(extra);
    Ok(JobPlan {
        name: file.display_name.clone(),
        experiment: file.experiment_name.clone(),
        command: read.command.clone(),
        snapshot: read.snapshot,
        inputs: read.inputs,
        url_inputs: read.url_inputs,
        outputs: file.outputs.clone(),
        env,
        variables,
        distribution: file.distribution.clone().or_else(|| distribution(flags)),
        targets,
        pool,
        master_addr: flags.master_addr.clone(),
        gpus: 0,
    })
}

/// Launches the plan and follows it (or returns at once with `detach`).
async fn go(
    plan: JobPlan,
    ctx: &Context,
    connect: &TargetArgs,
    assets: &PrepareAssetArgs,
    detach: bool,
) -> Result<Ran> {
    check(&plan)?;
    let mut interrupt = super::run::ctrl_c()?;
    let access = Access::from_args(connect)?;
    let a = Assets::from(assets);
    let launched = tokio::select! {
        launched = job::launch(&plan, ctx, &access, &a) => launched?,
        _ = interrupt.recv() => {
            eprintln!("moor: interrupted before the job started; nothing runs");
            return Ok(Ran::Interrupted { id: None, interrupted: true });
        }
    };
    let record = launched.record;
    let snapshot = plan
        .snapshot
        .as_ref()
        .map(|s| s.sha256.clone())
        .unwrap_or_default();
    let nodes = record.nodes.len();
    if detach {
        for conn in launched.conns {
            conn.close().await;
        }
        return Ok(Ran::Started {
            id: record.id,
            target: record
                .nodes
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            snapshot,
            snapshot_bytes_sent: launched.sent,
        });
    }
    eprintln!(
        "moor: job {} on {nodes} node(s) ({}), master {}; {} bytes sent; Ctrl-C detaches",
        record.id,
        record
            .nodes
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        record.master_addr,
        launched.sent
    );
    let watched: Vec<watch::Node> = plan
        .targets
        .iter()
        .zip(launched.conns)
        .zip(&launched.runs)
        .enumerate()
        .map(|(rank, ((target, conn), run))| watch::Node {
            rank,
            target: target.clone(),
            run_id: run.id.clone(),
            conn: Some(conn),
        })
        .collect();
    tokio::select! {
        ended = watch::follow_nodes(&ctx.targets, &access, watched, 0, true, ctx.json, 10) => {
            let heard: Vec<moor_proto::RunInfo> = ended.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
            ctx.store()?.heard_runs(&heard)?;
            let row = super::jobs::summarize(&record, ended)?;
            Ok(Ran::Ended { run: Box::new(row), snapshot_bytes_sent: launched.sent })
        }
        _ = interrupt.recv() => {
            eprintln!(
                "moor: detached; job {} goes on. Follow it again with: moor logs {} --follow",
                record.id, record.id
            );
            Ok(Ran::Interrupted { id: Some(record.id), interrupted: true })
        }
    }
}
