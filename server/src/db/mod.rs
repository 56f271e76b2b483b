//! The server's database, through sqlx's Any driver: PostgreSQL
//! (`postgres://...`) or SQLite (`sqlite://...`), one schema and one set of
//! versioned migrations for both, applied at start.
//!
//! Every change is one transaction, committed before the server answers: a
//! server killed with -9 loses nothing it acknowledged. A database that is
//! down or restarting fails the request (kind `server_unavailable`) and the
//! pool connects again by itself when it is back; the server never needs a
//! restart for it.

mod audit;
mod users;

use std::borrow::Cow;
use std::time::Duration;

use moor::team::api::Fault;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyPool;
use sqlx::SqlSafeStr;

pub use audit::Since;
pub use users::Caller;

/// The versioned migrations, oldest first: a new one is a new file and a
/// new line here, never an edit of one that shipped.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "team", include_str!("migrations/0001_team.sql"))];

/// How long a request waits for a database connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A refusal or failure, as the API answers it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Which.
    pub fault: Fault,
    /// The cause.
    pub message: String,
    /// The fix.
    pub fix: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(fault: Fault, message: impl Into<String>, fix: impl Into<String>) -> Refusal {
        Refusal {
            fault,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// A database error as the caller sees it: the database is out of reach
/// (`server_unavailable`), whatever the driver's words. The details go to
/// the server's log, never to the caller.
impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Refusal {
        tracing::warn!("database: {e}");
        Refusal::new(
            Fault::Unavailable,
            "the moor server cannot reach its database; nothing was done",
            "try again in a moment; if it persists, the server's operator should check the database (the server's log says why)",
        )
    }
}

/// The open database.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
}

impl Db {
    /// Opens the database at `url` (the pool connects lazily: a database
    /// that is down now is tried again at each request).
    pub async fn open(url: &str) -> Result<Db, Refusal> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect(url)
            .await
            .map_err(|e| {
                Refusal::new(
                    Fault::Unavailable,
                    format!("cannot open the database {}: {e}", redact(url)),
                    "check that the database server runs and the URL (--database or MOOR_DATABASE_URL); a password goes in MOOR_DATABASE_URL, PGPASSWORD or ~/.pgpass",
                )
            })?;
        Ok(Db { pool })
    }

    /// Applies the migrations not yet applied (each in its transaction).
    pub async fn migrate(&self) -> Result<(), Refusal> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&self.pool).await.map_err(|e| {
            Refusal::new(
                Fault::Unavailable,
                format!("cannot bring the database's schema up to date: {e}"),
                "check the database's log; a database written by a newer moor needs that moor",
            )
        })
    }

    /// Closes the pool (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    crate::data::recorded_url(Some(url))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time in milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    moor::time::rfc3339(t)
}
