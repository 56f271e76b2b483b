//! The agent binaries a `moor` executable carries: static musl builds of
//! `moor-agent`, one per machine architecture (x86_64 and aarch64). The
//! library does not embed them: the `moor` binary (crate `moor-cli`, whose
//! build script builds the agents) hands them over as [`Agents`], so checking
//! or testing the library never builds an agent. Installed agents live in
//! `~/.moor/agent/<version>-<sha256 prefix>/moor-agent` on the host; the one
//! installed is the one for the host's `uname -m`.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

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

/// An agent executable for one architecture, and its identity. It is
/// carried once, xz-packed (what goes to a host that has `xz`); the
/// executable itself (for `--target local`, or a host with neither `xz` nor
/// `gzip`) and a gzip form are made from it the first time they are needed,
/// and the executable is checked against [`AgentBundle::sha256`].
#[derive(Debug)]
pub struct AgentBundle {
    /// The architecture it runs on, as `uname -m` says it: `x86_64`, `aarch64`.
    pub arch: &'static str,
    /// The executable, compressed with `xz`.
    pub xz: &'static [u8],
    /// Hex sha256 of the executable (its build hash).
    pub sha256: &'static str,
    /// Its version (agent and controller ship together).
    pub version: &'static str,
    raw: OnceLock<Vec<u8>>,
    gzip: OnceLock<Vec<u8>>,
}

impl AgentBundle {
    /// The agent for `arch`: its xz-packed executable, the executable's hex
    /// sha256, and the version.
    pub const fn new(
        arch: &'static str,
        xz: &'static [u8],
        sha256: &'static str,
        version: &'static str,
    ) -> AgentBundle {
        AgentBundle {
            arch,
            xz,
            sha256,
            version,
            raw: OnceLock::new(),
            gzip: OnceLock::new(),
        }
    }

    /// The name of this agent's directory on the host.
    pub fn install_id(&self) -> String {
        install_id(self.version, self.sha256)
    }

    /// Whether this is a real agent: a build made for checking only (clippy,
    /// rust-analyzer) carries an empty one, which must never be installed.
    pub fn is_present(&self) -> bool {
        !self.xz.is_empty()
    }

    /// The executable, unpacked once and checked against its hash.
    pub fn binary(&self) -> io::Result<&[u8]> {
        if let Some(raw) = self.raw.get() {
            return Ok(raw);
        }
        let mut raw = Vec::new();
        lzma_rs::xz_decompress(&mut io::BufReader::new(self.xz), &mut raw)
            .map_err(|e| io::Error::other(format!("the embedded {} agent: {e}", self.arch)))?;
        if moor_proto::sha256_hex(&raw) != self.sha256 {
            return Err(io::Error::other(format!(
                "the embedded {} agent does not match its hash (a damaged moor executable: build or install it again)",
                self.arch
            )));
        }
        Ok(self.raw.get_or_init(|| raw))
    }

    /// The executable, gzipped (for a host with `gzip` but no `xz`). With a
    /// `cache` folder (the workspace's), it is made once and kept there
    /// (0600), so that later attaches pay neither the unpacking nor the
    /// compression. The host checks the sha256 of what it unpacks: a
    /// damaged copy fails the install, and [`AgentBundle::forget_gzip`]
    /// then removes it.
    pub fn gzip(&self, cache: Option<&Path>) -> io::Result<&[u8]> {
        if let Some(gz) = self.gzip.get() {
            return Ok(gz);
        }
        let file = cache.map(|dir| self.gzip_file(dir));
        if let Some(gz) = file.as_deref().and_then(|f| std::fs::read(f).ok()) {
            return Ok(self.gzip.get_or_init(|| gz));
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut encoder, self.binary()?)?;
        let gz = encoder.finish()?;
        if let (Some(dir), Some(file)) = (cache, &file) {
            // A cache that cannot be written is only slower next time.
            let kept = crate::private_fs::create_private_dir(dir)
                .and_then(|()| crate::private_fs::write_private_atomic(file, &gz));
            if let Err(e) = kept {
                tracing::debug!("cannot keep the gzipped agent in {}: {e}", dir.display());
            }
        }
        Ok(self.gzip.get_or_init(|| gz))
    }

    /// Removes the gzipped copy kept in `cache` (after a host refused it).
    pub fn forget_gzip(&self, cache: &Path) {
        let _ = std::fs::remove_file(self.gzip_file(cache));
    }

    fn gzip_file(&self, cache: &Path) -> std::path::PathBuf {
        cache.join(format!("{}.gz", self.install_id()))
    }

    /// The smallest form a host with these decompressors (`xz`, `gzip`)
    /// can unpack, and its name for the install script: `xz`, `gzip`, or
    /// `raw` (none: the executable as it is). The host checks the sha256 of
    /// what it unpacked, so it trusts neither its tools nor the wire.
    pub fn packed_for(
        &self,
        decompressors: &[String],
        cache: Option<&Path>,
    ) -> io::Result<(&'static str, &[u8])> {
        let has = |tool: &str| decompressors.iter().any(|d| d == tool);
        Ok(if has("xz") {
            ("xz", self.xz)
        } else if has("gzip") {
            ("gzip", self.gzip(cache)?)
        } else {
            ("raw", self.binary()?)
        })
    }
}

/// The error for an embedded agent that cannot be unpacked: the `moor`
/// executable is damaged.
pub fn damaged(cause: io::Error) -> crate::error::Error {
    crate::error::Error::Io {
        what: "cannot unpack the agent embedded in",
        path: std::env::current_exe().unwrap_or_else(|_| "moor".into()),
        cause,
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

    /// `bytes` packed as the build script packs an agent (`xz -6`).
    fn xz(bytes: &[u8]) -> &'static [u8] {
        let mut child = std::process::Command::new("xz")
            .args(["-6", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("xz (xz-utils) is installed for the tests");
        io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
        Vec::leak(child.wait_with_output().unwrap().stdout)
    }

    fn bundle(arch: &'static str, binary: &[u8]) -> AgentBundle {
        let sha = String::leak(moor_proto::sha256_hex(binary));
        AgentBundle::new(
            arch,
            if binary.is_empty() { b"" } else { xz(binary) },
            sha,
            "0.1.0",
        )
    }

    #[test]
    fn one_xz_copy_gives_the_executable_and_a_gzip_form() {
        let binary: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let agent = bundle("x86_64", &binary);
        assert_eq!(agent.install_id(), format!("0.1.0-{}", &agent.sha256[..16]));
        assert!(agent.is_present());
        assert_eq!(agent.binary().unwrap(), &binary[..]);
        let cache = tempfile::tempdir().unwrap();
        let gz = agent.gzip(Some(cache.path())).unwrap();
        let mut back = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut back).unwrap();
        assert_eq!(back, binary);
        // Kept in the cache, private, and read back by the next process.
        let kept = cache.path().join(format!("{}.gz", agent.install_id()));
        assert_eq!(std::fs::read(&kept).unwrap(), gz);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let next = bundle("x86_64", &binary);
        assert_eq!(next.gzip(Some(cache.path())).unwrap(), gz);
        // A copy a host refused is forgotten, and made again.
        std::fs::write(&kept, b"damaged").unwrap();
        bundle("x86_64", &binary).forget_gzip(cache.path());
        let third = bundle("x86_64", &binary);
        assert_eq!(third.gzip(Some(cache.path())).unwrap(), gz);
        let tools = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            agent.packed_for(&tools(&["gzip", "xz"]), None).unwrap().0,
            "xz"
        );
        assert_eq!(agent.packed_for(&tools(&["gzip"]), None).unwrap().0, "gzip");
        assert_eq!(
            agent.packed_for(&tools(&[]), None).unwrap(),
            ("raw", &binary[..])
        );
        assert_eq!(install_id("0.1.0", "ab"), "0.1.0-ab");
    }

    #[test]
    fn a_damaged_agent_is_refused_not_installed() {
        let agent = AgentBundle::new("x86_64", xz(b"\x7fELF-real"), "00ff", "0.1.0");
        let e = agent.binary().unwrap_err().to_string();
        assert!(e.contains("does not match its hash"), "{e}");
        let truncated = AgentBundle::new("x86_64", &xz(b"\x7fELF-real")[..10], "00ff", "0.1.0");
        assert!(truncated.binary().is_err());
    }

    #[test]
    fn the_agent_installed_is_the_one_for_the_hosts_architecture() {
        let leak = |b: AgentBundle| -> &'static AgentBundle { Box::leak(Box::new(b)) };
        let x86 = leak(bundle("x86_64", b"\x7fELF-x86"));
        let arm = leak(bundle("aarch64", b"\x7fELF-arm"));
        let no_arm = leak(bundle("aarch64", b""));
        let both = Agents {
            builds: Vec::leak(vec![x86, arm]),
        };
        assert_eq!(both.for_arch("x86_64").unwrap().sha256, x86.sha256);
        assert_eq!(both.for_arch("amd64").unwrap().sha256, x86.sha256);
        assert_eq!(both.for_arch("aarch64").unwrap().sha256, arm.sha256);
        assert_eq!(both.for_arch("arm64").unwrap().sha256, arm.sha256);
        for other in ["aarch64_be", "armv7l", "riscv64", "ppc64le", "s390x", ""] {
            assert!(both.for_arch(other).is_none(), "{other}");
        }
        assert_eq!(
            both.install_ids(),
            format!("{} {}", x86.install_id(), arm.install_id())
        );
        assert_eq!(both.arches(), "x86_64, aarch64");
        let x86_only = Agents {
            builds: Vec::leak(vec![x86, no_arm]),
        };
        assert!(x86_only.for_arch("aarch64").is_none());
        assert_eq!(x86_only.install_ids(), x86.install_id());
        assert!(x86_only.is_present());
        assert!(!Agents {
            builds: Vec::leak(vec![no_arm])
        }
        .is_present());
    }
}
