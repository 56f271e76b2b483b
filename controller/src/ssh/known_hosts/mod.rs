//! Host key verification against OpenSSH known_hosts files.
//!
//! moor keeps its own `known_hosts` in the workspace and also reads the user's
//! `~/.ssh/known_hosts`, and the files given with `--known-hosts` (a fleet's
//! keys, collected from its owners or an inventory system: a key found only
//! there is recorded in the workspace). It never writes the user's file, and
//! it never replaces a recorded key: a changed key is refused until the user
//! removes the old one (`moor host-key forget`), and a given file cannot
//! vouch for a key where the workspace or the user's file records another. The parser understands what OpenSSH writes:
//! hashed names (`|1|salt|hash`), `[host]:port`, wildcards and negations,
//! `@revoked` and `@cert-authority` markers. Lines it cannot parse are skipped
//! (logged at debug), never fatal.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

use super::pattern::wildcard_match;
use crate::error::{Error, Result};

/// The name a host is recorded under: `host`, or `[host]:port` off port 22.
pub fn host_entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` fingerprint of a key, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The key type of an algorithm as known_hosts records it (RSA hash variants
/// all record as `ssh-rsa`).
pub fn key_type(alg: &Algorithm) -> String {
    match alg {
        Algorithm::Rsa { .. } => "ssh-rsa".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for this host.
    Known {
        /// The file that records it.
        file: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// Only a file given with `--known-hosts` records it: record it in
        /// the workspace too.
        given: bool,
    },
    /// The host is recorded nowhere.
    Unknown,
    /// Another key (of any type) is recorded for this host.
    Changed {
        /// The file with the other key.
        file: PathBuf,
        /// Its line.
        line: usize,
        /// Whether that file is the workspace's.
        in_workspace: bool,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// The file that revokes it.
        file: PathBuf,
    },
}

/// The known_hosts files moor consults.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    workspace_file: PathBuf,
    user_file: Option<PathBuf>,
    given: Vec<PathBuf>,
}

/// Where a known_hosts file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Workspace,
    User,
    /// `--known-hosts FILE`.
    Given,
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: String,
    key: PublicKey,
}

impl KnownHosts {
    /// known_hosts in `workspace_file` (read and written) and `user_file` (read only).
    pub fn new(workspace_file: PathBuf, user_file: Option<PathBuf>) -> Self {
        KnownHosts {
            workspace_file,
            user_file,
            given: Vec::new(),
        }
    }

    /// Also trusts the keys these files record (`--known-hosts`), read only.
    pub fn with_given(mut self, files: &[PathBuf]) -> Self {
        self.given = files.to_vec();
        self
    }

    /// The workspace's own file.
    pub fn workspace_file(&self) -> &Path {
        &self.workspace_file
    }

    fn files(&self) -> impl Iterator<Item = (&Path, Source)> {
        std::iter::once((self.workspace_file.as_path(), Source::Workspace))
            .chain(self.user_file.as_deref().map(|f| (f, Source::User)))
            .chain(self.given.iter().map(|f| (f.as_path(), Source::Given)))
    }

    /// Checks `key` for `host:port` against every file. Revocation wins
    /// over everything, wherever its line is; then a line with this key
    /// makes it known (a given file's line only if neither the workspace nor
    /// the user's file records another key for the host); then any other
    /// key recorded for the host, of any type, makes it changed (a host that
    /// now offers only ECDSA where ed25519 was recorded is not "unknown").
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_entry_name(host, port);
        let entries: Vec<(&Path, Source, Entry)> = self
            .files()
            .flat_map(|(file, source)| {
                read_entries(file)
                    .into_iter()
                    .map(move |entry| (file, source, entry))
            })
            .filter(|(_, _, e)| e.marker != Marker::CertAuthority && host_matches(&e.hosts, &name))
            .collect();
        let same_key = |e: &Entry| e.key.key_data() == key.key_data();
        if let Some((file, _, _)) = entries
            .iter()
            .find(|(_, _, e)| e.marker == Marker::Revoked && same_key(e))
        {
            return Verdict::Revoked {
                file: file.to_path_buf(),
            };
        }
        let recorded = entries.iter().filter(|(_, _, e)| e.marker == Marker::None);
        let changed = |(file, source, e): &(&Path, Source, Entry)| Verdict::Changed {
            file: file.to_path_buf(),
            line: e.line,
            in_workspace: *source == Source::Workspace,
        };
        let own = recorded.clone().filter(|(_, s, _)| *s != Source::Given);
        if let Some((file, _, e)) = own.clone().find(|(_, _, e)| same_key(e)) {
            return Verdict::Known {
                file: file.to_path_buf(),
                line: e.line,
                given: false,
            };
        }
        if let Some(other) = own.clone().next() {
            return changed(other);
        }
        if let Some((file, _, e)) = recorded.clone().find(|(_, _, e)| same_key(e)) {
            return Verdict::Known {
                file: file.to_path_buf(),
                line: e.line,
                given: true,
            };
        }
        match recorded.into_iter().next() {
            Some(other) => changed(other),
            None => Verdict::Unknown,
        }
    }

    /// Key types recorded for `host:port`, so the handshake can ask for one of
    /// them first (as OpenSSH does) instead of tripping over another type.
    pub fn known_key_types(&self, host: &str, port: u16) -> Vec<String> {
        let name = host_entry_name(host, port);
        let mut types = Vec::new();
        for (file, _) in self.files() {
            for entry in read_entries(file) {
                if entry.marker == Marker::None && host_matches(&entry.hosts, &name) {
                    let t = key_type(&entry.key.algorithm());
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
        }
        types
    }

    /// Records `key` for `host:port` in the workspace file (created 0600).
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> Result<()> {
        let io = |cause| Error::Io {
            what: "cannot write known_hosts",
            path: self.workspace_file.clone(),
            cause,
        };
        let line = format!(
            "{} {}\n",
            host_entry_name(host, port),
            key.to_openssh().map_err(|e| io(std::io::Error::other(e)))?
        );
        let mut file = crate::private_fs::open_private_append(&self.workspace_file).map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Removes every entry for `host:port` from the workspace file; returns how
    /// many were removed. The file is rewritten atomically.
    pub fn forget(&self, host: &str, port: u16) -> Result<usize> {
        let name = host_entry_name(host, port);
        let io = |cause| Error::Io {
            what: "cannot rewrite known_hosts",
            path: self.workspace_file.clone(),
            cause,
        };
        let text = match fs::read_to_string(&self.workspace_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(e)),
        };
        let mut removed = 0;
        let mut kept = String::with_capacity(text.len());
        for line in text.lines() {
            match parse_line(line) {
                Some((Marker::None, hosts, _)) if host_matches(&hosts, &name) => removed += 1,
                _ => {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        if removed > 0 {
            crate::private_fs::write_private_atomic(&self.workspace_file, kept.as_bytes())
                .map_err(io)?;
        }
        Ok(removed)
    }

    /// Whether the user's own file has an entry for `host:port`.
    pub fn in_user_file(&self, host: &str, port: u16) -> Option<PathBuf> {
        let name = host_entry_name(host, port);
        let file = self.user_file.as_ref()?;
        read_entries(file)
            .iter()
            .any(|e| e.marker == Marker::None && host_matches(&e.hosts, &name))
            .then(|| file.clone())
    }
}

fn read_entries(file: &Path) -> Vec<Entry> {
    let Ok(text) = fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (marker, hosts, key) = parse_line(line)?;
            let key = match key {
                Ok(key) => key,
                Err(e) => {
                    tracing::debug!(file = %file.display(), line = i + 1, error = %e, "skipping known_hosts line");
                    return None;
                }
            };
            Some(Entry {
                line: i + 1,
                marker,
                hosts,
                key,
            })
        })
        .collect()
}

/// Splits a known_hosts line into marker, host patterns and key. `None` for
/// blank lines and comments.
fn parse_line(line: &str) -> Option<(Marker, String, Result<PublicKey, String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let hosts = first.to_owned();
    let key = match (fields.next(), fields.next()) {
        (Some(kind), Some(data)) => {
            PublicKey::from_openssh(&format!("{kind} {data}")).map_err(|e| e.to_string())
        }
        _ => Err("missing key".to_owned()),
    };
    Some((marker, hosts, key))
}

/// Whether a comma-separated known_hosts pattern list matches `name`.
fn host_matches(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(negated, name) {
                return false;
            }
        } else if pattern.starts_with("|1|") {
            matched |= hashed_match(pattern, name);
        } else {
            matched |= wildcard_match(pattern, name);
        }
    }
    matched
}

fn hashed_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('|').skip(2);
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|p| b64.decode(p)),
        parts.next().map(|p| b64.decode(p)),
    ) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

#[cfg(test)]
mod tests;
