//! A target's network settings (proxy, extra CA certificates): checked from
//! the flags, applied over what the target had, shown without secrets. The
//! agent gets them with every environment build.

use std::path::Path;

use moor_proto::env::BuildNetwork;
use serde::Serialize;

use crate::cli::NetworkArgs;
use crate::error::{Error, Result};

/// `settings` with the flags applied: a flag replaces its setting, `none`
/// clears it.
pub fn apply(settings: &BuildNetwork, args: &NetworkArgs) -> Result<BuildNetwork> {
    let mut out = settings.clone();
    let cleared = |value: &str| value.eq_ignore_ascii_case("none");
    for (flag, given, slot) in [
        ("--https-proxy", &args.https_proxy, &mut out.https_proxy),
        ("--http-proxy", &args.http_proxy, &mut out.http_proxy),
    ] {
        match given.as_deref() {
            None => {}
            Some(value) if cleared(value) => *slot = None,
            Some(value) => *slot = Some(proxy_url(flag, value)?),
        }
    }
    match args.no_proxy.as_deref() {
        None => {}
        Some(value) if cleared(value) => out.no_proxy = None,
        Some(value) => {
            if value.contains(char::is_whitespace) {
                return Err(Error::usage(
                    format!("--no-proxy {value:?} has spaces"),
                    "list hosts comma-separated: localhost,.corp.example",
                ));
            }
            out.no_proxy = Some(value.to_owned());
        }
    }
    match args.ca_bundle.as_deref() {
        None => {}
        Some(path) if cleared(&path.to_string_lossy()) => out.ca_pem = None,
        Some(path) => out.ca_pem = Some(ca_pem(path)?),
    }
    Ok(out)
}

/// `http://HOST:PORT` or `https://...`, without credentials (they would
/// sit in argv and the workspace).
fn proxy_url(flag: &str, value: &str) -> Result<String> {
    if value.contains('@') {
        // Never echoed: it may hold a password.
        return Err(Error::usage(
            format!("{flag}: a proxy URL with credentials would be kept in argv and the workspace"),
            "use a proxy that admits the host by its address; moor does not take proxy passwords",
        ));
    }
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| {
            Error::usage(
                format!("{flag} {value:?} is not an http:// or https:// URL"),
                format!("pass {flag} http://HOST:PORT"),
            )
        })?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(Error::usage(
            format!("{flag} {value:?} names no proxy host"),
            format!("pass {flag} http://HOST:PORT"),
        ));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// The PEM certificates of `path` (at least one).
fn ca_pem(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|cause| Error::Io {
        what: "cannot read the --ca-bundle",
        path: path.to_owned(),
        cause,
    })?;
    let count = certificates(&text);
    if count == 0 {
        return Err(Error::usage(
            format!("--ca-bundle {}: no PEM certificate in it", path.display()),
            "pass a PEM file (-----BEGIN CERTIFICATE----- ...), e.g. your company's root CA",
        ));
    }
    Ok(text)
}

fn certificates(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

/// The settings as `moor show` and `moor network` print them.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// HTTPS proxy.
    pub https_proxy: Option<String>,
    /// HTTP proxy.
    pub http_proxy: Option<String>,
    /// Hosts reached directly.
    pub no_proxy: Option<String>,
    /// Extra CA certificates.
    pub ca_certificates: usize,
    /// sha256 of the CA bundle.
    pub ca_sha256: Option<String>,
}

impl From<&BuildNetwork> for Shown {
    fn from(n: &BuildNetwork) -> Shown {
        Shown {
            https_proxy: n.https_proxy.clone(),
            http_proxy: n.http_proxy.clone(),
            no_proxy: n.no_proxy.clone(),
            ca_certificates: n.ca_pem.as_deref().map_or(0, certificates),
            ca_sha256: n
                .ca_pem
                .as_deref()
                .map(|pem| moor_proto::sha256_hex(pem.as_bytes())),
        }
    }
}

impl Shown {
    /// One line: `https proxy http://p:3128, no proxy localhost, 1 CA certificate`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.https_proxy {
            parts.push(format!("https proxy {p}"));
        }
        if let Some(p) = &self.http_proxy {
            parts.push(format!("http proxy {p}"));
        }
        if let Some(p) = &self.no_proxy {
            parts.push(format!("no proxy for {p}"));
        }
        if self.ca_certificates > 0 {
            parts.push(format!("{} extra CA certificate(s)", self.ca_certificates));
        }
        if parts.is_empty() {
            "direct (no proxy, the host's own CAs)".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_replace_settings_and_none_clears() {
        let args = NetworkArgs {
            https_proxy: Some("http://proxy:3128/".into()),
            no_proxy: Some("localhost,.corp".into()),
            ..NetworkArgs::default()
        };
        let set = apply(&BuildNetwork::default(), &args).unwrap();
        assert_eq!(set.https_proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(set.no_proxy.as_deref(), Some("localhost,.corp"));
        let cleared = apply(
            &set,
            &NetworkArgs {
                https_proxy: Some("none".into()),
                ..NetworkArgs::default()
            },
        )
        .unwrap();
        assert_eq!(cleared.https_proxy, None);
        assert_eq!(cleared.no_proxy.as_deref(), Some("localhost,.corp"));
    }

    #[test]
    fn credentials_and_non_urls_are_refused() {
        for bad in ["http://user:pw@proxy:3128", "proxy:3128", "http://"] {
            let args = NetworkArgs {
                https_proxy: Some(bad.into()),
                ..NetworkArgs::default()
            };
            assert!(apply(&BuildNetwork::default(), &args).is_err(), "{bad}");
        }
    }
}
