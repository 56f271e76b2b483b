//! Builds `moor-agent` as a static x86_64 musl binary (the `agent` profile:
//! size-optimised, fat LTO) for the `moor` binary to embed (`moor_cli::AGENT`):
//! a user with only `moor` can attach machines, and a host never downloads
//! anything.
//!
//! Beside it, the agent compressed with `xz -6` and `gzip -9` (about 31% and
//! 43% of its size), which is what goes over the wire to a host that has
//! `xz` or `gzip` to unpack it (the build needs both tools).
//!
//! Set `MOOR_AGENT_BINARY=/path/to/moor-agent` to embed a prebuilt agent
//! instead (packagers, cross builds). Under clippy and rust-analyzer (which
//! only check, never link a `moor` that could run) an empty placeholder is
//! embedded instead of building the agent; a `moor` built so refuses to
//! install it. Only this package embeds the agent, so checking the library
//! crates never builds it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("cli/ is in the workspace")
        .to_owned();
    for path in [
        "agent/src",
        "agent/Cargo.toml",
        "proto/src",
        "proto/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=MOOR_AGENT_BINARY");
    // A checking build under another wrapper runs this script again.
    println!("cargo:rerun-if-env-changed=RUSTC_WRAPPER");
    println!("cargo:rerun-if-env-changed=RUSTC_WORKSPACE_WRAPPER");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let dest = out.join("moor-agent");

    if env::var_os("MOOR_AGENT_BINARY").is_none() && checking_only() {
        std::fs::write(&dest, b"").expect("write the placeholder agent");
        for packed in ["xz", "gz"] {
            std::fs::write(dest.with_extension(packed), b"").expect("write the placeholder");
        }
        write_hash(&dest);
        return;
    }

    if let Some(prebuilt) = env::var_os("MOOR_AGENT_BINARY") {
        std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
            panic!("MOOR_AGENT_BINARY={}: {e}", Path::new(&prebuilt).display())
        });
        write_hash(&dest);
        compress(&dest);
        return;
    }

    // A separate target dir: the outer build holds the lock on the main one.
    let target_dir = root.join("target").join("agent");
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        // The `agent` profile (workspace Cargo.toml): size-optimised, fat LTO.
        .args([
            "build",
            "--profile",
            "agent",
            "-p",
            "moor-agent",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings (target, flags, jobserver) are not the agent's.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.contains("RUSTFLAGS")
        {
            cmd.env_remove(key.as_ref());
        }
    }
    // C parts of the agent's dependencies (zstd, bzip2, TLS) need a musl C
    // compiler: Debian's musl-tools provides musl-gcc.
    let cc_var = "CC_x86_64_unknown_linux_musl";
    if env::var_os(cc_var).is_none() {
        cmd.env(cc_var, "musl-gcc");
    }
    println!("cargo:rerun-if-env-changed={cc_var}");
    let status = cmd.status().expect("run cargo to build moor-agent");
    if !status.success() {
        panic!(
            "building moor-agent for {TARGET} failed; add the target with `rustup target add {TARGET}` \
             and a musl C compiler (`apt-get install musl-tools`) \
             (or set MOOR_AGENT_BINARY to a prebuilt agent)"
        );
    }
    let built = target_dir.join(TARGET).join("agent").join("moor-agent");
    std::fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    write_hash(&dest);
    compress(&dest);
}

/// `moor-agent.xz` and `moor-agent.gz` beside the agent, made by the
/// system's `xz` and `gzip` (reproducible: no names or times stored).
fn compress(agent: &Path) {
    for (tool, args, ext) in [
        ("xz", &["-6", "-c", "-T1"][..], "xz"),
        ("gzip", &["-9", "-n", "-c"][..], "gz"),
    ] {
        let input = std::fs::File::open(agent).expect("read the agent");
        let output =
            std::fs::File::create(agent.with_extension(ext)).expect("write the packed agent");
        let status = Command::new(tool)
            .args(args)
            .stdin(input)
            .stdout(output)
            .status()
            .unwrap_or_else(|e| panic!("run {tool} to compress the agent: {e}; install it (apt-get install xz-utils gzip)"));
        assert!(status.success(), "{tool} failed to compress the agent");
    }
}

/// Whether this build only checks (clippy, rust-analyzer): their compiler
/// wrappers are named in `RUSTC_WORKSPACE_WRAPPER` / `RUSTC_WRAPPER`.
fn checking_only() -> bool {
    ["RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER"]
        .iter()
        .any(|var| {
            env::var_os(var).is_some_and(|w| {
                let name = Path::new(&w)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.starts_with("clippy-driver") || name.starts_with("rust-analyzer")
            })
        })
}

/// `moor-agent.sha256` beside the agent: its hash, computed once here rather
/// than at every start of `moor` (the agent is ~20 MB).
fn write_hash(agent: &Path) {
    let bytes = std::fs::read(agent).expect("read the agent");
    let hex = moor_proto::sha256_hex(&bytes);
    std::fs::write(agent.with_extension("sha256"), hex).expect("write the agent's hash");
}
