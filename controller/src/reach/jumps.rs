//! Which jump hosts a `--host` connection goes through, as `ssh` would
//! choose them: `--jump` when given (`none`: directly), else the host's
//! ssh-config `ProxyJump`; each jump host's alias is looked up in the same
//! config (HostName, User, Port, IdentityFile), and the first one's own
//! `ProxyJump` comes before it, as OpenSSH's recursion does. A
//! `ProxyCommand` anywhere on the way is refused, never bypassed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ssh::config::{self, HostConfig, Proxy};
use crate::ssh::jump::{self, JumpSpec, MAX_HOPS};
use crate::ssh::{Credentials, Hop, JumpHost};
use crate::workspace;

/// The jump hosts on the way to `alias` (whose config is `host_config`).
pub fn for_alias(
    alias: &str,
    flags: &[String],
    host_config: &HostConfig,
    config_path: Option<&Path>,
    home: Option<&Path>,
) -> Result<Vec<JumpHost>> {
    let specs = if !flags.is_empty() {
        let mut specs = Vec::new();
        for value in flags {
            if value.trim().eq_ignore_ascii_case("none") && flags.len() > 1 {
                return Err(Error::usage(
                    "--jump none was given with other --jump hosts",
                    "pass either --jump none (connect directly) or the jump hosts",
                ));
            }
            specs.extend(jump::parse_list(value).map_err(|cause| {
                Error::usage(
                    format!("--jump {cause}"),
                    "pass --jump [USER@]HOST[:PORT], repeatable or comma-separated",
                )
            })?);
        }
        specs
    } else {
        match proxy_of(alias, host_config)? {
            Some((value, path, line)) => parse_config_value(&value, &path, line)?,
            None => Vec::new(),
        }
    };
    let mut hops = Vec::new();
    resolve(specs, config_path, home, 0, &mut hops)?;
    Ok(hops)
}

/// The hops to connect through, each with its own credentials: its
/// ssh-config keys, then the default keys and ssh-agent (never the
/// target's key or password).
pub fn hops(jumps: &[JumpHost]) -> Result<Vec<Hop>> {
    let home = workspace::home_dir();
    jumps
        .iter()
        .map(|jump| {
            Ok(Hop {
                jump: jump.clone(),
                credentials: Credentials::resolve(
                    None,
                    None,
                    None,
                    &jump.identity_files,
                    home.as_deref(),
                )?,
            })
        })
        .collect()
}

/// `alias`'s `ProxyJump` value, file and line; a `ProxyCommand`, or a
/// proxy in a `Match` block moor cannot evaluate, is refused.
fn proxy_of(alias: &str, host_config: &HostConfig) -> Result<Option<(String, PathBuf, usize)>> {
    if let Some((path, line)) = &host_config.match_proxy {
        return Err(Error::usage(
            format!(
                "{}:{line}: a Match block sets a proxy, and moor does not evaluate Match blocks (connecting directly could bypass it)",
                path.display()
            ),
            format!("put the ProxyJump in a Host block for {alias}, or say how to connect: --jump HOST or --jump none"),
        ));
    }
    match &host_config.proxy {
        Some((Proxy::Jump(value), path, line)) => Ok(Some((value.clone(), path.clone(), *line))),
        Some((Proxy::Command, path, line)) => Err(Error::usage(
            format!(
                "{}:{line}: ProxyCommand for {alias} is not supported by moor, and connecting directly would bypass it",
                path.display()
            ),
            format!("use ProxyJump (or --jump) for a bastion, or put `ProxyCommand none` in a Host block for {alias} above that line"),
        )),
        None => Ok(None),
    }
}

fn parse_config_value(value: &str, path: &Path, line: usize) -> Result<Vec<JumpSpec>> {
    jump::parse_list(value).map_err(|cause| {
        Error::usage(
            format!("{}:{line}: ProxyJump {cause}", path.display()),
            "write ProxyJump as [USER@]HOST[:PORT], comma-separated, or none",
        )
    })
}

/// Appends the resolved `specs` to `out`, the first one's own jump hosts
/// before it (`depth`: how many ProxyJump lines led here).
fn resolve(
    specs: Vec<JumpSpec>,
    config_path: Option<&Path>,
    home: Option<&Path>,
    depth: usize,
    out: &mut Vec<JumpHost>,
) -> Result<()> {
    for (i, spec) in specs.into_iter().enumerate() {
        let c = config_path
            .map(|p| config::load(p, &spec.host, home))
            .unwrap_or_default();
        if i == 0 {
            if let Some((value, path, line)) = proxy_of(&spec.host, &c)? {
                if depth + out.len() >= MAX_HOPS {
                    return Err(too_many());
                }
                resolve(
                    parse_config_value(&value, &path, line)?,
                    config_path,
                    home,
                    depth + 1,
                    out,
                )?;
            }
        }
        let user = spec
            .user
            .or(c.user)
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .ok_or_else(|| {
                Error::usage(
                    format!("no user for jump host {}", spec.host),
                    "write it as --jump USER@HOST, or set User for it in ~/.ssh/config",
                )
            })?;
        out.push(JumpHost {
            host: c.host_name.unwrap_or(spec.host),
            port: spec.port.or(c.port).unwrap_or(22),
            user,
            identity_files: c.identity_files,
        });
        if out.len() > MAX_HOPS {
            return Err(too_many());
        }
    }
    Ok(())
}

fn too_many() -> Error {
    Error::usage(
        format!("more than {MAX_HOPS} jump hosts (a ProxyJump loop in the ssh config?)"),
        "check the ProxyJump lines of the jump hosts in ~/.ssh/config",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn jumps(alias: &str, flags: &[&str], text: &str) -> Result<Vec<String>> {
        let file = config_file(text);
        let c = config::load(file.path(), alias, None);
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        for_alias(alias, &flags, &c, Some(file.path()), None)
            .map(|hops| hops.iter().map(ToString::to_string).collect())
    }

    const CONFIG: &str = "Host gpu\n  HostName 10.1.0.5\n  ProxyJump inner\n\
        Host inner\n  HostName 10.0.0.9\n  User ops\n  Port 2222\n  ProxyJump outer\n\
        Host outer\n  HostName outer.example\n  User edge\n\
        Host loop\n  ProxyJump loop\n\
        Host cmd\n  ProxyCommand nc %h %p\n";

    #[test]
    fn proxyjump_chains_as_openssh_recurses() {
        assert_eq!(
            jumps("gpu", &[], CONFIG).unwrap(),
            ["edge@outer.example:22", "ops@10.0.0.9:2222"]
        );
    }

    #[test]
    fn flags_override_the_config_and_none_goes_direct() {
        assert_eq!(
            jumps("gpu", &["me@b1:23,u@b2"], CONFIG).unwrap()[0],
            "me@b1:23"
        );
        assert!(jumps("gpu", &["none"], CONFIG).unwrap().is_empty());
        assert!(jumps("gpu", &["none", "b1"], CONFIG).is_err());
    }

    #[test]
    fn loops_and_proxycommand_are_refused() {
        let e = jumps("loop", &[], CONFIG).unwrap_err().to_string();
        assert!(e.contains("more than 8 jump hosts"), "{e}");
        let e = jumps("x", &["cmd"], CONFIG).unwrap_err().to_string();
        assert!(e.contains(":15: ProxyCommand for cmd"), "{e}");
        let e = jumps("cmd", &[], CONFIG).unwrap_err().to_string();
        assert!(e.contains("ProxyCommand for cmd"), "{e}");
    }
}
