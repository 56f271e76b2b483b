//! Test hosts: containers of the moor test-host image running sshd.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::{run, LABEL};

/// Builds the test-host image if its recipe changed; returns its tag. Once per
/// test process; the build script itself caches across processes.
pub fn image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = repo_root().join("deploy/testhost/build-image.sh");
        run(&mut Command::new(&script))
    })
}

/// The head-node test host's image (the test host plus Spark; see
/// deploy/testhost/spark), built if its recipe changed.
pub fn spark_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = repo_root().join("deploy/testhost/build-image.sh");
        run(Command::new(&script).arg("spark"))
    })
}

/// The distributed-training test host's image (Debian's CPU torch with
/// gloo, Open MPI, mpi4py, scikit-learn; see deploy/testhost/dist.packages).
pub fn dist_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = repo_root().join("deploy/testhost/build-image.sh");
        run(Command::new(&script).arg("dist"))
    })
}

/// The arm64 test host's image: an aarch64 Debian run under qemu-user-static
/// (see deploy/testhost/arm64.packages; the script sets up binfmt_misc).
pub fn arm64_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = repo_root().join("deploy/testhost/build-image.sh");
        run(Command::new(&script).arg("arm64"))
    })
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private Docker network; removed when the last host on it is dropped.
#[derive(Debug)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// Unreachable from the machine running the tests.
    pub private: bool,
}

impl Network {
    /// Creates a network labelled [`LABEL`].
    pub fn create() -> Arc<Network> {
        let name = unique("moor-test-net");
        run(Command::new("docker").args(["network", "create", "--label", LABEL, &name]));
        Arc::new(Network {
            name,
            private: false,
        })
    }

    /// A network with no way out (`--internal`); this machine is its
    /// gateway, so a host on it reaches only what listens on that address.
    pub fn create_internal() -> Arc<Network> {
        let name = unique("moor-test-internal");
        run(Command::new("docker").args([
            "network",
            "create",
            "--internal",
            "--label",
            LABEL,
            &name,
        ]));
        Arc::new(Network {
            name,
            private: false,
        })
    }

    /// A network the machine running the tests cannot reach (internal, and
    /// its bridge has no address here): only a host that is also on another
    /// network, a bastion, gets in. Docker's DNS gives its hosts' names to
    /// the hosts on it, not to this machine.
    pub fn create_private() -> Arc<Network> {
        let name = unique("moor-test-private");
        run(Command::new("docker").args([
            "network",
            "create",
            "--internal",
            "-o",
            "com.docker.network.bridge.inhibit_ipv4=true",
            "--label",
            LABEL,
            &name,
        ]));
        Arc::new(Network {
            name,
            private: true,
        })
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
    }
}

/// Which authentication methods the host's sshd offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshAuth {
    /// Public key and password.
    Any,
    /// Password only.
    Password,
    /// Public key only.
    Key,
    /// keyboard-interactive only (PAM asks for the password).
    KeyboardInteractive,
}

/// What kind of host to start.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// os-release to show: `ubuntu-24.04`, `ubuntu-22.04`, `ubuntu-20.04`,
    /// `debian-12` or `centos-7`.
    pub os: &'static str,
    /// Methods sshd offers.
    pub auth: SshAuth,
    /// The user's password.
    pub password: Option<String>,
    /// authorized_keys lines.
    pub authorized_keys: Vec<String>,
    /// Mount the Docker socket; `Some(true)` also lets the user use it.
    pub docker_socket: Option<bool>,
    /// Size of a tmpfs mounted as $HOME, e.g. `1m`: a host with a full disk.
    pub home_tmpfs: Option<&'static str>,
    /// Small tmpfs mounts under ~/.moor, as (folder, size), e.g.
    /// `("envs", "100m")`: a disk that fills up while an environment builds,
    /// a snapshot uploads or a run writes (the home disk stays large).
    pub moor_tmpfs: &'static [(&'static str, &'static str)],
    /// Passwordless sudo for the user.
    pub sudo: bool,
    /// A head node: the image with Spark and a YARN client ([`spark_image`]).
    pub spark: bool,
    /// A training node: the image with torch, Open MPI and scikit-learn
    /// ([`dist_image`]).
    pub dist: bool,
    /// An aarch64 machine, emulated ([`arm64_image`]).
    pub arm64: bool,
}

impl Default for HostSpec {
    fn default() -> Self {
        HostSpec {
            os: "debian-12",
            auth: SshAuth::Any,
            password: None,
            authorized_keys: Vec::new(),
            docker_socket: None,
            home_tmpfs: None,
            moor_tmpfs: &[],
            sudo: false,
            spark: false,
            dist: false,
            arm64: false,
        }
    }
}

/// The login user on every test host.
pub const USER: &str = "moor";

/// A running test host. Dropping it removes the container.
#[derive(Debug)]
pub struct TestHost {
    /// Container name.
    pub name: String,
    /// Its address on the private network.
    pub ip: String,
    network: Arc<Network>,
    /// Networks it joined after it started (a bastion's private one).
    joined: Vec<Arc<Network>>,
}

impl TestHost {
    /// Starts a host on a network of its own.
    pub fn start(spec: &HostSpec) -> TestHost {
        Self::start_on(&Network::create(), spec)
    }

    /// Starts a host on `network` and waits until sshd answers.
    pub fn start_on(network: &Arc<Network>, spec: &HostSpec) -> TestHost {
        let image = match (spec.spark, spec.dist, spec.arm64) {
            (true, _, _) => spark_image(),
            (_, true, _) => dist_image(),
            (_, _, true) => arm64_image(),
            _ => image(),
        };
        let name = unique("moor-test-host");
        let mut cmd = Command::new("docker");
        cmd.args([
            "run",
            "-d",
            "--label",
            LABEL,
            "--name",
            &name,
            "--hostname",
            &name,
        ])
        .args(["--network", &network.name])
        .args(["-e", &format!("MOOR_OS={}", spec.os)])
        .args([
            "-e",
            &format!(
                "MOOR_AUTH={}",
                match spec.auth {
                    SshAuth::Any => "any",
                    SshAuth::Password => "password",
                    SshAuth::Key => "key",
                    SshAuth::KeyboardInteractive => "kbdint",
                }
            ),
        ]);
        // Secrets go by name (-e VAR), their values through the environment,
        // never in docker's argv.
        if let Some(pw) = &spec.password {
            cmd.args(["-e", "MOOR_PASSWORD"]).env("MOOR_PASSWORD", pw);
        }
        if !spec.authorized_keys.is_empty() {
            cmd.args(["-e", "MOOR_AUTHORIZED_KEYS"])
                .env("MOOR_AUTHORIZED_KEYS", spec.authorized_keys.join("\n"));
        }
        if let Some(access) = spec.docker_socket {
            cmd.args(["-v", "/var/run/docker.sock:/var/run/docker.sock"]);
            if access {
                cmd.args(["-e", "MOOR_DOCKER_ACCESS=yes"]);
            }
        }
        if let Some(size) = spec.home_tmpfs {
            cmd.args(["--tmpfs", &format!("/home/{USER}:rw,size={size},mode=0755")]);
        }
        for (folder, size) in spec.moor_tmpfs {
            // The entrypoint gives the mounts (and ~/.moor) to the user.
            cmd.args([
                "--tmpfs",
                &format!("/home/{USER}/.moor/{folder}:rw,size={size},mode=0700"),
            ]);
        }
        if spec.sudo {
            cmd.args(["-e", "MOOR_SUDO=nopasswd"]);
        }
        cmd.arg(image);
        run(&mut cmd);
        let mut host = TestHost {
            ip: String::new(),
            name,
            network: network.clone(),
            joined: Vec::new(),
        };
        host.ip = run(Command::new("docker").args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &host.name,
        ]));
        // An emulated host makes its host keys ten times slower.
        host.wait_for_ssh(Duration::from_secs(if spec.arm64 { 180 } else { 30 }));
        host
    }

    /// `--host IP --user moor`: how moor reaches this host.
    pub fn login(&self) -> [&str; 4] {
        ["--host", &self.ip, "--user", USER]
    }

    /// The network the host is on.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    /// Connects the host to another network too (a bastion into a private
    /// one); its [`TestHost::ip`] stays the first network's.
    pub fn join(&mut self, network: &Arc<Network>) {
        run(Command::new("docker").args(["network", "connect", &network.name, &self.name]));
        self.joined.push(network.clone());
    }

    /// Waits until port 22 sends an SSH banner (asked from inside the host
    /// when its network is private).
    pub fn wait_for_ssh(&self, limit: Duration) {
        if self.network.private {
            return self.wait_for_ssh_inside(limit);
        }
        let addr: SocketAddr = format!("{}:22", self.ip)
            .parse()
            .expect("container address");
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "sshd on {} did not come up within {limit:?}: {}",
            self.name,
            self.logs()
        );
    }

    fn wait_for_ssh_inside(&self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            let banner = Command::new("docker")
                .args(["exec", &self.name, "bash", "-c"])
                .arg("exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3")
                .output();
            if banner.is_ok_and(|out| out.stdout == b"SSH-") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "sshd on {} did not come up within {limit:?}: {}",
            self.name,
            self.logs()
        );
    }

    /// Runs a command in the container as the login user, with `stdin`.
    pub fn exec_as_user(&self, args: &[&str], stdin: &[u8]) -> (i32, String) {
        use std::io::Write;
        let mut child = Command::new("docker")
            .args([
                "exec",
                "-i",
                "-u",
                USER,
                "-e",
                &format!("HOME=/home/{USER}"),
                &self.name,
            ])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("docker exec");
        let mut pipe = child.stdin.take().expect("stdin");
        let _ = pipe.write_all(stdin);
        drop(pipe);
        let out = child.wait_with_output().expect("docker exec");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Reads a file on the host (as root); `None` when it does not exist.
    pub fn read_file(&self, path: &str) -> Option<String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "cat", path])
            .output()
            .expect("docker exec");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a command in the container as root.
    pub fn exec(&self, script: &str) -> String {
        run(Command::new("docker").args(["exec", &self.name, "sh", "-c", script]))
    }

    /// The SHA256 fingerprint of the host's ed25519 key, as ssh-keygen prints it.
    pub fn ed25519_fingerprint(&self) -> String {
        let out = self.exec("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
        out.split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_owned()
    }

    /// Gives the host new host keys (as a reinstall would) and makes sshd use them.
    pub fn regenerate_host_keys(&self) {
        self.exec("rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -A && kill -HUP 1");
        std::thread::sleep(Duration::from_millis(300));
        self.wait_for_ssh(Duration::from_secs(10));
    }

    /// Makes sshd offer only a new ECDSA host key (the ed25519 and RSA keys
    /// gone), as a host reinstalled with other defaults would.
    pub fn offer_only_a_new_ecdsa_key(&self) {
        self.exec(
            "rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -t ecdsa -N '' -f /etc/ssh/ssh_host_ecdsa_key && kill -HUP 1",
        );
        std::thread::sleep(Duration::from_millis(300));
        self.wait_for_ssh(Duration::from_secs(10));
    }

    /// The public half of the host's ed25519 key (`ssh-ed25519 AAAA...`).
    pub fn ed25519_public_key(&self) -> String {
        let line = self.exec("cat /etc/ssh/ssh_host_ed25519_key.pub");
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Freezes the container: TCP connects hang, nothing answers.
    pub fn pause(&self) {
        run(Command::new("docker").args(["pause", &self.name]));
    }

    /// Thaws a paused container.
    pub fn unpause(&self) {
        run(Command::new("docker").args(["unpause", &self.name]));
    }

    /// The container's log (sshd's output).
    pub fn logs(&self) -> String {
        Command::new("docker")
            .args(["logs", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}
