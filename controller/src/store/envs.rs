//! Named environments in the workspace: a name for a spec (its hash is
//! its identity), the files it was made from, and when.

use moor_proto::env::EnvKind;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{db_err, Env, Store};
use crate::error::Result;

impl Store {
    /// Adds an environment. Returns the existing one under `name` instead
    /// when there is one (the caller compares hashes).
    pub fn add_env(&mut self, env: &Env) -> Result<Option<Env>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(&self.path))?;
        let existing = env_in(&tx, &env.name).map_err(db_err(&self.path))?;
        if existing.is_none() {
            tx.execute(
                "INSERT INTO envs (name, hash, kind, spec, sources, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    env.name,
                    env.hash,
                    env.kind.as_str(),
                    serde_json::to_string(&env.spec).expect("specs serialize"),
                    serde_json::to_string(&env.sources).expect("strings serialize"),
                    env.created_at
                ],
            )
            .map_err(db_err(&self.path))?;
        }
        tx.commit().map_err(db_err(&self.path))?;
        Ok(existing)
    }

    /// One environment.
    pub fn env(&self, name: &str) -> Result<Option<Env>> {
        env_in(&self.conn, name).map_err(self.err())
    }

    /// Every environment, by name.
    pub fn envs(&self) -> Result<Vec<Env>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, hash, kind, spec, sources, created_at FROM envs ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt.query_map([], env_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// Removes an environment; returns whether it existed.
    pub fn delete_env(&self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM envs WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(self.err())
    }
}

fn env_in(conn: &Connection, name: &str) -> rusqlite::Result<Option<Env>> {
    conn.query_row(
        "SELECT name, hash, kind, spec, sources, created_at FROM envs WHERE name = ?1",
        params![name],
        env_row,
    )
    .optional()
}

fn env_row(r: &rusqlite::Row) -> rusqlite::Result<Env> {
    let json = |i: usize, text: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, text.into())
    };
    let spec: String = r.get(3)?;
    let sources: String = r.get(4)?;
    let kind: String = r.get(2)?;
    Ok(Env {
        name: r.get(0)?,
        hash: r.get(1)?,
        kind: EnvKind::parse(&kind)
            .ok_or_else(|| json(2, format!("unknown environment kind {kind:?}")))?,
        spec: serde_json::from_str(&spec).map_err(|e| json(3, e.to_string()))?,
        sources: serde_json::from_str(&sources).map_err(|e| json(4, e.to_string()))?,
        created_at: r.get(5)?,
    })
}
