//! The validate checks: each turns facts into a status, a detail and, when it
//! is not a pass, a remedy. The SSH checks come from the connection itself
//! (see `cmd::validate`); the rest from the probe's [`Facts`].

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

use crate::probe::{Facts, HeadNode, YarnNode};
use crate::target_kind::TargetKind;

const GIB: u64 = 1 << 30;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but worth a look.
    Warn,
    /// Blocks using the host.
    Fail,
    /// Does not apply.
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Check {
    /// Stable id, e.g. `disk.free` (borrowed when made here, owned when read
    /// back from the workspace).
    pub id: Cow<'static, str>,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (warn and fail only).
    pub remedy: Option<String>,
}

impl Check {
    fn new(
        id: &'static str,
        status: Status,
        detail: impl Into<String>,
        remedy: Option<String>,
    ) -> Self {
        Check {
            id: Cow::Borrowed(id),
            status,
            detail: detail.into(),
            remedy,
        }
    }

    /// A passed check.
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Self {
        Check::new(id, Status::Pass, detail, None)
    }

    /// A skipped check.
    pub fn skip(id: &'static str, detail: impl Into<String>) -> Self {
        Check::new(id, Status::Skip, detail, None)
    }

    /// A warning, with its remedy.
    pub fn warn(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Check::new(id, Status::Warn, detail, Some(remedy.into()))
    }

    /// A failure, with its remedy.
    pub fn fail(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Check::new(id, Status::Fail, detail, Some(remedy.into()))
    }
}

/// Settings that change verdicts.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// VM or head node.
    pub kind: TargetKind,
    /// A private address fails instead of warning.
    pub require_public_ip: bool,
}

/// Runs every probe-based check.
pub fn evaluate(facts: &Facts, peer: IpAddr, options: Options) -> Vec<Check> {
    let mut checks = vec![
        os_supported(facts),
        os_arch(facts),
        public_ip(facts, peer, options.require_public_ip),
        disk_free(facts),
        memory(facts),
        cpu(facts),
    ];
    checks.extend(docker(facts));
    checks.push(conda(facts));
    checks.push(python(facts));
    checks.push(gpu(facts));
    checks.push(sudo(facts));
    if options.kind == TargetKind::Hdinsight {
        let head = facts.head_node.clone().unwrap_or_default();
        checks.push(spark_submit(facts, &head));
        checks.push(yarn_resourcemanager(&head));
        checks.push(hdfs_default_fs(&head));
        checks.push(python_cluster(facts, &head));
    }
    checks
}

/// Supported: Ubuntu 20.04, 22.04, 24.04; Debian 11, 12.
fn os_supported(f: &Facts) -> Check {
    const ID: &str = "os.supported";
    let name = if f.os.pretty_name.is_empty() {
        format!("{} {}", f.os.id, f.os.version_id)
    } else {
        f.os.pretty_name.clone()
    };
    let major = f.os.version_id.split('.').next().unwrap_or("");
    let supported = match f.os.id.as_str() {
        "ubuntu" => ["20.04", "22.04", "24.04"].contains(&f.os.version_id.as_str()),
        "debian" => ["11", "12"].contains(&major),
        _ => false,
    };
    if supported {
        Check::pass(ID, name)
    } else if f.os.id.is_empty() {
        Check::fail(
            ID,
            "no /etc/os-release: cannot tell the operating system",
            "use Ubuntu 20.04, 22.04 or 24.04, or Debian 11 or 12",
        )
    } else {
        Check::fail(
            ID,
            format!("{name} is not supported"),
            "use Ubuntu 20.04, 22.04 or 24.04, or Debian 11 or 12 (an Azure Data Science VM on Ubuntu works)",
        )
    }
}

fn os_arch(f: &Facts) -> Check {
    const ID: &str = "os.arch";
    match f.arch.as_str() {
        "x86_64" | "amd64" => Check::pass(ID, format!("{} (kernel {})", f.arch, f.kernel)),
        other => Check::fail(
            ID,
            format!("{other} is not supported"),
            "use an x86_64 machine: moor's agent is built for x86_64 Linux",
        ),
    }
}

fn public_ip(f: &Facts, peer: IpAddr, required: bool) -> Check {
    const ID: &str = "network.public_ip";
    if crate::net::is_public(&peer) {
        return Check::pass(ID, format!("reached at public address {peer}"));
    }
    if let Some(public) = f.addresses.iter().find(|a| crate::net::is_public(a)) {
        return Check::pass(ID, format!("public address {public} (reached at {peer})"));
    }
    let detail = format!("no public address: reached at private address {peer}");
    let remedy = "give the machine a public IP, or reach it over a VPN (pass --require-public-ip only where a public address is a must)";
    if required {
        Check::fail(ID, detail, "give the machine a public IP address")
    } else {
        Check::warn(ID, detail, remedy)
    }
}

fn disk_free(f: &Facts) -> Check {
    const ID: &str = "disk.free";
    let Some(disk) = &f.home_disk else {
        return Check::warn(
            ID,
            format!("could not read free space of {}", f.home),
            "check that `df` works on the host",
        );
    };
    let detail = format!(
        "{} free of {} in {} ({})",
        bytes(disk.free_bytes),
        bytes(disk.total_bytes),
        f.home,
        disk.mount
    );
    let remedy = format!("free space on {} or grow the disk", disk.mount);
    if disk.free_bytes < 2 * GIB {
        Check::fail(ID, format!("{detail}: under 2 GiB"), remedy)
    } else if disk.free_bytes < 10 * GIB {
        Check::warn(ID, format!("{detail}: under 10 GiB"), remedy)
    } else {
        Check::pass(ID, detail)
    }
}

fn memory(f: &Facts) -> Check {
    const ID: &str = "memory";
    match f.memory_total_bytes {
        Some(total) if total < 2 * GIB => Check::warn(
            ID,
            format!("{} total: under 2 GiB", bytes(total)),
            "training needs memory: use a machine with at least 2 GiB",
        ),
        Some(total) => Check::pass(
            ID,
            match f.memory_available_bytes {
                Some(avail) => format!("{} total, {} available", bytes(total), bytes(avail)),
                None => format!("{} total", bytes(total)),
            },
        ),
        None => Check::warn(
            ID,
            "could not read /proc/meminfo",
            "check that /proc is mounted",
        ),
    }
}

fn cpu(f: &Facts) -> Check {
    const ID: &str = "cpu";
    let model = f.cpu_model.as_deref().unwrap_or("unknown model");
    match f.cpus {
        Some(n) => Check::pass(
            ID,
            format!("{n} CPU{} ({model})", if n == 1 { "" } else { "s" }),
        ),
        None => Check::warn(
            ID,
            "could not count CPUs",
            "check that nproc or /proc/cpuinfo works",
        ),
    }
}

fn docker(f: &Facts) -> Vec<Check> {
    const ENGINE: &str = "docker.engine";
    const ACCESS: &str = "docker.access";
    let d = &f.docker;
    if d.cli.is_none() && d.socket.is_none() {
        return vec![
            Check::warn(
                ENGINE,
                "no Docker engine (no docker command, no /var/run/docker.sock)",
                "install Docker Engine (sudo apt-get install docker.io) to use Docker environments; conda and pip environments work without it",
            ),
            Check::skip(ACCESS, "no Docker engine"),
        ];
    }
    let engine = match (&d.server_version, &d.cli, &d.socket) {
        (Some(v), _, _) => Check::pass(ENGINE, format!("Docker {v}")),
        (None, _, Some(sock)) => Check::pass(ENGINE, format!("Docker engine socket at {sock}")),
        (None, Some(cli), None) => Check::warn(
            ENGINE,
            format!("docker command at {cli}, but no engine socket"),
            "start the engine: sudo systemctl start docker",
        ),
        (None, None, None) => unreachable!("handled above"),
    };
    // stat prints UNKNOWN for a gid with no name; `docker` is what the
    // Docker packages create.
    let group = d
        .socket_group
        .as_deref()
        .filter(|g| *g != "UNKNOWN")
        .unwrap_or("docker");
    let can_use = d.server_version.is_some() || d.socket_access == Some(true);
    let access = if can_use {
        Check::pass(ACCESS, format!("{} can use Docker without sudo", f.user))
    } else if d.socket.is_none() {
        Check::warn(
            ACCESS,
            d.error
                .clone()
                .unwrap_or_else(|| "the engine does not answer".into()),
            "start the engine: sudo systemctl start docker",
        )
    } else {
        Check::warn(
            ACCESS,
            format!(
                "{} cannot use {} (not in group {group})",
                f.user,
                d.socket.as_deref().unwrap_or("the socket")
            ),
            format!(
                "add the user to the group: sudo usermod -aG {group} {}, then log in again",
                f.user
            ),
        )
    };
    vec![engine, access]
}

fn conda(f: &Facts) -> Check {
    const ID: &str = "conda.present";
    match f.conda.first() {
        Some(c) => Check::pass(
            ID,
            format!(
                "{} at {}{}",
                c.kind,
                c.path,
                c.version
                    .as_ref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default()
            ),
        ),
        None => Check::skip(
            ID,
            "no conda, mamba or micromamba (not needed: moor builds conda environments itself)",
        ),
    }
}

fn python(f: &Facts) -> Check {
    const ID: &str = "python.present";
    match &f.python {
        Some(p) => Check::pass(
            ID,
            format!(
                "{}{}",
                p.path,
                p.version
                    .as_ref()
                    .map(|v| format!(" (Python {v})"))
                    .unwrap_or_default()
            ),
        ),
        None => Check::warn(
            ID,
            "no python3 or python on PATH",
            "install Python 3 (sudo apt-get install python3 python3-venv) for pip environments",
        ),
    }
}

fn gpu(f: &Facts) -> Check {
    const ID: &str = "gpu.nvidia";
    match &f.nvidia {
        None => Check::skip(ID, "no nvidia-smi: no NVIDIA GPU driver"),
        Some(n) if n.error.is_some() || n.gpus.is_empty() => Check::warn(
            ID,
            format!(
                "nvidia-smi failed: {}",
                n.error.as_deref().unwrap_or("no GPUs listed")
            ),
            "install or reload the NVIDIA driver (sudo ubuntu-drivers install), then reboot",
        ),
        Some(n) => {
            let names: Vec<&str> = n.gpus.iter().map(|g| g.name.as_str()).collect();
            Check::pass(
                ID,
                format!(
                    "{} GPU{}: {} (driver {})",
                    n.gpus.len(),
                    if n.gpus.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    n.gpus[0].driver
                ),
            )
        }
    }
}

fn sudo(f: &Facts) -> Check {
    const ID: &str = "sudo.passwordless";
    match f.sudo_passwordless {
        Some(true) => Check::pass(ID, "passwordless sudo (moor does not need it)"),
        Some(false) => Check::skip(ID, "sudo asks for a password (moor does not need sudo)"),
        None => Check::skip(ID, "no sudo (moor does not need it)"),
    }
}

fn spark_submit(f: &Facts, head: &HeadNode) -> Check {
    const ID: &str = "spark.submit";
    match (&f.spark_submit, &head.spark_version) {
        (Some(path), Some(version)) => Check::pass(ID, format!("Spark {version} ({path})")),
        (Some(path), None) => Check::warn(
            ID,
            format!("spark-submit at {path} did not tell its version"),
            format!("run `{path} --version` on the head node to see what is wrong (JAVA_HOME, SPARK_HOME)"),
        ),
        (None, _) => Check::fail(
            ID,
            "no spark-submit on PATH, in /usr/hdp/current/spark2-client or $SPARK_HOME",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net), or install Spark and put spark-submit on PATH",
        ),
    }
}

/// YARN answers and has NodeManagers to run on.
fn yarn_resourcemanager(head: &HeadNode) -> Check {
    const ID: &str = "yarn.resourcemanager";
    let Some(yarn) = &head.yarn else {
        return Check::fail(
            ID,
            "no yarn command (PATH, /usr/hdp/current/hadoop-yarn-client/bin): not a YARN head node",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net); for Spark without YARN attach the machine with `moor attach vm` and run with --spark-master 'local[*]'",
        );
    };
    let rm = yarn
        .resource_manager
        .as_deref()
        .map(|a| format!(" at {a}"))
        .unwrap_or_default();
    if yarn.total.is_none() {
        // Hadoop's IPC client logs each retry: "Retrying connect to server:
        // HOST/ADDR:PORT. Already tried N time(s); retry policy is ...".
        let retrying = yarn.last_line.as_deref().and_then(|l| {
            let at = l.find("Retrying connect to server: ")?;
            let rest = &l[at + "Retrying connect to server: ".len()..];
            let server = rest.split(". Already").next().unwrap_or(rest);
            Some(server.trim_end_matches('.').to_owned())
        });
        let why = match (yarn.exit, &yarn.last_line, retrying) {
            (Some(124), _, Some(server)) => {
                format!("no answer within 15 s (still retrying {server})")
            }
            (Some(124), _, None) => "no answer within 15 s".to_owned(),
            (_, Some(line), _) => line.clone(),
            (exit, None, _) => format!("yarn exited with {exit:?} and said nothing"),
        };
        return Check::fail(
            ID,
            format!("the ResourceManager{rm} does not answer: {why}"),
            "start YARN's ResourceManager (Ambari: https://<cluster>.azurehdinsight.net > YARN > Restart), then validate again",
        );
    }
    let running = yarn.running();
    let unhealthy = yarn.unhealthy();
    let listed = |nodes: &[&YarnNode]| {
        nodes
            .iter()
            .map(|n| format!("{} {}", n.id.split('.').next().unwrap_or(&n.id), n.state))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if running == 0 {
        let all: Vec<&YarnNode> = yarn.nodes.iter().collect();
        return Check::fail(
            ID,
            format!(
                "no NodeManager is RUNNING ({} listed{}{})",
                yarn.nodes.len(),
                if all.is_empty() { "" } else { ": " },
                listed(&all)
            ),
            "restart the NodeManagers (Ambari > YARN), or scale the cluster's worker nodes up",
        );
    }
    if !unhealthy.is_empty() {
        return Check::warn(
            ID,
            format!(
                "{running} NodeManagers RUNNING, {} not: {} (ResourceManager{rm})",
                unhealthy.len(),
                listed(&unhealthy)
            ),
            "see why with `yarn node -status NODE-ID` on the head node (often a full local disk); jobs run on the others meanwhile",
        );
    }
    Check::pass(
        ID,
        format!("{running} NodeManagers RUNNING (ResourceManager{rm})"),
    )
}

/// The cluster's default file system: where jobs read and write paths.
fn hdfs_default_fs(head: &HeadNode) -> Check {
    const ID: &str = "hdfs.default_fs";
    let Some(hdfs) = &head.hdfs else {
        return Check::fail(
            ID,
            "no hdfs command (PATH, /usr/hdp/current/hadoop-hdfs-client/bin): not a Hadoop head node",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net); without Hadoop, jobs read only the snapshot and local paths",
        );
    };
    let Some(fs) = &hdfs.default_fs else {
        return Check::fail(
            ID,
            format!(
                "`hdfs getconf -confKey fs.defaultFS` failed: {}",
                hdfs.last_line.as_deref().unwrap_or("no output")
            ),
            "check core-site.xml on the head node (Ambari > HDFS > Configs), then validate again",
        );
    };
    let scheme = fs.split("://").next().unwrap_or_default();
    let store = match scheme {
        "wasb" | "wasbs" => "Azure Blob Storage",
        "abfs" | "abfss" => "Azure Data Lake Storage Gen2",
        "adl" => "Azure Data Lake Storage Gen1",
        "hdfs" => "HDFS",
        _ => {
            return Check::warn(
                ID,
                format!("fs.defaultFS is {fs}: not storage the cluster's nodes share"),
                "set fs.defaultFS in core-site.xml to the cluster's storage (wasbs://, abfs:// or hdfs://)",
            )
        }
    };
    Check::pass(ID, format!("{fs} ({store})"))
}

/// The Python Spark runs jobs with.
fn python_cluster(f: &Facts, head: &HeadNode) -> Check {
    const ID: &str = "python.cluster";
    let used = head.pyspark_python.as_deref();
    match head.cluster_pythons.first() {
        Some(p) => Check::pass(
            ID,
            format!(
                "{} (Python {}){}",
                p.path,
                p.version.as_deref().unwrap_or("?"),
                used.map(|u| format!("; spark-env.sh sets PYSPARK_PYTHON={u}"))
                    .unwrap_or_default()
            ),
        ),
        None => Check::warn(
            ID,
            format!(
                "no cluster Anaconda (HDInsight keeps it in /usr/bin/anaconda); PySpark uses {}",
                used.map(str::to_owned).unwrap_or_else(|| match &f.python {
                    Some(p) => format!("{} {}", p.path, p.version.as_deref().unwrap_or("")).trim_end().to_owned(),
                    None => "no Python at all".to_owned(),
                })
            ),
            "make the Python your jobs need exist on every node and point PYSPARK_PYTHON at it (spark-env.sh, or --spark-conf spark.pyspark.python=PATH)",
        ),
    }
}

/// On HDInsight the SSH endpoint is `<cluster>-ssh.azurehdinsight.net`: it
/// follows the active head node. Another host works until that node fails.
pub fn ssh_endpoint(host: &str, cluster: Option<&str>) -> Check {
    const ID: &str = "ssh.endpoint";
    let Some(cluster) = cluster else {
        return Check::skip(
            ID,
            format!("{host} (no cluster name or resource id to compare with)"),
        );
    };
    let expected = crate::resource_id::hdinsight_ssh_host(cluster);
    if host.eq_ignore_ascii_case(&expected) {
        Check::pass(ID, format!("{host}: cluster {cluster}'s SSH endpoint"))
    } else {
        Check::warn(
            ID,
            format!("{host} is not cluster {cluster}'s SSH endpoint {expected}"),
            format!("attach with --host {expected} (or without --host): it follows the active head node after a failover"),
        )
    }
}

/// Bytes in binary units with one decimal: `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
