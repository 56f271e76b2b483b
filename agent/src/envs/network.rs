//! A target's network settings inside an environment build: the proxy
//! variables every tool reads (pip, the conda solver's HTTP client, the
//! host's conda, Docker builds as build arguments), and the extra CA
//! certificates, added to the host's own trust store in a bundle the build
//! points every tool at (`SSL_CERT_FILE`, `PIP_CERT`, `REQUESTS_CA_BUNDLE`,
//! `CURL_CA_BUNDLE`). Only the build's own process sees them.

use std::fs;
use std::path::{Path, PathBuf};

use moor_proto::env::BuildNetwork;

use crate::error::Result;

/// The host's CA bundle, where distributions keep it.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The variables that name a CA bundle, for the tools that read each.
pub const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

/// Applies `network` to this (build) process: returns the CA bundle it
/// wrote in `dir`, if there are extra certificates.
pub fn apply(dir: &Path, network: &BuildNetwork) -> Result<Option<PathBuf>> {
    for (name, value) in network.proxy_variables() {
        std::env::set_var(name, value);
    }
    if let Some(proxy) = &network.https_proxy {
        println!(
            "moor: through proxy {proxy}{}",
            network
                .no_proxy
                .as_deref()
                .map(|n| format!(" (not for {n})"))
                .unwrap_or_default()
        );
    }
    let Some(extra) = &network.ca_pem else {
        return Ok(None);
    };
    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|path| fs::read_to_string(path).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(extra);
    let path = dir.join("ca-bundle.pem");
    fs::write(&path, bundle).map_err(|e| format!("{}: {e}", path.display()))?;
    for name in CA_VARIABLES {
        std::env::set_var(name, &path);
    }
    println!(
        "moor: trusting {} extra CA certificate(s) besides the host's",
        extra.matches("-----BEGIN CERTIFICATE-----").count()
    );
    Ok(Some(path))
}

/// The Docker build arguments for the proxy (Docker's predefined ones:
/// they reach every `RUN` and are not kept in the image).
pub fn build_args(network: &BuildNetwork) -> Vec<(String, String)> {
    network.proxy_variables()
}
