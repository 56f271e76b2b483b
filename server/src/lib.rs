//! moor's team workspace: `moor server` serves one workspace to many people
//! over HTTPS, on PostgreSQL or (the default) a SQLite file in its folder.
//!
//! Where things live:
//! - [`data`]: the server's folder (its settings, certificate and key).
//! - [`tls`]: the certificate (self-signed, or the operator's) and its
//!   fingerprint, which clients pin as SSH pins a host key.
//! - [`db`]: the database (sqlx's Any driver: one schema, one set of
//!   versioned migrations for both), and the users, tokens and audit log
//!   in it; [`token`]: tokens, made random and stored only hashed.
//! - [`http`]: the API (the types in `moor::team::api`): authentication,
//!   roles, bounded bodies, slowed failed logins.
//! - [`exec`]: the workspace commands, run for the caller by this same
//!   `moor` in the team's workspace; [`sources`]: run sources by content.
//! - [`init`] and [`serve`]: `moor server init` and `moor server start`.
//!
//! The client side (`moor login`, `moor user`, `moor audit`) is
//! `moor::team`, in the controller library: a server builds on the
//! library, never the other way round.

// The commands' error is the library's (`moor::Error`, one type for every
// command's exit code, kind and fix), returned as the library returns it.
#![allow(clippy::result_large_err)]

pub mod data;
pub mod db;
pub mod exec;
pub mod http;
pub mod init;
pub mod serve;
pub mod shared;
pub mod slow;
pub mod sources;
pub mod tls;
pub mod token;
