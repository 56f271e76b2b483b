//! The workspace's pools (named lists of targets) and jobs (one command on
//! several nodes). A job's nodes are runs of the runs table, each marked
//! with its job and node rank, so every run command finds them.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{db_err, Store};
use crate::error::{Error, Result};

/// A named list of targets, usable wherever a target is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Its targets, in order (node 0 first).
    pub targets: Vec<String>,
    /// When it was created.
    pub created_at: String,
}

/// A job as the workspace records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id (`j` and a run id's shape).
    pub id: String,
    /// Its name (`display_name`, `--name`).
    pub name: Option<String>,
    /// Its experiment (`experiment_name`), a group to list by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The command as given.
    pub command: Vec<String>,
    /// The pool it ran on, when it was given as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Its nodes: (target, run id), node 0 first.
    pub nodes: Vec<(String, String)>,
    /// The rendezvous address (node 0 as the others reach it).
    pub master_addr: String,
    /// When it was created.
    pub created_at: String,
}

impl Store {
    /// Creates a pool; its name must not be a target's or another pool's.
    pub fn create_pool(&self, name: &str, targets: &[String]) -> Result<Pool> {
        if self.target(name)?.is_some() {
            return Err(Error::usage(
                format!("{name:?} is a target's name; a pool needs its own"),
                "choose another name for the pool",
            ));
        }
        let pool = Pool {
            name: name.to_owned(),
            targets: targets.to_vec(),
            created_at: crate::time::now(),
        };
        let inserted = self.conn.execute(
            "INSERT INTO pools (name, targets, created_at) VALUES (?1, ?2, ?3)",
            params![
                pool.name,
                serde_json::to_string(&pool.targets).expect("strings serialize"),
                pool.created_at
            ],
        );
        match inserted {
            Ok(_) => Ok(pool),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::usage(
                    format!("pool {name:?} exists"),
                    format!("`moor pool delete {name}` first, or choose another name"),
                ))
            }
            Err(e) => Err(db_err(&self.path)(e)),
        }
    }

    /// Creates a pool, or gives an existing one these targets (a fleet
    /// attach's pools follow the inventory); its name must not be a target's.
    pub fn put_pool(&self, name: &str, targets: &[String]) -> Result<Pool> {
        if self.pool(name)?.is_none() {
            return self.create_pool(name, targets);
        }
        self.conn
            .execute(
                "UPDATE pools SET targets = ?2 WHERE name = ?1",
                params![
                    name,
                    serde_json::to_string(targets).expect("strings serialize")
                ],
            )
            .map_err(self.err())?;
        Ok(self.pool(name)?.expect("just updated"))
    }

    /// Every pool, by name.
    pub fn pools(&self) -> Result<Vec<Pool>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, targets, created_at FROM pools ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt.query_map([], pool_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// One pool.
    pub fn pool(&self, name: &str) -> Result<Option<Pool>> {
        self.conn
            .query_row(
                "SELECT name, targets, created_at FROM pools WHERE name = ?1",
                params![name],
                pool_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Deletes a pool (its targets stay); whether it existed.
    pub fn delete_pool(&self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM pools WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Records a job and its nodes' runs (node 0 first), in one transaction.
    pub fn record_job(&mut self, job: &JobRecord, runs: &[moor_proto::RunInfo]) -> Result<()> {
        let tx = self.conn.transaction().map_err(db_err(&self.path))?;
        for ((target, _), run) in job.nodes.iter().zip(runs) {
            super::runs::insert_run(&tx, run, target).map_err(db_err(&self.path))?;
        }
        tx.execute(
            "INSERT INTO jobs (id, name, experiment, info, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                job.id,
                job.name,
                job.experiment,
                serde_json::to_string(job).expect("jobs serialize"),
                job.created_at
            ],
        )
        .map_err(db_err(&self.path))?;
        for (rank, (_, run)) in job.nodes.iter().enumerate() {
            tx.execute(
                "UPDATE runs SET job = ?1, node = ?2 WHERE id = ?3",
                params![job.id, rank as i64, run],
            )
            .map_err(db_err(&self.path))?;
        }
        tx.commit().map_err(db_err(&self.path))
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT info FROM jobs ORDER BY created_at DESC, id DESC")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        let texts = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())?;
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// The jobs `key` names: the one with that id; else those whose id
    /// starts with it; else those with that name, newest first.
    pub fn find_jobs(&self, key: &str) -> Result<Vec<JobRecord>> {
        let all = self.jobs()?;
        let tests: [&dyn Fn(&JobRecord) -> bool; 3] = [
            &|j| j.id == key,
            &|j| key.len() >= 2 && j.id.starts_with(key),
            &|j| j.name.as_deref() == Some(key),
        ];
        for test in tests {
            let found: Vec<JobRecord> = all.iter().filter(|j| test(j)).cloned().collect();
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// The ids of the runs that are nodes of a job.
    pub fn job_runs(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE job IS NOT NULL")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }
}

fn pool_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Pool> {
    let targets: String = r.get(1)?;
    Ok(Pool {
        name: r.get(0)?,
        targets: serde_json::from_str(&targets).unwrap_or_default(),
        created_at: r.get(2)?,
    })
}
