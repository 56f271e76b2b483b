//! A compute target as the workspace stores it.

use rusqlite::{params, Row, Transaction};
use serde::{Deserialize, Serialize};

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

/// One attached machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Its name in the workspace.
    pub name: String,
    /// `vm` or `hdinsight`.
    pub kind: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Remote user.
    pub user: String,
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
    /// `ready`.
    pub state: String,
    /// Probe facts at the last attach or validate (JSON).
    #[serde(skip)]
    pub facts: String,
    /// Checks at the last attach or validate (JSON).
    #[serde(skip)]
    pub checks: String,
    /// When it was first attached.
    pub created_at: String,
    /// When it was last attached or validated.
    pub updated_at: String,
}

pub(super) const COLUMNS: &str = "name, kind, host, port, user, auth, resource_id, host_key_algorithm, \
    host_key_fingerprint, machine_id, agent_version, agent_build, state, facts, checks, created_at, updated_at";

pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Target> {
    let auth: String = r.get(5)?;
    Ok(Target {
        name: r.get(0)?,
        kind: r.get(1)?,
        host: r.get(2)?,
        port: r.get(3)?,
        user: r.get(4)?,
        auth: serde_json::from_str(&auth).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
        })?,
        resource_id: r.get(6)?,
        host_key_algorithm: r.get(7)?,
        host_key_fingerprint: r.get(8)?,
        machine_id: r.get(9)?,
        agent_version: r.get(10)?,
        agent_build: r.get(11)?,
        state: r.get(12)?,
        facts: r.get(13)?,
        checks: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
    })
}

pub(super) fn upsert(tx: &Transaction<'_>, t: &Target) -> rusqlite::Result<()> {
    let auth = serde_json::to_string(&t.auth).expect("AuthRef serializes");
    tx.execute(
        &format!(
            "INSERT INTO targets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, host = excluded.host, port = excluded.port,
                 user = excluded.user, auth = excluded.auth, resource_id = excluded.resource_id,
                 host_key_algorithm = excluded.host_key_algorithm, host_key_fingerprint = excluded.host_key_fingerprint,
                 machine_id = excluded.machine_id, agent_version = excluded.agent_version,
                 agent_build = excluded.agent_build, state = excluded.state, facts = excluded.facts,
                 checks = excluded.checks, updated_at = excluded.updated_at"
        ),
        params![
            t.name,
            t.kind,
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
            t.state,
            t.facts,
            t.checks,
            t.created_at,
            t.updated_at
        ],
    )
    .map(drop)
}
