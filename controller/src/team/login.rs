//! The saved login: which server, its pinned certificate, the user and its
//! token, in `$XDG_CONFIG_HOME/moor/login.json` (`~/.config/moor/...`),
//! mode 0600 in a 0700 folder. One login per user of this machine; a
//! `--workspace` still means a local workspace.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::api::{Fault, Role};
use super::client::{Client, ServerUrl};
use crate::error::{Error, Result};
use crate::private_fs::{create_private_dir, write_private_atomic};
use crate::secret::Secret;

/// A login, as saved.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The server's URL.
    pub url: String,
    /// Its certificate's fingerprint, pinned.
    pub fingerprint: String,
    /// Who logged in.
    pub user: String,
    /// With which role, when it logged in.
    pub role: Role,
    /// The token.
    pub token: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("fingerprint", &self.fingerprint)
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Login {
    /// A client of this login's server, with its pin and token.
    pub fn client(&self) -> Result<Client> {
        Ok(Client::new(
            ServerUrl::parse(&self.url)?,
            Some(self.fingerprint.clone()),
            Some(Secret::new(self.token.clone())),
        ))
    }
}

/// Where the login is kept.
pub fn file() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace::home_dir()
            .ok_or_else(|| Error::usage("neither XDG_CONFIG_HOME nor HOME is set", "set HOME"))?
            .join(".config"),
    };
    Ok(base.join("moor").join("login.json"))
}

/// The saved login, if any.
pub fn load() -> Result<Option<Login>> {
    let path = file()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(Error::Io {
                what: "cannot read the saved login",
                path,
                cause,
            })
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::usage(
            format!("the saved login {} is not valid: {e}", path.display()),
            "log in again with `moor login URL` (or remove the file)",
        )
    })
}

/// The saved login, or the error that says to log in.
pub fn require() -> Result<Login> {
    load()?.ok_or_else(|| {
        Error::team(
            Fault::Unauthorized,
            "not logged in to a moor server",
            "log in with `moor login https://HOST:PORT` and the token an admin gave you",
        )
    })
}

/// Saves a login (atomically, 0600).
pub fn save(login: &Login) -> Result<PathBuf> {
    let path = file()?;
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |cause| Error::Io {
            what: "cannot save the login",
            path,
            cause,
        }
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(io(&dir.to_path_buf()))?;
    }
    let text = serde_json::to_string_pretty(login).expect("logins serialize");
    write_private_atomic(&path, format!("{text}\n").as_bytes()).map_err(io(&path))?;
    Ok(path)
}

/// Forgets the login; whether there was one.
pub fn remove() -> Result<bool> {
    let path = file()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(cause) => Err(Error::Io {
            what: "cannot remove the saved login",
            path,
            cause,
        }),
    }
}
