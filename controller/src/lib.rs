//! moor: attach machines you already own (Ubuntu VMs, on-prem servers,
//! HDInsight head nodes) as ML compute targets over plain SSH.
//!
//! The library behind the `moor` binary (crate `moor-cli`, which adds the
//! agent it installs). Where things live:
//! - [`ssh`]: the SSH client (connect, host keys, authentication, exec).
//! - [`reach`]: reaching a target's agent, from a name and the user's flags
//!   to an open connection; [`agent_client`]: the typed client on it.
//! - [`cmd`]: one module per command, each returning a value that
//!   [`output`] renders as text or JSON; [`cli`] parses the command line.
//! - [`mux`]: warm connections kept by a per-workspace process.
//! - [`ui`]: `moor ui`, the local web dashboard.
//! - [`team`]: a team workspace's client (`moor login`, users, audit).
//! - [`transfer`]: progress bars of long transfers on a terminal.
//! - [`store`] and [`workspace`]: the workspace (SQLite, keys, known_hosts).
//! - [`probe`] and [`checks`]: what validate asks a host and how it judges.
//! - [`follow`]: following a run's log; [`snapshot`]: source archives;
//!   [`envspec`]: environment specs from the user's files; [`run_env`]: a
//!   run's `-e`/`--env-file` variables; [`limits`]: what is refused as
//!   too large before any work; [`remote`]:
//!   the shell scripts attach and detach run on hosts.

pub mod agent_bundle;
pub mod agent_client;
pub mod checks;
pub mod cli;
pub mod cmd;
pub mod context;
pub mod envs;
pub mod envspec;
pub mod error;
pub mod fleet;
pub mod follow;
pub mod history;
pub mod inventory;
pub mod jobfile;
pub mod launch;
pub mod limits;
pub mod mux;
pub mod muxd;
pub mod net;
pub mod output;
pub mod plan;
pub mod private_fs;
pub mod probe;
pub mod progress;
pub mod random;
pub mod reach;
pub mod remote;
pub mod resource_id;
pub mod run_env;
pub mod secret;
pub mod shell;
pub mod signals;
pub mod snapshot;
pub mod ssh;
pub mod store;
pub mod target_kind;
pub mod team;
pub mod transfer;
pub mod ui;
pub mod workspace;

pub use moor_proto::time;

pub use error::{Error, Result};
