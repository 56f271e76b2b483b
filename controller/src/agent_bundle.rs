//! The agent binary a `moor` executable carries: a static x86_64 musl build
//! of `moor-agent`. The library does not embed it: the `moor` binary (crate
//! `moor-cli`, whose build script builds the agent) hands it over as an
//! [`AgentBundle`], so checking or testing the library never builds the
//! agent. Installed agents live in
//! `~/.moor/agent/<version>-<sha256 prefix>/moor-agent` on the host.

/// An agent executable and its identity.
#[derive(Debug)]
pub struct AgentBundle {
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
}
