//! The team server's HTTP API, as both ends see it: paths, the bodies sent
//! and answered (JSON; a body with a field not named here is refused), and
//! the error every refusal carries. The server (crate `moor-server`) and
//! this crate's [`client`](super::client) share these types, so the two
//! cannot drift apart.

use serde::{Deserialize, Serialize};

pub use crate::error::team::{Fault, Refused};

/// The API's version prefix: every path starts with it.
pub const PREFIX: &str = "/v1";

/// The most a request body may carry (JSON requests; uploads have their own).
pub const MAX_BODY: usize = 64 * 1024;

/// The longest user name; names are `[a-z0-9][a-z0-9._-]*`.
pub const MAX_NAME: usize = 64;

/// A user's role: what the server lets them do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also runs, cancels its own runs, creates environments, pools and
    /// endpoints.
    Member,
    /// Also attaches and detaches targets, manages users, cancels anyone's
    /// runs, reads the audit log.
    Admin,
}

impl Role {
    /// Its name, as the command line and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `name` may name a user: 1 to [`MAX_NAME`] characters of
/// `[a-z0-9._-]`, starting with a letter or digit.
pub fn valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// `POST /v1/users`: a new user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A user as the server lists it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When it was added (RFC 3339, UTC).
    pub created_at: String,
    /// Who added it (empty for the first admin, made by `moor server init`).
    pub created_by: String,
}

/// A token just made (a new user, or a rotation): shown once, stored
/// nowhere but the server's hash of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issued {
    /// The user's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The token.
    pub token: String,
}

/// `GET /v1/whoami`: who the token is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    /// The user's name.
    pub user: String,
    /// Its role.
    pub role: Role,
}

/// `DELETE /v1/users/NAME`: the user is gone, its tokens with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    /// The user's name.
    pub name: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who (empty: the server itself, as `moor server init`).
    pub user: String,
    /// What: `user.add`, `user.remove`, `user.token`, `attach`, `run`, ...
    pub action: String,
    /// On what: a user's, target's or run's name.
    pub subject: String,
    /// More, when there is more to say (a role).
    pub detail: String,
}

/// `GET /v1/audit`: the entries, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Whether older entries matched and were left out (the newest
    /// [`MAX_AUDIT`] are given).
    pub truncated: bool,
}

/// `POST /v1/exec`: a workspace command, run by the server in the team's
/// workspace as the caller (the answer streams [`super::frames`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The command line after `moor` (`--workspace` and file flags refused).
    pub argv: Vec<String>,
    /// The values of the variables its `--password-env` and
    /// `--key-passphrase-env` name, read on the caller's machine: given to
    /// that one command's environment, never stored or logged.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// A `moor run`'s source, uploaded first (`PUT /v1/sources/SHA`).
    #[serde(default)]
    pub source: Option<String>,
}

/// `GET` and `PUT /v1/sources/SHA`: whether the server has that source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceState {
    /// It has it (a member sent it already: not sent again).
    pub present: bool,
}

/// The largest source uploaded (a run's snapshot, as `moor run` packs it).
pub const MAX_SOURCE: u64 = 256 << 20;

/// The most audit entries one answer carries.
pub const MAX_AUDIT: usize = 10_000;

/// A refusal, as every error answer carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// Machine-readable: [`Fault::kind`].
    pub kind: String,
    /// The cause.
    pub message: String,
    /// The fix.
    pub fix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_plain_lowercase_words() {
        for good in ["alice", "bob.smith", "ci-bot_2", "0day"] {
            assert!(valid_user_name(good), "{good}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "",
            "Alice",
            "-x",
            ".x",
            "a b",
            "a/b",
            "a\n",
            "é",
            long.as_str(),
        ] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_body_with_an_unknown_field_is_refused() {
        let ok: NewUser = serde_json::from_str(r#"{"name":"a","role":"member"}"#).unwrap();
        assert_eq!(ok.role, Role::Member);
        assert!(serde_json::from_str::<NewUser>(r#"{"name":"a","role":"member","x":1}"#).is_err());
        assert!(serde_json::from_str::<NewUser>(r#"{"name":"a","role":"root"}"#).is_err());
    }
}
