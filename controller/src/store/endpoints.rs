//! The workspace's record of endpoints: which target serves each, so the
//! endpoint commands find it by name. The endpoint itself (state, port,
//! server) lives on the target.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::error::Result;

impl Store {
    /// Records that `target` serves endpoint `name` (`moor endpoint create`
    /// has checked that no other target does).
    pub fn record_endpoint(&self, name: &str, target: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO endpoints (name, target, created_at) VALUES (?1, ?2, ?3)",
                params![name, target, crate::time::now()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The target serving endpoint `name`, if this workspace created it.
    pub fn endpoint_target(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT target FROM endpoints WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Every endpoint this workspace created, with its target, by name.
    pub fn recorded_endpoints(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, target FROM endpoints ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// Forgets endpoint `name`.
    pub fn forget_endpoint(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM endpoints WHERE name = ?1", params![name])
            .map_err(self.err())?;
        Ok(())
    }
}
