//! Probe parsing. `testdata/ubuntu-22.04-docker.txt` is a recording of the
//! real probe on a moor test host (Ubuntu 22.04 os-release, Docker socket
//! mounted, passwordless sudo).

use super::*;

const RECORDED: &str = include_str!("testdata/ubuntu-22.04-docker.txt");

#[test]
fn recorded_test_host() {
    let f = Facts::parse(RECORDED).unwrap();
    assert_eq!(f.os.id, "ubuntu");
    assert_eq!(f.os.version_id, "22.04");
    assert_eq!(f.os.pretty_name, "Ubuntu 22.04.4 LTS");
    assert_eq!(f.arch, "x86_64");
    assert_eq!(
        f.machine_id.as_deref(),
        Some("8eb518d362464d1183a006a64109b29d")
    );
    assert_eq!((f.user.as_str(), f.uid), ("moor", Some(1000)));
    assert_eq!(f.groups, vec!["moor", "docker"]);
    assert_eq!(f.home, "/home/moor");
    let disk = f.home_disk.unwrap();
    assert_eq!(
        (disk.mount.as_str(), disk.free_bytes),
        ("/", 78735320 * 1024)
    );
    assert_eq!(f.memory_total_bytes, Some(24684092 * 1024));
    assert_eq!(f.cpus, Some(2));
    assert_eq!(f.cpu_model.as_deref(), Some("AMD EPYC"));
    assert_eq!(f.addresses, vec!["172.17.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(f.docker.server_version.as_deref(), Some("20.10.24+dfsg1"));
    assert_eq!(f.docker.socket_access, Some(true));
    assert_eq!(f.docker.cli, None);
    assert!(f.conda.is_empty());
    assert_eq!(f.python.unwrap().version.as_deref(), Some("3.11"));
    assert_eq!(f.nvidia, None);
    assert_eq!(f.sudo_passwordless, Some(true));
}

#[test]
fn noise_before_the_marker_is_ignored() {
    let noisy = format!("Welcome to the machine!\n@@moor not this\n{RECORDED}");
    assert_eq!(
        Facts::parse(&noisy).unwrap(),
        Facts::parse(RECORDED).unwrap()
    );
}

#[test]
fn cut_or_missing_output_is_an_error() {
    assert!(Facts::parse("bash: sh: command not found\n").is_err());
    let cut = &RECORDED[..RECORDED.find("@@moor docker").unwrap()];
    assert!(Facts::parse(cut).is_err());
}

fn with_section(name: &str, body: &str) -> String {
    let start = RECORDED.find(&format!("@@moor {name}\n")).unwrap();
    let end = start + RECORDED[start..].find("\n\n").unwrap();
    format!(
        "{}@@moor {name}\n{body}{}",
        &RECORDED[..start],
        &RECORDED[end..]
    )
}

#[test]
fn docker_cli_without_access() {
    let out = with_section(
        "docker",
        "cli=/usr/bin/docker\nsocket=/var/run/docker.sock\nsocket_group=docker\naccess=no\ncli_rc=1\nserver=permission denied while trying to connect to the Docker daemon socket\n",
    );
    let d = Facts::parse(&out).unwrap().docker;
    assert_eq!(d.cli.as_deref(), Some("/usr/bin/docker"));
    assert_eq!(d.socket_access, Some(false));
    assert_eq!(d.server_version, None);
    assert!(d.error.unwrap().contains("permission denied"));
}

#[test]
fn gpus_and_conda() {
    let out = with_section(
        "nvidia",
        "path=/usr/bin/nvidia-smi\nrc=0\ngpu=Tesla V100-PCIE-16GB, 535.104.05, 16384 MiB\ngpu=Tesla V100-PCIE-16GB, 535.104.05, 16384 MiB\n",
    );
    let out = out.replace(
        "@@moor conda\n",
        "@@moor conda\npath=conda:/anaconda/bin/conda\ndir=/anaconda:conda-23.7.4-py311h06a4308_0.json\ndir=/opt/conda:\n",
    );
    let f = Facts::parse(&out).unwrap();
    let nvidia = f.nvidia.unwrap();
    assert_eq!(nvidia.gpus.len(), 2);
    assert_eq!(nvidia.gpus[0].name, "Tesla V100-PCIE-16GB");
    assert_eq!(nvidia.gpus[0].driver, "535.104.05");
    assert_eq!(f.conda.len(), 2);
    assert_eq!(f.conda[0].path, "/anaconda/bin/conda");
    assert_eq!(f.conda[0].version.as_deref(), Some("23.7.4"));
    assert_eq!(
        (f.conda[1].path.as_str(), f.conda[1].version.as_deref()),
        ("/opt/conda", None)
    );
}

#[test]
fn nvidia_smi_failure_is_kept() {
    let out = with_section(
        "nvidia",
        "path=/usr/bin/nvidia-smi\nrc=9\ngpu=NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
    );
    let n = Facts::parse(&out).unwrap().nvidia.unwrap();
    assert!(n.gpus.is_empty());
    assert!(n.error.unwrap().contains("couldn't communicate"));
}

#[test]
fn hostname_dash_i_addresses() {
    assert_eq!(
        parse_addresses(&["10.0.0.4 20.1.2.3 fe80::1 ::1"]),
        vec![
            "10.0.0.4".parse::<IpAddr>().unwrap(),
            "20.1.2.3".parse().unwrap()
        ]
    );
}

#[test]
fn agent_hello_and_claim() {
    let hello = moor_proto::Hello {
        protocol: 1,
        version: "0.1.0".into(),
        build: "ab".repeat(32),
    };
    let out = RECORDED.replace(
        "@@moor end",
        &format!(
            "@@moor agent\n{}\n@@moor claim\n{{\"workspace_id\":\"w1\",\"workspace\":\"me@box:/ws\",\"target\":\"gpu\",\"claimed_at\":\"t\"}}\n\n@@moor end",
            hello.to_line()
        ),
    );
    let f = Facts::parse(&out).unwrap();
    assert_eq!(f.agent, Some(hello));
    let claim = f.claim.unwrap();
    assert_eq!(
        (claim.workspace_id.as_str(), claim.target.as_str()),
        ("w1", "gpu")
    );

    let garbage = RECORDED.replace("@@moor end", "@@moor claim\nnot json\n@@moor end");
    let claim = Facts::parse(&garbage).unwrap().claim.unwrap();
    assert_eq!(claim.workspace_id, "unknown");
    assert!(Facts::parse(RECORDED).unwrap().claim.is_none());
}

#[test]
fn docker_version_from_curl_json() {
    let out = with_section(
        "docker",
        "socket=/var/run/docker.sock\nsocket_group=docker\naccess=yes\ncli_rc=0\nserver_json={\"Version\":\"24.0.7\",\"ApiVersion\":\"1.43\"}\n",
    );
    assert_eq!(
        Facts::parse(&out).unwrap().docker.server_version.as_deref(),
        Some("24.0.7")
    );
}

#[test]
fn id_and_uname_forms() {
    assert_eq!(
        parse_id(&["uid=0(root) gid=0(root) groups=0(root)"]),
        ("root".to_owned(), Some(0), vec!["root".to_owned()])
    );
    assert_eq!(uname_field(&["5.15.0-1 x86_64"], 1), "x86_64");
    assert_eq!(uname_field(&[], 1), "");
}
