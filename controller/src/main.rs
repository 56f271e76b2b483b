//! The `moor` binary: parse the command line, set up logging, run the
//! command, print, and exit with the documented code.

use std::process::ExitCode;

use clap::Parser;
use moor::cli::{AttachCommand, Cli, Command, EnvCommand, HostKeyCommand};
use moor::cmd::{self, Context};
use moor::error::exit;
use moor::output;

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
    let ctx = match Context::open(cli.workspace, json) {
        Ok(ctx) => ctx,
        Err(e) => {
            output::error(&e, json);
            return e.exit_code();
        }
    };
    let result = match &cli.command {
        Command::Validate(args) => cmd::validate::run(args, &ctx).await.map(|report| {
            cmd::validate::print(&report, json);
            report.exit_code()
        }),
        Command::Attach(AttachCommand::Vm(args)) => cmd::attach::vm(args, &ctx)
            .await
            .map(|outcome| cmd::attach::print(&outcome, json)),
        Command::Attach(AttachCommand::Hdinsight(args)) => cmd::attach::hdinsight(args, &ctx)
            .await
            .map(|outcome| cmd::attach::print(&outcome, json)),
        Command::List => cmd::targets::list(&ctx).map(|()| exit::OK),
        Command::Show { name } => cmd::targets::show(&ctx, name).map(|()| exit::OK),
        Command::Detach(args) => cmd::detach::run(args, &ctx).await.map(|d| {
            cmd::detach::print(&d, json);
            exit::OK
        }),
        Command::Run(args) => cmd::run::run(args, &ctx).await,
        Command::Env(command) => match command {
            EnvCommand::Create(args) => cmd::env::create(&ctx, args),
            EnvCommand::List => cmd::env::list(&ctx),
            EnvCommand::Show { name } => cmd::env::show(&ctx, name),
            EnvCommand::Delete { name } => cmd::env::delete(&ctx, name),
            EnvCommand::Prepare(args) => cmd::env::prepare(&ctx, args).await,
            EnvCommand::Prune { target, auth } => cmd::env::prune(&ctx, target, auth).await,
        },
        Command::Runs { target } => cmd::run::list(&ctx, target.as_deref()).await,
        Command::Logs {
            run,
            follow,
            offset,
        } => cmd::run::logs(&ctx, run, *follow, *offset).await,
        Command::Cancel { run, grace } => cmd::run::cancel(&ctx, run, *grace).await,
        Command::Download { run, to } => cmd::run::download(&ctx, run, to.clone()).await,
        Command::Status { targets } => cmd::run::status(&ctx, targets).await,
        Command::HostKey(HostKeyCommand::Forget { host }) => {
            cmd::host_key::forget(&ctx, host).map(|f| {
                cmd::host_key::print(&f, json);
                exit::OK
            })
        }
    };
    result.unwrap_or_else(|e| {
        output::error(&e, json);
        e.exit_code()
    })
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
