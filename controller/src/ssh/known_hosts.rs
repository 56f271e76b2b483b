//! Host key verification against OpenSSH known_hosts files.
//!
//! moor keeps its own `known_hosts` in the workspace and also reads the user's
//! `~/.ssh/known_hosts`. It never writes the user's file, and it never replaces
//! a recorded key: a changed key is refused until the user removes the old one
//! (`moor host-key forget`). The parser understands what OpenSSH writes:
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
        }
    }

    /// The workspace's own file.
    pub fn workspace_file(&self) -> &Path {
        &self.workspace_file
    }

    fn files(&self) -> impl Iterator<Item = (&Path, bool)> {
        std::iter::once((self.workspace_file.as_path(), true))
            .chain(self.user_file.as_deref().map(|f| (f, false)))
    }

    /// Checks `key` for `host:port` against every file. Revocation wins
    /// over everything, wherever its line is; then a line with this key
    /// makes it known; then any other key recorded for the host, of any
    /// type, makes it changed (a host that now offers only ECDSA where
    /// ed25519 was recorded is not "unknown").
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_entry_name(host, port);
        let entries: Vec<(&Path, bool, Entry)> = self
            .files()
            .flat_map(|(file, in_workspace)| {
                read_entries(file)
                    .into_iter()
                    .map(move |entry| (file, in_workspace, entry))
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
        if let Some((file, _, e)) = recorded.clone().find(|(_, _, e)| same_key(e)) {
            return Verdict::Known {
                file: file.to_path_buf(),
                line: e.line,
            };
        }
        match recorded.into_iter().next() {
            Some((file, in_workspace, e)) => Verdict::Changed {
                file: file.to_path_buf(),
                line: e.line,
                in_workspace: *in_workspace,
            },
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
        let mut file = crate::workspace::open_private_append(&self.workspace_file).map_err(io)?;
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
            crate::workspace::write_private_atomic(&self.workspace_file, kept.as_bytes())
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
mod tests {
    use super::*;

    const ED1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFX5JhiUxceeZBpKJzMdFCBfhj6xi/aU9pBwdEVU2+ua";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJXOCi0lHpfc4ReSBu7HotDI4iiwY+q33KdoVEVIoVoS";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn hosts_with(workspace: &str, user: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("known_hosts");
        let u = dir.path().join("user_known_hosts");
        fs::write(&w, workspace).unwrap();
        fs::write(&u, user).unwrap();
        (dir, KnownHosts::new(w, Some(u)))
    }

    #[test]
    fn negation_and_ports() {
        assert!(host_matches(
            "*.example.com,!bad.example.com",
            "good.example.com"
        ));
        assert!(!host_matches(
            "*.example.com,!bad.example.com",
            "bad.example.com"
        ));
        assert!(host_matches("[h]:2222", &host_entry_name("h", 2222)));
        assert!(!host_matches("h", &host_entry_name("h", 2222)));
    }

    #[test]
    fn hashed_names_match() {
        // `ssh-keygen -H` of "example.com" with this salt.
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"example.com")
            .finalize()
            .into_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        let pattern = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac));
        assert!(host_matches(&pattern, "example.com"));
        assert!(!host_matches(&pattern, "example.org"));
    }

    #[test]
    fn known_unknown_changed_revoked() {
        let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("@revoked h3 {ED2}\n"));
        assert!(matches!(
            kh.check("h1", 22, &key(ED1)),
            Verdict::Known { line: 1, .. }
        ));
        assert_eq!(kh.check("h2", 22, &key(ED1)), Verdict::Unknown);
        assert!(matches!(
            kh.check("h1", 22, &key(ED2)),
            Verdict::Changed {
                line: 1,
                in_workspace: true,
                ..
            }
        ));
        assert!(matches!(
            kh.check("h3", 22, &key(ED2)),
            Verdict::Revoked { .. }
        ));
        assert_eq!(kh.known_key_types("h1", 22), vec!["ssh-ed25519".to_owned()]);
    }

    const EC1: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMKmoTcMJYCqtcdlVNA0hQ2IXK+NdW70G8iNqYlGu6OYHj1NuN3FxhLkLlRPSXJ2oz1pds84FRXl3BS0mR3hugM=";

    #[test]
    fn revocation_in_a_later_file_wins_over_a_known_line_in_an_earlier_one() {
        let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("@revoked * {ED1}\n"));
        assert!(matches!(
            kh.check("h1", 22, &key(ED1)),
            Verdict::Revoked { .. }
        ));
    }

    #[test]
    fn a_key_of_another_type_is_changed_not_unknown() {
        let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("h2 {ED1}\n"));
        assert!(matches!(
            kh.check("h1", 22, &key(EC1)),
            Verdict::Changed {
                line: 1,
                in_workspace: true,
                ..
            }
        ));
        assert!(matches!(
            kh.check("h2", 22, &key(EC1)),
            Verdict::Changed {
                in_workspace: false,
                ..
            }
        ));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = format!(
            "# comment\n\ngarbage\nh1 ssh-ed25519 notbase64\nh1 sk-unknown AAAA\nh1 {ED1}\n"
        );
        let (_d, kh) = hosts_with(&text, "");
        assert!(matches!(
            kh.check("h1", 22, &key(ED1)),
            Verdict::Known { line: 6, .. }
        ));
    }

    #[test]
    fn learn_then_forget() {
        let (_d, kh) = hosts_with("", "");
        kh.learn("h", 2222, &key(ED1)).unwrap();
        kh.learn("other", 22, &key(ED2)).unwrap();
        assert!(matches!(
            kh.check("h", 2222, &key(ED1)),
            Verdict::Known { .. }
        ));
        assert_eq!(kh.forget("h", 2222).unwrap(), 1);
        assert_eq!(kh.check("h", 2222, &key(ED1)), Verdict::Unknown);
        assert!(matches!(
            kh.check("other", 22, &key(ED2)),
            Verdict::Known { .. }
        ));
        assert_eq!(kh.forget("h", 2222).unwrap(), 0);
    }
}
