//! `moor detach NAME [--purge]`: remove the claim from the host (and with
//! `--purge` the agent and the enrolled key), then the target from the
//! workspace. The host is changed first: if that fails, the target stays and
//! detach can be run again. `--local-only` forgets a target whose host is gone.

use serde::Serialize;

use super::Context;
use crate::cli::DetachArgs;
use crate::error::Result;
use crate::output::{Render, Text};
use crate::remote;
use crate::ssh::{ConnectProgress, Session};
use crate::target::Access;

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
    };
    if !args.local_only {
        let workspace_id = store.workspace_id()?;
        let access = Access::from_args(&args.connect)?;
        let resolved = ctx.targets.resolve(&target, &access)?;
        let session = Session::connect(
            &resolved.endpoint,
            resolved.options,
            &mut ConnectProgress::default(),
        )
        .await?;
        ctx.targets.repin(&target, &session.host_key)?;
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
    }
    store.delete_target(&target.name)?;
    Ok(done)
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
        if self.agent_removed {
            out.line("removed the agent from the host");
        }
        if self.key_removed {
            out.line("removed the workspace key from authorized_keys");
        }
    }
}
