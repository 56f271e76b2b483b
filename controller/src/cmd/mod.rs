//! One module per command (or per small family of commands). Each command
//! takes its parsed arguments and the [`Context`], and returns a value that
//! implements [`Render`](crate::output::Render): `main` prints it once, as
//! text or JSON, and exits with the code it names. Reaching targets is
//! [`crate::target`]'s business, following logs [`crate::follow`]'s.

pub mod attach;
pub mod detach;
pub mod download;
pub mod endpoint;
pub mod env;
pub mod env_build;
pub mod fleet;
pub mod forward;
pub mod host_key;
pub mod job;
pub mod jobs;
pub mod metrics;
pub mod mux;
pub mod pool;
pub mod run;
pub mod run_json;
pub mod runs;
pub mod ssh;
pub mod status;
pub mod targets;
pub mod validate;

use std::path::PathBuf;

use crate::agent_bundle::Agents;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::target::Targets;
use crate::workspace::Workspace;

/// What every command gets: the workspace, its targets, and the output mode.
#[derive(Debug)]
pub struct Context {
    /// The opened workspace.
    pub workspace: Workspace,
    /// Its targets, and how to reach them.
    pub targets: Targets,
    /// `--json`.
    pub json: bool,
}

impl Context {
    /// Opens the workspace named by `--workspace`/`MOOR_WORKSPACE`, else the
    /// default; `agents` are the agents this moor carries.
    pub fn open(
        workspace: Option<PathBuf>,
        json: bool,
        agents: &'static Agents,
    ) -> Result<Context> {
        let dir = workspace.or_else(Workspace::default_dir).ok_or_else(|| {
            Error::usage(
                "no workspace directory: HOME is not set",
                "pass --workspace DIR or set MOOR_WORKSPACE",
            )
        })?;
        let workspace = Workspace::open(dir)?;
        Ok(Context {
            targets: Targets::new(workspace.clone(), agents),
            workspace,
            json,
        })
    }

    /// The workspace database.
    pub fn store(&self) -> Result<Store> {
        self.workspace.store()
    }
}
