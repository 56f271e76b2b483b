//! The local target (`--target local`): this machine, no SSH. Its agent is
//! the one this `moor` carries for this machine's architecture, installed under `~/.moor/agent/` here and
//! spoken to over its stdin and stdout.

use std::path::PathBuf;
use std::process::Stdio;

use crate::agent_bundle::{AgentBundle, Agents};
use crate::agent_client::AgentClient;
use crate::error::{Error, Result};
use crate::store::{AuthRef, Target, TargetState};
use crate::target_kind::TargetKind;

/// The name that means this machine.
pub const NAME: &str = "local";

/// This machine as a target.
pub fn target(agents: &Agents) -> Target {
    let now = crate::time::now();
    let (version, build) = agents
        .local()
        .map_or(("", ""), |bundle| (bundle.version, bundle.sha256));
    Target {
        name: NAME.into(),
        kind: TargetKind::Local,
        host: "localhost".into(),
        port: 0,
        user: std::env::var("USER").unwrap_or_default(),
        jumps: Vec::new(),
        network: Default::default(),
        auth: AuthRef::Agent,
        resource_id: None,
        host_key_algorithm: String::new(),
        host_key_fingerprint: String::new(),
        machine_id: String::new(),
        agent_version: version.into(),
        agent_build: build.into(),
        state: TargetState::Ready,
        facts: None,
        checks: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
    }
}

/// Starts this machine's agent (installing it first if needed) and shakes hands.
pub async fn connect(agents: &Agents) -> Result<AgentClient> {
    let path = install(agents)?;
    let mut child = tokio::process::Command::new(&path)
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|cause| Error::Io {
            what: "cannot start the local agent",
            path: path.clone(),
            cause,
        })?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    // The relay ends when its stdin closes; the daemon lives on.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    AgentClient::over(Box::new(stdout), Box::new(stdin), "localhost".into()).await
}

/// Installs the bundled agent in `~/.moor/agent/<id>/` on this machine
/// (atomically, checked by its hash) unless it is there; returns its path.
fn install(agents: &Agents) -> Result<PathBuf> {
    let bundle: &AgentBundle = match agents.local() {
        Some(bundle) => bundle,
        None if !agents.is_present() => {
            return Err(Error::usage(
                "this moor was built for checking only and carries no agent",
                "build it with `cargo build -p moor-cli` (not under clippy or rust-analyzer)",
            ))
        }
        None => {
            return Err(Error::usage(
                format!(
                    "this moor carries no agent for this machine's architecture ({}), only for {}",
                    std::env::consts::ARCH,
                    agents.arches()
                ),
                "run `--target local` from an x86_64 or aarch64 machine",
            ))
        }
    };
    let home = crate::workspace::home_dir().ok_or_else(|| {
        Error::usage(
            "HOME is not set",
            "set HOME: the local agent lives in ~/.moor",
        )
    })?;
    let dir = home.join(".moor/agent").join(bundle.install_id());
    let path = dir.join("moor-agent");
    let io = |cause| Error::Io {
        what: "cannot install the local agent",
        path: path.clone(),
        cause,
    };
    let present = std::fs::read(&path)
        .map(|bytes| moor_proto::sha256_hex(&bytes) == bundle.sha256)
        .unwrap_or(false);
    if !present {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        let binary = bundle.binary().map_err(crate::agent_bundle::damaged)?;
        crate::private_fs::write_atomic(&path, binary, 0o700).map_err(io)?;
    }
    Ok(path)
}
