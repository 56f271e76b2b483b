//! Verdicts of the probe-based checks, on facts built by hand.

use super::*;
use crate::probe::{Disk, Docker, Hdfs, HeadNode, OsRelease, Python, Yarn, YarnNode};

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
        kind: TargetKind::Hdinsight,
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
    assert_eq!(check(&f, "os.arch").status, Status::Pass);
    f.arch = "armv7l".into();
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
        kind: TargetKind::Vm,
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
    assert_eq!(check(&f, "spark.submit").status, Status::Warn, "no version");
    f.head_node = Some(HeadNode {
        spark_version: Some("3.3.0".into()),
        ..HeadNode::default()
    });
    let c = check(&f, "spark.submit");
    assert_eq!(c.status, Status::Pass);
    assert!(c.detail.starts_with("Spark 3.3.0"), "{c:?}");
    let vm = evaluate(
        &f,
        private(),
        Options {
            kind: TargetKind::Vm,
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
            kind: TargetKind::Hdinsight,
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

fn head(yarn: Option<Yarn>, hdfs: Option<Hdfs>) -> Facts {
    Facts {
        spark_submit: Some("/usr/hdp/current/spark2-client/bin/spark-submit".into()),
        head_node: Some(HeadNode {
            spark_version: Some("3.3.0".into()),
            yarn,
            hdfs,
            ..HeadNode::default()
        }),
        ..facts()
    }
}

fn yarn(nodes: &[&str]) -> Yarn {
    Yarn {
        path: "/usr/bin/yarn".into(),
        exit: Some(0),
        resource_manager: Some("hn0-c/10.0.0.19:8050".into()),
        total: Some(nodes.len() as u32),
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, state)| YarnNode {
                id: format!("wn{i}-c.x.internal.cloudapp.net:30050"),
                state: (*state).into(),
            })
            .collect(),
        last_line: None,
    }
}

#[test]
fn yarn_needs_an_answering_resourcemanager_with_running_nodes() {
    let status = |y: Option<Yarn>| check(&head(y, None), "yarn.resourcemanager");
    let c = status(None);
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("no yarn command"), "{c:?}");
    assert!(c.remedy.unwrap().contains("--spark-master 'local[*]'"));

    let c = status(Some(yarn(&["RUNNING", "RUNNING"])));
    assert_eq!(c.status, Status::Pass);
    assert_eq!(
        c.detail,
        "2 NodeManagers RUNNING (ResourceManager at hn0-c/10.0.0.19:8050)"
    );

    let c = status(Some(yarn(&["RUNNING", "UNHEALTHY", "DECOMMISSIONED"])));
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("1 not: wn1-c UNHEALTHY"), "{c:?}");

    let c = status(Some(yarn(&["LOST", "DECOMMISSIONED"])));
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail
            .starts_with("no NodeManager is RUNNING (2 listed: wn0-c LOST"),
        "{c:?}"
    );

    // The recording's case: no answer before the probe's limit.
    let down = Yarn {
        total: None,
        nodes: vec![],
        exit: Some(124),
        // The recording's last line.
        last_line: Some(
            "26/11/27 23:57:04 INFO ipc.Client: Retrying connect to server: \
             0.0.0.0/0.0.0.0:8032. Already tried 8 time(s); retry policy is \
             RetryUpToMaximumCountWithFixedSleep(maxRetries=10, sleepTime=1000 MILLISECONDS)"
                .into(),
        ),
        ..yarn(&[])
    };
    let c = status(Some(down.clone()));
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.ends_with(
            "does not answer: no answer within 15 s (still retrying 0.0.0.0/0.0.0.0:8032)"
        ),
        "{c:?}"
    );
    assert!(c.remedy.unwrap().contains("Ambari"));
    let c = status(Some(Yarn {
        exit: Some(255),
        ..down.clone()
    }));
    assert!(c.detail.contains("Retrying connect to server"), "{c:?}");
    // A client that named its ResourceManager, then nothing before the limit.
    let c = status(Some(Yarn {
        last_line: Some("INFO client.DefaultNoHARMFailoverProxyProvider: Connecting to ResourceManager at /0.0.0.0:8032".into()),
        resource_manager: Some("/0.0.0.0:8032".into()),
        ..down.clone()
    }));
    assert_eq!(
        c.detail,
        "the ResourceManager at /0.0.0.0:8032 does not answer: no answer within 15 s"
    );
    // A client whose JVM said nothing before the limit (a loaded host).
    let c = status(Some(Yarn {
        last_line: None,
        resource_manager: None,
        ..down
    }));
    assert_eq!(c.status, Status::Fail);
    assert_eq!(
        c.detail,
        "the ResourceManager does not answer: no answer within 15 s"
    );
}

#[test]
fn hdfs_default_fs_is_cluster_storage() {
    let fs = |value: Option<&str>| {
        let hdfs = Hdfs {
            path: "/usr/bin/hdfs".into(),
            exit: Some(if value.is_some() { 0 } else { 1 }),
            default_fs: value.map(Into::into),
            last_line: value
                .is_none()
                .then(|| "Error: JAVA_HOME is not set".into()),
        };
        check(&head(None, Some(hdfs)), "hdfs.default_fs")
    };
    let c = fs(Some("wasbs://c@a.blob.core.windows.net"));
    assert_eq!(c.status, Status::Pass);
    assert!(c.detail.ends_with("(Azure Blob Storage)"));
    assert_eq!(
        fs(Some("abfs://d@l.dfs.core.windows.net")).status,
        Status::Pass
    );
    assert_eq!(fs(Some("hdfs://mycluster")).status, Status::Pass);
    assert_eq!(fs(Some("file:///")).status, Status::Warn);
    let c = fs(None);
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("JAVA_HOME"), "{c:?}");
    let c = check(&head(None, None), "hdfs.default_fs");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("no hdfs command"));
}

#[test]
fn cluster_python_is_hdinsights_anaconda() {
    let mut f = head(None, None);
    let c = check(&f, "python.cluster");
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("/usr/bin/anaconda"), "{c:?}");
    f.head_node.as_mut().unwrap().cluster_pythons = vec![Python {
        path: "/usr/bin/anaconda/envs/py38/bin/python3".into(),
        version: Some("3.8.10".into()),
    }];
    f.head_node.as_mut().unwrap().pyspark_python =
        Some("/usr/bin/anaconda/envs/py38/bin/python3".into());
    let c = check(&f, "python.cluster");
    assert_eq!(c.status, Status::Pass);
    assert_eq!(
        c.detail,
        "/usr/bin/anaconda/envs/py38/bin/python3 (Python 3.8.10); spark-env.sh sets PYSPARK_PYTHON=/usr/bin/anaconda/envs/py38/bin/python3"
    );
}

#[test]
fn the_ssh_endpoint_is_the_clusters() {
    let c = ssh_endpoint("spark1-ssh.azurehdinsight.net", Some("spark1"));
    assert_eq!(c.status, Status::Pass);
    let c = ssh_endpoint("10.0.0.19", Some("spark1"));
    assert_eq!(c.status, Status::Warn);
    assert!(c
        .remedy
        .unwrap()
        .contains("--host spark1-ssh.azurehdinsight.net"));
    assert_eq!(ssh_endpoint("10.0.0.19", None).status, Status::Skip);
}
