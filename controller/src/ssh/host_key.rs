//! The host-key decision of one SSH connection (the target's or a jump
//! host's): known_hosts files first (the workspace's, the user's, those
//! given with `--known-hosts`) (a revocation anywhere wins, a different
//! key of any type is "changed"), then the target's pin, then the user's
//! policy for a key no file records. russh asks it during the handshake;
//! the decision is kept so a refused handshake can say why.

use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use super::known_hosts::{self, KnownHosts, Verdict};
use crate::error::Error;

/// What to do with a host key that no known_hosts file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it (the default).
    Strict,
    /// Trust it and record it in the workspace (`--accept-new-host-key`).
    AcceptNew,
    /// Trust it only if its fingerprint is one of these
    /// (`--host-key-fingerprint`, repeatable: the target's and its jump
    /// hosts'). A key named here is trusted whichever host offers it: only
    /// the holder of its private half can.
    Fingerprint(Vec<String>),
}

/// Whether a host key was recorded before this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyStatus {
    /// A known_hosts file had it.
    Known,
    /// Trusted now (`--accept-new-host-key` or a matching
    /// `--host-key-fingerprint`) and recorded in the workspace.
    Learned,
}

impl std::fmt::Display for HostKeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostKeyStatus::Known => "known",
            HostKeyStatus::Learned => "learned",
        })
    }
}

/// How the host key was verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostKeyInfo {
    /// Key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...`
    pub fingerprint: String,
    /// Recorded before, or now.
    pub status: HostKeyStatus,
    /// The known_hosts file that has it.
    pub file: String,
}

/// The host key fingerprint an attached target was recorded with.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The target's name.
    pub target: String,
    /// `SHA256:...`
    pub fingerprint: String,
}

/// What the host-key check decided, kept so a refused handshake can say why.
#[derive(Debug)]
pub(super) enum KeyDecision {
    Accept {
        /// The key.
        key: PublicKey,
        /// Not recorded before: record it in the workspace.
        learn: bool,
        /// The file that has it (or will).
        file: String,
    },
    Refuse(Error),
}

/// russh's client handler for one connection: it decides about the host key.
pub(super) struct Handler {
    pub(super) host: String,
    pub(super) port: u16,
    /// A jump host on the way to the target, not the target.
    pub(super) jump: bool,
    pub(super) policy: HostKeyPolicy,
    pub(super) known_hosts: KnownHosts,
    /// The target's recorded key (never set for a jump host).
    pub(super) pin: Option<Pin>,
    pub(super) decision: Arc<Mutex<Option<KeyDecision>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let decision = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.decide(key),
            PublicKeyOrCertificate::Certificate(_) => KeyDecision::Refuse(Error::Ssh {
                host: self.host.clone(),
                port: self.port,
                cause: "the host presented a certificate, which moor does not verify".into(),
            }),
        };
        let accept = matches!(decision, KeyDecision::Accept { .. });
        *self.decision.lock().expect("decision lock") = Some(decision);
        Ok(accept)
    }
}

impl Handler {
    fn decide(&self, key: &PublicKey) -> KeyDecision {
        let host = known_hosts::host_entry_name(&self.host, self.port);
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = known_hosts::key_type(&key.algorithm());
        tracing::debug!(%host, %fingerprint, %algorithm, "host key offered");
        let accept = |learn: bool, file: String| KeyDecision::Accept {
            key: key.clone(),
            learn,
            file,
        };
        // The user named this very key.
        let named = matches!(&self.policy, HostKeyPolicy::Fingerprint(expected)
            if expected.iter().any(|e| same_fingerprint(e, &fingerprint)));
        // The target was recorded with another key.
        let unpinned = self
            .pin
            .as_ref()
            .filter(|pin| !same_fingerprint(&pin.fingerprint, &fingerprint));
        let pinned_refusal = |pin: &Pin| {
            KeyDecision::Refuse(Error::HostKeyNotPinned {
                host: host.clone(),
                target: pin.target.clone(),
                algorithm: algorithm.clone(),
                fingerprint: fingerprint.clone(),
                pinned: pin.fingerprint.clone(),
            })
        };
        match self.known_hosts.check(&self.host, self.port, key) {
            Verdict::Revoked { file } => KeyDecision::Refuse(Error::HostKeyRevoked {
                host,
                fingerprint,
                file,
            }),
            Verdict::Changed {
                file,
                line,
                in_workspace,
            } => KeyDecision::Refuse(Error::HostKeyChanged {
                host,
                algorithm,
                fingerprint,
                file,
                line,
                in_workspace,
            }),
            Verdict::Known { file, given, .. } => match unpinned {
                Some(pin) if !named => pinned_refusal(pin),
                // Trusted by a `--known-hosts` file: recorded in the workspace.
                _ if given => accept(
                    true,
                    self.known_hosts.workspace_file().display().to_string(),
                ),
                _ => accept(false, file.display().to_string()),
            },
            Verdict::Unknown => {
                let learned = accept(
                    true,
                    self.known_hosts.workspace_file().display().to_string(),
                );
                match (&self.policy, unpinned) {
                    _ if named => learned,
                    (_, Some(pin)) => pinned_refusal(pin),
                    // The target's own key, forgotten from known_hosts.
                    (_, None) if self.pin.is_some() => learned,
                    (HostKeyPolicy::AcceptNew, None) => learned,
                    // The fingerprints named were for other hosts of the chain.
                    (HostKeyPolicy::Fingerprint(expected), None) if !self.jump => {
                        KeyDecision::Refuse(Error::HostKeyMismatch {
                            host,
                            fingerprint,
                            expected: expected.join(", "),
                        })
                    }
                    (HostKeyPolicy::Strict | HostKeyPolicy::Fingerprint(_), None) => {
                        KeyDecision::Refuse(Error::HostKeyUnknown {
                            host,
                            jump: self.jump,
                            algorithm,
                            fingerprint,
                        })
                    }
                }
            }
        }
    }
}

/// Fingerprints compare with or without the `SHA256:` prefix and base64 padding.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches("SHA256:")
            .trim_end_matches('=')
            .to_owned()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_loosely() {
        assert!(same_fingerprint("SHA256:abc=", "SHA256:abc"));
        assert!(same_fingerprint("abc", "SHA256:abc"));
        assert!(!same_fingerprint("SHA256:abd", "SHA256:abc"));
    }
}
