//! `moor validate`: one SSH connection, one probe exec, a table of checks.
//!
//! The SSH checks (`ssh.connect`, `ssh.host_key`, `ssh.auth`) come from the
//! connection; when one fails, validate stops there and the report carries the
//! checks so far and the error, whose exit code says what went wrong.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{resolve_connect, Context};
use crate::checks::{self, Check, Kind, Status};
use crate::cli::ValidateArgs;
use crate::error::{exit, Error};
use crate::output::{self, ErrorJson};
use crate::probe::{self, Facts};
use crate::ssh::{ConnectProgress, Session};

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
    pub kind: Kind,
    /// The address connected to.
    pub address: Option<IpAddr>,
}

/// The result of `moor validate`.
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
    pub host_key: Option<crate::ssh::HostKeyInfo>,
    #[serde(skip)]
    exit_code: u8,
    #[serde(skip)]
    error_line: Option<String>,
}

impl Report {
    /// The exit code for this report.
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// Validates a host. Usage errors (before connecting) are `Err`; anything
/// that happens on the network is in the report.
pub async fn run(args: &ValidateArgs, ctx: &Context) -> Result<Report, Error> {
    let resolved = resolve_connect(&args.connect, ctx)?;
    let endpoint = resolved.endpoint.clone();
    let mut report = Report {
        ok: false,
        host: HostJson {
            host: endpoint.host.clone(),
            port: endpoint.port,
            user: endpoint.user.clone(),
            kind: args.kind,
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
    if let Some((addr, took)) = progress.tcp {
        report.host.address = Some(addr.ip());
        report.checks.push(Check::pass(
            "ssh.connect",
            format!("{addr} (TCP in {} ms)", took.as_millis()),
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
    let session = match connected {
        Ok(session) => session,
        Err(e) => return Ok(stopped(report, e)),
    };
    report.checks.push(Check::pass(
        "ssh.auth",
        format!("{} as {}", session.auth_method, endpoint.user),
    ));

    let probed = tokio::time::timeout(
        PROBE_TIMEOUT,
        session.exec(probe::COMMAND, probe::SCRIPT.as_bytes()),
    )
    .await;
    let output = match probed {
        Err(_) => {
            return Ok(stopped(
                report,
                Error::Timeout {
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    step: "probe",
                    timeout: PROBE_TIMEOUT,
                },
            ))
        }
        Ok(Err(e)) => return Ok(stopped(report, e)),
        Ok(Ok(output)) => output,
    };
    session.close().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    tracing::debug!(bytes = output.stdout.len(), status = ?output.exit_status, "probe finished");
    tracing::trace!(stdout = %stdout, stderr = %String::from_utf8_lossy(&output.stderr), "probe output");
    let facts = match Facts::parse(&stdout) {
        Ok(facts) => facts,
        Err(e) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail = stderr.lines().last().unwrap_or("").trim();
            let cause = if tail.is_empty() {
                e.to_string()
            } else {
                format!("{e}; the shell said: {tail}")
            };
            return Ok(stopped(
                report,
                Error::Probe {
                    host: endpoint.host.clone(),
                    cause,
                },
            ));
        }
    };

    let peer = session_peer(&report);
    report.checks.extend(checks::evaluate(
        &facts,
        peer,
        checks::Options {
            kind: args.kind,
            require_public_ip: args.require_public_ip,
        },
    ));
    report.facts = Some(facts);
    report.ok = report.checks.iter().all(|c| c.status != Status::Fail);
    report.exit_code = if report.ok {
        exit::OK
    } else {
        exit::CHECK_FAILED
    };
    Ok(report)
}

fn session_peer(report: &Report) -> IpAddr {
    report
        .host
        .address
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Ends the report at an error: records the failed SSH check and the error.
fn stopped(mut report: Report, e: Error) -> Report {
    let failed = match e.exit_code() {
        exit::UNREACHABLE if report.checks.is_empty() => Some("ssh.connect"),
        exit::HOST_KEY => Some("ssh.host_key"),
        exit::AUTH => Some("ssh.auth"),
        _ => None,
    };
    if let Some(id) = failed {
        report.checks.push(Check::fail(id, e.to_string(), e.fix()));
    }
    report.exit_code = e.exit_code();
    report.error_line = Some(output::error_line(&e));
    report.error = Some(ErrorJson::from(&e));
    report
}

/// Prints the report: the table (or the one-line error) for people, or JSON.
pub fn print(report: &Report, json: bool) {
    if json {
        output::json(report);
        return;
    }
    if let Some(line) = &report.error_line {
        eprintln!("{line}");
        return;
    }
    let h = &report.host;
    let kind = match h.kind {
        Kind::Vm => "vm",
        Kind::Hdinsight => "hdinsight",
    };
    println!("{}@{}:{} ({kind})", h.user, h.host, h.port);
    print!("{}", output::check_table(&report.checks));
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
            parts.push(format!("{} RAM", checks::bytes(m)));
        }
        if let Some(id) = &f.machine_id {
            parts.push(format!("machine-id {id}"));
        }
        println!("host: {} ({})", f.hostname, parts.join(", "));
    }
    println!(
        "result: {}: {}",
        if report.ok { "ok" } else { "FAILED" },
        output::summary(&report.checks)
    );
}
