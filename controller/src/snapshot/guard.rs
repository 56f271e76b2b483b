//! What a snapshot must never carry to a target: moor's own workspace (its
//! database and private key, wherever it sits: from `$HOME` the default
//! one is `./.local/share/moor`), left out and said once; and a file that
//! holds a private key OpenSSH would load, refused unless the user passed
//! `--allow-private-keys`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::error::Error;

/// Whether packing a source refuses files that hold a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keys {
    /// Refuse them (the default).
    #[default]
    Refuse,
    /// Pack them (`--allow-private-keys`).
    Allow,
}

static WORKSPACE: OnceLock<PathBuf> = OnceLock::new();
static SAID: AtomicBool = AtomicBool::new(false);

/// Leaves the workspace at `dir` out of every snapshot this process packs.
pub fn leave_out_workspace(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let _ = WORKSPACE.set(dir);
}

/// The workspace's path relative to `source`, when it sits inside it.
pub(super) fn workspace_in(source: &Path) -> Option<PathBuf> {
    let workspace = WORKSPACE.get()?;
    let source = source.canonicalize().ok()?;
    workspace
        .strip_prefix(&source)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(Path::to_owned)
}

/// Says, once per command, that the workspace was left out of `source`.
pub(super) fn say_left_out(source: &Path, rel: &Path) {
    if !SAID.swap(true, Ordering::Relaxed) {
        eprintln!(
            "moor: the workspace {} is inside {}: left out of the snapshot",
            rel.display(),
            source.display()
        );
    }
}

/// Whether `head` (a file's first bytes) starts a private key OpenSSH
/// would load: its own format or PEM (RSA, DSA, EC, PKCS#8).
pub fn is_private_key(head: &[u8]) -> bool {
    const MARKS: [&[u8]; 6] = [
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
        b"-----BEGIN RSA PRIVATE KEY-----",
        b"-----BEGIN DSA PRIVATE KEY-----",
        b"-----BEGIN EC PRIVATE KEY-----",
        b"-----BEGIN PRIVATE KEY-----",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
    ];
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    MARKS.iter().any(|mark| head[start..].starts_with(mark))
}

/// How many bytes [`is_private_key`] needs to see.
pub const HEAD: usize = 64;

/// The refusal of `path`, a private key.
pub fn refused(path: &Path) -> Error {
    Error::usage(
        format!(
            "{} holds a private key; moor does not send keys to targets",
            path.display()
        ),
        "move it out of the source folder or list it in .moorignore; to send it anyway, pass --allow-private-keys",
    )
}

#[cfg(test)]
mod tests {
    use super::is_private_key;

    #[test]
    fn openssh_and_pem_keys_are_recognised_public_ones_not() {
        assert!(is_private_key(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl"));
        assert!(is_private_key(b"\n  -----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(is_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(!is_private_key(b"ssh-ed25519 AAAAC3Nza me@host"));
        assert!(!is_private_key(b"-----BEGIN CERTIFICATE-----"));
        assert!(!is_private_key(b"# -----BEGIN RSA PRIVATE KEY-----"));
    }
}
