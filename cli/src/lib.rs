//! The agents that this build of `moor` carries and installs on hosts: static
//! musl `moor-agent` builds for x86_64 and aarch64, made by `build.rs` and
//! embedded here so that the `moor` executable is all a user needs. The rest
//! of `moor` is the controller library (crate `moor-controller`, lib `moor`).

use moor::agent_bundle::{AgentBundle, Agents};

/// The x86_64 agent, carried once (xz-packed; see [`AgentBundle`]).
pub static AGENT_X86_64: AgentBundle = AgentBundle::new(
    "x86_64",
    include_bytes!(concat!(env!("OUT_DIR"), "/x86_64/moor-agent.xz")),
    include_str!(concat!(env!("OUT_DIR"), "/x86_64/moor-agent.sha256")),
    env!("CARGO_PKG_VERSION"),
);

/// The aarch64 (arm64) agent.
pub static AGENT_AARCH64: AgentBundle = AgentBundle::new(
    "aarch64",
    include_bytes!(concat!(env!("OUT_DIR"), "/aarch64/moor-agent.xz")),
    include_str!(concat!(env!("OUT_DIR"), "/aarch64/moor-agent.sha256")),
    env!("CARGO_PKG_VERSION"),
);

/// Every agent carried; attach installs the one for the host's `uname -m`.
pub static AGENTS: Agents = Agents {
    builds: &[&AGENT_X86_64, &AGENT_AARCH64],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A static ELF executable for `machine` (the ELF e_machine number).
    fn assert_static_elf(agent: &AgentBundle, machine: u16, interpreter: &str) {
        let binary = agent.binary().unwrap();
        assert_eq!(&binary[..4], b"\x7fELF");
        assert_eq!(binary[4], 2, "64-bit");
        assert_eq!(
            u16::from_le_bytes([binary[18], binary[19]]),
            machine,
            "{}",
            agent.arch
        );
        // No program interpreter: statically linked.
        let text = String::from_utf8_lossy(binary);
        assert!(!text.contains(interpreter));
        assert!(agent.install_id().starts_with(agent.version));
        assert_eq!(agent.sha256, moor_proto::sha256_hex(binary));
        // The packed forms are the agent, smaller.
        let gzip = agent.gzip(None).unwrap();
        assert_eq!(&agent.xz[..6], b"\xfd7zXZ\0");
        assert_eq!(&gzip[..2], b"\x1f\x8b");
        assert!(agent.xz.len() < binary.len() / 2 && gzip.len() < binary.len() * 3 / 4);
        assert!(agent
            .install_id()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    }

    #[test]
    fn embedded_agents_are_static_elfs_for_their_architectures() {
        assert_static_elf(&AGENT_X86_64, 0x3e, "ld-linux-x86-64.so");
        assert_static_elf(&AGENT_AARCH64, 0xb7, "ld-linux-aarch64.so");
        assert_eq!(
            AGENTS.for_arch("x86_64").unwrap().sha256,
            AGENT_X86_64.sha256
        );
        assert_eq!(
            AGENTS.for_arch("aarch64").unwrap().sha256,
            AGENT_AARCH64.sha256
        );
        assert_ne!(AGENT_X86_64.sha256, AGENT_AARCH64.sha256);
    }
}
