//! The team workspace's commands, which need no local workspace: the
//! server (`moor server init|start`, crate `moor-server`) and its client
//! (`moor login`, `whoami`, `logout`, `user`, `audit`).

use std::io::Write;

use moor::cli::{Cli, Command, ServerCommand, ServerInitArgs, ServerStartArgs};
use moor::cmd::team;
use moor::error::Result;
use moor::output::{self, Printed};
use moor_server::init::{InitOptions, Initialized};
use moor_server::serve::{StartOptions, Stopped};

/// Runs `command` if it is a team command; its exit code.
pub async fn run(command: &Command, json: bool) -> Option<u8> {
    let printed = match command {
        Command::Server(ServerCommand::Init(args)) => init(args).await.map(|r| Printed::of(&r)),
        Command::Server(ServerCommand::Start(args)) => {
            start(args, json).await.map(|r| Printed::of(&r))
        }
        Command::Login(args) => team::login(args).await.map(|r| Printed::of(&r)),
        Command::Whoami => team::whoami().await.map(|r| Printed::of(&r)),
        Command::Logout => team::logout().map(|r| Printed::of(&r)),
        Command::User(command) => team::user(command).await.map(|r| r.printed()),
        Command::Audit(args) => team::audit(args).await.map(|r| Printed::of(&r)),
        _ => return None,
    };
    Some(match printed {
        Ok(printed) => printed.print(json),
        Err(e) => {
            output::error(&e, json);
            e.exit_code()
        }
    })
}

async fn init(args: &ServerInitArgs) -> Result<Initialized> {
    moor_server::init::init(&InitOptions {
        data: args.data.clone(),
        database: args.database.clone(),
        admin: args.admin.clone(),
    })
    .await
}

/// Serves until a signal; the ready line (URL and fingerprint) is printed
/// as soon as it listens, a JSON line with `--json`.
async fn start(args: &ServerStartArgs, json: bool) -> Result<Stopped> {
    let options = StartOptions {
        data: args.data.clone(),
        database: args.database.clone(),
        listen: args.listen,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
    };
    moor_server::serve::start(&options, |ready| {
        let mut out = std::io::stdout().lock();
        let _ = if json {
            writeln!(out, "{}", serde_json::to_string(ready).expect("serializes"))
        } else {
            writeln!(
                out,
                "moor server: serving {} (certificate {})",
                ready.url, ready.fingerprint
            )
        };
        let _ = out.flush();
    })
    .await
}

/// A workspace command while logged in to a team server (and no
/// `--workspace`/MOOR_WORKSPACE given): run by the server in the team's
/// workspace, its output streamed here. `None`: the local mode.
pub async fn forward(cli: &Cli, json: bool) -> Option<u8> {
    if cli.workspace.is_some() {
        return None;
    }
    let saved = match moor::team::login::load() {
        Ok(Some(saved)) => saved,
        Ok(None) => return None,
        Err(e) => return Some(failed(&e, json)),
    };
    Some(match forward_to(cli, &saved).await {
        Ok(code) => code,
        Err(e) => failed(&e, json),
    })
}

fn failed(e: &moor::Error, json: bool) -> u8 {
    output::error(e, json);
    e.exit_code()
}

async fn forward_to(cli: &Cli, saved: &moor::team::login::Login) -> Result<u8> {
    use moor::team::api::Exec;
    let client = saved.client()?;
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let mut source = None;
    if let Command::Run(args) = &cli.command {
        if args.file.is_none() {
            let dir = match &args.source_dir {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().map_err(|cause| moor::Error::Io {
                    what: "cannot read the current folder",
                    path: ".".into(),
                    cause,
                })?,
            };
            source = Some(moor::team::exec::upload_source(&client, &dir).await?);
            argv = without_source_dir(argv);
        }
    }
    let secrets = secrets_named(&argv).map_err(|name| {
        moor::Error::usage(
            format!("the variable {name} is not set"),
            format!("export {name} with the secret, then run it again"),
        )
    })?;
    let exec = Exec {
        argv,
        secrets,
        source,
    };
    moor::team::exec::exec(&client, &exec).await
}

/// The command line without `--source-dir DIR` (the server puts in the
/// folder it unpacked the uploaded source in).
fn without_source_dir(argv: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if arg == "--source-dir" {
            args.next();
        } else if !arg.starts_with("--source-dir=") {
            out.push(arg);
        }
    }
    out
}

/// The values of the variables `--password-env` and `--key-passphrase-env`
/// name, read here: the server gives them to that one command only.
fn secrets_named(
    argv: &[String],
) -> std::result::Result<std::collections::BTreeMap<String, String>, String> {
    let mut secrets = std::collections::BTreeMap::new();
    let mut args = argv.iter().take_while(|a| *a != "--");
    while let Some(arg) = args.next() {
        let name = match arg.split_once('=') {
            Some(("--password-env" | "--key-passphrase-env", name)) => Some(name.to_owned()),
            None if arg == "--password-env" || arg == "--key-passphrase-env" => {
                args.next().cloned()
            }
            _ => None,
        };
        if let Some(name) = name {
            let value = std::env::var(&name).map_err(|_| name.clone())?;
            secrets.insert(name, value);
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_source_dir_is_left_to_the_server_but_not_the_commands_own() {
        assert_eq!(
            without_source_dir(argv(
                "run --source-dir /home/me/src --target a -- ls --source-dir x"
            )),
            argv("run --target a -- ls --source-dir x")
        );
        assert_eq!(
            without_source_dir(argv("run --source-dir=/src -- true")),
            argv("run -- true")
        );
    }

    #[test]
    fn only_the_variables_the_flags_name_are_sent() {
        std::env::set_var("MOOR_TEST_TEAM_PW", "s3cret");
        let sent = secrets_named(&argv(
            "attach vm a --password-env MOOR_TEST_TEAM_PW -- --password-env HOME",
        ))
        .unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent["MOOR_TEST_TEAM_PW"], "s3cret");
        let missing = secrets_named(&argv(
            "attach vm a --key-passphrase-env=MOOR_TEST_TEAM_NONE",
        ));
        assert_eq!(missing.unwrap_err(), "MOOR_TEST_TEAM_NONE");
    }
}
