//! A compute target as the workspace stores it: typed here, JSON and text
//! only in its row. A row with a kind, state, facts or checks this moor does
//! not know is an error naming the column, never a guess.

use rusqlite::types::Type;
use rusqlite::{params, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::checks::Check;
use crate::probe::Facts;
use crate::ssh::JumpHost;
use crate::target_kind::TargetKind;
use moor_proto::env::BuildNetwork;

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Attached: claimed, agent installed, recorded.
    Ready,
}

impl TargetState {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Ready => "ready",
        }
    }

    fn parse(name: &str) -> Option<TargetState> {
        (name == "ready").then_some(TargetState::Ready)
    }
}

/// How moor authenticates to a target: a reference, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthRef {
    /// The workspace's own key, enrolled in the user's authorized_keys at attach.
    WorkspaceKey,
    /// A private key file.
    Key {
        /// Its path.
        path: String,
        /// Name of the environment variable with its passphrase.
        passphrase_env: Option<String>,
    },
    /// ssh-agent (`SSH_AUTH_SOCK`), or the default keys.
    Agent,
    /// A password, given each time (`--password-env` / `--password-stdin`).
    Password {
        /// Name of the environment variable that held it at attach.
        env: Option<String>,
    },
}

impl std::fmt::Display for AuthRef {
    /// In words, as `moor show` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthRef::WorkspaceKey => {
                f.write_str("the workspace's key (id_ed25519), enrolled at attach")
            }
            AuthRef::Key {
                path,
                passphrase_env: Some(var),
            } => write!(f, "key {path} (passphrase from ${var})"),
            AuthRef::Key { path, .. } => write!(f, "key {path}"),
            AuthRef::Agent => f.write_str("ssh-agent, or your default keys"),
            AuthRef::Password { env: Some(var) } => write!(f, "password from ${var}"),
            AuthRef::Password { env: None } => {
                f.write_str("password, asked each time (--password-env or --password-stdin)")
            }
        }
    }
}

/// One attached machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Its name in the workspace.
    pub name: String,
    /// What kind of machine.
    pub kind: TargetKind,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Jump hosts to go through, in order (none: directly).
    pub jumps: Vec<JumpHost>,
    /// How it reaches package indexes (`moor show` prints a summary).
    #[serde(skip)]
    pub network: BuildNetwork,
    /// How to authenticate.
    pub auth: AuthRef,
    /// Azure resource id, when given.
    pub resource_id: Option<String>,
    /// Host key type.
    pub host_key_algorithm: String,
    /// Host key `SHA256:...`.
    pub host_key_fingerprint: String,
    /// /etc/machine-id (empty when the host has none).
    pub machine_id: String,
    /// Installed agent version.
    pub agent_version: String,
    /// Installed agent build (sha256).
    pub agent_build: String,
    /// Where it stands.
    pub state: TargetState,
    /// Probe facts at the last attach or validate (none for `local`).
    #[serde(skip)]
    pub facts: Option<Facts>,
    /// Checks at the last attach or validate.
    #[serde(skip)]
    pub checks: Vec<Check>,
    /// When it was first attached.
    pub created_at: String,
    /// When it was last attached or validated.
    pub updated_at: String,
}

pub(super) const COLUMNS: &str = "name, kind, host, port, user, auth, resource_id, host_key_algorithm, \
    host_key_fingerprint, machine_id, agent_version, agent_build, state, facts, checks, created_at, updated_at, jumps, network";

/// A stored value this moor cannot read.
fn unreadable(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, what.into())
}

fn json<T: for<'de> Deserialize<'de>>(r: &Row<'_>, column: usize) -> rusqlite::Result<T> {
    let text: String = r.get(column)?;
    serde_json::from_str(&text).map_err(|e| unreadable(column, e.to_string()))
}

pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Target> {
    let kind: String = r.get(1)?;
    let state: String = r.get(12)?;
    let facts: String = r.get(13)?;
    Ok(Target {
        name: r.get(0)?,
        kind: TargetKind::parse(&kind)
            .filter(|k| *k != TargetKind::Local)
            .ok_or_else(|| unreadable(1, format!("unknown target kind {kind:?}")))?,
        host: r.get(2)?,
        port: r.get(3)?,
        user: r.get(4)?,
        auth: json(r, 5)?,
        resource_id: r.get(6)?,
        host_key_algorithm: r.get(7)?,
        host_key_fingerprint: r.get(8)?,
        machine_id: r.get(9)?,
        agent_version: r.get(10)?,
        agent_build: r.get(11)?,
        state: TargetState::parse(&state)
            .ok_or_else(|| unreadable(12, format!("unknown target state {state:?}")))?,
        // Empty facts: a target attached before facts were kept.
        facts: match facts.as_str() {
            "" | "{}" | "null" => None,
            _ => Some(json(r, 13)?),
        },
        checks: json(r, 14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        jumps: json(r, 17)?,
        network: json(r, 18)?,
    })
}

pub(super) fn upsert(tx: &Transaction<'_>, t: &Target) -> rusqlite::Result<()> {
    let auth = serde_json::to_string(&t.auth).expect("AuthRef serializes");
    let facts = serde_json::to_string(&t.facts).expect("facts serialize");
    let checks = serde_json::to_string(&t.checks).expect("checks serialize");
    let jumps = serde_json::to_string(&t.jumps).expect("jumps serialize");
    let network = serde_json::to_string(&t.network).expect("settings serialize");
    tx.execute(
        &format!(
            "INSERT INTO targets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, host = excluded.host, port = excluded.port,
                 user = excluded.user, auth = excluded.auth, resource_id = excluded.resource_id,
                 host_key_algorithm = excluded.host_key_algorithm, host_key_fingerprint = excluded.host_key_fingerprint,
                 machine_id = excluded.machine_id, agent_version = excluded.agent_version,
                 agent_build = excluded.agent_build, state = excluded.state, facts = excluded.facts,
                 checks = excluded.checks, updated_at = excluded.updated_at, jumps = excluded.jumps,
                 network = excluded.network"
        ),
        params![
            t.name,
            t.kind.as_str(),
            t.host,
            t.port,
            t.user,
            auth,
            t.resource_id,
            t.host_key_algorithm,
            t.host_key_fingerprint,
            t.machine_id,
            t.agent_version,
            t.agent_build,
            t.state.as_str(),
            facts,
            checks,
            t.created_at,
            t.updated_at,
            jumps,
            network
        ],
    )
    .map(drop)
}
