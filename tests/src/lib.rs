//! Test-host harness for moor's integration tests: real OpenSSH servers in
//! Docker containers, each on its own address on a private network.
//!
//! - [`image`] builds (or finds cached) the test-host image from
//!   `deploy/testhost/` with no registry.
//! - [`TestHost::start`] runs one host from a [`HostSpec`] and waits for sshd;
//!   dropping it removes the container, and dropping the last host of a
//!   [`Network`] removes the network, also when a test panics. Every container
//!   and network carries the label `moor.test`, so `.ci/run` can sweep what a
//!   killed run left behind.
//! - [`Moor`] runs the real `moor` binary with an isolated HOME and workspace.
//! - [`postgres::Postgres`] runs a real PostgreSQL cluster of the test's own.
//!
//! Docker is required: without it the harness panics under `CI=true`, and
//! elsewhere tests call [`docker_or_skip`] to skip with a message.

pub mod browser;
mod cluster;
pub mod corporate;
mod fixture;
mod host;
mod keys;
mod moor;
pub mod packages;
pub mod postgres;

pub use cluster::Cluster;
pub use fixture::{assert_exit, find_file, Fixture};
pub use host::{dist_image, image, spark_image, HostSpec, Network, SshAuth, TestHost, USER};
pub use keys::{KeyPair, Keys};
pub use moor::{Moor, Output};

use std::process::Command;
use std::sync::OnceLock;

/// Removes a Docker image when dropped (also when the test panics).
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// The label on every container and network the harness creates.
pub const LABEL: &str = "moor.test";

/// Whether Docker answers. Under `CI=true` a missing engine is a failure.
pub fn docker_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ok = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but the Docker engine does not answer: integration tests need it");
        }
        ok
    })
}

/// Returns `true` when the test should run; prints why it skips otherwise.
pub fn docker_or_skip() -> bool {
    let ok = docker_available();
    if !ok {
        eprintln!(
            "skipping: no Docker engine (integration tests need one; under CI=true this fails)"
        );
    }
    ok
}

/// Serialises the tests that load this two-core machine most (JVMs, image
/// builds, solves): one of them at a time, so that the time limits of the
/// tests running beside them stay honest. Hold the guard for the test.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that panicked while holding it leaves nothing to protect.
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a command, panicking with its stderr when it fails.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A temporary folder holding `files` (name, text), folders made as needed:
/// a source or job folder for a test.
pub fn source_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        std::fs::write(path, text).expect("a file");
    }
    dir
}
