//! The second audit's probes (issue 33) that broke, each a regression test
//! named after what it found, against real test hosts.

use moor_tests::{assert_exit, docker_or_skip, source_dir as src, Cluster, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// `${{inputs.x}}` in a comment's wake, a heredoc, `"$(...)"` and
/// backticks, from the file and from `--set`: the value is printed exactly,
/// never run.
#[test]
fn job_file_inputs_never_run_as_shell_code() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    let moor = &c.moor;
    let job = "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
               command: |\n\
               \x20 # don't: a quote in a comment\n\
               \x20 echo \"one:${{inputs.x}}\"\n\
               \x20 cat <<EOF\n\
               \x20 two:${{inputs.x}}\n\
               \x20 EOF\n\
               \x20 echo \"three:$(echo ${{inputs.x}})\"\n\
               \x20 echo four:`echo ${{inputs.x}}`\n\
               \x20 echo 'five:${{inputs.x}}'\n\
               inputs:\n  x: \"$(touch /tmp/pwned-file)\"\n\
               compute: node0\n";
    let dir = src(&[("job.yml", job)]);
    let file = dir.path().join("job.yml");
    let file = file.to_str().unwrap();
    let out = moor.run(&["job", "submit", file]);
    assert_exit(&out, 0);
    for n in ["one", "two", "three", "four", "five"] {
        assert!(
            out.stdout
                .contains(&format!("{n}:$(touch /tmp/pwned-file)\n")),
            "{n}: {}",
            out.stdout
        );
    }
    let set = moor.run(&[
        "job",
        "submit",
        file,
        "--set",
        "inputs.x=`touch /tmp/pwned-set`",
    ]);
    assert_exit(&set, 0);
    assert!(
        set.stdout.contains("four:`touch /tmp/pwned-set`\n"),
        "{}",
        set.stdout
    );
    assert_eq!(
        c.hosts[0]
            .exec("ls /tmp/pwned-file /tmp/pwned-set 2>/dev/null | wc -l")
            .trim(),
        "0"
    );
}

/// `~/.moor` a link to a folder other users can write: attach refuses,
/// naming it, and writes no agent there. Once attached, a folder on the way
/// made group-writable (or another user's) stops every command (exit 8,
/// the folder and the fix), the daemon started afresh included.
#[test]
fn a_swappable_agent_is_refused_at_attach_and_at_every_start() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    let dir = src(&[("a.txt", "a")]);
    f.host.exec(
        "mkdir -m 777 /srv/shared && chmod 777 /srv/shared && ln -s /srv/shared /home/moor/.moor && chown -h moor:moor /home/moor/.moor",
    );
    let out = f.attach("vm1", &[]);
    assert_exit(&out, 8);
    assert!(
        out.stderr
            .contains("unsafe folder /srv/shared on the way to the agent"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("chmod go-w"), "{}", out.stderr);
    assert_eq!(
        f.host
            .exec("find /srv/shared -name '*moor-agent*' | wc -l")
            .trim(),
        "0"
    );

    f.host.exec("rm /home/moor/.moor");
    assert_exit(&f.attach("vm1", &[]), 0);
    assert_exit(&f.moor.run(&["runs", "--target", "vm1"]), 0);
    for (unsafe_it, named) in [
        ("chmod g+w /home/moor/.moor/agent", "/home/moor/.moor/agent"),
        // Another user's, which moor can still go through.
        (
            "chown nobody /home/moor/.moor && chmod 755 /home/moor/.moor",
            "/home/moor/.moor",
        ),
    ] {
        // The daemon killed too: a fresh start refuses the same.
        f.host.exec(&format!(
            "{unsafe_it} && pkill -9 -u moor -f 'moor-agent serve'; true"
        ));
        let out = f.moor.run(&["runs", "--target", "vm1"]);
        assert_exit(&out, 8);
        assert!(
            out.stderr
                .contains(&format!("unsafe folder {named} on the way to the agent")),
            "{}",
            out.stderr
        );
        let out = f.run_on("vm1", dir.path(), &["--json"], &["true"]);
        assert_exit(&out, 8);
        assert_eq!(out.json()["error"]["kind"], "unsafe_path", "{}", out.stdout);
        assert_eq!(
            f.host
                .exec("pgrep -u moor -f 'moor-agent serve' | wc -l")
                .trim(),
            "0"
        );
        f.host
            .exec("chmod g-w /home/moor/.moor/agent && chown moor /home/moor/.moor");
        assert_exit(&f.moor.run(&["runs", "--target", "vm1"]), 0);
    }
}

/// One of three warm targets frozen (`docker pause`: no FIN, no RST):
/// `moor runs` answers within 12 s with the other two's runs listed and
/// the frozen one named, instead of waiting 75 s for the keepalives.
#[test]
fn a_target_that_vanished_stalls_no_command() {
    if !docker_or_skip() {
        return;
    }
    let mut c = Cluster::new(MOOR, 3, HostSpec::default());
    c.moor.with_mux();
    let dir = src(&[("a.txt", "a")]);
    for node in ["node0", "node1", "node2"] {
        let out = c.moor.run(&[
            "run",
            "--target",
            node,
            "--source-dir",
            dir.path().to_str().unwrap(),
            "--name",
            &format!("on-{node}"),
            "--",
            "true",
        ]);
        assert_exit(&out, 0);
    }
    // Warm: the mux holds a connection to each.
    assert_exit(&c.moor.run(&["runs"]), 0);
    c.hosts[1].pause();
    let started = std::time::Instant::now();
    let out = c.moor.run(&["runs", "--json"]);
    let took = started.elapsed();
    c.hosts[1].unpause();
    assert!(took < std::time::Duration::from_secs(12), "took {took:?}");
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("target node1"), "{}", out.stderr);
    let rows = out.json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reachable"] != false)
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in ["on-node0", "on-node2"] {
        assert!(names.contains(&name), "{name} missing: {rows}");
    }
}

/// A run's 256 MiB sparse image (a few blocks of data) is downloaded as a
/// sparse file: the same bytes, and about the host's disk use, not 256 MiB.
#[test]
fn sparse_outputs_stay_sparse_when_downloaded() {
    use std::os::unix::fs::MetadataExt;
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    let dir = src(&[(
        "make.sh",
        "truncate -s 256M \"$MOOR_OUTPUT_DIR/disk.img\"\n\
         printf head | dd of=\"$MOOR_OUTPUT_DIR/disk.img\" conv=notrunc status=none\n\
         printf tail | dd of=\"$MOOR_OUTPUT_DIR/disk.img\" bs=1 seek=268435452 conv=notrunc status=none\n\
         du -k \"$MOOR_OUTPUT_DIR/disk.img\"\n",
    )]);
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--source-dir",
        dir.path().to_str().unwrap(),
        "--json",
        "--",
        "sh",
        "make.sh",
    ]);
    assert_exit(&out, 0);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &c.moor
            .run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    let img = to.path().join("disk.img");
    let meta = std::fs::metadata(&img).unwrap();
    assert_eq!(meta.len(), 1 << 28);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes on disk",
        meta.blocks() * 512
    );
    let mut head = [0u8; 4];
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(&img).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head");
    f.seek(std::io::SeekFrom::Start((1 << 28) - 4)).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"tail");
}

/// Bad input gets exit 2 at once, the limit named: a 10 MB job file, a job
/// file nested 100,000 deep, a binary `--env-file`, a newline in `--name`,
/// 5000 variables, a bad endpoint name; nothing reaches the host.
#[test]
fn bad_input_gets_exit_2_with_the_limit_named() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    let big = format!(
        "command: echo\ncompute: node0\nenvironment_variables:\n{}",
        (0..400_000)
            .map(|i| format!("  V{i}: x\n"))
            .collect::<String>()
    );
    let deep = format!(
        "command: echo\ncompute: node0\ntags: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let many = (0..5000).map(|i| format!("V{i}=x\n")).collect::<String>();
    let dir = src(&[
        ("big.yml", big.as_str()),
        ("deep.yml", deep.as_str()),
        ("many.env", many.as_str()),
        ("train.py", "print('x')\n"),
    ]);
    std::fs::write(dir.path().join("binary.env"), b"A=\xff\xfe\x00\x01\n").unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let d = dir.path().to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["job".into(), "submit".into(), p("big.yml")],
            "over 1.0 MiB",
        ),
        (
            vec!["job".into(), "submit".into(), p("deep.yml")],
            "nests deeper than 64 levels",
        ),
        (
            vec![
                "run".into(),
                "--target".into(),
                "node0".into(),
                "--source-dir".into(),
                d.into(),
                "--env-file".into(),
                p("binary.env"),
                "--".into(),
                "true".into(),
            ],
            "is not text",
        ),
        (
            vec![
                "run".into(),
                "--target".into(),
                "node0".into(),
                "--source-dir".into(),
                d.into(),
                "--env-file".into(),
                p("many.env"),
                "--".into(),
                "true".into(),
            ],
            "at most 4096",
        ),
        (
            vec![
                "run".into(),
                "--target".into(),
                "node0".into(),
                "--source-dir".into(),
                d.into(),
                "--name".into(),
                "a\nb".into(),
                "--".into(),
                "true".into(),
            ],
            "is not a run name",
        ),
        (
            vec![
                "endpoint".into(),
                "create".into(),
                "bad name".into(),
                "--target".into(),
                "node0".into(),
                "--source-dir".into(),
                d.into(),
                "--".into(),
                "true".into(),
            ],
            "bad name",
        ),
    ];
    for (args, said) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let out = c.moor.run(&args);
        assert_exit(&out, 2);
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        c.hosts[0]
            .exec("ls ~moor/.moor/runs 2>/dev/null | wc -l")
            .trim(),
        "0"
    );
}

/// Run from the folder that holds the workspace (its default place under
/// `$HOME`): the workspace is left out and said once; a private key in the
/// source stops the run unless `--allow-private-keys`.
#[test]
fn the_workspace_and_private_keys_stay_out_of_snapshots() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    let home = c.moor.home().to_str().unwrap().to_owned();
    assert!(c.moor.workspace().starts_with(&home));
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--source-dir",
        &home,
        "--",
        "sh",
        "-c",
        "find . -path '*moor.db*' -o -name id_ed25519 | wc -l",
    ]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout.trim(), "0", "{}", out.stdout);
    assert_eq!(
        out.stderr.matches("left out of the snapshot").count(),
        1,
        "{}",
        out.stderr
    );
    let dir = src(&[
        ("train.py", "print('x')\n"),
        ("deploy/key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
    ]);
    let d = dir.path().to_str().unwrap();
    let out = c
        .moor
        .run(&["run", "--target", "node0", "--source-dir", d, "--", "true"]);
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("deploy/key holds a private key"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--allow-private-keys"),
        "{}",
        out.stderr
    );
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--source-dir",
        d,
        "--allow-private-keys",
        "--",
        "cat",
        "deploy/key",
    ]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("OPENSSH PRIVATE KEY"), "{}", out.stdout);
}

/// The workspace on a disk that fills (a 4 MiB tmpfs): a command that must
/// write says the disk is full and where, never "disk I/O error" or
/// "writable".
#[test]
fn a_full_disk_under_the_workspace_says_so_and_where() {
    if !docker_or_skip() {
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    let ws = f.moor.workspace();
    std::fs::create_dir_all(&ws).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
        .arg(&ws)
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    let _unmount = Unmount(ws.clone());
    assert_exit(&f.attach("vm1", &[]), 0);
    let _ = std::fs::write(ws.join("filler"), vec![1u8; 8 << 20]);
    let out = f.moor.run(&["pool", "create", "p", "--target", "vm1"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let said = format!("the disk holding workspace {} is full", ws.display());
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    assert!(!out.stderr.contains("writable"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}
