//! Spark on a head node, against the head-node test host: Debian's OpenJDK,
//! Spark from PyPI laid out as HDInsight's /usr/hdp/current/spark2-client,
//! and Hadoop's own YARN client with no ResourceManager to answer it (YARN
//! and HDFS cannot run here). Real PySpark jobs run through `moor run
//! --spark` in local mode; the head-node checks see what is missing.

use std::path::Path;
use std::time::{Duration, Instant};

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// A word count over the snapshot's data file, with its tokenizer in
/// another module of the snapshot (shipped to executors with --py-files),
/// and a Monte Carlo estimate of pi; both written to outputs/result.json.
const JOB: &str = r#"import json, os, random, sys
from pyspark.sql import SparkSession
from textutil.tokens import words

spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
counts = dict(
    sc.textFile("data.txt").flatMap(words).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect()
)
n = int(sys.argv[1])
def inside(seed):
    rng = random.Random(seed)
    hits = 0
    for _ in range(n):
        x, y = rng.random(), rng.random()
        hits += x * x + y * y <= 1.0
    return hits
parts = 8
pi = 4.0 * sc.parallelize(range(parts), parts).map(inside).sum() / (parts * n)
print(f"pi is roughly {pi:.4f}; {len(counts)} distinct words; master {sc.master}")
print("jars", sc.getConf().get("spark.jars", ""))
with open(os.path.join(os.environ["MOOR_OUTPUT_DIR"], "result.json"), "w") as f:
    json.dump({"pi": pi, "counts": counts}, f)
spark.stop()
"#;

const TOKENS: &str = "import re\n\ndef words(line):\n    return [w for w in re.split(r'[^a-z]+', line.lower()) if w]\n";

const DATA: &str = "The moor, the fen and the heath.\nA heath; a MOOR!\n";

fn source(dir: &Path) {
    std::fs::create_dir_all(dir.join("textutil")).unwrap();
    std::fs::write(dir.join("job.py"), JOB).unwrap();
    std::fs::write(dir.join("textutil/__init__.py"), "").unwrap();
    std::fs::write(dir.join("textutil/tokens.py"), TOKENS).unwrap();
    std::fs::write(dir.join("data.txt"), DATA).unwrap();
    // A jar of the snapshot goes to spark-submit's --jars (a real zip).
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    let made = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(dir.join("lib/udf.jar"))
        .arg(dir.join("data.txt"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(
        dir.join("fails.py"),
        "from pyspark.sql import SparkSession\n\
         SparkSession.builder.getOrCreate()\n\
         raise SystemExit('the job gave up')\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("interpreters.py"),
        "import sys\n\
         from pyspark.sql import SparkSession\n\
         sc = SparkSession.builder.getOrCreate().sparkContext\n\
         print('interpreter', sys.executable)\n\
         print('interpreter', sc.parallelize([0], 1).map(lambda _: __import__('sys').executable).first())\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("slow.py"),
        "import time\n\
         from pyspark.sql import SparkSession\n\
         sc = SparkSession.builder.getOrCreate().sparkContext\n\
         print('slow job started', flush=True)\n\
         sc.parallelize(range(2), 2).map(lambda x: time.sleep(600)).collect()\n",
    )
    .unwrap();
}

fn spark_run(f: &Fixture, src: &str, extra: &[&str], command: &[&str]) -> Output {
    f.moor.run(
        &[
            &["run", "--target", "head", "--source-dir", src, "--spark"][..],
            extra,
            &["--"],
            command,
        ]
        .concat(),
    )
}

#[test]
fn pyspark_jobs_run_through_spark_submit() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let f = Fixture::new(
        MOOR,
        HostSpec {
            spark: true,
            ..HostSpec::default()
        },
    );
    // A Spark machine without YARN is attached as a VM: local mode.
    assert_exit(&f.attach("head", &[]), 0);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src);
    let src = src.to_str().unwrap();

    let out = spark_run(
        &f,
        src,
        &[
            "--spark-master",
            "local[2]",
            "--spark-conf",
            "spark.ui.enabled=false",
            "--json",
        ],
        &["job.py", "20000"],
    );
    assert_exit(&out, 0);
    let run = out.json();
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["spark"]["master"], "local[2]");
    assert_eq!(run["spark"]["conf"][0], "spark.ui.enabled=false");
    assert!(run["yarn_application"].is_null(), "local mode has no YARN");
    // The driver's log streamed (on stderr with --json): Spark's own lines
    // and the job's print.
    assert!(
        out.stderr.contains("pi is roughly 3.1") && out.stderr.contains("master local[2]"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SparkContext"), "{}", out.stderr);
    // The job's `jars ...` line (the driver's own lines may come between).
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("jars ") && l.contains("/lib/udf.jar")),
        "spark.jars: {}",
        out.stderr
    );
    let out = f.moor.run(&[
        "run",
        "--target",
        "head",
        "--source-dir",
        src,
        "--spark-master",
        "yarn",
        "--",
        "job.py",
    ]);
    assert_exit(&out, 2);

    // With a pip environment, the driver and the Python workers both run
    // that environment's interpreter.
    let wheels = moor_tests::packages::wheelhouse()
        .to_str()
        .unwrap()
        .to_owned();
    let reqs = dir.path().join("requirements.txt");
    std::fs::write(&reqs, "threadpoolctl==3.5.0\n").unwrap();
    assert_exit(
        &f.moor.run(&[
            "env",
            "create",
            "tiny",
            "--pip-requirements",
            reqs.to_str().unwrap(),
        ]),
        0,
    );
    let out = spark_run(
        &f,
        src,
        &[
            "--spark-master",
            "local[1]",
            "--env",
            "tiny",
            "--wheelhouse",
            &wheels,
        ],
        &["interpreters.py"],
    );
    assert_exit(&out, 0);
    let seen: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("interpreter "))
        .collect();
    assert_eq!(seen.len(), 2, "{}", out.stdout);
    for python in seen {
        assert!(
            python.contains("/.moor/envs/") && python.ends_with("/prefix/bin/python"),
            "{python}"
        );
    }

    // Cancel stops the driver and its JVM; nothing of it is left.
    let started = f.moor.run(&[
        "run",
        "--target",
        "head",
        "--source-dir",
        src,
        "--spark",
        "--detach",
        "--json",
        "--",
        "slow.py",
    ]);
    assert_exit(&started, 0);
    let id = started.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let logs = f.moor.run(&["logs", &id]);
        if logs.stdout.contains("slow job started") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow job never started: {}",
            logs.stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let cancelled = f.moor.run(&["cancel", &id, "--json"]);
    assert_exit(&cancelled, 0);
    assert_eq!(
        cancelled.json()["state"],
        "cancelled",
        "{}",
        cancelled.stdout
    );
    let left = f.host.exec("pgrep -u moor -f 'java|pyspark' || true");
    assert!(left.trim().is_empty(), "left running: {left}");
}

#[test]
fn a_head_node_without_yarn_or_hdfs_fails_those_checks_with_remedies() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let f = Fixture::new(
        MOOR,
        HostSpec {
            spark: true,
            ..HostSpec::default()
        },
    );
    let out = f.validate(&["--kind", "hdinsight", "--cluster", "spark1"]);
    assert_exit(&out, 3);
    let spark = out.check("spark.submit");
    assert_eq!(spark["status"], "pass");
    assert!(
        out.check_detail("spark.submit")
            .starts_with("Spark 3.5.9 (/usr/hdp/current/spark2-client/bin/spark-submit)"),
        "{spark}"
    );
    // Hadoop's own YARN client, no ResourceManager: it retries until the
    // probe's 15 s limit stops it. How far it got by then depends on how
    // fast its JVM starts on this machine: it may have said nothing yet,
    // named the ResourceManager it connects to, or named the server it is
    // retrying. Each form fails the check and names what it knows (the checks'
    // unit tests cover all three).
    let yarn = out.check("yarn.resourcemanager");
    assert_eq!(yarn["status"], "fail", "{yarn}");
    let detail = out.check_detail("yarn.resourcemanager");
    let (rm, why) = detail
        .strip_prefix("the ResourceManager")
        .and_then(|rest| rest.split_once(" does not answer: "))
        .unwrap_or_else(|| panic!("{yarn}"));
    assert!(rm.is_empty() || rm == " at /0.0.0.0:8032", "{yarn}");
    assert!(
        why == "no answer within 15 s"
            || why == "no answer within 15 s (still retrying 0.0.0.0/0.0.0.0:8032)",
        "{yarn}"
    );
    assert!(yarn["remedy"].as_str().unwrap().contains("ResourceManager"));
    let hdfs = out.check("hdfs.default_fs");
    assert_eq!(hdfs["status"], "fail");
    assert!(out
        .check_detail("hdfs.default_fs")
        .contains("no hdfs command"));
    assert!(hdfs["remedy"].is_string());
    let python = out.check("python.cluster");
    assert_eq!(python["status"], "warn");
    assert!(
        out.check_detail("python.cluster")
            .contains("/usr/bin/python3"),
        "{python}"
    );
    // Named after a cluster whose SSH endpoint it is not: told so.
    let endpoint = out.check("ssh.endpoint");
    assert_eq!(endpoint["status"], "warn", "{endpoint}");
    assert!(
        out.check_detail("ssh.endpoint")
            .ends_with("is not cluster spark1's SSH endpoint spark1-ssh.azurehdinsight.net"),
        "{endpoint}"
    );
    let facts = &out.json()["facts"]["head_node"];
    assert_eq!(facts["spark_version"], "3.5.9");
    assert_eq!(facts["yarn"]["path"], "/usr/local/bin/yarn");
    assert_eq!(facts["yarn"]["exit"], 124);

    // Attaching it as an HDInsight head node is refused, with the checks;
    // named after a cluster whose endpoint it is not, it is told so.
    let out = f.moor.run(
        &[
            &[
                "attach",
                "hdinsight",
                "head",
                "--json",
                "--cluster",
                "spark1",
            ][..],
            &f.login(),
            &["--accept-new-host-key"],
        ]
        .concat(),
    );
    assert_exit(&out, 3);
    assert_eq!(out.check("yarn.resourcemanager")["status"], "fail");
    let endpoint = out.check("ssh.endpoint");
    assert_eq!(endpoint["status"], "warn");
    assert!(
        endpoint["remedy"]
            .as_str()
            .unwrap()
            .contains("spark1-ssh.azurehdinsight.net"),
        "{endpoint}"
    );
}
