//! Many hosts in one process: `moor attach --inventory FILE`, `moor validate
//! --inventory FILE` and `moor validate NAME NAME...`. Each host is worked on
//! as the one-host command would (same checks, same crash safety), at most
//! `--parallel` at once ([`crate::fleet`]); the result is a table (JSON: an
//! array of per-host results), each pool of the inventory becomes a moor
//! pool of its attached targets, and the exit code is the highest of the
//! hosts'.

use serde::Serialize;

use super::attach::{self, Outcome};
use super::validate::{self, Report};
use super::Context;
use crate::checks;
use crate::cli::{AttachArgs, AttachArgsTop, ConnectArgs, TargetArgs, ValidateArgs};
use crate::error::{exit, Error, Result};
use crate::fleet::{self, View};
use crate::inventory::{self, InventoryHost, InventoryPool};
use crate::output::{self, ErrorJson, Render, Table, Text};
use crate::reach::{settings, Access, Resolved};
use crate::target_kind::TargetKind;

/// One host's result.
#[derive(Debug, Serialize)]
pub struct HostResult<T> {
    /// The target name (given, or the inventory's).
    pub target: String,
    /// Its inventory pool.
    pub pool: Option<String>,
    /// Where it was reached.
    pub host: String,
    /// Whether all went well.
    pub ok: bool,
    /// The exit code the one-host command would have.
    pub exit_code: u8,
    /// One line: what happened.
    pub summary: String,
    /// What stopped it.
    pub error: Option<ErrorJson>,
    /// The one-host command's result (its `--json`), when it got one.
    pub result: Option<T>,
}

impl<T> HostResult<T> {
    /// The same result with `f` of the one-host command's.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> HostResult<U> {
        HostResult {
            target: self.target,
            pool: self.pool,
            host: self.host,
            ok: self.ok,
            exit_code: self.exit_code,
            summary: self.summary,
            error: self.error,
            result: self.result.map(f),
        }
    }
}

impl<T> fleet::Finished for HostResult<T> {
    fn ok(&self) -> bool {
        self.ok
    }
}

/// Every host's result, in the inventory's (or the command line's) order.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Fleet<T> {
    hosts: Vec<HostResult<T>>,
    #[serde(skip)]
    verb: &'static str,
    #[serde(skip)]
    pools: Vec<(String, usize)>,
}

impl<T: Serialize> Render for Fleet<T> {
    fn render(&self, out: &mut Text) {
        let mut table = Table::new(&["TARGET", "POOL", "HOST", "RESULT", "SUMMARY"]);
        for h in &self.hosts {
            table.row(vec![
                h.target.clone(),
                h.pool.clone().unwrap_or_default(),
                h.host.clone(),
                if h.ok { "ok" } else { "FAILED" }.into(),
                h.summary.clone(),
            ]);
        }
        out.raw(&table.render());
        let ok = self.hosts.iter().filter(|h| h.ok).count();
        out.line(format!(
            "{} {ok} of {} hosts{}",
            self.verb,
            self.hosts.len(),
            if ok < self.hosts.len() {
                format!(" ({} failed)", self.hosts.len() - ok)
            } else {
                String::new()
            }
        ));
        for (pool, n) in &self.pools {
            out.line(format!("pool {pool}: {n} targets"));
        }
        // A non-zero exit says why on stderr, host by host.
        for h in self.hosts.iter().filter(|h| !h.ok) {
            let fix = h.error.as_ref().map(|e| e.fix.clone()).unwrap_or_else(|| {
                "follow each failed check's fix (`moor validate` of the host shows them)".into()
            });
            out.note(format!(
                "error: {} ({}): {}; fix: {fix}",
                h.target, h.host, h.summary
            ));
        }
    }

    fn exit_code(&self) -> u8 {
        self.hosts
            .iter()
            .map(|h| h.exit_code)
            .max()
            .unwrap_or(exit::OK)
    }
}

/// `moor validate --inventory FILE` or `moor validate NAME NAME...`.
pub async fn validate(args: &ValidateArgs, ctx: &Context) -> Result<Fleet<Report>> {
    let access = Access::from_args(&args.connect.target)?;
    let view = view("validating");
    let hosts = match &args.inventory {
        Some(file) => {
            let pools = inventory::load(file, &args.fleet.pool)?;
            let hosts = pools.into_iter().flat_map(|p| p.hosts).collect();
            fleet::each(hosts, args.fleet.parallel, view, label, |host| {
                let access = &access;
                async move {
                    let options = checks::Options {
                        kind: TargetKind::Vm,
                        require_public_ip: args.require_public_ip,
                    };
                    let defaults = Defaults {
                        user: args.connect.user.clone(),
                        port: args.connect.port,
                        ssh_config: args.connect.ssh_config.clone(),
                    };
                    let report = match resolve(&host, access, &defaults, ctx) {
                        Ok((_, resolved)) => {
                            Ok(validate::probe_only(resolved, options, None).await)
                        }
                        Err(e) => Err(e),
                    };
                    validated(host.target, Some(host.pool), host.host, report)
                }
            })
            .await
        }
        None => {
            let store = ctx.store()?;
            let targets = args
                .targets
                .iter()
                .map(|name| ctx.targets.attached(&store, name))
                .collect::<Result<Vec<_>>>()?;
            drop(store);
            fleet::each(
                targets,
                args.fleet.parallel,
                view,
                |t| t.name.clone(),
                |target| {
                    let access = &access;
                    async move {
                        let report =
                            validate::attached(ctx, &target, access, args.require_public_ip).await;
                        validated(target.name, None, target.host, report)
                    }
                },
            )
            .await
        }
    };
    Ok(Fleet {
        hosts,
        verb: "validated",
        pools: Vec::new(),
    })
}

fn validated(
    target: String,
    pool: Option<String>,
    host: String,
    report: Result<Report>,
) -> HostResult<Report> {
    match report {
        Ok(report) => {
            let summary = match &report.error {
                Some(e) => e.message.clone(),
                None => output::summary(&report.checks),
            };
            HostResult {
                target,
                pool,
                host,
                ok: report.ok,
                exit_code: report.exit_code(),
                summary,
                error: report.error.clone(),
                result: Some(report),
            }
        }
        Err(e) => failed(target, pool, host, &e),
    }
}

/// `moor attach --inventory FILE`: every host, then a pool per inventory
/// pool of the targets attached.
pub async fn attach(args: &AttachArgsTop, ctx: &Context) -> Result<Fleet<Outcome>> {
    let file = args.inventory.as_ref().ok_or_else(|| {
        Error::usage(
            "nothing to attach",
            "pass `vm NAME --host HOST`, `hdinsight NAME --cluster C`, or --inventory FILE",
        )
    })?;
    let f = &args.fleet;
    let pools = inventory::load(file, &f.inventory.pool)?;
    // A pool named like a target cannot be made: said before any host is touched.
    let store = ctx.store()?;
    for pool in &pools {
        if store.target(&pool.name)?.is_some() {
            return Err(Error::usage(
                format!(
                    "the inventory's pool {:?} is named like an attached target",
                    pool.name
                ),
                "rename the pool in the inventory (a pool and a target cannot share a name)",
            ));
        }
    }
    drop(store);
    let access = Access::from_args(&f.target)?;
    let hosts: Vec<InventoryHost> = pools.iter().flat_map(|p| p.hosts.clone()).collect();
    let results = fleet::each(
        hosts,
        f.inventory.parallel,
        view("attaching"),
        label,
        |host| {
            let access = &access;
            async move {
                let common = AttachArgs {
                    name: host.target.clone(),
                    options: f.options.clone(),
                };
                let done = async {
                    let defaults = Defaults {
                        user: f.user.clone(),
                        port: f.port,
                        ssh_config: f.ssh_config.clone(),
                    };
                    let (access, resolved) = resolve(&host, access, &defaults, ctx)?;
                    attach::attach(
                        &common,
                        access.auth(),
                        TargetKind::Vm,
                        None,
                        None,
                        resolved,
                        ctx,
                    )
                    .await
                }
                .await;
                attached(host, done)
            }
        },
    )
    .await;
    let made = make_pools(ctx, &pools, &results)?;
    Ok(Fleet {
        hosts: results,
        verb: "attached",
        pools: made,
    })
}

fn attached(host: InventoryHost, done: Result<Outcome>) -> HostResult<Outcome> {
    match done {
        Ok(Outcome::Attached(a)) => HostResult {
            summary: format!("attached; {}", a.agent.describe()),
            target: host.target,
            pool: Some(host.pool),
            host: host.host,
            ok: true,
            exit_code: exit::OK,
            error: None,
            result: Some(Outcome::Attached(a)),
        },
        Ok(Outcome::Refused(report)) => {
            let mut refused = validated(host.target, Some(host.pool), host.host, Ok(*report))
                .map(|r| Outcome::Refused(Box::new(r)));
            refused.summary = format!("not attached: {}", refused.summary);
            refused
        }
        Err(e) => failed(host.target, Some(host.pool), host.host, &e),
    }
}

/// Each inventory pool becomes (or is replaced by) a moor pool of its hosts
/// attached now, in the file's order; a pool none of whose hosts attached
/// is left as it was.
fn make_pools<T>(
    ctx: &Context,
    pools: &[InventoryPool],
    results: &[HostResult<T>],
) -> Result<Vec<(String, usize)>> {
    let store = ctx.store()?;
    let mut made = Vec::new();
    for pool in pools {
        let targets: Vec<String> = results
            .iter()
            .filter(|r| r.ok && r.pool.as_deref() == Some(&pool.name))
            .map(|r| r.target.clone())
            .collect();
        if !targets.is_empty() {
            store.put_pool(&pool.name, &targets)?;
            made.push((pool.name.clone(), targets.len()));
        }
    }
    Ok(made)
}

fn failed<T>(target: String, pool: Option<String>, host: String, e: &Error) -> HostResult<T> {
    HostResult {
        target,
        pool,
        host,
        ok: false,
        exit_code: e.exit_code(),
        summary: e.to_string(),
        error: Some(ErrorJson::from(e)),
        result: None,
    }
}

/// The command line's connection settings for hosts the inventory gives
/// none: `--user`, `--port`, `--ssh-config`.
struct Defaults {
    user: Option<String>,
    port: Option<u16>,
    ssh_config: Option<std::path::PathBuf>,
}

/// An inventory host's connection settings: its own address, port, user,
/// key and password variable (else the command line's, else the ssh
/// config's), and the command's flags.
fn resolve(
    host: &InventoryHost,
    access: &Access,
    defaults: &Defaults,
    ctx: &Context,
) -> Result<(Access, Resolved)> {
    let access = access.for_host(host.identity_file.clone(), host.password_env.clone())?;
    let connect = ConnectArgs {
        host: Some(host.host.clone()),
        port: host.port.or(defaults.port),
        user: host.user.clone().or_else(|| defaults.user.clone()),
        ssh_config: defaults.ssh_config.clone(),
        jump: Vec::new(),
        target: TargetArgs::default(),
    };
    let resolved = settings::for_host_with(&connect, &access, &ctx.workspace, host.host.clone())?;
    Ok((access, resolved))
}

fn label(host: &InventoryHost) -> String {
    format!("{} ({})", host.target, host.host)
}

/// The live view (shown only when stderr is a terminal).
fn view(verb: &'static str) -> View {
    View::Live(verb)
}
