//! Several test hosts on one private network, attached in one moor sandbox
//! as `node0`, `node1`, ...: the nodes of multi-node job tests.

use std::sync::Arc;

use crate::{assert_exit, HostSpec, KeyPair, Keys, Moor, Network, TestHost};

/// Hosts attached as `node0`..`nodeN-1`, all trusting one key.
pub struct Cluster {
    /// The hosts, node 0 first.
    pub hosts: Vec<TestHost>,
    /// The sandbox they are attached in.
    pub moor: Moor,
    /// The key they trust.
    pub key: KeyPair,
    /// Their network.
    pub network: Arc<Network>,
    _keys: Keys,
}

impl Cluster {
    /// Starts `n` hosts from `spec` on a new network and attaches them.
    pub fn new(bin: &str, n: usize, spec: HostSpec) -> Cluster {
        Self::of(bin, &vec![spec; n])
    }

    /// Starts a host from each spec (node 0 first) and attaches them.
    pub fn of(bin: &str, specs: &[HostSpec]) -> Cluster {
        let n = specs.len();
        let keys = Keys::new();
        let key = keys.generate("id_ed25519", "ed25519", None);
        let network = Network::create();
        let hosts: Vec<TestHost> = std::thread::scope(|s| {
            let started: Vec<_> = specs
                .iter()
                .map(|spec| {
                    let mut spec = spec.clone();
                    spec.authorized_keys.push(key.public.clone());
                    let network = &network;
                    s.spawn(move || TestHost::start_on(network, &spec))
                })
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let moor = Moor::new(bin);
        let cluster = Cluster {
            hosts,
            moor,
            key,
            network,
            _keys: keys,
        };
        for i in 0..n {
            let name = format!("node{i}");
            let host = &cluster.hosts[i];
            let key = cluster.key.private.to_str().unwrap();
            let mut args = vec!["attach", "vm", name.as_str(), "--json"];
            args.extend(host.login());
            args.extend(["--key", key, "--accept-new-host-key"]);
            let out = cluster.moor.run(&args);
            assert_exit(&out, 0);
        }
        cluster
    }
}
