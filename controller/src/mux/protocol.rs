//! What a command and the mux say over the mux's socket: one JSON line
//! each way; after a `ready` answer to an open, the socket is the agent's
//! pipe.

use serde::{Deserialize, Serialize};

/// A command's request to the mux.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A pipe to the target's agent.
    Open {
        /// The attached target.
        target: String,
        /// The asking command's view of its settings
        /// ([`super::settings_key`]): a warm connection made with the same
        /// is given without reading the workspace.
        settings: String,
        /// The asking moor's build ([`build_id`]): a mux of another build
        /// answers `stale` and exits.
        build: String,
    },
    /// What the mux holds.
    Status,
    /// Drop the connection to a target (detached, replaced).
    Forget {
        /// The target.
        target: String,
    },
    /// Close every connection and exit.
    Stop,
}

/// The mux's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// The agent's pipe follows on this socket.
    Ready,
    /// No live connection to give now: connect by yourself.
    Cold {
        /// Why (connecting, dropped, refused, ...), for debug logs.
        why: String,
    },
    /// The mux is of another moor build and exits.
    Stale,
    /// What the mux holds.
    Status(MuxStatus),
    /// Done (forget, stop).
    Done,
}

/// The state of a running mux.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MuxStatus {
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// It exits after this many seconds with no pipe open.
    pub idle_limit_secs: u64,
    /// Pipes to agents open now.
    pub pipes_open: usize,
    /// Its connections, by target name.
    pub targets: Vec<WarmTarget>,
}

/// One target's connection in the mux.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmTarget {
    /// The target.
    pub target: String,
    /// `warm`, `connecting` or `failed`.
    pub state: String,
    /// `user@host:port`.
    pub endpoint: String,
    /// Seconds since the state began.
    pub since_secs: u64,
    /// Pipes given from this connection so far.
    pub pipes_given: u64,
    /// Why the last connection attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// This moor's build, as far as the mux must know: the version and the
/// executable's size and modification time (a rebuilt or upgraded moor is
/// another build).
pub fn build_id() -> String {
    let stamp = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            format!("{}.{}.{}", m.len(), m.mtime(), m.mtime_nsec())
        })
        .unwrap_or_default();
    format!("{}+{stamp}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_are_one_json_line_each() {
        let open = Request::Open {
            target: "gpu1".into(),
            settings: "moor|10.0.0.4|22".into(),
            build: build_id(),
        };
        let line = serde_json::to_string(&open).unwrap();
        let start = r#"{"op":"open","target":"gpu1","settings":"moor|10.0.0.4|22","build":"0."#;
        assert!(line.starts_with(start), "{line}");
        assert!(!line.contains('\n'));
        let cold = serde_json::to_string(&Answer::Cold {
            why: "connecting".into(),
        })
        .unwrap();
        assert_eq!(cold, r#"{"answer":"cold","why":"connecting"}"#);
        let back: Answer = serde_json::from_str(r#"{"answer":"ready"}"#).unwrap();
        assert!(matches!(back, Answer::Ready));
        // This process's build is stable while its executable is unchanged.
        assert_eq!(build_id(), build_id());
    }
}
