//! A head node's Hadoop side, from the probe's raw output: `spark-submit
//! --version`, `yarn node -list -all`, `hdfs getconf -confKey fs.defaultFS`,
//! and the cluster's Python.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Python;

/// What the probe found on a head node (probed with KIND hdinsight).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeadNode {
    /// Spark's version from `spark-submit --version`.
    pub spark_version: Option<String>,
    /// YARN; `None` when there is no `yarn` command.
    pub yarn: Option<Yarn>,
    /// HDFS; `None` when there is no `hdfs` command.
    pub hdfs: Option<Hdfs>,
    /// The cluster's Pythons (HDInsight's Anaconda under /usr/bin/anaconda).
    pub cluster_pythons: Vec<Python>,
    /// PYSPARK_PYTHON as Spark's conf/spark-env.sh sets it.
    pub pyspark_python: Option<String>,
}

/// `yarn node -list -all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Yarn {
    /// The command.
    pub path: String,
    /// Its exit status (124: stopped by the probe's time limit).
    pub exit: Option<i32>,
    /// "Connecting to ResourceManager at ...".
    pub resource_manager: Option<String>,
    /// "Total Nodes:N"; absent when the ResourceManager did not answer.
    pub total: Option<u32>,
    /// The nodes listed.
    pub nodes: Vec<YarnNode>,
    /// The last line of output that is not a node row: what went wrong.
    pub last_line: Option<String>,
}

/// A NodeManager as the ResourceManager lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct YarnNode {
    /// `host:port`.
    pub id: String,
    /// `RUNNING`, `UNHEALTHY`, `LOST`, `DECOMMISSIONED`, ...
    pub state: String,
}

impl Yarn {
    /// Nodes in state RUNNING.
    pub fn running(&self) -> usize {
        self.nodes.iter().filter(|n| n.state == "RUNNING").count()
    }

    /// Nodes that should run and do not (UNHEALTHY, LOST, REBOOTED).
    pub fn unhealthy(&self) -> Vec<&YarnNode> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.state.as_str(), "UNHEALTHY" | "LOST" | "REBOOTED"))
            .collect()
    }
}

/// `hdfs getconf -confKey fs.defaultFS`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hdfs {
    /// The command.
    pub path: String,
    /// Its exit status.
    pub exit: Option<i32>,
    /// The value, e.g. `wasbs://c@a.blob.core.windows.net`.
    pub default_fs: Option<String>,
    /// The last line of output, when there is no value.
    pub last_line: Option<String>,
}

/// Node states NodeCLI prints (Hadoop's `NodeState`).
const NODE_STATES: [&str; 8] = [
    "NEW",
    "RUNNING",
    "UNHEALTHY",
    "DECOMMISSIONED",
    "LOST",
    "REBOOTED",
    "DECOMMISSIONING",
    "SHUTDOWN",
];

/// Parses the head-node sections; `None` when the probe did not look (a VM).
pub fn parse(sections: &BTreeMap<&str, Vec<&str>>) -> Option<HeadNode> {
    let get = |name: &str| sections.get(name).cloned();
    let spark = get("spark-version")?;
    let yarn = get("yarn").unwrap_or_default();
    let hdfs = get("hdfs").unwrap_or_default();
    let kv = |lines: &[&str]| super::key_values(lines);
    let yarn_kv = kv(&yarn);
    let hdfs_kv = kv(&hdfs);
    let python = kv(&get("python-cluster").unwrap_or_default());
    Some(HeadNode {
        spark_version: spark_version(&spark),
        yarn: super::one(&yarn_kv, "path").map(|path| {
            let mut y = parse_node_list(&get("yarn-out").unwrap_or_default());
            y.path = path;
            y.exit = super::one(&yarn_kv, "rc").and_then(|rc| rc.parse().ok());
            y
        }),
        hdfs: super::one(&hdfs_kv, "path").map(|path| {
            let mut h = parse_getconf(&get("hdfs-out").unwrap_or_default());
            h.path = path;
            h.exit = super::one(&hdfs_kv, "rc").and_then(|rc| rc.parse().ok());
            h
        }),
        cluster_pythons: python
            .get("python")
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let (path, version) = entry.split_once(':')?;
                Some(Python {
                    path: path.to_owned(),
                    version: version
                        .trim()
                        .strip_prefix("Python ")
                        .map(|v| v.trim().to_owned()),
                })
            })
            .collect(),
        pyspark_python: python
            .get("spark_env")
            .and_then(|lines| lines.last())
            .and_then(|line| pyspark_python(line)),
    })
}

/// The version in spark-submit's banner (`... version 3.3.0`), or in its
/// one-line form (`Spark 3.3.0` on some distributions).
pub fn spark_version(lines: &[&str]) -> Option<String> {
    lines.iter().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).find_map(|w| {
            let is_version = w[1].starts_with(|c: char| c.is_ascii_digit()) && w[1].contains('.');
            ((w[0] == "version" || w[0] == "Spark") && is_version).then(|| w[1].to_owned())
        })
    })
}

/// `yarn node -list -all` output (log lines on stderr mixed in).
pub fn parse_node_list(lines: &[&str]) -> Yarn {
    let mut yarn = Yarn::default();
    for line in lines {
        let line = line.trim();
        if let Some(at) = line.find("Connecting to ResourceManager at ") {
            let rest = &line[at + "Connecting to ResourceManager at ".len()..];
            yarn.resource_manager = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(n) = line.strip_prefix("Total Nodes:") {
            // The ResourceManager answered: what came before was chatter.
            yarn.total = n.trim().parse().ok();
            yarn.last_line = None;
        } else if yarn.total.is_some() && line.starts_with("Node-Id") {
            // The table's header.
        } else if let Some(node) = node_row(line).filter(|_| yarn.total.is_some()) {
            yarn.nodes.push(node);
        } else if !line.is_empty() {
            yarn.last_line = Some(line.to_owned());
        }
    }
    yarn
}

/// A row of NodeCLI's table: `%16s\t%15s\t%17s\t%28s` (id, state, HTTP
/// address, containers).
fn node_row(line: &str) -> Option<YarnNode> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?;
    let state = fields.next()?;
    (NODE_STATES.contains(&state) && id.contains(':')).then(|| YarnNode {
        id: id.to_owned(),
        state: state.to_owned(),
    })
}

/// `hdfs getconf -confKey fs.defaultFS` prints the value alone (after any
/// log lines); an error otherwise.
pub fn parse_getconf(lines: &[&str]) -> Hdfs {
    let value = lines
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.contains(' ') && l.contains("://"));
    Hdfs {
        default_fs: value.map(str::to_owned),
        last_line: match value {
            Some(_) => None,
            None => lines.last().map(|l| l.trim().to_owned()),
        },
        ..Hdfs::default()
    }
}

/// PYSPARK_PYTHON from a spark-env.sh line: `export PYSPARK_PYTHON=X` or
/// `export PYSPARK_PYTHON=${PYSPARK_PYTHON:-X}`.
fn pyspark_python(line: &str) -> Option<String> {
    let value = line.split_once("PYSPARK_PYTHON=")?.1.trim();
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    let value = match value.strip_prefix("${PYSPARK_PYTHON:-") {
        Some(inner) => inner.trim_end_matches('}'),
        None => value,
    };
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// A RECORDING: Hadoop 3.3.4's own YARN client (NodeCLI, from the jars
    /// pyspark 3.5.9 ships, as the head-node test host runs it) against a
    /// head node whose ResourceManager does not answer, stopped by the
    /// probe's time limit. Recorded on this project's build machine.
    const RM_DOWN: &str = include_str!("testdata/yarn-node-list-rm-down.txt");

    /// NOT a recording (no cluster runs here): a healthy four-worker
    /// HDInsight cluster's node list, laid out with NodeCLI's own row
    /// pattern `%16s\t%15s\t%17s\t%28s` (read from its class file) and its
    /// "Total Nodes:" line; host names in HDInsight's style, made up.
    const HEALTHY: &str = include_str!("testdata/yarn-node-list-hdinsight.txt");

    #[test]
    fn a_resourcemanager_that_does_not_answer_lists_no_nodes() {
        let yarn = parse_node_list(&lines(RM_DOWN));
        assert_eq!(yarn.resource_manager.as_deref(), Some("/0.0.0.0:8032"));
        assert_eq!(yarn.total, None);
        assert!(yarn.nodes.is_empty());
        assert!(
            yarn.last_line
                .as_deref()
                .unwrap()
                .contains("Retrying connect to server: 0.0.0.0/0.0.0.0:8032"),
            "{yarn:?}"
        );
    }

    #[test]
    fn a_healthy_cluster_lists_its_running_and_unhealthy_nodes() {
        let yarn = parse_node_list(&lines(HEALTHY));
        assert_eq!(
            yarn.resource_manager.as_deref(),
            Some("hn0-spark1.3bsoemhtsqmuhjsh2uh4l0vc5a.bx.internal.cloudapp.net/10.0.0.19:8050")
        );
        assert_eq!(yarn.total, Some(5));
        assert_eq!(yarn.nodes.len(), 5);
        assert_eq!(yarn.running(), 3);
        let bad: Vec<(&str, &str)> = yarn
            .unhealthy()
            .iter()
            .map(|n| (n.id.as_str(), n.state.as_str()))
            .collect();
        assert_eq!(
            bad,
            [(
                "wn3-spark1.3bsoemhtsqmuhjsh2uh4l0vc5a.bx.internal.cloudapp.net:30050",
                "UNHEALTHY"
            )]
        );
        assert_eq!(yarn.last_line, None);
    }

    #[test]
    fn getconf_values_and_errors() {
        // `hdfs getconf` prints the value alone; HDInsight's default file
        // systems are Azure Storage (wasbs) and ADLS Gen2 (abfs).
        let h = parse_getconf(&["wasbs://spark1-2024@spark1store.blob.core.windows.net"]);
        assert_eq!(
            h.default_fs.as_deref(),
            Some("wasbs://spark1-2024@spark1store.blob.core.windows.net")
        );
        let h = parse_getconf(&[
            "WARNING: log4j.properties is not found. HADOOP_CONF_DIR may be incomplete.",
            "abfs://data@lake.dfs.core.windows.net",
        ]);
        assert_eq!(
            h.default_fs.as_deref(),
            Some("abfs://data@lake.dfs.core.windows.net")
        );
        let h = parse_getconf(&["Error: JAVA_HOME is not set and could not be found."]);
        assert_eq!(h.default_fs, None);
        assert_eq!(
            h.last_line.as_deref(),
            Some("Error: JAVA_HOME is not set and could not be found.")
        );
    }

    #[test]
    fn spark_versions_from_the_banner() {
        // spark-submit --version's banner, as Spark 3.5.9 prints it (the
        // head-node test host's).
        let banner = [
            "Welcome to",
            "      ____              __",
            "     / __/__  ___ _____/ /__",
            "    _\\ \\/ _ \\/ _ `/ __/  '_/",
            "   /___/ .__/\\_,_/_/ /_/\\_\\   version 3.5.9",
            "      /_/",
            "Using Scala version 2.12.18, OpenJDK 64-Bit Server VM, 17.0.19",
        ];
        assert_eq!(spark_version(&banner).as_deref(), Some("3.5.9"));
        assert_eq!(spark_version(&["no spark here"]), None);
    }

    #[test]
    fn pyspark_python_from_spark_env() {
        assert_eq!(
            pyspark_python(
                "export PYSPARK_PYTHON=${PYSPARK_PYTHON:-/usr/bin/anaconda/envs/py35/bin/python}"
            )
            .as_deref(),
            Some("/usr/bin/anaconda/envs/py35/bin/python")
        );
        assert_eq!(
            pyspark_python("export PYSPARK_PYTHON=\"/usr/bin/python3\"").as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(pyspark_python("export PYSPARK_PYTHON="), None);
    }

    #[test]
    fn a_vm_probe_has_no_head_node() {
        assert_eq!(parse(&BTreeMap::new()), None);
    }
}
