//! The part of OpenSSH's client configuration (`~/.ssh/config`) that moor
//! honours: `Host` blocks giving `HostName`, `User`, `Port`,
//! `IdentityFile` and `ProxyJump` for an alias. As in OpenSSH, the first
//! value found for a keyword wins (`ProxyJump` and `ProxyCommand` count as
//! one: the first of them decides, `none` included) and `IdentityFile`
//! accumulates. `Match` blocks and `Include` are not supported: they are
//! skipped, with a debug log. `ProxyCommand` is not supported, and since
//! connecting directly instead would bypass it, a host that has one is
//! refused (see [`Proxy::Command`]).

use std::path::{Path, PathBuf};

use super::pattern::wildcard_match;

/// What the config says about one host alias.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`: the real host to connect to.
    pub host_name: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`s, `~` expanded.
    pub identity_files: Vec<PathBuf>,
    /// How to reach it other than directly, with the 1-based line that says so.
    pub proxy: Option<(Proxy, usize)>,
}

/// A `ProxyJump` or `ProxyCommand` line (not `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// `ProxyJump` and its value: jump hosts, comma-separated.
    Jump(String),
    /// `ProxyCommand`: not supported, and never to be ignored.
    Command,
}

/// Reads `path` (a missing file is an empty config) and looks up `alias`.
pub fn load(path: &Path, alias: &str, home: Option<&Path>) -> HostConfig {
    match std::fs::read_to_string(path) {
        Ok(text) => lookup(&text, alias, home),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot read ssh config; ignoring it");
            }
            HostConfig::default()
        }
    }
}

/// Looks up `alias` in the text of an ssh config.
pub fn lookup(text: &str, alias: &str, home: Option<&Path>) -> HostConfig {
    let mut out = HostConfig::default();
    let mut proxy_decided = false;
    let mut active = true; // lines before the first Host apply to every host
    for (number, raw) in text.lines().enumerate() {
        let Some((keyword, value)) = split_line(raw) else {
            continue;
        };
        match keyword.as_str() {
            "host" => active = host_block_matches(&value, alias),
            "match" => {
                tracing::debug!(
                    line = number + 1,
                    "ssh config: Match blocks are not supported; skipping"
                );
                active = false;
            }
            _ if !active => {}
            "hostname" if out.host_name.is_none() => {
                out.host_name = Some(value.replace("%h", alias).replace("%%", "%"))
            }
            "user" if out.user.is_none() => out.user = Some(value),
            "port" if out.port.is_none() => out.port = value.parse().ok(),
            "identityfile" => out.identity_files.push(expand_tilde(&value, home)),
            "proxyjump" | "proxycommand" if !proxy_decided => {
                // The first one decides, `none` (connect directly) included.
                proxy_decided = true;
                if !value.eq_ignore_ascii_case("none") {
                    let proxy = if keyword == "proxyjump" {
                        Proxy::Jump(value)
                    } else {
                        Proxy::Command
                    };
                    out.proxy = Some((proxy, number + 1));
                }
            }
            "include" => {
                tracing::debug!(
                    line = number + 1,
                    "ssh config: Include is not supported; skipping"
                )
            }
            _ => {}
        }
    }
    out
}

fn host_block_matches(patterns: &str, alias: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split_whitespace() {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(negated, alias) {
                return false;
            }
        } else if wildcard_match(pattern, alias) {
            matched = true;
        }
    }
    matched
}

/// `Keyword value`, `Keyword=value` or `Keyword = "value"`; keyword lowercased.
fn split_line(raw: &str) -> Option<(String, String)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let split = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let keyword = line[..split].to_ascii_lowercase();
    let rest = line[split..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    let value = rest.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((keyword, value.to_owned()))
}

fn expand_tilde(value: &str, home: Option<&Path>) -> PathBuf {
    match (value.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => match (value.strip_prefix("%d/"), home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
# global defaults come first
IdentityFile ~/.ssh/global

Host gpu-box
    HostName 10.1.2.3
    User=alice
    Port 2222
    IdentityFile "~/.ssh/id gpu"

Host *.lab !bad.lab
    User labuser
    Port 22

Host *
    User fallback
    Port 2200

Match host foo
    User matched
"#;

    #[test]
    fn alias_gives_hostname_user_port_identity() {
        let home = Path::new("/home/me");
        let c = lookup(CONFIG, "gpu-box", Some(home));
        assert_eq!(c.host_name.as_deref(), Some("10.1.2.3"));
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(
            c.identity_files,
            vec![home.join(".ssh/global"), home.join(".ssh/id gpu")]
        );
    }

    #[test]
    fn first_value_wins_and_negation_excludes() {
        let c = lookup(CONFIG, "a.lab", None);
        assert_eq!((c.user.as_deref(), c.port), (Some("labuser"), Some(22)));
        let c = lookup(CONFIG, "bad.lab", None);
        assert_eq!((c.user.as_deref(), c.port), (Some("fallback"), Some(2200)));
        assert_eq!(c.host_name, None);
    }

    #[test]
    fn a_proxy_is_noted_never_ignored_and_none_turns_it_off() {
        let text = "Host bastioned\n  ProxyJump ops@jump.example:2222,second\nHost direct\n  ProxyJump none\nHost *\n  ProxyCommand nc %h %p\n";
        let c = lookup(text, "bastioned", None);
        assert_eq!(
            c.proxy,
            Some((Proxy::Jump("ops@jump.example:2222,second".into()), 2))
        );
        assert_eq!(lookup(text, "direct", None).proxy, None);
        assert_eq!(lookup(text, "other", None).proxy, Some((Proxy::Command, 6)));
    }

    #[test]
    fn hostname_token() {
        let c = lookup("Host x\n  HostName %h.example.com\n", "x", None);
        assert_eq!(c.host_name.as_deref(), Some("x.example.com"));
    }
}
