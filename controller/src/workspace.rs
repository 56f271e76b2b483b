//! The workspace: the directory where moor keeps its state (known_hosts now;
//! targets and keys later). Chosen by `--workspace DIR`, else
//! `$MOOR_WORKSPACE`, else `$XDG_DATA_HOME/moor` (`~/.local/share/moor`).
//! The directory is mode 0700 and every file in it 0600.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key;

use crate::error::{Error, Result};
use crate::private_fs::{make_private, write_atomic, write_private_atomic};
use crate::store::Store;

/// The files moor keeps in a workspace (all 0600).
const FILES: [&str; 7] = [
    "moor.db",
    "moor.db-wal",
    "moor.db-shm",
    IN_USE,
    "known_hosts",
    "id_ed25519",
    "id_ed25519.pub",
];

/// A file holding the workspace id, written once its database exists: its
/// presence says the workspace was in use (see [`Workspace::store`]).
pub const IN_USE: &str = "workspace-id";

/// An opened workspace directory.
#[derive(Debug, Clone)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// The default location when neither `--workspace` nor `MOOR_WORKSPACE` is set.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(xdg).join("moor"));
        }
        home_dir().map(|h| h.join(".local/share/moor"))
    }

    /// Opens (creating, mode 0700) the workspace at `dir`.
    pub fn open(dir: PathBuf) -> Result<Self> {
        let io = |cause| Error::Io {
            what: "cannot create workspace",
            path: dir.clone(),
            cause,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        // A directory made by someone else (or an older moor) may be wider,
        // and so may its files (copied, restored from a backup): narrowed
        // back, with a warning.
        make_private(&dir, 0o700).map_err(io)?;
        for name in FILES {
            let path = dir.join(name);
            if path.exists() {
                make_private(&path, 0o600).map_err(io)?;
            }
        }
        Ok(Workspace { dir })
    }

    /// The workspace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where an environment's Docker build context is kept (`contexts/`,
    /// created 0700 on first use), by its sha256.
    pub fn docker_context_file(&self, sha256: &str) -> PathBuf {
        let dir = self.dir.join("contexts");
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        }
        dir.join(format!("{sha256}.tar"))
    }

    /// The index of the sources packed from here (`snapshot-index/`).
    pub fn snapshot_index(&self) -> crate::snapshot::SnapshotIndex {
        crate::snapshot::SnapshotIndex::in_dir(self.dir.join("snapshot-index"))
    }

    /// The workspace's own known_hosts file.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Opens the workspace database, creating it in a new workspace. In a
    /// workspace that was in use (it has [`IN_USE`] or its key), a missing or
    /// empty database is refused: opening would make a new, empty workspace,
    /// and every target, run and environment would be lost from view.
    pub fn store(&self) -> Result<Store> {
        let db = self.dir.join("moor.db");
        let empty = |path: &Path| fs::metadata(path).map_or(true, |m| m.len() == 0);
        let in_use = [IN_USE, "id_ed25519"]
            .into_iter()
            .find(|name| self.dir.join(name).exists());
        if let (true, true, Some(sign)) = (empty(&db), empty(&self.dir.join("moor.db-wal")), in_use)
        {
            return Err(Error::Workspace {
                message: format!(
                    "the workspace database {} is missing or empty, but the workspace was in use (it has {sign}); opening it would start an empty workspace",
                    db.display()
                ),
                fix: format!(
                    "restore moor.db (with moor.db-wal, if any) from a backup; to start over on purpose, move the folder away (mv {0} {0}.old)",
                    self.dir.display()
                ),
            });
        }
        let store = Store::open(&db)?;
        let marker = self.dir.join(IN_USE);
        if !marker.exists() {
            let id = store.workspace_id()?;
            write_atomic(&marker, format!("{id}\n").as_bytes(), 0o600).map_err(|cause| {
                Error::Io {
                    what: "cannot mark the workspace in use",
                    path: marker.clone(),
                    cause,
                }
            })?;
        }
        Ok(store)
    }

    /// The workspace key file (`id_ed25519`, mode 0600).
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The workspace's key pair, made on first use: the key moor enrolls on
    /// password-attached hosts so that later commands need no password.
    /// Returns the public key line, tagged `moor-workspace:<id>`.
    pub fn key(&self, workspace_id: &str) -> Result<String> {
        let path = self.key_file();
        let io = |cause| Error::Io {
            what: "cannot write the workspace key",
            path: path.clone(),
            cause,
        };
        if !path.exists() {
            let mut seed = [0u8; 32];
            crate::random::fill(&mut seed).map_err(io)?;
            let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
            seed.fill(0);
            let mut key = ssh_key::PrivateKey::from(pair);
            key.set_comment(key_tag(workspace_id));
            let text = key
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| io(std::io::Error::other(e)))?;
            // Two processes may race here: each writes a whole key atomically,
            // and the one that lands last is the key; both read it back below.
            if !path.exists() {
                write_private_atomic(&path, text.as_bytes()).map_err(io)?;
            }
        }
        let key = crate::ssh::auth::load_key(&path, None)?;
        let mut public = key.public_key().clone();
        public.set_comment(key_tag(workspace_id));
        public
            .to_openssh()
            .map_err(|e| io(std::io::Error::other(e)))
    }
}

/// The comment that tags lines moor adds to authorized_keys.
pub fn key_tag(workspace_id: &str) -> String {
    format!("moor-workspace:{workspace_id}")
}

/// The user's home directory, from `$HOME`.
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_fs::open_private_append;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn workspace_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let ws = Workspace::open(root.path().join("a/b")).unwrap();
        let mode = fs::metadata(ws.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let f = ws.dir().join("f");
        write_private_atomic(&f, b"one").unwrap();
        write_private_atomic(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Files found wider (a copied workspace) are narrowed on open.
        let db = ws.dir().join("known_hosts");
        fs::write(&db, "").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(ws.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let ws = Workspace::open(ws.dir().to_owned()).unwrap();
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(ws.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let g = ws.dir().join("g");
        open_private_append(&g).unwrap();
        assert_eq!(
            fs::metadata(&g).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
