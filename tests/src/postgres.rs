//! A real PostgreSQL server for the team server's tests: Debian's
//! `postgresql` binaries, a cluster of its own in a temporary folder
//! (`initdb`, then `pg_ctl` on a free port, its socket in the folder), run
//! as an unprivileged user (`postgres` when the tests run as root). The
//! role `moor` logs in over TCP with a password (scram-sha-256), as a
//! server elsewhere would. Stopped, and its folder removed, when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl Postgres {
    /// Starts a cluster with a database `moor` owned by the role `moor`.
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).find(|b| b.join("initdb").exists()))
            .unwrap_or_else(|| panic!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): deploy/prereqs.sh --tests installs it"));
        let dir = tempfile::Builder::new()
            .prefix("moor-pg-")
            .tempdir()
            .expect("temp dir");
        if as_root() {
            crate::run(Command::new("chown").args(["postgres:postgres", path(dir.path())]));
        }
        let password = format!("pw-{}", std::process::id());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("pwfile");
        if as_root() {
            crate::run(Command::new("chown").args(["postgres:postgres", path(&pwfile)]));
        }
        let data = dir.path().join("data");
        let pg = Postgres {
            bin,
            dir,
            port: free_port(),
            password,
        };
        pg.tool(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                path(&pwfile),
                "-E",
                "UTF8",
            ],
        );
        pg.ctl("start");
        pg.sql(&format!(
            "CREATE ROLE moor LOGIN PASSWORD '{}'",
            pg.password
        ));
        pg.sql("CREATE DATABASE moor OWNER moor");
        pg
    }

    /// The URL the server connects with, password included (for
    /// MOOR_DATABASE_URL; never a command line).
    pub fn url(&self) -> String {
        format!(
            "postgres://moor:{}@127.0.0.1:{}/moor",
            self.password, self.port
        )
    }

    /// The role's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `pg_ctl stop` (fast: sessions are cut, as a crash or restart does).
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// `pg_ctl start`, on the same port.
    pub fn resume(&self) {
        self.ctl("start");
    }

    /// `pg_dump` of the database `moor`: everything it holds, as SQL.
    pub fn dump(&self) -> String {
        self.tool(
            "pg_dump",
            &[
                "-h",
                path(self.dir.path()),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "moor",
            ],
        )
    }

    /// Runs SQL as the superuser.
    pub fn sql(&self, sql: &str) -> String {
        self.tool(
            "psql",
            &[
                "-h",
                path(self.dir.path()),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
        )
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            path(self.dir.path())
        );
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let mut args = vec![
            "-D",
            path(&data),
            "-l",
            path(&log),
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            action,
        ];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        self.tool("pg_ctl", &args);
    }

    fn tool(&self, name: &str, args: &[&str]) -> String {
        let mut cmd = self.command(name);
        cmd.args(args).current_dir(self.dir.path());
        crate::run(&mut cmd)
    }

    /// The PostgreSQL tool `name`, as the cluster's owner.
    fn command(&self, name: &str) -> Command {
        let tool = self.bin.join(name);
        if as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(tool);
            cmd
        } else {
            Command::new(tool)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", path(&data), "-m", "immediate", "stop"])
            .output();
    }
}

fn as_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    // The tests' own uid, without a crate for it.
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
