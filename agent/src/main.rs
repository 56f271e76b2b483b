//! `moor-agent`: the program moor installs on an attached machine.
//!
//! This build answers `--version` only; the daemon, the protocol and runs come
//! with the attach and runs work (issues 3 and 4).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            let hello = moor_proto::Hello::current();
            println!("moor-agent {} (protocol {})", hello.version, hello.protocol);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: moor-agent --version");
            ExitCode::from(2)
        }
    }
}
