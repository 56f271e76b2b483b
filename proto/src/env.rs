//! Environments: what a run needs installed, as a spec with a canonical hash.
//!
//! The controller parses the user's files (Dockerfile, `environment.yml`,
//! `requirements.txt`) into an [`EnvSpec`]; the agent builds it on the host
//! and keeps it under the spec's [`EnvSpec::hash`], so one spec is built once
//! per host whatever it is called. The hash does not depend on the order of
//! dependencies (they are sorted) but does on the order of conda channels
//! (it decides which channel a package comes from).

use serde::{Deserialize, Serialize};

/// An environment spec. Build it with its fields, then [`EnvSpec::canonical`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvSpec {
    /// Run in a Docker image built from this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    /// A conda environment (channels, packages, and its pip section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda: Option<CondaSpec>,
    /// pip requirements (from a requirements.txt), without conda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip: Option<PipSpec>,
    /// The user manages the host's (or image's) packages: install nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_managed: bool,
}

/// The Docker part of a spec: a base image, or a Dockerfile's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerSpec {
    /// `FROM` this image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// A Dockerfile to build first (its text; it may COPY local files only
    /// with a [`DockerSpec::context`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The build context (hex sha256 of its tar, shipped as a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `--build-arg`s.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub build_args: std::collections::BTreeMap<String, String>,
}

/// A conda environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondaSpec {
    /// Channels, in priority order (order matters).
    pub channels: Vec<String>,
    /// Match specs, canonical form, sorted.
    pub dependencies: Vec<String>,
    /// The `pip:` section's requirements, sorted (its options and
    /// constraints are in the spec's [`PipSpec`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip: Vec<String>,
    /// `variables:`: set in every run in the environment (a run's own
    /// `--env-var` wins).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, String>,
}

/// pip requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipSpec {
    /// Requirement lines, canonical form, sorted: `name[extras]specifier`,
    /// `name @ URL`, a URL (wheel, sdist, `git+...`), each with its
    /// `; marker` and ` --hash=ALG:HEX` options (hashes sorted).
    pub requirements: Vec<String>,
    /// Index options (`--index-url U` ...), in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Constraints (`-c FILE` lines), canonical form, sorted: they pin
    /// versions without asking for the packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
}

impl PipSpec {
    /// Whether any requirement carries a `--hash`: then pip installs in
    /// hash-checking mode (`--require-hashes`).
    pub fn hashed(&self) -> bool {
        self.requirements.iter().any(|r| r.contains(" --hash="))
    }
}

/// How an environment is realised on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvKind {
    /// A Docker image; runs are containers.
    Docker,
    /// A conda prefix made by the agent (or the host's conda).
    Conda,
    /// A Python venv with pip packages.
    Venv,
    /// Nothing to build: the host as it is.
    Host,
}

impl EnvKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Docker => "docker",
            EnvKind::Conda => "conda",
            EnvKind::Venv => "venv",
            EnvKind::Host => "host",
        }
    }

    /// The kind called `name`, if there is one.
    pub fn parse(name: &str) -> Option<EnvKind> {
        [
            EnvKind::Docker,
            EnvKind::Conda,
            EnvKind::Venv,
            EnvKind::Host,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl EnvSpec {
    /// The spec with its lists in canonical order (dependencies sorted and
    /// deduplicated; channels and pip options kept in order).
    pub fn canonical(mut self) -> EnvSpec {
        fn sort(list: &mut Vec<String>) {
            list.sort();
            list.dedup();
        }
        if let Some(conda) = &mut self.conda {
            sort(&mut conda.dependencies);
            sort(&mut conda.pip);
        }
        if let Some(pip) = &mut self.pip {
            sort(&mut pip.requirements);
            sort(&mut pip.constraints);
        }
        self
    }

    /// Hex sha256 of the canonical spec's JSON: the environment's identity.
    pub fn hash(&self) -> String {
        let canonical = self.clone().canonical();
        let json = serde_json::to_vec(&canonical).expect("specs serialize");
        crate::sha256_hex(&json)
    }

    /// How it is built.
    pub fn kind(&self) -> EnvKind {
        if self.docker.is_some() {
            EnvKind::Docker
        } else if self.user_managed {
            EnvKind::Host
        } else if self.conda.is_some() {
            EnvKind::Conda
        } else if self.pip.is_some() {
            EnvKind::Venv
        } else {
            EnvKind::Host
        }
    }

    /// The pip constraints (`-c`), if any.
    pub fn pip_constraints(&self) -> &[String] {
        self.pip.as_ref().map_or(&[], |pip| &pip.constraints)
    }

    /// Whether pip installs in hash-checking mode: a requirement (of the
    /// requirements file or the conda file's `pip:` section) has a `--hash`.
    pub fn pip_hashed(&self) -> bool {
        self.pip_requirements()
            .iter()
            .any(|r| !r.starts_with('-') && r.contains(" --hash="))
    }

    /// Variables every run in the environment gets.
    pub fn variables(&self) -> std::collections::BTreeMap<String, String> {
        self.conda
            .as_ref()
            .map(|c| c.variables.clone())
            .unwrap_or_default()
    }

    /// The pip requirements to install after conda (or alone).
    pub fn pip_requirements(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(pip) = &self.pip {
            lines.extend(pip.options.iter().cloned());
            lines.extend(pip.requirements.iter().cloned());
        }
        if let Some(conda) = &self.conda {
            lines.extend(conda.pip.iter().cloned());
        }
        lines
    }
}

/// The Docker image tag of an environment: `moor-env:<first 12 of its hash>`.
pub fn image_tag(hash: &str) -> String {
    format!("moor-env:{}", &hash[..hash.len().min(12)])
}

/// What the controller ships with a prepare, by snapshot hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareOptions {
    /// A local conda channel (snapshot sha256), used instead of the spec's channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_dir: Option<String>,
    /// A directory of wheels (snapshot sha256), used instead of PyPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wheelhouse: Option<String>,

    /// Use the host's conda/mamba/micromamba instead of the agent's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_host_conda: bool,
    /// How the host reaches package indexes: the target's proxy and CA.
    #[serde(default, skip_serializing_if = "BuildNetwork::is_empty")]
    pub network: BuildNetwork,
}

/// A target's network settings, honoured by every build on it (the conda
/// solver and installer, pip, Docker builds). Never part of a spec's hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildNetwork {
    /// Proxy for HTTPS (`http://proxy:3128`), without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    /// Proxy for plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// Hosts reached directly (`localhost,.corp.example`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// CA certificates (PEM) trusted besides the host's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl BuildNetwork {
    /// No settings.
    pub fn is_empty(&self) -> bool {
        self == &BuildNetwork::default()
    }

    /// The proxy variables a build's tools read (both cases, as curl,
    /// pip, Docker and reqwest do).
    pub fn proxy_variables(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in [
            ("HTTPS_PROXY", &self.https_proxy),
            ("HTTP_PROXY", &self.http_proxy),
            ("NO_PROXY", &self.no_proxy),
        ] {
            if let Some(value) = value {
                out.push((name.to_owned(), value.clone()));
                out.push((name.to_ascii_lowercase(), value.clone()));
            }
        }
        out
    }
}

/// Where an environment stands on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvState {
    /// Not on this host.
    Absent,
    /// Being built (by the run in [`EnvInfo::build_run`]).
    Building,
    /// Complete: runs may use it.
    Ready,
    /// The last build failed.
    Failed,
}

/// An environment on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvInfo {
    /// The spec's hash.
    pub hash: String,
    /// How it is built.
    pub kind: EnvKind,
    /// Where it stands.
    pub state: EnvState,
    /// The run building it (its log is the build log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_run: Option<String>,
    /// The conda prefix or venv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The Docker image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    /// Why the last build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What helps, when the agent knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conda(channels: &[&str], deps: &[&str]) -> EnvSpec {
        EnvSpec {
            conda: Some(CondaSpec {
                channels: channels.iter().map(|s| s.to_string()).collect(),
                dependencies: deps.iter().map(|s| s.to_string()).collect(),
                pip: vec![],
                variables: Default::default(),
            }),
            ..EnvSpec::default()
        }
    }

    #[test]
    fn dependency_order_does_not_change_the_hash_channel_order_does() {
        let a = conda(&["conda-forge", "bioconda"], &["numpy", "python 3.11.*"]);
        let b = conda(&["conda-forge", "bioconda"], &["python 3.11.*", "numpy"]);
        let c = conda(&["bioconda", "conda-forge"], &["numpy", "python 3.11.*"]);
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash().len(), 64);
    }

    #[test]
    fn kinds() {
        assert_eq!(EnvSpec::default().kind(), EnvKind::Host);
        assert_eq!(conda(&["c"], &["x"]).kind(), EnvKind::Conda);
        let docker = EnvSpec {
            docker: Some(DockerSpec {
                base: Some("debian".into()),
                ..DockerSpec::default()
            }),
            ..conda(&["c"], &["x"])
        };
        assert_eq!(docker.kind(), EnvKind::Docker);
        assert_eq!(image_tag(&docker.hash()).len(), "moor-env:".len() + 12);
    }
}
