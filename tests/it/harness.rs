//! The harness itself: hosts are distinct machines, and nothing outlives a test.

use std::process::Command;

use moor_tests::{docker_or_skip, HostSpec, Network, TestHost};

fn docker_ps(filter: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn hosts_have_own_address_host_key_and_machine_id_and_are_removed() {
    if !docker_or_skip() {
        return;
    }
    let network = Network::create();
    let net_name = network.name.clone();
    let a = TestHost::start_on(&network, &HostSpec::default());
    let b = TestHost::start_on(&network, &HostSpec::default());
    drop(network);
    assert_ne!(a.ip, b.ip);
    assert_ne!(a.ed25519_fingerprint(), b.ed25519_fingerprint());
    assert_ne!(a.exec("cat /etc/machine-id"), b.exec("cat /etc/machine-id"));
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    drop(a);
    drop(b);
    assert_eq!(docker_ps(&format!("name={a_name}")), "");
    assert_eq!(docker_ps(&format!("name={b_name}")), "");
    let nets = Command::new("docker")
        .args([
            "network",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("name={net_name}"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&nets.stdout).trim(),
        "",
        "network removed with its last host"
    );
}

#[test]
fn a_panicking_test_still_removes_its_host() {
    if !docker_or_skip() {
        return;
    }
    let name = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let host = TestHost::start(&HostSpec::default());
        *name.lock().unwrap() = host.name.clone();
        panic!("test failure");
    });
    assert!(result.is_err());
    let name = name.into_inner().unwrap();
    assert!(!name.is_empty());
    assert_eq!(docker_ps(&format!("name={name}")), "");
}
