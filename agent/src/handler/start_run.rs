//! Starting a run on request: the spec checked against what the host has
//! (environment ready, snapshots present, names valid), then the run's
//! folder made (source unpacked, inputs, output folders) and its
//! supervisor started.

use moor_proto::{ErrorKind, RunInfo, RunSpec};

use crate::error::{AgentError, Result};
use crate::handler::Daemon;
use crate::snapshots;
use crate::sys;

impl Daemon {
    /// Starts the run `spec` asks for, or says why not.
    pub fn start_run(&self, spec: RunSpec) -> Result<RunInfo> {
        if let Some(hash) = &spec.environment {
            if self.envs.ready(hash).is_none() {
                return Err(AgentError::new(
                    ErrorKind::EnvNotReady,
                    format!("environment {hash} is not ready on this host"),
                ));
            }
        }
        if !spec.snapshot.is_empty() && !moor_proto::is_sha256_hex(&spec.snapshot) {
            return Err(AgentError::usage(
                "snapshot must be 64 lowercase hex digits",
            ));
        }
        if !spec.snapshot.is_empty() && !snapshots::has(&self.snapshots, &spec.snapshot) {
            return Err(
                AgentError::not_found(format!("no snapshot {}", spec.snapshot))
                    .with_fix("run the command again: moor sends a source the host lacks"),
            );
        }
        if spec.command.is_empty() {
            return Err(AgentError::usage("empty command"));
        }
        for (name, hash) in &spec.inputs {
            if !crate::runs::inputs::valid_name(name) || !moor_proto::is_sha256_hex(hash) {
                return Err(AgentError::usage(format!(
                    "input {name:?}: a name of letters, digits, '_' and '-', and a 64-hex snapshot"
                )));
            }
            if !snapshots::path(&self.snapshots, hash).exists() {
                return Err(
                    AgentError::not_found(format!("no snapshot {hash} for input {name}"))
                        .with_fix("run the command again: moor sends inputs the host lacks"),
                );
            }
        }
        if let Some(bad) = spec
            .outputs
            .iter()
            .find(|o| !crate::runs::inputs::valid_name(o))
        {
            return Err(AgentError::usage(format!(
                "output {bad:?}: a name of letters, digits, '_' and '-'"
            )));
        }
        let outputs = spec.outputs.clone();
        let snapshot = (!spec.snapshot.is_empty()).then(|| spec.snapshot.clone());
        let inputs: Vec<(String, std::path::PathBuf)> = spec
            .inputs
            .iter()
            .map(|(name, hash)| (name.clone(), snapshots::path(&self.snapshots, hash)))
            .collect();
        let started = self.runs.start_with(&self.exe, spec, |dir| {
            let src = dir.join("src");
            sys::create_private_dir(&src)?;
            // The snapshot's shared tree, linked (unpacked once per snapshot).
            if let Some(sha256) = &snapshot {
                // Built when it arrived if it came file by file.
                let tree = snapshots::tree_path(&self.snapshots, sha256);
                crate::snapshots::trees::unpack_once(
                    &snapshots::path(&self.snapshots, sha256),
                    &tree,
                )?;
                crate::snapshots::trees::link_into(&tree, &src)?;
            }
            crate::runs::inputs::unpack(dir, &inputs)?;
            for name in &outputs {
                sys::create_private_dir(&dir.join(crate::runs::files::OUTPUTS).join(name))?;
            }
            Ok(src)
        });
        started.map_err(|e| AgentError::io_in(self.runs.root(), e))
    }
}
