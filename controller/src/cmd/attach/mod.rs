//! `moor attach vm|hdinsight NAME`: validate, reserve, claim, install the
//! agent, record.
//!
//! Order matters for crash safety. The target row is written last, in one
//! transaction, so a `kill -9` at any step leaves either no target or a
//! complete one; everything before it is idempotent on the host (claim,
//! enrolled key, agent install), so running attach again completes it.
//! Races: a reservation in the workspace database keeps two attaches of one
//! workspace apart (one machine, one name), and the host-side claim is created
//! with `ln`, which only one of two racing workspaces can win. The steps
//! that change the host (claim, agent install) are in [`host`].

mod host;

pub use host::{AgentInstall, AgentStatus, ClaimOutcome};

use serde::Serialize;

use super::validate::{connect_and_probe, Report};
use super::Context;
use crate::agent_bundle::{AgentBundle, Agents};
use crate::checks::{self, Check};
use crate::cli::{AttachArgs, AttachHdinsightArgs, AttachVmArgs, AuthArgs};
use crate::error::{exit, Error, Result};
use crate::output::{check_table, Render, Text};
use crate::probe::Facts;
use crate::reach::{settings, Resolved};
use crate::resource_id::{self, ResourceKind};
use crate::ssh::{same_fingerprint, AuthUsed, HostKeyPolicy, Session};
use crate::store::{AuthRef, Conflict, Store, Target, TargetState};
use crate::target_kind::TargetKind;

/// What attach did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Attached {
    /// Always true: failures are errors or a failed report.
    pub ok: bool,
    /// The target as recorded.
    pub target: Target,
    /// The agent.
    pub agent: AgentStatus,
    /// What happened to the host's claim.
    pub claim: ClaimOutcome,
    /// Whether the workspace key was enrolled in authorized_keys.
    pub enrolled_key: bool,
    /// The previous name of the machine, with `--replace`.
    pub replaced: Option<String>,
    /// The validate checks.
    pub checks: Vec<Check>,
    /// The probe's facts.
    pub facts: Facts,
}

/// How an attach ended without an error.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// The target is attached.
    Attached(Box<Attached>),
    /// Validation stopped it (a failed check, or the connection failed): the
    /// report says why, and nothing was changed.
    Refused(Box<Report>),
}

/// `moor attach vm`.
pub async fn vm(args: &AttachVmArgs, ctx: &Context) -> Result<Outcome> {
    crate::reach::check_name(&args.common.name)?;
    let resource_id = args
        .resource_id
        .as_deref()
        .map(|id| resource_id::parse(id, ResourceKind::VirtualMachine))
        .transpose()?;
    let resolved = settings::for_host(&args.connect, &ctx.workspace, None)?;
    attach(
        &args.common,
        &args.connect.target.auth,
        TargetKind::Vm,
        resource_id.map(|r| r.id),
        None,
        resolved,
        ctx,
    )
    .await
}

/// `moor attach hdinsight`: the host is `--host`, else the cluster's SSH
/// endpoint from `--cluster` or the resource id.
pub async fn hdinsight(args: &AttachHdinsightArgs, ctx: &Context) -> Result<Outcome> {
    crate::reach::check_name(&args.common.name)?;
    let resource_id = args
        .resource_id
        .as_deref()
        .map(|id| resource_id::parse(id, ResourceKind::HdInsightCluster))
        .transpose()?;
    let cluster = match (&args.cluster, &resource_id) {
        (Some(c), Some(r)) if !c.eq_ignore_ascii_case(&r.name) => {
            return Err(Error::usage(
                format!(
                    "--cluster {c} does not match the resource id's cluster {}",
                    r.name
                ),
                "pass one of them, or make them agree",
            ))
        }
        (Some(c), _) => Some(c.clone()),
        (None, Some(r)) => Some(r.name.clone()),
        (None, None) => None,
    };
    if args.connect.host.is_none() && cluster.is_none() {
        return Err(Error::usage(
            "no cluster to attach",
            "pass --resource-id ID, --cluster NAME or --host HOST",
        ));
    }
    let default_host = cluster.as_deref().map(resource_id::hdinsight_ssh_host);
    let resolved = settings::for_host(&args.connect, &ctx.workspace, default_host)?;
    attach(
        &args.common,
        &args.connect.target.auth,
        TargetKind::Hdinsight,
        resource_id.map(|r| r.id),
        cluster,
        resolved,
        ctx,
    )
    .await
}

/// Attaches the host `resolved` names as `common.name` (also what a fleet
/// attach does for each host).
pub(crate) async fn attach(
    common: &AttachArgs,
    auth_args: &AuthArgs,
    kind: TargetKind,
    resource_id: Option<String>,
    cluster: Option<String>,
    resolved: Resolved,
    ctx: &Context,
) -> Result<Outcome> {
    let name = common.name.as_str();
    let mut store = ctx.workspace.store()?;
    let workspace_id = store.workspace_id()?;
    let agents = ctx.targets.agents();
    carries_agents(agents)?;
    let named_keys = match &resolved.options.host_key_policy {
        HostKeyPolicy::Fingerprint(fingerprints) => fingerprints.clone(),
        _ => Vec::new(),
    };
    let (report, session) = match probe(common, kind, cluster, resolved, agents).await {
        Ok(probed) => probed,
        Err(refused) => return Ok(Outcome::Refused(refused)),
    };
    let facts = report.facts.clone().expect("a probed report has facts");
    let host_key = report
        .host_key
        .clone()
        .expect("a connected report has a host key");
    let machine_id = facts.machine_id.clone().unwrap_or_default();
    let bundle = match bundle_for(agents, &facts, &session.endpoint.host) {
        Ok(bundle) => bundle,
        Err(e) => {
            session.close().await;
            return Err(e);
        }
    };

    let host = session.endpoint.host.clone();
    let reserved = reserve(
        &mut store,
        common,
        &named_keys,
        &host_key.fingerprint,
        &machine_id,
    );
    let replaced = match reserved.and_then(|r| r.map_err(|conflict| taken(conflict, name, &host))) {
        Ok(replaced) => replaced,
        Err(e) => {
            session.close().await;
            return Err(e);
        }
    };

    let steps = host::HostSteps {
        bundle,
        session: &session,
        workspace_id: &workspace_id,
        name,
        facts: &facts,
        take_over: common.options.take_over,
        agent_cache: &ctx.workspace.dir().join("agents"),
    };
    let enroll_key =
        matches!(session.auth_used, AuthUsed::Password) && !common.options.no_enroll_key;
    let done = claim_and_install(&steps, ctx, enroll_key).await;
    let (claim, agent) = match done {
        Ok(done) => done,
        Err(e) => {
            store.release(&host_key.fingerprint, &machine_id)?;
            session.close().await;
            return Err(e);
        }
    };
    let endpoint = session.endpoint.clone();
    let via = session.via.clone();
    let enrolled_key = enroll_key;
    let auth = if enrolled_key {
        AuthRef::WorkspaceKey
    } else {
        auth_ref(&session.auth_used, auth_args)
    };
    session.close().await;

    // Network settings: the flags over what the target had.
    let had = store.target(name)?.map(|t| t.network).unwrap_or_default();
    let network = crate::reach::network::apply(&had, &common.options.network)?;
    let now = crate::time::now();
    let target = Target {
        name: name.to_owned(),
        kind,
        host,
        port: endpoint.port,
        user: endpoint.user,
        jumps: via,
        network,
        auth,
        resource_id,
        host_key_algorithm: host_key.algorithm.clone(),
        host_key_fingerprint: host_key.fingerprint.clone(),
        machine_id,
        agent_version: agent.version.clone(),
        agent_build: agent.build.clone(),
        state: TargetState::Ready,
        facts: Some(facts.clone()),
        checks: report.checks.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    store.commit_target(&target, replaced.as_deref())?;
    let target = store.target(name)?.expect("just committed");
    Ok(Outcome::Attached(Box::new(Attached {
        ok: true,
        target,
        agent,
        claim,
        enrolled_key,
        replaced,
        checks: report.checks,
        facts,
    })))
}

/// Reserves the target's name for this host in the store: a reinstalled
/// host (same machine-id, new key) keeps its name when the user named the
/// new key. The name's current holder, when it is another machine's.
fn reserve(
    store: &mut Store,
    common: &AttachArgs,
    named_keys: &[String],
    fingerprint: &str,
    machine_id: &str,
) -> Result<std::result::Result<Option<String>, Conflict>> {
    let key_named = named_keys
        .iter()
        .any(|fp| same_fingerprint(fp, fingerprint));
    store.reserve(
        &common.name,
        fingerprint,
        machine_id,
        common.options.replace,
        key_named,
    )
}

/// Connects, probes and checks the host: the report and the open session,
/// or the report of a host that cannot be attached (the session closed).
async fn probe(
    common: &AttachArgs,
    kind: TargetKind,
    cluster: Option<String>,
    resolved: Resolved,
    agents: &Agents,
) -> std::result::Result<(Report, Session), Box<Report>> {
    let options = checks::Options {
        kind,
        require_public_ip: common.options.require_public_ip,
    };
    // The host's architecture is not known before the probe: it looks for
    // each agent this moor carries.
    let install_ids = agents.install_ids();
    let (report, session) =
        connect_and_probe(resolved, options, &install_ids, cluster.as_deref()).await;
    match session {
        Some(session) if report.ok => Ok((report, session)),
        Some(session) => {
            session.close().await;
            Err(Box::new(report))
        }
        None => Err(Box::new(report)),
    }
}

/// Refuses to attach with a moor that carries no agent (a build for
/// checking only).
fn carries_agents(agents: &Agents) -> Result<()> {
    if agents.is_present() {
        return Ok(());
    }
    Err(Error::usage(
        "this moor was built for checking only and carries no agent",
        "build it with `cargo build -p moor-cli` (not under clippy or rust-analyzer)",
    ))
}

/// The agent for the host's architecture, or why this moor has none.
fn bundle_for(agents: &Agents, facts: &Facts, host: &str) -> Result<&'static AgentBundle> {
    agents.for_arch(&facts.arch).ok_or_else(|| {
        Error::usage(
            format!(
                "this moor carries no agent for {host}'s architecture {} (only for {})",
                facts.arch,
                agents.arches()
            ),
            "use a moor built with the agents of both architectures (cargo build -p moor-cli builds them)",
        )
    })
}

/// Claims the host for the workspace (enrolling the workspace key when a
/// password got in) and installs or checks the agent.
async fn claim_and_install(
    steps: &host::HostSteps<'_>,
    ctx: &Context,
    enroll_key: bool,
) -> Result<(host::ClaimOutcome, host::AgentStatus)> {
    let key_line = if enroll_key {
        Some(ctx.workspace.key(steps.workspace_id)?)
    } else {
        None
    };
    let claim = steps.claim(ctx, key_line.as_deref()).await?;
    let agent = steps.agent().await?;
    Ok((claim, agent))
}

/// How the target will authenticate next time, from what worked now.
fn auth_ref(used: &AuthUsed, args: &AuthArgs) -> AuthRef {
    match used {
        AuthUsed::Key(path) => AuthRef::Key {
            path: std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            passphrase_env: args.key_passphrase_env.clone(),
        },
        AuthUsed::Password => AuthRef::Password {
            env: args.password_env.clone(),
        },
        AuthUsed::Agent | AuthUsed::None => AuthRef::Agent,
    }
}

fn taken(conflict: Conflict, name: &str, host: &str) -> Error {
    match conflict {
        Conflict::MachineTaken { name: existing } => Error::Taken {
            message: format!("{host} is already attached as target {existing:?}"),
            fix: format!("use the target {existing:?}, pass --replace to move it to {name:?}, or `moor detach {existing}` first"),
        },
        Conflict::NameTaken { host: other } => Error::Taken {
            message: format!("the name {name:?} is taken by another machine ({other})"),
            fix: format!("if it is the same machine with a new host key, attach again with --host-key-fingerprint of the new key; otherwise choose another name, pass --replace, or `moor detach {name} --local-only` first"),
        },
        Conflict::Busy { pid, name: other } => Error::Taken {
            message: format!("another moor (pid {pid}) is attaching {host} or the name as {other:?} right now"),
            fix: "wait for it to finish, then run attach again".into(),
        },
    }
}

impl Render for Outcome {
    fn render(&self, out: &mut Text) {
        let a = match self {
            Outcome::Refused(report) => return report.render(out),
            Outcome::Attached(a) => a,
        };
        out.raw(&check_table(&a.checks));
        let t = &a.target;
        out.line(format!(
            "attached {}: {}@{}:{} ({}), {}",
            t.name,
            t.user,
            t.host,
            t.port,
            t.kind,
            a.agent.describe()
        ));
        if let Some(old) = &a.replaced {
            out.line(format!("moved from target {old}"));
        }
        if a.enrolled_key {
            out.line("enrolled the workspace key: later commands need no password");
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Outcome::Refused(report) => report.exit_code(),
            Outcome::Attached(_) => exit::OK,
        }
    }
}
