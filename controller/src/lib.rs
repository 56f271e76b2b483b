//! moor: attach machines you already own (Ubuntu VMs, on-prem servers,
//! HDInsight head nodes) as ML compute targets over plain SSH.
//!
//! The library behind the `moor` binary: the SSH layer ([`ssh`]), the
//! one-round-trip host probe ([`probe`]) and the checks made from it
//! ([`checks`]), the workspace ([`workspace`]), and one module per command
//! ([`cmd`]).

pub mod agent_bundle;
pub mod agent_client;
pub mod checks;
pub mod cli;
pub mod cmd;
pub mod envspec;
pub mod error;
pub mod net;
pub mod output;
pub mod probe;
pub mod progress;
pub mod remote;
pub mod resource_id;
pub mod secret;
pub mod snapshot;
pub mod ssh;
pub mod store;

pub use moor_proto::time;
pub mod workspace;

pub use error::{Error, Result};
