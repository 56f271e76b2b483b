//! The server's TLS: a self-signed certificate made by `init` (or the
//! operator's, `--tls-cert/--tls-key`), and its fingerprint. Clients pin
//! the fingerprint at `moor login` as SSH pins a host key, so a
//! self-signed certificate is as safe as one a CA signed.

use std::path::Path;
use std::sync::Arc;

use moor::error::{Error, Result};
use moor::private_fs::{write_atomic, write_private_atomic};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use moor::team::client::fingerprint;

/// Makes a self-signed certificate for `names` (host names and addresses
/// the server is reached by) and writes it and its key (0600).
pub fn make_self_signed(names: Vec<String>, cert: &Path, key: &Path) -> Result<String> {
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| Error::Workspace {
        message: format!("cannot make the server's certificate: {e}"),
        fix: "run with -vv and report it".into(),
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Io {
            what: "cannot write the server's certificate",
            path,
            cause,
        }
    };
    write_private_atomic(key, made.signing_key.serialize_pem().as_bytes()).map_err(io(key))?;
    write_atomic(cert, made.cert.pem().as_bytes(), 0o644).map_err(io(cert))?;
    Ok(fingerprint(made.cert.der()))
}

/// The names a self-signed certificate is made for: localhost, this
/// machine's host name, and the loopback addresses.
pub fn default_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = nix::unistd::gethostname() {
        if let Some(host) = host.to_str().filter(|h| !h.is_empty() && *h != "localhost") {
            names.push(host.to_owned());
        }
    }
    names
}

/// A loaded certificate chain and key, ready to serve.
pub struct Identity {
    /// The rustls settings.
    pub config: Arc<rustls::ServerConfig>,
    /// The fingerprint of the certificate clients see.
    pub fingerprint: String,
}

/// Loads a certificate chain and its key from PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<Identity> {
    let bad = |path: &Path, e: &dyn std::fmt::Display| {
        Error::usage(
            format!("cannot read {}: {e}", path.display()),
            "pass a PEM certificate (chain) with --tls-cert and its PEM private key with --tls-key",
        )
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(cert, &e))?;
    let Some(leaf) = chain.first() else {
        return Err(bad(cert, &"no certificate in it"));
    };
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| bad(cert, &e))?;
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_loads_with_the_fingerprint_it_was_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let made = make_self_signed(default_names(), &cert, &key).unwrap();
        assert!(made.starts_with("SHA256:"), "{made}");
        let loaded = load(&cert, &key).unwrap();
        assert_eq!(loaded.fingerprint, made);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(load(&key, &cert).is_err());
    }
}
