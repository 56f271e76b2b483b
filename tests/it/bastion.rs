//! Bastions, against real OpenSSH hosts: a target on a private network
//! this machine cannot reach, behind two jump hosts (the first on both this
//! machine's network and a second private one, the second on that one and
//! the target's). Every hop authenticates with its own key and has its host
//! key verified as strictly as the target's; attach, run and status go
//! through the chain the target was attached with, and so do a fleet's
//! attach from an inventory and the mux's warm connection.

use std::path::Path;

use moor_tests::{
    assert_exit, docker_or_skip, HostSpec, KeyPair, Keys, Moor, Network, TestHost, USER,
};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// outer (reachable) -> inner (private network 1) -> target (private network 2).
struct Chain {
    outer: TestHost,
    inner: TestHost,
    target: TestHost,
    outer_key: KeyPair,
    inner_key: KeyPair,
    target_key: KeyPair,
    _keys: Keys,
}

fn chain() -> Chain {
    let keys = Keys::new();
    let outer_key = keys.generate("outer", "ed25519", None);
    let inner_key = keys.generate("inner", "ed25519", None);
    let target_key = keys.generate("target", "ed25519", None);
    let trusting = |key: &KeyPair| HostSpec {
        authorized_keys: vec![key.public.clone()],
        ..HostSpec::default()
    };
    let middle = Network::create_private();
    let back = Network::create_private();
    let mut outer = TestHost::start(&trusting(&outer_key));
    outer.join(&middle);
    let mut inner = TestHost::start_on(&middle, &trusting(&inner_key));
    inner.join(&back);
    let target = TestHost::start_on(&back, &trusting(&target_key));
    Chain {
        outer,
        inner,
        target,
        outer_key,
        inner_key,
        target_key,
        _keys: keys,
    }
}

impl Chain {
    /// A sandbox whose ssh config says how to reach `gpu`: `ProxyJump
    /// outer,moor@INNER`, the outer bastion's key named by IdentityFile, the
    /// inner one's as the default key (~/.ssh/id_ed25519).
    fn sandbox(&self) -> Moor {
        let moor = Moor::new(MOOR);
        let config = format!(
            "Host outer\n  HostName {}\n  User {USER}\n  IdentityFile {}\n\
             Host gpu\n  HostName {}\n  User {USER}\n  ProxyJump outer,{USER}@{}\n",
            self.outer.ip,
            self.outer_key.private.display(),
            self.target.name,
            self.inner.name,
        );
        std::fs::write(moor.home().join(".ssh/config"), config).unwrap();
        copy_key(
            &self.inner_key.private,
            &moor.home().join(".ssh/id_ed25519"),
        );
        moor
    }

    fn target_key(&self) -> &str {
        self.target_key.private.to_str().unwrap()
    }
}

fn copy_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn last_line(out: &moor_tests::Output) -> &str {
    out.stderr.lines().last().unwrap_or_default()
}

#[test]
fn attach_run_and_status_go_through_two_jump_hosts() {
    if !docker_or_skip() {
        return;
    }
    let c = chain();
    let moor = c.sandbox();
    let key = c.target_key();

    // Directly, the target cannot even be named from here.
    let direct = moor.run(&[
        "validate",
        "--host",
        "gpu",
        "--jump",
        "none",
        "--key",
        key,
        "--connect-timeout",
        "3",
    ]);
    assert_exit(&direct, 6);

    // Through the chain: each hop checked and reported.
    let out = moor.run(&[
        "validate",
        "--host",
        "gpu",
        "--key",
        key,
        "--accept-new-host-key",
        "--json",
    ]);
    assert_exit(&out, 0);
    let jumps: Vec<String> = out.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["id"] == "ssh.jump")
        .map(|check| check["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jumps.len(), 2, "{}", out.stdout);
    let outer = format!("through {USER}@{}:22: host key ssh-ed25519", c.outer.ip);
    assert!(jumps[0].starts_with(&outer), "{jumps:?}");
    let inner = format!("through {USER}@{}:22", c.inner.name);
    assert!(jumps[1].starts_with(&inner), "{jumps:?}");
    assert_eq!(out.json()["host"]["address"], serde_json::Value::Null);

    let attached = moor.run(&["attach", "vm", "gpu", "--host", "gpu", "--key", key]);
    assert_exit(&attached, 0);
    let shown = moor.run(&["show", "gpu", "--json"]).json();
    let hops: Vec<&str> = shown["jumps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hop| hop["host"].as_str().unwrap())
        .collect();
    assert_eq!(hops, [c.outer.ip.as_str(), c.inner.name.as_str()]);

    // Runs and status go through the stored chain, with no flags.
    let run = moor.run(&["run", "--target", "gpu", "--", "cat", "/etc/hostname"]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout.trim(), c.target.name, "{}", run.stderr);
    assert_exit(&moor.run(&["status", "gpu", "--json"]), 0);
    let listed = moor.run(&["list"]);
    let via = format!("(via {}, ...)", c.outer.ip);
    assert!(listed.stdout.contains(&via), "{}", listed.stdout);

    // The same machine as a fleet's host: an inventory naming the ssh-config
    // alias goes through its ProxyJump chain, and the warm connection the
    // mux keeps goes through it too.
    assert_exit(&moor.run(&["detach", "gpu"]), 0);
    let inventory = moor.home().join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!("lab:\n  hosts: [gpu]\n  identity_file: {key}\n"),
    )
    .unwrap();
    let fleet = moor.run(&[
        "attach",
        "--inventory",
        inventory.to_str().unwrap(),
        "--json",
    ]);
    assert_exit(&fleet, 0);
    assert_eq!(fleet.json()[0]["target"], "gpu", "{}", fleet.stdout);
    let mut moor = moor;
    moor.with_mux();
    assert_exit(&moor.run(&["status", "gpu"]), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !moor.run(&["mux", "status"]).stdout.contains(" warm ") {
        assert!(
            std::time::Instant::now() < deadline,
            "the mux never got warm"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let warm = moor.run(&[
        "run",
        "--target",
        "gpu",
        "-vv",
        "--",
        "cat",
        "/etc/hostname",
    ]);
    assert_exit(&warm, 0);
    assert_eq!(warm.stdout.trim(), c.target.name, "{}", warm.stderr);
    assert!(
        warm.stderr.contains("agent pipe from the mux"),
        "{}",
        warm.stderr
    );
    assert_exit(&moor.run(&["mux", "stop"]), 0);
}

#[test]
fn a_wrong_or_unknown_jump_host_key_is_refused_and_named_fingerprints_admit_each_hop() {
    if !docker_or_skip() {
        return;
    }
    let c = chain();
    let moor = c.sandbox();
    let key = c.target_key();
    let validate = |extra: &[&str]| {
        moor.run(&[&["validate", "--host", "gpu", "--key", key][..], extra].concat())
    };

    // Unknown: the first jump host is named as such, and the fix works.
    let (outer_fp, inner_fp, target_fp) = (
        c.outer.ed25519_fingerprint(),
        c.inner.ed25519_fingerprint(),
        c.target.ed25519_fingerprint(),
    );
    let unknown = validate(&[]);
    assert_exit(&unknown, 5);
    let said = format!("host key of jump host {} is unknown", c.outer.ip);
    assert!(last_line(&unknown).contains(&said), "{}", unknown.stderr);
    let fix = format!("--host-key-fingerprint {outer_fp}");
    assert!(last_line(&unknown).contains(&fix), "{}", unknown.stderr);

    // One fingerprint per host of the chain admits each; the target's own
    // still has to be named.
    let fp = "--host-key-fingerprint";
    let only_two = validate(&[fp, &outer_fp, fp, &inner_fp]);
    assert_exit(&only_two, 5);
    assert!(
        last_line(&only_two).contains(", not the expected"),
        "{}",
        only_two.stderr
    );
    assert_exit(
        &validate(&[fp, &outer_fp, fp, &inner_fp, fp, &target_fp]),
        0,
    );
    let attached = moor.run(&["attach", "vm", "gpu", "--host", "gpu", "--key", key]);
    assert_exit(&attached, 0);

    // A jump host whose key changed stops every command, whatever the flags.
    c.inner.regenerate_host_keys();
    let changed = format!("HOST KEY CHANGED for {}", c.inner.name);
    for extra in [&[][..], &["--accept-new-host-key"][..]] {
        let run = moor.run(&[&["run", "--target", "gpu"][..], extra, &["--", "true"]].concat());
        assert_exit(&run, 5);
        assert!(last_line(&run).contains(&changed), "{}", run.stderr);
    }

    // A wrong key for the outer bastion in the user's known_hosts (another
    // host's) is refused as changed, in a workspace that never saw it.
    let fresh = c.sandbox();
    let wrong = format!("{} {}\n", c.outer.ip, c.target.ed25519_public_key());
    std::fs::write(fresh.home().join(".ssh/known_hosts"), wrong).unwrap();
    let out = fresh.run(&[
        "validate",
        "--host",
        "gpu",
        "--key",
        key,
        "--accept-new-host-key",
    ]);
    assert_exit(&out, 5);
    let changed = format!("HOST KEY CHANGED for {}", c.outer.ip);
    assert!(last_line(&out).contains(&changed), "{}", out.stderr);
}

#[test]
fn a_jump_host_that_cannot_reach_the_next_hop_says_so_and_each_hop_needs_its_own_key() {
    if !docker_or_skip() {
        return;
    }
    let c = chain();
    let moor = c.sandbox();
    let key = c.target_key();
    // --jump on the command line, as ssh -J; the outer bastion cannot reach
    // the target's network (only the inner one can).
    let out = moor.run(&[
        "validate",
        "--host",
        &c.target.name,
        "--user",
        USER,
        "--key",
        key,
        "--jump",
        "outer",
        "--accept-new-host-key",
        "--connect-timeout",
        "5",
    ]);
    assert_exit(&out, 6);
    let said = format!(
        "jump host {USER}@{}:22 could not connect to {}:22",
        c.outer.ip, c.target.name
    );
    assert!(last_line(&out).contains(&said), "{}", out.stderr);

    // The target's key is not offered to the jump hosts: without the inner
    // bastion's own key, it refuses.
    std::fs::remove_file(moor.home().join(".ssh/id_ed25519")).unwrap();
    let out = moor.run(&[
        "validate",
        "--host",
        "gpu",
        "--key",
        key,
        "--accept-new-host-key",
    ]);
    assert_exit(&out, 4);
    let who = format!("{USER}@{}", c.inner.name);
    assert!(last_line(&out).contains(&who), "{}", out.stderr);
}
