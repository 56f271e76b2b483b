//! `moor host-key forget`: the only way a recorded host key goes away. moor
//! never replaces a changed key by itself.

use serde::Serialize;

use super::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Text};

/// What `forget` did.
#[derive(Debug, Serialize)]
pub struct Forgotten {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Entries removed from the workspace known_hosts.
    pub removed: usize,
    /// The workspace known_hosts file.
    pub file: String,
    /// The user's known_hosts, when it still has an entry (moor never edits it).
    pub still_in: Option<String>,
}

/// Parses `HOST`, `HOST:PORT` or `[HOST]:PORT` (a bare IPv6 address is a host).
pub fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::usage(
            format!("{s:?} is not HOST, HOST:PORT or [HOST]:PORT"),
            "pass the host as you passed it to --host, e.g. 10.0.0.4:2222",
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() == 1 {
        let (host, port) = s.split_once(':').expect("one colon");
        (host, Some(port))
    } else {
        (s, None)
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => 22,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Removes the host's keys from the workspace known_hosts.
pub fn forget(ctx: &Context, target: &str) -> Result<Forgotten> {
    let (host, port) = parse_host_port(target)?;
    let known = crate::reach::settings::known_hosts(&ctx.workspace);
    let removed = known.forget(&host, port)?;
    let still_in = known
        .in_user_file(&host, port)
        .map(|p| p.display().to_string());
    Ok(Forgotten {
        file: known.workspace_file().display().to_string(),
        host,
        port,
        removed,
        still_in,
    })
}

impl Render for Forgotten {
    fn render(&self, out: &mut Text) {
        let name = crate::ssh::known_hosts::host_entry_name(&self.host, self.port);
        match self.removed {
            0 => out.line(format!("no key for {name} in {}", self.file)),
            n => out.line(format!(
                "removed {n} key{} for {name} from {}",
                if n == 1 { "" } else { "s" },
                self.file
            )),
        }
        if let Some(file) = &self.still_in {
            out.line(format!("note: {file} also records {name}; moor never edits it: ssh-keygen -R '{name}' -f {file}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_host_port;

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_host_port("h").unwrap(), ("h".into(), 22));
        assert_eq!(parse_host_port("h:2222").unwrap(), ("h".into(), 2222));
        assert_eq!(parse_host_port("[h]:2222").unwrap(), ("h".into(), 2222));
        assert_eq!(parse_host_port("[::1]:2222").unwrap(), ("::1".into(), 2222));
        assert_eq!(parse_host_port("fe80::1").unwrap(), ("fe80::1".into(), 22));
        for bad in ["", ":22", "h:0", "h:x", "[h", "[h]x"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }
}
