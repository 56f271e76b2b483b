//! Client authentication: key files, ssh-agent, password and
//! keyboard-interactive. Credentials are resolved (key files read and
//! decrypted) before any connection is opened, so a missing key or a wrong
//! passphrase fails fast. Secrets live in [`Secret`]s and are sent only to the
//! server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::{self, KeyboardInteractiveAuthResponse};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use russh::{MethodKind, MethodSet};

use super::Endpoint;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// A private key read from a file.
#[derive(Debug)]
pub struct LoadedKey {
    path: PathBuf,
    key: Arc<PrivateKey>,
}

impl LoadedKey {
    /// The public half.
    pub fn public_key(&self) -> &russh::keys::PublicKey {
        self.key.public_key()
    }
}

/// Everything moor will try, in order: keys, ssh-agent, password.
#[derive(Debug, Default)]
pub struct Credentials {
    keys: Vec<LoadedKey>,
    use_agent: bool,
    password: Option<Secret>,
}

/// The default key files OpenSSH tries, in its order.
const DEFAULT_KEYS: [&str; 3] = [".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"];

impl Credentials {
    /// Resolves credentials from the command line and ssh config.
    ///
    /// With `--key`, that key (and the password, if given) is all that is
    /// tried. With only a password, only the password. With neither, ssh-agent
    /// (when `SSH_AUTH_SOCK` is set), then config `IdentityFile`s and the
    /// default `~/.ssh/id_*` keys.
    pub fn resolve(
        key: Option<&Path>,
        passphrase: Option<&Secret>,
        password: Option<Secret>,
        config_identities: &[PathBuf],
        home: Option<&Path>,
    ) -> Result<Credentials> {
        let mut keys = Vec::new();
        if let Some(path) = key {
            keys.push(load_key(path, passphrase)?);
        } else {
            let defaults = home
                .into_iter()
                .flat_map(|h| DEFAULT_KEYS.iter().map(move |k| h.join(k)));
            let implicit = config_identities
                .iter()
                .cloned()
                .chain(if password.is_none() {
                    defaults.collect::<Vec<_>>()
                } else {
                    Vec::new()
                });
            for path in implicit {
                if !path.exists() || keys.iter().any(|k: &LoadedKey| k.path == path) {
                    continue;
                }
                match load_key(&path, passphrase) {
                    Ok(k) => keys.push(k),
                    Err(e) => tracing::warn!(key = %path.display(), "skipping key: {e}"),
                }
            }
        }
        let use_agent = key.is_none()
            && password.is_none()
            && std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
        Ok(Credentials {
            keys,
            use_agent,
            password,
        })
    }

    /// Whether there is anything at all to try.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.use_agent && self.password.is_none()
    }
}

/// Reads a private key, decrypting it with `passphrase` when it is encrypted.
pub fn load_key(path: &Path, passphrase: Option<&Secret>) -> Result<LoadedKey> {
    // As OpenSSH: a private key others may read is refused, not used.
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            return Err(Error::KeyPermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::KeyFile {
        path: path.to_owned(),
        cause: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            _ => e.to_string(),
        },
    })?;
    let key = match russh::keys::decode_secret_key(&text, passphrase.map(Secret::expose)) {
        Ok(key) => key,
        Err(russh::keys::Error::KeyIsEncrypted) => {
            return Err(Error::KeyPassphrase {
                path: path.to_owned(),
                given: false,
            })
        }
        Err(e) => {
            // A wrong passphrase surfaces as a decryption or parse error; tell
            // it apart from a file that is not a key at all.
            let encrypted = matches!(
                russh::keys::decode_secret_key(&text, None),
                Err(russh::keys::Error::KeyIsEncrypted)
            );
            return Err(if encrypted {
                Error::KeyPassphrase {
                    path: path.to_owned(),
                    given: true,
                }
            } else {
                Error::KeyFile {
                    path: path.to_owned(),
                    cause: format!("not a private key the SSH client can use ({e})"),
                }
            });
        }
    };
    Ok(LoadedKey {
        path: path.to_owned(),
        key: Arc::new(key),
    })
}

fn method_names(methods: &MethodSet) -> String {
    if methods.is_empty() {
        return "none".into();
    }
    methods
        .iter()
        .map(<&'static str>::from)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which credential authenticated a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthUsed {
    /// The server asked for nothing.
    None,
    /// This key file.
    Key(PathBuf),
    /// A key held by ssh-agent.
    Agent,
    /// The password (by `password` or `keyboard-interactive`).
    Password,
}

/// Authenticates `handle` as `endpoint.user`; returns how it succeeded.
pub(super) async fn authenticate<H: client::Handler>(
    handle: &mut client::Handle<H>,
    endpoint: &Endpoint,
    credentials: &Credentials,
) -> Result<(String, AuthUsed)> {
    let user = endpoint.user.as_str();
    let ssh_err = |e: russh::Error| Error::Ssh {
        host: endpoint.host.clone(),
        port: endpoint.port,
        cause: e.to_string(),
    };
    // "none" first: it tells which methods the server accepts.
    let mut accepted = match handle.authenticate_none(user).await.map_err(ssh_err)? {
        client::AuthResult::Success => return Ok(("none".into(), AuthUsed::None)),
        client::AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods,
    };
    tracing::debug!(methods = %method_names(&accepted), "server accepts");
    let mut tried: Vec<String> = Vec::new();
    let rsa_hash = match handle.best_supported_rsa_hash().await {
        Ok(Some(hash)) => hash,
        _ => Some(HashAlg::Sha256),
    };

    if accepted.contains(&MethodKind::PublicKey) {
        for loaded in &credentials.keys {
            let what = format!(
                "publickey ({} key {})",
                loaded.key.algorithm().as_str(),
                loaded.path.display()
            );
            tracing::debug!(method = %what, "trying");
            let key = PrivateKeyWithHashAlg::new(loaded.key.clone(), rsa_hash);
            match handle
                .authenticate_publickey(user, key)
                .await
                .map_err(ssh_err)?
            {
                client::AuthResult::Success => {
                    return Ok((what, AuthUsed::Key(loaded.path.clone())))
                }
                client::AuthResult::Failure {
                    remaining_methods, ..
                } => accepted = remaining_methods,
            }
            tried.push(what);
        }
        if credentials.use_agent {
            if let Some(what) = try_agent(handle, user, rsa_hash, &mut accepted, &mut tried).await?
            {
                return Ok((what, AuthUsed::Agent));
            }
        }
    }

    if let Some(password) = &credentials.password {
        if accepted.contains(&MethodKind::Password) {
            tracing::debug!(method = "password", "trying");
            tried.push("password".into());
            match handle
                .authenticate_password(user, password.expose())
                .await
                .map_err(ssh_err)?
            {
                client::AuthResult::Success => return Ok(("password".into(), AuthUsed::Password)),
                client::AuthResult::Failure {
                    remaining_methods, ..
                } => accepted = remaining_methods,
            }
        } else if accepted.contains(&MethodKind::KeyboardInteractive) {
            tracing::debug!(method = "keyboard-interactive", "trying");
            tried.push("keyboard-interactive".into());
            if keyboard_interactive(handle, user, password, &mut accepted)
                .await
                .map_err(ssh_err)?
            {
                return Ok(("keyboard-interactive (password)".into(), AuthUsed::Password));
            }
        }
    }

    let offered_password = accepted.contains(&MethodKind::Password)
        || accepted.contains(&MethodKind::KeyboardInteractive);
    let fix = if tried.is_empty() && credentials.is_empty() {
        "give a credential: --key PATH, --password-env VAR, --password-stdin, or an ssh-agent with SSH_AUTH_SOCK set".to_owned()
    } else if tried.is_empty() && credentials.password.is_some() {
        "the server does not accept passwords for this user; pass --key PATH".to_owned()
    } else if tried.is_empty() {
        format!(
            "the server accepts only {}; pass {}",
            method_names(&accepted),
            if offered_password {
                "--password-env VAR or --password-stdin"
            } else {
                "--key PATH"
            }
        )
    } else if credentials.password.is_some() {
        format!("check the user name ({user}) and the password")
    } else {
        format!(
            "check the user name ({user}) and that the key's public half is in ~{user}/.ssh/authorized_keys on the host{}",
            if offered_password { ", or use --password-env VAR" } else { "" }
        )
    };
    Err(Error::Auth {
        user: user.to_owned(),
        host: endpoint.host.clone(),
        port: endpoint.port,
        tried: if tried.is_empty() {
            "nothing usable".into()
        } else {
            tried.join(", ")
        },
        accepted: method_names(&accepted),
        fix,
    })
}

async fn try_agent<H: client::Handler>(
    handle: &mut client::Handle<H>,
    user: &str,
    rsa_hash: Option<HashAlg>,
    accepted: &mut MethodSet,
    tried: &mut Vec<String>,
) -> Result<Option<String>> {
    let mut agent = match AgentClient::connect_env().await {
        Ok(agent) => agent,
        Err(e) => {
            tracing::warn!("cannot reach ssh-agent at SSH_AUTH_SOCK: {e}");
            return Ok(None);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!("ssh-agent did not list its keys: {e}");
            return Ok(None);
        }
    };
    for identity in identities {
        let key = identity.public_key().into_owned();
        let what = format!(
            "publickey (ssh-agent {} key {})",
            key.algorithm().as_str(),
            identity.comment()
        );
        tracing::debug!(method = %what, "trying");
        let hash = if key.algorithm().is_rsa() {
            rsa_hash
        } else {
            None
        };
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(client::AuthResult::Success) => return Ok(Some(what)),
            Ok(client::AuthResult::Failure {
                remaining_methods, ..
            }) => *accepted = remaining_methods,
            Err(e) => tracing::debug!("ssh-agent could not sign: {e}"),
        }
        tried.push(what);
    }
    Ok(None)
}

/// Answers keyboard-interactive prompts: hidden prompts get the password,
/// echoed ones an empty answer. Returns whether it succeeded.
async fn keyboard_interactive<H: client::Handler>(
    handle: &mut client::Handle<H>,
    user: &str,
    password: &Secret,
    accepted: &mut MethodSet,
) -> Result<bool, russh::Error> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    // PAM may ask more than once (e.g. an empty info round); a bounded number
    // of rounds keeps a misbehaving server from holding us forever.
    for _ in 0..8 {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods, ..
            } => {
                *accepted = remaining_methods;
                return Ok(false);
            }
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            password.expose().to_owned()
                        }
                    })
                    .collect();
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_others_may_read_is_refused_as_openssh_does() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(load_key(&key, None).is_ok());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_key(&key, None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        assert_eq!(err.kind(), "key_permissions");
        assert!(err.to_string().contains("permissions 0644"), "{err}");
        assert_eq!(err.fix(), format!("chmod 600 {}", key.display()));
    }
}
