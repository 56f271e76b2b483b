//! `moor detach NAME [--purge]`: remove the claim from the host (and with
//! `--purge` the agent and the enrolled key), then the target from the
//! workspace. The host is changed first: if that fails, the target stays and
//! detach can be run again. `--local-only` forgets a target whose host is gone.

use serde::Serialize;

use super::{find_target, resolve_target, Context};
use crate::cli::DetachArgs;
use crate::error::Result;
use crate::remote;
use crate::ssh::{ConnectProgress, Session};

/// What detach did.
#[derive(Debug, Serialize)]
pub struct Detached {
    /// The target.
    pub name: String,
    /// `removed`, `other` (another workspace holds it now: left alone),
    /// `absent`, or `not_contacted` (with `--local-only`).
    pub claim: String,
    /// Whether the agent directory was removed.
    pub agent_removed: bool,
    /// Whether the enrolled workspace key was removed from authorized_keys.
    pub key_removed: bool,
}

/// Runs detach.
pub async fn run(args: &DetachArgs, ctx: &Context) -> Result<Detached> {
    let store = ctx.workspace.store()?;
    let target = find_target(&store, &args.name, ctx)?;
    let mut done = Detached {
        name: target.name.clone(),
        claim: "not_contacted".into(),
        agent_removed: false,
        key_removed: false,
    };
    if !args.local_only {
        let workspace_id = store.workspace_id()?;
        let resolved = resolve_target(&target, &args.auth, args.connect_timeout, ctx)?;
        let session = Session::connect(
            &resolved.endpoint,
            resolved.options,
            &mut ConnectProgress::default(),
        )
        .await?;
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
        done.claim = kv.get("claim").cloned().unwrap_or_default();
        done.agent_removed = kv.contains_key("agent");
        done.key_removed = kv.contains_key("enroll");
    }
    store.delete_target(&target.name)?;
    Ok(done)
}

/// Prints what detach did.
pub fn print(d: &Detached, json: bool) {
    if json {
        crate::output::json(d);
        return;
    }
    crate::outln!("detached {}", d.name);
    match d.claim.as_str() {
        "other" => {
            crate::outln!("note: another workspace holds the host's claim now; it was left alone")
        }
        "not_contacted" => {
            crate::outln!("note: the host was not contacted; its claim and agent are still there")
        }
        _ => {}
    }
    if d.agent_removed {
        crate::outln!("removed the agent from the host");
    }
    if d.key_removed {
        crate::outln!("removed the workspace key from authorized_keys");
    }
}
