//! `moor server init`: makes a folder a server's. The schema, the
//! certificate (self-signed), the workspace key and the first admin; the
//! certificate's fingerprint and the admin's token are printed once.

use std::path::{Path, PathBuf};

use moor::error::{Error, Result};
use moor::private_fs::create_private_dir;
use moor::team::api::{Fault, NewUser, Role};
use serde::Serialize;

use crate::data::{self, DataDir, Settings};
use crate::db::{Db, Refusal};
use crate::tls;

/// What `init` is given.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The server's folder.
    pub data: PathBuf,
    /// The database URL (`None`: SQLite in the folder).
    pub database: Option<String>,
    /// The first admin's name.
    pub admin: String,
}

/// What `init` made.
#[derive(Debug, Clone, Serialize)]
pub struct Initialized {
    /// The server's folder.
    pub data: PathBuf,
    /// The database, without its password (`sqlite`: moor.db in the folder).
    pub database: String,
    /// The certificate's fingerprint, which members pass to `moor login`.
    pub fingerprint: String,
    /// The first admin's name.
    pub admin: String,
    /// Its token, shown this once.
    pub admin_token: String,
    /// The workspace's public key, which the server enrols on targets.
    pub workspace_key: String,
}

/// A refusal of the server's database, as a command's error.
pub fn team_error(refusal: Refusal) -> Error {
    Error::team(refusal.fault, refusal.message, refusal.fix)
}

/// Makes `options.data` a server's folder.
pub async fn init(options: &InitOptions) -> Result<Initialized> {
    data::check_no_password_in_argv(options.database.as_deref())?;
    let dir = DataDir::new(&options.data);
    if dir.is_initialized() {
        return Err(Error::team(
            Fault::Conflict,
            format!("{} is a moor server's folder already", options.data.display()),
            format!(
                "start it with `moor server start --data {0}`; to start over, move it away (mv {0} {0}.old)",
                options.data.display()
            ),
        ));
    }
    make_dirs(&options.data)?;
    let fingerprint =
        tls::make_self_signed(tls::default_names(), &dir.cert_file(), &dir.key_file())?;
    // The team's workspace: the local mode's (targets, pinned host keys,
    // runs), which the server's commands work in.
    let workspace = moor::workspace::Workspace::open(options.data.join("workspace"))?;
    let workspace_id = workspace.store()?.workspace_id()?;
    let workspace_key = workspace.key(&workspace_id)?;
    let url = match &options.database {
        Some(url) => url.clone(),
        None => dir.sqlite_url(),
    };
    let db = Db::open(&url).await.map_err(team_error)?;
    db.migrate().await.map_err(team_error)?;
    if db.has_users().await.map_err(team_error)? {
        return Err(Error::team(Fault::Conflict, format!("the database {} holds a team already", crate::db::redact(&url)), "give this server a database of its own (a new PostgreSQL database, or none for SQLite in the folder)"));
    }
    let admin = NewUser {
        name: options.admin.clone(),
        role: Role::Admin,
    };
    let issued = db.add_user("", &admin).await.map_err(team_error)?;
    db.close().await;
    let database = data::recorded_url(options.database.as_deref());
    dir.write_settings(&Settings {
        database: database.clone(),
    })?;
    Ok(Initialized {
        data: options.data.clone(),
        database,
        fingerprint,
        admin: issued.name,
        admin_token: issued.token,
        workspace_key,
    })
}

fn make_dirs(data: &Path) -> Result<()> {
    for dir in [data.to_path_buf(), data.join("tls")] {
        create_private_dir(&dir).map_err(|cause| Error::Io {
            what: "cannot create the server's folder",
            path: dir.clone(),
            cause,
        })?;
    }
    Ok(())
}

impl moor::output::Render for Initialized {
    fn render(&self, out: &mut moor::output::Text) {
        out.line(format!(
            "moor server folder {} made (database: {})",
            self.data.display(),
            self.database
        ));
        out.line(format!("certificate fingerprint: {}", self.fingerprint));
        out.line(format!("admin {} token: {}", self.admin, self.admin_token));
        out.note(format!(
            "the token is shown only now. Start the server with `moor server start --data {}`; log in with `moor login https://HOST:8443 --fingerprint {} --token-stdin`",
            self.data.display(),
            self.fingerprint
        ));
    }
}
