//! `moor list` and `moor show NAME`: the workspace's targets.

use serde::Serialize;

use super::Context;
use crate::checks::Check;
use crate::cli::NetworkArgs;
use crate::error::Result;
use crate::output::{check_table, Render, Table, Text};
use crate::probe::Facts;
use crate::reach::network;
use crate::ssh::jump;
use crate::store::Target;

/// The targets.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Listed(Vec<Target>);

impl Render for Listed {
    fn render(&self, out: &mut Text) {
        if self.0.is_empty() {
            out.line("no targets; attach one with `moor attach vm NAME --host HOST --user USER`");
            return;
        }
        let mut table = Table::new(&["NAME", "KIND", "ENDPOINT", "STATE", "AGENT", "UPDATED"]);
        for t in &self.0 {
            table.row(vec![
                t.name.clone(),
                t.kind.to_string(),
                endpoint(t),
                t.state.as_str().into(),
                t.agent_version.clone(),
                t.updated_at.clone(),
            ]);
        }
        out.raw(&table.render());
    }
}

/// `user@host:port`, and `(via JUMP)` behind jump hosts.
fn endpoint(t: &Target) -> String {
    match t.jumps.first() {
        None => format!("{}@{}:{}", t.user, t.host, t.port),
        Some(first) => format!(
            "{}@{}:{} (via {}{})",
            t.user,
            t.host,
            t.port,
            first.host,
            if t.jumps.len() > 1 { ", ..." } else { "" }
        ),
    }
}

/// `moor list`.
pub fn list(ctx: &Context) -> Result<Listed> {
    Ok(Listed(ctx.store()?.targets()?))
}

/// `moor show`'s object: the target, plus its facts and checks.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The target's fields.
    #[serde(flatten)]
    pub target: Target,
    /// Its network settings, summarised.
    pub network: network::Shown,
    /// Facts from the last attach or validate.
    pub facts: Option<Facts>,
    /// Checks from the last attach or validate.
    pub checks: Vec<Check>,
}

impl Render for Shown {
    fn render(&self, out: &mut Text) {
        let t = &self.target;
        out.line(format!("{} ({})", t.name, t.kind));
        out.line(format!("  endpoint     {}@{}:{}", t.user, t.host, t.port));
        if !t.jumps.is_empty() {
            out.line(format!("  through      {}", jump::describe(&t.jumps)));
        }
        out.line(format!("  network      {}", self.network.line()));
        out.line(format!("  auth         {}", t.auth));
        if let Some(id) = &t.resource_id {
            out.line(format!("  resource id  {id}"));
        }
        out.line(format!(
            "  host key     {} {}",
            t.host_key_algorithm, t.host_key_fingerprint
        ));
        out.line(format!("  machine-id   {}", t.machine_id));
        out.line(format!(
            "  agent        {} ({})",
            t.agent_version,
            &t.agent_build[..t.agent_build.len().min(16)]
        ));
        out.line(format!("  state        {}", t.state.as_str()));
        out.line(format!(
            "  attached     {}, updated {}",
            t.created_at, t.updated_at
        ));
        out.line("checks at the last attach or validate:");
        out.raw(&check_table(&self.checks));
        if let Some(f) = &self.facts {
            out.line(format!(
                "host: {} ({}, {})",
                f.hostname, f.os.pretty_name, f.arch
            ));
        }
    }
}

/// `moor show NAME`.
pub fn show(ctx: &Context, name: &str) -> Result<Shown> {
    let mut target = ctx.targets.attached(&ctx.store()?, name)?;
    Ok(Shown {
        network: network::Shown::from(&target.network),
        facts: target.facts.take(),
        checks: std::mem::take(&mut target.checks),
        target,
    })
}

/// `moor network NAME`'s answer: the target's settings now.
#[derive(Debug, Serialize)]
pub struct Network {
    /// The target.
    pub target: String,
    /// Its settings.
    #[serde(flatten)]
    pub network: network::Shown,
    /// Whether they changed.
    pub changed: bool,
}

impl Render for Network {
    fn render(&self, out: &mut Text) {
        let verb = if self.changed {
            "now reaches"
        } else {
            "reaches"
        };
        out.line(format!(
            "{} {verb} package indexes: {}",
            self.target,
            self.network.line()
        ));
    }
}

/// `moor network NAME [--https-proxy URL] [--no-proxy LIST] [--ca-bundle FILE] ...`.
pub fn network(ctx: &Context, name: &str, args: &NetworkArgs) -> Result<Network> {
    let store = ctx.store()?;
    let target = ctx.targets.attached(&store, name)?;
    let settings = network::apply(&target.network, args)?;
    let changed = settings != target.network;
    if changed {
        store.set_network(name, &settings)?;
    }
    Ok(Network {
        target: name.to_owned(),
        network: network::Shown::from(&settings),
        changed,
    })
}
