//! The team workspace's commands: `moor server`, `moor login`/`whoami`/
//! `logout`, `moor user` and `moor audit`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::team::api::Role;

/// `moor server`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Make a folder a team server's.
    ///
    /// Make a folder a team server's: the database's schema, a self-signed
    /// TLS certificate, the workspace SSH key and the first admin. Prints
    /// the certificate's fingerprint and the admin's token, once.
    Init(ServerInitArgs),

    /// Serve the team workspace over HTTPS, in the foreground.
    ///
    /// Serve the team workspace over HTTPS in the foreground: prints its URL
    /// and certificate fingerprint; SIGTERM or Ctrl-C drains (requests under
    /// way finish) and exits 0.
    Start(ServerStartArgs),
}

/// `moor server init`.
#[derive(Debug, Args)]
pub struct ServerInitArgs {
    /// The server's folder (made 0700).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,

    /// The database: postgres://USER@HOST:PORT/DB [default: SQLite in DIR].
    /// A password goes in MOOR_DATABASE_URL, PGPASSWORD or ~/.pgpass, never
    /// on the command line.
    #[arg(
        long,
        env = "MOOR_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database: Option<String>,

    /// The first admin's name.
    #[arg(long, value_name = "NAME", default_value = "admin")]
    pub admin: String,
}

/// `moor server start`.
#[derive(Debug, Args)]
pub struct ServerStartArgs {
    /// The server's folder, as `init` made it.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,

    /// The database [default: the one `init` recorded].
    #[arg(
        long,
        env = "MOOR_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database: Option<String>,

    /// Where to listen (port 0: a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// A PEM certificate chain to serve instead of the self-signed one.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `moor login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL, as `moor server start` printed it (https://HOST:PORT).
    pub url: String,

    /// Read the token from standard input (else it is asked for on the terminal).
    #[arg(long)]
    pub token_stdin: bool,

    /// The server certificate's fingerprint, as `moor server init`/`start`
    /// printed it (else it is shown to be confirmed on the terminal).
    #[arg(long, value_name = "SHA256:...")]
    pub fingerprint: Option<String>,
}

/// A role, on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Reads everything.
    Viewer,
    /// Also runs, cancels its own runs, makes environments, pools and endpoints.
    Member,
    /// Also attaches and detaches targets, manages users, cancels any run.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Member => Role::Member,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// `moor user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its token, once (admins).
    Add {
        /// Its name: lowercase letters, digits, '.', '_', '-'.
        name: String,
        /// Its role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List the team's users.
    List,
    /// Remove a user: its token stops working at once (admins).
    Remove {
        /// Its name.
        name: String,
    },
    /// Give a user a new token; the old one stops working (admins, or oneself).
    Token {
        /// Its name.
        name: String,
        /// Make the new token (required: tokens are never shown again).
        #[arg(long, required = true)]
        rotate: bool,
    },
}

/// `moor audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this user's actions.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Only the last AGE (30m, 12h, 7d).
    #[arg(long, value_name = "AGE", value_parser = super::parse_age)]
    pub since: Option<u64>,
}
