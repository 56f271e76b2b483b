//! Environments on disk, content-addressed: `~/.moor/envs/<hash>/`.
//!
//! ```text
//! spec.json    the spec and prepare options (EnvSpec, PrepareOptions)
//! build        id of the run that builds it (its log is the build log)
//! lock         flock held by the builder: one build at a time
//! prefix/      the conda prefix or venv
//! ready.json   written last, atomically: the environment is complete
//! failed.json  why the last build failed
//! ```
//!
//! Only `ready.json` makes an environment ready, so a build that fails or is
//! killed at any point leaves nothing that looks ready; the next prepare
//! removes what it left and builds again. A build is a run
//! (`moor-agent env-build DIR`), so it survives the SSH connection, and its
//! log streams like any run's.

pub mod build;
pub mod docker;
pub mod docker_context;
pub mod fetch_error;
pub mod network;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use moor_proto::env::{image_tag, EnvInfo, EnvKind, EnvSpec, EnvState, PrepareOptions};
use moor_proto::{ErrorKind, RunSpec};
use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::runs::Runs;
use crate::sys;

/// File names inside an environment directory.
pub mod files {
    /// The stored spec.
    pub const SPEC: &str = "spec.json";
    /// The build run's id.
    pub const BUILD: &str = "build";
    /// The builder's lock.
    pub const LOCK: &str = "lock";
    /// The prefix (conda) or venv.
    pub const PREFIX: &str = "prefix";
    /// The ready marker.
    pub const READY: &str = "ready.json";
    /// The last failure.
    pub const FAILED: &str = "failed.json";
}

/// A spec as stored with its environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The spec.
    pub spec: EnvSpec,
    /// Its hash.
    pub hash: String,
    /// What came with the prepare.
    pub options: PrepareOptions,
    /// Where uploaded snapshots are (for channel_dir, wheelhouse).
    pub snapshots: PathBuf,
}

/// What a finished build records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// How it was built.
    pub kind: EnvKind,
    /// The prefix or venv (conda, venv).
    pub prefix: Option<PathBuf>,
    /// The image (docker).
    pub image: Option<String>,
    /// When.
    pub ready_at: String,
}

/// A failed build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    /// Why.
    pub error: String,
    /// What helps, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// When.
    pub at: String,
}

/// The environments of one user.
#[derive(Debug, Clone)]
pub struct Envs {
    root: PathBuf,
}

impl Envs {
    /// Environments under `root`.
    pub fn new(root: PathBuf) -> Envs {
        Envs { root }
    }

    /// `~/.moor/envs`.
    pub fn default_root() -> PathBuf {
        sys::home().join(".moor/envs")
    }

    /// Where the environments are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An environment's directory.
    pub fn dir(&self, hash: &str) -> PathBuf {
        self.root.join(hash)
    }

    /// The ready record of `hash`, if it is ready.
    pub fn ready(&self, hash: &str) -> Option<Ready> {
        moor_proto::is_sha256_hex(hash)
            .then(|| sys::read_json(&self.dir(hash).join(files::READY)).ok())
            .flatten()
    }

    /// Where `hash` stands.
    pub fn info(&self, runs: &Runs, hash: &str) -> io::Result<EnvInfo> {
        if !moor_proto::is_sha256_hex(hash) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "bad hash"));
        }
        let dir = self.dir(hash);
        let stored: Stored = sys::read_json(&dir.join(files::SPEC))?;
        let kind = stored.spec.kind();
        let build_run = fs::read_to_string(dir.join(files::BUILD))
            .ok()
            .map(|s| s.trim().to_owned());
        let building = build_run
            .as_deref()
            .and_then(|id| runs.info(id).ok())
            .is_some_and(|r| !r.state.is_final());
        let mut info = EnvInfo {
            hash: hash.to_owned(),
            kind,
            state: EnvState::Absent,
            build_run,
            prefix: None,
            image: (kind == EnvKind::Docker).then(|| image_tag(hash)),
            ready_at: None,
            error: None,
            fix: None,
        };
        if let Some(ready) = self.ready(hash) {
            info.state = EnvState::Ready;
            info.prefix = ready.prefix.map(|p| p.display().to_string());
            info.ready_at = Some(ready.ready_at);
        } else if building {
            info.state = EnvState::Building;
        } else if let Ok(failed) = sys::read_json::<Failed>(&dir.join(files::FAILED)) {
            info.state = EnvState::Failed;
            info.error = Some(failed.error);
            info.fix = failed.fix;
        }
        Ok(info)
    }

    /// Every environment with a spec here.
    pub fn list(&self, runs: &Runs) -> io::Result<Vec<EnvInfo>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Ok(info) = self.info(runs, &name) {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.hash.cmp(&b.hash));
        Ok(out)
    }

    /// Ready at once on a cache hit; otherwise joins the build going on, or
    /// starts one (a run of `exe env-build DIR`). The caller serialises calls.
    pub fn prepare(
        &self,
        runs: &Runs,
        exe: &Path,
        snapshots: &Path,
        spec: EnvSpec,
        hash: &str,
        options: PrepareOptions,
    ) -> Result<EnvInfo> {
        if spec.hash() != hash {
            return Err(AgentError::usage(format!(
                "the spec hashes to {}, not {hash}",
                spec.hash()
            )));
        }
        for sha in [&options.channel_dir, &options.wheelhouse]
            .into_iter()
            .flatten()
        {
            if !moor_proto::is_sha256_hex(sha) {
                return Err(AgentError::usage(format!(
                    "channel or wheelhouse snapshot {sha:?} is not 64 lowercase hex digits"
                )));
            }
            if !snapshots.join(format!("{sha}.tar")).exists() {
                return Err(AgentError::not_found(format!("no snapshot {sha}")));
            }
        }
        let dir = self.dir(hash);
        if let Ok(info) = self.info(runs, hash) {
            match info.state {
                EnvState::Ready if spec.kind() != EnvKind::Docker || image_exists(hash) => {
                    return Ok(info)
                }
                // The image went away (docker rmi): build it again.
                EnvState::Ready => {
                    fs::remove_file(dir.join(files::READY))?;
                }
                EnvState::Building => return Ok(info),
                EnvState::Absent | EnvState::Failed => {}
            }
        }
        sys::create_private_dir(&self.root)?;
        sys::create_private_dir(&dir)?;
        let stored = Stored {
            spec,
            hash: hash.to_owned(),
            options,
            snapshots: snapshots.to_owned(),
        };
        sys::write_json_atomic(&dir.join(files::SPEC), &stored)?;
        let run = runs.start(
            exe,
            RunSpec {
                name: Some(format!("env-build {}", &hash[..12])),
                snapshot: String::new(),
                command: vec![
                    exe.display().to_string(),
                    "env-build".into(),
                    dir.display().to_string(),
                ],
                env: Default::default(),
                environment: None,
                spark: None,
                ..RunSpec::default()
            },
            dir.clone(),
        )?;
        sys::write_atomic(&dir.join(files::BUILD), run.id.as_bytes())?;
        self.info(runs, hash).map_err(AgentError::from)
    }

    /// Removes an environment (and its image), unless a live run uses it.
    pub fn remove(&self, runs: &Runs, hash: &str) -> Result<EnvInfo> {
        let mut info = self
            .info(runs, hash)
            .map_err(|_| AgentError::not_found(format!("no environment {hash}")))?;
        if info.state == EnvState::Building {
            return Err(
                AgentError::new(ErrorKind::Busy, "the environment is being built")
                    .with_fix("wait for the build to end, or cancel its build run"),
            );
        }
        let users = runs
            .list()?
            .into_iter()
            .filter(|r| !r.state.is_final() && r.environment.as_deref() == Some(hash))
            .count();
        if users > 0 {
            return Err(AgentError::new(
                ErrorKind::Busy,
                format!("{users} queued or running run(s) use the environment"),
            )
            .with_fix("cancel them or wait for them to end, then remove it"));
        }
        let dir = self.dir(hash);
        // The ready marker goes first: a crash part-way leaves a stale
        // directory that the next prepare rebuilds, never a "ready" one.
        let _ = fs::remove_file(dir.join(files::READY));
        if info.kind == EnvKind::Docker {
            remove_image(hash)?;
        }
        fs::remove_dir_all(&dir)?;
        info.state = EnvState::Absent;
        info.prefix = None;
        Ok(info)
    }
}

/// Whether the engine still has the environment's image (a cache hit checks).
fn image_exists(hash: &str) -> bool {
    crate::envs::docker::block_on(async {
        let docker = crate::envs::docker::connect()?;
        Ok::<_, AgentError>(docker.inspect_image(&image_tag(hash)).await.is_ok())
    })
    .unwrap_or(false)
}

fn remove_image(hash: &str) -> Result<()> {
    crate::envs::docker::block_on(async {
        let docker = crate::envs::docker::connect()?;
        match docker
            .remove_image(
                &image_tag(hash),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(crate::envs::docker::explain(&e)),
        }
    })
}
