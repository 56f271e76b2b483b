//! `moor-agent`: the program moor installs on an attached machine. Built as a
//! static x86_64 musl binary, so it runs on any x86_64 Linux whatever its libc.
//!
//! This build answers `--version` and `hello` (the handshake the controller
//! checks after installing it); the daemon, the protocol and runs come with
//! issue 4.

use std::io::Read;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!(
                "moor-agent {} (protocol {})",
                env!("CARGO_PKG_VERSION"),
                moor_proto::PROTOCOL_VERSION
            );
            ExitCode::SUCCESS
        }
        Some("hello") => match self_hash() {
            Ok(build) => {
                let hello = moor_proto::Hello {
                    protocol: moor_proto::PROTOCOL_VERSION,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    build,
                };
                print!("{}", hello.to_line());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("moor-agent: cannot read its own executable: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: moor-agent --version | hello");
            ExitCode::from(2)
        }
    }
}

/// Hex sha256 of the running executable: the build hash in [`moor_proto::Hello`].
fn self_hash() -> std::io::Result<String> {
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
