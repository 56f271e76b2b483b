//! What a multi-node job needs to know of this host before it starts: its
//! IPv4 addresses (the controller picks the one the other nodes share a
//! network with as the master address) and a free TCP port for the
//! rendezvous.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

use moor_proto::NodeInfo;

/// This host's addresses, a free port and its name.
pub fn info() -> io::Result<NodeInfo> {
    let mut addresses = Vec::new();
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
        }
    }
    // Bound on every interface and released: free when asked (the job binds
    // it moments later; a clash fails the job's rendezvous loudly).
    let free_port = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?
        .local_addr()?
        .port();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(NodeInfo {
        addresses,
        free_port,
        hostname,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_host_has_a_free_port_and_no_loopback_address() {
        let info = super::info().unwrap();
        assert!(info.free_port > 0);
        assert!(info.addresses.iter().all(|a| !a.starts_with("127.")));
        assert!(info.addresses.iter().all(|a| a.contains('/')));
    }
}
