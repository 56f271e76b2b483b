//! An MPI job's roles: a key made for the job alone (never stored), node 0
//! as the launcher with the other nodes' host keys as moor pinned them when
//! it attached them (the key each agent reports must match that pin, so no
//! host key is trusted on first use), and the other nodes as peers that
//! accept the key only from node 0's address while the job lasts.

use moor_proto::{MpiHost, MpiRole, NodeInfo};
use russh::keys::ssh_key;

use super::rendezvous::Rendezvous;
use crate::error::{Error, Result};
use crate::ssh::same_fingerprint;
use crate::store::Target;

/// Every node's role, before the peers' runs exist.
pub struct Roles {
    hosts: Vec<MpiHost>,
    slots: u32,
    private_key: String,
    public_key: String,
    known_hosts: String,
    from: String,
}

impl Roles {
    /// Node `i`'s (a peer's) role.
    pub fn peer(&self, _i: usize) -> MpiRole {
        MpiRole::Peer {
            public_key: self.public_key.clone(),
            from: self.from.clone(),
        }
    }

    /// Node 0's role, once the peers' runs (in node order) are known.
    pub fn launcher(&self, peer_runs: &[String]) -> MpiRole {
        let mut hosts = self.hosts.clone();
        for (host, run) in hosts.iter_mut().skip(1).zip(peer_runs) {
            host.run_id = run.clone();
        }
        MpiRole::Launcher {
            hosts,
            slots: self.slots,
            private_key: self.private_key.clone(),
            known_hosts: self.known_hosts.clone(),
        }
    }
}

/// The roles of a job over `targets` (node 0 first).
pub fn roles(
    r: &Rendezvous,
    infos: &[NodeInfo],
    targets: &[Target],
    job_id: &str,
    slots: u32,
) -> Result<Roles> {
    let mut known_hosts = String::new();
    for (i, (info, target)) in infos.iter().zip(targets).enumerate().skip(1) {
        let pinned = info.host_keys.iter().find(|line| {
            ssh_key::PublicKey::from_openssh(line).is_ok_and(|key| {
                same_fingerprint(
                    &key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
                    &target.host_key_fingerprint,
                )
            })
        });
        let Some(key) = pinned else {
            return Err(Error::usage(
                format!(
                    "node {i} ({}) reports no SSH host key matching the one moor pinned for it ({}), so node 0 cannot verify it",
                    target.name, target.host_key_fingerprint
                ),
                format!("check the host; `moor validate {}` compares its key with the pinned one", target.name),
            ));
        };
        known_hosts.push_str(&format!("{} {key}\n", r.addresses[i]));
    }
    let mut seed = [0u8; 32];
    crate::random::fill(&mut seed).map_err(|cause| Error::Io {
        what: "cannot make the MPI job's key",
        path: "/dev/urandom".into(),
        cause,
    })?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    let mut key = ssh_key::PrivateKey::from(pair);
    key.set_comment(format!("moor-mpi-job:{job_id}"));
    let text = |e: ssh_key::Error| Error::Io {
        what: "cannot encode the MPI job's key",
        path: job_id.into(),
        cause: std::io::Error::other(e),
    };
    let private_key = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(text)?
        .to_string();
    let public_key = key.public_key().to_openssh().map_err(text)?;
    Ok(Roles {
        hosts: r
            .addresses
            .iter()
            .zip(targets)
            .zip(infos)
            .map(|((addr, t), info)| MpiHost {
                addr: addr.clone(),
                user: t.user.clone(),
                run_id: String::new(),
                runs_dir: info.runs_dir.clone(),
            })
            .collect(),
        slots,
        private_key,
        public_key,
        known_hosts,
        from: r.addresses[0].clone(),
    })
}
