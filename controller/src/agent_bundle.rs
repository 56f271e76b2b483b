//! The agent binaries a `moor` executable carries: static musl builds of
//! `moor-agent`, one per machine architecture (x86_64 and aarch64). The
//! library does not embed them: the `moor` binary (crate `moor-cli`, whose
//! build script builds the agents) hands them over as [`Agents`], so checking
//! or testing the library never builds an agent. Installed agents live in
//! `~/.moor/agent/<version>-<sha256 prefix>/moor-agent` on the host; the one
//! installed is the one for the host's `uname -m`.

/// The agents this moor carries, one per architecture.
#[derive(Debug)]
pub struct Agents {
    /// Each build (an architecture's may be absent: [`AgentBundle::is_present`]).
    pub builds: &'static [&'static AgentBundle],
}

impl Agents {
    /// The agent for a machine whose `uname -m` says `arch` (`x86_64` or
    /// `amd64`, `aarch64` or `arm64`), when this moor carries one.
    pub fn for_arch(&self, arch: &str) -> Option<&'static AgentBundle> {
        let arch = canonical_arch(arch)?;
        self.builds
            .iter()
            .copied()
            .find(|b| b.arch == arch && b.is_present())
    }

    /// The agent for this machine (the local target's).
    pub fn local(&self) -> Option<&'static AgentBundle> {
        self.for_arch(std::env::consts::ARCH)
    }

    /// Whether this is a real moor: a build made for checking only (clippy,
    /// rust-analyzer) carries no agent at all.
    pub fn is_present(&self) -> bool {
        self.builds.iter().any(|b| b.is_present())
    }

    /// The install ids of every agent carried, separated by spaces (what the
    /// probe looks for on a host whose architecture it does not know yet).
    pub fn install_ids(&self) -> String {
        let ids: Vec<String> = self
            .builds
            .iter()
            .filter(|b| b.is_present())
            .map(|b| b.install_id())
            .collect();
        ids.join(" ")
    }

    /// The architectures carried, e.g. `x86_64, aarch64`.
    pub fn arches(&self) -> String {
        let arches: Vec<&str> = self
            .builds
            .iter()
            .filter(|b| b.is_present())
            .map(|b| b.arch)
            .collect();
        arches.join(", ")
    }
}

/// The name moor's agents use for the architecture `uname -m` calls `arch`:
/// `x86_64` or `aarch64`; none for an architecture moor has no agent for.
pub fn canonical_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "amd64" => Some("x86_64"),
        "aarch64" | "arm64" => Some("aarch64"),
        _ => None,
    }
}

/// An agent executable for one architecture, and its identity.
#[derive(Debug)]
pub struct AgentBundle {
    /// The architecture it runs on, as `uname -m` says it: `x86_64`, `aarch64`.
    pub arch: &'static str,
    /// The executable.
    pub binary: &'static [u8],
    /// It, compressed with `xz` (what goes to a host that has `xz`).
    pub xz: &'static [u8],
    /// It, compressed with `gzip` (to a host with `gzip` but no `xz`).
    pub gzip: &'static [u8],
    /// Hex sha256 of [`AgentBundle::binary`] (its build hash).
    pub sha256: &'static str,
    /// Its version (agent and controller ship together).
    pub version: &'static str,
}

impl AgentBundle {
    /// The name of this agent's directory on the host.
    pub fn install_id(&self) -> String {
        install_id(self.version, self.sha256)
    }

    /// Whether this is a real agent: a build made for checking only (clippy,
    /// rust-analyzer) carries an empty one, which must never be installed.
    pub fn is_present(&self) -> bool {
        !self.binary.is_empty()
    }

    /// The smallest form a host with these decompressors (`xz`, `gzip`)
    /// can unpack, and its name for the install script: `xz`, `gzip`, or
    /// `raw` (none: the executable as it is). The host checks the sha256 of
    /// what it unpacked, so it trusts neither its tools nor the wire.
    pub fn packed_for(&self, decompressors: &[String]) -> (&'static str, &'static [u8]) {
        let has = |tool: &str| decompressors.iter().any(|d| d == tool);
        if has("xz") && !self.xz.is_empty() {
            ("xz", self.xz)
        } else if has("gzip") && !self.gzip.is_empty() {
            ("gzip", self.gzip)
        } else {
            ("raw", self.binary)
        }
    }
}

/// The directory name of the agent `version` with build hash `build` (what a
/// target recorded when it was attached): `<version>-<sha256 prefix>`. Only
/// `[0-9a-z.-]`, so it is safe in paths and shell words.
pub fn install_id(version: &str, build: &str) -> String {
    format!("{version}-{}", &build[..16.min(build.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_ids_are_the_version_and_a_hash_prefix() {
        let bundle = AgentBundle {
            arch: "x86_64",
            binary: b"\x7fELF",
            xz: b"x",
            gzip: b"g",
            sha256: "0123456789abcdef0123",
            version: "0.1.0",
        };
        assert_eq!(bundle.install_id(), "0.1.0-0123456789abcdef");
        assert!(bundle.is_present());
        let tools = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(bundle.packed_for(&tools(&["gzip", "xz"])).0, "xz");
        assert_eq!(bundle.packed_for(&tools(&["gzip"])).0, "gzip");
        assert_eq!(bundle.packed_for(&tools(&[])), ("raw", &b"\x7fELF"[..]));
        assert_eq!(install_id("0.1.0", "ab"), "0.1.0-ab");
    }

    #[test]
    fn the_agent_installed_is_the_one_for_the_hosts_architecture() {
        static X86: AgentBundle = AgentBundle {
            arch: "x86_64",
            binary: b"\x7fELF-x86",
            xz: b"",
            gzip: b"",
            sha256: "1111111111111111aaaa",
            version: "0.1.0",
        };
        static ARM: AgentBundle = AgentBundle {
            arch: "aarch64",
            binary: b"\x7fELF-arm",
            xz: b"",
            gzip: b"",
            sha256: "2222222222222222bbbb",
            version: "0.1.0",
        };
        static NO_ARM: AgentBundle = AgentBundle {
            arch: "aarch64",
            binary: b"",
            xz: b"",
            gzip: b"",
            sha256: "",
            version: "0.1.0",
        };
        static BOTH: [&AgentBundle; 2] = [&X86, &ARM];
        static X86_ONLY: [&AgentBundle; 2] = [&X86, &NO_ARM];
        static NONE: [&AgentBundle; 1] = [&NO_ARM];
        let both = Agents { builds: &BOTH };
        assert_eq!(both.for_arch("x86_64").unwrap().sha256, X86.sha256);
        assert_eq!(both.for_arch("amd64").unwrap().sha256, X86.sha256);
        assert_eq!(both.for_arch("aarch64").unwrap().sha256, ARM.sha256);
        assert_eq!(both.for_arch("arm64").unwrap().sha256, ARM.sha256);
        for other in ["aarch64_be", "armv7l", "riscv64", "ppc64le", "s390x", ""] {
            assert!(both.for_arch(other).is_none(), "{other}");
        }
        assert_eq!(
            both.install_ids(),
            "0.1.0-1111111111111111 0.1.0-2222222222222222"
        );
        assert_eq!(both.arches(), "x86_64, aarch64");
        let x86_only = Agents { builds: &X86_ONLY };
        assert!(x86_only.for_arch("aarch64").is_none());
        assert_eq!(x86_only.install_ids(), "0.1.0-1111111111111111");
        assert!(x86_only.is_present());
        assert!(!Agents { builds: &NONE }.is_present());
    }
}
