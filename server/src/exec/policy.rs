//! Which workspace commands go through the server, and who may run them.
//! The command line is parsed with `moor`'s own definition; what names a
//! file on the caller's machine, a local workspace or the server itself
//! (`--target local`) is refused with the reason, as is a role that does
//! not reach the command's.

use moor::cli::{
    AttachCommand, Cli, Command, EndpointCommand, EnvCommand, PoolCommand, RunsCommand,
};
use moor::team::api::{Fault, Role};

use crate::db::Refusal;

/// What a command needs and how the audit log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The least role that may run it.
    pub need: Role,
    /// The audit log's action (`attach`, `run`, ...; empty: not logged).
    pub action: &'static str,
    /// What it acts on (a target, a run).
    pub subject: String,
    /// A run a `cancel` names: a member may cancel only its own.
    pub cancels: Option<String>,
    /// Whether it is a `moor run` that takes the uploaded source.
    pub takes_source: bool,
    /// The machine an attach names (host, port): a teammate's already?
    pub attaches: Option<(String, u16)>,
}

/// Flags that name files on the caller's machine, or read its terminal.
const CALLER_FILES: &[&str] = &[
    "--workspace",
    "--key",
    "--ssh-config",
    "--known-hosts",
    "--inventory",
    "--file",
    "-f",
    "--env-file",
    "--source-dir",
    "--password-stdin",
    "--asset",
    "--data",
    "--model",
    "--scoring-script",
    "--conda-file",
    "--requirements",
    "--dockerfile",
    "--docker-context",
];

/// Checks a command line; the plan to run it.
pub fn check(argv: &[String]) -> Result<Plan, Refusal> {
    for (i, arg) in argv.iter().enumerate() {
        if arg == "--" {
            break;
        }
        let flag = arg.split('=').next().unwrap_or(arg);
        if CALLER_FILES.contains(&flag) || (arg.starts_with("-f") && !arg.starts_with("--")) {
            return Err(not_yet(&format!(
                "{flag} (it names a file or terminal on your machine)"
            )));
        }
        let local = arg == "--target=local"
            || (arg == "--target" && argv.get(i + 1).is_some_and(|v| v == "local"));
        if local {
            return Err(Refusal::new(
                Fault::BadRequest,
                "--target local through a team server would run on the server's own machine",
                "name an attached target (moor list), or pass --workspace DIR to run here in a local workspace",
            ));
        }
    }
    let cli = parse(argv)?;
    plan(&cli.command)
}

fn parse(argv: &[String]) -> Result<Cli, Refusal> {
    use clap::Parser;
    let args = std::iter::once("moor".to_owned()).chain(argv.iter().cloned());
    Cli::try_parse_from(args).map_err(|e| {
        let text = e.render().to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("bad command line")
            .trim_start_matches("error: ");
        Refusal::new(
            Fault::BadRequest,
            first.to_owned(),
            "see `moor --help` (or `moor COMMAND --help`)",
        )
    })
}

fn plan(command: &Command) -> Result<Plan, Refusal> {
    let read = |what: &str| Plan {
        need: Role::Viewer,
        action: "",
        subject: what.to_owned(),
        cancels: None,
        takes_source: false,
        attaches: None,
    };
    let change = |need: Role, action: &'static str, subject: &str| Plan {
        need,
        action,
        subject: subject.to_owned(),
        cancels: None,
        takes_source: false,
        attaches: None,
    };
    Ok(match command {
        Command::List
        | Command::Show { .. }
        | Command::Logs(_)
        | Command::Metrics(_)
        | Command::Status(_) => read(""),
        Command::Runs(args) => match &args.action {
            None => read(""),
            Some(RunsCommand::Prune(p)) => change(Role::Admin, "runs.prune", &p.target),
        },
        Command::Validate(args) if args.inventory.is_none() && !args.targets.is_empty() => {
            change(Role::Member, "", &args.targets.join(","))
        }
        Command::Attach(top) => match &top.command {
            Some(AttachCommand::Vm(vm)) => Plan {
                attaches: vm
                    .connect
                    .host
                    .clone()
                    .map(|host| (host, vm.connect.port.unwrap_or(22))),
                ..change(Role::Admin, "attach", &vm.common.name)
            },
            Some(AttachCommand::Hdinsight(h)) => change(Role::Admin, "attach", &h.common.name),
            None => return Err(not_yet("attach --inventory")),
        },
        Command::Detach(args) => change(Role::Admin, "detach", &args.name),
        Command::Network { name, .. } => change(Role::Admin, "network", name),
        Command::Run(args) => Plan {
            need: Role::Member,
            action: "run",
            subject: args.target.join(",") + args.pool.as_deref().unwrap_or(""),
            cancels: None,
            takes_source: true,
            attaches: None,
        },
        Command::Cancel(args) => Plan {
            need: Role::Member,
            action: "cancel",
            subject: args.run.clone(),
            cancels: Some(args.run.clone()),
            takes_source: false,
            attaches: None,
        },
        Command::Pool(PoolCommand::List | PoolCommand::Show { .. }) => read(""),
        Command::Pool(PoolCommand::Create { name, .. }) => {
            change(Role::Member, "pool.create", name)
        }
        Command::Pool(PoolCommand::Delete { name }) => change(Role::Member, "pool.delete", name),
        Command::Env(EnvCommand::List | EnvCommand::Show { .. }) => read(""),
        Command::Env(EnvCommand::Delete { name }) => change(Role::Member, "env.delete", name),
        Command::Env(EnvCommand::Prepare(_)) => change(Role::Member, "env.prepare", ""),
        Command::Endpoint(
            EndpointCommand::List { .. } | EndpointCommand::Show(_) | EndpointCommand::Logs { .. },
        ) => read(""),
        Command::Endpoint(EndpointCommand::Stop(e) | EndpointCommand::Delete(e)) => {
            let action = if matches!(command, Command::Endpoint(EndpointCommand::Stop(_))) {
                "endpoint.stop"
            } else {
                "endpoint.delete"
            };
            change(Role::Member, action, &e.name)
        }
        Command::Endpoint(EndpointCommand::Start { endpoint, .. }) => {
            change(Role::Member, "endpoint.start", &endpoint.name)
        }
        other => return Err(not_yet(&command_name(other))),
    })
}

fn command_name(command: &Command) -> String {
    let debug = format!("{command:?}");
    let name = debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("this command")
        .to_lowercase();
    format!("moor {name}")
}

fn not_yet(what: &str) -> Refusal {
    Refusal::new(
        Fault::BadRequest,
        format!("{what} does not go through a team server in this version"),
        "pass --workspace DIR to use a local workspace for it (docs/reference.md, Team workspace, lists what goes through)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn roles_follow_the_command() {
        assert_eq!(check(&argv("runs --json")).unwrap().need, Role::Viewer);
        assert_eq!(check(&argv("list")).unwrap().need, Role::Viewer);
        let run = check(&argv("run --target gpu1 -- python train.py")).unwrap();
        assert_eq!(
            (run.need, run.takes_source, run.action),
            (Role::Member, true, "run")
        );
        let cancel = check(&argv("cancel 20261207T100000-1a2b3c4d")).unwrap();
        assert_eq!(cancel.cancels.as_deref(), Some("20261207T100000-1a2b3c4d"));
        let attach = check(&argv("attach vm gpu1 --host 10.0.0.5 --password-env PW")).unwrap();
        assert_eq!(
            (attach.need, attach.subject.as_str()),
            (Role::Admin, "gpu1")
        );
        assert_eq!(check(&argv("detach gpu1")).unwrap().need, Role::Admin);
        assert_eq!(
            check(&argv("pool create p --target a")).unwrap().need,
            Role::Member
        );
    }

    #[test]
    fn what_names_the_callers_files_or_the_server_itself_is_refused() {
        for line in [
            "attach vm gpu1 --host h --key /home/me/.ssh/id",
            "run -f job.yml",
            "run -fjob.yml",
            "run --env-file=.env -- true",
            "run --target local -- true",
            "run --target=local -- true",
            "--workspace /tmp/w list",
            "attach vm gpu1 --host h --password-stdin",
            "ssh gpu1",
            "ui",
        ] {
            let refused = check(&argv(line)).unwrap_err();
            assert_eq!(refused.fault, Fault::BadRequest, "{line}");
        }
        // After `--`, the command's own arguments are its own.
        assert!(check(&argv("run --target gpu1 -- python x.py -f --key")).is_ok());
    }
}
