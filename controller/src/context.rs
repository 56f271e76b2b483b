//! What every command and library step that reaches targets gets: the
//! opened workspace, its targets and how to reach them, and the output mode.

use std::path::PathBuf;

use crate::agent_bundle::Agents;
use crate::error::{Error, Result};
use crate::reach::Targets;
use crate::store::Store;
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
        crate::snapshot::leave_out_workspace(workspace.dir());
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
