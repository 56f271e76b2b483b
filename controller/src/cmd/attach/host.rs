//! The steps of attach that change the host, each idempotent so that a
//! second attach completes an interrupted one: the claim (`~/.moor/claim`,
//! created with `ln` so one of two racing workspaces wins, and the enrolled
//! workspace key), and the agent's install (uploaded, verified on the host,
//! renamed into place) unless the probe found this very build.

use std::time::Duration;

use serde::Serialize;

use crate::agent_bundle::AgentBundle;
use crate::cmd::Context;
use crate::error::{Error, Result};
use crate::probe::{Claim, Facts};
use crate::remote;
use crate::ssh::Session;
use crate::transfer::Transfer;

/// Time allowed for the claim script.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for uploading and checking the agent.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What attach did with the host's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// The host was unclaimed; it is ours now.
    Created,
    /// Ours, refreshed (another name, an enrolled key), or taken over.
    Replaced,
    /// Already ours under this name: nothing sent.
    Kept,
}

/// What attach did with the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentInstall {
    /// Uploaded now.
    Installed,
    /// Already there: nothing sent.
    Present,
}

/// The agent's state after attach.
#[derive(Debug, Serialize)]
pub struct AgentStatus {
    /// Whether it was uploaded now.
    pub status: AgentInstall,
    /// Agent bytes sent over SSH.
    pub bytes_sent: usize,
    /// Version.
    pub version: String,
    /// Build (sha256).
    pub build: String,
    /// Where it lives on the host.
    pub path: String,
}

impl AgentStatus {
    /// One line: `agent VERSION installed (N sent)` or `... already installed`.
    pub fn describe(&self) -> String {
        match self.status {
            AgentInstall::Present => {
                format!("agent {} already installed (0 bytes sent)", self.version)
            }
            AgentInstall::Installed => format!(
                "agent {} installed ({} sent)",
                self.version,
                moor_proto::human_bytes(self.bytes_sent as u64)
            ),
        }
    }
}

/// The steps of attach that change the host.
pub(super) struct HostSteps<'a> {
    pub bundle: &'static AgentBundle,
    pub session: &'a Session,
    pub workspace_id: &'a str,
    pub name: &'a str,
    pub facts: &'a Facts,
    pub take_over: bool,
    /// Where the workspace keeps the agent's packed forms made on demand.
    pub agent_cache: &'a std::path::Path,
}

impl HostSteps<'_> {
    fn foreign(&self, claim: &Claim) -> Error {
        Error::Taken {
            message: format!(
                "{} is claimed by another workspace, {} ({}), as target {:?}",
                self.session.endpoint.host, claim.workspace_id, claim.workspace, claim.target
            ),
            fix: "detach it there first, or pass --take-over to claim it for this workspace".into(),
        }
    }

    /// Claims the machine (and enrolls `key_line`). Skips the round trip when
    /// the claim is already this workspace's under this name and there is no
    /// key to enroll.
    pub async fn claim(&self, ctx: &Context, key_line: Option<&str>) -> Result<ClaimOutcome> {
        let mode = match &self.facts.claim {
            None => "create",
            Some(c) if c.workspace_id == self.workspace_id => {
                if c.target == self.name && key_line.is_none() {
                    return Ok(ClaimOutcome::Kept);
                }
                "replace"
            }
            Some(_) if self.take_over => "replace",
            Some(c) => return Err(self.foreign(c)),
        };
        let claim = Claim {
            workspace_id: self.workspace_id.to_owned(),
            workspace: format!(
                "{}@{}:{}",
                local_user(),
                local_hostname(),
                ctx.workspace.dir().display()
            ),
            target: self.name.to_owned(),
            claimed_at: crate::time::now(),
        };
        let claim_json = serde_json::to_string(&claim).expect("claim serializes");
        let tag = crate::workspace::key_tag(self.workspace_id);
        let run = |mode: &'static str| {
            let args = [
                mode,
                claim_json.as_str(),
                key_line.unwrap_or(""),
                tag.as_str(),
            ];
            async move {
                let out = tokio::time::timeout(
                    CLAIM_TIMEOUT,
                    remote::run(
                        self.session,
                        "claim",
                        remote::CLAIM,
                        &args,
                        &[],
                        "check that $HOME on the host is writable",
                    ),
                )
                .await
                .map_err(|_| self.timeout("claim", CLAIM_TIMEOUT))??;
                Ok::<_, Error>(String::from_utf8_lossy(&out.stdout).into_owned())
            }
        };
        let out = run(mode).await?;
        let kv = remote::key_values(&out);
        match kv.get("claim").map(String::as_str) {
            Some("created") => Ok(ClaimOutcome::Created),
            Some("replaced") => Ok(ClaimOutcome::Replaced),
            Some("exists") => {
                // Someone claimed it between the probe and now.
                let current: Option<Claim> =
                    kv.get("current").and_then(|c| serde_json::from_str(c).ok());
                match current {
                    Some(c) if c.workspace_id == self.workspace_id || self.take_over => {
                        run("replace").await?;
                        Ok(ClaimOutcome::Replaced)
                    }
                    Some(c) => Err(self.foreign(&c)),
                    None => Err(self.foreign(&Claim {
                        workspace_id: "unknown".into(),
                        workspace: "an unreadable claim file".into(),
                        target: String::new(),
                        claimed_at: String::new(),
                    })),
                }
            }
            _ => Err(Error::Remote {
                host: self.session.endpoint.host.clone(),
                step: "claim",
                cause: format!("unexpected output: {}", out.trim()),
                fix: "run with -vv and check the host's shell".into(),
            }),
        }
    }

    /// Installs the agent unless the probe found this very build.
    pub async fn agent(&self) -> Result<AgentStatus> {
        let id = self.bundle.install_id();
        let build = self.bundle.sha256;
        let path = format!("~/.moor/agent/{id}/moor-agent");
        let status = |status, bytes_sent| AgentStatus {
            status,
            bytes_sent,
            version: self.bundle.version.to_owned(),
            build: build.to_owned(),
            path: path.clone(),
        };
        if self
            .facts
            .agent
            .as_ref()
            .is_some_and(|h| h.matches(moor_proto::PROTOCOL_VERSION, build))
        {
            return Ok(status(AgentInstall::Present, 0));
        }
        // Compressed when the host can unpack it; verified unpacked.
        let (packing, bytes) = self
            .bundle
            .packed_for(&self.facts.decompressors, Some(self.agent_cache))
            .map_err(crate::agent_bundle::damaged)?;
        let progress = Transfer::new("agent", Some(bytes.len() as u64));
        let out = tokio::time::timeout(
            INSTALL_TIMEOUT,
            remote::run_with(
                self.session,
                "agent install",
                remote::INSTALL,
                &[&id, build, packing],
                bytes,
                "check free space and that $HOME is not mounted noexec, then run attach again",
                &progress,
            ),
        )
        .await
        .map_err(|_| self.timeout("agent install", INSTALL_TIMEOUT))
        .and_then(|out| out)
        .inspect_err(|_| {
            if packing == "gzip" {
                // A kept copy the host refused is made again next time.
                self.bundle.forget_gzip(self.agent_cache);
            }
        })?;
        drop(progress);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hello = moor_proto::Hello::find(&stdout);
        if !hello
            .as_ref()
            .is_some_and(|h| h.matches(moor_proto::PROTOCOL_VERSION, build))
        {
            return Err(Error::Remote {
                host: self.session.endpoint.host.clone(),
                step: "agent handshake",
                cause: format!(
                    "the installed agent answered {hello:?}, expected protocol {} build {build}",
                    moor_proto::PROTOCOL_VERSION
                ),
                fix: "run attach again to reinstall the agent".into(),
            });
        }
        // When another attach installed it first (status=present), the bytes
        // went over all the same.
        Ok(status(AgentInstall::Installed, bytes.len()))
    }

    fn timeout(&self, step: &'static str, limit: Duration) -> Error {
        Error::Timeout {
            host: self.session.endpoint.host.clone(),
            port: self.session.endpoint.port,
            step,
            timeout: limit,
        }
    }
}

/// This process's user name: `$USER`, `$LOGNAME`, else the passwd entry of
/// its uid (read from /proc and /etc/passwd, no libc call).
fn local_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    {
        return name;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next().map(str::to_owned))
        });
    let Some(uid) = uid else { return "?".into() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
            })
        })
        .unwrap_or(uid)
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
