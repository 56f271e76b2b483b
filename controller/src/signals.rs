//! Signals moor handles itself: Ctrl-C (before a run starts it stops moor,
//! after it detaches) and SIGTERM for the servers (`moor ui`).

use crate::error::{Error, Result};

/// Ctrl-C, handled by moor from now on (`moor run` and jobs: before the
/// start it stops moor, after it detaches).
pub fn ctrl_c() -> Result<tokio::signal::unix::Signal> {
    signal(tokio::signal::unix::SignalKind::interrupt())
}

/// A stream of the signals of `kind` this process gets (from now on they
/// no longer have their default effect).
pub fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::Io {
        what: "cannot handle signals",
        path: std::path::PathBuf::from(format!("signal {}", kind.as_raw_value())),
        cause: e,
    })
}
