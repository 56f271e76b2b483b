//! The checks of an HDInsight head node (`--kind hdinsight`): spark-submit,
//! YARN's ResourceManager and NodeManagers, the default file system, the
//! cluster's Python, and whether the host is the cluster's SSH endpoint.

use super::check::Check;
use crate::probe::{Facts, HeadNode, YarnNode};

pub(super) fn spark_submit(f: &Facts, head: &HeadNode) -> Check {
    const ID: &str = "spark.submit";
    match (&f.spark_submit, &head.spark_version) {
        (Some(path), Some(version)) => Check::pass(ID, format!("Spark {version} ({path})")),
        (Some(path), None) => Check::warn(
            ID,
            format!("spark-submit at {path} did not tell its version"),
            format!("run `{path} --version` on the head node to see what is wrong (JAVA_HOME, SPARK_HOME)"),
        ),
        (None, _) => Check::fail(
            ID,
            "no spark-submit on PATH, in /usr/hdp/current/spark2-client or $SPARK_HOME",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net), or install Spark and put spark-submit on PATH",
        ),
    }
}

/// YARN answers and has NodeManagers to run on.
pub(super) fn yarn_resourcemanager(head: &HeadNode) -> Check {
    const ID: &str = "yarn.resourcemanager";
    let Some(yarn) = &head.yarn else {
        return Check::fail(
            ID,
            "no yarn command (PATH, /usr/hdp/current/hadoop-yarn-client/bin): not a YARN head node",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net); for Spark without YARN attach the machine with `moor attach vm` and run with --spark-master 'local[*]'",
        );
    };
    let rm = yarn
        .resource_manager
        .as_deref()
        .map(|a| format!(" at {a}"))
        .unwrap_or_default();
    if yarn.total.is_none() {
        // Hadoop's IPC client logs each retry: "Retrying connect to server:
        // HOST/ADDR:PORT. Already tried N time(s); retry policy is ...".
        let retrying = yarn.last_line.as_deref().and_then(|l| {
            let at = l.find("Retrying connect to server: ")?;
            let rest = &l[at + "Retrying connect to server: ".len()..];
            let server = rest.split(". Already").next().unwrap_or(rest);
            Some(server.trim_end_matches('.').to_owned())
        });
        let why = match (yarn.exit, &yarn.last_line, retrying) {
            (Some(124), _, Some(server)) => {
                format!("no answer within 15 s (still retrying {server})")
            }
            (Some(124), _, None) => "no answer within 15 s".to_owned(),
            (_, Some(line), _) => line.clone(),
            (exit, None, _) => format!("yarn exited with {exit:?} and said nothing"),
        };
        return Check::fail(
            ID,
            format!("the ResourceManager{rm} does not answer: {why}"),
            "start YARN's ResourceManager (Ambari: https://<cluster>.azurehdinsight.net > YARN > Restart), then validate again",
        );
    }
    let running = yarn.running();
    let unhealthy = yarn.unhealthy();
    let listed = |nodes: &[&YarnNode]| {
        nodes
            .iter()
            .map(|n| format!("{} {}", n.id.split('.').next().unwrap_or(&n.id), n.state))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if running == 0 {
        let all: Vec<&YarnNode> = yarn.nodes.iter().collect();
        return Check::fail(
            ID,
            format!(
                "no NodeManager is RUNNING ({} listed{}{})",
                yarn.nodes.len(),
                if all.is_empty() { "" } else { ": " },
                listed(&all)
            ),
            "restart the NodeManagers (Ambari > YARN), or scale the cluster's worker nodes up",
        );
    }
    if !unhealthy.is_empty() {
        return Check::warn(
            ID,
            format!(
                "{running} NodeManagers RUNNING, {} not: {} (ResourceManager{rm})",
                unhealthy.len(),
                listed(&unhealthy)
            ),
            "see why with `yarn node -status NODE-ID` on the head node (often a full local disk); jobs run on the others meanwhile",
        );
    }
    Check::pass(
        ID,
        format!("{running} NodeManagers RUNNING (ResourceManager{rm})"),
    )
}

/// The cluster's default file system: where jobs read and write paths.
pub(super) fn hdfs_default_fs(head: &HeadNode) -> Check {
    const ID: &str = "hdfs.default_fs";
    let Some(hdfs) = &head.hdfs else {
        return Check::fail(
            ID,
            "no hdfs command (PATH, /usr/hdp/current/hadoop-hdfs-client/bin): not a Hadoop head node",
            "attach the cluster's head node (<cluster>-ssh.azurehdinsight.net); without Hadoop, jobs read only the snapshot and local paths",
        );
    };
    let Some(fs) = &hdfs.default_fs else {
        return Check::fail(
            ID,
            format!(
                "`hdfs getconf -confKey fs.defaultFS` failed: {}",
                hdfs.last_line.as_deref().unwrap_or("no output")
            ),
            "check core-site.xml on the head node (Ambari > HDFS > Configs), then validate again",
        );
    };
    let scheme = fs.split("://").next().unwrap_or_default();
    let store = match scheme {
        "wasb" | "wasbs" => "Azure Blob Storage",
        "abfs" | "abfss" => "Azure Data Lake Storage Gen2",
        "adl" => "Azure Data Lake Storage Gen1",
        "hdfs" => "HDFS",
        _ => {
            return Check::warn(
                ID,
                format!("fs.defaultFS is {fs}: not storage the cluster's nodes share"),
                "set fs.defaultFS in core-site.xml to the cluster's storage (wasbs://, abfs:// or hdfs://)",
            )
        }
    };
    Check::pass(ID, format!("{fs} ({store})"))
}

/// The Python Spark runs jobs with.
pub(super) fn python_cluster(f: &Facts, head: &HeadNode) -> Check {
    const ID: &str = "python.cluster";
    let used = head.pyspark_python.as_deref();
    match head.cluster_pythons.first() {
        Some(p) => Check::pass(
            ID,
            format!(
                "{} (Python {}){}",
                p.path,
                p.version.as_deref().unwrap_or("?"),
                used.map(|u| format!("; spark-env.sh sets PYSPARK_PYTHON={u}"))
                    .unwrap_or_default()
            ),
        ),
        None => Check::warn(
            ID,
            format!(
                "no cluster Anaconda (HDInsight keeps it in /usr/bin/anaconda); PySpark uses {}",
                used.map(str::to_owned).unwrap_or_else(|| match &f.python {
                    Some(p) => format!("{} {}", p.path, p.version.as_deref().unwrap_or("")).trim_end().to_owned(),
                    None => "no Python at all".to_owned(),
                })
            ),
            "make the Python your jobs need exist on every node and point PYSPARK_PYTHON at it (spark-env.sh, or --spark-conf spark.pyspark.python=PATH)",
        ),
    }
}

/// On HDInsight the SSH endpoint is `<cluster>-ssh.azurehdinsight.net`: it
/// follows the active head node. Another host works until that node fails.
pub fn ssh_endpoint(host: &str, cluster: Option<&str>) -> Check {
    const ID: &str = "ssh.endpoint";
    let Some(cluster) = cluster else {
        return Check::skip(
            ID,
            format!("{host} (no cluster name or resource id to compare with)"),
        );
    };
    let expected = crate::resource_id::hdinsight_ssh_host(cluster);
    if host.eq_ignore_ascii_case(&expected) {
        Check::pass(ID, format!("{host}: cluster {cluster}'s SSH endpoint"))
    } else {
        Check::warn(
            ID,
            format!("{host} is not cluster {cluster}'s SSH endpoint {expected}"),
            format!("attach with --host {expected} (or without --host): it follows the active head node after a failover"),
        )
    }
}
