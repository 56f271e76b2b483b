//! A corporate network for tests: a private network whose only way out is a
//! real forward proxy (Debian's squid) on this machine, and a package index
//! served over HTTPS with a certificate from a private CA, listening on this
//! machine's loopback, so hosts reach it only through the proxy. The index
//! holds a PEP 503 "simple" tree of wheels and a conda channel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::host::Network;
use crate::run;

/// The proxy, the index, the CA and the network; stopped when dropped.
pub struct Corporate {
    /// The private network: hosts started on it reach only the proxy.
    pub network: Arc<Network>,
    /// The proxy's URL as hosts on the network see it (`http://GW:PORT`).
    pub proxy_url: String,
    /// The index's base URL (`https://127.0.0.1:PORT`).
    pub index_url: String,
    /// The CA certificate (PEM file) that signed the index's certificate.
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
    squid: Child,
    index: Child,
}

impl Corporate {
    /// Starts it all; `wheels` are served under `/simple/`, `channel` (a
    /// conda channel folder) under `/channel/`.
    pub fn start(wheels: &[PathBuf], channel: Option<&Path>) -> Corporate {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        simple_index(&root, wheels);
        if let Some(channel) = channel {
            copy_dir(channel, &root.join("channel"));
        }
        let ca_file = make_certificates(dir.path());
        let index_port = free_port();
        let index = Command::new("python3")
            .arg("-c")
            .arg(SERVE)
            .args([&index_port.to_string(), "server.pem", "server.key"])
            .arg(&root)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        wait_for_port("127.0.0.1", index_port);

        let network = Network::create_internal();
        let gateway = run(Command::new("docker").args([
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            &network.name,
        ]));
        let proxy_port = free_port();
        let squid_dir = dir.path().join("squid");
        std::fs::create_dir_all(&squid_dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&squid_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let d = squid_dir.display();
        let conf = format!(
            "http_port {gateway}:{proxy_port}\nhttp_access allow all\ncache deny all\n\
             pid_filename {d}/squid.pid\naccess_log stdio:{d}/access.log\ncache_log {d}/cache.log\n\
             coredump_dir {d}\nnetdb_filename none\nshutdown_lifetime 0 seconds\n"
        );
        std::fs::write(squid_dir.join("squid.conf"), conf).unwrap();
        let squid = Command::new("squid")
            .args(["-N", "-f"])
            .arg(squid_dir.join("squid.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("squid (deploy/prereqs.sh installs it)");
        wait_for_port(&gateway, proxy_port);
        Corporate {
            network,
            proxy_url: format!("http://{gateway}:{proxy_port}"),
            index_url: format!("https://127.0.0.1:{index_port}"),
            ca_file,
            dir,
            squid,
            index,
        }
    }

    /// The proxy's access log: one line per request it forwarded.
    pub fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("squid/access.log")).unwrap_or_default()
    }
}

impl Drop for Corporate {
    fn drop(&mut self) {
        for child in [&mut self.squid, &mut self.index] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A static HTTPS file server: PORT CERT KEY ROOT.
const SERVE: &str = "import functools, http.server, ssl, sys\n\
port, cert, key, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)\n\
server = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)\n\
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
context.load_cert_chain(cert, key)\n\
server.socket = context.wrap_socket(server.socket, server_side=True)\n\
server.serve_forever()\n";

/// A PEP 503 index: `simple/NAME/index.html` linking each wheel.
fn simple_index(root: &Path, wheels: &[PathBuf]) {
    let files = root.join("files");
    std::fs::create_dir_all(&files).unwrap();
    for wheel in wheels {
        let name = wheel.file_name().unwrap().to_str().unwrap();
        std::fs::copy(wheel, files.join(name)).unwrap();
        let project = name
            .split('-')
            .next()
            .unwrap()
            .to_ascii_lowercase()
            .replace('_', "-");
        let page = root.join("simple").join(&project);
        std::fs::create_dir_all(&page).unwrap();
        let html = format!("<html><body><a href=\"../../files/{name}\">{name}</a></body></html>\n");
        std::fs::write(page.join("index.html"), html).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A CA, and a server certificate for 127.0.0.1 it signs (server.pem,
/// server.key in `dir`); returns the CA's certificate file.
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=moor test corporate CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    dir.join("ca.pem")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(host: &str, port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect((host, port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on {host}:{port}");
}
