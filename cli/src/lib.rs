//! The agent that this build of `moor` carries and installs on hosts: the
//! static musl `moor-agent` built by `build.rs`, embedded here so that the
//! `moor` executable is all a user needs. The rest of `moor` is the
//! controller library (crate `moor-controller`, lib `moor`).

use moor::agent_bundle::AgentBundle;

/// The embedded agent.
pub static AGENT: AgentBundle = AgentBundle {
    binary: include_bytes!(concat!(env!("OUT_DIR"), "/moor-agent")),
    xz: include_bytes!(concat!(env!("OUT_DIR"), "/moor-agent.xz")),
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/moor-agent.gz")),
    sha256: include_str!(concat!(env!("OUT_DIR"), "/moor-agent.sha256")),
    version: env!("CARGO_PKG_VERSION"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_agent_is_a_static_x86_64_elf() {
        let binary = AGENT.binary;
        assert_eq!(&binary[..4], b"\x7fELF");
        assert_eq!(binary[4], 2, "64-bit");
        assert_eq!(u16::from_le_bytes([binary[18], binary[19]]), 0x3e, "x86_64");
        // No program interpreter: statically linked.
        let text = String::from_utf8_lossy(binary);
        assert!(!text.contains("ld-linux-x86-64.so"));
        assert!(AGENT.install_id().starts_with(AGENT.version));
        assert_eq!(AGENT.sha256, moor_proto::sha256_hex(binary));
        // The packed forms are the agent, smaller.
        assert_eq!(&AGENT.xz[..6], b"\xfd7zXZ\0");
        assert_eq!(&AGENT.gzip[..2], b"\x1f\x8b");
        assert!(AGENT.xz.len() < binary.len() / 2 && AGENT.gzip.len() < binary.len() * 3 / 4);
        assert!(AGENT
            .install_id()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    }
}
