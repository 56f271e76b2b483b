//! Spark runs (`moor run --spark`): the run's command becomes a spark-submit
//! of the snapshot's script, with the snapshot's other Python files and its
//! jars passed along, so that executors on other machines have them too.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use moor_proto::SparkSpec;

use crate::error::Result;
use crate::sys;

/// Where spark-submit is looked for, after PATH: HDInsight's (HDP) client
/// directories, then `$SPARK_HOME/bin`.
const HDP_CLIENTS: [&str; 2] = [
    "/usr/hdp/current/spark2-client/bin/spark-submit",
    "/usr/hdp/current/spark3-client/bin/spark-submit",
];

/// The spark-submit this host has, if any.
pub fn find_submit() -> Option<PathBuf> {
    sys::which("spark-submit").or_else(|| {
        HDP_CLIENTS
            .iter()
            .map(PathBuf::from)
            .chain(
                std::env::var_os("SPARK_HOME").map(|h| PathBuf::from(h).join("bin/spark-submit")),
            )
            .find(|p| sys::is_executable(p))
    })
}

/// Where `yarn` is: PATH or HDP's client directory.
pub fn find_yarn() -> Option<PathBuf> {
    sys::which("yarn").or_else(|| {
        let hdp = PathBuf::from("/usr/hdp/current/hadoop-yarn-client/bin/yarn");
        sys::is_executable(&hdp).then_some(hdp)
    })
}

/// SPARK_HOME for a spark-submit found at `submit`: the directory above its
/// `bin`, symlinks resolved (`/usr/hdp/current/spark2-client` is one; so is
/// a `spark-submit` on PATH pointing into a pip-installed pyspark).
pub fn spark_home(submit: &Path) -> PathBuf {
    let real = fs::canonicalize(submit).unwrap_or_else(|_| submit.to_owned());
    real.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or(real)
}

/// The spark-submit command line for `command` (script, then its arguments)
/// run from `workdir`; files it needs are written into `run_dir`.
pub fn submit_argv(
    submit: &Path,
    spark: &SparkSpec,
    name: &str,
    command: &[String],
    workdir: &Path,
    run_dir: &Path,
) -> io::Result<Vec<String>> {
    let (script, args) = command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no script to submit"))?;
    if !workdir.join(script).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{script}: no such file in the source snapshot"),
        ));
    }
    let mut argv = vec![
        submit.display().to_string(),
        "--master".into(),
        spark.master.clone(),
        "--name".into(),
        name.to_owned(),
    ];
    for conf in &spark.conf {
        argv.push("--conf".into());
        argv.push(conf.clone());
    }
    let mut py = Vec::new();
    let mut jars = Vec::new();
    collect(workdir, Path::new(""), &mut py, &mut jars)?;
    py.retain(|p| p != Path::new(script));
    if script.ends_with(".py") && !py.is_empty() {
        let zip = run_dir.join("py-files.zip");
        write_zip(&zip, workdir, &py)?;
        argv.push("--py-files".into());
        argv.push(zip.display().to_string());
    }
    jars.retain(|p| p != Path::new(script));
    if !jars.is_empty() {
        let list: Vec<String> = jars
            .iter()
            .map(|j| workdir.join(j).display().to_string())
            .collect();
        argv.push("--jars".into());
        argv.push(list.join(","));
    }
    argv.push(script.clone());
    argv.extend(args.iter().cloned());
    Ok(argv)
}

/// The snapshot's `.py` files and `.jar` files, relative to `root`, sorted.
fn collect(
    root: &Path,
    rel: &Path,
    py: &mut Vec<PathBuf>,
    jars: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, py, jars)?;
        } else if kind.is_file() {
            match path.extension().and_then(|e| e.to_str()) {
                Some("py") => py.push(path),
                Some("jar") => jars.push(path),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A zip (stored, not deflated: Python imports either) of `files` under
/// `root`, for `--py-files`.
fn write_zip(dest: &Path, root: &Path, files: &[PathBuf]) -> io::Result<()> {
    let mut zip = zip::ZipWriter::new(fs::File::create(dest)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o644);
    for file in files {
        zip.start_file(file.to_string_lossy(), options)
            .map_err(io::Error::other)?;
        zip.write_all(&fs::read(root.join(file))?)?;
    }
    zip.finish().map_err(io::Error::other)?;
    Ok(())
}

/// The YARN application id a Spark run's driver printed, from the first
/// 4 MiB of its log (the id comes within its first lines).
pub fn application_id(log: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    fs::File::open(log)
        .ok()?
        .take(4 << 20)
        .read_to_end(&mut head)
        .ok()?;
    yarn_application_id(&String::from_utf8_lossy(&head)).map(str::to_owned)
}

/// The first YARN application id (`application_<cluster ts>_<seq>`) in a
/// Spark driver's log, as spark-submit prints it once the application is
/// submitted ("Submitted application application_..._0001").
fn yarn_application_id(log: &str) -> Option<&str> {
    const PREFIX: &str = "application_";
    let mut rest = log;
    while let Some(at) = rest.find(PREFIX) {
        let tail = &rest[at + PREFIX.len()..];
        let ts = tail.bytes().take_while(u8::is_ascii_digit).count();
        if ts > 0 && tail.as_bytes().get(ts) == Some(&b'_') {
            let seq = tail[ts + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if seq > 0 {
                return Some(&rest[at..at + PREFIX.len() + ts + 1 + seq]);
            }
        }
        rest = &rest[at + PREFIX.len()..];
    }
    None
}

/// `yarn application -kill ID`, allowed `limit`; what went wrong otherwise.
pub fn kill_application(id: &str, limit: Duration) -> Result<()> {
    let yarn = find_yarn().ok_or("no yarn command on this host")?;
    kill_with(&yarn, id, limit)
}

fn kill_with(yarn: &Path, id: &str, limit: Duration) -> Result<()> {
    let mut child = Command::new(yarn)
        .args(["application", "-kill", id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("yarn application -kill {id}: {status}").into())
            };
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("yarn application -kill {id}: no answer in {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SparkSpec {
        SparkSpec {
            master: "local[2]".into(),
            conf: vec!["spark.executor.memory=1g".into()],
        }
    }

    #[test]
    fn submits_the_script_with_the_other_python_files_and_jars() {
        let src = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("lib/pkg")).unwrap();
        fs::write(src.path().join("job.py"), "print(1)\n").unwrap();
        fs::write(src.path().join("lib/pkg/__init__.py"), "").unwrap();
        fs::write(src.path().join("lib/pkg/util.py"), "X = 1\n").unwrap();
        fs::write(src.path().join("lib/udf.jar"), "jar").unwrap();
        fs::write(src.path().join("data.csv"), "a,b\n").unwrap();
        let argv = submit_argv(
            Path::new("/opt/spark/bin/spark-submit"),
            &spec(),
            "moor-r1",
            &["job.py".into(), "--n".into(), "10".into()],
            src.path(),
            run.path(),
        )
        .unwrap();
        let zip = run.path().join("py-files.zip");
        let jar = src.path().join("lib/udf.jar");
        assert_eq!(
            argv,
            [
                "/opt/spark/bin/spark-submit",
                "--master",
                "local[2]",
                "--name",
                "moor-r1",
                "--conf",
                "spark.executor.memory=1g",
                "--py-files",
                zip.to_str().unwrap(),
                "--jars",
                jar.to_str().unwrap(),
                "job.py",
                "--n",
                "10"
            ]
        );
        let mut archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        assert_eq!(names, ["lib/pkg/__init__.py", "lib/pkg/util.py"]);
        let mut util = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("lib/pkg/util.py").unwrap(), &mut util)
            .unwrap();
        assert_eq!(util, "X = 1\n");
    }

    #[test]
    fn a_lone_script_gets_no_py_files_and_a_missing_one_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        fs::write(src.path().join("pi.py"), "").unwrap();
        let argv = submit_argv(
            Path::new("spark-submit"),
            &spec(),
            "n",
            &["pi.py".into()],
            src.path(),
            run.path(),
        )
        .unwrap();
        assert!(!argv.iter().any(|a| a == "--py-files" || a == "--jars"));
        assert_eq!(argv.last().unwrap(), "pi.py");
        let err = submit_argv(
            Path::new("spark-submit"),
            &spec(),
            "n",
            &["nope.py".into()],
            src.path(),
            run.path(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope.py: no such file"), "{err}");
    }

    /// A `yarn` that records its arguments, then behaves as `tail` says.
    fn yarn(dir: &Path, tail: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("yarn");
        let args = dir.join("args");
        fs::write(
            &path,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n{tail}\n", args.display()),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn kills_the_application_and_reports_failures_and_silence() {
        let dir = tempfile::tempdir().unwrap();
        let id = "application_1732700000000_0042";
        let limit = Duration::from_secs(5);
        kill_with(&yarn(dir.path(), "exit 0"), id, limit).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("args")).unwrap(),
            format!("application -kill {id}\n")
        );
        let err = kill_with(&yarn(dir.path(), "exit 255"), id, limit).unwrap_err();
        assert!(err.message.contains("exit status: 255"), "{err}");
        let started = Instant::now();
        let err = kill_with(
            &yarn(dir.path(), "exec sleep 30"),
            id,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(err.message.contains("no answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn finds_the_yarn_application_id_in_a_driver_log() {
        // The lines spark-submit's YARN client prints around the submission
        // (Spark 3, client mode); the cluster timestamp is made up.
        let log = "24/11/27 10:00:01 INFO SparkContext: Running Spark version 3.3.0\n\
                   24/11/27 10:00:03 INFO Client: Requesting a new application from cluster with 4 NodeManagers\n\
                   24/11/27 10:00:04 INFO Client: Submitting application application_1732700000000_0042 to ResourceManager\n\
                   24/11/27 10:00:04 INFO YarnClientImpl: Submitted application application_1732700000000_0042\n";
        assert_eq!(
            yarn_application_id(log),
            Some("application_1732700000000_0042")
        );
        // Not ids: no digits, one part, a trailing underscore.
        assert_eq!(
            yarn_application_id("application_ application_12 application_12_x"),
            None
        );
        assert_eq!(
            yarn_application_id("see application_1_2."),
            Some("application_1_2")
        );
        assert_eq!(yarn_application_id("local mode, no YARN"), None);
    }

    #[test]
    fn spark_home_is_above_bin_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("pyspark");
        fs::create_dir_all(home.join("bin")).unwrap();
        fs::write(home.join("bin/spark-submit"), "").unwrap();
        let client = dir.path().join("spark2-client");
        std::os::unix::fs::symlink(&home, &client).unwrap();
        assert_eq!(
            spark_home(&client.join("bin/spark-submit")),
            fs::canonicalize(&home).unwrap()
        );
    }
}
