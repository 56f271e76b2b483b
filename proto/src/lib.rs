//! Wire types shared by the moor controller and the moor agent.
//!
//! This crate holds serde types and framing only: no runtime, no transport.
//! The controller and agent both link it, so a type defined here means the
//! same thing on both ends of the connection.
//!
//! - [`Hello`] and [`MAGIC`]: the handshake, first on every exchange.
//! - [`frame`]: length-prefixed frames with request ids.
//! - [`message`]: the [`Request`] and [`Response`] enums.
//! - [`run`]: what a run is and how the agent reports it.
//! - [`endpoint`]: endpoints, models served over HTTP.
//! - [`archive`]: unpacking what a host sends into a folder, never outside it.
//! - [`selection`]: which output files a download sends.
//! - [`tree`]: snapshots sent file by file (manifests, blob streams).
//! - [`tracking`]: what training code logs through MLflow, as a run keeps it.
//! - [`env`]: environment specs, their canonical hash, and their state on a host.
#![deny(missing_docs)]

pub mod archive;
pub mod endpoint;
pub mod env;
pub mod frame;
pub mod message;
pub mod run;
pub mod selection;
pub mod time;
pub mod tracking;
pub mod tree;

pub use frame::{read_frame, write_frame, Frame, FrameError, FrameKind, MAX_FRAME};
pub use message::{AgentStatus, DiskUse, ErrorKind, Pruned, Request, Response, WireError};
pub use run::{
    JobLink, MpiHost, MpiRole, NodeInfo, Processes, RunInfo, RunSpec, RunState, SparkSpec,
};

use serde::{Deserialize, Serialize};

/// The file name a URL input's content gets in the run's `inputs/NAME/`:
/// the last segment of the URL's path (query and fragment dropped, only
/// letters, digits, `.`, `_`, `-` kept), else `data`. Controller and agent
/// agree on it, so the command line names the file the agent writes.
pub fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let last = after_host.rsplit('/').next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "data".into()
    } else {
        clean
    }
}

/// Bytes for people, in binary units with one decimal: `512 B`, `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Version of the controller/agent protocol. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Bytes each side writes before anything else, so that shell noise on a
/// channel (a login banner, a `.bashrc` that prints) is never taken for the
/// peer. Printable, and a line of its own, so it survives a shell pipeline.
pub const MAGIC: &[u8] = b"MOOR-AGENT/1\n";

/// What each side says first, after [`MAGIC`]: its protocol version and build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The sender's crate version, e.g. `0.1.0`.
    pub version: String,
    /// Build hash: hex sha256 of the agent's executable as it runs (the agent
    /// hashes itself), so the controller can tell one build from another even
    /// at the same version.
    pub build: String,
}

impl Hello {
    /// Whether a peer that sent `other` can talk to this side, which speaks
    /// `protocol` and expects the build `build`.
    pub fn matches(&self, protocol: u32, build: &str) -> bool {
        self.protocol == protocol && self.build == build
    }

    /// The hello as the agent prints it: [`MAGIC`], then one line of JSON.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self).expect("Hello serializes");
        format!("{}{json}\n", String::from_utf8_lossy(MAGIC))
    }

    /// Finds the hello in `output`, skipping anything before [`MAGIC`].
    pub fn find(output: &str) -> Option<Hello> {
        let magic = std::str::from_utf8(MAGIC).expect("ASCII magic");
        let start = output.find(magic)? + magic.len();
        let line = output[start..].lines().next()?;
        serde_json::from_str(line).ok()
    }
}

/// Lowercase hex of `bytes` (a digest, random bytes).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether two secrets (tokens) are equal, compared in time independent
/// of where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hex sha256 of `bytes`: how snapshots, environments and agent builds are named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Hex sha256 of everything `reader` gives, read through a fixed buffer.
pub fn sha256_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut reader, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// Whether `s` is a sha256 as the wire carries it: 64 lowercase hex digits.
/// Snapshots and environments are named by one on the host, so anything else
/// is refused before it becomes a path.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` is a run id as agents make them: the UTC time, then eight
/// random hex digits (`20261127T183000-1a2b3c4d`). A run id names a directory
/// on the host, so anything else is refused before it becomes a path.
pub fn is_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'-'
        && b[16..]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_its_last_path_segment_as_the_file_name() {
        assert_eq!(url_file_name("https://x.org/data/iris.csv"), "iris.csv");
        assert_eq!(
            url_file_name("https://x.blob.core.windows.net/c/train.parquet?sv=1&sig=a/b"),
            "train.parquet"
        );
        assert_eq!(url_file_name("https://x.org/"), "data");
        assert_eq!(url_file_name("https://x.org"), "data");
        assert_eq!(url_file_name("http://h:8000/../../etc/passwd"), "passwd");
        assert_eq!(url_file_name("http://h/a/.."), "data");
    }

    fn hello() -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            version: "0.1.0".into(),
            build: "ab".repeat(32),
        }
    }

    #[test]
    fn hello_round_trips_through_noise() {
        let line = hello().to_line();
        assert!(line.starts_with("MOOR-AGENT/1\n{"));
        let noisy = format!("Welcome!\nlast login: today\n{line}trailing");
        assert_eq!(Hello::find(&noisy), Some(hello()));
        assert!(hello().matches(PROTOCOL_VERSION, &"ab".repeat(32)));
    }

    #[test]
    fn other_protocol_or_build_does_not_match() {
        assert!(!hello().matches(PROTOCOL_VERSION + 1, &"ab".repeat(32)));
        assert!(!hello().matches(PROTOCOL_VERSION, &"cd".repeat(32)));
        assert_eq!(Hello::find("no magic here"), None);
        assert_eq!(Hello::find("MOOR-AGENT/1\n{not json"), None);
    }

    #[test]
    fn sha256_hex_is_lowercase_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn run_ids_are_time_then_random_hex() {
        assert!(is_run_id("20261127T183000-1a2b3c4d"));
        for bad in [
            "",
            "../../etc",
            "20261127T183000-1a2b3c4",
            "20261127T183000-1A2B3C4D",
            "20261127-183000-1a2b3c4d",
            "20261127T183000-1a2b3c4d/..",
            ".20261127T183000-1a2b3c4",
        ] {
            assert!(!is_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn sha256_names_are_64_lowercase_hex_digits() {
        assert!(is_sha256_hex(&"0a".repeat(32)));
        assert!(!is_sha256_hex(&"0A".repeat(32)));
        assert!(!is_sha256_hex(&"0a".repeat(31)));
        assert!(!is_sha256_hex(&format!("../{}", "a".repeat(61))));
    }
}
