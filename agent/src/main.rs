//! `moor-agent`: the program moor installs on an attached machine. Built as a
//! static x86_64 musl binary, so it runs on any x86_64 Linux whatever its libc.
//!
//! Commands:
//! - `--version`, `hello`: what it is; `hello` is the handshake the
//!   controller checks (magic line, protocol, self-hashed build).
//! - `run [--name N] [--workdir DIR] -- CMD ARGS...`: start a run that
//!   outlives this process; prints the run as JSON.
//! - `runs`, `show ID`, `cancel ID [--grace SECS]`: runs as JSON.
//! - `serve`: the per-user daemon speaking moor's protocol on a Unix socket.
//! - `stdio`: what the controller execs over SSH: relays to the daemon,
//!   starting it when it is not running.
//! - `supervise DIR`: internal, the supervisor of one run.
//! - `env-build DIR`, `container-run DIR`: internal, the jobs of an
//!   environment build and of a run in a Docker environment.
//! - `conda-create PREFIX SPEC.json [CHANNEL...]`: a conda environment made
//!   with rattler (also inside Docker builds: the static agent runs anywhere).
//!
//! Runs live under `$HOME/.moor/runs` (see [`runs`]).

mod docker;
mod envbuild;
mod envs;
mod handler;
mod runs;
mod serve;
mod spark;
mod supervise;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sha2::{Digest, Sha256};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            Some(dir) => supervise::run(std::path::Path::new(dir)).map_err(|e| e.to_string()),
            None => Err(usage()),
        },
        Some("run") => start_run(&args[1..]),
        Some("runs") => runs()
            .list()
            .map_err(|e| e.to_string())
            .and_then(|r| print_json(&r)),
        Some("show") => match args.get(1) {
            Some(id) => runs()
                .info(id)
                .map_err(|e| e.to_string())
                .and_then(|r| print_json(&r)),
            None => Err(usage()),
        },
        Some("cancel") => cancel(&args[1..]),
        Some("env-build") => match args.get(1) {
            Some(dir) => envbuild::run(std::path::Path::new(dir)),
            None => Err(usage()),
        },
        Some("conda-create") => envbuild::conda_create_command(&args[1..]),
        Some("container-run") => match args.get(1) {
            Some(dir) => match supervise::container_run(std::path::Path::new(dir)) {
                Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => Err(e),
            },
            None => Err(usage()),
        },
        Some("serve") => serve::serve().map_err(|e| e.to_string()),
        Some("stdio") => serve::stdio().map_err(|e| e.to_string()),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("moor-agent: {message}");
            ExitCode::from(if message.starts_with("usage:") { 2 } else { 1 })
        }
    }
}

fn usage() -> String {
    "usage: moor-agent --version | hello | serve | stdio | run [--name N] [--workdir DIR] -- CMD... | runs | show ID | cancel ID [--grace SECS]".into()
}

fn runs() -> runs::Runs {
    runs::Runs::new(runs::Runs::default_root())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string(value).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn hello() -> Result<(), String> {
    let build = self_hash().map_err(|e| format!("cannot read its own executable: {e}"))?;
    let hello = moor_proto::Hello {
        protocol: moor_proto::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build,
    };
    print!("{}", hello.to_line());
    Ok(())
}

fn start_run(args: &[String]) -> Result<(), String> {
    let split = args.iter().position(|a| a == "--").ok_or_else(usage)?;
    let (flags, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        return Err(usage());
    }
    let mut name = None;
    let mut workdir = std::env::current_dir().map_err(|e| e.to_string())?;
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
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let info = runs()
        .start(&exe, spec, workdir)
        .map_err(|e| e.to_string())?;
    print_json(&info)
}

fn cancel(args: &[String]) -> Result<(), String> {
    let id = args.first().ok_or_else(usage)?;
    let grace = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("--grace"), Some(secs)) => secs.parse().map_err(|_| usage())?,
        (None, _) => 10,
        _ => return Err(usage()),
    };
    let info = runs()
        .cancel(id, Duration::from_secs(grace))
        .map_err(|e| e.to_string())?;
    print_json(&info)
}

/// Hex sha256 of the running executable: the build hash in [`moor_proto::Hello`].
pub(crate) fn self_hash() -> std::io::Result<String> {
    let mut file = std::fs::File::open("/proc/self/exe")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
