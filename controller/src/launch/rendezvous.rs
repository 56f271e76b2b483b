//! Where a multi-node job's nodes meet: each node's address as the others
//! reach it (the one of its addresses on the network the most other nodes
//! share), the master (node 0) address and port, and the variables each
//! node's processes get for the distributed engine it uses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use moor_proto::NodeInfo;

use crate::plan::Distribution;

/// `10.0.3.7/24` → (address, prefix length).
fn parse(cidr: &str) -> Option<(Ipv4Addr, u32)> {
    let (ip, prefix) = cidr.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok().filter(|p| *p <= 32)?))
}

fn same_network(a: Ipv4Addr, b: Ipv4Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(a) & mask == u32::from(b) & mask
}

/// Each node's address as the other nodes reach it: of its addresses, the
/// one on a network with the most other nodes (the first on a tie); a node
/// that shares none with any other gets its first address, and one with no
/// address `fallback[i]` (the name moor connects to).
pub fn node_addresses(nodes: &[NodeInfo], fallback: &[String]) -> Vec<String> {
    let parsed: Vec<Vec<(Ipv4Addr, u32)>> = nodes
        .iter()
        .map(|n| n.addresses.iter().filter_map(|a| parse(a)).collect())
        .collect();
    parsed
        .iter()
        .enumerate()
        .map(|(i, mine)| {
            let shared = |(ip, prefix): &(Ipv4Addr, u32)| {
                parsed
                    .iter()
                    .enumerate()
                    .filter(|(j, theirs)| {
                        *j != i
                            && theirs
                                .iter()
                                .any(|(other, _)| same_network(*ip, *other, *prefix))
                    })
                    .count()
            };
            let best = mine
                .iter()
                .enumerate()
                .max_by_key(|(k, a)| (shared(a), std::cmp::Reverse(*k)))
                .map(|(_, (ip, _))| ip.to_string());
            best.unwrap_or_else(|| fallback.get(i).cloned().unwrap_or_default())
        })
        .collect()
}

/// The interface that carries `address` on the node `info` describes.
pub fn interface_of(info: &NodeInfo, address: &str) -> Option<String> {
    info.addresses
        .iter()
        .position(|a| a.split('/').next() == Some(address))
        .and_then(|i| info.interfaces.get(i).cloned())
}

/// The variables that make torch's gloo and NCCL talk over the interface
/// that carries node `rank`'s address: left to themselves they take the
/// host name's address, which a stock Ubuntu resolves to 127.0.1.1.
pub fn interface_variables(r: &Rendezvous, rank: usize) -> BTreeMap<String, String> {
    match r.interfaces.get(rank).cloned().flatten() {
        Some(name) => BTreeMap::from([
            ("GLOO_SOCKET_IFNAME".to_owned(), name.clone()),
            ("NCCL_SOCKET_IFNAME".to_owned(), name),
        ]),
        None => BTreeMap::new(),
    }
}

/// What every node of a job shares.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    /// The job's id.
    pub job_id: String,
    /// Each node's address (node 0 first).
    pub addresses: Vec<String>,
    /// Node 0's address as the others reach it.
    pub master_addr: String,
    /// A free port on node 0.
    pub master_port: u16,
    /// Each node's free port (TF_CONFIG's workers).
    pub ports: Vec<u16>,
    /// The interface carrying each node's address, when known.
    pub interfaces: Vec<Option<String>>,
}

/// The variables of node `rank` (besides the per-process ranks the agent
/// sets when it starts several processes).
pub fn node_variables(
    r: &Rendezvous,
    rank: usize,
    distribution: Option<&Distribution>,
) -> BTreeMap<String, String> {
    let nodes = r.addresses.len();
    let mut v = BTreeMap::from([
        ("MOOR_JOB_ID".to_owned(), r.job_id.clone()),
        ("MOOR_NODE_RANK".to_owned(), rank.to_string()),
        ("MOOR_NUM_NODES".to_owned(), nodes.to_string()),
        ("MOOR_NODE_IPS".to_owned(), r.addresses.join("\n")),
        ("MOOR_MASTER_ADDR".to_owned(), r.master_addr.clone()),
        ("MOOR_MASTER_PORT".to_owned(), r.master_port.to_string()),
    ]);
    match distribution {
        Some(Distribution::Pytorch { .. }) => {
            v.insert("MASTER_ADDR".into(), r.master_addr.clone());
            v.insert("MASTER_PORT".into(), r.master_port.to_string());
            v.insert("NODE_RANK".into(), rank.to_string());
        }
        Some(Distribution::Tensorflow { .. }) => {
            let workers: Vec<String> = r
                .addresses
                .iter()
                .zip(&r.ports)
                .map(|(a, p)| format!("{a}:{p}"))
                .collect();
            let config = serde_json::json!({
                "cluster": { "worker": workers },
                "task": { "type": "worker", "index": rank },
            });
            v.insert("TF_CONFIG".into(), config.to_string());
        }
        Some(Distribution::Mpi { .. }) | None => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addrs: &[&str]) -> NodeInfo {
        NodeInfo {
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            free_port: 1,
            link_port: 2,
            interfaces: Vec::new(),
            hostname: String::new(),
            host_keys: Vec::new(),
            runs_dir: String::new(),
        }
    }

    #[test]
    fn a_node_is_reached_on_the_network_it_shares_with_the_others() {
        // Node 0 is on a management network alone and on the job's network.
        let nodes = [
            node(&["192.168.9.4/24", "10.7.0.2/16"]),
            node(&["10.7.1.9/16"]),
            node(&["172.17.0.3/16", "10.7.2.1/16"]),
        ];
        let fallback = vec!["h0".into(), "h1".into(), "h2".into()];
        assert_eq!(
            node_addresses(&nodes, &fallback),
            ["10.7.0.2", "10.7.1.9", "10.7.2.1"]
        );
        // Nothing shared: the first address; none at all: the host name.
        let nodes = [node(&["10.1.0.1/24", "10.2.0.1/24"]), node(&[])];
        assert_eq!(node_addresses(&nodes, &fallback), ["10.1.0.1", "h1"]);
        // Each address's interface.
        let mut two = node(&["192.168.9.4/24", "10.7.0.2/16"]);
        two.interfaces = vec!["eth0".into(), "eth1".into()];
        assert_eq!(interface_of(&two, "10.7.0.2").as_deref(), Some("eth1"));
        assert_eq!(interface_of(&two, "10.7.0.3"), None);
    }

    #[test]
    fn each_engine_gets_its_own_variables() {
        let r = Rendezvous {
            job_id: "j1".into(),
            addresses: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            master_addr: "10.0.0.1".into(),
            master_port: 29500,
            ports: vec![2222, 3333],
            interfaces: vec![Some("eth1".into()), None],
        };
        assert_eq!(interface_variables(&r, 0)["GLOO_SOCKET_IFNAME"], "eth1");
        assert_eq!(interface_variables(&r, 0)["NCCL_SOCKET_IFNAME"], "eth1");
        assert!(interface_variables(&r, 1).is_empty());
        let plain = node_variables(&r, 1, None);
        assert_eq!(plain["MOOR_NODE_RANK"], "1");
        assert_eq!(plain["MOOR_NUM_NODES"], "2");
        assert_eq!(plain["MOOR_NODE_IPS"], "10.0.0.1\n10.0.0.2");
        assert_eq!(plain["MOOR_MASTER_ADDR"], "10.0.0.1");
        assert!(!plain.contains_key("MASTER_ADDR"));
        let torch = node_variables(
            &r,
            1,
            Some(&Distribution::Pytorch {
                processes_per_node: 2,
            }),
        );
        assert_eq!(torch["MASTER_PORT"], "29500");
        assert_eq!(torch["NODE_RANK"], "1");
        let tf = node_variables(
            &r,
            1,
            Some(&Distribution::Tensorflow {
                workers: 2,
                parameter_servers: 0,
            }),
        );
        let config: serde_json::Value = serde_json::from_str(&tf["TF_CONFIG"]).unwrap();
        assert_eq!(config["cluster"]["worker"][1], "10.0.0.2:3333");
        assert_eq!(config["task"]["index"], 1);
    }
}
