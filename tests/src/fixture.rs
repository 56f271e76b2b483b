//! The usual test setup: a host that trusts a fresh ed25519 key, and a moor
//! sandbox to run commands against it.

use crate::{HostSpec, KeyPair, Keys, Moor, Output, TestHost};

/// A host, a key it trusts, and a moor sandbox.
pub struct Fixture {
    /// The host.
    pub host: TestHost,
    /// The key in its authorized_keys.
    pub key: KeyPair,
    /// The sandbox.
    pub moor: Moor,
    _keys: Keys,
}

impl Fixture {
    /// Starts a host from `spec`, with a new key added to its authorized keys;
    /// `bin` is the moor binary (`env!("CARGO_BIN_EXE_moor")`).
    pub fn new(bin: &str, spec: HostSpec) -> Fixture {
        let keys = Keys::new();
        let key = keys.generate("id_ed25519", "ed25519", None);
        let mut spec = spec;
        spec.authorized_keys.push(key.public.clone());
        Fixture {
            host: TestHost::start(&spec),
            key,
            moor: Moor::new(bin),
            _keys: keys,
        }
    }

    /// The key file's path.
    pub fn key_path(&self) -> &str {
        self.key.private.to_str().expect("UTF-8 temp path")
    }

    /// `--host IP --user moor --key KEY`.
    pub fn login(&self) -> Vec<&str> {
        [&self.host.login()[..], &["--key", self.key_path()]].concat()
    }

    /// `moor validate --json LOGIN --accept-new-host-key EXTRA`.
    pub fn validate(&self, extra: &[&str]) -> Output {
        let args = [
            &["validate", "--json"][..],
            &self.login(),
            &["--accept-new-host-key"],
            extra,
        ]
        .concat();
        self.moor.run(&args)
    }

    /// `moor attach vm NAME --json LOGIN --accept-new-host-key`.
    pub fn attach_args<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        [
            &["attach", "vm", name, "--json"][..],
            &self.login(),
            &["--accept-new-host-key"],
        ]
        .concat()
    }

    /// Runs attach with `extra` flags in this fixture's sandbox.
    pub fn attach(&self, name: &str, extra: &[&str]) -> Output {
        self.attach_with(&self.moor, name, extra)
    }

    /// `moor run --target TARGET --source-dir SRC EXTRA -- COMMAND` in this
    /// fixture's sandbox.
    pub fn run_on(
        &self,
        target: &str,
        src: &std::path::Path,
        extra: &[&str],
        command: &[&str],
    ) -> Output {
        let src = src.to_str().expect("UTF-8 path");
        let head = ["run", "--target", target, "--source-dir", src];
        self.moor
            .run(&[&head[..], extra, &["--"], command].concat())
    }

    /// Runs attach with `extra` flags in another sandbox (another workspace).
    pub fn attach_with(&self, moor: &Moor, name: &str, extra: &[&str]) -> Output {
        moor.run(&[&self.attach_args(name)[..], extra].concat())
    }
}

/// Asserts the exit code, showing both streams when it is wrong.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.code, code,
        "expected exit {code}\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

/// The path of the file called `name` somewhere under `dir` (a download's
/// layout), or `dir/missing` when there is none.
pub fn find_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            return path;
        }
        if path.is_dir() {
            let found = find_file(&path, name);
            if found.exists() {
                return found;
            }
        }
    }
    dir.join("missing")
}
