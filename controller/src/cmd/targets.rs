//! `moor list` and `moor show NAME`: the workspace's targets.

use serde::Serialize;

use super::{find_target, Context};
use crate::checks::Check;
use crate::error::Result;
use crate::probe::Facts;
use crate::store::Target;

/// `moor show`'s object: the target, plus its facts and checks.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The target's fields.
    #[serde(flatten)]
    pub target: Target,
    /// Facts from the last attach or validate.
    pub facts: Option<serde_json::Value>,
    /// Checks from the last attach or validate.
    pub checks: Vec<Check>,
}

/// `moor list`.
pub fn list(ctx: &Context) -> Result<()> {
    let targets = ctx.workspace.store()?.targets()?;
    if ctx.json {
        crate::output::json(&targets);
        return Ok(());
    }
    if targets.is_empty() {
        crate::outln!("no targets; attach one with `moor attach vm NAME --host HOST --user USER`");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = targets
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.kind.clone(),
                format!("{}@{}:{}", t.user, t.host, t.port),
                t.state.clone(),
                t.agent_version.clone(),
                t.updated_at.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "ENDPOINT", "STATE", "AGENT", "UPDATED"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        crate::outln!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

/// `moor show NAME`.
pub fn show(ctx: &Context, name: &str) -> Result<()> {
    let store = ctx.workspace.store()?;
    let target = find_target(&store, name, ctx)?;
    let facts: Option<serde_json::Value> = serde_json::from_str(&target.facts).ok();
    let checks: Vec<Check> = serde_json::from_str(&target.checks).unwrap_or_default();
    let shown = Shown {
        target,
        facts,
        checks,
    };
    if ctx.json {
        crate::output::json(&shown);
        return Ok(());
    }
    let t = &shown.target;
    crate::outln!("{} ({})", t.name, t.kind);
    crate::outln!("  endpoint     {}@{}:{}", t.user, t.host, t.port);
    crate::outln!(
        "  auth         {}",
        serde_json::to_string(&t.auth).unwrap_or_default()
    );
    if let Some(id) = &t.resource_id {
        crate::outln!("  resource id  {id}");
    }
    crate::outln!(
        "  host key     {} {}",
        t.host_key_algorithm,
        t.host_key_fingerprint
    );
    crate::outln!("  machine-id   {}", t.machine_id);
    crate::outln!(
        "  agent        {} ({})",
        t.agent_version,
        &t.agent_build[..t.agent_build.len().min(16)]
    );
    crate::outln!("  state        {}", t.state);
    crate::outln!("  attached     {}, updated {}", t.created_at, t.updated_at);
    crate::outln!("checks at the last attach or validate:");
    crate::out!("{}", crate::output::check_table(&shown.checks));
    if let Some(f) = shown
        .facts
        .as_ref()
        .and_then(|v| serde_json::from_value::<Facts>(v.clone()).ok())
    {
        crate::outln!("host: {} ({}, {})", f.hostname, f.os.pretty_name, f.arch);
    }
    Ok(())
}
