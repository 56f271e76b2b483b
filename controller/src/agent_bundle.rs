//! The agent binary the controller carries: a static x86_64 musl build of
//! `moor-agent`, embedded at build time (see `build.rs`). Installed agents
//! live in `~/.moor/agent/<version>-<sha256 prefix>/moor-agent` on the host.

/// The agent executable.
pub static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/moor-agent"));

/// The agent's version (the workspace version; agent and controller ship together).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Hex sha256 of [`BINARY`]: the agent's build hash (computed by build.rs).
pub fn sha256() -> &'static str {
    include_str!(concat!(env!("OUT_DIR"), "/moor-agent.sha256"))
}

/// The name of this agent's directory on the host: `<version>-<sha256 prefix>`.
/// Only `[0-9a-z.-]`, so it is safe in paths and shell words.
pub fn install_id() -> String {
    install_id_for(VERSION, sha256())
}

/// The directory name of the agent `version` with build hash `build` (what
/// a target recorded when it was attached).
pub fn install_id_for(version: &str, build: &str) -> String {
    format!("{version}-{}", &build[..16.min(build.len())])
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_agent_is_a_static_x86_64_elf() {
        assert_eq!(&BINARY[..4], b"\x7fELF");
        assert_eq!(BINARY[4], 2, "64-bit");
        assert_eq!(u16::from_le_bytes([BINARY[18], BINARY[19]]), 0x3e, "x86_64");
        // No program interpreter: statically linked.
        let text = String::from_utf8_lossy(BINARY);
        assert!(!text.contains("ld-linux-x86-64.so"));
        assert!(install_id().starts_with(VERSION));
        use sha2::Digest;
        assert_eq!(sha256(), hex(&sha2::Sha256::digest(BINARY)));
        assert!(install_id()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    }
}
