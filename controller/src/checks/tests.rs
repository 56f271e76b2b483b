//! Verdicts of the probe-based checks, on facts built by hand.

use super::*;
use crate::probe::{Disk, Docker, OsRelease};

fn facts() -> Facts {
    Facts {
        os: OsRelease {
            id: "ubuntu".into(),
            version_id: "22.04".into(),
            pretty_name: "Ubuntu 22.04.4 LTS".into(),
        },
        arch: "x86_64".into(),
        user: "moor".into(),
        home: "/home/moor".into(),
        home_disk: Some(Disk {
            mount: "/".into(),
            total_bytes: 100 * GIB,
            free_bytes: 50 * GIB,
        }),
        memory_total_bytes: Some(16 * GIB),
        cpus: Some(4),
        ..Facts::default()
    }
}

fn private() -> IpAddr {
    "10.0.0.4".parse().unwrap()
}

fn check(f: &Facts, id: &str) -> Check {
    let options = Options {
        kind: Kind::Hdinsight,
        require_public_ip: false,
    };
    evaluate(f, private(), options)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap()
}

#[test]
fn supported_operating_systems() {
    for (id, version, ok) in [
        ("ubuntu", "20.04", true),
        ("ubuntu", "22.04", true),
        ("ubuntu", "24.04", true),
        ("ubuntu", "18.04", false),
        ("ubuntu", "23.10", false),
        ("debian", "11", true),
        ("debian", "12", true),
        ("debian", "10", false),
        ("centos", "7", false),
        ("", "", false),
    ] {
        let mut f = facts();
        f.os.id = id.into();
        f.os.version_id = version.into();
        let c = check(&f, "os.supported");
        assert_eq!(c.status == Status::Pass, ok, "{id} {version}: {c:?}");
        assert_eq!(c.remedy.is_some(), !ok);
    }
}

#[test]
fn arch() {
    let mut f = facts();
    assert_eq!(check(&f, "os.arch").status, Status::Pass);
    f.arch = "aarch64".into();
    assert_eq!(check(&f, "os.arch").status, Status::Fail);
}

#[test]
fn disk_thresholds() {
    for (free, status) in [
        (GIB, Status::Fail),
        (5 * GIB, Status::Warn),
        (20 * GIB, Status::Pass),
    ] {
        let mut f = facts();
        f.home_disk.as_mut().unwrap().free_bytes = free;
        assert_eq!(check(&f, "disk.free").status, status, "{free}");
    }
}

#[test]
fn public_ip_from_peer_or_interfaces() {
    let f = facts();
    let opts = |require| Options {
        kind: Kind::Vm,
        require_public_ip: require,
    };
    let find = |checks: Vec<Check>| {
        checks
            .into_iter()
            .find(|c| c.id == "network.public_ip")
            .unwrap()
    };
    assert_eq!(
        find(evaluate(&f, private(), opts(false))).status,
        Status::Warn
    );
    assert_eq!(
        find(evaluate(&f, private(), opts(true))).status,
        Status::Fail
    );
    assert_eq!(
        find(evaluate(&f, "20.1.2.3".parse().unwrap(), opts(true))).status,
        Status::Pass
    );
    let mut f2 = facts();
    f2.addresses = vec!["10.0.0.4".parse().unwrap(), "52.1.2.3".parse().unwrap()];
    let c = find(evaluate(&f2, private(), opts(true)));
    assert_eq!(c.status, Status::Pass);
    assert!(c.detail.contains("52.1.2.3"));
}

#[test]
fn docker_states() {
    let mut f = facts();
    assert_eq!(check(&f, "docker.engine").status, Status::Warn);
    assert_eq!(check(&f, "docker.access").status, Status::Skip);

    f.docker = Docker {
        socket: Some("/var/run/docker.sock".into()),
        socket_group: Some("docker".into()),
        socket_access: Some(false),
        ..Docker::default()
    };
    assert_eq!(check(&f, "docker.engine").status, Status::Pass);
    let access = check(&f, "docker.access");
    assert_eq!(access.status, Status::Warn);
    assert!(access.remedy.unwrap().contains("usermod -aG docker moor"));

    f.docker.socket_access = Some(true);
    f.docker.server_version = Some("24.0.7".into());
    assert_eq!(check(&f, "docker.engine").detail, "Docker 24.0.7");
    assert_eq!(check(&f, "docker.access").status, Status::Pass);
}

#[test]
fn hdinsight_needs_spark_submit() {
    let mut f = facts();
    assert_eq!(check(&f, "spark.submit").status, Status::Fail);
    f.spark_submit = Some("/usr/hdp/current/spark2-client/bin/spark-submit".into());
    assert_eq!(check(&f, "spark.submit").status, Status::Pass);
    let vm = evaluate(
        &f,
        private(),
        Options {
            kind: Kind::Vm,
            require_public_ip: false,
        },
    );
    assert!(vm.iter().all(|c| c.id != "spark.submit"));
}

#[test]
fn every_non_pass_has_a_remedy_or_is_a_skip() {
    let f = Facts::default();
    for c in evaluate(
        &f,
        private(),
        Options {
            kind: Kind::Hdinsight,
            require_public_ip: true,
        },
    ) {
        match c.status {
            Status::Warn | Status::Fail => assert!(c.remedy.is_some(), "{c:?}"),
            Status::Pass | Status::Skip => assert!(c.remedy.is_none(), "{c:?}"),
        }
    }
}

#[test]
fn byte_units() {
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(3 * GIB / 2), "1.5 GiB");
}
