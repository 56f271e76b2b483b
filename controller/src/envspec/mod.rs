//! Environment specs from the user's files: a conda `environment.yml`, a
//! pip `requirements.txt` (with the files it includes: [`requirements`]), a
//! Dockerfile or base image. Each is checked here, at `moor env create`,
//! with the file, line and reason of each problem; what passes becomes an
//! [`EnvSpec`] in canonical form.

mod requirements;

use std::path::Path;

use crate::snapshot::Snapshot;
use moor_proto::env::{CondaSpec, DockerSpec, EnvSpec, PipSpec};
use rattler_conda_types::{EnvironmentYaml, MatchSpecOrSubSection};

/// A problem in a spec file: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `file:line: reason` (line when known).
    pub message: String,
}

impl SpecError {
    /// Several problems as one: `N problems: A; B; C` (a file read twice
    /// says its problems once).
    fn many(mut errors: Vec<SpecError>) -> SpecError {
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.message.clone()));
        if errors.len() == 1 {
            return errors.remove(0);
        }
        let all: Vec<String> = errors.into_iter().map(|e| e.message).collect();
        SpecError {
            message: format!("{} problems: {}", all.len(), all.join("; ")),
        }
    }

    fn at(file: &Path, line: Option<usize>, reason: impl std::fmt::Display) -> SpecError {
        let message = match line {
            Some(line) => format!("{}:{line}: {reason}", file.display()),
            None => format!("{}: {reason}", file.display()),
        };
        SpecError { message }
    }
}

fn read(file: &Path) -> Result<String, SpecError> {
    crate::limits::spec_text(file, true).map_err(|message| SpecError { message })
}

/// The channels conda means by `defaults` (its `default_channels`).
pub const DEFAULTS: &[&str] = &[
    "https://repo.anaconda.com/pkgs/main",
    "https://repo.anaconda.com/pkgs/r",
];

/// A conda `environment.yml`, as conda reads it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Conda {
    /// Channels, dependencies, the `pip:` section's requirements, `variables:`.
    pub spec: CondaSpec,
    /// The `pip:` section's options and constraints (`--extra-index-url`,
    /// `-c`), merged into the environment's pip part; `None` when it has none.
    pub pip_extras: Option<PipSpec>,
    /// What was read but does not apply (`prefix:`), to say so.
    pub notes: Vec<String>,
}

/// Parses a conda `environment.yml`: channels (`defaults` and `nodefaults`
/// as conda means them; a `channel::package`'s channel added), dependencies
/// (match specs), a `pip:` section (requirements and options, as in a
/// requirements file) and `variables:`.
pub fn conda(file: &Path) -> Result<Conda, SpecError> {
    let text = read(file)?;
    conda_str(file, &text)
}

fn conda_str(file: &Path, text: &str) -> Result<Conda, SpecError> {
    let yaml = EnvironmentYaml::from_yaml_str(text).map_err(|e| {
        let (line, reason) = yaml_problem(&e);
        SpecError::at(file, line, reason)
    })?;
    let mut out = Conda::default();
    let spec = &mut out.spec;
    for channel in yaml.channels.iter().map(|c| c.to_string()) {
        match channel.as_str() {
            "nodefaults" => {}
            "defaults" => spec.channels.extend(DEFAULTS.iter().map(|c| c.to_string())),
            _ => spec.channels.push(channel),
        }
    }
    let mut errors = Vec::new();
    let mut pip_lines = Vec::new();
    for dep in &yaml.dependencies {
        match dep {
            MatchSpecOrSubSection::MatchSpec(m) => {
                if let Some(channel) = &m.channel {
                    let name = channel.name().trim_end_matches('/').to_owned();
                    if !spec.channels.contains(&name) {
                        spec.channels.push(name);
                    }
                }
                spec.dependencies.push(m.to_string())
            }
            MatchSpecOrSubSection::SubSection(key, lines) if key == "pip" => {
                pip_lines.extend(lines.iter().map(|l| (line_of(text, l), l.clone())));
            }
            MatchSpecOrSubSection::SubSection(key, _) => errors.push(SpecError::at(
                file,
                line_of(text, &format!("{key}:")),
                format!("unknown dependency section {key:?} (only pip: is supported)"),
            )),
        }
    }
    match requirements::parse_lines(file, &pip_lines) {
        Ok(pip) => {
            spec.pip = pip.requirements;
            if !pip.options.is_empty() || !pip.constraints.is_empty() {
                out.pip_extras = Some(PipSpec {
                    requirements: Vec::new(),
                    options: pip.options,
                    constraints: pip.constraints,
                });
            }
        }
        Err(pip_errors) => errors.extend(pip_errors),
    }
    for (name, _) in &yaml.variables {
        if !crate::run_env::is_name(name) {
            errors.push(SpecError::at(
                file,
                line_of(text, &format!("{name}:")),
                format!("variables: {name:?} is not an environment variable name"),
            ));
        }
    }
    spec.variables = yaml.variables.into_iter().collect();
    if let Some(prefix) = &yaml.prefix {
        out.notes.push(format!(
            "{}: prefix: {} is ignored: moor builds the environment under ~/.moor/envs on each target",
            file.display(),
            prefix.display()
        ));
    }
    if spec.dependencies.is_empty() {
        errors.push(SpecError::at(file, None, "no dependencies"));
    }
    if spec.channels.is_empty() {
        errors.push(SpecError::at(
            file,
            None,
            "no channels: list at least one (e.g. channels: [conda-forge])",
        ));
    }
    if !errors.is_empty() {
        return Err(SpecError::many(errors));
    }
    for list in [&mut spec.dependencies, &mut spec.pip] {
        list.sort();
        list.dedup();
    }
    Ok(out)
}

/// A YAML error's line and reason (serde_yaml appends " at line L column
/// C" to the reason; the line goes in front instead, as `file:line:`).
pub(crate) fn yaml_problem(e: &serde_yaml::Error) -> (Option<usize>, String) {
    let reason = e.to_string();
    let reason = reason
        .split(" at line ")
        .next()
        .unwrap_or(&reason)
        .to_owned();
    (e.location().map(|l| l.line()), reason)
}

/// The 1-based line where `needle` first appears.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Parses a pip `requirements.txt` and the files it includes.
pub fn requirements(file: &Path) -> Result<PipSpec, SpecError> {
    requirements::parse(file)
}

/// Checks a Dockerfile: a `FROM` first; `COPY`/`ADD` of local files only
/// when a build context goes with it (`with_context`).
pub fn dockerfile(file: &Path, with_context: bool) -> Result<String, SpecError> {
    let text = read(file)?;
    let mut seen_from = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let word = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match word.as_str() {
            "FROM" => seen_from = true,
            "ARG" => {}
            "COPY" | "ADD"
                if !with_context && !line.contains("--from=") && !line.contains("http") =>
            {
                return Err(SpecError::at(
                    file,
                    Some(i + 1),
                    format!("{word} of local files needs a build context: pass --docker-context DIR (the folder the files are in), or use --pip-requirements / --conda-file"),
                ))
            }
            _ if !seen_from => {
                return Err(SpecError::at(file, Some(i + 1), "the first instruction must be FROM"))
            }
            _ => {}
        }
    }
    if !seen_from {
        return Err(SpecError::at(file, None, "no FROM instruction"));
    }
    Ok(text)
}

/// Checks a Docker image reference (`name[:tag][@digest]`).
pub fn image(reference: &str) -> Result<String, String> {
    let ok = !reference.is_empty()
        && reference.len() <= 255
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
        && reference.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(reference.to_owned())
    } else {
        Err(format!(
            "{reference:?} is not a Docker image reference (e.g. ubuntu:22.04)"
        ))
    }
}

/// The parts of `moor env create`, read and checked.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    /// --docker-base.
    pub docker_base: Option<&'a str>,
    /// --dockerfile.
    pub dockerfile: Option<&'a Path>,
    /// --docker-context: a build context folder (its `Dockerfile` unless
    /// --dockerfile names another).
    pub docker_context: Option<&'a Path>,
    /// --build-arg KEY=VALUE.
    pub build_args: &'a [String],
    /// --conda-file.
    pub conda_file: Option<&'a Path>,
    /// --pip-requirements.
    pub pip_requirements: Option<&'a Path>,
    /// --user-managed.
    pub user_managed: bool,
}

/// Builds the canonical spec from the user's files.
pub fn build(sources: &Sources) -> Result<Built, SpecError> {
    let (docker, context) = docker(sources)?;
    if sources.user_managed && (sources.conda_file.is_some() || sources.pip_requirements.is_some())
    {
        return Err(SpecError {
            message: "--user-managed with --conda-file or --pip-requirements: a user-managed environment installs nothing".into(),
        });
    }
    let conda = sources.conda_file.map(conda).transpose()?;
    let mut pip = sources.pip_requirements.map(requirements).transpose()?;
    let mut notes = Vec::new();
    let conda = conda.map(|c| {
        notes = c.notes;
        // The pip section's options and constraints join the pip part.
        if let Some(extras) = c.pip_extras {
            let merged = pip.get_or_insert_with(PipSpec::default);
            merged.options.extend(extras.options);
            merged.constraints.extend(extras.constraints);
        }
        c.spec
    });
    let spec = EnvSpec {
        docker,
        conda,
        pip,
        user_managed: sources.user_managed,
    };
    if spec == EnvSpec::default() {
        return Err(SpecError {
            message: "an empty environment: give --docker-base, --dockerfile, --docker-context, --conda-file, --pip-requirements or --user-managed".into(),
        });
    }
    Ok(Built {
        spec: spec.canonical(),
        notes,
        context,
    })
}

/// Largest Docker build context.
pub const MAX_CONTEXT_BYTES: u64 = 256 << 20;

/// The Docker part, and the packed build context when there is one.
fn docker(sources: &Sources) -> Result<(Option<DockerSpec>, Option<Snapshot>), SpecError> {
    let plain = |message: String| SpecError { message };
    let mut build_args = std::collections::BTreeMap::new();
    for arg in sources.build_args {
        match arg.split_once('=') {
            Some((key, value)) if crate::run_env::is_name(key) => {
                build_args.insert(key.to_owned(), value.to_owned());
            }
            _ => return Err(plain(format!("--build-arg {arg:?}: expected KEY=VALUE"))),
        }
    }
    let context = sources.docker_context;
    let dockerfile_path = match (sources.dockerfile, context) {
        (Some(file), _) => Some(file.to_owned()),
        (None, Some(dir)) => Some(dir.join("Dockerfile")),
        (None, None) => None,
    };
    let mut spec = match (sources.docker_base, dockerfile_path) {
        (Some(_), Some(_)) => {
            return Err(plain(
                "--docker-base with --dockerfile or --docker-context: a Dockerfile names its own base (FROM)".into(),
            ))
        }
        (Some(base), None) => DockerSpec {
            base: Some(image(base).map_err(plain)?),
            ..DockerSpec::default()
        },
        (None, Some(file)) => DockerSpec {
            dockerfile: Some(dockerfile(&file, context.is_some())?),
            ..DockerSpec::default()
        },
        (None, None) if !build_args.is_empty() => {
            return Err(plain("--build-arg without a Dockerfile".into()))
        }
        (None, None) => return Ok((None, None)),
    };
    spec.build_args = build_args;
    let packed = match context {
        Some(dir) => {
            let snap = crate::snapshot::pack_docker_context(dir, MAX_CONTEXT_BYTES)
                .map_err(|e| plain(format!("--docker-context {}: {e}", dir.display())))?;
            spec.context = Some(snap.sha256.clone());
            Some(snap)
        }
        None => None,
    };
    Ok((Some(spec), packed))
}

/// A checked spec, and notes on what was read but does not apply.
#[derive(Debug)]
pub struct Built {
    /// The spec, canonical.
    pub spec: EnvSpec,
    /// e.g. a conda file's `prefix:`, ignored.
    pub notes: Vec<String>,
    /// The packed Docker build context (the spec names its sha256).
    pub context: Option<Snapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rattler_conda_types::{MatchSpec, ParseStrictness};

    const F: &str = "environment.yml";

    #[test]
    fn conda_file_parses_and_dependency_order_is_not_part_of_the_hash() {
        let a = "name: t\nchannels:\n  - conda-forge\n  - bioconda\ndependencies:\n  - numpy>=1.26\n  - python=3.11\n  - pip:\n    - scikit-learn==1.5.2\n    - Pandas\n";
        let b = "name: other\nchannels:\n  - conda-forge\n  - bioconda\ndependencies:\n  - python=3.11\n  - pip:\n    - pandas\n    - scikit_learn == 1.5.2\n  - numpy >=1.26\n";
        let c = "channels:\n  - bioconda\n  - conda-forge\ndependencies:\n  - numpy>=1.26\n  - python=3.11\n  - pip:\n    - scikit-learn==1.5.2\n    - pandas\n";
        let wrap = |conda| EnvSpec {
            conda: Some(conda),
            ..EnvSpec::default()
        };
        let a = wrap(conda_str(Path::new(F), a).unwrap().spec);
        let b = wrap(conda_str(Path::new(F), b).unwrap().spec);
        let c = wrap(conda_str(Path::new(F), c).unwrap().spec);
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash(), "channel order changes the hash");
        assert_eq!(
            a.conda.unwrap().pip,
            vec!["pandas".to_string(), "scikit-learn==1.5.2".into()]
        );
    }

    #[test]
    fn bad_conda_files_name_the_line() {
        let cases = [
            (
                "channels: [c]\ndependencies:\n  - numpy\n  - 'numpy >=>= 1'\n",
                "environment.yml:",
            ),
            (
                "channels: [c]\ndependencies:\n  - numpy\n  bad: [\n",
                "environment.yml:4",
            ),
            (
                "channels: [c]\ndependencies:\n  - numpy\n  - pip:\n    - 'sk learn'\n",
                "environment.yml:5",
            ),
            ("channels: [c]\ndependencies: []\n", "no dependencies"),
            ("dependencies:\n  - numpy\n", "no channels"),
        ];
        for (text, want) in cases {
            let err = conda_str(Path::new(F), text).unwrap_err();
            assert!(err.message.contains(want), "{text:?}: {}", err.message);
        }
    }

    #[test]
    fn conda_reads_defaults_channels_variables_and_pip_options_as_conda_does() {
        let text = "name: t\nprefix: /opt/envs/t\nchannels:\n  - defaults\n  - nodefaults\n  - conda-forge\ndependencies:\n  - bioconda::samtools\n  - python=3.11\n  - pip:\n    - --extra-index-url https://pkgs.example/simple\n    - requests==2.32.3\nvariables:\n  DATA_DIR: /data\n  MODE: train\n";
        let conda = conda_str(Path::new(F), text).unwrap();
        assert_eq!(
            conda.spec.channels,
            [
                "https://repo.anaconda.com/pkgs/main",
                "https://repo.anaconda.com/pkgs/r",
                "conda-forge",
                "bioconda"
            ]
        );
        assert_eq!(conda.spec.pip, ["requests==2.32.3"]);
        assert_eq!(
            conda.pip_extras.unwrap().options,
            ["--extra-index-url https://pkgs.example/simple"]
        );
        assert_eq!(conda.spec.variables["DATA_DIR"], "/data");
        assert!(
            conda.notes[0].contains("prefix: /opt/envs/t is ignored"),
            "{:?}",
            conda.notes
        );
        let bad = "channels: [c]\ndependencies:\n  - numpy\n  - pip:\n    - --no-deps\n    - 'a b'\nvariables:\n  1BAD: x\n";
        let err = conda_str(Path::new(F), bad).unwrap_err().message;
        assert!(
            err.starts_with("3 problems: environment.yml:5: unsupported option"),
            "{err}"
        );
        assert!(
            err.contains("environment.yml:8: variables: \"1BAD\""),
            "{err}"
        );
    }

    fn match_spec(s: &str) -> Result<String, String> {
        MatchSpec::from_str(s, ParseStrictness::Lenient)
            .map(|m| m.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn images_and_match_specs() {
        assert!(image("ubuntu:22.04").is_ok());
        assert!(image("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04@sha256:abc").is_ok());
        assert!(image("bad image").is_err());
        assert!(image("").is_err());
        assert_eq!(
            match_spec("numpy >=1.2").unwrap(),
            match_spec("numpy>=1.2").unwrap()
        );
        assert!(match_spec("numpy >=>= 1").is_err());
    }
}
