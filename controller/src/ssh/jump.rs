//! Jump hosts (bastions): the `[ssh://][user@]host[:port]` specs that
//! `--jump` and an ssh-config `ProxyJump` give, and the jump hosts a
//! connection goes through, in order. Each hop is a full SSH connection of
//! its own (host key verified, own credentials); the next one runs inside a
//! `direct-tcpip` channel of the previous one, as `ssh -J` does.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Endpoint;

/// Most hops one connection goes through (OpenSSH has no limit; a longer
/// chain is almost surely a ProxyJump loop in a config).
pub const MAX_HOPS: usize = 8;

/// One jump host as written, before the ssh config is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    /// `user@`, when given.
    pub user: Option<String>,
    /// Host name, address or ssh-config alias.
    pub host: String,
    /// `:port`, when given.
    pub port: Option<u16>,
}

/// A resolved jump host: where to connect and which keys the ssh config
/// names for it. Stored with a target attached through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JumpHost {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User on the jump host.
    pub user: String,
    /// ssh-config `IdentityFile`s for it (tried before the default keys and
    /// ssh-agent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_files: Vec<PathBuf>,
}

impl JumpHost {
    /// Where to connect.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
        }
    }
}

impl std::fmt::Display for JumpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.endpoint().fmt(f)
    }
}

/// The jump hosts of one `--jump` value or `ProxyJump` line: a
/// comma-separated list; `none` (alone) is the empty list.
pub fn parse_list(text: &str) -> Result<Vec<JumpSpec>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',').map(|one| parse_one(one.trim())).collect()
}

/// `[ssh://][user@]host[:port]`, with `[v6-address]:port` for IPv6.
pub fn parse_one(text: &str) -> Result<JumpSpec, String> {
    let rest = text.strip_prefix("ssh://").unwrap_or(text);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((user, hostport)) => (Some(user), hostport),
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: '[' without ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{text:?}: expected ':PORT' after ']'")),
            },
        }
    } else if hostport.matches(':').count() == 1 {
        let (host, port) = hostport.split_once(':').expect("one colon");
        (host, Some(port))
    } else {
        // No port, or a bare IPv6 address.
        (hostport, None)
    };
    let bad = |what: &str| format!("{text:?}: {what}");
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("not a host name"));
    }
    if let Some(user) = user {
        if user.is_empty() || user.starts_with('-') || user.chars().any(char::is_whitespace) {
            return Err(bad("not a user name"));
        }
    }
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("the port must be 1..65535")),
            Ok(port) => Ok(port),
        })
        .transpose()?;
    Ok(JumpSpec {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

/// How a list of jump hosts reads in messages: `a@b:22 -> c@d:22`.
pub fn describe(jumps: &[JumpHost]) -> String {
    jumps
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: Option<&str>, host: &str, port: Option<u16>) -> JumpSpec {
        JumpSpec {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn specs_as_ssh_writes_them() {
        assert_eq!(parse_one("bastion"), Ok(spec(None, "bastion", None)));
        assert_eq!(
            parse_one("ops@bastion:2222"),
            Ok(spec(Some("ops"), "bastion", Some(2222)))
        );
        assert_eq!(
            parse_one("ssh://ops@10.0.0.1:22"),
            Ok(spec(Some("ops"), "10.0.0.1", Some(22)))
        );
        assert_eq!(
            parse_one("[fd00::1]:2200"),
            Ok(spec(None, "fd00::1", Some(2200)))
        );
        assert_eq!(parse_one("fd00::1"), Ok(spec(None, "fd00::1", None)));
    }

    #[test]
    fn lists_and_none() {
        let hops = parse_list("a, b@c:23").unwrap();
        assert_eq!(
            hops,
            vec![spec(None, "a", None), spec(Some("b"), "c", Some(23))]
        );
        assert_eq!(parse_list("none").unwrap(), Vec::new());
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        for bad in [
            "",
            "@host",
            "host:0",
            "host:x",
            "-oProxyCommand=x",
            "a b",
            "[::1",
        ] {
            assert!(parse_one(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_list("a,,b").is_err());
    }
}
