//! MPI jobs: Open MPI's `mpirun` on node 0 starts every rank over SSH, so
//! node 0 must reach the other nodes with SSH for the job's time, and no
//! longer. The controller makes a key for the job alone; the other nodes
//! (`moor-agent mpi-peer RUN_DIR`) accept it only from node 0's address
//! (`from="ADDR",restrict`) until node 0 says the job ended or the run is
//! cancelled, then remove it. Node 0 (`moor-agent mpi-launch RUN_DIR -- CMD`)
//! writes the key (0600), a known_hosts of the other nodes' host keys as moor
//! pinned them (never trust on first use) and an ssh config into the run's
//! folder, waits until every node accepts the key, runs `mpirun`, tells the
//! others how it ended, and removes the key.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moor_proto::{MpiHost, MpiRole};

use crate::error::{AgentError, Result};
use crate::runs::{files, StoredSpec};
use crate::sys;

/// On a peer: present once the job key is accepted.
const READY: &str = "mpi-ready";
/// On a peer: written by node 0 when mpirun ended, holding its exit code.
const JOB_END: &str = "mpi-end";
/// How long a peer waits for the job's end at most.
const PEER_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

fn role(dir: &Path) -> Result<MpiRole> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    stored
        .spec
        .mpi
        .ok_or_else(|| AgentError::usage("the run is not part of an MPI job"))
}

/// How the comment that marks a job's line in authorized_keys begins.
const TAG: &str = "moor-mpi-job:";

/// The comment that marks the job's line in authorized_keys.
fn tag(dir: &Path) -> String {
    format!(
        "{TAG}{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    )
}

fn authorized_keys() -> PathBuf {
    sys::home().join(".ssh/authorized_keys")
}

/// Rewrites authorized_keys without the lines carrying `tag`, and with
/// `add` when given (0600, atomically). The file is edited as bytes: every
/// other line stays byte for byte (a comment in Latin-1 included), and a
/// file that cannot be read is refused, never rewritten.
fn edit_authorized_keys(tag: &str, add: Option<&str>) -> io::Result<()> {
    edit_keys_file(&authorized_keys(), tag, add)
}

/// [`edit_authorized_keys`] on the file at `path`.
fn edit_keys_file(path: &Path, tag: &str, add: Option<&str>) -> io::Result<()> {
    let old = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read {} ({e}); it was left as it is", path.display()),
            ))
        }
    };
    let (mut text, removed) = without_tag(&old, tag);
    if add.is_none() && !removed {
        return Ok(()); // nothing of the job's there: nothing to write
    }
    if let Some(line) = add {
        let ssh = path.parent().expect("a parent");
        if !ssh.exists() {
            fs::create_dir_all(ssh)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(ssh, fs::Permissions::from_mode(0o700))?;
        }
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    let tmp = path.with_extension(format!("moor.{}", sys::random_hex(4)));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// `bytes` without its lines whose last word is `tag`, every other byte
/// kept; and whether any line was removed.
fn without_tag(bytes: &[u8], tag: &str) -> (Vec<u8>, bool) {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut removed = false;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let ours = content.ends_with(tag.as_bytes())
            && content[..content.len() - tag.len()].ends_with(b" ");
        if ours {
            removed = true;
        } else {
            kept.extend_from_slice(line);
        }
    }
    (kept, removed)
}

/// After a run ends: a peer's job key leaves authorized_keys, also when
/// `mpi-peer` itself was killed before it could remove it.
pub fn after_run(dir: &Path) {
    let Ok(MpiRole::Peer { .. }) = role(dir) else {
        return;
    };
    if let Err(e) = edit_authorized_keys(&tag(dir), None) {
        tracing::warn!("the MPI job's key stays in authorized_keys: {e}");
    }
}

/// At the daemon's start: removes from `home`'s authorized_keys the job
/// keys of runs that are no longer going (a peer whose supervisor was
/// killed too, a reboot). Returns how many it removed.
pub fn sweep_job_keys(home: &Path, runs: &crate::runs::Runs) -> usize {
    let path = home.join(".ssh/authorized_keys");
    let Ok(bytes) = fs::read(&path) else {
        return 0;
    };
    let mut removed = 0;
    for line in bytes.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some(tag) = line
            .split_whitespace()
            .last()
            .filter(|w| w.starts_with(TAG))
        else {
            continue;
        };
        let run_id = &tag[TAG.len()..];
        let going = runs.info(run_id).is_ok_and(|r| !r.state.is_final());
        if !going && edit_keys_file(&path, tag, None).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `mpi-peer RUN_DIR`: accepts the job key from node 0 until the job ends.
pub fn peer(dir: &Path) -> Result<i32> {
    let MpiRole::Peer { public_key, from } = role(dir)? else {
        return Err(AgentError::usage("mpi-peer: the run is not a peer"));
    };
    let key = public_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    if from.contains(['"', ',', ' ']) || key.contains('"') {
        return Err(AgentError::usage("mpi-peer: a bad address or key"));
    }
    let _term = sys::survive_sigterm();
    let tag = tag(dir);
    edit_authorized_keys(&tag, Some(&format!("from=\"{from}\",restrict {key} {tag}")))?;
    sys::write_atomic(&dir.join(READY), b"")?;
    println!("moor: node 0 ({from}) may start this node's MPI ranks; waiting for the job to end");
    let deadline = Instant::now() + PEER_LIMIT;
    let code = loop {
        if let Ok(text) = fs::read_to_string(dir.join(JOB_END)) {
            break text.trim().parse().unwrap_or(1);
        }
        if dir.join(files::CANCEL).exists() || Instant::now() >= deadline {
            break 143;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    edit_authorized_keys(&tag, None)?;
    println!("moor: the job ended ({code}); its key is removed");
    Ok(code)
}

/// The ssh command mpirun and this launcher use to reach the other nodes:
/// only the job's config file (each node's user, the job key, the pinned
/// host keys), never the user's.
fn ssh_argv(mpi_dir: &Path) -> Vec<String> {
    vec![
        "ssh".into(),
        "-F".into(),
        mpi_dir.join("ssh_config").display().to_string(),
    ]
}

/// The job's ssh config: every node with its user, the key, the host keys.
fn ssh_config(mpi_dir: &Path, hosts: &[MpiHost]) -> String {
    let mut text = String::new();
    for h in hosts.iter().skip(1) {
        text.push_str(&format!("Host {}\n  User {}\n", h.addr, h.user));
    }
    text.push_str(&format!(
        "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  ConnectTimeout 10\n  ServerAliveInterval 15\n",
        mpi_dir.join("key").display(),
        mpi_dir.join("known_hosts").display()
    ));
    text
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Runs `ssh HOST COMMAND` with the job key.
fn ssh(mpi_dir: &Path, addr: &str, command: &str) -> bool {
    Command::new("ssh")
        .args(&ssh_argv(mpi_dir)[1..])
        .arg(addr)
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `mpi-launch RUN_DIR -- CMD ARGS...`: mpirun over every node.
pub fn launch(dir: &Path, argv: &[String]) -> Result<i32> {
    let MpiRole::Launcher {
        hosts,
        slots,
        private_key,
        known_hosts,
    } = role(dir)?
    else {
        return Err(AgentError::usage("mpi-launch: the run is not node 0"));
    };
    let _term = sys::survive_sigterm();
    let mpi_dir = dir.join("mpi");
    sys::create_private_dir(&mpi_dir)?;
    let key_path = mpi_dir.join("key");
    write_private(&key_path, &private_key)?;
    write_private(&mpi_dir.join("known_hosts"), &known_hosts)?;
    if hosts
        .iter()
        .any(|h| h.user.contains(char::is_whitespace) || h.addr.contains(char::is_whitespace))
    {
        return Err(AgentError::usage(
            "mpi-launch: a node's user or address has spaces",
        ));
    }
    write_private(&mpi_dir.join("ssh_config"), &ssh_config(&mpi_dir, &hosts))?;
    let peers: Vec<&MpiHost> = hosts.iter().skip(1).collect();
    let code = match wait_for_peers(dir, &mpi_dir, &peers) {
        Ok(()) => run_mpirun(dir, &mpi_dir, &hosts, slots, argv)?,
        Err(why) => {
            eprintln!("moor: {why}");
            1
        }
    };
    for peer in &peers {
        let end = format!("printf %s {code} > .moor/runs/{}/{JOB_END}", peer.run_id);
        if !ssh(&mpi_dir, &peer.addr, &end) {
            eprintln!(
                "moor: could not tell {} that the job ended; its run ends with a cancel",
                peer.addr
            );
        }
    }
    let _ = fs::remove_file(&key_path);
    forget_key(dir);
    Ok(code)
}

/// Removes the job key from the run's stored spec (it is useless once the
/// other nodes dropped it, and kept nowhere longer than the job).
fn forget_key(dir: &Path) {
    let path = dir.join(files::SPEC);
    let Ok(mut stored) = sys::read_json::<StoredSpec>(&path) else {
        return;
    };
    if let Some(MpiRole::Launcher { private_key, .. }) = &mut stored.spec.mpi {
        private_key.clear();
        let _ = sys::write_json_atomic(&path, &stored);
    }
}

/// Waits until every other node accepts the job key (30 s at most).
fn wait_for_peers(
    dir: &Path,
    mpi_dir: &Path,
    peers: &[&MpiHost],
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for peer in peers {
        if !moor_proto::is_run_id(&peer.run_id) {
            return Err(format!("node {} has no run id", peer.addr));
        }
        let ready = format!("test -e .moor/runs/{}/{READY}", peer.run_id);
        while !ssh(mpi_dir, &peer.addr, &ready) {
            if Instant::now() >= deadline || dir.join(files::CANCEL).exists() {
                return Err(format!(
                    "node {} did not accept the job's SSH key within 30 s (is sshd there reachable from this node?)",
                    peer.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// Runs mpirun to its end (a cancel reaches it through the process group).
fn run_mpirun(
    dir: &Path,
    mpi_dir: &Path,
    hosts: &[MpiHost],
    slots: u32,
    argv: &[String],
) -> Result<i32> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    // One app context per node: its slots, its own run's folder to start
    // in and write to (each node has the sources, inputs and outputs of its
    // own run).
    let mut command = Command::new("mpirun");
    command.args(["--mca", "plm_rsh_agent", &ssh_argv(mpi_dir).join(" ")]);
    // The run's variables reach every rank.
    let mut names: Vec<&str> = stored.spec.env.keys().map(String::as_str).collect();
    names.push("PATH");
    for name in names {
        command.args(["-x", name]);
    }
    let me = dir.display().to_string();
    for (i, host) in hosts.iter().enumerate() {
        let (run_dir, run_id) = if i == 0 {
            (
                me.clone(),
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            (
                format!("{}/{}", host.runs_dir, host.run_id),
                host.run_id.clone(),
            )
        };
        if i > 0 {
            command.arg(":");
        }
        command
            .args(["-np", &slots.to_string()])
            .args(["-H", &format!("{}:{slots}", host.addr)])
            .args(["-wdir", &format!("{run_dir}/src")])
            .arg("env")
            .arg(format!("MOOR_RUN_ID={run_id}"))
            .arg(format!("MOOR_OUTPUT_DIR={run_dir}/{}", files::OUTPUTS))
            .arg(format!("MOOR_INPUTS_DIR={run_dir}/{}", files::INPUTS))
            .args(argv);
    }
    let status = match command.status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!(
                "moor: cannot start mpirun: {e} (install Open MPI: apt-get install openmpi-bin)"
            );
            return Ok(127);
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::{edit_keys_file, without_tag};

    const TAG: &str = "moor-mpi-job:20261207T000000-aaaaaaaa";

    #[test]
    fn every_other_line_is_kept_byte_for_byte() {
        // A Latin-1 comment (not UTF-8), CRLF, and no newline at the end.
        let mut keys = b"# Jos\xe9's laptop\r\nssh-ed25519 AAAA jose@laptop\n".to_vec();
        keys.extend_from_slice(
            format!("from=\"10.0.0.1\",restrict ssh-ed25519 BBBB {TAG}\n").as_bytes(),
        );
        keys.extend_from_slice(b"ssh-rsa CCCC last-line-without-newline");
        let (kept, removed) = without_tag(&keys, TAG);
        assert!(removed);
        assert_eq!(
            kept,
            b"# Jos\xe9's laptop\r\nssh-ed25519 AAAA jose@laptop\nssh-rsa CCCC last-line-without-newline"
        );
        // Only a whole last word is the job's tag.
        let (kept, removed) = without_tag(format!("ssh-ed25519 DDDD x{TAG}\n").as_bytes(), TAG);
        assert!(!removed);
        assert_eq!(kept.len(), 18 + TAG.len() + 1);
    }

    #[test]
    fn a_job_key_comes_and_goes_and_the_file_is_as_it_was() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(".ssh/authorized_keys");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let before = b"# Jos\xe9\nssh-ed25519 AAAA jose@laptop".to_vec();
        std::fs::write(&path, &before).unwrap();
        let line = format!("from=\"10.0.0.1\",restrict ssh-ed25519 BBBB {TAG}");
        edit_keys_file(&path, TAG, Some(&line)).unwrap();
        let during = std::fs::read(&path).unwrap();
        assert!(during.starts_with(&before) && during.ends_with(format!("{line}\n").as_bytes()));
        edit_keys_file(&path, TAG, None).unwrap();
        let mut expected = before.clone();
        expected.push(b'\n');
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_that_cannot_be_read_is_refused_not_emptied() {
        let home = tempfile::tempdir().unwrap();
        // A folder where the file should be: reading fails, nothing is written.
        let path = home.path().join("authorized_keys");
        std::fs::create_dir(&path).unwrap();
        let e = edit_keys_file(&path, TAG, Some("ssh-ed25519 BBBB x")).unwrap_err();
        assert!(e.to_string().contains("left as it is"), "{e}");
        assert!(path.is_dir());
    }
}
