//! The workspace's record of runs: which target each run was started on
//! (so `logs`, `cancel` and `download` find it by id, prefix or name), and
//! each run as moor last heard of it (the history `moor runs` falls back on
//! when a target does not answer, or was detached).

use moor_proto::RunInfo;
use rusqlite::{params, OptionalExtension};

use super::{db_err, Store};
use crate::error::Result;

impl Store {
    /// Records a run started on `target`.
    pub fn record_run(&self, run: &RunInfo, target: &str) -> Result<()> {
        insert_run(&self.conn, run, target).map_err(self.err())
    }

    /// Updates the history with runs as an agent just told them (only runs
    /// this workspace started: others on the host are not recorded).
    pub fn heard_runs(&mut self, runs: &[RunInfo]) -> Result<()> {
        let tx = self.conn.transaction().map_err(db_err(&self.path))?;
        let now = crate::time::now();
        for run in runs {
            tx.execute(
                "UPDATE runs SET info = ?2, heard_at = ?3 WHERE id = ?1",
                params![
                    run.id,
                    serde_json::to_string(run).expect("runs serialize"),
                    now
                ],
            )
            .map_err(db_err(&self.path))?;
        }
        tx.commit().map_err(db_err(&self.path))
    }

    /// The history: every run this workspace started, as last heard, with
    /// its target's name (newest first). Runs recorded before the history
    /// kept their state are `None`.
    pub fn recorded_runs(&self) -> Result<Vec<(String, Option<RunInfo>, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT target, info, id FROM runs ORDER BY created_at DESC, id DESC")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                let info: Option<String> = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    info.and_then(|i| serde_json::from_str(&i).ok()),
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// Who started each run that a team server's user started (run id to
    /// user; runs started otherwise are not in it).
    pub fn run_owners(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_by FROM runs WHERE started_by IS NOT NULL")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// The target a run was started on.
    pub fn run_target(&self, run_id: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT target FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// The runs `key` names, each as (id, target): the run with that id;
    /// else those whose id starts with it; else those with that name, newest
    /// first.
    pub fn find_runs(&self, key: &str) -> Result<Vec<(String, String)>> {
        let queries = [
            "SELECT id, target FROM runs WHERE id = ?1",
            "SELECT id, target FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
            "SELECT id, target FROM runs WHERE name = ?1 ORDER BY created_at DESC, id DESC",
        ];
        for sql in queries {
            let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
            let found = stmt
                .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.err())?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()
                .map_err(self.err())?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// Whether any run was started on `target`.
    pub fn has_runs_on(&self, target: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE target = ?1)",
                params![target],
                |r| r.get(0),
            )
            .map_err(self.err())
    }
}

/// Inserts (or replaces) the record of a run started on `target`.
/// The variable a team server sets for the `moor` it runs for a user: runs
/// started then are recorded as that user's (`moor runs` shows USER).
pub const TEAM_USER_ENV: &str = "MOOR_TEAM_USER";

/// The user runs are started for, when a team server runs this moor.
pub fn team_user() -> Option<String> {
    std::env::var(TEAM_USER_ENV).ok().filter(|u| !u.is_empty())
}

pub(super) fn insert_run(
    conn: &rusqlite::Connection,
    run: &RunInfo,
    target: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO runs (id, target, name, command, snapshot, created_at, env, info, heard_at, started_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            run.id,
            target,
            run.name,
            serde_json::to_string(&run.command).expect("strings serialize"),
            run.snapshot,
            run.created_at,
            run.environment,
            serde_json::to_string(run).expect("runs serialize"),
            crate::time::now(),
            team_user(),
        ],
    )
    .map(drop)
}
