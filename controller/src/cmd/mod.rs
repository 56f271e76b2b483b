//! One module per command, plus what they share: resolving connection flags
//! into validated settings before anything touches the network.

pub mod attach;
pub mod detach;
pub mod env;
pub mod host_key;
pub mod run;
pub mod targets;
pub mod validate;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AuthArgs, ConnectArgs};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::ssh::{self, ConnectOptions, Credentials, Endpoint, HostKeyPolicy, KnownHosts};
use crate::store::{AuthRef, Store, Target};
use crate::workspace::{self, Workspace};

/// What every command gets: the workspace and the output mode.
#[derive(Debug)]
pub struct Context {
    /// The opened workspace.
    pub workspace: Workspace,
    /// `--json`.
    pub json: bool,
}

impl Context {
    /// Opens the workspace named by `--workspace`/`MOOR_WORKSPACE`, else the default.
    pub fn open(workspace: Option<PathBuf>, json: bool) -> Result<Context> {
        let dir = workspace.or_else(Workspace::default_dir).ok_or_else(|| {
            Error::usage(
                "no workspace directory: HOME is not set",
                "pass --workspace DIR or set MOOR_WORKSPACE",
            )
        })?;
        Ok(Context {
            workspace: Workspace::open(dir)?,
            json,
        })
    }

    /// The known_hosts files: the workspace's, and the user's `~/.ssh/known_hosts`.
    pub fn known_hosts(&self) -> KnownHosts {
        KnownHosts::new(
            self.workspace.known_hosts_file(),
            workspace::home_dir().map(|h| h.join(".ssh/known_hosts")),
        )
    }
}

/// Connection settings resolved from flags, `~/.ssh/config` and secrets.
#[derive(Debug)]
pub struct Resolved {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// How.
    pub options: ConnectOptions,
}

/// Resolves connection flags: applies `~/.ssh/config`, reads secrets from the
/// environment or stdin, loads key files. Errors here are usage or key errors,
/// before any connection. `default_host` stands in when `--host` is absent
/// (an HDInsight cluster's SSH endpoint).
pub fn resolve_connect(
    args: &ConnectArgs,
    ctx: &Context,
    default_host: Option<String>,
) -> Result<Resolved> {
    let alias = args
        .host
        .clone()
        .or(default_host)
        .ok_or_else(|| Error::usage("no host to connect to", "pass --host HOST"))?;
    if alias.is_empty() {
        return Err(Error::usage("--host is empty", "pass --host HOST"));
    }
    let home = workspace::home_dir();
    let config_path = args
        .ssh_config
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".ssh/config")));
    let config = config_path
        .map(|p| ssh::config::load(&p, &alias, home.as_deref()))
        .unwrap_or_default();

    let host = config.host_name.clone().unwrap_or_else(|| alias.clone());
    let port = args.port.or(config.port).unwrap_or(22);
    if port == 0 {
        return Err(Error::usage(
            "--port 0 is not a port",
            "pass --port 1..65535",
        ));
    }
    let user = args
        .user
        .clone()
        .or(config.user.clone())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .ok_or_else(|| Error::usage("no remote user", "pass --user USER"))?;

    let host_key_policy = match &args.host_key_fingerprint {
        Some(fp) if fp.starts_with("SHA256:") && fp.len() > 7 => {
            HostKeyPolicy::Fingerprint(fp.clone())
        }
        Some(fp) => {
            return Err(Error::usage(
                format!("--host-key-fingerprint {fp:?} is not a SHA256 fingerprint"),
                "pass it as OpenSSH prints it: SHA256:... (ssh-keygen -lf KEY.pub)",
            ))
        }
        None if args.accept_new_host_key => HostKeyPolicy::AcceptNew,
        None => HostKeyPolicy::Strict,
    };
    let identities = if args.auth.key.is_none() {
        config.identity_files.clone()
    } else {
        Vec::new()
    };
    let credentials = resolve_credentials(&args.auth, None, &identities)?;
    Ok(Resolved {
        endpoint: Endpoint { host, port, user },
        options: ConnectOptions {
            timeout: timeout(args.connect_timeout)?,
            host_key_policy,
            known_hosts: ctx.known_hosts(),
            credentials,
        },
    })
}

/// Resolves how to reach an attached target: its stored endpoint and
/// authentication, overridden by credential flags when given. Host keys are
/// checked strictly: the target's key was recorded when it was attached.
pub fn resolve_target(
    target: &Target,
    auth: &AuthArgs,
    timeout_secs: f64,
    ctx: &Context,
) -> Result<Resolved> {
    let credentials = if auth.any() {
        resolve_credentials(auth, None, &[])?
    } else {
        match &target.auth {
            AuthRef::WorkspaceKey => {
                resolve_credentials(auth, Some(ctx.workspace.key_file()), &[])?
            }
            AuthRef::Key {
                path,
                passphrase_env,
            } => {
                let args = AuthArgs {
                    key: Some(path.into()),
                    key_passphrase_env: passphrase_env.clone(),
                    ..AuthArgs::default()
                };
                resolve_credentials(&args, None, &[])?
            }
            AuthRef::Agent => resolve_credentials(auth, None, &[])?,
            AuthRef::Password { env } => {
                let var = env.clone().ok_or_else(|| {
                    Error::usage(
                        format!("target {} authenticates with a password", target.name),
                        "pass --password-env VAR or --password-stdin",
                    )
                })?;
                let args = AuthArgs {
                    password_env: Some(var),
                    ..AuthArgs::default()
                };
                resolve_credentials(&args, None, &[])?
            }
        }
    };
    Ok(Resolved {
        endpoint: Endpoint {
            host: target.host.clone(),
            port: target.port,
            user: target.user.clone(),
        },
        options: ConnectOptions {
            timeout: timeout(timeout_secs)?,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts: ctx.known_hosts(),
            credentials,
        },
    })
}

fn timeout(secs: f64) -> Result<Duration> {
    if secs.is_finite() && secs > 0.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Error::usage(
            format!("--connect-timeout {secs} is not a positive number of seconds"),
            "pass --connect-timeout SECS, e.g. 10",
        ))
    }
}

/// Reads secrets and loads keys. `key_override` is a key to use as if passed
/// with `--key` (the workspace key of an enrolled target).
fn resolve_credentials(
    auth: &AuthArgs,
    key_override: Option<PathBuf>,
    identities: &[PathBuf],
) -> Result<Credentials> {
    let passphrase = auth
        .key_passphrase_env
        .as_deref()
        .map(|var| secret_from_env(var, "--key-passphrase-env"))
        .transpose()?;
    let password = if auth.password_stdin {
        Some(secret_from_stdin()?)
    } else {
        auth.password_env
            .as_deref()
            .map(|var| secret_from_env(var, "--password-env"))
            .transpose()?
    };
    let key = key_override.or_else(|| auth.key.clone());
    Credentials::resolve(
        key.as_deref(),
        passphrase.as_ref(),
        password,
        identities,
        workspace::home_dir().as_deref(),
    )
}

/// Looks a target up by name.
pub fn find_target(store: &Store, name: &str, ctx: &Context) -> Result<Target> {
    store.target(name)?.ok_or_else(|| Error::NoTarget {
        name: name.to_owned(),
        workspace: ctx.workspace.dir().to_owned(),
    })
}

fn secret_from_env(var: &str, flag: &str) -> Result<Secret> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
        _ => Err(Error::usage(
            format!("{flag} {var}: environment variable {var} is not set or empty"),
            format!(
                "export {var} before running moor (it names the variable, never the secret itself)"
            ),
        )),
    }
}

fn secret_from_stdin() -> Result<Secret> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Error::usage(
            format!("cannot read the password from stdin: {e}"),
            "pipe the password into moor",
        )
    })?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(Error::usage(
            "--password-stdin: standard input gave no password",
            "pipe the password into moor, e.g. from a secret store",
        ));
    }
    Ok(Secret::new(password))
}
