//! `moor detach NAME [--purge] [--cancel-runs]`: remove the claim from the
//! host (and with `--purge` everything moor put there: agent, runs,
//! snapshots, environments and their images, the enrolled key), then the
//! target from the workspace. Refused while runs are going on the host,
//! unless `--cancel-runs`. The host is changed first: if that fails, the
//! target stays and detach can be run again. `--local-only` forgets a target
//! whose host is gone.

use serde::Serialize;

use moor_proto::RunInfo;

use super::Context;
use crate::agent_client::AgentClient;
use crate::cli::DetachArgs;
use crate::error::{Error, Result};
use crate::output::{Render, Text};
use crate::reach::Access;
use crate::remote;

/// What became of the host's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimRemoval {
    /// It was this workspace's, and is gone.
    Removed,
    /// Another workspace holds it now: left alone.
    Other,
    /// The host had none.
    Absent,
    /// The host was not contacted (`--local-only`).
    NotContacted,
}

/// What detach did.
#[derive(Debug, Serialize)]
pub struct Detached {
    /// The target.
    pub name: String,
    /// What became of the host's claim.
    pub claim: ClaimRemoval,
    /// Whether the agent directory was removed.
    pub agent_removed: bool,
    /// Whether the enrolled workspace key was removed from authorized_keys.
    pub key_removed: bool,
    /// Runs cancelled first (`--cancel-runs`).
    pub runs_cancelled: Vec<String>,
    /// Environments removed (`--purge`), by hash.
    pub envs_removed: Vec<String>,
    /// KiB freed under ~/.moor on the host (`--purge`).
    pub freed_kib: Option<u64>,
    /// Why the agent could not be asked about runs and environments, if it
    /// could not (detach went on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_error: Option<String>,
}

/// Runs detach.
pub async fn run(args: &DetachArgs, ctx: &Context) -> Result<Detached> {
    let store = ctx.store()?;
    let target = ctx.targets.attached(&store, &args.name)?;
    let mut done = Detached {
        name: target.name.clone(),
        claim: ClaimRemoval::NotContacted,
        agent_removed: false,
        key_removed: false,
        runs_cancelled: Vec::new(),
        envs_removed: Vec::new(),
        freed_kib: None,
        agent_error: None,
    };
    // The workspace's warm connection to it goes first (its agent pipe
    // would outlive the agent).
    crate::mux::forget(&ctx.workspace, &target.name).await;
    if !args.local_only {
        let workspace_id = store.workspace_id()?;
        let access = Access::from_args(&args.connect)?;
        let session = ctx.targets.session(&target, &access).await?;
        // Runs first: detach never leaves a job running unseen.
        match ctx.targets.agent_on(&session, &target).await {
            Ok(agent) => {
                let prepared = settle_runs_and_envs(&agent, args, &target.name, &mut done).await;
                drop(agent);
                if let Err(e) = prepared {
                    session.close().await;
                    return Err(e);
                }
            }
            Err(e) => done.agent_error = Some(e.to_string()),
        }
        let tag = crate::workspace::key_tag(&workspace_id);
        let purge = if args.purge { "1" } else { "0" };
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            remote::run(
                &session,
                "detach",
                remote::DETACH,
                &[&workspace_id, purge, &tag],
                &[],
                "run detach again, or pass --local-only",
            ),
        )
        .await
        .map_err(|_| crate::Error::Timeout {
            host: target.host.clone(),
            port: target.port,
            step: "detach",
            timeout: std::time::Duration::from_secs(60),
        })??;
        session.close().await;
        let kv = remote::key_values(&String::from_utf8_lossy(&out.stdout));
        done.claim = match kv.get("claim").map(String::as_str) {
            Some("removed") => ClaimRemoval::Removed,
            Some("other") => ClaimRemoval::Other,
            _ => ClaimRemoval::Absent,
        };
        done.agent_removed = kv.contains_key("agent");
        done.key_removed = kv.contains_key("enroll");
        done.freed_kib = kv.get("freed_kib").and_then(|k| k.parse().ok());
    }
    store.delete_target(&target.name)?;
    Ok(done)
}

/// Refuses while runs are going (unless `--cancel-runs`, which cancels
/// them); with `--purge`, removes every environment (and its image).
async fn settle_runs_and_envs(
    agent: &AgentClient,
    args: &DetachArgs,
    name: &str,
    done: &mut Detached,
) -> Result<()> {
    let going: Vec<RunInfo> = agent
        .runs()
        .await?
        .into_iter()
        .filter(|r| !r.state.is_final())
        .collect();
    if !going.is_empty() && !args.cancel_runs {
        let listed: Vec<String> = going
            .iter()
            .map(|r| match &r.name {
                Some(n) => format!("{} ({n})", r.id),
                None => r.id.clone(),
            })
            .collect();
        return Err(Error::Taken {
            message: format!(
                "target {name} has {} run(s) going: {}",
                going.len(),
                listed.join(", ")
            ),
            fix: format!(
                "wait for them to end, cancel them (`moor cancel RUN`), or pass --cancel-runs to `moor detach {name}`"
            ),
        });
    }
    for run in going {
        agent.cancel(&run.id, 10).await?;
        done.runs_cancelled.push(run.id);
    }
    if args.purge {
        for env in agent.envs().await? {
            agent.remove_env(&env.hash).await?;
            done.envs_removed.push(env.hash);
        }
    }
    Ok(())
}

impl Render for Detached {
    fn render(&self, out: &mut Text) {
        out.line(format!("detached {}", self.name));
        match self.claim {
            ClaimRemoval::Other => {
                out.line("note: another workspace holds the host's claim now; it was left alone")
            }
            ClaimRemoval::NotContacted => {
                out.line("note: the host was not contacted; its claim and agent are still there")
            }
            ClaimRemoval::Removed | ClaimRemoval::Absent => {}
        }
        for run in &self.runs_cancelled {
            out.line(format!("cancelled run {run}"));
        }
        if let Some(e) = &self.agent_error {
            out.note(format!(
                "warning: the agent did not answer ({e}); runs still going on the host were not looked for"
            ));
        }
        if self.agent_removed {
            out.line(format!(
                "removed everything moor put on the host: the agent, runs, snapshots and {} environment(s){}",
                self.envs_removed.len(),
                self.freed_kib
                    .map(|k| format!(", {} freed", moor_proto::human_bytes(k * 1024)))
                    .unwrap_or_default()
            ));
        }
        if self.key_removed {
            out.line("removed the workspace key from authorized_keys");
        }
    }
}
