//! The workspace store: embedded SQLite (`moor.db` in the workspace).
//!
//! WAL journal and a busy timeout let several `moor` processes share one
//! workspace; every write is one `BEGIN IMMEDIATE` transaction, so none is
//! lost or half-done, also when a process is killed. The schema is versioned
//! with `PRAGMA user_version` and migrated on open. Secrets are never stored:
//! a target records *how* it authenticates (a key path, the name of an
//! environment variable), not with what.

mod endpoints;
mod envs;
mod jobs;
mod migrations;
mod runs;
mod target;

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use envs::{Added, EnvRef};
pub use jobs::{JobRecord, Pool};
pub use runs::{team_user, TEAM_USER_ENV};
pub use target::{AuthRef, Target, TargetState};

use crate::checks::Check;
use crate::error::{Error, Result};
use crate::probe::Facts;
use moor_proto::env::EnvKind;

/// A named environment in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Env {
    /// Its name.
    pub name: String,
    /// Its version under the name: 1, then one more for each new spec.
    pub version: u32,
    /// The spec's hash.
    pub hash: String,
    /// How it is built.
    pub kind: EnvKind,
    /// The spec.
    pub spec: moor_proto::env::EnvSpec,
    /// The files it was made from, as given.
    pub sources: Vec<String>,
    /// The flags it was made from (absolute paths), to tell when the files
    /// have changed since.
    pub origin: EnvOrigin,
    /// When it was created.
    pub created_at: String,
}

/// The `moor env create` flags an environment version was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvOrigin {
    /// `--docker-base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_base: Option<String>,
    /// `--dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<std::path::PathBuf>,
    /// `--docker-context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_context: Option<std::path::PathBuf>,
    /// `--build-arg`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_args: Vec<String>,
    /// `--conda-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda_file: Option<std::path::PathBuf>,
    /// `--pip-requirements`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_requirements: Option<std::path::PathBuf>,
    /// `--user-managed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_managed: bool,
}

impl Env {
    /// `NAME:VERSION`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }
}

/// An open workspace database.
pub struct Store {
    conn: Connection,
    path: std::path::PathBuf,
}

/// Why one attempt at opening the database failed.
enum Opened {
    /// Another process holds a lock this one cannot wait for: try again.
    Busy(rusqlite::Error),
    /// Anything else SQLite said.
    Sqlite(rusqlite::Error),
    /// Not SQLite's doing (a newer schema).
    Failed(Box<Error>),
}

impl From<rusqlite::Error> for Opened {
    fn from(e: rusqlite::Error) -> Opened {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => Opened::Busy(e),
            _ => Opened::Sqlite(e),
        }
    }
}

/// Why a target cannot be attached under a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Conflict {
    /// The machine is already the target `name`.
    MachineTaken {
        /// The existing target.
        name: String,
    },
    /// The name belongs to another machine.
    NameTaken {
        /// Where that target is.
        host: String,
    },
    /// Another live `moor attach` works on this machine or name.
    Busy {
        /// Its process id.
        pid: u32,
        /// The name it attaches under.
        name: String,
    },
}

/// Free bytes on the disk holding `dir`, for the user (statvfs).
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Whether the disk holding the database at `path` is (all but) full: what
/// SQLite's "disk I/O error" means when a write found no room.
fn disk_full(path: &Path) -> bool {
    free_bytes(path.parent().unwrap_or(path)).is_some_and(|free| free < 1024 * 1024)
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    use rusqlite::ErrorCode;
    move |e| {
        match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            Error::Workspace {
                message: format!(
                    "workspace database {} stayed locked by another process for 30 s",
                    path.display()
                ),
                fix: format!(
                    "let the other moor command finish (see `fuser -v {}`), then try again",
                    path.display()
                ),
            }
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            Error::Workspace {
                message: format!(
                    "workspace database {} is corrupt ({})",
                    path.display(),
                    f
                ),
                fix: format!(
                    "restore it from a backup; to start a new workspace instead, move the folder away (mv {0} {0}.broken)",
                    path.parent().unwrap_or(path).display()
                ),
            }
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::DiskFull
                || (f.code == ErrorCode::SystemIoFailure && disk_full(path)) =>
        {
            let dir = path.parent().unwrap_or(path);
            Error::Workspace {
                message: format!(
                    "the disk holding workspace {} is full ({} free)",
                    dir.display(),
                    moor_proto::human_bytes(free_bytes(dir).unwrap_or(0))
                ),
                fix: "free space on that disk (old downloads, `moor env prune`), or use another --workspace, then try again".into(),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => Error::Workspace {
            message: format!(
                "workspace database {} holds a value this moor cannot read: {cause}",
                path.display()
            ),
            fix: "upgrade moor to the version that wrote it, or use another --workspace".into(),
        },
        e => Error::Io {
            what: "workspace database",
            path: path.to_owned(),
            cause: std::io::Error::other(e),
        },
    }
    }
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        // A new database's first writers race for its creation (setting WAL
        // mode takes a lock SQLite's busy handler does not wait for): a busy
        // answer here is retried, never an error, for up to 30 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::open_once(path) {
                Err(Opened::Busy(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(Opened::Busy(e)) | Err(Opened::Sqlite(e)) => return Err(db_err(path)(e)),
                Err(Opened::Failed(e)) => return Err(*e),
                Ok(store) => return Ok(store),
            }
        }
    }

    fn open_once(path: &Path) -> std::result::Result<Store, Opened> {
        let existed = path.exists();
        let mut conn = Connection::open(path)?;
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > migrations::MIGRATIONS.len() {
            return Err(Opened::Failed(Box::new(Error::usage(
                format!(
                    "workspace {} was written by a newer moor (schema {version})",
                    path.display()
                ),
                "upgrade moor, or use another --workspace",
            ))));
        }
        for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tracing::debug!(version = i + 1, "migrated workspace schema");
        }
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('workspace_id', ?1)",
            params![crate::random::hex(8)],
        )?;
        tx.commit()?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.path)
    }

    /// The workspace's random id (16 hex digits), made when it was created.
    pub fn workspace_id(&self) -> Result<String> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'workspace_id'",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// Every target, by name.
    pub fn targets(&self) -> Result<Vec<Target>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM targets ORDER BY name",
                target::COLUMNS
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([], target::from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Result<Option<Target>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM targets WHERE name = ?1", target::COLUMNS),
                params![name],
                target::from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Reserves `machine` under `name` for this process, unless that
    /// conflicts with a target or another live attach. With `replace`, the
    /// machine attached under another name may move to `name`: that name is
    /// returned, for [`Store::commit_target`] to remove. The name may stay
    /// with its machine under a new host key only when `key_named` (the
    /// user named that key with `--host-key-fingerprint`: a reinstalled
    /// host keeps its machine-id); a name whose machine-id changed needs
    /// `replace`.
    pub fn reserve(
        &mut self,
        name: &str,
        fingerprint: &str,
        machine_id: &str,
        replace: bool,
        key_named: bool,
    ) -> Result<Result<Option<String>, Conflict>> {
        let err = db_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let machine = machine_key(fingerprint, machine_id);
        let same_machine: Option<String> = tx
            .query_row(
                "SELECT name FROM targets WHERE host_key_fingerprint = ?1 AND machine_id = ?2",
                params![fingerprint, machine_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        let replaced = match same_machine {
            Some(existing) if existing != name && !replace => {
                return Ok(Err(Conflict::MachineTaken { name: existing }));
            }
            Some(existing) if existing != name => Some(existing),
            _ => None,
        };
        let same_name: Option<(String, String, String)> = tx
            .query_row(
                "SELECT host_key_fingerprint, machine_id, host FROM targets WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(&err)?;
        if let Some((fp, id, host)) = same_name {
            let rekeyed = fp != fingerprint && !key_named;
            if !replace && (id != machine_id || rekeyed) {
                return Ok(Err(Conflict::NameTaken { host }));
            }
        }
        let (me, my_start) = (
            std::process::id(),
            process_start(std::process::id()).unwrap_or_default(),
        );
        let holders: Vec<(String, String, u32, String)> = {
            let mut stmt = tx
                .prepare("SELECT machine, name, pid, pid_start FROM attach_reservations WHERE machine = ?1 OR name = ?2")
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![machine, name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)?
        };
        for (held_machine, held_name, pid, start) in holders {
            let alive = process_start(pid).is_some_and(|s| s == start);
            if alive && pid != me {
                return Ok(Err(Conflict::Busy {
                    pid,
                    name: held_name,
                }));
            }
            // A dead process (kill -9) leaves its reservation: clear it.
            tx.execute(
                "DELETE FROM attach_reservations WHERE machine = ?1",
                params![held_machine],
            )
            .map_err(&err)?;
        }
        tx.execute(
            "INSERT INTO attach_reservations (machine, name, pid, pid_start, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![machine, name, me, my_start, crate::time::now()],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Ok(replaced))
    }

    /// Records `target` as attached, in one transaction: removes `replaced`
    /// (the machine's previous name, with `--replace`) and this process's
    /// reservation. Keeps `created_at` when the target is refreshed.
    pub fn commit_target(&mut self, target: &Target, replaced: Option<&str>) -> Result<()> {
        let err = db_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        if let Some(old) = replaced {
            tx.execute("DELETE FROM targets WHERE name = ?1", params![old])
                .map_err(&err)?;
        }
        target::upsert(&tx, target).map_err(&err)?;
        tx.execute(
            "DELETE FROM attach_reservations WHERE machine = ?1",
            params![machine_key(
                &target.host_key_fingerprint,
                &target.machine_id
            )],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Drops this process's reservation of a machine (attach gave up).
    pub fn release(&self, fingerprint: &str, machine_id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM attach_reservations WHERE machine = ?1 AND pid = ?2",
                params![machine_key(fingerprint, machine_id), std::process::id()],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Updates a target's facts and checks after a re-validation.
    pub fn update_facts(&self, name: &str, facts: &Facts, checks: &[Check]) -> Result<()> {
        let facts = serde_json::to_string(facts).expect("facts serialize");
        let checks = serde_json::to_string(checks).expect("checks serialize");
        self.conn
            .execute(
                "UPDATE targets SET facts = ?2, checks = ?3, updated_at = ?4 WHERE name = ?1",
                params![name, facts, checks, crate::time::now()],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Sets a target's network settings.
    pub fn set_network(&self, name: &str, network: &moor_proto::env::BuildNetwork) -> Result<()> {
        let network = serde_json::to_string(network).expect("settings serialize");
        self.conn
            .execute(
                "UPDATE targets SET network = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, network, crate::time::now()],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Records the host key a target is now reached with, after the user
    /// trusted it explicitly (`moor host-key forget`, then
    /// `--host-key-fingerprint`): later connections pin this one.
    pub fn repin(&self, name: &str, algorithm: &str, fingerprint: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE targets SET host_key_algorithm = ?2, host_key_fingerprint = ?3, updated_at = ?4 WHERE name = ?1",
                params![name, algorithm, fingerprint, crate::time::now()],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Removes a target; returns whether it existed.
    pub fn delete_target(&self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM targets WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(self.err())
    }
}

fn machine_key(fingerprint: &str, machine_id: &str) -> String {
    format!("{fingerprint}|{machine_id}")
}

/// A process's start time (field 22 of /proc/PID/stat), to tell a live
/// process from a new one that reused a dead one's pid.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow ") ".
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests;
