//! The audit log: who did what to what, and when; written in the same
//! transaction as the change it records, read by admins.

use moor::team::api::{AuditEntry, MAX_AUDIT};
use sqlx::{Any, Row, Transaction};

use super::{now_ms, rfc3339, Db, Refusal};

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct Since {
    /// Only this user's (empty: everyone's).
    pub user: String,
    /// Only from this time on (milliseconds since the epoch; 0: all).
    pub from_ms: i64,
}

/// Records one entry in `tx`.
pub async fn record(
    tx: &mut Transaction<'static, Any>,
    user: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), Refusal> {
    let at = now_ms();
    // Ordered by time, then made unique by a random tail.
    let id = format!("{at:015}-{}", moor::random::hex(8));
    sqlx::query(
        "INSERT INTO audit (id, at_ms, user_name, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(at)
    .bind(user)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    /// The matching entries, oldest first: the newest [`MAX_AUDIT`], and
    /// whether older ones were left out.
    pub async fn audit(&self, since: &Since) -> Result<(Vec<AuditEntry>, bool), Refusal> {
        let rows = sqlx::query(
            "SELECT at_ms, user_name, action, subject, detail FROM audit \
             WHERE ($1 = '' OR user_name = $1) AND at_ms >= $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(&since.user)
        .bind(since.from_ms)
        .bind(MAX_AUDIT as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let truncated = rows.len() > MAX_AUDIT;
        let mut entries = rows
            .iter()
            .take(MAX_AUDIT)
            .map(|row| {
                Ok(AuditEntry {
                    at: rfc3339(row.try_get(0)?),
                    user: row.try_get(1)?,
                    action: row.try_get(2)?,
                    subject: row.try_get(3)?,
                    detail: row.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, Refusal>>()?;
        entries.reverse();
        Ok((entries, truncated))
    }

    /// Who last did `action` on `subject` (who attached a target).
    pub async fn last_actor(&self, action: &str, subject: &str) -> Result<Option<String>, Refusal> {
        let row = sqlx::query("SELECT user_name FROM audit WHERE action = $1 AND subject = $2 ORDER BY id DESC LIMIT 1")
            .bind(action)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Records one entry in its own transaction (actions that change
    /// nothing else in the database: a run started on a target).
    pub async fn record(
        &self,
        user: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), Refusal> {
        let mut tx = self.pool.begin().await?;
        record(&mut tx, user, action, subject, detail).await?;
        tx.commit().await?;
        Ok(())
    }
}
