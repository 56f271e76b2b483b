//! Environment specs from the user's files: a conda `environment.yml`, a
//! pip `requirements.txt`, a Dockerfile or base image. Each is checked here,
//! at `moor env create`, with the file, line and reason of the first
//! problem; what passes becomes an [`EnvSpec`] in canonical form.

use std::path::Path;

use moor_proto::env::{CondaSpec, DockerSpec, EnvSpec, PipSpec};
use rattler_conda_types::{EnvironmentYaml, MatchSpecOrSubSection};

/// A problem in a spec file: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `file:line: reason` (line when known).
    pub message: String,
}

impl SpecError {
    fn at(file: &Path, line: Option<usize>, reason: impl std::fmt::Display) -> SpecError {
        let message = match line {
            Some(line) => format!("{}:{line}: {reason}", file.display()),
            None => format!("{}: {reason}", file.display()),
        };
        SpecError { message }
    }
}

fn read(file: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(file).map_err(|e| SpecError::at(file, None, e))
}

/// Parses a conda `environment.yml`: channels, dependencies (match specs)
/// and a `pip:` section.
pub fn conda(file: &Path) -> Result<CondaSpec, SpecError> {
    let text = read(file)?;
    conda_str(file, &text)
}

fn conda_str(file: &Path, text: &str) -> Result<CondaSpec, SpecError> {
    let yaml = EnvironmentYaml::from_yaml_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        // serde_yaml appends " at line L column C": the line is in front already.
        let reason = e.to_string();
        let reason = reason
            .split(" at line ")
            .next()
            .unwrap_or(&reason)
            .to_owned();
        SpecError::at(file, line, reason)
    })?;
    let mut spec = CondaSpec {
        channels: yaml.channels.iter().map(|c| c.to_string()).collect(),
        ..CondaSpec::default()
    };
    for dep in &yaml.dependencies {
        match dep {
            MatchSpecOrSubSection::MatchSpec(m) => spec.dependencies.push(m.to_string()),
            MatchSpecOrSubSection::SubSection(key, lines) if key == "pip" => {
                for line in lines {
                    let at = line_of(text, line);
                    spec.pip
                        .push(requirement(line).map_err(|r| SpecError::at(file, at, r))?);
                }
            }
            MatchSpecOrSubSection::SubSection(key, _) => {
                return Err(SpecError::at(
                    file,
                    line_of(text, &format!("{key}:")),
                    format!("unknown dependency section {key:?} (only pip: is supported)"),
                ))
            }
        }
    }
    if spec.dependencies.is_empty() {
        return Err(SpecError::at(file, None, "no dependencies"));
    }
    if spec.channels.is_empty() {
        return Err(SpecError::at(
            file,
            None,
            "no channels: list at least one (e.g. channels: [conda-forge])",
        ));
    }
    for list in [&mut spec.dependencies, &mut spec.pip] {
        list.sort();
        list.dedup();
    }
    Ok(spec)
}

/// The 1-based line where `needle` first appears.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Parses a pip `requirements.txt`. Index options are kept in order;
/// `-r`, `-c` and `-e` (other files, editable checkouts) are refused since
/// only this file travels to the host.
pub fn requirements(file: &Path) -> Result<PipSpec, SpecError> {
    let text = read(file)?;
    requirements_str(file, &text)
}

fn requirements_str(file: &Path, text: &str) -> Result<PipSpec, SpecError> {
    let mut spec = PipSpec::default();
    let mut joined = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if joined.is_empty() {
            start = i + 1;
        }
        // Continuation lines end in a backslash.
        if let Some(head) = raw.strip_suffix('\\') {
            joined.push_str(head);
            continue;
        }
        joined.push_str(raw);
        let line = std::mem::take(&mut joined);
        let line = match line
            .find(" #")
            .or_else(|| line.starts_with('#').then_some(0))
        {
            Some(at) => line[..at].trim().to_owned(),
            None => line.trim().to_owned(),
        };
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            let mut words = line.splitn(2, [' ', '=']);
            let option = words.next().unwrap_or_default();
            let value = words.next().unwrap_or_default().trim();
            match option {
                "--index-url" | "-i" | "--extra-index-url" | "--find-links" | "-f"
                | "--trusted-host"
                    if !value.is_empty() =>
                {
                    spec.options.push(format!("{option} {value}"))
                }
                "--no-index" | "--pre" | "--prefer-binary" | "--only-binary" | "--no-binary" => {
                    spec.options.push(line.clone())
                }
                "-r" | "--requirement" | "-c" | "--constraint" | "-e" | "--editable" => {
                    return Err(SpecError::at(
                        file,
                        Some(start),
                        format!("{option} refers to another file or checkout, which moor does not ship: put its lines in this file"),
                    ))
                }
                _ => {
                    return Err(SpecError::at(
                        file,
                        Some(start),
                        format!("unsupported or incomplete option {option:?}"),
                    ))
                }
            }
            continue;
        }
        spec.requirements
            .push(requirement(&line).map_err(|r| SpecError::at(file, Some(start), r))?);
    }
    if spec.requirements.is_empty() {
        return Err(SpecError::at(file, None, "no requirements"));
    }
    Ok(spec)
}

/// Checks one PEP 508 requirement and returns it in canonical form (name
/// normalised per PEP 503, no spaces in the version part).
fn requirement(line: &str) -> Result<String, String> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{line:?} is not a requirement (expected NAME[extras] [specifier])"
        ));
    }
    let mut normal = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && normal.ends_with('-')) {
            normal.push(c);
        }
    }
    let (rest, marker) = match line[name_end..].split_once(';') {
        Some((rest, marker)) => (rest.trim(), Some(marker.trim())),
        None => (line[name_end..].trim(), None),
    };
    let (extras, rest) = match rest.strip_prefix('[') {
        Some(inner) => {
            let (extras, rest) = inner
                .split_once(']')
                .ok_or_else(|| format!("{line:?}: unclosed [ in the extras"))?;
            (format!("[{}]", extras.replace(' ', "")), rest.trim())
        }
        None => (String::new(), rest),
    };
    let version = if let Some(url) = rest.strip_prefix('@') {
        format!(" @ {}", url.trim())
    } else {
        let compact: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
        for clause in compact.split(',').filter(|c| !c.is_empty()) {
            let op = ["===", "==", "!=", "~=", ">=", "<=", ">", "<"]
                .iter()
                .find(|op| clause.starts_with(*op))
                .ok_or_else(|| {
                    format!("{clause:?} is not a version specifier (use ==, >=, <=, !=, ~=, >, <)")
                })?;
            let v = &clause[op.len()..];
            if v.is_empty()
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '-' | '_')
                })
            {
                return Err(format!("{clause:?}: {v:?} is not a version"));
            }
        }
        compact
    };
    Ok(match marker {
        Some(marker) => format!("{normal}{extras}{version}; {marker}"),
        None => format!("{normal}{extras}{version}"),
    })
}

/// Checks a Dockerfile for what moor can build from its text alone: a
/// `FROM`, and no `COPY`/`ADD` of local files (moor sends no build context).
pub fn dockerfile(file: &Path) -> Result<String, SpecError> {
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
            "COPY" | "ADD" if !line.contains("--from=") && !line.contains("http") => {
                return Err(SpecError::at(
                    file,
                    Some(i + 1),
                    format!("{word} of local files is not supported: moor sends the Dockerfile alone; use --pip-requirements / --conda-file, or put the files in the base image"),
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
    /// --conda-file.
    pub conda_file: Option<&'a Path>,
    /// --pip-requirements.
    pub pip_requirements: Option<&'a Path>,
    /// --user-managed.
    pub user_managed: bool,
}

/// Builds the canonical spec from the user's files.
pub fn build(sources: &Sources) -> Result<EnvSpec, SpecError> {
    let docker = match (sources.docker_base, sources.dockerfile) {
        (Some(_), Some(_)) => return Err(SpecError {
            message:
                "--docker-base and --dockerfile together: a Dockerfile names its own base (FROM)"
                    .into(),
        }),
        (Some(base), None) => Some(DockerSpec {
            base: Some(image(base).map_err(|message| SpecError { message })?),
            dockerfile: None,
        }),
        (None, Some(file)) => Some(DockerSpec {
            base: None,
            dockerfile: Some(dockerfile(file)?),
        }),
        (None, None) => None,
    };
    if sources.user_managed && (sources.conda_file.is_some() || sources.pip_requirements.is_some())
    {
        return Err(SpecError {
            message: "--user-managed with --conda-file or --pip-requirements: a user-managed environment installs nothing".into(),
        });
    }
    let spec = EnvSpec {
        docker,
        conda: sources.conda_file.map(conda).transpose()?,
        pip: sources.pip_requirements.map(requirements).transpose()?,
        user_managed: sources.user_managed,
    };
    if spec == EnvSpec::default() {
        return Err(SpecError {
            message: "an empty environment: give --docker-base, --dockerfile, --conda-file, --pip-requirements or --user-managed".into(),
        });
    }
    Ok(spec.canonical())
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
        let a = wrap(conda_str(Path::new(F), a).unwrap());
        let b = wrap(conda_str(Path::new(F), b).unwrap());
        let c = wrap(conda_str(Path::new(F), c).unwrap());
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
    fn requirements_parse_normalise_and_refuse_what_cannot_travel() {
        let text = "# comment\nScikit_Learn >= 1.5, <2  # inline\nnumpy==1.26.4\n\n--extra-index-url https://x/simple\nrequests[socks]==2.32.3 ; python_version >= '3.8'\ntorch \\\n  ==2.4.0\n";
        let spec = requirements_str(Path::new("r.txt"), text).unwrap();
        assert_eq!(
            spec.requirements,
            vec![
                "scikit-learn>=1.5,<2",
                "numpy==1.26.4",
                "requests[socks]==2.32.3; python_version >= '3.8'",
                "torch==2.4.0"
            ]
        );
        assert_eq!(spec.options, vec!["--extra-index-url https://x/simple"]);
        for (text, want) in [
            ("numpy\n-r other.txt\n", "r.txt:2: -r refers"),
            ("numpy\nsk learn\n", "r.txt:2:"),
            ("numpy =! 1\n", "r.txt:1:"),
            ("numpy==\n", "r.txt:1:"),
            ("# nothing\n", "no requirements"),
            ("-e .\n", "r.txt:1: -e"),
        ] {
            let err = requirements_str(Path::new("r.txt"), text).unwrap_err();
            assert!(err.message.contains(want), "{text:?}: {}", err.message);
        }
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
