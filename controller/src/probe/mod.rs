//! The host probe: one shell script, run in one exec over SSH, that reports
//! everything the checks need. The script ([`SCRIPT`]) prints raw command
//! output in `@@moor NAME` sections; [`Facts::parse`] turns that into typed
//! facts. Parsing lives here, not in shell, so it is unit-tested and the
//! script stays plain POSIX sh.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use hadoop::{Hdfs, HeadNode, Yarn, YarnNode};

use crate::target_kind::TargetKind;

mod hadoop;

/// The probe script. Run with [`command`], the script on stdin.
pub const SCRIPT: &str = include_str!("probe.sh");

/// The command that runs [`SCRIPT`], asking about the agents installed as
/// `agent_ids` (`[0-9a-z.-]` directory names separated by spaces, one per
/// architecture moor carries; quoted all the same, split by the script); a head
/// node (`hdinsight`) is also asked about Spark, YARN and HDFS.
pub fn command(agent_ids: &str, kind: TargetKind) -> String {
    format!(
        "sh -s -- {} {}",
        crate::shell::quote(agent_ids),
        kind.as_str()
    )
}

/// What the probe learned about a host.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Facts {
    /// From /etc/os-release.
    pub os: OsRelease,
    /// `uname -m`, e.g. `x86_64`.
    pub arch: String,
    /// `uname -r`.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// /etc/machine-id.
    pub machine_id: Option<String>,
    /// Login user.
    pub user: String,
    /// Its uid.
    pub uid: Option<u32>,
    /// Its groups.
    pub groups: Vec<String>,
    /// $HOME.
    pub home: String,
    /// Disk holding $HOME.
    pub home_disk: Option<Disk>,
    /// Total memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Available memory, bytes.
    pub memory_available_bytes: Option<u64>,
    /// Online CPUs.
    pub cpus: Option<u32>,
    /// CPU model name.
    pub cpu_model: Option<String>,
    /// Addresses of the host's interfaces (loopback excluded).
    pub addresses: Vec<IpAddr>,
    /// Docker.
    pub docker: Docker,
    /// Conda installations found.
    pub conda: Vec<Conda>,
    /// Python.
    pub python: Option<Python>,
    /// NVIDIA GPUs.
    pub nvidia: Option<Nvidia>,
    /// Whether `sudo -n true` works; `None` when sudo is absent.
    pub sudo_passwordless: Option<bool>,
    /// Path of spark-submit, when found.
    pub spark_submit: Option<String>,
    /// A head node's Spark, YARN, HDFS and cluster Python (probed as
    /// `hdinsight` only).
    #[serde(default)]
    pub head_node: Option<HeadNode>,
    /// Which of `xz` and `gzip` the host has (to unpack a compressed agent).
    #[serde(default)]
    pub decompressors: Vec<String>,
    /// The installed moor agent's hello, when the expected one is there.
    pub agent: Option<moor_proto::Hello>,
    /// `~/.moor/claim`: which workspace and target own the machine.
    pub claim: Option<Claim>,
}

/// The claim file moor writes on an attached host (`~/.moor/claim`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    /// Id of the owning workspace.
    pub workspace_id: String,
    /// Where that workspace is: `user@machine:directory`.
    pub workspace: String,
    /// The target name there.
    pub target: String,
    /// When it was claimed.
    pub claimed_at: String,
}

/// The fields of os-release that the checks use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `ubuntu`.
    pub id: String,
    /// `VERSION_ID`, e.g. `22.04`.
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// A file system's size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// Size, bytes.
    pub total_bytes: u64,
    /// Free for this user, bytes.
    pub free_bytes: u64,
}

/// What the probe found of Docker.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Docker {
    /// Path of the docker CLI.
    pub cli: Option<String>,
    /// The engine's socket.
    pub socket: Option<String>,
    /// Group owning the socket.
    pub socket_group: Option<String>,
    /// Whether this user can read and write the socket.
    pub socket_access: Option<bool>,
    /// Engine version, when the engine answered.
    pub server_version: Option<String>,
    /// What the CLI said when it could not reach the engine.
    pub error: Option<String>,
}

/// One conda installation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Conda {
    /// `conda`, `mamba` or `micromamba`.
    pub kind: String,
    /// Where.
    pub path: String,
    /// conda's version, when known.
    pub version: Option<String>,
}

/// The host's Python.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Python {
    /// Path of the interpreter.
    pub path: String,
    /// e.g. `3.11.2`.
    pub version: Option<String>,
}

/// What nvidia-smi reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Nvidia {
    /// Path of nvidia-smi.
    pub smi: String,
    /// GPUs.
    pub gpus: Vec<Gpu>,
    /// nvidia-smi's error, when it failed.
    pub error: Option<String>,
}

/// One GPU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gpu {
    /// e.g. `Tesla V100-PCIE-16GB`.
    pub name: String,
    /// Driver version.
    pub driver: String,
    /// Memory, as nvidia-smi prints it.
    pub memory: String,
}

/// The probe output could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl Facts {
    /// Parses the probe's stdout. Anything before the start marker (a login
    /// banner, a noisy shell rc file) is ignored.
    pub fn parse(stdout: &str) -> Result<Facts, ParseError> {
        let start = stdout
            .find("@@moor-probe 1\n")
            .ok_or_else(|| ParseError("no probe output (is /bin/sh a POSIX shell?)".into()))?;
        let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut current = None;
        for line in stdout[start..].lines().skip(1) {
            if let Some(name) = line.strip_prefix("@@moor ") {
                current = Some(name);
                sections.entry(name).or_default();
            } else if let Some(name) = current {
                if !line.trim().is_empty() {
                    sections.entry(name).or_default().push(line);
                }
            }
        }
        if !sections.contains_key("end") {
            return Err(ParseError("probe output was cut short".into()));
        }
        let get = |name: &str| sections.get(name).cloned().unwrap_or_default();
        let kv = |name: &str| key_values(&get(name));

        let uname = get("uname");
        let user = get("user");
        let cpu = get("cpu");
        let docker = kv("docker");
        let python = kv("python");
        let nvidia = kv("nvidia");
        Ok(Facts {
            os: parse_os_release(&get("os-release")),
            arch: uname_field(&uname, 1),
            kernel: uname_field(&uname, 0),
            hostname: first(&get("hostname")).unwrap_or_default(),
            machine_id: first(&get("machine-id")),
            user: parse_id(&user).0,
            uid: parse_id(&user).1,
            groups: parse_id(&user).2,
            home: first(&get("home")).unwrap_or_default(),
            home_disk: get("df-home").last().and_then(|l| parse_df(l)),
            memory_total_bytes: meminfo(&get("meminfo"), "MemTotal:"),
            memory_available_bytes: meminfo(&get("meminfo"), "MemAvailable:"),
            cpus: cpu.first().and_then(|c| c.trim().parse().ok()),
            cpu_model: cpu
                .get(1)
                .map(|m| {
                    m.split_once(':')
                        .map_or(*m, |(_, model)| model)
                        .trim()
                        .to_owned()
                })
                .filter(|m| !m.is_empty()),
            addresses: parse_addresses(&get("addrs")),
            docker: parse_docker(&docker),
            conda: parse_conda(&get("conda")),
            python: python.get("path").map(|path| Python {
                path: path.first().cloned().unwrap_or_default(),
                version: python
                    .get("version")
                    .and_then(|v| v.first())
                    .and_then(|v| v.strip_prefix("Python "))
                    .map(|v| v.trim().to_owned()),
            }),
            nvidia: parse_nvidia(&nvidia),
            sudo_passwordless: match kv("sudo")
                .get("passwordless")
                .and_then(|v| v.first())
                .map(String::as_str)
            {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
            spark_submit: kv("spark").get("submit").and_then(|v| v.first().cloned()),
            head_node: hadoop::parse(&sections),
            decompressors: get("decompressors")
                .iter()
                .map(|l| l.trim())
                .filter(|l| ["xz", "gzip"].contains(l))
                .map(str::to_owned)
                .collect(),
            agent: moor_proto::Hello::find(&get("agent").join("\n")),
            claim: parse_claim(&get("claim")),
        })
    }
}

/// The claim file's JSON; a file moor cannot read counts as a foreign claim
/// so that it is never silently overwritten.
fn parse_claim(lines: &[&str]) -> Option<Claim> {
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(&text).unwrap_or_else(|_| Claim {
        workspace_id: "unknown".into(),
        workspace: format!(
            "unreadable claim file: {}",
            text.chars().take(80).collect::<String>()
        ),
        target: String::new(),
        claimed_at: String::new(),
    }))
}

/// `uname -m -r` prints `RELEASE MACHINE` (POSIX order: -r before -m).
fn uname_field(lines: &[&str], i: usize) -> String {
    let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
    words.get(i).copied().unwrap_or_default().to_owned()
}

/// `id` output: `uid=1000(moor) gid=1000(moor) groups=1000(moor),105(docker)`.
fn parse_id(lines: &[&str]) -> (String, Option<u32>, Vec<String>) {
    let line = lines.first().copied().unwrap_or_default();
    let mut user = String::new();
    let mut uid = None;
    let mut groups = Vec::new();
    for field in line.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "uid" => {
                let (num, name) = value.split_once('(').unwrap_or((value, ""));
                uid = num.parse().ok();
                user = name.trim_end_matches(')').to_owned();
            }
            "groups" => {
                groups = value
                    .split(',')
                    .filter_map(|g| {
                        g.split_once('(')
                            .map(|(_, n)| n.trim_end_matches(')').to_owned())
                    })
                    .collect();
            }
            _ => {}
        }
    }
    (user, uid, groups)
}

fn first(lines: &[&str]) -> Option<String> {
    lines
        .first()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

/// `key=value` lines; a key may repeat.
fn key_values(lines: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once('=') {
            map.entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    map
}

fn one(map: &BTreeMap<String, Vec<String>>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(|v| v.first())
        .filter(|v| !v.is_empty())
        .cloned()
}

fn parse_os_release(lines: &[&str]) -> OsRelease {
    let map = key_values(lines);
    let unquote = |key: &str| {
        one(&map, key)
            .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
            .unwrap_or_default()
    };
    OsRelease {
        id: unquote("ID").to_ascii_lowercase(),
        version_id: unquote("VERSION_ID"),
        pretty_name: unquote("PRETTY_NAME"),
    }
}

/// A `df -Pk` data line: `fs 1024-blocks used available capacity mount`.
fn parse_df(line: &str) -> Option<Disk> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 6 {
        return None;
    }
    Some(Disk {
        total_bytes: fields[1].parse::<u64>().ok()? * 1024,
        free_bytes: fields[3].parse::<u64>().ok()? * 1024,
        mount: fields[5..].join(" "),
    })
}

fn meminfo(lines: &[&str], key: &str) -> Option<u64> {
    let line = lines.iter().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// `ip -o addr show` lines (`2: eth0    inet 172.18.0.2/16 ...`), or the
/// addresses `hostname -I` prints. Loopback and link-local are left out.
fn parse_addresses(lines: &[&str]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let candidates: Vec<&str> = match words.iter().position(|w| *w == "inet" || *w == "inet6") {
            Some(i) => words.get(i + 1).into_iter().copied().collect(),
            None => words,
        };
        for c in candidates {
            let addr = c.split('/').next().unwrap_or(c);
            if let Ok(ip) = addr.parse::<IpAddr>() {
                if !ip.is_loopback() && !crate::net::is_link_local(&ip) && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

fn parse_docker(map: &BTreeMap<String, Vec<String>>) -> Docker {
    // `server_json` is the engine's /version answer, fetched with curl.
    let from_json = one(map, "server_json").and_then(|j| {
        serde_json::from_str::<serde_json::Value>(&j)
            .ok()?
            .get("Version")?
            .as_str()
            .map(str::to_owned)
    });
    let server = from_json.or_else(|| one(map, "server"));
    let ok = one(map, "cli_rc").as_deref() == Some("0");
    let looks_like_version = |v: &str| v.chars().next().is_some_and(|c| c.is_ascii_digit());
    let (server_version, error) = match server {
        Some(v) if ok && looks_like_version(&v) => (Some(v), None),
        Some(v) => (None, Some(v)),
        None => (None, None),
    };
    Docker {
        cli: one(map, "cli"),
        socket: one(map, "socket"),
        socket_group: one(map, "socket_group"),
        socket_access: one(map, "access").map(|a| a == "yes"),
        server_version,
        error,
    }
}

fn parse_conda(lines: &[&str]) -> Vec<Conda> {
    let map = key_values(lines);
    let mut out = Vec::new();
    for entry in map.get("path").into_iter().flatten() {
        if let Some((kind, path)) = entry.split_once(':') {
            out.push(Conda {
                kind: kind.to_owned(),
                path: path.to_owned(),
                version: None,
            });
        }
    }
    for entry in map.get("dir").into_iter().flatten() {
        let (dir, meta) = entry.split_once(':').unwrap_or((entry, ""));
        // conda-meta/conda-23.7.4-py311h06a4308_0.json
        let version = meta
            .strip_prefix("conda-")
            .and_then(|rest| rest.split('-').next())
            .map(str::to_owned);
        if let Some(existing) = out
            .iter_mut()
            .find(|c| c.path.starts_with(&format!("{dir}/")))
        {
            existing.version = existing.version.take().or(version);
        } else {
            out.push(Conda {
                kind: "conda".into(),
                path: dir.to_owned(),
                version,
            });
        }
    }
    out
}

fn parse_nvidia(map: &BTreeMap<String, Vec<String>>) -> Option<Nvidia> {
    let smi = one(map, "path")?;
    let ok = one(map, "rc").as_deref() == Some("0");
    let lines = map.get("gpu").cloned().unwrap_or_default();
    if !ok {
        return Some(Nvidia {
            smi,
            gpus: Vec::new(),
            error: Some(lines.join(" ")),
        });
    }
    let gpus = lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f.len() >= 3).then(|| Gpu {
                name: f[0].to_owned(),
                driver: f[1].to_owned(),
                memory: f[2].to_owned(),
            })
        })
        .collect();
    Some(Nvidia {
        smi,
        gpus,
        error: None,
    })
}

#[cfg(test)]
mod tests;
