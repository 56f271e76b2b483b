//! The validate checks: each turns facts into a status, a detail and, when it
//! is not a pass, a remedy. The SSH checks come from the connection itself
//! (see `cmd::validate`); the rest from the probe's [`Facts`].

use std::net::IpAddr;

mod check;
mod head_node;

pub use check::{Check, Status};
pub use head_node::ssh_endpoint;

use crate::probe::Facts;
use crate::target_kind::TargetKind;

const GIB: u64 = 1 << 30;

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
        checks.push(head_node::spark_submit(facts, &head));
        checks.push(head_node::yarn_resourcemanager(&head));
        checks.push(head_node::hdfs_default_fs(&head));
        checks.push(head_node::python_cluster(facts, &head));
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
        "x86_64" | "amd64" | "aarch64" | "arm64" => {
            Check::pass(ID, format!("{} (kernel {})", f.arch, f.kernel))
        }
        other => Check::fail(
            ID,
            format!("{other} is not supported"),
            "use an x86_64 or aarch64 (arm64) machine: moor's agents are built for those",
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

/// Bytes in binary units with one decimal: `1.5 GiB`.
fn bytes(n: u64) -> String {
    moor_proto::human_bytes(n)
}

#[cfg(test)]
mod tests;
