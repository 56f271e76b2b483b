//! The team workspace's commands, which need no local workspace: the
//! server (`moor server init|start`, crate `moor-server`) and its client
//! (`moor login`, `whoami`, `logout`, `user`, `audit`).

use std::io::Write;

use moor::cli::{Command, ServerCommand, ServerInitArgs, ServerStartArgs};
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
