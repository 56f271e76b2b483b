//! `moor endpoint create`: a plan that serves (the source with the scoring
//! script, the environment with azureml-inference-server-http added when a
//! scoring script needs it, a local model or a run's outputs; see
//! [`crate::plan`]), started, then waited for until it answers its probe,
//! or failed with its log's last lines.
//! [`manage`] has the other subcommands, [`invoke`] the HTTP call.

pub mod invoke;
pub mod manage;

use std::time::{Duration, Instant};

use moor_proto::endpoint::{EndpointInfo, EndpointState};
use serde::Serialize;

use super::Context;
use crate::cli::EndpointCreateArgs;
use crate::envs::prepare::Assets;
use crate::error::{Error, Result};
use crate::launch::{self, Started};
use crate::output::{Render, Text};
use crate::plan::{self, Ask};
use crate::reach::{Access, Connected};
use crate::store::Target;

/// An endpoint and the target serving it.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The target.
    pub target: String,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointInfo,
}

/// Where an endpoint answers: `unix:PATH` (its socket) or `ADDRESS:PORT`.
pub fn place(e: &EndpointInfo) -> String {
    match &e.socket {
        Some(_) => e.address.clone(),
        None => format!("{}:{}", e.address, e.port),
    }
}

impl Render for Shown {
    fn render(&self, out: &mut Text) {
        let e = &self.endpoint;
        out.line(format!(
            "endpoint {} {} on {} at {} (run {}, {} restart(s){})",
            e.name,
            e.state.as_str(),
            self.target,
            place(e),
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

/// `moor endpoint create`: its flags become a plan that serves an
/// endpoint, started by [`crate::plan::start`]; then it waits until the
/// endpoint answers its probe.
pub async fn create(args: &EndpointCreateArgs, ctx: &Context) -> Result<Shown> {
    if args.scoring_script.is_some() && args.port.is_some() && !args.public {
        let (cause, fix) = moor_proto::endpoint::PORT_NEEDS_PUBLIC;
        return Err(crate::error::Error::usage(cause, fix));
    }
    let (plan, payloads) = plan::build(&Ask::from(args), ctx)?;
    let access = Access::from_args(&args.connect)?;
    let assets = Assets::from(&args.assets);
    let started = launch::start(&plan, &payloads, ctx, &access, &assets, false).await?;
    let Started::Endpoint {
        created,
        target,
        conn,
    } = started
    else {
        unreachable!("an endpoint's plan starts an endpoint")
    };
    if args.public {
        eprintln!(
            "moor: warning: endpoint {} listens on every address of {} (port {}): anyone who reaches that port can call it; keep it behind the host's firewall or a reverse proxy (see docs/reference.md)",
            created.name, target.name, created.port
        );
    }
    eprintln!(
        "moor: endpoint {} starting on {} (at {}, run {}); waiting until it answers",
        created.name,
        target.name,
        place(&created),
        created.run_id
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
