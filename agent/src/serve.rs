//! `moor-agent serve`: the per-user daemon, and `moor-agent stdio`, the relay
//! the controller execs over SSH.
//!
//! One daemon per user and agent build: its state directory is `run/` beside
//! the executable (0700), holding `sock` (the Unix socket), `lock` (held by
//! the daemon for its whole life: single instance), `pid` and `log`. `stdio`
//! connects to the socket, starting the daemon when none answers, and copies
//! bytes both ways: the protocol is between controller and daemon.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::sys::create_private_dir;

/// The daemon's state directory: `run/` beside the executable.
pub fn state_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().unwrap_or(Path::new("/")).join("run"))
}

/// Runs the daemon until killed. Exits at once if another one holds the
/// lock, or refuses to start from an unsafe folder.
pub fn serve() -> Result<()> {
    crate::strict_modes::check(&crate::strict_modes::agent_dir()?)?;
    let dir = state_dir()?;
    create_private_dir(&dir)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    let _lock = match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err(_) => {
            tracing::info!("a daemon already runs for {}", dir.display());
            return Ok(());
        }
    };
    let sock = dir.join("sock");
    let _ = fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    fs::write(dir.join("pid"), format!("{}\n", std::process::id()))?;
    let daemon = std::sync::Arc::new(crate::handler::Daemon::new());
    daemon.sweep();
    // Endpoints whose server a host reboot ended come back now.
    daemon.with_endpoints(|e, host| e.resume_all(host));
    tracing::info!(
        "daemon {} listening on {}",
        std::process::id(),
        sock.display()
    );
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                let daemon = daemon.clone();
                std::thread::spawn(move || {
                    if let Err(e) = crate::handler::connection(&daemon, conn) {
                        tracing::info!("connection ended: {e}");
                    }
                });
            }
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
    Ok(())
}

/// Connects to the daemon, starting it if needed, and relays stdin and
/// stdout to it until either side closes; from an unsafe folder (see
/// [`crate::strict_modes`]), answers the refusal instead.
pub fn stdio() -> Result<()> {
    if let Err(refused) = crate::strict_modes::check(&crate::strict_modes::agent_dir()?) {
        // In place of the hello: the controller shows the refusal as it is.
        let mut out = moor_proto::MAGIC.to_vec();
        if let Ok(bytes) = refused.to_response().to_frame(0).to_bytes() {
            out.extend(bytes);
        }
        let _ = io::stdout()
            .write_all(&out)
            .and_then(|()| io::stdout().flush());
        // What the controller sent ahead (pipelined requests, an upload) is
        // read and dropped until it closes: it learns the refusal from the
        // answer, never from a broken pipe.
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        return Err(refused);
    }
    let dir = state_dir()?;
    let stream = connect_or_start(&dir)?;
    let mut to_daemon = stream.try_clone()?;
    let mut from_daemon = stream;
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut to_daemon);
        let _ = to_daemon.shutdown(std::net::Shutdown::Write);
    });
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from_daemon.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if stdout
            .write_all(&buf[..n])
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break; // the SSH channel closed
        }
    }
    drop(upstream);
    Ok(())
}

fn connect_or_start(dir: &Path) -> io::Result<UnixStream> {
    let sock = dir.join("sock");
    if let Ok(stream) = UnixStream::connect(&sock) {
        return Ok(stream);
    }
    create_private_dir(dir)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))?;
    // Its own process group and no terminal: the daemon outlives this SSH
    // session. A second daemon started by a racing stdio exits at the lock.
    Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()?;
    let started = Instant::now();
    loop {
        match UnixStream::connect(&sock) {
            Ok(stream) => return Ok(stream),
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("the agent daemon did not start: {e}"),
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
