//! SSH key pairs for tests, made by OpenSSH's own ssh-keygen.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run;

/// A directory of key pairs, removed when dropped.
#[derive(Debug)]
pub struct Keys {
    dir: tempfile::TempDir,
}

/// One key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// Private key file.
    pub private: PathBuf,
    /// The public key line (`type base64 comment`).
    pub public: String,
}

impl Keys {
    /// An empty key directory.
    pub fn new() -> Keys {
        Keys {
            dir: tempfile::tempdir().expect("temp dir for keys"),
        }
    }

    /// Generates a key: `kind` is `ed25519`, `ecdsa` or `rsa`; `passphrase`
    /// encrypts it (OpenSSH format, bcrypt KDF).
    pub fn generate(&self, name: &str, kind: &str, passphrase: Option<&str>) -> KeyPair {
        let private = self.dir.path().join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-C", name, "-f"]).arg(&private);
        cmd.args(["-N", passphrase.unwrap_or("")]);
        if kind == "rsa" {
            cmd.args(["-b", "3072"]);
        }
        run(&mut cmd);
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .expect("public key")
            .trim()
            .to_owned();
        KeyPair { private, public }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new()
    }
}
