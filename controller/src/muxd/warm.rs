//! The mux's connections: at most one per target, made with the target's
//! stored settings (strict host keys, its pin, its key), each with one
//! spare pipe to the agent opened ahead (`moor-agent stdio` already
//! started), so that a command's pipe costs no round trip but its own
//! handshake. A connection is only ever given while it is live; anything
//! else is a "cold" answer and a new connection in the background. A spare
//! has its agent's hello read ahead (kept for the command), so a spare whose
//! agent went away since (its daemon killed: the channel at its end) is
//! seen before it is given, and a new pipe opened instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::ChannelStream;

use crate::mux::{settings_key, WarmTarget};
use crate::reach::{stdio_command, Access, Targets};
use crate::ssh::{ConnectProgress, Session};
use crate::store::Target;

/// A pipe to an agent, as the mux holds it.
pub struct Pipe {
    /// The channel to `moor-agent stdio`.
    pub stream: ChannelStream<Msg>,
    /// What the agent said already (its hello, on a spare), for the command.
    pub head: Vec<u8>,
    /// The connection it is on (probed while the pipe is used).
    pub session: Option<Arc<Session>>,
}

impl Pipe {
    /// Whether the agent's end is still open: nothing to read now (a spare
    /// whose hello was read has nothing more until asked).
    fn is_open(&mut self) -> bool {
        use futures::FutureExt;
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte).now_or_never() {
            None => true,
            Some(Ok(1)) => {
                self.head.push(byte[0]);
                true
            }
            Some(_) => false,
        }
    }
}

/// How long opening a pipe on a live connection may take before the
/// connection is taken for dead.
const PIPE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a failed attempt the mux waits before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Every connection of the mux, by target name.
pub struct Pool {
    targets: Targets,
    slots: Mutex<HashMap<String, Slot>>,
}

struct Slot {
    /// The settings it was made with ([`settings_key`]).
    key: String,
    endpoint: String,
    since: Instant,
    pipes_given: u64,
    state: State,
}

enum State {
    Connecting,
    Warm {
        session: Arc<Session>,
        spare: Option<Box<Pipe>>,
    },
    Failed {
        error: String,
    },
}

/// What taking a pipe found.
enum Taken {
    Spare(Box<Pipe>, Arc<Session>),
    Open(Arc<Session>),
    Cold(String, bool),
}

impl Pool {
    /// An empty pool for the workspace's targets.
    pub fn new(targets: Targets) -> Pool {
        Pool {
            targets,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// A pipe to `name`'s agent over a live connection, or why not (and a
    /// connection is being made). `settings` is the command's view of the
    /// target ([`settings_key`]): when the live connection was made with the
    /// same, the workspace is not read at all.
    pub async fn open(self: &Arc<Self>, name: &str, settings: &str) -> Result<Pipe, String> {
        if let Some(taken) = self.take(name, settings) {
            if let Some(pipe) = self.taken(name, settings, taken, None).await? {
                return Ok(pipe);
            }
        }
        let target = self.target(name)?;
        let key = settings_key(&target);
        let taken = self
            .take(name, &key)
            .unwrap_or_else(|| Taken::Cold("not connected yet".into(), true));
        match self.taken(name, &key, taken, Some(target)).await? {
            Some(pipe) => Ok(pipe),
            None => Err("the target's settings changed".into()),
        }
    }

    /// Takes a pipe (or learns why not) from the slot of `name`, if it was
    /// made with settings `key`; `None` when there is no such slot.
    fn take(&self, name: &str, key: &str) -> Option<Taken> {
        let mut slots = self.slots.lock().expect("mux slots");
        let slot = slots.get_mut(name).filter(|s| s.key == key)?;
        Some(match &mut slot.state {
            State::Connecting => Taken::Cold("connecting".into(), false),
            State::Failed { error } if slot.since.elapsed() < RETRY_AFTER => {
                Taken::Cold(error.clone(), false)
            }
            State::Failed { error } => Taken::Cold(error.clone(), true),
            State::Warm { session, .. } if session.is_closed() => {
                Taken::Cold("the connection dropped".into(), true)
            }
            State::Warm { session, spare } => {
                slot.pipes_given += 1;
                match spare.take() {
                    Some(pipe) => Taken::Spare(pipe, session.clone()),
                    None => Taken::Open(session.clone()),
                }
            }
        })
    }

    /// What to do with what [`Pool::take`] found: a pipe, an error (cold),
    /// or `None` when a connection must be made and `target` (read from the
    /// workspace) is not at hand yet.
    async fn taken(
        self: &Arc<Self>,
        name: &str,
        key: &str,
        taken: Taken,
        target: Option<Target>,
    ) -> Result<Option<Pipe>, String> {
        match taken {
            Taken::Spare(_, session) | Taken::Open(session) if !self.still_trusted(&session) => {
                self.forget(name);
                Err("the host key is no longer trusted (changed, revoked or forgotten)".into())
            }
            Taken::Spare(mut pipe, session) => {
                if pipe.is_open() {
                    pipe.session = Some(session.clone());
                    self.clone().refill(name, key.to_owned(), session);
                    return Ok(Some(*pipe));
                }
                tracing::debug!(target = %name, "the spare's agent went away; a new pipe");
                self.fresh(name, key, session, target).await
            }
            Taken::Open(session) => self.fresh(name, key, session, target).await,
            Taken::Cold(why, connect) => match (connect, target) {
                (true, None) => Ok(None),
                (true, Some(target)) => {
                    self.connect(target, key.to_owned());
                    Err(why)
                }
                (false, _) => Err(why),
            },
        }
    }

    /// A new pipe on a live connection (the spare was taken by another
    /// command, or its agent went away); a failure reconnects.
    async fn fresh(
        self: &Arc<Self>,
        name: &str,
        key: &str,
        session: Arc<Session>,
        target: Option<Target>,
    ) -> Result<Option<Pipe>, String> {
        let target = match target {
            Some(target) => target,
            None => self.target(name)?,
        };
        match open_pipe(&session, &target).await {
            Ok(mut pipe) => {
                pipe.session = Some(session.clone());
                // The next command gets a spare again.
                self.clone().refill(name, key.to_owned(), session);
                Ok(Some(pipe))
            }
            Err(why) => {
                self.connect(target, key.to_owned());
                Err(why)
            }
        }
    }

    /// Whether the known_hosts files still record the key the connection
    /// was verified with: a key revoked, replaced or forgotten since ends
    /// the warm connection (an ssh master would go on with it).
    fn still_trusted(&self, session: &Session) -> bool {
        let known = crate::reach::settings::known_hosts(self.targets.workspace());
        let endpoint = &session.endpoint;
        matches!(
            known.check(&endpoint.host, endpoint.port, &session.public_key),
            crate::ssh::Verdict::Known { .. }
        )
    }

    /// Starts a connection to `name` (unless one is live or being made).
    pub fn warm(self: &Arc<Self>, name: &str) {
        let Ok(target) = self.target(name) else {
            return;
        };
        let key = settings_key(&target);
        let live = self
            .slots
            .lock()
            .expect("mux slots")
            .get(name)
            .is_some_and(|s| s.key == key && !matches!(s.state, State::Failed { .. }));
        if !live {
            self.connect(target, key);
        }
    }

    /// Drops the connection to `name`.
    pub fn forget(&self, name: &str) {
        self.slots.lock().expect("mux slots").remove(name);
    }

    /// Every connection, for `moor mux status`.
    pub fn status(&self) -> Vec<WarmTarget> {
        let slots = self.slots.lock().expect("mux slots");
        let mut rows: Vec<WarmTarget> = slots
            .iter()
            .map(|(name, slot)| {
                let (state, error) = match &slot.state {
                    State::Connecting => ("connecting", None),
                    State::Warm { session, .. } if session.is_closed() => ("dropped", None),
                    State::Warm { .. } => ("warm", None),
                    State::Failed { error } => ("failed", Some(error.clone())),
                };
                WarmTarget {
                    target: name.clone(),
                    state: state.into(),
                    endpoint: slot.endpoint.clone(),
                    since_secs: slot.since.elapsed().as_secs(),
                    pipes_given: slot.pipes_given,
                    error,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        rows
    }

    /// The attached target `name`, read again from the workspace (so that a
    /// detach or a new attach is seen), if the mux may serve it.
    fn target(&self, name: &str) -> Result<Target, String> {
        let store = self
            .targets
            .workspace()
            .store()
            .map_err(|e| e.to_string())?;
        let target = store
            .target(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                self.forget(name);
                format!("no target {name} in the workspace")
            })?;
        if crate::mux::needs_no_secret(&target.auth) {
            Ok(target)
        } else {
            Err("the target needs a secret to connect".into())
        }
    }

    /// Connects to `target` in the background; the slot says so meanwhile.
    fn connect(self: &Arc<Self>, target: Target, key: String) {
        let endpoint = format!("{}@{}:{}", target.user, target.host, target.port);
        {
            let mut slots = self.slots.lock().expect("mux slots");
            if slots
                .get(&target.name)
                .is_some_and(|s| s.key == key && matches!(s.state, State::Connecting))
            {
                return;
            }
            slots.insert(
                target.name.clone(),
                Slot {
                    key: key.clone(),
                    endpoint,
                    since: Instant::now(),
                    pipes_given: 0,
                    state: State::Connecting,
                },
            );
        }
        let pool = self.clone();
        tokio::spawn(async move {
            let state = match pool.session(&target).await {
                Ok(session) => {
                    let spare = open_spare(&session, &target).await.ok().map(Box::new);
                    tracing::info!(target = %target.name, "warm");
                    State::Warm {
                        session: Arc::new(session),
                        spare,
                    }
                }
                Err(error) => {
                    tracing::info!(target = %target.name, %error, "cannot connect");
                    State::Failed { error }
                }
            };
            let mut slots = pool.slots.lock().expect("mux slots");
            // Forgotten or replaced meanwhile: this connection is dropped.
            if let Some(slot) = slots.get_mut(&target.name).filter(|s| s.key == key) {
                slot.state = state;
                slot.since = Instant::now();
            }
        });
    }

    async fn session(&self, target: &Target) -> Result<Session, String> {
        let resolved = self
            .targets
            .resolve(target, &Access::defaults())
            .map_err(|e| e.to_string())?;
        Session::connect(
            &resolved.endpoint,
            resolved.options,
            &mut ConnectProgress::default(),
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Opens the next spare pipe of a connection after one was taken.
    fn refill(self: Arc<Self>, name: &str, key: String, session: Arc<Session>) {
        let name = name.to_owned();
        tokio::spawn(async move {
            let Ok(target) = self.target(&name) else {
                return;
            };
            let Ok(pipe) = open_spare(&session, &target).await else {
                return;
            };
            let mut slots = self.slots.lock().expect("mux slots");
            if let Some(Slot {
                state: State::Warm { session: s, spare },
                key: k,
                ..
            }) = slots.get_mut(&name)
            {
                if *k == key && Arc::ptr_eq(s, &session) && spare.is_none() {
                    *spare = Some(Box::new(pipe));
                }
            }
        });
    }
}

/// A new pipe to the target's agent on a connection (`moor-agent stdio` of
/// the build the target recorded), within [`PIPE_TIMEOUT`].
async fn open_pipe(session: &Session, target: &Target) -> Result<Pipe, String> {
    let install_id = crate::agent_bundle::install_id(&target.agent_version, &target.agent_build);
    match tokio::time::timeout(
        PIPE_TIMEOUT,
        session.exec_stream(&stdio_command(&install_id)),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(Pipe {
            stream,
            head: Vec::new(),
            session: None,
        }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no pipe within {} s: the connection is taken for dead",
            PIPE_TIMEOUT.as_secs()
        )),
    }
}

/// [`open_pipe`], the agent's hello read ahead into the pipe's head (within
/// [`PIPE_TIMEOUT`]): a spare whose agent is there.
async fn open_spare(session: &Session, target: &Target) -> Result<Pipe, String> {
    use tokio::io::AsyncReadExt;
    let mut pipe = open_pipe(session, target).await?;
    let read = async {
        let magic = moor_proto::MAGIC;
        loop {
            if let Some(start) = pipe.head.windows(magic.len()).position(|w| w == magic) {
                let after = &pipe.head[start + magic.len()..];
                if moor_proto::Frame::decode(after)
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Ok(());
                }
            }
            if pipe.head.len() > 64 * 1024 {
                return Err("no hello from the agent".to_owned());
            }
            let mut buf = [0u8; 4096];
            match pipe.stream.read(&mut buf).await {
                Ok(0) => return Err("the agent closed the pipe".to_owned()),
                Ok(n) => pipe.head.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    match tokio::time::timeout(PIPE_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(pipe),
        Ok(Err(why)) => Err(why),
        Err(_) => Err(format!("no hello within {} s", PIPE_TIMEOUT.as_secs())),
    }
}
