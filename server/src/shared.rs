//! What every request shares: the database, the failed logins, the
//! server's folder and the `moor` executable the workspace commands run.

use crate::data::DataDir;
use crate::db::Db;
use crate::slow::Slowdown;

/// The server's state, one per server.
pub struct Shared {
    /// The database.
    pub db: Db,
    /// Failed logins, by address.
    pub slow: Slowdown,
    /// The server's folder.
    pub data: DataDir,
    /// This `moor` executable, which runs the workspace commands.
    pub moor: std::path::PathBuf,
}
