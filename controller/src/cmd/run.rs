//! `moor run`, `runs`, `logs`, `cancel`, `download`, `status`: runs on
//! targets through their agents.
//!
//! `moor run` packs the source, uploads it only when the agent lacks that
//! hash, starts the run and follows its log. Following survives a broken
//! connection: it reconnects and resumes at the byte where it stopped, and a
//! quiet stream is checked with a ping so a dead link is noticed within
//! seconds, not at TCP's pace. Ctrl-C detaches; the run goes on.

use std::time::Duration;

use moor_proto::{Frame, Kind, Request, Response, RunInfo, RunSpec, RunState, SparkSpec};
use serde::Serialize;

use super::{find_target, resolve_target, Context};
use crate::agent_client::AgentConn;
use crate::checks::Kind as TargetKind;
use crate::cli::{AuthArgs, RunArgs};
use crate::error::{exit, Error, Result};
use crate::progress::LogSink;
use crate::snapshot;
use crate::ssh::{ConnectProgress, Session};
use crate::store::Target;

/// A quiet log stream is pinged after this long.
const QUIET: Duration = Duration::from_secs(5);
/// How often a status line redraws its clock while the log is quiet.
const TICK: Duration = Duration::from_millis(500);
/// A ping must come back within this long, or the link is dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `follow` keeps trying to reconnect.
const RECONNECT_FOR: Duration = Duration::from_secs(600);

/// The name that means this machine, without SSH.
pub const LOCAL: &str = "local";

/// A session (none for `local`) and the agent on it.
pub struct Connected {
    session: Option<Session>,
    /// The agent.
    pub agent: AgentConn,
}

impl Connected {
    /// Closes the SSH session.
    pub async fn close(self) {
        if let Some(session) = self.session {
            session.close().await;
        }
    }
}

/// The target called `name`: an attached one, or this machine for `local`.
pub fn target_named(store: &crate::store::Store, name: &str, ctx: &Context) -> Result<Target> {
    if name != LOCAL {
        return find_target(store, name, ctx);
    }
    let now = crate::time::now();
    Ok(Target {
        name: LOCAL.into(),
        kind: LOCAL.into(),
        host: "localhost".into(),
        port: 0,
        user: std::env::var("USER").unwrap_or_default(),
        auth: crate::store::AuthRef::Agent,
        resource_id: None,
        host_key_algorithm: String::new(),
        host_key_fingerprint: String::new(),
        machine_id: String::new(),
        agent_version: crate::agent_bundle::VERSION.into(),
        agent_build: crate::agent_bundle::sha256().into(),
        state: "ready".into(),
        facts: "{}".into(),
        checks: "[]".into(),
        created_at: now.clone(),
        updated_at: now,
    })
}

/// Connects to a target's agent (for `local`, to the agent on this machine).
pub async fn connect(
    ctx: &Context,
    target: &Target,
    auth: &AuthArgs,
    timeout: f64,
) -> Result<Connected> {
    if target.kind == LOCAL {
        return Ok(Connected {
            session: None,
            agent: AgentConn::open_local().await?,
        });
    }
    let resolved = resolve_target(target, auth, timeout, ctx)?;
    let session = Session::connect(
        &resolved.endpoint,
        resolved.options,
        &mut ConnectProgress::default(),
    )
    .await?;
    let install_id =
        crate::agent_bundle::install_id_for(&target.agent_version, &target.agent_build);
    let agent = AgentConn::open(&session, &install_id).await?;
    Ok(Connected {
        session: Some(session),
        agent,
    })
}

/// `moor run`: returns the exit code.
pub async fn run(args: &RunArgs, ctx: &Context) -> Result<u8> {
    // Ctrl-C is ours from the start: before the run starts it stops moor
    // (nothing was started), after it detaches.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::Io {
        what: "cannot handle Ctrl-C",
        path: std::path::PathBuf::from("SIGINT"),
        cause: e,
    })?;
    let (run, target, conn, snap, uploaded) = tokio::select! {
        started = start(args, ctx) => started?,
        _ = interrupt.recv() => {
            eprintln!("moor: interrupted before the run started; nothing runs");
            return Ok(130);
        }
    };
    if args.detach {
        #[derive(Serialize)]
        struct Started<'a> {
            id: &'a str,
            target: &'a str,
            snapshot: &'a str,
            snapshot_bytes_sent: usize,
        }
        if ctx.json {
            crate::output::json(&Started {
                id: &run.id,
                target: &target.name,
                snapshot: &snap.sha256,
                snapshot_bytes_sent: uploaded,
            });
        } else {
            crate::outln!("{}", run.id);
        }
        return Ok(exit::OK);
    }
    eprintln!(
        "moor: run {} on {} ({} source bytes sent); Ctrl-C detaches",
        run.id, target.name, uploaded
    );
    let hint = format!("moor logs {} --follow", run.id);
    tokio::select! {
        done = follow(ctx, &target, &args.auth, &run.id, 0, true, Some(conn)) => {
            let run = done?;
            if ctx.json {
                crate::output::json(&run_json(&run, &target.name));
            } else if let Some(app) = &run.yarn_application {
                eprintln!("moor: run {} was YARN application {app}", run.id);
            }
            Ok(exit_code(&run))
        }
        _ = interrupt.recv() => {
            eprintln!("moor: detached; run {} goes on. Follow it again with: {hint}", run.id);
            Ok(130)
        }
    }
}

/// Packs, connects, prepares the environment, uploads, starts the run.
async fn start(
    args: &RunArgs,
    ctx: &Context,
) -> Result<(RunInfo, Target, Connected, snapshot::Snapshot, usize)> {
    let store = ctx.workspace.store()?;
    let target = target_named(&store, &args.target, ctx)?;
    let snap = snapshot::pack(&args.source_dir, args.max_snapshot_size << 20)?;
    let env = args
        .env
        .as_deref()
        .map(|name| {
            store
                .env(name)?
                .ok_or_else(|| Error::NoEnv { name: name.into() })
        })
        .transpose()?;
    let spark = spark_spec(args, &target, env.as_ref())?;
    let a = &args.assets;
    if env.is_none() && (a.channel_dir.is_some() || a.wheelhouse.is_some() || a.use_host_conda) {
        return Err(Error::usage(
            "--channel-dir, --wheelhouse and --use-host-conda say how an environment is built, and no --env was given",
            "add --env ENV, or drop them",
        ));
    }
    let conn = connect(ctx, &target, &args.auth, args.connect_timeout).await?;
    let agent = &conn.agent;
    if let Some(env) = &env {
        // A cache hit is one request; otherwise the build log shows first.
        let assets = super::env::Assets::from(&args.assets);
        super::env::prepare_on(&conn, &store, &target, env, &assets).await?;
    }
    let uploaded = upload_snapshot(agent, &snap).await?;
    tracing::info!(sha256 = %snap.sha256, files = snap.files, uploaded, "snapshot");
    let spec = RunSpec {
        name: args.name.clone(),
        snapshot: snap.sha256.clone(),
        command: args.command.clone(),
        env: Default::default(),
        environment: env.as_ref().map(|e| e.hash.clone()),
        spark,
    };
    let run = match agent.call(&Request::StartRun { spec }).await? {
        Response::Run { run } => run,
        other => return Err(unexpected(&target, other)),
    };
    store.record_run(&run, &target.name)?;
    Ok((run, target, conn, snap, uploaded))
}

/// The Spark settings of `moor run --spark`: the master defaults to YARN on
/// an HDInsight target, to local mode elsewhere.
fn spark_spec(
    args: &RunArgs,
    target: &Target,
    env: Option<&crate::store::Env>,
) -> Result<Option<SparkSpec>> {
    if !args.spark {
        return Ok(None);
    }
    if let Some(env) = env.filter(|e| e.kind == "docker") {
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
        if TargetKind::from_stored(&target.kind) == TargetKind::Hdinsight {
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

/// Uploads a snapshot unless the agent has it; returns the bytes sent.
pub async fn upload_snapshot(agent: &AgentConn, snap: &snapshot::Snapshot) -> Result<usize> {
    if let Response::Snapshot { present: true } = agent
        .call(&Request::HasSnapshot {
            sha256: snap.sha256.clone(),
        })
        .await?
    {
        return Ok(0);
    }
    let (id, mut rx) = agent
        .request(&Request::PutSnapshot {
            sha256: snap.sha256.clone(),
            size: snap.bytes.len() as u64,
        })
        .await?;
    for chunk in snap.bytes.chunks(1 << 20) {
        agent.write(&Frame::data(id, chunk.to_vec())).await?;
    }
    agent.write(&Frame::end(id)).await?;
    match tokio::time::timeout(crate::agent_client::CALL_TIMEOUT, agent.response(&mut rx))
        .await
        .map_err(|_| agent.lost("the snapshot upload was not acknowledged"))??
    {
        Response::Snapshot { present: true } => Ok(snap.bytes.len()),
        other => Err(agent.lost(format!("snapshot upload refused: {other:?}"))),
    }
}

/// The exit code `moor run` ends with for a finished run.
pub fn exit_code(run: &RunInfo) -> u8 {
    match (run.exit_code, run.signal) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        (None, None) => 1,
    }
}

/// An answer of the agent that does not fit the request (its refusals are
/// errors already: see `AgentConn::response`).
pub(super) fn unexpected(target: &Target, response: Response) -> Error {
    Error::Remote {
        host: target.host.clone(),
        step: "agent request",
        cause: format!("unexpected answer {response:?}"),
        fix: "run `moor attach` again to update the agent".into(),
    }
}

/// Streams a run's log to stdout from `offset`, reconnecting when the link
/// breaks; returns the run once the stream ends (with `follow`, when the run
/// has ended).
pub async fn follow(
    ctx: &Context,
    target: &Target,
    auth: &AuthArgs,
    run_id: &str,
    mut offset: u64,
    follow: bool,
    mut conn: Option<Connected>,
) -> Result<RunInfo> {
    // With --json, stdout is for the JSON result: the log goes to stderr.
    let mut sink = if ctx.json {
        LogSink::Stderr
    } else {
        LogSink::Stdout
    };
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let c = match conn.take() {
            Some(c) => c,
            None => match connect(ctx, target, auth, 10.0).await {
                Ok(c) => c,
                Err(e)
                    if started.elapsed() < RECONNECT_FOR && e.exit_code() == exit::UNREACHABLE =>
                {
                    tracing::info!("reconnecting to {}: {e}", target.name);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        match stream_log(&c.agent, run_id, &mut offset, follow, &mut sink).await {
            Ok(()) => {
                let run = match c
                    .agent
                    .call(&Request::GetRun {
                        run_id: run_id.to_owned(),
                    })
                    .await?
                {
                    Response::Run { run } => run,
                    other => return Err(unexpected(target, other)),
                };
                c.close().await;
                return Ok(run);
            }
            Err(e) if e.exit_code() == exit::UNREACHABLE && started.elapsed() < RECONNECT_FOR => {
                eprintln!(
                    "moor: connection to {} lost ({e}); resuming at byte {offset}",
                    target.name
                );
                backoff = Duration::from_millis(200);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt at streaming; `offset` advances with every byte written.
pub async fn stream_log(
    agent: &AgentConn,
    run_id: &str,
    offset: &mut u64,
    follow: bool,
    sink: &mut LogSink,
) -> Result<()> {
    let (_, mut rx) = agent
        .request(&Request::ReadLog {
            run_id: run_id.to_owned(),
            offset: *offset,
            follow,
        })
        .await?;
    tokio::time::timeout(crate::agent_client::CALL_TIMEOUT, agent.response(&mut rx))
        .await
        .map_err(|_| agent.lost("the log stream did not start"))??;
    let mut heard = tokio::time::Instant::now();
    loop {
        let frame = match tokio::time::timeout(TICK, rx.recv()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(agent.lost("the agent closed the stream")),
            Err(_) => {
                sink.tick();
                if heard.elapsed() < QUIET {
                    continue;
                }
                // Quiet: is the link alive?
                match tokio::time::timeout(PING_TIMEOUT, agent.call(&Request::Ping)).await {
                    Ok(Ok(Response::Pong)) => {
                        heard = tokio::time::Instant::now();
                        continue;
                    }
                    _ => return Err(agent.lost("no answer to a ping")),
                }
            }
        };
        heard = tokio::time::Instant::now();
        match frame.kind {
            Kind::Data => {
                sink.write(&frame.payload, !rx.is_empty());
                *offset += frame.payload.len() as u64;
            }
            Kind::End => return Ok(()),
            _ => return Err(agent.lost("unexpected frame in a log stream")),
        }
    }
}

/// A run as `moor runs --json` prints it.
#[derive(Debug, Serialize)]
pub struct RunJson<'a> {
    /// Run id.
    pub id: &'a str,
    /// Target name.
    pub target: &'a str,
    /// The run's name.
    pub name: Option<&'a str>,
    /// State.
    pub state: RunState,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal.
    pub signal: Option<i32>,
    /// Command.
    pub command: &'a [String],
    /// Times.
    pub created_at: &'a str,
    /// Started.
    pub started_at: Option<&'a str>,
    /// Ended.
    pub ended_at: Option<&'a str>,
    /// A Spark run's master and settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark: Option<&'a moor_proto::SparkSpec>,
    /// A Spark run's YARN application, once submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yarn_application: Option<&'a str>,
}

fn run_json<'a>(run: &'a RunInfo, target: &'a str) -> RunJson<'a> {
    RunJson {
        id: &run.id,
        target,
        name: run.name.as_deref(),
        state: run.state,
        exit_code: run.exit_code,
        signal: run.signal,
        command: &run.command,
        created_at: &run.created_at,
        started_at: run.started_at.as_deref(),
        ended_at: run.ended_at.as_deref(),
        spark: run.spark.as_ref(),
        yarn_application: run.yarn_application.as_deref(),
    }
}

/// `moor runs`.
pub async fn list(ctx: &Context, only: Option<&str>) -> Result<u8> {
    let store = ctx.workspace.store()?;
    let targets = match only {
        Some(name) => vec![target_named(&store, name, ctx)?],
        None => {
            let mut targets = store.targets()?;
            if store.has_runs_on(LOCAL)? {
                targets.push(target_named(&store, LOCAL, ctx)?);
            }
            targets
        }
    };
    let mut all: Vec<(RunInfo, String)> = Vec::new();
    let mut code = exit::OK;
    for target in &targets {
        let result = async {
            let c = connect(ctx, target, &AuthArgs::default(), 10.0).await?;
            let runs = match c.agent.call(&Request::ListRuns).await? {
                Response::Runs { runs } => runs,
                other => return Err(unexpected(target, other)),
            };
            c.close().await;
            Ok(runs)
        }
        .await;
        match result {
            Ok(runs) => all.extend(runs.into_iter().map(|r| (r, target.name.clone()))),
            Err(e) => {
                eprintln!("{} (target {})", crate::output::error_line(&e), target.name);
                code = e.exit_code();
            }
        }
    }
    all.sort_by(|a, b| b.0.created_at.cmp(&a.0.created_at));
    if ctx.json {
        let rows: Vec<RunJson> = all.iter().map(|(r, t)| run_json(r, t)).collect();
        crate::output::json(&rows);
    } else {
        crate::outln!(
            "{:<26}  {:<12}  {:<10}  {:>4}  COMMAND",
            "RUN",
            "TARGET",
            "STATE",
            "EXIT"
        );
        for (r, t) in &all {
            let exit = r
                .exit_code
                .map(|c| c.to_string())
                .or(r.signal.map(|s| format!("s{s}")))
                .unwrap_or_default();
            let state = serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            // A Spark run shows as what it is: a spark-submit (and its YARN
            // application, once known).
            let command = match (&r.spark, &r.yarn_application) {
                (Some(_), Some(app)) => format!("spark-submit {} ({app})", r.command.join(" ")),
                (Some(_), None) => format!("spark-submit {}", r.command.join(" ")),
                (None, _) => r.command.join(" "),
            };
            crate::outln!(
                "{:<26}  {:<12}  {:<10}  {:>4}  {command}",
                r.id,
                t,
                state,
                exit,
            );
        }
    }
    Ok(code)
}

fn run_target(ctx: &Context, run_id: &str) -> Result<Target> {
    let store = ctx.workspace.store()?;
    let name = store.run_target(run_id)?.ok_or_else(|| {
        Error::usage(
            format!(
                "no run {run_id:?} was started from workspace {}",
                ctx.workspace.dir().display()
            ),
            "see `moor runs` for run ids",
        )
    })?;
    target_named(&store, &name, ctx)
}

/// `moor logs RUN [--follow]`.
pub async fn logs(ctx: &Context, run_id: &str, follow_on: bool, offset: u64) -> Result<u8> {
    let target = run_target(ctx, run_id)?;
    let run = follow(
        ctx,
        &target,
        &AuthArgs::default(),
        run_id,
        offset,
        follow_on,
        None,
    )
    .await?;
    Ok(if follow_on && run.state.is_final() {
        exit_code(&run)
    } else {
        exit::OK
    })
}

/// `moor cancel RUN`.
pub async fn cancel(ctx: &Context, run_id: &str, grace: u32) -> Result<u8> {
    let target = run_target(ctx, run_id)?;
    let c = connect(ctx, &target, &AuthArgs::default(), 10.0).await?;
    let request = Request::Cancel {
        run_id: run_id.to_owned(),
        grace_secs: grace,
    };
    let limit = crate::agent_client::CALL_TIMEOUT + Duration::from_secs(grace.into());
    let run = match c.agent.call_within(&request, limit).await? {
        Response::Run { run } => run,
        other => return Err(unexpected(&target, other)),
    };
    c.close().await;
    if ctx.json {
        crate::output::json(&run_json(&run, &target.name));
    } else {
        crate::outln!("run {}: {:?}", run.id, run.state);
    }
    Ok(exit::OK)
}

/// `moor download RUN [--to DIR]`.
pub async fn download(ctx: &Context, run_id: &str, to: Option<std::path::PathBuf>) -> Result<u8> {
    let target = run_target(ctx, run_id)?;
    let dest = to.unwrap_or_else(|| std::path::PathBuf::from("moor-outputs").join(run_id));
    let c = connect(ctx, &target, &AuthArgs::default(), 10.0).await?;
    let (_, mut rx) = c
        .agent
        .request(&Request::Download {
            run_id: run_id.to_owned(),
        })
        .await?;
    let limit = crate::agent_client::CALL_TIMEOUT;
    tokio::time::timeout(limit, c.agent.response(&mut rx))
        .await
        .map_err(|_| c.agent.lost("the download did not start"))??;
    let mut bytes = Vec::new();
    loop {
        let frame = rx
            .recv()
            .await
            .ok_or_else(|| c.agent.lost("the agent closed the download"))?;
        match frame.kind {
            Kind::Data => bytes.extend_from_slice(&frame.payload),
            _ => break,
        }
    }
    c.close().await;
    let io = |cause| Error::Io {
        what: "cannot write the outputs",
        path: dest.clone(),
        cause,
    };
    std::fs::create_dir_all(&dest).map_err(io)?;
    tar::Archive::new(&bytes[..]).unpack(&dest).map_err(io)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({"run": run_id, "to": dest, "bytes": bytes.len()}));
    } else {
        crate::outln!("outputs of {run_id} in {}", dest.display());
    }
    Ok(exit::OK)
}

/// `moor status [TARGET...]`: every target at once.
pub async fn status(ctx: &Context, names: &[String]) -> Result<u8> {
    let store = ctx.workspace.store()?;
    let targets = if names.is_empty() {
        store.targets()?
    } else {
        names
            .iter()
            .map(|n| target_named(&store, n, ctx))
            .collect::<Result<_>>()?
    };
    let checks = targets.iter().map(|t| async move {
        let c = connect(ctx, t, &AuthArgs::default(), 10.0).await?;
        let status = c.agent.call(&Request::Status).await?;
        c.close().await;
        Ok::<_, Error>(status)
    });
    let results = futures::future::join_all(checks).await;
    let mut rows = Vec::new();
    let mut code = exit::OK;
    for (t, result) in targets.iter().zip(results) {
        match result {
            Ok(Response::Status {
                version,
                uptime_secs,
                load,
                running,
            }) => rows.push(serde_json::json!({
                "target": t.name, "up": true, "version": version, "uptime_secs": uptime_secs,
                "load": load, "running": running,
            })),
            Ok(other) => return Err(unexpected(t, other)),
            Err(e) => {
                code = e.exit_code();
                rows.push(
                    serde_json::json!({"target": t.name, "up": false, "error": e.to_string()}),
                );
            }
        }
    }
    if ctx.json {
        crate::output::json(&rows);
    } else {
        crate::outln!(
            "{:<16}  {:<5}  {:<8}  {:>8}  {:>15}  RUNNING",
            "TARGET",
            "UP",
            "AGENT",
            "UPTIME",
            "LOAD"
        );
        for row in &rows {
            let load = row["load"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|v| format!("{:.2}", v.as_f64().unwrap_or(0.0)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            crate::outln!(
                "{:<16}  {:<5}  {:<8}  {:>7}s  {:>15}  {}",
                row["target"].as_str().unwrap_or_default(),
                if row["up"] == true { "yes" } else { "no" },
                row["version"].as_str().unwrap_or("-"),
                row["uptime_secs"]
                    .as_u64()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "-".into()),
                load,
                row["running"]
                    .as_u64()
                    .map(|r| r.to_string())
                    .or_else(|| row["error"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            );
        }
    }
    Ok(code)
}
