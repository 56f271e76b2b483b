//! Real package sources for environment tests: a local conda channel of
//! `.conda` packages built here (with rattler's writer), and a wheelhouse of
//! real wheels from PyPI (downloaded once, cached under `target/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The placeholder conda packages carry for their install prefix.
pub const PLACEHOLDER: &str = "/opt/anaconda1anaconda2anaconda3";

/// One file of a package.
struct File<'a> {
    path: &'a str,
    text: String,
    mode: u32,
    /// Text with the prefix placeholder, to be replaced at install.
    prefixed: bool,
}

/// A package to build.
struct Package<'a> {
    name: &'a str,
    version: &'a str,
    build: &'a str,
    subdir: &'a str,
    depends: &'a [&'a str],
    files: Vec<File<'a>>,
}

/// Builds a channel in `dir`: `moor-data 1.0` (linux-64, a file with the
/// prefix placeholder), `moor-hello 1.1` and `1.2` (noarch, a script in
/// bin/ that depends on moor-data). Returns `dir`.
pub fn conda_channel(dir: &Path) -> PathBuf {
    let hello = |version: &str| {
        format!(
            "#!/bin/sh\necho \"moor-hello {version}\"\ncat \"$(dirname \"$0\")/../share/moor-data/where.txt\"\n"
        )
    };
    let packages = [
        Package {
            name: "moor-data",
            version: "1.0",
            build: "h0_0",
            subdir: "linux-64",
            depends: &[],
            files: vec![File {
                path: "share/moor-data/where.txt",
                text: format!("installed in {PLACEHOLDER}\n"),
                mode: 0o644,
                prefixed: true,
            }],
        },
        Package {
            name: "moor-hello",
            version: "1.1",
            build: "0",
            subdir: "noarch",
            depends: &["moor-data >=1.0"],
            files: vec![File {
                path: "bin/moor-hello",
                text: hello("1.1"),
                mode: 0o755,
                prefixed: false,
            }],
        },
        Package {
            name: "moor-hello",
            version: "1.2",
            build: "0",
            subdir: "noarch",
            depends: &["moor-data >=1.0"],
            files: vec![File {
                path: "bin/moor-hello",
                text: hello("1.2"),
                mode: 0o755,
                prefixed: false,
            }],
        },
    ];
    let mut repodata: std::collections::BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
        [
            ("linux-64", Default::default()),
            ("noarch", Default::default()),
        ]
        .into();
    for package in &packages {
        let (file_name, record) = build_package(dir, package);
        repodata
            .get_mut(package.subdir)
            .expect("known subdir")
            .insert(file_name, record);
    }
    for (subdir, records) in repodata {
        let json = serde_json::json!({
            "info": { "subdir": subdir },
            "packages": {},
            "packages.conda": records,
            "repodata_version": 1,
        });
        let path = dir.join(subdir).join("repodata.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
    dir.to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn build_package(channel: &Path, p: &Package) -> (String, serde_json::Value) {
    use std::os::unix::fs::PermissionsExt;
    let staging = tempfile::tempdir().unwrap();
    let root = staging.path();
    let mut paths = Vec::new();
    let mut entries = Vec::new();
    for file in &p.files {
        let path = root.join(file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &file.text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).unwrap();
        let mut entry = serde_json::json!({
            "_path": file.path,
            "path_type": "hardlink",
            "sha256": hex(&Sha256::digest(file.text.as_bytes())),
            "size_in_bytes": file.text.len(),
        });
        if file.prefixed {
            entry["file_mode"] = "text".into();
            entry["prefix_placeholder"] = PLACEHOLDER.into();
        }
        entries.push(entry);
        paths.push(path.clone());
    }
    let mut index = serde_json::json!({
        "name": p.name,
        "version": p.version,
        "build": p.build,
        "build_number": 0,
        "depends": p.depends,
        "subdir": p.subdir,
        "license": "Apache-2.0",
        "timestamp": 1_700_000_000_000u64,
    });
    if p.subdir == "noarch" {
        index["noarch"] = "generic".into();
    } else {
        index["arch"] = "x86_64".into();
        index["platform"] = "linux".into();
    }
    let info: [(&str, Vec<u8>); 3] = [
        (
            "info/index.json",
            serde_json::to_vec_pretty(&index).unwrap(),
        ),
        (
            "info/paths.json",
            serde_json::to_vec_pretty(&serde_json::json!({ "paths": entries, "paths_version": 1 }))
                .unwrap(),
        ),
        (
            "info/files",
            p.files
                .iter()
                .map(|f| format!("{}\n", f.path))
                .collect::<String>()
                .into_bytes(),
        ),
    ];
    for (path, bytes) in info.iter() {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
        paths.push(root.join(path));
    }
    let stem = format!("{}-{}-{}", p.name, p.version, p.build);
    let file_name = format!("{stem}.conda");
    let out = channel.join(p.subdir).join(&file_name);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let writer = std::fs::File::create(&out).unwrap();
    rattler_package_streaming::write::write_conda_package(
        writer,
        root,
        &paths,
        rattler_conda_types::compression_level::CompressionLevel::Lowest,
        None,
        &stem,
        None,
        None,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    // The channel's record is the package's index.json plus its hash and size.
    let mut record = index;
    record["sha256"] = hex(&Sha256::digest(&bytes)).into();
    record["size"] = bytes.len().into();
    (file_name, record)
}

/// The pip requirements of the wheelhouse: scikit-learn and its dependencies.
pub const SKLEARN_REQUIREMENTS: &str =
    "scikit-learn==1.5.2\nnumpy==2.1.3\nscipy==1.14.1\njoblib==1.4.2\nthreadpoolctl==3.5.0\n";

/// `pip download` flags for wheels of CPython 3.11 on x86_64 Linux
/// (Debian 12's Python), whatever Python runs the download.
const CPYTHON_311_LINUX: &[&str] = &[
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
];

/// A wheelhouse with [`SKLEARN_REQUIREMENTS`] for CPython 3.11 on x86_64
/// Linux (Debian 12's Python), downloaded from PyPI once into
/// `target/test-cache/wheelhouse`.
pub fn wheelhouse() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| downloaded_once("wheelhouse", SKLEARN_REQUIREMENTS))
}

/// The scoring server endpoints use, pinned for the tests.
pub const SERVING_REQUIREMENTS: &str = "azureml-inference-server-http==1.5.1\n";

/// A wheelhouse with [`SKLEARN_REQUIREMENTS`] and
/// [`SERVING_REQUIREMENTS`] with their dependencies, for CPython 3.11 on
/// x86_64 Linux, downloaded from PyPI once into
/// `target/test-cache/wheelhouse-serving`.
pub fn serving_wheelhouse() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let reqs = format!("{SKLEARN_REQUIREMENTS}{SERVING_REQUIREMENTS}");
        downloaded_once("wheelhouse-serving", &reqs)
    })
}

/// MLflow's client (the skinny package: no server) and pandas, which
/// `autolog` needs, beside scikit-learn.
pub const MLFLOW_REQUIREMENTS: &str = "mlflow-skinny==3.17.2\npandas==2.2.3\n";

/// A wheelhouse with [`SKLEARN_REQUIREMENTS`] and [`MLFLOW_REQUIREMENTS`]
/// with their dependencies, for CPython 3.11 on x86_64 Linux, downloaded
/// from PyPI once into `target/test-cache/wheelhouse-mlflow`.
pub fn mlflow_wheelhouse() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let reqs = format!("{SKLEARN_REQUIREMENTS}{MLFLOW_REQUIREMENTS}");
        downloaded_once("wheelhouse-mlflow", &reqs)
    })
}

/// `target/test-cache/NAME`: the wheels of `requirements` for CPython 3.11
/// on x86_64 Linux (Debian 12's Python), downloaded from PyPI (pip keeps
/// what is there), their list beside it in `NAME.requirements.txt`.
fn downloaded_once(name: &str, requirements: &str) -> PathBuf {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache");
    let dir = cache.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let reqs = cache.join(format!("{name}.requirements.txt"));
    std::fs::write(&reqs, requirements).unwrap();
    pip_download(&dir, &reqs, CPYTHON_311_LINUX);
    dir
}

/// `pip download --only-binary=:all: -d DIR -r REQS EXTRA`, from PyPI.
fn pip_download(dir: &Path, reqs: &Path, extra: &[&str]) {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--only-binary=:all:"])
        .args(extra)
        .arg("-d")
        .arg(dir)
        .arg("-r")
        .arg(reqs)
        .output()
        .expect("run python3 -m pip (deploy/prereqs.sh installs it)");
    assert!(
        out.status.success(),
        "pip download failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pinned packages of the small wheelhouse: pure-Python wheels, and
/// setuptools for building a package from source (a VCS requirement).
pub const SMALL_REQUIREMENTS: &str = "six==1.16.0\nidna==3.10\nsetuptools==75.8.0\n";

/// A wheelhouse of [`SMALL_REQUIREMENTS`] (any Python 3), downloaded from
/// PyPI once into `target/test-cache/wheelhouse-small`.
pub fn small_wheelhouse() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache/wheelhouse-small");
        std::fs::create_dir_all(&dir).unwrap();
        let reqs = dir.join("../small-requirements.txt");
        std::fs::write(&reqs, SMALL_REQUIREMENTS).unwrap();
        pip_download(&dir, &reqs, &["--no-deps"]);
        dir
    })
}

/// A lock file made by pip-compile (pip-tools) with `--generate-hashes`
/// from `six==1.16.0` and `idna==3.10`: every file of each pinned version
/// hashed, continuation lines and `# via` comments as pip-compile writes
/// them. Made once into `target/test-cache/lock/requirements.txt`.
pub fn pip_compile_lock() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache/lock");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("requirements.txt");
        if lock.exists() {
            return lock;
        }
        std::fs::write(dir.join("requirements.in"), "six==1.16.0\nidna==3.10\n").unwrap();
        let out = Command::new("python3")
            .args(["-m", "piptools", "compile", "--quiet", "--generate-hashes"])
            .args([
                "--no-strip-extras",
                "--no-emit-find-links",
                "--no-emit-index-url",
            ])
            .args(["--output-file", "requirements.tmp", "requirements.in"])
            .current_dir(&dir)
            .output()
            .expect("run pip-compile (deploy/prereqs.sh installs pip-tools)");
        assert!(
            out.status.success(),
            "pip-compile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(dir.join("requirements.tmp"), &lock).unwrap();
        lock
    })
}
