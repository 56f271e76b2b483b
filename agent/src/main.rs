//! The `moor-agent` executable: parses its command line and calls the
//! library (see `lib.rs` for the commands). Logging goes to stderr (for the
//! daemon, its log file), never to stdout, which carries the protocol.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use moor_agent::envs::build as envbuild;
use moor_agent::{runs, serve, supervise, sys, AgentError, Result};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    init_logging();
    let result = match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!(
                "moor-agent {} (protocol {})",
                env!("CARGO_PKG_VERSION"),
                moor_proto::PROTOCOL_VERSION
            );
            Ok(())
        }
        Some("hello") => hello(),
        Some("supervise") => match args.get(1) {
            Some(dir) => supervise::run(Path::new(dir)),
            None => Err(usage()),
        },
        Some("run") => start_run(&args[1..]),
        Some("runs") => runs()
            .list()
            .map_err(AgentError::from)
            .and_then(|r| print_json(&r)),
        Some("show") => match args.get(1) {
            Some(id) => runs()
                .info(id)
                .map_err(AgentError::from)
                .and_then(|r| print_json(&r)),
            None => Err(usage()),
        },
        Some("cancel") => cancel(&args[1..]),
        Some("env-build") => match args.get(1) {
            Some(dir) => envbuild::run(Path::new(dir)),
            None => Err(usage()),
        },
        Some("conda-create") => envbuild::conda_create_command(&args[1..]),
        Some("container-run") => match args.get(1) {
            Some(dir) => match moor_agent::supervise::container::run(Path::new(dir)) {
                Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => Err(e),
            },
            None => Err(usage()),
        },
        Some("launch") => {
            let launched = match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
                // In a container: the ranks given, no run folder.
                (Some("--ranks"), Some(ranks), Some(dash)) if dash == "--" && args.len() > 4 => {
                    moor_agent::job::launch::parse_ranks(ranks)
                        .map(|p| moor_agent::job::launch::run_ranks(p, &args[4..]))
                }
                (Some(dir), Some(dash), _) if dash == "--" && args.len() > 3 => {
                    Some(moor_agent::job::launch::run(Path::new(dir), &args[3..]))
                }
                _ => None,
            };
            match launched {
                Some(Ok(code)) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Some(Err(e)) => Err(e),
                None => Err(usage()),
            }
        }
        Some("mpi-launch") => match (args.get(1), args.get(2).map(String::as_str)) {
            (Some(dir), Some("--")) if args.len() > 3 => {
                match moor_agent::job::mpi::launch(Path::new(dir), &args[3..]) {
                    Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                    Err(e) => Err(e),
                }
            }
            _ => Err(usage()),
        },
        Some("keep-endpoint") => match args.get(1) {
            Some(dir) => match moor_agent::endpoints::keeper::run(Path::new(dir)) {
                Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => Err(e),
            },
            None => Err(usage()),
        },
        Some("mpi-peer") => match args.get(1) {
            Some(dir) => match moor_agent::job::mpi::peer(Path::new(dir)) {
                Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => Err(e),
            },
            None => Err(usage()),
        },
        Some("tracking-relay") => match args.get(1) {
            Some(port) => moor_agent::tracking::relay::relay_in_container(port),
            None => Err(usage()),
        },
        Some("await-port") => match (args.get(1), args.get(2).map(String::as_str)) {
            (Some(port), Some("--")) if args.len() > 3 => {
                moor_agent::tracking::relay::await_port_then_exec(port, &args[3..])
            }
            _ => Err(usage()),
        },
        Some("serve") => serve::serve(),
        Some("stdio") => serve::stdio(),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The command's answer to whoever ran it (a person, or a job's log).
            eprintln!("moor-agent: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs to stderr, plain lines; `MOOR_AGENT_LOG` (`error`, `warn`, `info`,
/// `debug`, `trace`) sets the level, info by default.
fn init_logging() {
    let level = std::env::var("MOOR_AGENT_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

fn usage() -> AgentError {
    AgentError::usage("usage: moor-agent --version | hello | serve | stdio | run [--name N] [--workdir DIR] -- CMD... | runs | show ID | cancel ID [--grace SECS]")
}

fn runs() -> runs::Runs {
    runs::Runs::new(runs::Runs::default_root())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string(value).map_err(|e| AgentError::internal(e.to_string()))?
    );
    Ok(())
}

fn hello() -> Result<()> {
    moor_agent::strict_modes::check(&moor_agent::strict_modes::agent_dir()?)?;
    let build = sys::self_hash()
        .map_err(|e| AgentError::internal(format!("cannot read its own executable: {e}")))?;
    let hello = moor_proto::Hello {
        protocol: moor_proto::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build,
    };
    print!("{}", hello.to_line());
    Ok(())
}

fn start_run(args: &[String]) -> Result<()> {
    let split = args.iter().position(|a| a == "--").ok_or_else(usage)?;
    let (flags, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        return Err(usage());
    }
    let mut name = None;
    let mut workdir = std::env::current_dir()?;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match (flag.as_str(), flags.next()) {
            ("--name", Some(v)) => name = Some(v.clone()),
            ("--workdir", Some(v)) => workdir = PathBuf::from(v),
            _ => return Err(usage()),
        }
    }
    let spec = moor_proto::RunSpec {
        name,
        snapshot: String::new(),
        command: command.to_vec(),
        env: Default::default(),
        environment: None,
        spark: None,
        ..moor_proto::RunSpec::default()
    };
    let exe = std::env::current_exe()?;
    let info = runs().start(&exe, spec, workdir)?;
    print_json(&info)
}

fn cancel(args: &[String]) -> Result<()> {
    let id = args.first().ok_or_else(usage)?;
    let grace = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("--grace"), Some(secs)) => secs.parse().map_err(|_| usage())?,
        (None, _) => 10,
        _ => return Err(usage()),
    };
    let info = runs().cancel(id, Duration::from_secs(grace))?;
    print_json(&info)
}
