//! Running the real `moor` binary in an isolated environment: its own HOME
//! (so no ~/.ssh of the machine running the tests leaks in), its own
//! workspace, no ssh-agent unless a test sets one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A sandbox for `moor` runs.
#[derive(Debug)]
pub struct Moor {
    bin: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
    mux: bool,
    local: bool,
}

/// What one run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Output {
    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// The detail of the check with this id.
    pub fn check_detail(&self, id: &str) -> String {
        self.check(id)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The check with this id from `--json` output.
    pub fn check(&self, id: &str) -> serde_json::Value {
        self.json()["checks"]
            .as_array()
            .expect("checks array")
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id} in {}", self.stdout))
            .clone()
    }
}

impl Moor {
    /// A sandbox around the binary at `bin` (pass `env!("CARGO_BIN_EXE_moor")`).
    pub fn new(bin: &str) -> Moor {
        let home = tempfile::tempdir().expect("temp HOME");
        std::fs::create_dir_all(home.path().join(".ssh")).expect("~/.ssh");
        Moor {
            bin: PathBuf::from(bin),
            home,
            env: Vec::new(),
            // Connections are direct unless a test asks for the mux (or
            // MOOR_TEST_MUX=1 runs every test through it): a test that
            // changes a host's keys or network sees what it did at once.
            mux: std::env::var("MOOR_TEST_MUX").is_ok_and(|v| v == "1"),
            local: true,
        }
    }

    /// The sandbox's HOME.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The sandbox's workspace directory.
    pub fn workspace(&self) -> PathBuf {
        self.home.path().join("workspace")
    }

    /// `moor download RUN` into a fresh directory under the sandbox, then
    /// the JSON file `name` of the run's outputs.
    pub fn download_json(&self, run_id: &str, name: &str) -> serde_json::Value {
        let to = self.home.path().join("downloads").join(run_id);
        let out = self.run(&["download", run_id, "--to", to.to_str().expect("UTF-8 path")]);
        assert_eq!(out.code, 0, "download failed: {}", out.stderr);
        let bytes = std::fs::read(to.join(name))
            .unwrap_or_else(|e| panic!("{name} in the outputs of {run_id}: {e}"));
        serde_json::from_slice(&bytes).expect("JSON outputs")
    }

    /// Sets an environment variable for every later run.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Gives no MOOR_WORKSPACE: a member of a team whose saved login makes
    /// the workspace commands the team server's.
    pub fn without_workspace(&mut self) -> &mut Self {
        self.local = false;
        self
    }

    /// Lets commands use the workspace's warm connections (`moor mux`).
    pub fn with_mux(&mut self) -> &mut Self {
        self.mux = true;
        self
    }

    /// Starts `moor ARGS` without waiting (stdout and stderr discarded), for
    /// tests that kill it or race it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().expect("spawn moor")
    }

    /// Starts `moor ARGS` without waiting, stdout and stderr piped (stdin
    /// empty), for tests that read it as it goes and interrupt it.
    pub fn spawn_piped(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn moor")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("USER", "tester");
        if self.local {
            cmd.env("MOOR_WORKSPACE", self.workspace());
        }
        if !self.mux {
            cmd.env("MOOR_NO_MUX", "1");
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `moor ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    /// Runs `moor ARGS` with `stdin` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn moor");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for moor");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}
