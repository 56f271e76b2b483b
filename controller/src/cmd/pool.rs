//! `moor pool create|list|show|delete`: named lists of attached targets. A
//! pool is usable wherever a target is for a job (`--target POOL`, `--pool
//! POOL`, a job file's `compute`); its first target is node 0.

use serde::Serialize;

use super::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Table, Text};
use crate::store::Pool;

/// Pools, listed.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Pools(Vec<Pool>);

impl Render for Pools {
    fn render(&self, out: &mut Text) {
        if self.0.is_empty() {
            out.line("no pools; make one with `moor pool create NAME --target A --target B`");
            return;
        }
        let mut table = Table::new(&["POOL", "NODES", "TARGETS"]).right(1);
        for pool in &self.0 {
            table.row(vec![
                pool.name.clone(),
                pool.targets.len().to_string(),
                pool.targets.join(", "),
            ]);
        }
        out.raw(&table.render());
    }
}

/// One pool.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Shown(Pool);

impl Render for Shown {
    fn render(&self, out: &mut Text) {
        out.line(format!(
            "pool {} ({} nodes)",
            self.0.name,
            self.0.targets.len()
        ));
        for (rank, target) in self.0.targets.iter().enumerate() {
            out.line(format!("  node {rank}: {target}"));
        }
    }
}

/// A deleted pool.
#[derive(Debug, Serialize)]
pub struct Deleted {
    deleted: String,
}

impl Render for Deleted {
    fn render(&self, out: &mut Text) {
        out.line(format!("deleted pool {}", self.deleted));
    }
}

/// `moor pool create NAME --target A --target B ...`.
pub fn create(ctx: &Context, name: &str, targets: &[String]) -> Result<Shown> {
    crate::reach::check_name(name)?;
    let store = ctx.store()?;
    for (i, target) in targets.iter().enumerate() {
        ctx.targets.named(&store, target)?;
        if targets[..i].contains(target) {
            return Err(Error::usage(
                format!("target {target} is named twice"),
                "name each target of the pool once",
            ));
        }
    }
    store.create_pool(name, targets).map(Shown)
}

/// `moor pool list`.
pub fn list(ctx: &Context) -> Result<Pools> {
    ctx.store()?.pools().map(Pools)
}

/// `moor pool show NAME`.
pub fn show(ctx: &Context, name: &str) -> Result<Shown> {
    crate::plan::find_pool(&ctx.store()?, name).map(Shown)
}

/// `moor pool delete NAME`.
pub fn delete(ctx: &Context, name: &str) -> Result<Deleted> {
    let store = ctx.store()?;
    if !store.delete_pool(name)? {
        return Err(crate::plan::no_pool(name));
    }
    Ok(Deleted {
        deleted: name.to_owned(),
    })
}
