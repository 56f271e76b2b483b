//! Fleet inventories: SkyPilot's `ssh_node_pools.yaml`, read into the hosts
//! `moor attach --inventory` and `moor validate --inventory` reach, each with
//! the target name it gets and the pool it belongs to.
//!
//! The file maps a pool name to its `hosts` (addresses, DNS names or
//! ssh-config aliases; or mappings with `ip` and per-host settings) and the
//! pool's `user`, `identity_file` and `password`. moor adds `port` and
//! `name` (per host or pool). A password is never written in the file:
//! `password: $VAR` names the environment variable that holds it, and a
//! literal is refused without being echoed. Target names: a host's `name`
//! if given; a host written as a bare alias (letters, digits, `-`, `_`: an
//! ssh-config `Host`) keeps that name; any other host is `POOL-N`, N its
//! 1-based place in the pool's list. `identity_file` paths start at `~` or
//! the inventory's folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reach::check_name;

/// One host of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    /// The target name it is attached as.
    pub target: String,
    /// Its pool.
    pub pool: String,
    /// Address, DNS name or ssh-config alias.
    pub host: String,
    /// SSH port, when the file gives one.
    pub port: Option<u16>,
    /// Remote user, when the file gives one.
    pub user: Option<String>,
    /// Private key, when the file gives one.
    pub identity_file: Option<PathBuf>,
    /// The environment variable holding the password, when the file names one.
    pub password_env: Option<String>,
}

/// A pool of an inventory: its hosts in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryPool {
    /// The pool's name (a moor pool of that name holds its targets).
    pub name: String,
    /// Its hosts.
    pub hosts: Vec<InventoryHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    hosts: Vec<RawHost>,
    user: Option<String>,
    identity_file: Option<String>,
    password: Option<String>,
    port: Option<u16>,
    /// SkyPilot's switch; moor always reads the ssh config for aliases.
    #[serde(rename = "use_ssh_config")]
    _use_ssh_config: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHost {
    Name(String),
    Full(RawHostFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostFull {
    ip: String,
    name: Option<String>,
    user: Option<String>,
    identity_file: Option<String>,
    password: Option<String>,
    port: Option<u16>,
    #[serde(rename = "use_ssh_config")]
    _use_ssh_config: Option<bool>,
}

/// What a host's mapping or its pool sets (the host's own wins).
#[derive(Debug, Default)]
struct Settings {
    user: Option<String>,
    identity_file: Option<String>,
    password: Option<String>,
    port: Option<u16>,
}

/// Reads an inventory file; `only` keeps the pools named (all when empty).
pub fn load(path: &Path, only: &[String]) -> Result<Vec<InventoryPool>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(
            format!("cannot read the inventory {}: {e}", path.display()),
            "pass --inventory FILE, a readable ssh_node_pools.yaml",
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let pools = parse(&text, base, crate::workspace::home_dir().as_deref())
        .map_err(|e| Error::usage(format!("inventory {}: {}", path.display(), e), e.fix()))?;
    for name in only {
        if !pools.iter().any(|p| &p.name == name) {
            return Err(Error::usage(
                format!("the inventory {} has no pool {name:?}", path.display()),
                format!(
                    "name one of its pools: {}",
                    pools
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(pools
        .into_iter()
        .filter(|p| only.is_empty() || only.contains(&p.name))
        .collect())
}

/// Parses an inventory's text; relative key paths start at `base`, `~` at `home`.
pub fn parse(text: &str, base: &Path, home: Option<&Path>) -> Result<Vec<InventoryPool>> {
    let fix = "write it as SkyPilot's ssh_node_pools.yaml: POOL: {hosts: [ADDRESS, ...], user: USER, identity_file: KEY}";
    let raw: serde_yaml::Mapping = serde_yaml::from_str(text)
        .map_err(|e| Error::usage(format!("not an inventory: {e}"), fix))?;
    let mut pools = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (key, value) in raw {
        let pool = key
            .as_str()
            .ok_or_else(|| Error::usage(format!("pool name {key:?} is not text"), fix))?
            .to_owned();
        check_name(&pool).map_err(|e| in_pool(&pool, e))?;
        let raw: RawPool = serde_yaml::from_value(value)
            .map_err(|e| Error::usage(format!("pool {pool}: {e}"), fix))?;
        if raw.hosts.is_empty() {
            return Err(Error::usage(
                format!("pool {pool} has no hosts"),
                "list its machines under `hosts:`",
            ));
        }
        let mut hosts = Vec::new();
        for (i, raw_host) in raw.hosts.into_iter().enumerate() {
            let (host, name, own) = match raw_host {
                RawHost::Name(host) => (host, None, Settings::default()),
                RawHost::Full(full) => (
                    full.ip,
                    full.name,
                    Settings {
                        user: full.user,
                        identity_file: full.identity_file,
                        password: full.password,
                        port: full.port,
                    },
                ),
            };
            if host.trim().is_empty() || host.starts_with('-') || host.contains(char::is_whitespace)
            {
                return Err(Error::usage(
                    format!(
                        "pool {pool}: host {} is {host:?}, not an address or alias",
                        i + 1
                    ),
                    "write each host as an address, a DNS name or an ssh-config alias",
                ));
            }
            let target = match name {
                Some(name) => name,
                None if is_alias(&host) => host.clone(),
                None => format!("{pool}-{}", i + 1),
            };
            check_name(&target).map_err(|e| in_pool(&pool, e))?;
            if names.contains(&target) {
                return Err(Error::usage(
                    format!(
                        "pool {pool}: the target name {target:?} is given twice in the inventory"
                    ),
                    "give one of the hosts another `name:`",
                ));
            }
            names.push(target.clone());
            let setting =
                |own: &Option<String>, pool: &Option<String>| own.clone().or(pool.clone());
            let password_env = setting(&own.password, &raw.password)
                .map(|p| password_variable(&pool, &p))
                .transpose()?;
            hosts.push(InventoryHost {
                target,
                pool: pool.clone(),
                host,
                port: own.port.or(raw.port),
                user: setting(&own.user, &raw.user),
                identity_file: setting(&own.identity_file, &raw.identity_file)
                    .map(|p| key_path(&p, base, home)),
                password_env,
            });
        }
        pools.push(InventoryPool { name: pool, hosts });
    }
    if pools.is_empty() {
        return Err(Error::usage("the inventory has no pools", fix));
    }
    if let Some(clash) = pools.iter().find(|p| names.contains(&p.name)) {
        return Err(Error::usage(
            format!("{:?} names both a pool and a host's target", clash.name),
            "rename the pool, or give the host another `name:`",
        ));
    }
    Ok(pools)
}

fn in_pool(pool: &str, e: Error) -> Error {
    Error::usage(format!("pool {pool}: {e}"), e.fix())
}

/// A bare name (an ssh-config `Host` alias), not an address or a DNS name.
fn is_alias(host: &str) -> bool {
    !host.chars().all(|c| c.is_ascii_digit())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `$VAR` or `${VAR}`: the variable's name. Anything else is a password
/// written in the file, refused without repeating it.
fn password_variable(pool: &str, value: &str) -> Result<String> {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))
        .filter(|v| {
            !v.is_empty()
                && !v.starts_with(|c: char| c.is_ascii_digit())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    name.map(str::to_owned).ok_or_else(|| {
        Error::usage(
            format!(
                "pool {pool}: `password` holds a password, and moor never reads one from a file"
            ),
            "put it in an environment variable and write `password: $VARIABLE` (its name)",
        )
    })
}

fn key_path(path: &str, base: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => base.join(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<InventoryPool>> {
        parse(text, Path::new("/inv"), Some(Path::new("/home/u")))
    }

    #[test]
    fn skypilot_pools_with_names_and_settings() {
        let pools = parsed(
            "my-cluster:\n  hosts:\n    - 10.0.0.1\n    - gpu-box\n    - ip: 10.0.0.3\n      user: other\n      identity_file: keys/k\n      port: 2222\n  user: ubuntu\n  identity_file: ~/.ssh/id_ed25519\n  password: $FLEET_PW\nbox:\n  hosts: [h.example.com]\n",
        )
        .unwrap();
        assert_eq!(pools.len(), 2);
        let c = &pools[0];
        assert_eq!(c.name, "my-cluster");
        let targets: Vec<&str> = c.hosts.iter().map(|h| h.target.as_str()).collect();
        assert_eq!(targets, ["my-cluster-1", "gpu-box", "my-cluster-3"]);
        assert_eq!(c.hosts[0].user.as_deref(), Some("ubuntu"));
        assert_eq!(
            c.hosts[0].identity_file.as_deref(),
            Some(Path::new("/home/u/.ssh/id_ed25519"))
        );
        assert_eq!(c.hosts[0].password_env.as_deref(), Some("FLEET_PW"));
        assert_eq!(c.hosts[2].user.as_deref(), Some("other"));
        assert_eq!(c.hosts[2].port, Some(2222));
        assert_eq!(
            c.hosts[2].identity_file.as_deref(),
            Some(Path::new("/inv/keys/k"))
        );
        assert_eq!(pools[1].hosts[0].target, "box-1");
        assert_eq!(pools[1].hosts[0].user, None);
    }

    #[test]
    fn a_literal_password_is_refused_unrepeated() {
        let e = parsed("p:\n  hosts: [a]\n  password: hunter2\n").unwrap_err();
        assert!(e.to_string().contains("holds a password"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let ok = parsed("p:\n  hosts: [a]\n  password: ${PW}\n").unwrap();
        assert_eq!(ok[0].hosts[0].password_env.as_deref(), Some("PW"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, says) in [
            ("p:\n  hosts: []\n", "no hosts"),
            ("p:\n  hosts: [a, a]\n", "given twice"),
            ("1p:\n  hosts: [a]\n", "not a valid target name"),
            ("p:\n  hosts: [a]\n  colour: red\n", "colour"),
            ("a:\n  hosts: [x]\nb:\n  hosts: [a]\n", "names both"),
            ("p:\n  hosts: ['-oProxyCommand=x']\n", "not an address"),
            ("{}", "no pools"),
            ("[1, 2]", "not an inventory"),
        ] {
            let e = parsed(text).unwrap_err();
            assert!(e.to_string().contains(says), "{text:?}: {e}");
        }
    }
}
