//! Azure ML command job files (CLI v2, `$schema: .../commandJob.schema.json`)
//! as people write them, read into what moor runs: the shell command with
//! `${{inputs.NAME}}` and `${{outputs.NAME}}` to replace, the code folder
//! (relative to the file; the old `local_path:` form too), inputs (literal
//! values; local `uri_file`/`uri_folder` paths and the old `file:`/`folder:`
//! keys; `https://` URLs; Azure storage refused with what to do instead),
//! named outputs, the environment (`azureml:NAME:VERSION`,
//! `azureml:NAME@latest`, `NAME`, or inline `image:` + `conda_file:` /
//! `build: path:`), environment variables, names, tags, compute,
//! distribution and instance count. A key moor does not understand is a
//! warning naming it; bad YAML or a wrong type is an error with `file:line`.
//!
//! This is the reader; `moor job submit` (issue 15) builds on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use raw::{Raw, RawCode, RawDistribution, RawEnvironment, RawInput, Scalar};

pub use command::{input_variable, Replacement};

mod command;
mod place;
mod raw;

/// A problem in a job file: `file:line: reason` (line when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFileError {
    /// The message.
    pub message: String,
}

/// A job file, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFile {
    /// The shell command line, before substitution.
    pub command: String,
    /// The code folder (absolute), when given.
    pub code: Option<PathBuf>,
    /// Inputs by name.
    pub inputs: BTreeMap<String, Input>,
    /// Named outputs (`uri_folder`): folders under the run's outputs.
    pub outputs: Vec<String>,
    /// The environment.
    pub environment: Option<Environment>,
    /// `environment_variables`.
    pub environment_variables: BTreeMap<String, String>,
    /// `display_name`: the run's name.
    pub display_name: Option<String>,
    /// `experiment_name`: a group to list runs by.
    pub experiment_name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `tags`.
    pub tags: BTreeMap<String, String>,
    /// `compute`, without `azureml:`: a target or pool name.
    pub compute: Option<String>,
    /// `distribution`.
    pub distribution: Option<Distribution>,
    /// `resources.instance_count` (1 when absent).
    pub instance_count: u32,
    /// Keys moor does not understand, each as a warning line.
    pub warnings: Vec<String>,
}

/// One input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A literal: a number, a string or a boolean, as written.
    Literal(String),
    /// A local file (absolute path), uploaded.
    File(PathBuf),
    /// A local folder (absolute path), uploaded.
    Folder(PathBuf),
    /// An `https://` (or `http://`) URL, downloaded on the host.
    Url(String),
}

/// Which environment a job runs in.
#[derive(Debug, Clone, PartialEq)]
pub enum Environment {
    /// A moor environment by name, latest or one version.
    Named {
        /// Its name.
        name: String,
        /// `NAME:VERSION`; `None` for the latest (`NAME`, `NAME@latest`).
        version: Option<u32>,
    },
    /// Inline: a base image, and a conda file (absolute) when given.
    Image {
        /// The image.
        image: String,
        /// The conda file.
        conda_file: Option<PathBuf>,
    },
    /// Inline: a Docker build context (absolute).
    Build {
        /// The folder.
        context: PathBuf,
        /// Its Dockerfile, relative to it.
        dockerfile: Option<String>,
    },
}

/// `distribution`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// `type: pytorch`.
    Pytorch {
        /// `process_count_per_instance` (1 when absent).
        processes_per_node: u32,
    },
    /// `type: mpi`.
    Mpi {
        /// `process_count_per_instance` (1 when absent).
        processes_per_node: u32,
    },
    /// `type: tensorflow`.
    Tensorflow {
        /// `worker_count`.
        workers: u32,
        /// `parameter_server_count`.
        parameter_servers: u32,
    },
}

/// Reads and checks a job file.
pub fn read(file: &Path) -> Result<JobFile, JobFileError> {
    let text = crate::limits::spec_text(file, true).map_err(|message| JobFileError { message })?;
    parse(file, &text)
}

/// Parses the text of `file`.
pub fn parse(file: &Path, text: &str) -> Result<JobFile, JobFileError> {
    let at = |line: Option<usize>, reason: String| JobFileError {
        message: match line {
            Some(line) => format!("{}:{line}: {reason}", file.display()),
            None => format!("{}: {reason}", file.display()),
        },
    };
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(needle))
            .map(|i| i + 1)
    };
    let raw: Raw = serde_yaml::from_str(text).map_err(|e| {
        let (line, reason) = crate::envspec::yaml_problem(&e);
        at(line, reason)
    })?;
    let base = file
        .parent()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()))
        .unwrap_or_default();
    let mut warnings = Vec::new();
    for key in raw.unknown.keys() {
        warnings.push(format!(
            "{}:{}: `{key}` is not something moor uses; ignored",
            file.display(),
            line_of(&format!("{key}:")).unwrap_or(0)
        ));
    }
    if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "command") {
        return Err(at(
            line_of("type:"),
            format!("type: {kind} jobs are not supported; moor runs command jobs"),
        ));
    }
    let _ = raw.schema;
    let command = raw
        .command
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| at(None, "no command".into()))?;
    let code = raw.code.map(|code| match code {
        RawCode::Path(p) | RawCode::Old { local_path: p } => base.join(p),
    });
    let mut inputs = BTreeMap::new();
    for (name, input) in raw.inputs {
        let line = line_of(&format!("{name}:"));
        inputs.insert(
            name.clone(),
            input_of(&base, &name, input).map_err(|r| at(line, r))?,
        );
    }
    for (name, output) in &raw.outputs {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(at(
                line_of(&format!("{name}:")),
                format!("outputs: {name:?} is not an output name (letters, digits, '_', '-')"),
            ));
        }
        let kind = output
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("uri_folder");
        if kind != "uri_folder" {
            return Err(at(
                line_of(&format!("{name}:")),
                format!("outputs.{name}: type {kind} is not supported; moor's outputs are folders (uri_folder)"),
            ));
        }
    }
    let environment = raw
        .environment
        .map(|e| environment_of(&base, e).map_err(|r| at(line_of("environment:"), r)))
        .transpose()?;
    let distribution = raw
        .distribution
        .map(|d| distribution_of(d).map_err(|r| at(line_of("distribution:"), r)))
        .transpose()?;
    let mut instance_count = 1;
    if let Some(resources) = raw.resources {
        instance_count = resources.instance_count.unwrap_or(1).max(1);
        for key in resources.other.keys() {
            warnings.push(format!(
                "{}:{}: resources.{key} is not something moor uses; ignored",
                file.display(),
                line_of(&format!("{key}:")).unwrap_or(0)
            ));
        }
    }
    if let Some(name) = raw.name {
        warnings.push(format!(
            "{}:{}: name: {name:?} is ignored (moor gives each run an id; display_name names it)",
            file.display(),
            line_of("name:").unwrap_or(0)
        ));
    }
    let text_map =
        |m: BTreeMap<String, Scalar>| m.into_iter().map(|(k, v)| (k, v.text())).collect();
    Ok(JobFile {
        command,
        code,
        inputs,
        outputs: raw.outputs.into_keys().collect(),
        environment,
        environment_variables: text_map(raw.environment_variables),
        display_name: raw.display_name,
        experiment_name: raw.experiment_name,
        description: raw.description,
        tags: text_map(raw.tags),
        compute: raw
            .compute
            .map(|c| c.strip_prefix("azureml:").unwrap_or(&c).to_owned()),
        distribution,
        instance_count,
        warnings,
    })
}

fn input_of(base: &Path, name: &str, input: RawInput) -> Result<Input, String> {
    let (kind, path, value, mode) = match input {
        RawInput::Value(v) => return Ok(Input::Literal(v.text())),
        RawInput::Typed {
            kind,
            path,
            file,
            folder,
            value,
            default,
            mode,
        } => {
            let (kind, path) = match (kind, path, file, folder) {
                (kind, Some(p), None, None) => (kind, Some(p)),
                (_, None, Some(p), None) => (Some("uri_file".to_owned()), Some(p)),
                (_, None, None, Some(p)) => (Some("uri_folder".to_owned()), Some(p)),
                (kind, None, None, None) => (kind, None),
                _ => return Err(format!("inputs.{name}: give one of path, file or folder")),
            };
            (kind, path, value.or(default), mode)
        }
    };
    let _ = mode; // how Azure ML mounts it: moor always copies
    let Some(path) = path else {
        return match value {
            Some(v) => Ok(Input::Literal(v.text())),
            None => Err(format!("inputs.{name}: no value and no path")),
        };
    };
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("azureml:")
        || lower.starts_with("wasbs://")
        || lower.starts_with("wasb://")
        || lower.starts_with("abfss://")
        || lower.starts_with("abfs://")
        || lower.starts_with("adl://")
    {
        return Err(format!(
            "inputs.{name}: {path} is Azure storage, which moor does not read; download the data and give a local path (it is uploaded once, by content), or an https:// URL (a SAS link works)"
        ));
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(Input::Url(path));
    }
    let local = base.join(path.strip_prefix("file://").unwrap_or(&path));
    match kind.as_deref() {
        Some("uri_file") => Ok(Input::File(local)),
        Some("uri_folder") | None => Ok(if local.is_file() {
            Input::File(local)
        } else {
            Input::Folder(local)
        }),
        Some(other) => Err(format!(
            "inputs.{name}: type {other} is not supported (uri_file, uri_folder, or a literal value)"
        )),
    }
}

fn environment_of(base: &Path, env: RawEnvironment) -> Result<Environment, String> {
    match env {
        RawEnvironment::Reference(reference) => {
            let name = reference.strip_prefix("azureml:").unwrap_or(&reference);
            if let Some(name) = name.strip_suffix("@latest") {
                return Ok(Environment::Named {
                    name: name.to_owned(),
                    version: None,
                });
            }
            match name.rsplit_once(':') {
                Some((name, version)) => Ok(Environment::Named {
                    name: name.to_owned(),
                    version: Some(version.parse().map_err(|_| {
                        format!("environment {reference}: {version:?} is not a version number")
                    })?),
                }),
                None => Ok(Environment::Named {
                    name: name.to_owned(),
                    version: None,
                }),
            }
        }
        RawEnvironment::Inline {
            build: Some(build), ..
        } => Ok(Environment::Build {
            context: base.join(build.path),
            dockerfile: build.dockerfile_path,
        }),
        RawEnvironment::Inline {
            image: Some(image),
            conda_file,
            ..
        } => Ok(Environment::Image {
            image: image
                .strip_prefix("docker.io/")
                .unwrap_or(&image)
                .to_owned(),
            conda_file: conda_file.map(|f| base.join(f)),
        }),
        RawEnvironment::Inline { .. } => {
            Err("environment: give a name (azureml:NAME:VERSION), an image, or build: path:".into())
        }
    }
}

fn distribution_of(d: RawDistribution) -> Result<Distribution, String> {
    let per_node = d.process_count_per_instance.unwrap_or(1).max(1);
    match d.kind.to_ascii_lowercase().as_str() {
        "pytorch" => Ok(Distribution::Pytorch {
            processes_per_node: per_node,
        }),
        "mpi" => Ok(Distribution::Mpi {
            processes_per_node: per_node,
        }),
        "tensorflow" => Ok(Distribution::Tensorflow {
            workers: d.worker_count.unwrap_or(1).max(1),
            parameter_servers: d.parameter_server_count.unwrap_or(0),
        }),
        other => Err(format!(
            "distribution type {other:?} is not supported (pytorch, mpi, tensorflow)"
        )),
    }
}

#[cfg(test)]
mod tests;
