//! Why reading a package channel failed, in words a user can act on: the
//! error's whole source chain is read down to its root cause, which is
//! named (name lookup, connection refused, TLS certificate, HTTP status,
//! timeout), with the proxy the build went through, and a fix for that
//! cause (`--channel-dir`, `--use-host-conda`, proxy or CA settings).

use crate::error::AgentError;

/// What kind of failure a root cause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// DNS: the name did not resolve.
    NameLookup,
    /// TCP: refused or unreachable.
    Refused,
    /// TLS: the certificate chain is not trusted.
    Certificate,
    /// The server answered with an HTTP error.
    HttpStatus,
    /// No answer in time.
    Timeout,
    /// Anything else.
    Other,
}

/// The error and its sources, outermost first, deduplicated.
pub fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !out.iter().any(|seen| seen.contains(&text)) {
            out.push(text);
        }
        next = e.source();
    }
    out
}

/// Classifies the chain by its texts.
pub fn classify(chain: &[String]) -> Cause {
    let all = chain.join(" | ").to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| all.contains(n));
    if has(&[
        "certificate",
        "unknownissuer",
        "invalid peer certificate",
        "tls handshake",
    ]) {
        Cause::Certificate
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "temporary failure in name resolution",
    ]) {
        Cause::NameLookup
    } else if has(&[
        "connection refused",
        "network is unreachable",
        "no route to host",
    ]) {
        Cause::Refused
    } else if has(&["timed out", "timeout"]) {
        Cause::Timeout
    } else if has(&["status", "404", "403", "401", "500", "502", "503"]) {
        Cause::HttpStatus
    } else {
        Cause::Other
    }
}

/// The proxy the build's HTTPS requests go through, if one is set.
fn proxy() -> Option<String> {
    ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .map(|url| redact(&url))
}

/// A proxy URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The error of a failed channel read: root cause named, fix for it.
pub fn channel_error(error: &dyn std::error::Error) -> AgentError {
    let chain = chain(error);
    let cause = classify(&chain);
    let root = chain.last().cloned().unwrap_or_default();
    let what = match cause {
        Cause::NameLookup => "the channel's host name does not resolve",
        Cause::Refused => "the connection to the channel was refused or has no route",
        Cause::Certificate => {
            "the channel's TLS certificate is not trusted (a proxy or server with a private CA?)"
        }
        Cause::HttpStatus => "the channel answered with an HTTP error",
        Cause::Timeout => "the channel did not answer in time",
        Cause::Other => "the channel could not be read",
    };
    let via = match proxy() {
        Some(proxy) => format!(" through proxy {proxy}"),
        None => " (no proxy set)".to_owned(),
    };
    let fix = match cause {
        Cause::Certificate => "give the host the CA that signs its network's TLS (the target's CA bundle setting), or build offline: --channel-dir DIR (a local channel shipped from here)",
        Cause::NameLookup | Cause::Refused | Cause::Timeout => "if the host reaches the internet only through a proxy, set the target's proxy; or build offline with --channel-dir DIR, or use the host's own conda with --use-host-conda",
        Cause::HttpStatus => "check the channel's name or URL in the conda file (a 404 is often a misspelt channel), or pass --channel-dir DIR",
        Cause::Other => "pass --channel-dir DIR (a local channel shipped from here), or --use-host-conda",
    };
    AgentError::internal(format!(
        "reading the channels: {what}{via}: {root} ({})",
        chain.join(": ")
    ))
    .with_fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(all: &[&str]) -> Vec<String> {
        all.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn root_causes_are_named() {
        let cases = [
            (
                &[
                    "failed to fetch repodata",
                    "error sending request",
                    "client error (Connect)",
                    "dns error: failed to lookup address information: Name or service not known",
                ][..],
                Cause::NameLookup,
            ),
            (
                &[
                    "error sending request",
                    "tcp connect error: Connection refused (os error 111)",
                ][..],
                Cause::Refused,
            ),
            (
                &[
                    "error sending request",
                    "invalid peer certificate: UnknownIssuer",
                ][..],
                Cause::Certificate,
            ),
            (
                &["HTTP status client error (404 Not Found) for url (https://x/y/repodata.json)"][..],
                Cause::HttpStatus,
            ),
            (&["operation timed out"][..], Cause::Timeout),
        ];
        for (chain, want) in cases {
            assert_eq!(classify(&texts(chain)), want, "{chain:?}");
        }
    }

    #[test]
    fn proxy_passwords_are_never_shown() {
        assert_eq!(
            redact("http://user:secret@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(redact("http://proxy:3128"), "http://proxy:3128");
    }
}
