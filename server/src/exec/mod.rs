//! `POST /v1/exec`: a workspace command, run for the caller by this same
//! `moor` in the team's workspace (`DATA/workspace`), so that it has the
//! local mode's flags, output, `--json` and exit codes exactly. The server
//! checks the command and the caller's role first ([`policy`]), gives the
//! child the caller's name (runs are recorded as theirs) and the secrets the
//! caller sent for it (in its environment only), and streams its stdout and
//! stderr back as they come ([`moor::team::frames`]), then its exit code.
//! The stream is bounded (a few chunks in flight; a slow reader slows the
//! command). A caller that goes away is a Ctrl-C to the command (a run goes
//! on on its target, as with the local mode).

mod child;
pub mod policy;

use std::collections::BTreeMap;
use std::sync::Arc;

use moor::team::api::{Exec, Fault, Role};

use crate::db::{Caller, Refusal};
use crate::shared::Shared;

/// Environment variable names a caller may send values for: only those its
/// command line names with `--password-env` or `--key-passphrase-env`, and
/// never one that would change how moor or the loader behave.
fn check_secrets(argv: &[String], secrets: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for name in secrets.keys() {
        let named = argv
            .windows(2)
            .any(|w| (w[0] == "--password-env" || w[0] == "--key-passphrase-env") && w[1] == *name)
            || argv.iter().any(|a| {
                *a == format!("--password-env={name}")
                    || *a == format!("--key-passphrase-env={name}")
            });
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with("MOOR_")
            && !name.starts_with("LD_")
            && ![
                "PATH",
                "HOME",
                "USER",
                "SHELL",
                "TMPDIR",
                "RUST_LOG",
                "SSH_AUTH_SOCK",
            ]
            .contains(&name.as_str());
        if !named || !plain {
            return Err(Refusal::new(
                Fault::BadRequest,
                format!("a value for {name:?}, which the command line does not name with --password-env or --key-passphrase-env (or may not be set)"),
                "send what `moor` sends",
            ));
        }
    }
    Ok(())
}

/// Runs `exec` for `caller`.
pub async fn exec(
    shared: &Arc<Shared>,
    caller: &Caller,
    exec: Exec,
) -> Result<tokio::sync::mpsc::Receiver<bytes::Bytes>, Refusal> {
    let plan = policy::check(&exec.argv)?;
    let what = match plan.action {
        "" => "run this command".to_owned(),
        action => format!("run `moor {}`", action.replace('.', " ")),
    };
    caller.require(plan.need, &what)?;
    check_secrets(&exec.argv, &exec.secrets)?;
    if let Some(run) = &plan.cancels {
        if caller.role < Role::Admin {
            check_own_run(shared, caller, run)?;
        }
    }
    if let Some((host, port)) = &plan.attaches {
        check_not_the_teams(shared, host, *port, &plan.subject).await?;
    }
    let mut argv = exec.argv.clone();
    if plan.takes_source {
        let sha = exec.source.as_deref().ok_or_else(|| {
            Refusal::new(
                Fault::BadRequest,
                "a run through the team server needs its source uploaded first",
                "send what `moor` sends",
            )
        })?;
        let dir = crate::sources::unpacked(shared.data.dir(), sha).await?;
        // The source goes before the command's own arguments.
        let at = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
        argv.splice(
            at..at,
            ["--source-dir".to_owned(), dir.display().to_string()],
        );
    }
    child::stream(shared.clone(), caller.clone(), plan, argv, exec.secrets).await
}

/// Refuses to attach, under another name, a machine the team has already:
/// the caller is told which target it is and who attached it.
async fn check_not_the_teams(
    shared: &Shared,
    host: &str,
    port: u16,
    name: &str,
) -> Result<(), Refusal> {
    let store = workspace_store(shared)?;
    let targets = store.targets().map_err(unreadable)?;
    let Some(known) = targets
        .iter()
        .find(|t| t.host == host && t.port == port && t.name != name)
    else {
        return Ok(());
    };
    let by = shared.db.last_actor("attach", &known.name).await?;
    Err(Refusal::new(
        Fault::Taken,
        format!(
            "{host}:{port} is already attached as {} by {}",
            known.name,
            by.as_deref().filter(|u| !u.is_empty()).unwrap_or("a teammate")
        ),
        format!("use the target {} (moor list); to attach it again under its name, an admin runs `moor attach vm {} ...`", known.name, known.name),
    ))
}

fn unreadable(e: moor::Error) -> Refusal {
    Refusal::new(
        Fault::Unavailable,
        format!("cannot read the team's workspace: {e}"),
        e.fix(),
    )
}

fn workspace_store(shared: &Shared) -> Result<moor::store::Store, Refusal> {
    let workspace = moor::workspace::Workspace::open(shared.data.dir().join("workspace"))
        .map_err(unreadable)?;
    workspace.store().map_err(unreadable)
}

/// Refuses a member's cancel of a run someone else started.
fn check_own_run(shared: &Shared, caller: &Caller, run: &str) -> Result<(), Refusal> {
    let unreadable = |e: moor::Error| {
        Refusal::new(
            Fault::Unavailable,
            format!("cannot read the team's workspace: {e}"),
            e.fix(),
        )
    };
    let workspace = moor::workspace::Workspace::open(shared.data.dir().join("workspace"))
        .map_err(unreadable)?;
    let store = workspace.store().map_err(unreadable)?;
    let owners = store.run_owners().map_err(unreadable)?;
    let found = store.find_runs(run).map_err(unreadable)?;
    let jobs = store.find_jobs(run).map_err(unreadable)?;
    let nodes = jobs
        .iter()
        .flat_map(|job| job.nodes.iter().map(|(_, id)| id));
    for id in found.iter().map(|(id, _)| id).chain(nodes) {
        match owners.get(id) {
            Some(owner) if *owner == caller.name => {}
            owner => {
                return Err(Refusal::new(
                    Fault::Forbidden,
                    format!(
                        "run {id} was started by {}: a member cancels only its own runs",
                        owner.map_or("someone outside the team", String::as_str)
                    ),
                    "ask its owner or an admin to cancel it",
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_secret_is_taken_only_for_a_variable_the_command_names() {
        let named = argv("attach vm a --host h --password-env PW");
        let one = |name: &str| BTreeMap::from([(name.to_owned(), "x".to_owned())]);
        check_secrets(&named, &one("PW")).unwrap();
        check_secrets(&argv("attach vm a --password-env=PW"), &one("PW")).unwrap();
        // Not named, or named but one that would change how moor or the
        // loader behave: refused.
        assert!(check_secrets(&named, &one("OTHER")).is_err());
        for name in ["PATH", "LD_PRELOAD", "MOOR_WORKSPACE", "HOME", "lower"] {
            let argv = argv(&format!("attach vm a --password-env {name}"));
            assert!(check_secrets(&argv, &one(name)).is_err(), "{name}");
        }
    }
}
