//! What a multi-node job needs to know of this host before it starts: its
//! IPv4 addresses and their interfaces (the controller picks the one the
//! other nodes share a network with as the master address, and tells each
//! node's processes the interface that carries its own) and a free TCP
//! port for the rendezvous.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

use moor_proto::NodeInfo;

/// This host's addresses, a free port and its name.
pub fn info() -> io::Result<NodeInfo> {
    let mut addresses = Vec::new();
    let mut interfaces = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let (Some(addr), Some(mask)) = (
            ifa.address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in().copied()),
            ifa.netmask
                .as_ref()
                .and_then(|a| a.as_sockaddr_in().copied()),
        ) else {
            continue;
        };
        let ip = addr.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            continue;
        }
        let prefix = u32::from(mask.ip()).count_ones();
        let text = format!("{ip}/{prefix}");
        if !addresses.contains(&text) {
            addresses.push(text);
            interfaces.push(ifa.interface_name.clone());
        }
    }
    // Bound on every interface and released: free when asked (the job binds
    // it moments later; a clash fails the job's rendezvous loudly).
    // Both bound at once, so they differ.
    let first = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let second = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let free_port = first.local_addr()?.port();
    let link_port = second.local_addr()?.port();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(NodeInfo {
        addresses,
        interfaces,
        free_port,
        link_port,
        hostname,
        host_keys: host_keys(),
        runs_dir: crate::runs::Runs::default_root().display().to_string(),
    })
}

/// The host's SSH public keys, `TYPE BASE64` (comments dropped).
fn host_keys() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/etc/ssh") else {
        return Vec::new();
    };
    let mut keys: Vec<String> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("ssh_host_") && name.ends_with("_key.pub")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| {
            let mut parts = text.split_whitespace();
            Some(format!("{} {}", parts.next()?, parts.next()?))
        })
        .collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_host_has_a_free_port_and_no_loopback_address() {
        let info = super::info().unwrap();
        assert!(info.free_port > 0);
        assert!(info.link_port > 0 && info.link_port != info.free_port);
        assert!(info.addresses.iter().all(|a| !a.starts_with("127.")));
        assert!(info.addresses.iter().all(|a| a.contains('/')));
    }
}
