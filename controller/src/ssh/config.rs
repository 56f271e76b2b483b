//! The part of OpenSSH's client configuration (`~/.ssh/config`) that moor
//! honours: `Host` blocks giving `HostName`, `User`, `Port`,
//! `IdentityFile` and `ProxyJump` for an alias, and `Include` (globs,
//! relative to `~/.ssh`, read in place as OpenSSH does, at most 16 deep).
//! As in OpenSSH, the first value found for a keyword wins (`ProxyJump` and
//! `ProxyCommand` count as one: the first of them decides, `none` included)
//! and `IdentityFile` accumulates. `Match` lines with `all`, `host` or
//! `originalhost` criteria are evaluated like `Host`; others (`exec`,
//! `user`, ...) cannot be, so their blocks are skipped, except that one
//! setting `ProxyJump` or `ProxyCommand` is noted
//! ([`HostConfig::match_proxy`]) so the caller refuses rather than bypass it. `ProxyCommand` is not supported, and since connecting
//! directly instead would bypass it, a host that has one is refused (see
//! [`Proxy::Command`]).

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
    /// How to reach it other than directly, with the file and 1-based line
    /// that say so.
    pub proxy: Option<(Proxy, PathBuf, usize)>,
    /// A `ProxyJump`/`ProxyCommand` inside a `Match` block (file, line):
    /// moor cannot tell whether it applies.
    pub match_proxy: Option<(PathBuf, usize)>,
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
    let mut reader = Reader {
        alias,
        home,
        out: HostConfig::default(),
        proxy_decided: false,
    };
    reader.file(path, true, 0);
    reader.out
}

/// Looks up `alias` in the text of an ssh config (its `Include`s relative
/// to `home`'s `.ssh`).
pub fn lookup(text: &str, alias: &str, home: Option<&Path>) -> HostConfig {
    let mut reader = Reader {
        alias,
        home,
        out: HostConfig::default(),
        proxy_decided: false,
    };
    reader.text(Path::new(""), text, true, 0);
    reader.out
}

/// Most nested `Include`s (OpenSSH's limit).
const MAX_INCLUDE_DEPTH: usize = 16;

struct Reader<'a> {
    alias: &'a str,
    home: Option<&'a Path>,
    out: HostConfig,
    proxy_decided: bool,
}

impl Reader<'_> {
    /// Reads one file; `active`: whether the lines before its first `Host`
    /// apply (the including block's state).
    fn file(&mut self, path: &Path, active: bool, depth: usize) {
        match std::fs::read_to_string(path) {
            Ok(text) => self.text(path, &text, active, depth),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read ssh config; ignoring it");
                }
            }
        }
    }

    fn text(&mut self, path: &Path, text: &str, mut active: bool, depth: usize) {
        let alias = self.alias;
        let mut in_match = false;
        for (number, raw) in text.lines().enumerate() {
            let Some((keyword, value)) = split_line(raw) else {
                continue;
            };
            let line = number + 1;
            match keyword.as_str() {
                "host" => {
                    active = host_block_matches(&value, alias);
                    in_match = false;
                }
                "match" => match match_block(&value, alias) {
                    Some(applies) => {
                        active = applies;
                        in_match = false;
                    }
                    None => {
                        tracing::debug!(line, "ssh config: a Match moor cannot evaluate; skipping");
                        active = false;
                        in_match = true;
                    }
                },
                "proxyjump" | "proxycommand"
                    if in_match
                        && self.out.match_proxy.is_none()
                        && !value.eq_ignore_ascii_case("none") =>
                {
                    self.out.match_proxy = Some((path.to_owned(), line));
                }
                _ if !active => {}
                "hostname" if self.out.host_name.is_none() => {
                    self.out.host_name = Some(value.replace("%h", alias).replace("%%", "%"))
                }
                "user" if self.out.user.is_none() => self.out.user = Some(value),
                "port" if self.out.port.is_none() => self.out.port = value.parse().ok(),
                "identityfile" => self
                    .out
                    .identity_files
                    .push(expand_tilde(&value, self.home)),
                "proxyjump" | "proxycommand" if !self.proxy_decided => {
                    // The first one decides, `none` (connect directly) included.
                    self.proxy_decided = true;
                    if !value.eq_ignore_ascii_case("none") {
                        let proxy = if keyword == "proxyjump" {
                            Proxy::Jump(value)
                        } else {
                            Proxy::Command
                        };
                        self.out.proxy = Some((proxy, path.to_owned(), line));
                    }
                }
                "include" if depth < MAX_INCLUDE_DEPTH => {
                    for pattern in value.split_whitespace() {
                        for included in self.included(pattern) {
                            self.file(&included, active, depth + 1);
                        }
                    }
                }
                "include" => {
                    tracing::warn!(line, "ssh config: Include nested too deep; skipping")
                }
                _ => {}
            }
        }
    }

    /// The files an `Include` pattern names, sorted: `~` expanded, a
    /// relative path under `~/.ssh`, `*` and `?` in the file name.
    fn included(&self, pattern: &str) -> Vec<PathBuf> {
        let path = expand_tilde(pattern, self.home);
        let path = match (path.is_absolute(), self.home) {
            (true, _) => path,
            (false, Some(home)) => home.join(".ssh").join(path),
            (false, None) => return Vec::new(),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            return vec![path];
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }
}

/// Whether a `Match` line applies to `alias`: `all`, and `host` /
/// `originalhost` with pattern lists (comma-separated, `!` negates), each
/// optionally negated with `!`. `None` when it uses anything else (`exec`,
/// `user`, `localuser`, `canonical`, ...), which moor cannot evaluate.
fn match_block(value: &str, alias: &str) -> Option<bool> {
    let mut words = value.split_whitespace();
    let mut applies = true;
    while let Some(word) = words.next() {
        let (negated, criterion) = match word.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        let result = match criterion.to_ascii_lowercase().as_str() {
            "all" => true,
            "host" | "originalhost" => host_block_matches(&words.next()?.replace(',', " "), alias),
            _ => return None,
        };
        applies &= result != negated;
    }
    Some(applies)
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
        let at = |proxy, line| Some((proxy, PathBuf::new(), line));
        assert_eq!(
            c.proxy,
            at(Proxy::Jump("ops@jump.example:2222,second".into()), 2)
        );
        assert_eq!(lookup(text, "direct", None).proxy, None);
        assert_eq!(lookup(text, "other", None).proxy, at(Proxy::Command, 6));
    }

    #[test]
    fn includes_are_read_in_place_and_a_match_proxy_is_noted() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(
            ssh.join("config.d/10-lab"),
            "Host gpu\n  HostName 10.9.0.5\n  ProxyJump bastion\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/20-other"), "Host *\n  User fallback\n").unwrap();
        std::fs::write(
            ssh.join("config"),
            "Include config.d/*\nMatch host gpu exec \"true\"\n  ProxyCommand nc %h %p\nMatch host gpu,!other\n  Port 2200\nMatch !host gpu\n  Port 1\n",
        )
        .unwrap();
        let c = load(&ssh.join("config"), "gpu", Some(home.path()));
        assert_eq!(c.host_name.as_deref(), Some("10.9.0.5"));
        assert_eq!(c.user.as_deref(), Some("fallback"));
        assert_eq!(
            c.proxy,
            Some((
                Proxy::Jump("bastion".into()),
                ssh.join("config.d/10-lab"),
                3
            ))
        );
        assert_eq!(c.match_proxy, Some((ssh.join("config"), 3)));
        assert_eq!(c.port, Some(2200), "Match host is evaluated like Host");
        assert_eq!(match_block("all", "x"), Some(true));
        assert_eq!(match_block("user root", "x"), None);
    }

    #[test]
    fn hostname_token() {
        let c = lookup("Host x\n  HostName %h.example.com\n", "x", None);
        assert_eq!(c.host_name.as_deref(), Some("x.example.com"));
    }
}
