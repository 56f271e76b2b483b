//! The install script attach runs on a host (`moor::remote::INSTALL`), run
//! locally with the agent this build embeds: a good upload installs, a cut
//! one leaves nothing that looks installed, old versions are pruned, and
//! racing installs do not clash.

use moor::remote::{key_values, INSTALL};
use moor_cli::AGENT_X86_64 as AGENT;

/// Starts the install script locally with `HOME` at `home`, feeding it
/// `upload` from a thread (so several can run at once).
fn spawn_install(home: &std::path::Path, upload: Vec<u8>) -> std::process::Child {
    spawn_packed_install(home, upload, "raw")
}

/// [`spawn_install`] of an upload packed with `packing` (`xz`, `gzip`, `raw`).
fn spawn_packed_install(
    home: &std::path::Path,
    upload: Vec<u8>,
    packing: &str,
) -> std::process::Child {
    use std::io::Write;
    let id = AGENT.install_id();
    let mut child = std::process::Command::new("sh")
        .args(["-c", INSTALL, "install", &id, AGENT.sha256, packing])
        .env("HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || stdin.write_all(&upload));
    child
}

/// The install script, run locally: a good upload installs, a corrupt or
/// cut one leaves nothing that looks installed, and a second install of
/// the same agent is a no-op.
#[test]
fn install_script_verifies_and_is_atomic() {
    let home = tempfile::tempdir().unwrap();
    let agent = AGENT.binary().unwrap();
    let sha = AGENT.sha256;
    let id = AGENT.install_id();
    let run = |stdin: &[u8]| {
        let out = spawn_install(home.path(), stdin.to_vec())
            .wait_with_output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let installed = home.path().join(".moor/agent").join(&id).join("moor-agent");

    let (code, out) = run(&agent[..agent.len() / 2]);
    assert_eq!(code, Some(65), "{out}");
    assert!(out.contains("error=agent upload corrupted"));
    assert!(!installed.exists());
    let dir = installed.parent().unwrap();
    assert_eq!(
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".moor-agent.tmp")
            })
            .count(),
        0,
        "no temporary file left"
    );

    let (code, out) = run(agent);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(key_values(&out)["status"], "installed");
    let hello = moor_proto::Hello::find(&out).unwrap();
    assert_eq!(hello.build, sha);

    let (code, out) = run(agent);
    assert_eq!(code, Some(0));
    assert_eq!(key_values(&out)["status"], "present");

    // Older versions are pruned down to the newest three. The daemon of a
    // pruned one (here the oldest, a real agent daemon) is stopped; a stale
    // pid file naming some other process (the second) kills nothing.
    let root = home.path().join(".moor/agent");
    for old in ["0.0.1-a", "0.0.2-b", "0.0.3-c", "0.0.4-d"] {
        std::fs::create_dir(root.join(old)).unwrap();
    }
    let old_agent = root.join("0.0.1-a/moor-agent");
    std::fs::write(&old_agent, agent).unwrap();
    std::fs::set_permissions(
        &old_agent,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut old_daemon = std::process::Command::new(&old_agent)
        .arg("serve")
        .env("HOME", home.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = root.join("0.0.1-a/run/pid");
    let started = std::time::Instant::now();
    while !pid_file.exists() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pid_file.exists(), "the old daemon started");
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::create_dir(root.join("0.0.2-b/run")).unwrap();
    std::fs::write(root.join("0.0.2-b/run/pid"), bystander.id().to_string()).unwrap();
    for (i, old) in ["0.0.1-a", "0.0.2-b", "0.0.3-c", "0.0.4-d"]
        .iter()
        .enumerate()
    {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(100 - i as u64);
        std::fs::File::open(root.join(old))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let (code, _) = run(agent);
    assert_eq!(code, Some(0));
    assert!(!old_daemon.wait().unwrap().success(), "old daemon stopped");
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a process named by a stale pid file is left alone"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["0.0.3-c".to_owned(), "0.0.4-d".to_owned(), id.clone()]
    );
}

/// A packed upload is unpacked by the host's tool and verified unpacked: a
/// cut stream or the right packing of the wrong bytes installs nothing.
#[test]
fn packed_uploads_are_unpacked_then_verified() {
    for (packing, packed) in [("xz", AGENT.xz), ("gzip", AGENT.gzip(None).unwrap())] {
        let home = tempfile::tempdir().unwrap();
        let installed = home
            .path()
            .join(".moor/agent")
            .join(AGENT.install_id())
            .join("moor-agent");
        let run = |upload: &[u8]| {
            let out = spawn_packed_install(home.path(), upload.to_vec(), packing)
                .wait_with_output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let (code, out) = run(&packed[..packed.len() / 2]);
        assert_eq!(code, Some(65), "{packing}: {out}");
        assert!(out.contains("could not unpack"), "{packing}: {out}");
        assert!(!installed.exists());
        let other = if packing == "xz" {
            AGENT.gzip(None).unwrap()
        } else {
            AGENT.xz
        };
        let (code, _) = run(other);
        assert_eq!(code, Some(65), "{packing}: the other packing");
        assert!(!installed.exists());
        let (code, out) = run(packed);
        assert_eq!(code, Some(0), "{packing}: {out}");
        assert_eq!(key_values(&out)["status"], "installed");
        assert_eq!(moor_proto::Hello::find(&out).unwrap().build, AGENT.sha256);
    }
}

/// Two installs at once (two attaches racing): the lock serializes them,
/// both succeed, one agent results.
#[test]
fn concurrent_installs_do_not_clash() {
    let home = tempfile::tempdir().unwrap();
    let id = AGENT.install_id();
    let children: Vec<_> = (0..4)
        .map(|_| spawn_install(home.path(), AGENT.binary().unwrap().to_vec()))
        .collect();
    let statuses: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            key_values(&String::from_utf8_lossy(&out.stdout))["status"].clone()
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "installed").count(),
        1,
        "{statuses:?}"
    );
    let dir = home.path().join(".moor/agent").join(&id);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["moor-agent"]);
}
