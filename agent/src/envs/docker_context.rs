//! The Docker build context of an environment: the user's context (a
//! snapshot tar: its files, its Dockerfile replaced), then the generated
//! Dockerfile (the user's, or `FROM base`, plus moor's conda and pip
//! layers) and what those layers copy (the agent itself for the conda
//! solve, the spec, requirements and constraints, a local channel or
//! wheelhouse, the target's CA bundle).

use std::fs;
use std::path::Path;

use moor_proto::env::EnvSpec;

use crate::error::{AgentError, Result};

/// The build context: the user's context (a snapshot tar: its files, its
/// Dockerfile replaced), a generated Dockerfile and what moor's layers copy.
pub fn build_context(
    spec: &EnvSpec,
    user_context: Option<&Path>,
    channel_dir: Option<&Path>,
    wheelhouse: Option<&Path>,
    ca_bundle: Option<&Path>,
) -> Result<Vec<u8>> {
    let docker = spec.docker.as_ref().expect("a docker spec");
    let mut dockerfile = match (&docker.dockerfile, &docker.base) {
        (Some(text), _) => text.trim_end().to_owned() + "\n",
        (None, Some(base)) => format!("FROM {base}\n"),
        (None, None) => {
            return Err("a Docker environment needs a base image or a Dockerfile".into())
        }
    };
    let mut archive = tar::Builder::new(Vec::new());
    if let Some(tar_path) = user_context {
        copy_user_context(&mut archive, tar_path)?;
    }
    let mut add = |path: &str, bytes: &[u8], mode: u32| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        archive
            .append_data(&mut header, path, bytes)
            .map_err(AgentError::from)
    };
    let pip = spec.pip_requirements();
    let needs_build_dir = spec.conda.is_some() || !pip.is_empty();
    // moor's layers trust the target's extra CAs (the user's own RUN steps
    // get the proxy through Docker's build arguments).
    let ca = match ca_bundle {
        Some(path) if needs_build_dir => {
            let pem = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            add("moor-build/ca-bundle.pem", &pem, 0o644)?;
            crate::envs::network::CA_VARIABLES
                .iter()
                .map(|v| format!("{v}=/opt/moor-build/ca-bundle.pem "))
                .collect::<String>()
        }
        _ => String::new(),
    };
    if needs_build_dir {
        dockerfile.push_str("COPY moor-build /opt/moor-build\n");
    }
    if let Some(conda) = &spec.conda {
        let exe = fs::read("/proc/self/exe").map_err(|e| format!("reading the agent: {e}"))?;
        add("moor-build/moor-agent", &exe, 0o755)?;
        add(
            "moor-build/conda.json",
            &serde_json::to_vec(conda).map_err(|e| e.to_string())?,
            0o644,
        )?;
        let channel = if channel_dir.is_some() {
            " /opt/moor-build/channel"
        } else {
            ""
        };
        dockerfile.push_str(&format!(
            "RUN {ca}/opt/moor-build/moor-agent conda-create /opt/conda-env /opt/moor-build/conda.json{channel}\n\
             ENV PATH=/opt/conda-env/bin:$PATH CONDA_PREFIX=/opt/conda-env\n"
        ));
    }
    if !pip.is_empty() {
        add(
            "moor-build/requirements.txt",
            (pip.join("\n") + "\n").as_bytes(),
            0o644,
        )?;
        let mut index = if wheelhouse.is_some() {
            " --no-index --find-links /opt/moor-build/wheelhouse".to_owned()
        } else {
            String::new()
        };
        if spec.pip_hashed() {
            index.push_str(" --require-hashes");
        }
        let constraints = spec.pip_constraints();
        if !constraints.is_empty() {
            add(
                "moor-build/constraints.txt",
                (constraints.join("\n") + "\n").as_bytes(),
                0o644,
            )?;
            index.push_str(" -c /opt/moor-build/constraints.txt");
        }
        // In an image the system Python is the environment: PEP 668's
        // "externally managed" guard (Debian 12, Ubuntu 23.04+) is lifted
        // for this step only (older pips ignore the variables).
        dockerfile.push_str(&format!(
            "RUN {ca}PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --no-input --disable-pip-version-check --progress-bar off{index} -r /opt/moor-build/requirements.txt\n"
        ));
    }
    if needs_build_dir {
        dockerfile.push_str("RUN rm -rf /opt/moor-build\n");
    }
    for (dir, name) in [(channel_dir, "channel"), (wheelhouse, "wheelhouse")] {
        if let Some(dir) = dir {
            archive
                .append_dir_all(format!("moor-build/{name}"), dir)
                .map_err(|e| format!("packing the {name}: {e}"))?;
        }
    }
    println!("moor: Dockerfile:\n{dockerfile}");
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    archive
        .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(archive.into_inner()?)
}

/// Copies the user's build context (a snapshot tar) into `archive`, all
/// but its Dockerfile and `moor-build/`, which moor writes.
fn copy_user_context(archive: &mut tar::Builder<Vec<u8>>, tar_path: &Path) -> Result<()> {
    let file = fs::File::open(tar_path).map_err(|e| {
        AgentError::internal(format!("the build context {}: {e}", tar_path.display()))
            .with_fix("prepare the environment again (the context is uploaded with it)")
    })?;
    let mut user = tar::Archive::new(file);
    for entry in user
        .entries()
        .map_err(|e| format!("reading the build context: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("reading the build context: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        // moor writes the Dockerfile (the user's with its layers) and moor-build/.
        if path == Path::new("Dockerfile") || path.starts_with("moor-build") {
            continue;
        }
        let header = entry.header().clone();
        archive
            .append(&header, &mut entry)
            .map_err(|e| format!("copying the build context: {e}"))?;
    }
    Ok(())
}
