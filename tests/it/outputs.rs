//! `moor download` against a real test host: what a job's outputs may hold
//! (links out of them, loops, FIFOs, hard links) never reaches outside the
//! folder the user chose, and the archive streams through both sides in
//! bounded memory.

use std::path::Path;
use std::time::Duration;

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// A host attached as `box`, with a run of `script` (sh) finished on it.
fn finished_run(f: &Fixture, script: &str) -> String {
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    let out = f.run_on("box", src.path(), &["--json"], &["sh", "-c", script]);
    assert_exit(&out, 0);
    out.json()["id"].as_str().unwrap().to_owned()
}

const HOSTILE_OUTPUTS: &str = r#"set -e
cd "$MOOR_OUTPUT_DIR"
mkdir -p model
echo weights > model/w.bin
ln -s model/w.bin latest
ln model/w.bin model/hard.bin
ln -s /etc/passwd passwd
ln -s "$HOME/.ssh" ssh
ln -s ../../../../.. escape
ln -s loop loop
ln -s model/../../x model/up
mkfifo pipe
"#;

#[test]
fn a_download_keeps_links_inside_the_outputs_and_never_copies_what_others_lead_to() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    let id = finished_run(&f, HOSTILE_OUTPUTS);
    let to = f.moor.home().join("dl");
    let out = f
        .moor
        .run(&["download", &id, "--to", to.to_str().unwrap(), "--json"]);
    assert_exit(&out, 0);
    let json = out.json();
    let mut skipped: Vec<String> = json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s["path"].as_str().unwrap(),
                s["reason"].as_str().unwrap()
            )
        })
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "escape: a link to ../../../../.. (outside the folder)",
            "model/up: a link to model/../../x (outside the folder)",
            "passwd: a link to /etc/passwd (outside the folder)",
            "pipe: a special file (a FIFO)",
            "ssh: a link to /home/moor/.ssh (outside the folder)",
        ]
    );
    assert_eq!(json["skipped_total"], 5);
    // Kept: the file, its hard link (as a file), the inside link, the loop
    // (a link to itself harms nobody).
    assert_eq!(
        std::fs::read_to_string(to.join("latest")).unwrap(),
        "weights\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("model/hard.bin")).unwrap(),
        "weights\n"
    );
    assert!(std::fs::symlink_metadata(to.join("latest"))
        .unwrap()
        .is_symlink());
    assert!(std::fs::symlink_metadata(to.join("loop"))
        .unwrap()
        .is_symlink());
    for gone in ["passwd", "ssh", "escape", "pipe", "model/up"] {
        assert!(std::fs::symlink_metadata(to.join(gone)).is_err(), "{gone}");
    }
    // Said to a person on stderr, one line each.
    let human = f.moor.run(&["download", &id, "--to", to.to_str().unwrap()]);
    assert_exit(&human, 0);
    assert!(
        human
            .stderr
            .contains("warning: left out passwd: a link to /etc/passwd (outside the folder)"),
        "{}",
        human.stderr
    );
    // The same folder again: nothing is sent twice.
    assert!(
        human
            .stdout
            .contains("(0 files, 0 B; 2 unchanged, not sent (16 B))"),
        "{}",
        human.stdout
    );
}

/// The peak resident memory (VmHWM, kB) of a process, as last read.
fn peak_kb(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_256_mib_download_streams_in_under_64_mb_on_both_sides() {
    if !docker_or_skip() {
        return;
    }
    const SIZE: u64 = 256 << 20;
    let f = Fixture::new(MOOR, HostSpec::default());
    let id = finished_run(
        &f,
        "head -c 268435456 /dev/urandom > \"$MOOR_OUTPUT_DIR/big.bin\"",
    );
    let to = f.moor.home().join("big");
    let mut child = f
        .moor
        .spawn(&["download", &id, "--to", to.to_str().unwrap()]);
    let status_file = format!("/proc/{}/status", child.id());
    let mut client_kb = 0;
    let code = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            client_kb = client_kb.max(peak_kb(&status));
        }
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "download failed: {code}");
    assert_eq!(std::fs::metadata(to.join("big.bin")).unwrap().len(), SIZE);
    assert!(
        client_kb > 0 && client_kb < 64 * 1024,
        "moor peaked at {client_kb} kB"
    );
    let daemon = f
        .host
        .exec("cat /proc/$(cat /home/moor/.moor/agent/*/run/pid)/status");
    let daemon_kb = peak_kb(&daemon);
    assert!(
        daemon_kb > 0 && daemon_kb < 64 * 1024,
        "the agent daemon peaked at {daemon_kb} kB"
    );
    assert!(!Path::new(&to).join("..").join("big.bin").exists());
}

#[test]
fn outputs_downloaded_into_the_source_are_not_uploaded_with_the_next_run() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    let id = finished_run(
        &f,
        "head -c 100000 /dev/zero > \"$MOOR_OUTPUT_DIR/model.bin\"",
    );
    let src = f.moor.home().join("project");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("train.py"), "print(1)\n").unwrap();
    let to = src.join("moor-outputs").join(&id);
    let dl = f.moor.run(&["download", &id, "--to", to.to_str().unwrap()]);
    assert_exit(&dl, 0);
    let listing = f.run_on("box", &src, &[], &["find", ".", "-type", "f"]);
    assert_exit(&listing, 0);
    assert_eq!(listing.stdout, "./train.py\n");
}

#[test]
fn a_second_download_sends_only_what_changed_and_globs_choose_files() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    let id = finished_run(
        &f,
        "cd \"$MOOR_OUTPUT_DIR\" && mkdir -p ckpt tmp && head -c 3000000 /dev/urandom > ckpt/e1.pt \
         && echo '{\"acc\": 0.9}' > metrics.json && echo scratch > tmp/x.pt",
    );
    let to = f.moor.home().join("inc");
    let dl = |extra: &[&str]| {
        let out = f.moor.run(
            &[
                &["download", &id, "--to", to.to_str().unwrap(), "--json"][..],
                extra,
            ]
            .concat(),
        );
        assert_exit(&out, 0);
        out.json()
    };
    let first = dl(&[]);
    assert_eq!(
        (first["files"].as_u64(), first["unchanged_files"].as_u64()),
        (Some(3), Some(0))
    );
    // Nothing changed: nothing is sent but the archive's frame.
    let again = dl(&[]);
    assert_eq!(
        (again["files"].as_u64(), again["unchanged_files"].as_u64()),
        (Some(0), Some(3))
    );
    assert!(again["bytes"].as_u64().unwrap() < 10_000, "{again}");
    // Touched (the same content, a new time): read and hashed here, not sent.
    let now = std::time::SystemTime::now();
    let touched = std::fs::File::options()
        .write(true)
        .open(to.join("ckpt/e1.pt"))
        .unwrap();
    touched.set_modified(now).unwrap();
    let after_touch = dl(&[]);
    assert_eq!(after_touch["files"], 0, "{after_touch}");
    // Edited to the same size: its time changed, its hash differs: sent.
    std::fs::write(to.join("metrics.json"), "{\"acc\": 0.1}\n").unwrap();
    assert_eq!(dl(&[])["files"], 1);
    // A local change is repaired by sending that one file.
    std::fs::write(to.join("metrics.json"), "edited").unwrap();
    let repaired = dl(&[]);
    assert_eq!(repaired["files"], 1);
    assert_eq!(
        std::fs::read_to_string(to.join("metrics.json")).unwrap(),
        "{\"acc\": 0.9}\n"
    );

    // Globs: only checkpoints, never tmp/.
    let picked = f.moor.home().join("picked");
    let out = f.moor.run(&[
        "download",
        &id,
        "--to",
        picked.to_str().unwrap(),
        "--include",
        "*.pt",
        "--exclude",
        "tmp/**",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["files"], 1);
    assert!(picked.join("ckpt/e1.pt").exists());
    assert!(!picked.join("metrics.json").exists() && !picked.join("tmp").exists());
}
