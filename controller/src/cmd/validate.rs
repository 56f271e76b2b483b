//! `moor validate`: one SSH connection, one probe exec, a table of checks.
//!
//! The SSH checks (`ssh.connect`, `ssh.host_key`, `ssh.auth`) come from the
//! connection; when one fails, validation stops there and the report carries
//! the checks so far and the error, whose exit code says what went wrong.
//! [`connect_and_probe`] is shared with `moor attach`, which validates first.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::Context;
use crate::checks::{self, Check, Status};
use crate::cli::ValidateArgs;
use crate::error::{exit, Error};
use crate::output::{self, ErrorJson, Render, Text};
use crate::probe::{self, Facts};
use crate::reach::{settings, Access, Resolved};
use crate::ssh::{ConnectProgress, HostKeyInfo, Session};
use crate::store::Target;
use crate::target_kind::TargetKind;

/// How long the probe may take once connected (it bounds its own slow
/// commands, docker and nvidia-smi, at 10 to 15 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The host validated, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct HostJson {
    /// Host as connected to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// `vm` or `hdinsight`.
    pub kind: TargetKind,
    /// The address connected to.
    pub address: Option<IpAddr>,
}

/// The result of validating a host.
#[derive(Debug, Serialize)]
pub struct Report {
    /// No check failed and no error stopped validation.
    pub ok: bool,
    /// The host.
    pub host: HostJson,
    /// Checks, in order.
    pub checks: Vec<Check>,
    /// What the probe found (absent when it did not run).
    pub facts: Option<Facts>,
    /// What stopped validation early.
    pub error: Option<ErrorJson>,
    /// Host key fingerprint and how it was verified.
    pub host_key: Option<HostKeyInfo>,
    #[serde(skip)]
    exit_code: u8,
    #[serde(skip)]
    error_line: Option<String>,
}

impl Render for Report {
    /// The table, or the one-line error (on stderr) when validation stopped.
    fn render(&self, out: &mut Text) {
        match &self.error_line {
            Some(line) => out.note(line),
            None => {
                render_table(self, out);
                let failed: Vec<&str> = self
                    .checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                    .map(|c| c.id.as_ref())
                    .collect();
                if !failed.is_empty() {
                    out.note(format!(
                        "error: {} check(s) failed: {}; fix: follow each failed check's fix (its row in the table; `remedy` in --json), then run it again",
                        failed.len(),
                        failed.join(", ")
                    ));
                }
            }
        }
    }

    fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// Validates a host (`--host ...`) or an attached target (`NAME`). Usage
/// errors (before connecting) are `Err`; what happens on the network is in
/// the report. Many targets or an inventory are [`super::fleet::validate`]'s.
pub async fn run(args: &ValidateArgs, ctx: &Context) -> Result<Report, Error> {
    if let [name] = args.targets.as_slice() {
        let store = ctx.store()?;
        let target = ctx.targets.attached(&store, name)?;
        let access = Access::from_args(&args.connect.target)?;
        return attached(ctx, &target, &access, args.require_public_ip).await;
    }
    if args.cluster.is_some() && args.kind != TargetKind::Hdinsight {
        return Err(Error::usage(
            "--cluster names an HDInsight cluster",
            "add --kind hdinsight",
        ));
    }
    let endpoint = args
        .cluster
        .as_deref()
        .map(crate::resource_id::hdinsight_ssh_host);
    let resolved = settings::for_host(&args.connect, &ctx.workspace, endpoint)?;
    let options = checks::Options {
        kind: args.kind,
        require_public_ip: args.require_public_ip,
    };
    Ok(probe_only(resolved, options, args.cluster.as_deref()).await)
}

/// Re-validates an attached target with its stored settings: its pin
/// follows a key the user named, and its facts and checks are recorded.
pub async fn attached(
    ctx: &Context,
    target: &Target,
    access: &Access,
    require_public_ip: bool,
) -> Result<Report, Error> {
    let resolved = ctx.targets.resolve(target, access)?;
    let options = checks::Options {
        kind: target.kind,
        require_public_ip,
    };
    // An attached HDInsight target knows its cluster from its resource id.
    let cluster = target
        .resource_id
        .as_deref()
        .and_then(|id| {
            crate::resource_id::parse(id, crate::resource_id::ResourceKind::HdInsightCluster).ok()
        })
        .map(|r| r.name);
    let report = probe_only(resolved, options, cluster.as_deref()).await;
    if let Some(key) = &report.host_key {
        ctx.targets.repin(target, key)?;
    }
    if let Some(facts) = &report.facts {
        ctx.store()?
            .update_facts(&target.name, facts, &report.checks)?;
    }
    Ok(report)
}

/// Connects, probes and closes.
pub async fn probe_only(
    resolved: Resolved,
    options: checks::Options,
    cluster: Option<&str>,
) -> Report {
    let (report, session) = connect_and_probe(resolved, options, "", cluster).await;
    if let Some(session) = session {
        session.close().await;
    }
    report
}

/// Connects, authenticates and probes (asking about the agents `agent_ids`:
/// install ids separated by spaces).
/// Returns the report and, when everything up to the probe worked, the open
/// session.
pub async fn connect_and_probe(
    resolved: Resolved,
    options: checks::Options,
    agent_ids: &str,
    cluster: Option<&str>,
) -> (Report, Option<Session>) {
    let endpoint = resolved.endpoint.clone();
    let mut report = Report {
        ok: false,
        host: HostJson {
            host: endpoint.host.clone(),
            port: endpoint.port,
            user: endpoint.user.clone(),
            kind: options.kind,
            address: None,
        },
        checks: Vec::new(),
        facts: None,
        error: None,
        host_key: None,
        exit_code: exit::OK,
        error_line: None,
    };

    let mut progress = ConnectProgress::default();
    let connected = Session::connect(&endpoint, resolved.options, &mut progress).await;
    connection_checks(&mut report, &progress);
    let session = match connected {
        Ok(session) => session,
        Err(e) => return (stopped(report, e), None),
    };
    report.checks.push(Check::pass(
        "ssh.auth",
        format!("{} as {}", session.auth_method, endpoint.user),
    ));

    let facts = match probe(
        &session,
        &endpoint.host,
        endpoint.port,
        agent_ids,
        options.kind,
    )
    .await
    {
        Ok(facts) => facts,
        Err(e) => return (stopped(report, e), None),
    };

    let peer = report
        .host
        .address
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    report
        .checks
        .extend(checks::evaluate(&facts, peer, options));
    if options.kind == TargetKind::Hdinsight {
        report
            .checks
            .push(checks::ssh_endpoint(&endpoint.host, cluster));
    }
    report.facts = Some(facts);
    report.ok = report.checks.iter().all(|c| c.status != Status::Fail);
    report.exit_code = if report.ok {
        exit::OK
    } else {
        exit::CHECK_FAILED
    };
    (report, Some(session))
}

/// The checks a connection passed: TCP, each jump host, the host key.
fn connection_checks(report: &mut Report, progress: &ConnectProgress) {
    if let Some((addr, took)) = progress.tcp {
        let through = if progress.jumps.is_empty() {
            // Behind jump hosts, the target's address is theirs to know.
            report.host.address = Some(addr.ip());
            ""
        } else {
            ", the first jump host"
        };
        report.checks.push(Check::pass(
            "ssh.connect",
            format!("{addr} (TCP in {} ms){through}", took.as_millis()),
        ));
    }
    for passed in &progress.jumps {
        let key = &passed.host_key;
        report.checks.push(Check::pass(
            "ssh.jump",
            format!(
                "through {}: host key {} {} ({} in {}), {}",
                passed.jump,
                key.algorithm,
                key.fingerprint,
                key.status,
                key.file,
                passed.auth_method
            ),
        ));
    }
    if let Some(key) = &progress.host_key {
        report.checks.push(Check::pass(
            "ssh.host_key",
            format!(
                "{} {} ({} in {})",
                key.algorithm, key.fingerprint, key.status, key.file
            ),
        ));
        report.host_key = Some(key.clone());
    }
}

/// Runs the probe script on the session (within [`PROBE_TIMEOUT`]) and
/// reads its facts.
async fn probe(
    session: &Session,
    host: &str,
    port: u16,
    agent_ids: &str,
    kind: TargetKind,
) -> crate::error::Result<Facts> {
    let probed = tokio::time::timeout(
        PROBE_TIMEOUT,
        session.exec(&probe::command(agent_ids, kind), probe::SCRIPT.as_bytes()),
    )
    .await;
    let output = match probed {
        Err(_) => {
            let e = Error::Timeout {
                host: host.to_owned(),
                port,
                step: "probe",
                timeout: PROBE_TIMEOUT,
            };
            return Err(e);
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    tracing::debug!(bytes = output.stdout.len(), status = ?output.exit_status, "probe finished");
    tracing::trace!(stdout = %stdout, stderr = %String::from_utf8_lossy(&output.stderr), "probe output");
    match Facts::parse(&stdout) {
        Ok(facts) => Ok(facts),
        Err(e) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail = stderr.lines().last().unwrap_or("").trim();
            let cause = if tail.is_empty() {
                e.to_string()
            } else {
                format!("{e}; the shell said: {tail}")
            };
            let e = Error::Probe {
                host: host.to_owned(),
                cause,
            };
            Err(e)
        }
    }
}

/// Ends the report at an error: records the failed SSH check and the error.
pub fn stopped(mut report: Report, e: Error) -> Report {
    let failed = match e.exit_code() {
        exit::UNREACHABLE if report.checks.is_empty() => Some("ssh.connect"),
        exit::HOST_KEY => Some("ssh.host_key"),
        exit::AUTH => Some("ssh.auth"),
        _ => None,
    };
    if let Some(id) = failed {
        report.checks.push(Check::fail(id, e.to_string(), e.fix()));
    }
    report.ok = false;
    report.exit_code = e.exit_code();
    report.error_line = Some(output::error_line(&e));
    report.error = Some(ErrorJson::from(&e));
    report
}

/// The check table, the host summary and the result line.
fn render_table(report: &Report, out: &mut Text) {
    let h = &report.host;
    out.line(format!("{}@{}:{} ({})", h.user, h.host, h.port, h.kind));
    out.raw(&output::check_table(&report.checks));
    if let Some(f) = &report.facts {
        let mut parts = vec![
            if f.os.pretty_name.is_empty() {
                f.os.id.clone()
            } else {
                f.os.pretty_name.clone()
            },
            f.arch.clone(),
        ];
        if let Some(n) = f.cpus {
            parts.push(format!("{n} CPUs"));
        }
        if let Some(m) = f.memory_total_bytes {
            parts.push(format!("{} RAM", moor_proto::human_bytes(m)));
        }
        if let Some(id) = &f.machine_id {
            parts.push(format!("machine-id {id}"));
        }
        out.line(format!("host: {} ({})", f.hostname, parts.join(", ")));
        if let Some(claim) = &f.claim {
            out.line(format!(
                "attached: as {:?} in workspace {} ({})",
                claim.target, claim.workspace_id, claim.workspace
            ));
        }
    }
    out.line(format!(
        "result: {}: {}",
        if report.ok { "ok" } else { "FAILED" },
        output::summary(&report.checks)
    ));
}
