//! The `moor` binary: parse the command line, set up logging, run the
//! command, print its result once (text or JSON), and exit with the
//! documented code.

use std::process::ExitCode;

use clap::Parser;
use moor::cli::{AttachCommand, Cli, Command, EnvCommand, HostKeyCommand};
use moor::cmd::{self, Context};
use moor::error::exit;
use moor::output::{self, Printed};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}; fix: check the process limits (ulimit -n)");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let json = cli.json;
    let ctx = match Context::open(cli.workspace, json, &moor_cli::AGENT) {
        Ok(ctx) => ctx,
        Err(e) => {
            output::error(&e, json);
            return e.exit_code();
        }
    };
    let printed = match &cli.command {
        Command::Validate(args) => cmd::validate::run(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Attach(AttachCommand::Vm(args)) => {
            cmd::attach::vm(args, &ctx).await.map(|r| Printed::of(&r))
        }
        Command::Attach(AttachCommand::Hdinsight(args)) => cmd::attach::hdinsight(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::List => cmd::targets::list(&ctx).map(|r| Printed::of(&r)),
        Command::Show { name } => cmd::targets::show(&ctx, name).map(|r| Printed::of(&r)),
        Command::Detach(args) => cmd::detach::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Run(args) => cmd::run::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Env(command) => match command {
            EnvCommand::Create(args) => cmd::env::create(args, &ctx).map(|r| Printed::of(&r)),
            EnvCommand::List => cmd::env::list(&ctx).map(|r| Printed::of(&r)),
            EnvCommand::Show { name } => cmd::env::show(&ctx, name).map(|r| Printed::of(&r)),
            EnvCommand::Delete { name } => cmd::env::delete(&ctx, name).map(|r| Printed::of(&r)),
            EnvCommand::Prepare(args) => cmd::env_build::prepare(args, &ctx)
                .await
                .map(|r| Printed::of(&r)),
            EnvCommand::Prune(args) => cmd::env_build::prune(args, &ctx)
                .await
                .map(|r| Printed::of(&r)),
        },
        Command::Runs(args) => cmd::runs::list(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Logs(args) => cmd::runs::logs(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Cancel(args) => cmd::runs::cancel(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Download(args) => cmd::download::download(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Status(args) => cmd::status::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::HostKey(HostKeyCommand::Forget { host }) => {
            cmd::host_key::forget(&ctx, host).map(|r| Printed::of(&r))
        }
    };
    match printed {
        Ok(printed) => printed.print(json),
        Err(e) => {
            output::error(&e, json);
            e.exit_code()
        }
    }
}

/// Logs go to stderr (stdout carries results). `RUST_LOG` wins; otherwise
/// -v, -vv, -vvv raise the level from warnings only.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "warn,moor=info",
        2 => "info,moor=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .init();
}
