//! Fleets from an inventory (SkyPilot's `ssh_node_pools.yaml`) against real
//! test hosts: validated and attached in one moor process, host keys trusted
//! from a `--known-hosts` file (and recorded, so later commands need no
//! flag), a per-host password named by a variable, `--user` for hosts the
//! file gives no user, each pool a moor pool
//! that runs a job, an unreachable host failing alone with the worst exit
//! code, a file that names another key refused for that host only.

use moor_tests::{assert_exit, docker_or_skip, HostSpec, Keys, Moor, Network, TestHost};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");
const PASSWORD: &str = "fleet-Pw-7731";

fn rows(out: &moor_tests::Output) -> Vec<serde_json::Value> {
    out.json().as_array().expect("a JSON array").clone()
}

fn row<'a>(rows: &'a [serde_json::Value], target: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no row {target} in {rows:?}"))
}

#[test]
fn an_inventory_is_validated_and_attached_in_one_process_with_pools_and_known_hosts() {
    if !docker_or_skip() {
        return;
    }
    let keys = Keys::new();
    let key = keys.generate("id_ed25519", "ed25519", None);
    let network = Network::create();
    let mut specs = vec![
        HostSpec {
            authorized_keys: vec![key.public.clone()],
            ..HostSpec::default()
        };
        3
    ];
    specs.push(HostSpec {
        password: Some(PASSWORD.into()),
        ..HostSpec::default()
    });
    let hosts: Vec<TestHost> = std::thread::scope(|s| {
        let started: Vec<_> = specs
            .iter()
            .map(|spec| s.spawn(|| TestHost::start_on(&network, spec)))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let dir = tempfile::tempdir().unwrap();
    // The fleet's keys, as its owners would hand them over (ssh-keyscan's format).
    let known_hosts = dir.path().join("fleet_known_hosts");
    let lines: String = hosts
        .iter()
        .map(|h| format!("{} {}\n", h.ip, h.ed25519_public_key()))
        .collect();
    std::fs::write(&known_hosts, lines).unwrap();
    let inventory = dir.path().join("ssh_node_pools.yaml");
    std::fs::write(
        &inventory,
        format!(
            "lab:\n  hosts:\n    - {}\n    - {}\n    - ip: {}\n      name: big-box\n  identity_file: {}\n\
             pw:\n  hosts: [{}]\n  user: moor\n  password: $FLEET_PW\n\
             gone:\n  hosts: [192.0.2.1]\n  user: moor\n  identity_file: {}\n",
            hosts[0].ip,
            hosts[1].ip,
            hosts[2].ip,
            key.private.display(),
            hosts[3].ip,
            key.private.display(),
        ),
    )
    .unwrap();
    let inv = inventory.to_str().unwrap();
    let kh = known_hosts.to_str().unwrap();
    let mut moor = Moor::new(MOOR);
    moor.env("FLEET_PW", PASSWORD);

    // Without the keys: every host's key is unknown (5), the unreachable
    // one is 6, the worst; nothing is recorded.
    let out = moor.run(&[
        "validate",
        "--inventory",
        inv,
        "--json",
        "--connect-timeout",
        "3",
        "--user",
        "moor",
    ]);
    assert_exit(&out, 6);
    let r = rows(&out);
    let targets: Vec<&str> = r.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["lab-1", "lab-2", "big-box", "pw-1", "gone-1"]);
    assert_eq!(row(&r, "lab-1")["exit_code"], 5, "{r:?}");
    assert_eq!(row(&r, "gone-1")["exit_code"], 6, "{r:?}");
    assert!(
        out.stderr.contains("error: gone-1 (192.0.2.1):"),
        "{}",
        out.stderr
    );

    // With them: the four attach at once, each pool is a moor pool.
    let out = moor.run(&[
        "attach",
        "--inventory",
        inv,
        "--known-hosts",
        kh,
        "--json",
        "--connect-timeout",
        "3",
        "--user",
        "moor",
    ]);
    assert_exit(&out, 6);
    let r = rows(&out);
    for t in ["lab-1", "lab-2", "big-box", "pw-1"] {
        let row = row(&r, t);
        assert_eq!(row["ok"], true, "{t}: {row}");
        assert_eq!(row["result"]["agent"]["status"], "installed", "{row}");
        assert_eq!(
            row["result"]["target"]["host_key_fingerprint"]
                .as_str()
                .unwrap(),
            hosts[["lab-1", "lab-2", "big-box", "pw-1"]
                .iter()
                .position(|x| x == &t)
                .unwrap()]
            .ed25519_fingerprint()
        );
    }
    assert_eq!(row(&r, "pw-1")["result"]["enrolled_key"], true);
    assert_eq!(row(&r, "gone-1")["ok"], false);
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    let pool = moor.run(&["pool", "show", "lab", "--json"]);
    assert_exit(&pool, 0);
    assert_eq!(
        pool.json()["targets"],
        serde_json::json!(["lab-1", "lab-2", "big-box"])
    );
    assert_exit(&moor.run(&["pool", "show", "pw"]), 0);
    assert_exit(&moor.run(&["pool", "show", "gone"]), 2);

    // The keys are recorded: later commands need no flag, and no password
    // (the workspace key was enrolled on the password host).
    moor.env("FLEET_PW", "");
    let out = moor.run(&["validate", "lab-1", "lab-2", "big-box", "pw-1", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(rows(&out).len(), 4);
    assert_exit(&moor.run(&["status"]), 0);
    let src =
        moor_tests::source_dir(&[("rank.sh", "echo node $MOOR_NODE_RANK of $MOOR_NUM_NODES\n")]);
    let out = moor.run(&[
        "run",
        "--pool",
        "lab",
        "--source-dir",
        src.path().to_str().unwrap(),
        "--",
        "sh",
        "rank.sh",
    ]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("node 2 of 3"), "{}", out.stdout);

    // Again, one pool: nothing to do but say so.
    let out = moor.run(&[
        "attach",
        "--inventory",
        inv,
        "--pool",
        "lab",
        "--json",
        "--user",
        "moor",
    ]);
    assert_exit(&out, 0);
    for r in rows(&out) {
        assert_eq!(r["result"]["agent"]["status"], "present", "{r}");
    }

    // A file naming another key for a host: that host is refused (and
    // nothing recorded for it), the others pass.
    let wrong = dir.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "{} {}\n{} {}\n",
            hosts[0].ip,
            hosts[0].ed25519_public_key(),
            hosts[1].ip,
            hosts[0].ed25519_public_key()
        ),
    )
    .unwrap();
    let fresh = Moor::new(MOOR);
    let out = fresh.run(&[
        "validate",
        "--inventory",
        inv,
        "--pool",
        "lab",
        "--known-hosts",
        wrong.to_str().unwrap(),
        "--json",
        "--user",
        "moor",
    ]);
    assert_exit(&out, 5);
    let r = rows(&out);
    assert_eq!(row(&r, "lab-1")["ok"], true);
    assert_eq!(
        row(&r, "lab-2")["error"]["kind"],
        "host_key_changed",
        "{r:?}"
    );
    let recorded = std::fs::read_to_string(fresh.workspace().join("known_hosts")).unwrap();
    assert!(recorded.contains(&hosts[0].ip), "{recorded}");
    assert!(
        !recorded.contains(&format!("{} ", hosts[1].ip)),
        "{recorded}"
    );

    // A password written in the file is refused, and not repeated.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "p:\n  hosts: [h]\n  password: hunter2secret\n").unwrap();
    let out = fresh.run(&["attach", "--inventory", bad.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("holds a password"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2secret"), "{}", out.stderr);
}
