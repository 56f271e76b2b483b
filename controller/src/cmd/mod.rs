//! One module per command (or per small family of commands). Each command
//! takes its parsed arguments and the [`Context`], calls the library, and returns a value that
//! implements [`Render`](crate::output::Render): `main` prints it once, as
//! text or JSON, and exits with the code it names. Reaching targets is
//! [`crate::reach`]'s business, following logs [`crate::follow`]'s.

pub mod attach;
pub mod detach;
pub mod download;
pub mod endpoint;
pub mod env;
pub mod env_build;
pub mod fleet;
pub mod forward;
pub mod host_key;

pub mod jobs;
pub mod metrics;
pub mod mux;
pub mod pool;
pub mod run;

pub mod runs;
pub mod ssh;
pub mod status;
pub mod targets;
pub mod team;
pub mod validate;

pub use crate::context::Context;
