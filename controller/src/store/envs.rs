//! Named environments in the workspace, versioned as in Azure ML: a name
//! holds versions 1, 2, ..., one per distinct spec (its hash is its
//! identity); `NAME` means the latest, `NAME:N` one version. Each version
//! keeps the files and flags it was made from.

use moor_proto::env::EnvKind;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{db_err, Env, Store};
use crate::error::Result;

const COLUMNS: &str = "name, version, hash, kind, spec, sources, origin, created_at";

/// `NAME` (the latest version) or `NAME:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef<'a> {
    /// The name.
    pub name: &'a str,
    /// The version, when one is named.
    pub version: Option<u32>,
}

impl<'a> EnvRef<'a> {
    /// Parses `NAME` or `NAME:N`; `None` when N is not a version number.
    pub fn parse(text: &'a str) -> Option<EnvRef<'a>> {
        match text.rsplit_once(':') {
            Some((name, version)) => Some(EnvRef {
                name,
                version: Some(version.parse().ok().filter(|v| *v > 0)?),
            }),
            None => Some(EnvRef {
                name: text,
                version: None,
            }),
        }
    }
}

/// What [`Store::add_env`] did.
#[derive(Debug)]
pub enum Added {
    /// A new version (1 for a new name).
    New(Env),
    /// The latest version already has this spec: nothing added.
    Unchanged(Env),
}

impl Store {
    /// Adds `env` as the next version of its name, unless the latest
    /// version has the same spec. `env.version` is set here.
    pub fn add_env(&mut self, env: &Env) -> Result<Added> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(&self.path))?;
        let latest = env_in(&tx, &env.name, None).map_err(db_err(&self.path))?;
        let added = match latest {
            Some(latest) if latest.hash == env.hash => Added::Unchanged(latest),
            latest => {
                let mut env = env.clone();
                env.version = latest.map_or(1, |l| l.version + 1);
                tx.execute(
                    &format!(
                        "INSERT INTO envs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        env.name,
                        env.version,
                        env.hash,
                        env.kind.as_str(),
                        serde_json::to_string(&env.spec).expect("specs serialize"),
                        serde_json::to_string(&env.sources).expect("strings serialize"),
                        serde_json::to_string(&env.origin).expect("origins serialize"),
                        env.created_at
                    ],
                )
                .map_err(db_err(&self.path))?;
                Added::New(env)
            }
        };
        tx.commit().map_err(db_err(&self.path))?;
        Ok(added)
    }

    /// One environment version: the latest of `name`, or the one named.
    pub fn env(&self, env: &EnvRef) -> Result<Option<Env>> {
        env_in(&self.conn, env.name, env.version).map_err(self.err())
    }

    /// Every version of every environment, by name and version.
    pub fn envs(&self) -> Result<Vec<Env>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM envs ORDER BY name, version"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([], env_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// Removes one version, or every version of a name; returns how many.
    pub fn delete_env(&self, env: &EnvRef) -> Result<usize> {
        match env.version {
            Some(version) => self.conn.execute(
                "DELETE FROM envs WHERE name = ?1 AND version = ?2",
                params![env.name, version],
            ),
            None => self
                .conn
                .execute("DELETE FROM envs WHERE name = ?1", params![env.name]),
        }
        .map_err(self.err())
    }
}

fn env_in(conn: &Connection, name: &str, version: Option<u32>) -> rusqlite::Result<Option<Env>> {
    match version {
        Some(version) => conn.query_row(
            &format!("SELECT {COLUMNS} FROM envs WHERE name = ?1 AND version = ?2"),
            params![name, version],
            env_row,
        ),
        None => conn.query_row(
            &format!("SELECT {COLUMNS} FROM envs WHERE name = ?1 ORDER BY version DESC LIMIT 1"),
            params![name],
            env_row,
        ),
    }
    .optional()
}

fn env_row(r: &rusqlite::Row) -> rusqlite::Result<Env> {
    let json = |i: usize, text: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, text.into())
    };
    let kind: String = r.get(3)?;
    let spec: String = r.get(4)?;
    let sources: String = r.get(5)?;
    let origin: String = r.get(6)?;
    Ok(Env {
        name: r.get(0)?,
        version: r.get(1)?,
        hash: r.get(2)?,
        kind: EnvKind::parse(&kind)
            .ok_or_else(|| json(3, format!("unknown environment kind {kind:?}")))?,
        spec: serde_json::from_str(&spec).map_err(|e| json(4, e.to_string()))?,
        sources: serde_json::from_str(&sources).map_err(|e| json(5, e.to_string()))?,
        origin: serde_json::from_str(&origin).map_err(|e| json(6, e.to_string()))?,
        created_at: r.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let named = |name, version| Some(EnvRef { name, version });
        assert_eq!(EnvRef::parse("sk"), named("sk", None));
        assert_eq!(EnvRef::parse("sk:3"), named("sk", Some(3)));
        assert_eq!(EnvRef::parse("sk:0"), None);
        assert_eq!(EnvRef::parse("sk:latest"), None);
    }
}
