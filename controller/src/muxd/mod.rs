//! The mux process (`moor mux serve`): one per workspace, it keeps a warm
//! SSH connection to each target a command reached and hands commands pipes
//! to their agents over a private Unix socket. `serve` is the socket and the
//! relay, `warm` the connections. The commands' side (asking for a pipe,
//! starting the mux) and the socket protocol are [`crate::mux`].

mod serve;
mod warm;

pub use serve::serve;
