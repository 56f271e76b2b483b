//! Builds `moor-agent` as static musl binaries for x86_64 and aarch64 (the
//! `agent` profile: size-optimised, fat LTO; a debug build of `moor`, as the
//! tests make, uses `agent-test`: the same without LTO, built in a third of
//! the time) for the `moor` binary to embed (`moor_cli::AGENTS`): a user
//! with only `moor` can attach machines of either architecture, and a host
//! never downloads anything.
//!
//! The aarch64 build needs a C compiler for aarch64 musl (the C parts of
//! zstd, bzip2 and ring): `deploy/cross/aarch64-linux-musl-cc`, zig's clang
//! from PyPI's `ziglang` (chosen over Debian's cross gcc because it carries
//! musl's own headers and libc for aarch64: one pip package, no glibc headers
//! under a musl binary), and links with `rust-lld`. Set
//! `CC_aarch64_unknown_linux_musl` / `AR_...` / `CARGO_TARGET_..._LINKER` to
//! use others.
//!
//! Beside each agent, the agent compressed with `xz -6` (about 31% of its
//! size): the one copy `moor` embeds. It goes over the wire as it is to a
//! host that has `xz`; `moor` unpacks it for a host without (gzipped for
//! one with `gzip`) and for `--target local` (the build needs `xz`).
//!
//! Set `MOOR_AGENT_BINARY=/path/to/moor-agent` (x86_64) and
//! `MOOR_AGENT_BINARY_AARCH64=...` to embed prebuilt agents instead
//! (packagers, cross builds), and `MOOR_AGENT_ARCHES=x86_64` to build only
//! some (a `moor` without an architecture's agent refuses to attach such
//! hosts, saying so). Under clippy and rust-analyzer (which only check,
//! never link a `moor` that could run) empty placeholders are embedded
//! instead of building the agents; a `moor` built so refuses to install them.
//! Only this package embeds the agents, so checking the library crates never
//! builds them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The architectures carried: the name `uname -m` gives, the Rust target,
/// the variable naming a prebuilt agent.
const ARCHES: [(&str, &str, &str); 2] = [
    ("x86_64", "x86_64-unknown-linux-musl", "MOOR_AGENT_BINARY"),
    (
        "aarch64",
        "aarch64-unknown-linux-musl",
        "MOOR_AGENT_BINARY_AARCH64",
    ),
];

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
        "deploy/cross",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    for var in [
        "MOOR_AGENT_BINARY",
        "MOOR_AGENT_BINARY_AARCH64",
        "MOOR_AGENT_ARCHES",
        // A checking build under another wrapper runs this script again.
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let wanted = env::var("MOOR_AGENT_ARCHES").ok();
    let checking = checking_only();
    let mut to_build = Vec::new();
    for (arch, target, prebuilt_var) in ARCHES {
        let dir = out.join(arch);
        std::fs::create_dir_all(&dir).expect("create the agent's folder");
        let dest = dir.join("moor-agent");
        let prebuilt = env::var_os(prebuilt_var);
        let skipped = wanted
            .as_deref()
            .is_some_and(|w| !w.split([',', ' ']).any(|a| a == arch));
        if prebuilt.is_none() && (checking || skipped) {
            placeholder(&dest);
        } else if let Some(prebuilt) = prebuilt {
            std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
                panic!("{prebuilt_var}={}: {e}", Path::new(&prebuilt).display())
            });
            write_hash(&dest);
            compress(&dest);
        } else {
            to_build.push((target, dest));
        }
    }
    if to_build.is_empty() {
        return;
    }
    // A separate target dir: the outer build holds the lock on the main one.
    let target_dir = root.join("target").join("agent");
    let profile = build(&root, &target_dir, &to_build);
    for (target, dest) in &to_build {
        let built = target_dir.join(target).join(profile).join("moor-agent");
        std::fs::copy(&built, dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        write_hash(dest);
        compress(dest);
    }
}

/// Builds the agent for every target of `to_build` in one cargo run (so the
/// two builds share the machine's cores); returns the profile used.
fn build(root: &Path, target_dir: &Path, to_build: &[(&str, PathBuf)]) -> &'static str {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The `agent` profile (workspace Cargo.toml): size-optimised, fat LTO;
    // for a debug (test) build of moor, `agent-test`: the same without LTO.
    let profile = match env::var("PROFILE").as_deref() {
        Ok("debug") => "agent-test",
        _ => "agent",
    };
    cmd.current_dir(root)
        .args(["build", "--profile", profile, "-p", "moor-agent"]);
    for (target, _) in to_build {
        cmd.args(["--target", target]);
    }
    cmd.arg("--target-dir").arg(target_dir);
    // The outer build's settings (target, flags, jobserver) are not the
    // agent's; a linker chosen for a target is kept.
    let linker_var = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER";
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != linker_var)
            || key.starts_with("RUSTC")
            || key.contains("RUSTFLAGS")
        {
            cmd.env_remove(key.as_ref());
        }
    }
    // C parts of the agent's dependencies (zstd, bzip2, TLS) need a musl C
    // compiler: Debian's musl-tools provides musl-gcc for x86_64, zig's
    // clang (deploy/cross) the aarch64 one.
    let cross = root.join("deploy").join("cross");
    for (var, default) in [
        ("CC_x86_64_unknown_linux_musl", PathBuf::from("musl-gcc")),
        (
            "CC_aarch64_unknown_linux_musl",
            cross.join("aarch64-linux-musl-cc"),
        ),
        (
            "AR_aarch64_unknown_linux_musl",
            cross.join("aarch64-linux-musl-ar"),
        ),
        (linker_var, PathBuf::from("rust-lld")),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        if env::var_os(var).is_none() {
            cmd.env(var, default);
        }
    }
    let status = cmd.status().expect("run cargo to build moor-agent");
    if !status.success() {
        let targets: Vec<&str> = to_build.iter().map(|(t, _)| *t).collect();
        panic!(
            "building moor-agent for {} failed; add the targets with `rustup target add {}`, \
             a musl C compiler for x86_64 (`apt-get install musl-tools`) and zig for aarch64 \
             (`python3 -m pip install ziglang`): deploy/prereqs.sh installs them \
             (or set MOOR_AGENT_BINARY / MOOR_AGENT_BINARY_AARCH64 to prebuilt agents)",
            targets.join(", "),
            targets.join(" ")
        );
    }
    profile
}

/// An empty agent (and packed forms): this moor carries none for that
/// architecture.
fn placeholder(dest: &Path) {
    std::fs::write(dest, b"").expect("write the placeholder agent");
    std::fs::write(dest.with_extension("xz"), b"").expect("write the placeholder");
    write_hash(dest);
}

/// `moor-agent.xz` beside the agent, made by the system's `xz`
/// (reproducible: no names or times stored).
fn compress(agent: &Path) {
    let input = std::fs::File::open(agent).expect("read the agent");
    let output = std::fs::File::create(agent.with_extension("xz")).expect("write the packed agent");
    let status = Command::new("xz")
        .args(["-6", "-c", "-T1"])
        .stdin(input)
        .stdout(output)
        .status()
        .unwrap_or_else(|e| {
            panic!("run xz to compress the agent: {e}; install it (apt-get install xz-utils)")
        });
    assert!(status.success(), "xz failed to compress the agent");
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
