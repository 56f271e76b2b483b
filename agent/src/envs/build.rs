//! `moor-agent env-build DIR`: builds one environment, as the job of a run
//! (its stdout and stderr are the build log). Holds the environment's lock,
//! so concurrent builders of one environment build it once; writes
//! `ready.json` only once everything is in place.
//!
//! `moor-agent conda-create PREFIX SPEC.json CHANNEL...`: the conda part
//! alone, also used inside Docker builds (the static agent runs in any image).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use moor_proto::env::{image_tag, CondaSpec, EnvKind, EnvSpec};
use nix::fcntl::{Flock, FlockArg};

use crate::envs::{files, Failed, Ready, Stored};
use crate::error::{AgentError, Result};
use crate::sys;

/// Builds the environment in `dir`; the exit status tells how it went.
pub fn run(dir: &Path) -> Result<()> {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(files::LOCK))
        .map_err(|e| format!("lock: {e}"))?;
    let _lock =
        Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| format!("lock: {e}"))?;
    if dir.join(files::READY).exists() {
        println!("moor: the environment is ready (built by another prepare)");
        return Ok(());
    }
    let stored: Stored =
        sys::read_json(&dir.join(files::SPEC)).map_err(|e| format!("spec.json: {e}"))?;
    let _ = fs::remove_file(dir.join(files::FAILED));
    let kind = stored.spec.kind();
    println!(
        "moor: building {} environment {}",
        kind.as_str(),
        stored.hash
    );
    let result = build(dir, &stored);
    match result {
        Ok(ready) => {
            sys::write_json_atomic(&dir.join(files::READY), &ready)
                .map_err(|e| format!("ready.json: {e}"))?;
            println!("moor: environment ready");
            Ok(())
        }
        Err(error) => {
            let failed = Failed {
                error: error.message.clone(),
                fix: error.fix.clone(),
                at: moor_proto::time::now(),
            };
            let _ = sys::write_json_atomic(&dir.join(files::FAILED), &failed);
            Err(error)
        }
    }
}

fn build(dir: &Path, stored: &Stored) -> Result<Ready> {
    let spec = &stored.spec;
    let prefix = dir.join(files::PREFIX);
    // A killed earlier build may have left a partial prefix.
    if prefix.exists() {
        println!("moor: removing what an interrupted build left");
        fs::remove_dir_all(&prefix).map_err(|e| format!("removing {}: {e}", prefix.display()))?;
    }
    let channel_dir = unpack_asset(
        dir,
        stored,
        stored.options.channel_dir.as_deref(),
        "channel",
    )?;
    let wheelhouse = unpack_asset(
        dir,
        stored,
        stored.options.wheelhouse.as_deref(),
        "wheelhouse",
    )?;
    let ca_bundle = crate::envs::network::apply(dir, &stored.options.network)?;
    let kind = spec.kind();
    let mut ready = Ready {
        kind,
        prefix: None,
        image: None,
        ready_at: String::new(),
    };
    match kind {
        EnvKind::Host => println!("moor: user-managed: nothing to install"),
        EnvKind::Venv => {
            venv(&prefix, spec, wheelhouse.as_deref())?;
            ready.prefix = Some(prefix);
        }
        EnvKind::Conda => {
            let conda = spec.conda.as_ref().expect("a conda spec");
            if stored.options.use_host_conda {
                host_conda(&prefix, conda, channel_dir.as_deref())?;
            } else {
                let channels = channels(conda, channel_dir.as_deref());
                crate::envs::docker::block_on(conda_create(
                    &prefix,
                    conda,
                    &channels,
                    &conda_cache(),
                ))?;
            }
            pip_install(&prefix.join("bin/python"), spec, wheelhouse.as_deref())?;
            ready.prefix = Some(prefix);
        }
        EnvKind::Docker => {
            let tag = image_tag(&stored.hash);
            let user_context = spec
                .docker
                .as_ref()
                .and_then(|d| d.context.as_ref())
                .map(|sha| stored.snapshots.join(format!("{sha}.tar")));
            let context = crate::envs::docker_context::build_context(
                spec,
                user_context.as_deref(),
                channel_dir.as_deref(),
                wheelhouse.as_deref(),
                ca_bundle.as_deref(),
            )?;
            let mut build_args = spec
                .docker
                .as_ref()
                .map(|d| d.build_args.clone())
                .unwrap_or_default();
            build_args.extend(crate::envs::network::build_args(&stored.options.network));
            crate::envs::docker::block_on(async {
                let docker = crate::envs::docker::connect()?;
                crate::envs::docker::build(&docker, &tag, context, &build_args).await
            })?;
            ready.image = Some(tag);
        }
    }
    ready.ready_at = moor_proto::time::now();
    Ok(ready)
}

/// Extracts an uploaded snapshot (a channel or wheelhouse) next to the build.
fn unpack_asset(
    dir: &Path,
    stored: &Stored,
    sha: Option<&str>,
    name: &str,
) -> Result<Option<PathBuf>> {
    let Some(sha) = sha else { return Ok(None) };
    let dest = dir.join(name);
    let _ = fs::remove_dir_all(&dest);
    let archive = stored.snapshots.join(format!("{sha}.tar"));
    let file = fs::File::open(&archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    tar::Archive::new(file)
        .unpack(&dest)
        .map_err(|e| format!("unpacking the {name}: {e}"))?;
    Ok(Some(dest))
}

fn host_python() -> Result<PathBuf> {
    sys::which("python3").ok_or_else(|| {
        AgentError::internal("python3 is not on the host's PATH")
            .with_fix("install it (sudo apt-get install python3 python3-venv)")
    })
}

fn venv(prefix: &Path, spec: &EnvSpec, wheelhouse: Option<&Path>) -> Result<()> {
    let python = host_python()?;
    let mut command = Command::new(&python);
    command.args(["-m", "venv"]).arg(prefix);
    step(&mut command).map_err(|e| {
        e.with_fix(
            "on Debian/Ubuntu the venv module is python3-venv: sudo apt-get install python3-venv",
        )
    })?;
    pip_install(&prefix.join("bin/python"), spec, wheelhouse)
}

fn pip_install(python: &Path, spec: &EnvSpec, wheelhouse: Option<&Path>) -> Result<()> {
    let lines = spec.pip_requirements();
    if lines.is_empty() {
        return Ok(());
    }
    let dir = python
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let file = dir.join("moor-requirements.txt");
    fs::write(&file, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", file.display()))?;
    let mut command = Command::new(python);
    command.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
    ]);
    if let Some(wheels) = wheelhouse {
        command.arg("--no-index").arg("--find-links").arg(wheels);
    }
    if spec.pip_hashed() {
        command.arg("--require-hashes");
    }
    let constraints = spec.pip_constraints();
    if !constraints.is_empty() {
        let file = dir.join("moor-constraints.txt");
        fs::write(&file, constraints.join("\n") + "\n")
            .map_err(|e| format!("{}: {e}", file.display()))?;
        command.arg("-c").arg(file);
    }
    command.arg("-r").arg(&file);
    step(&mut command)
}

/// Runs one build step with its output on ours (the build log).
fn step(command: &mut Command) -> Result<()> {
    let shown: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("$ {}", shown.join(" "));
    let _ = io::stdout().flush();
    let status = command
        .status()
        .map_err(|e| format!("cannot start {}: {e}", shown[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(AgentError::internal(format!(
            "`{}` failed ({status})",
            shown[..shown.len().min(4)].join(" ")
        )))
    }
}

fn channels(conda: &CondaSpec, channel_dir: Option<&Path>) -> Vec<String> {
    match channel_dir {
        Some(dir) => vec![dir.display().to_string()],
        None => conda.channels.clone(),
    }
}

fn conda_cache() -> PathBuf {
    sys::home().join(".moor/cache/conda")
}

/// Solves `conda` against `channels` and installs it into `prefix`, with
/// the rattler crates: no conda on the host.
pub async fn conda_create(
    prefix: &Path,
    conda: &CondaSpec,
    channels: &[String],
    cache: &Path,
) -> Result<()> {
    use rattler::install::Installer;
    use rattler::package_cache::PackageCache;
    use rattler_conda_types::{
        Channel, ChannelConfig, GenericVirtualPackage, MatchSpec, ParseStrictness, Subdir,
    };
    use rattler_repodata_gateway::Gateway;
    use rattler_solve::{resolvo, SolverImpl, SolverTask};

    let specs = conda
        .dependencies
        .iter()
        .map(|s| MatchSpec::from_str(s, ParseStrictness::Lenient).map_err(|e| format!("{s}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let config = ChannelConfig::default_with_root_dir(PathBuf::from("/"));
    let channels = channels
        .iter()
        .map(|c| Channel::from_str(c, &config).map_err(|e| format!("channel {c}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "moor: solving {} package(s) from {}",
        specs.len(),
        channels
            .iter()
            .map(|c| c.canonical_name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let packages = PackageCache::new(cache.join("pkgs"));
    let gateway = Gateway::builder()
        .with_cache_dir(cache.join("repodata"))
        .with_package_cache(packages.clone())
        .finish();
    let repodata = gateway
        // linux-64 or linux-aarch64: the machine this agent build runs on.
        .query(
            channels,
            [Subdir::current().unwrap_or(Subdir::Linux64), Subdir::NoArch],
            specs.clone(),
        )
        .recursive(true)
        .await
        .map_err(|e| crate::envs::fetch_error::channel_error(&e))?;
    let virtual_packages: Vec<GenericVirtualPackage> =
        rattler_virtual_packages::VirtualPackage::detect(&Default::default(), None)
            .map(|v| v.into_iter().map(GenericVirtualPackage::from).collect())
            .unwrap_or_default();
    let task = SolverTask {
        virtual_packages,
        specs: specs.clone(),
        ..SolverTask::from_iter(&repodata)
    };
    let solved = resolvo::Solver
        .solve(task)
        .map_err(|e| format!("no solution: {}", e.to_string().replace('\n', " ")))?;
    for record in &solved.records {
        println!(
            "  + {} {} {}",
            record.package_record.name.as_normalized(),
            record.package_record.version,
            record.package_record.build
        );
    }
    let _ = io::stdout().flush();
    Installer::new()
        .with_package_cache(packages)
        .with_requested_specs(specs)
        .with_execute_link_scripts(false)
        .install(prefix, solved.records)
        .await
        .map_err(|e| {
            let chain = crate::envs::fetch_error::chain(&e).join(": ");
            format!("installing into {}: {chain}", prefix.display())
        })?;
    println!("moor: conda environment installed in {}", prefix.display());
    Ok(())
}

/// `conda-create PREFIX SPEC.json [CHANNEL...]` (inside Docker builds).
pub fn conda_create_command(args: &[String]) -> Result<()> {
    let [prefix, spec, channels @ ..] = args else {
        return Err(AgentError::usage(
            "usage: moor-agent conda-create PREFIX SPEC.json [CHANNEL...]",
        ));
    };
    let conda: CondaSpec = sys::read_json(Path::new(spec)).map_err(|e| format!("{spec}: {e}"))?;
    let channels = if channels.is_empty() {
        conda.channels.clone()
    } else {
        channels.to_vec()
    };
    let cache = std::env::temp_dir().join("moor-conda-cache");
    let result =
        crate::envs::docker::block_on(conda_create(Path::new(prefix), &conda, &channels, &cache));
    let _ = fs::remove_dir_all(&cache);
    result
}

fn host_conda(prefix: &Path, conda: &CondaSpec, channel_dir: Option<&Path>) -> Result<()> {
    let home = sys::home();
    let found = ["micromamba", "mamba", "conda"]
        .iter()
        .find_map(|name| {
            sys::which(name).or_else(|| {
                ["miniconda3", "anaconda3", "miniforge3", "mambaforge"]
                    .iter()
                    .map(|d| home.join(d).join("bin").join(name))
                    .chain([PathBuf::from("/opt/conda/bin").join(name)])
                    .find(|p| sys::is_executable(p))
            })
        })
        .ok_or_else(|| {
            AgentError::internal("--use-host-conda: no micromamba, mamba or conda on the host")
                .with_fix("install one, or drop --use-host-conda (the agent builds conda environments itself)")
        })?;
    let mut command = Command::new(&found);
    command.args(["create", "--yes", "--prefix"]).arg(prefix);
    if channel_dir.is_some() {
        command.arg("--offline");
    }
    command.arg("--override-channels");
    for channel in channels(conda, channel_dir) {
        command.arg("--channel").arg(channel);
    }
    command.args(&conda.dependencies);
    step(&mut command)
}
