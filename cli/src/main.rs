//! The `moor` binary: parse the command line, set up logging, run the
//! command, print its result once (text or JSON), and exit with the
//! documented code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use moor::cli::{
    AttachCommand, Cli, Command, EndpointCommand, EnvCommand, HostKeyCommand, JobCommand,
    MuxCommand, PoolCommand, RunsCommand,
};

mod team;
use moor::cmd::{self, Context};
use moor::error::exit;
use moor::output::{self, Printed};

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    match &cli.command {
        // Written whole, then printed: a closed pipe (`| head`) is no panic.
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command(), "moor", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let mut page = Vec::new();
            let _ = clap_mangen::Man::new(command()).render(&mut page);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    init_logging(cli.verbose);
    // Several workers: a job's SSH handshakes and streams to many hosts run
    // on every core, not one after another on one.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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

/// moor's command line, with a version that names the agent it carries.
fn command() -> clap::Command {
    let agents = &moor_cli::AGENTS;
    let version = if agents.is_present() {
        let builds: Vec<String> = agents
            .builds
            .iter()
            .filter(|agent| agent.is_present())
            .map(|agent| format!("{} {}", agent.arch, agent.install_id()))
            .collect();
        format!(
            "{} (agents, static musl: {})",
            env!("CARGO_PKG_VERSION"),
            builds.join(", ")
        )
    } else {
        format!(
            "{} (no agent: a build for checking only)",
            env!("CARGO_PKG_VERSION")
        )
    };
    Cli::command().version(&*Box::leak(version.into_boxed_str()))
}

/// Parses the command line. `--help` and `--version` print and end; a
/// usage error is clap's message, or with `--json` a JSON error object on
/// stdout and one line on stderr (exit 2 either way).
fn parse() -> Result<Cli, u8> {
    let matches = command().try_get_matches();
    let error = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    let informational = matches!(
        error.kind(),
        clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args().any(|a| a == "--json") {
        let _ = error.print();
        return Err(if error.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        });
    }
    let text = error.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_owned();
    let usage = moor::error::Error::usage(message, "see `moor --help` (or `moor COMMAND --help`)");
    output::error(&usage, true);
    Err(exit::USAGE)
}

async fn run(cli: Cli) -> u8 {
    let json = cli.json;
    // The team commands need no local workspace.
    if let Some(code) = team::run(&cli.command, json).await {
        return code;
    }
    // Logged in to a team server: the workspace commands are the team's.
    if let Some(code) = team::forward(&cli, json).await {
        return code;
    }
    let ctx = match Context::open(cli.workspace, json, &moor_cli::AGENTS) {
        Ok(ctx) => ctx,
        Err(e) => {
            output::error(&e, json);
            return e.exit_code();
        }
    };
    let printed = match &cli.command {
        Command::Validate(args) if args.inventory.is_some() || args.targets.len() > 1 => {
            cmd::fleet::validate(args, &ctx)
                .await
                .map(|r| Printed::of(&r))
        }
        Command::Validate(args) => cmd::validate::run(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Attach(top) => match &top.command {
            Some(AttachCommand::Vm(args)) => {
                cmd::attach::vm(args, &ctx).await.map(|r| Printed::of(&r))
            }
            Some(AttachCommand::Hdinsight(args)) => cmd::attach::hdinsight(args, &ctx)
                .await
                .map(|r| Printed::of(&r)),
            None => cmd::fleet::attach(top, &ctx).await.map(|r| Printed::of(&r)),
        },
        Command::List => cmd::targets::list(&ctx).map(|r| Printed::of(&r)),
        Command::Show { name } => cmd::targets::show(&ctx, name).map(|r| Printed::of(&r)),
        Command::Network { name, network } => {
            cmd::targets::network(&ctx, name, network).map(|r| Printed::of(&r))
        }
        Command::Detach(args) => cmd::detach::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Run(args) => cmd::run::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Job(JobCommand::Submit(args)) => {
            cmd::run::submit(args, &ctx).await.map(|r| Printed::of(&r))
        }
        Command::Pool(command) => pool(command, &ctx).await,
        Command::Env(command) => env(command, &ctx).await,
        Command::Runs(args) => match &args.action {
            Some(RunsCommand::Prune(prune)) => {
                cmd::runs::prune(prune, &ctx).await.map(|r| Printed::of(&r))
            }
            None => cmd::runs::list(args, &ctx).await.map(|r| Printed::of(&r)),
        },
        Command::Logs(args) => cmd::runs::logs(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Metrics(args) => cmd::metrics::metrics(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Cancel(args) => cmd::runs::cancel(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Download(args) => cmd::download::download(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Status(args) => cmd::status::run(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Endpoint(command) => endpoint(command, &ctx).await,
        Command::Forward(args) => cmd::forward::forward(args, &ctx)
            .await
            .map(|r| Printed::of(&r)),
        Command::Ui(args) => moor::ui::serve(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Ssh(args) => cmd::ssh::ssh(args, &ctx).await.map(|r| Printed::of(&r)),
        Command::Mux(MuxCommand::Status) => cmd::mux::status(&ctx).await.map(|r| Printed::of(&r)),
        Command::Mux(MuxCommand::Stop) => cmd::mux::stop(&ctx).await.map(|r| Printed::of(&r)),
        Command::Mux(MuxCommand::Serve { idle, warm }) => {
            return match cmd::mux::serve(&ctx, *idle, warm.clone()).await {
                Ok(()) => exit::OK,
                Err(e) => {
                    output::error(&e, json);
                    e.exit_code()
                }
            };
        }
        Command::HostKey(HostKeyCommand::Forget { host }) => {
            cmd::host_key::forget(&ctx, host).map(|r| Printed::of(&r))
        }
        Command::Completions { .. } | Command::Man => unreachable!("handled before the workspace"),
        Command::Server(_)
        | Command::Login(_)
        | Command::Whoami
        | Command::Logout
        | Command::User(_)
        | Command::Audit(_) => unreachable!("handled before the workspace"),
    };
    match printed {
        Ok(printed) => printed.print(json),
        Err(e) => {
            output::error(&e, json);
            e.exit_code()
        }
    }
}

/// `moor endpoint ...`.
async fn endpoint(command: &EndpointCommand, ctx: &Context) -> moor::error::Result<Printed> {
    use cmd::endpoint::{invoke, manage};
    match command {
        EndpointCommand::Create(args) => cmd::endpoint::create(args, ctx)
            .await
            .map(|r| Printed::of(&r)),
        EndpointCommand::List { target, connect } => manage::list(ctx, target.as_deref(), connect)
            .await
            .map(|r| Printed::of(&r)),
        EndpointCommand::Show(args) => manage::show(ctx, args).await.map(|r| Printed::of(&r)),
        EndpointCommand::Logs { endpoint, follow } => manage::logs(ctx, endpoint, *follow)
            .await
            .map(|r| Printed::of(&r)),
        EndpointCommand::Stop(args) => manage::stop(ctx, args).await.map(|r| Printed::of(&r)),
        EndpointCommand::Start {
            endpoint,
            wait_timeout,
        } => manage::start(ctx, endpoint, *wait_timeout)
            .await
            .map(|r| Printed::of(&r)),
        EndpointCommand::Delete(args) => manage::delete(ctx, args).await.map(|r| Printed::of(&r)),
        EndpointCommand::Invoke(args) => invoke::invoke(args, ctx).await.map(|r| Printed::of(&r)),
    }
}

/// `moor env ...`.
async fn env(command: &EnvCommand, ctx: &Context) -> moor::error::Result<Printed> {
    match command {
        EnvCommand::Create(args) => cmd::env::create(args, ctx).map(|r| Printed::of(&r)),
        EnvCommand::List => cmd::env::list(ctx).map(|r| Printed::of(&r)),
        EnvCommand::Show { name } => cmd::env::show(ctx, name).map(|r| Printed::of(&r)),
        EnvCommand::Delete { name } => cmd::env::delete(ctx, name).map(|r| Printed::of(&r)),
        EnvCommand::Prepare(args) => cmd::env_build::prepare(args, ctx)
            .await
            .map(|r| Printed::of(&r)),
        EnvCommand::Prune(args) => cmd::env_build::prune(args, ctx)
            .await
            .map(|r| Printed::of(&r)),
    }
}

/// `moor pool ...`.
async fn pool(command: &PoolCommand, ctx: &Context) -> moor::error::Result<Printed> {
    match command {
        PoolCommand::Create { name, target } => {
            cmd::pool::create(ctx, name, target).map(|r| Printed::of(&r))
        }
        PoolCommand::List => cmd::pool::list(ctx).map(|r| Printed::of(&r)),
        PoolCommand::Show { name } => cmd::pool::show(ctx, name).map(|r| Printed::of(&r)),
        PoolCommand::Delete { name } => cmd::pool::delete(ctx, name).map(|r| Printed::of(&r)),
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
