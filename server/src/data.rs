//! The server's folder (`--data DIR`, mode 0700): `server.json` (which
//! database; never its password), `tls/` (the certificate, and its key
//! 0600), `id_ed25519` (the workspace key the server reaches targets with,
//! 0600) and, by default, `moor.db` (the SQLite database).

use std::path::{Path, PathBuf};

use moor::error::{Error, Result};
use moor::private_fs::write_private_atomic;
use serde::{Deserialize, Serialize};

/// The environment variable that may carry the database URL (with its
/// password, which must never be on a command line).
pub const DATABASE_ENV: &str = "MOOR_DATABASE_URL";

/// The settings `moor server init` writes and `start` reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The database URL, without a password (`sqlite` means `moor.db` here).
    pub database: String,
}

/// A server's folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
}

impl DataDir {
    /// The folder at `dir` (not checked: see [`DataDir::settings`]).
    pub fn new(dir: &Path) -> DataDir {
        DataDir {
            dir: dir.to_path_buf(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `server.json`.
    pub fn settings_file(&self) -> PathBuf {
        self.dir.join("server.json")
    }

    /// The default certificate (PEM).
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("tls").join("cert.pem")
    }

    /// The default certificate's private key (PEM, 0600).
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("tls").join("key.pem")
    }

    /// The SQLite database's URL, the default.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.dir.join("moor.db").display())
    }

    /// Whether `init` has made this folder a server's.
    pub fn is_initialized(&self) -> bool {
        self.settings_file().exists()
    }

    /// The settings `init` wrote.
    pub fn settings(&self) -> Result<Settings> {
        let path = self.settings_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::usage(
                    format!(
                        "{} is not a moor server's folder (no server.json)",
                        self.dir.display()
                    ),
                    format!(
                        "make it one with `moor server init --data {}`",
                        self.dir.display()
                    ),
                )
            } else {
                Error::Io {
                    what: "cannot read the server's settings",
                    path: path.clone(),
                    cause: e,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Workspace {
            message: format!("{} is not valid: {e}", path.display()),
            fix: "restore it from a backup, or write {\"database\": \"sqlite\"}".into(),
        })
    }

    /// Writes the settings (atomically, 0600).
    pub fn write_settings(&self, settings: &Settings) -> Result<()> {
        let path = self.settings_file();
        let text = serde_json::to_string_pretty(settings).expect("settings serialize");
        write_private_atomic(&path, format!("{text}\n").as_bytes()).map_err(|cause| Error::Io {
            what: "cannot write the server's settings",
            path,
            cause,
        })
    }

    /// The database URL to use: the one given (flag or environment), else
    /// the one `init` recorded.
    pub fn database_url(&self, given: Option<&str>) -> Result<String> {
        if let Some(url) = given {
            return Ok(url.to_owned());
        }
        let recorded = self.settings()?.database;
        Ok(if recorded == "sqlite" {
            self.sqlite_url()
        } else {
            recorded
        })
    }
}

/// The database URL as `init` records it: `sqlite` for the default, else
/// the URL with its password taken out (the server finds it again in
/// MOOR_DATABASE_URL, PGPASSWORD or ~/.pgpass).
pub fn recorded_url(url: Option<&str>) -> String {
    let Some(url) = url else {
        return "sqlite".into();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Refuses a database URL that carries a password on the command line,
/// where every user of the machine can read it (`ps`).
pub fn check_no_password_in_argv(url: Option<&str>) -> Result<()> {
    let Some(url) = url else { return Ok(()) };
    let from_env = std::env::var(DATABASE_ENV).is_ok_and(|v| v == url);
    if !from_env && recorded_url(Some(url)) != url {
        return Err(Error::usage(
            "--database carries a password, which anyone on this machine could read in the process list",
            format!("put the URL in {DATABASE_ENV} instead, or the password in ~/.pgpass or PGPASSWORD"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_url_keeps_no_password() {
        assert_eq!(recorded_url(None), "sqlite");
        assert_eq!(
            recorded_url(Some("postgres://moor:s3cr@t@db.example:5432/moor")),
            "postgres://moor@db.example:5432/moor"
        );
        assert_eq!(
            recorded_url(Some("postgres://moor@127.0.0.1/moor")),
            "postgres://moor@127.0.0.1/moor"
        );
        assert_eq!(
            recorded_url(Some("postgres://127.0.0.1:5/x?sslmode=disable")),
            "postgres://127.0.0.1:5/x?sslmode=disable"
        );
    }

    #[test]
    fn a_password_on_the_command_line_is_refused() {
        let e = check_no_password_in_argv(Some("postgres://u:pw@h/db")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("pw@"));
        check_no_password_in_argv(Some("postgres://u@h/db")).unwrap();
        check_no_password_in_argv(None).unwrap();
    }
}
