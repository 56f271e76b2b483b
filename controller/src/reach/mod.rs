//! Reaching a target's agent: from a name (an attached target, or `local`)
//! to an open [`AgentClient`]. Everything a command needs to talk to one or
//! many targets is here: looking targets up ([`Targets::named`]), the
//! user's connection flags resolved once ([`Access`]), the SSH connection
//! with the target's stored endpoint, key and host-key policy, and the agent
//! started at the other end (`moor-agent stdio`). It takes the workspace,
//! not the command line, so jobs over several targets reach them the same
//! way ([`Targets::ask_all`]).

pub mod jumps;
pub mod local;
pub mod network;
pub mod settings;
pub mod tunnel;

use crate::agent_bundle::{self, Agents};
use crate::agent_client::AgentClient;
use crate::error::{Error, Result};
use crate::fleet;
use crate::mux;
use crate::ssh::{ConnectProgress, HostKeyInfo, Session};
use crate::store::{Store, Target};
use crate::target_kind::TargetKind;
use crate::workspace::Workspace;

pub use settings::{Access, Resolved};

/// How long a pipe from the mux may take to give the agent's hello (its
/// agent started before it was handed over) before the command connects by
/// itself.
const MUX_HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The targets of a workspace, and how to reach them.
#[derive(Debug, Clone)]
pub struct Targets {
    workspace: Workspace,
    agents: &'static Agents,
}

/// An open connection to a target's agent (and the SSH session under it;
/// none for `local`).
pub struct Connected {
    /// None for `local` and for a pipe from the mux.
    session: Option<Session>,
    /// The agent.
    pub agent: AgentClient,
}

impl Connected {
    /// The SSH session under the agent's connection (none for `local` and
    /// for a pipe from the mux: [`Targets::connect_direct`] has one).
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Closes the SSH session.
    pub async fn close(self) {
        if let Some(session) = self.session {
            session.close().await;
        }
    }
}

impl Targets {
    /// The targets of `workspace`; `agents` are the agents this moor carries
    /// (one per architecture; the local target's among them).
    pub fn new(workspace: Workspace, agents: &'static Agents) -> Targets {
        Targets { workspace, agents }
    }

    /// The workspace.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The agents this moor carries.
    pub fn agents(&self) -> &'static Agents {
        self.agents
    }

    /// The attached target called `name`.
    pub fn attached(&self, store: &Store, name: &str) -> Result<Target> {
        store.target(name)?.ok_or_else(|| Error::NoTarget {
            name: name.to_owned(),
            workspace: self.workspace.dir().to_owned(),
        })
    }

    /// The target called `name`: an attached one, or this machine for `local`.
    pub fn named(&self, store: &Store, name: &str) -> Result<Target> {
        if name == local::NAME {
            Ok(local::target(self.agents))
        } else {
            self.attached(store, name)
        }
    }

    /// Every attached target, and `local` when runs were started there.
    pub fn all_with_runs(&self, store: &Store) -> Result<Vec<Target>> {
        let mut targets = store.targets()?;
        if store.has_runs_on(local::NAME)? {
            targets.push(local::target(self.agents));
        }
        Ok(targets)
    }

    /// The run `key` names (an id, a unique id prefix, or a name: its newest
    /// run) and the target it was started on, from the workspace's record.
    pub fn of_run(&self, store: &Store, key: &str) -> Result<(Target, String)> {
        let found = store.find_runs(key)?;
        let by_name = found.len() > 1 && !found.iter().all(|(id, _)| id.starts_with(key));
        let (id, target) = match found.as_slice() {
            [] => {
                return Err(Error::usage(
                    format!(
                        "no run {key:?} (id, id prefix or name) was started from workspace {}",
                        self.workspace.dir().display()
                    ),
                    "see `moor runs` for run ids and names",
                ))
            }
            // A name names its newest run.
            [newest, ..] if by_name => newest.clone(),
            [one] => one.clone(),
            many => {
                let ids: Vec<&str> = many.iter().take(5).map(|(id, _)| id.as_str()).collect();
                return Err(Error::usage(
                    format!(
                        "run id prefix {key:?} matches {} runs: {}{}",
                        many.len(),
                        ids.join(", "),
                        if many.len() > 5 { ", ..." } else { "" }
                    ),
                    "give more of the id",
                ));
            }
        };
        Ok((self.named(store, &target)?, id))
    }

    /// How to reach an attached target over SSH.
    pub fn resolve(&self, target: &Target, access: &Access) -> Result<Resolved> {
        settings::for_target(target, access, &self.workspace)
    }

    /// Connects to a target's agent: a pipe from the workspace's warm
    /// connection ([`crate::mux`]) when it has a live one and the flags
    /// allow, else SSH with the target's settings and the user's flags,
    /// then `moor-agent stdio` of the build the target recorded.
    pub async fn connect(&self, target: &Target, access: &Access) -> Result<Connected> {
        if access.may_use_mux() && mux::serves(target) {
            if let Some(stream) = mux::open(&self.workspace, target).await {
                let (reader, writer) = stream.into_split();
                let host = target.host.clone();
                let (reader, writer) = (Box::new(reader), Box::new(writer));
                match AgentClient::over_within(reader, writer, host, MUX_HELLO_TIMEOUT).await {
                    Ok(agent) => {
                        tracing::debug!(target = %target.name, "agent pipe from the mux");
                        return Ok(Connected {
                            session: None,
                            agent,
                        });
                    }
                    // A spare whose agent went away: no request was sent yet.
                    Err(e) => tracing::debug!(error = %e, "mux pipe failed; connecting directly"),
                }
            }
        }
        self.connect_direct(target, access).await
    }

    /// [`Targets::connect`] over a connection of this command's own (the
    /// SSH session is there for forwarding a port through it).
    pub async fn connect_direct(&self, target: &Target, access: &Access) -> Result<Connected> {
        if target.kind == TargetKind::Local {
            return Ok(Connected {
                session: None,
                agent: local::connect(self.agents).await?,
            });
        }
        let session = self.session(target, access).await?;
        let agent = self.agent_pipelined_on(&session, target).await?;
        Ok(Connected {
            session: Some(session),
            agent,
        })
    }

    /// The SSH session to a target (its stored settings and the user's
    /// flags, its pinned host key).
    pub async fn session(&self, target: &Target, access: &Access) -> Result<Session> {
        let resolved = self.resolve(target, access)?;
        let session = Session::connect(
            &resolved.endpoint,
            resolved.options,
            &mut ConnectProgress::default(),
        )
        .await?;
        self.repin(target, &session.host_key)?;
        Ok(session)
    }

    /// The target's agent (`moor-agent stdio` of the build it recorded),
    /// over an open session, its hello read (so a missing or wrong agent is
    /// this call's error).
    pub async fn agent_on(&self, session: &Session, target: &Target) -> Result<AgentClient> {
        let (reader, writer) = Self::stdio(session, target).await?;
        AgentClient::over(reader, writer, session.endpoint.host.clone()).await
    }

    /// [`Targets::agent_on`] with requests going out with the exec and the
    /// hello: the agent's start-up and the link's round trip overlap them,
    /// and a missing or wrong agent is the first request's error.
    async fn agent_pipelined_on(&self, session: &Session, target: &Target) -> Result<AgentClient> {
        let (reader, writer) = Self::stdio(session, target).await?;
        AgentClient::over_pipelined(reader, writer, session.endpoint.host.clone()).await
    }

    /// `moor-agent stdio` of the build `target` recorded, over `session`.
    async fn stdio(
        session: &Session,
        target: &Target,
    ) -> Result<(crate::agent_client::Reader, crate::agent_client::Writer)> {
        let install_id = agent_bundle::install_id(&target.agent_version, &target.agent_build);
        let stream = session.exec_stream(&stdio_command(&install_id)).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok((Box::new(reader), Box::new(writer)))
    }

    /// After a connection to `target` verified `key`: when the user trusted
    /// a new key by name (`moor host-key forget`, then
    /// `--host-key-fingerprint`), it becomes the target's pin, said on
    /// stderr. Every command that connects to a target calls this.
    pub fn repin(&self, target: &Target, key: &HostKeyInfo) -> Result<()> {
        if target.host_key_fingerprint.is_empty() || key.fingerprint == target.host_key_fingerprint
        {
            return Ok(());
        }
        self.workspace
            .store()?
            .repin(&target.name, &key.algorithm, &key.fingerprint)?;
        eprintln!(
            "moor: target {} is now pinned to host key {} {} (was {})",
            target.name, key.algorithm, key.fingerprint, target.host_key_fingerprint
        );
        Ok(())
    }

    /// Asks every target's agent (connect, `ask`, close), at most
    /// [`fleet::DEFAULT_PARALLEL`] at once; each answer in the targets'
    /// order. One that does not answer costs at most the connect timeout,
    /// and never holds up the others.
    pub async fn ask_all<T>(
        &self,
        targets: &[Target],
        access: &Access,
        ask: impl AsyncFn(&AgentClient) -> Result<T>,
    ) -> Vec<Result<T>> {
        let ask = &ask;
        if access.may_use_mux() {
            mux::warm_ahead(&self.workspace, &targets.iter().collect::<Vec<_>>()).await;
        }
        fleet::each(
            targets.iter().collect(),
            fleet::DEFAULT_PARALLEL,
            fleet::View::Quiet,
            |target| target.name.clone(),
            |target| async move {
                let c = self.connect(target, access).await?;
                let answer = ask(&c.agent).await;
                c.close().await;
                answer
            },
        )
        .await
    }
}

/// Target names: a letter, then letters, digits, `-` or `_`; at most 64.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(
            format!("{name:?} is not a valid target name"),
            "use a letter, then letters, digits, '-' or '_' (at most 64), e.g. gpu-vm1",
        ))
    }
}

/// The agent's command line for an install id (`[0-9a-z.-]`, quoted anyway).
pub fn stdio_command(install_id: &str) -> String {
    format!(
        "\"$HOME\"/.moor/agent/{}/moor-agent stdio",
        crate::shell::quote(install_id)
    )
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn target_names() {
        for ok in ["a", "gpu-vm1", "Spark_Head", &"x".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1vm", "-x", "a b", "a/b", "ä", "a;rm", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
