//! Users and their tokens: who a token is, adding, removing and rotating.
//! Each change and its audit line are one transaction.

use moor::team::api::{valid_user_name, Fault, Issued, NewUser, Role, User};
use sqlx::{Any, Row, Transaction};

use super::{now_ms, rfc3339, Db, Refusal};
use crate::token;

/// Who a request comes from, found by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// Refuses unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role, to: &str) -> Result<(), Refusal> {
        if self.role >= needed {
            return Ok(());
        }
        Err(Refusal::new(
            Fault::Forbidden,
            format!(
                "{} is a {}: only a{} {} may {to}",
                self.name,
                self.role,
                if needed == Role::Admin { "n" } else { "" },
                needed
            ),
            "ask an admin of the team (moor user list shows them)",
        ))
    }
}

fn role_of(text: &str) -> Result<Role, Refusal> {
    Role::parse(text).ok_or_else(|| {
        Refusal::new(
            Fault::Unavailable,
            format!("the database holds an unknown role {text:?}"),
            "the database was written by a newer moor: run that moor's server",
        )
    })
}

fn fresh_token() -> Result<String, Refusal> {
    token::new().map_err(|e| {
        Refusal::new(
            Fault::Unavailable,
            format!("cannot make a token: {e}"),
            "check the server's /dev/urandom",
        )
    })
}

impl Db {
    /// The user a token belongs to; `None` for a token the server does not
    /// know (never made, rotated away, or its user removed).
    pub async fn caller(&self, token: &str) -> Result<Option<Caller>, Refusal> {
        let row = sqlx::query(
            "SELECT u.name, u.role FROM tokens t JOIN users u ON u.name = t.user_name WHERE t.hash = $1",
        )
        .bind(token::hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Caller {
                name: row.try_get(0)?,
                role: role_of(&row.try_get::<String, _>(1)?)?,
            })
        })
        .transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, Refusal> {
        let rows =
            sqlx::query("SELECT name, role, created_ms, created_by FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(User {
                    name: row.try_get(0)?,
                    role: role_of(&row.try_get::<String, _>(1)?)?,
                    created_at: rfc3339(row.try_get(2)?),
                    created_by: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Adds a user with a new token. `by` is empty for the first admin.
    pub async fn add_user(&self, by: &str, new: &NewUser) -> Result<Issued, Refusal> {
        if !valid_user_name(&new.name) {
            return Err(Refusal::new(
                Fault::BadRequest,
                format!("{:?} cannot name a user", new.name),
                "use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT name FROM users WHERE name = $1")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(Refusal::new(
                Fault::Conflict,
                format!("the team has a user named {} already", new.name),
                "pick another name, or give that user a new token with `moor user token NAME --rotate`",
            ));
        }
        sqlx::query(
            "INSERT INTO users (name, role, created_ms, created_by) VALUES ($1, $2, $3, $4)",
        )
        .bind(&new.name)
        .bind(new.role.as_str())
        .bind(now_ms())
        .bind(by)
        .execute(&mut *tx)
        .await?;
        let token = insert_token(&mut tx, &new.name).await?;
        super::audit::record(&mut tx, by, "user.add", &new.name, new.role.as_str()).await?;
        tx.commit().await?;
        Ok(Issued {
            name: new.name.clone(),
            role: new.role,
            token,
        })
    }

    /// Removes a user; its tokens stop working with the commit. The last
    /// admin cannot be removed.
    pub async fn remove_user(&self, by: &str, name: &str) -> Result<(), Refusal> {
        let mut tx = self.pool.begin().await?;
        let role = user_role(&mut tx, name).await?;
        if role == Role::Admin {
            let admins: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if admins <= 1 {
                return Err(Refusal::new(
                    Fault::Conflict,
                    format!("{name} is the team's last admin"),
                    "add another admin first (moor user add NAME --role admin)",
                ));
            }
        }
        sqlx::query("DELETE FROM tokens WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        super::audit::record(&mut tx, by, "user.remove", name, role.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives a user a new token; its old ones stop working with the commit.
    pub async fn rotate_token(&self, by: &str, name: &str) -> Result<Issued, Refusal> {
        let mut tx = self.pool.begin().await?;
        let role = user_role(&mut tx, name).await?;
        sqlx::query("DELETE FROM tokens WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let token = insert_token(&mut tx, name).await?;
        super::audit::record(&mut tx, by, "user.token", name, "rotated").await?;
        tx.commit().await?;
        Ok(Issued {
            name: name.to_owned(),
            role,
            token,
        })
    }

    /// Whether the team has any user yet (`init` makes the first).
    pub async fn has_users(&self) -> Result<bool, Refusal> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n > 0)
    }
}

async fn user_role(tx: &mut Transaction<'static, Any>, name: &str) -> Result<Role, Refusal> {
    let row = sqlx::query("SELECT role FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => role_of(&row.try_get::<String, _>(0)?),
        None => Err(Refusal::new(
            Fault::NotFound,
            format!("the team has no user named {name}"),
            "see `moor user list`",
        )),
    }
}

async fn insert_token(tx: &mut Transaction<'static, Any>, name: &str) -> Result<String, Refusal> {
    let token = fresh_token()?;
    sqlx::query("INSERT INTO tokens (hash, user_name, created_ms) VALUES ($1, $2, $3)")
        .bind(token::hash(&token))
        .bind(name)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(token)
}
