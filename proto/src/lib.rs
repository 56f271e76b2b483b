//! Wire types shared by the moor controller and the moor agent.
//!
//! This crate holds serde types only: no runtime, no transport. The controller
//! and agent both link it, so a type defined here means the same thing on
//! both ends of the connection.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// Version of the controller/agent protocol. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Bytes each side writes before anything else, so that shell noise on a
/// channel (a login banner, a `.bashrc` that prints) is never read as a frame.
pub const MAGIC: &[u8; 8] = b"MOOR\x00\x01\r\n";

/// What each side says first: its protocol version and build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The sender's crate version, e.g. `0.1.0`.
    pub version: String,
}

impl Hello {
    /// The hello of this build.
    pub fn current() -> Self {
        Hello {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Whether a peer that sent `other` can talk to this build.
    pub fn compatible_with(&self, other: &Hello) -> bool {
        self.protocol == other.protocol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips() {
        let hello = Hello::current();
        let json = serde_json::to_string(&hello).unwrap();
        assert_eq!(serde_json::from_str::<Hello>(&json).unwrap(), hello);
        assert!(hello.compatible_with(&hello));
    }

    #[test]
    fn other_protocol_is_incompatible() {
        let other = Hello {
            protocol: PROTOCOL_VERSION + 1,
            version: "9.9.9".into(),
        };
        assert!(!Hello::current().compatible_with(&other));
    }
}
