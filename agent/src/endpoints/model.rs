//! An endpoint's model, placed in its `model/` folder (`AZUREML_MODEL_DIR`):
//! copied from a run's outputs on this host, or unpacked from an uploaded
//! snapshot. A file keeps its name in the folder; a folder's contents are
//! the folder's. Symbolic links are not followed: nothing outside the run's
//! outputs is copied.

use std::fs;
use std::io;
use std::path::{Component, Path};

use moor_proto::endpoint::ModelSource;

use crate::error::{AgentError, Result};
use crate::runs::files;
use crate::{snapshots, sys};

/// Places `model` in `dest` (made here).
pub fn place(host: &super::Host, model: &ModelSource, dest: &Path) -> Result<()> {
    match model {
        ModelSource::Run { run_id, path } => {
            if host.runs.info(run_id).is_err() {
                return Err(
                    AgentError::not_found(format!("no run {run_id} on this host"))
                        .with_fix("give a run of this target (moor runs --target T)"),
                );
            }
            let outputs = host.runs.dir(run_id).join(files::OUTPUTS);
            let (source, named) = match path.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => {
                    let relative = Path::new(path);
                    if !relative
                        .components()
                        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
                    {
                        return Err(AgentError::usage(format!(
                            "model path {path:?} must stay inside the run's outputs (relative, no '..')"
                        )));
                    }
                    (
                        outputs.join(relative),
                        relative.file_name().map(|n| n.to_owned()),
                    )
                }
                None => (outputs.clone(), None),
            };
            let meta = fs::symlink_metadata(&source).map_err(|_| {
                AgentError::not_found(format!(
                    "run {run_id} has no outputs/{}",
                    path.as_deref().unwrap_or("")
                ))
                .with_fix(format!(
                    "give RUN:PATH with a path the run wrote under $MOOR_OUTPUT_DIR (see them with `moor download {run_id}`)"
                ))
            })?;
            sys::create_private_dir(dest)?;
            let copied = match named {
                Some(name) if meta.is_file() => fs::copy(&source, dest.join(name)).map(|_| ()),
                _ if meta.is_dir() => copy_tree(&source, dest),
                _ => Err(io::Error::other("not a file or folder")),
            };
            copied.map_err(|e| AgentError::io_in(dest, e).context("copying the model"))
        }
        ModelSource::Snapshot { sha256 } => {
            let archive = snapshots::path(host.snapshots, sha256);
            if !moor_proto::is_sha256_hex(sha256) || !archive.exists() {
                return Err(AgentError::not_found(format!(
                    "no snapshot {sha256} for the model"
                )));
            }
            sys::create_private_dir(dest)?;
            tar::Archive::new(fs::File::open(&archive)?)
                .unpack(dest)
                .map_err(|e| AgentError::io_in(dest, e).context("unpacking the model"))
        }
    }
}

/// Copies the folder `from` into `to`: files and folders, no links.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    sys::create_private_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
