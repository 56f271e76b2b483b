//! Connection settings, resolved before anything touches the network: a
//! `--host` (with `~/.ssh/config`) or an attached target's stored endpoint
//! and authentication, the credentials (secrets read once, from the
//! environment or stdin), the host-key policy and the timeout.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use super::jumps;
use crate::cli::{AuthArgs, ConnectArgs, TargetArgs};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::ssh::{self, ConnectOptions, Credentials, Endpoint, HostKeyPolicy, KnownHosts, Pin};
use crate::store::{AuthRef, Target};
use crate::workspace::{self, Workspace};

/// Where to connect and how.
#[derive(Debug)]
pub struct Resolved {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// How.
    pub options: ConnectOptions,
}

/// The user's connection flags ([`TargetArgs`]), checked, with their secrets
/// read once: one `Access` serves every target a command reaches, and every
/// reconnect.
#[derive(Debug, Clone)]
pub struct Access {
    /// Deadline for DNS, TCP, handshake and authentication together.
    pub timeout: Duration,
    /// What to do with a host key no known_hosts file has.
    pub host_key_policy: HostKeyPolicy,
    /// known_hosts files whose keys to trust (`--known-hosts`).
    pub known_hosts_files: Vec<PathBuf>,
    /// Whether the workspace's mux may give the connection (not
    /// `--no-mux`, not `MOOR_NO_MUX`).
    pub mux: bool,
    auth: AuthArgs,
    password: Option<Secret>,
    passphrase: Option<Secret>,
}

impl Access {
    /// Checks the flags and reads the secrets they name (stdin at most once).
    pub fn from_args(args: &TargetArgs) -> Result<Access> {
        if let Some(fp) = args
            .host_key_fingerprint
            .iter()
            .find(|fp| !fp.starts_with("SHA256:") || fp.len() <= 7)
        {
            return Err(Error::usage(
                format!("--host-key-fingerprint {fp:?} is not a SHA256 fingerprint"),
                "pass it as OpenSSH prints it: SHA256:... (ssh-keygen -lf KEY.pub)",
            ));
        }
        for file in &args.known_hosts {
            if let Err(e) = std::fs::File::open(file) {
                return Err(Error::usage(
                    format!("--known-hosts {}: {e}", file.display()),
                    "pass a readable known_hosts file (OpenSSH format: HOST KEYTYPE BASE64 per line)",
                ));
            }
        }
        let host_key_policy = if !args.host_key_fingerprint.is_empty() {
            HostKeyPolicy::Fingerprint(args.host_key_fingerprint.clone())
        } else if args.accept_new_host_key {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        };
        let auth = &args.auth;
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
        Ok(Access {
            timeout: timeout(args.connect_timeout)?,
            host_key_policy,
            known_hosts_files: args.known_hosts.clone(),
            mux: !args.no_mux && !crate::mux::off_by_env(),
            auth: auth.clone(),
            password,
            passphrase,
        })
    }

    /// The defaults: stored settings, strict host keys, 10 s.
    pub fn defaults() -> Access {
        Access::from_args(&TargetArgs::default()).expect("the defaults are valid")
    }

    /// Whether these flags leave a target's connection to its stored
    /// settings (no credential, host-key or known_hosts flag), so that the
    /// mux, which connects with those, may give it.
    pub fn may_use_mux(&self) -> bool {
        self.mux
            && !self.auth.any()
            && self.auth.key_passphrase_env.is_none()
            && self.host_key_policy == HostKeyPolicy::Strict
            && self.known_hosts_files.is_empty()
    }

    /// The credential flags as given.
    pub fn auth(&self) -> &AuthArgs {
        &self.auth
    }

    /// These flags with one host's own key or password variable (an
    /// inventory's `identity_file`, `password`) in place of the flags'.
    pub fn for_host(&self, key: Option<PathBuf>, password_env: Option<String>) -> Result<Access> {
        let mut access = self.clone();
        if let Some(key) = key {
            access.auth.key = Some(key);
        }
        if let Some(var) = password_env {
            access.password = Some(secret_from_env(&var, "the inventory's password")?);
            access.auth.password_env = Some(var);
            access.auth.password_stdin = false;
        }
        Ok(access)
    }

    /// Credentials from the flags; `key` stands in for `--key` (the workspace
    /// key of an enrolled target, or a target's stored key), `identities` are
    /// ssh-config `IdentityFile`s.
    fn credentials(
        &self,
        key: Option<PathBuf>,
        passphrase: Option<Secret>,
        identities: &[PathBuf],
    ) -> Result<Credentials> {
        let key = key.or_else(|| self.auth.key.clone());
        let passphrase = passphrase.or_else(|| self.passphrase.clone());
        Credentials::resolve(
            key.as_deref(),
            passphrase.as_ref(),
            self.password.clone(),
            identities,
            workspace::home_dir().as_deref(),
        )
    }
}

/// The known_hosts files moor reads: the workspace's, and `~/.ssh/known_hosts`.
pub fn known_hosts(workspace: &Workspace) -> KnownHosts {
    KnownHosts::new(
        workspace.known_hosts_file(),
        workspace::home_dir().map(|h| h.join(".ssh/known_hosts")),
    )
}

/// The known_hosts files a connection with `access` reads: the workspace's,
/// the user's, and those given with `--known-hosts`.
fn known_hosts_for(workspace: &Workspace, access: &Access) -> KnownHosts {
    known_hosts(workspace).with_given(&access.known_hosts_files)
}

/// Resolves `--host` flags: applies `~/.ssh/config` and loads keys. Errors
/// here are usage or key errors, before any connection. `default_host`
/// stands in when `--host` is absent (an HDInsight cluster's SSH endpoint).
pub fn for_host(
    args: &ConnectArgs,
    workspace: &Workspace,
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
    for_host_with(args, &Access::from_args(&args.target)?, workspace, alias)
}

/// [`for_host`] with the connection flags already read (`args.target` is
/// not read again): a fleet reads its secrets once for every host.
pub fn for_host_with(
    args: &ConnectArgs,
    access: &Access,
    workspace: &Workspace,
    alias: String,
) -> Result<Resolved> {
    let home = workspace::home_dir();
    let config_path = args
        .ssh_config
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".ssh/config")));
    let config = config_path
        .as_ref()
        .map(|p| ssh::config::load(p, &alias, home.as_deref()))
        .unwrap_or_default();
    let jumps = jumps::for_alias(
        &alias,
        &args.jump,
        &config,
        config_path.as_deref(),
        home.as_deref(),
    )?;

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
    let identities = if access.auth.key.is_none() {
        config.identity_files.clone()
    } else {
        Vec::new()
    };
    Ok(Resolved {
        endpoint: Endpoint { host, port, user },
        options: ConnectOptions {
            timeout: access.timeout,
            host_key_policy: access.host_key_policy.clone(),
            known_hosts: known_hosts_for(workspace, access),
            pin: None,
            credentials: access.credentials(None, None, &identities)?,
            jumps: jumps::hops(&jumps)?,
        },
    })
}

/// Resolves how to reach an attached target: its stored endpoint and
/// authentication, overridden by credential flags when given.
pub fn for_target(target: &Target, access: &Access, workspace: &Workspace) -> Result<Resolved> {
    let credentials = if access.auth.any() {
        access.credentials(None, None, &[])?
    } else {
        match &target.auth {
            AuthRef::WorkspaceKey => access.credentials(Some(workspace.key_file()), None, &[])?,
            AuthRef::Key {
                path,
                passphrase_env,
            } => {
                let passphrase = passphrase_env
                    .as_deref()
                    .map(|var| secret_from_env(var, "the target's key passphrase variable"))
                    .transpose()?;
                access.credentials(Some(path.into()), passphrase, &[])?
            }
            AuthRef::Agent => access.credentials(None, None, &[])?,
            AuthRef::Password { env } => {
                let var = env.as_deref().ok_or_else(|| {
                    Error::usage(
                        format!("target {} authenticates with a password", target.name),
                        "pass --password-env VAR or --password-stdin",
                    )
                })?;
                let password = secret_from_env(var, "--password-env")?;
                Credentials::resolve(None, None, Some(password), &[], None)?
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
            timeout: access.timeout,
            host_key_policy: access.host_key_policy.clone(),
            known_hosts: known_hosts_for(workspace, access),
            pin: (!target.host_key_fingerprint.is_empty()).then(|| Pin {
                target: target.name.clone(),
                fingerprint: target.host_key_fingerprint.clone(),
            }),
            credentials,
            jumps: jumps::hops(&target.jumps)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_target_s_stored_settings_go_through_the_mux() {
        let mut args = TargetArgs::default();
        let on = !crate::mux::off_by_env();
        assert_eq!(Access::from_args(&args).unwrap().may_use_mux(), on);
        args.no_mux = true;
        assert!(!Access::from_args(&args).unwrap().may_use_mux());
        args.no_mux = false;
        args.accept_new_host_key = true;
        assert!(!Access::from_args(&args).unwrap().may_use_mux());
        args.accept_new_host_key = false;
        args.auth.key = Some("/nonexistent/key".into());
        assert!(!Access::from_args(&args).unwrap().may_use_mux());
    }
}
