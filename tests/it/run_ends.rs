//! Runs that end without their command's say, against real test hosts: a
//! disk that fills during a snapshot upload, when a run ends, or before the
//! next one starts (small tmpfs mounts under ~/.moor), and a command that
//! cannot start. Each leaves consistent state and says why on stderr.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

fn host_with(moor_tmpfs: &'static [(&'static str, &'static str)]) -> (Fixture, tempfile::TempDir) {
    let f = Fixture::new(
        MOOR,
        HostSpec {
            moor_tmpfs,
            ..HostSpec::default()
        },
    );
    assert_exit(&f.attach("box", &[]), 0);
    (f, tempfile::tempdir().unwrap())
}

fn run(f: &Fixture, src: &tempfile::TempDir, extra: &[&str], command: &[&str]) -> Output {
    f.run_on("box", src.path(), extra, command)
}

/// Asserts a "no space left on HOST in DIR (N free); fix: ..." error, exit 8.
fn assert_no_space(out: &Output, dir: &str) {
    assert_exit(out, 8);
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("error: no space left on "), "{line}");
    assert!(line.contains(&format!(" in {dir} (")), "{line}");
    assert!(
        line.contains(" free); fix: free space on the disk holding"),
        "{line}"
    );
}

#[test]
fn a_snapshot_upload_that_fills_the_disk_leaves_nothing_behind_and_says_where() {
    if !docker_or_skip() {
        return;
    }
    let (f, src) = host_with(&[("snapshots", "2m")]);
    std::fs::write(src.path().join("data.bin"), vec![0u8; 3 << 20]).unwrap();
    let out = run(&f, &src, &[], &["true"]);
    assert_no_space(&out, "/home/moor/.moor/snapshots");
    let json = run(&f, &src, &["--json"], &["true"]);
    assert_eq!(json.json()["error"]["kind"], "no_space", "{}", json.stdout);
    // Nothing names the snapshot whose content never arrived (issue 33):
    // no manifest, kept or pending, no temporary file, no content.
    let left = f
        .host
        .exec("cd /home/moor/.moor/snapshots && ls -A . blobs");
    let names: Vec<&str> = left.split_whitespace().collect();
    assert_eq!(names, [".:", "blobs", "blobs:"], "{left}");

    // Later runs are not blocked by the failed one.
    std::fs::remove_file(src.path().join("data.bin")).unwrap();
    assert_exit(&run(&f, &src, &[], &["true"]), 0);

    // What a killed daemon left is swept when the next one starts.
    let stale = "/home/moor/.moor/snapshots/.cafe.1234.tmp";
    f.host.exec(&format!(
        "head -c 1000 /dev/zero > {stale}; touch -d '1 hour ago' {stale}; chown moor {stale}; \
         kill -9 $(cat /home/moor/.moor/agent/*/run/pid)"
    ));
    assert_exit(&run(&f, &src, &[], &["true"]), 0);
    assert_eq!(
        f.host
            .exec(&format!("ls {stale} 2>/dev/null || true"))
            .trim(),
        ""
    );
}

#[test]
fn a_run_ending_on_a_full_disk_is_recorded_as_it_ended_and_the_next_start_says_why_not() {
    if !docker_or_skip() {
        return;
    }
    let (f, src) = host_with(&[("runs", "8m")]);
    let fill = "head -c 20000000 /dev/zero > \"$MOOR_OUTPUT_DIR/fill\"; exit 0";
    let out = run(&f, &src, &["--json"], &["sh", "-c", fill]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["state"], "succeeded", "{}", out.stdout);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let end = f
        .host
        .exec(&format!("cat /home/moor/.moor/runs/{id}/end.json"));
    assert!(
        end.contains("\"succeeded\""),
        "the end was not kept in the reserved room: {end}"
    );
    let runs = f.moor.run(&["runs", "--json"]);
    assert_eq!(runs.json()[0]["state"], "succeeded");

    // The disk is still full: the next run is refused before anything starts.
    let refused = run(&f, &src, &[], &["true"]);
    assert_no_space(&refused, "/home/moor/.moor/runs");
    let dirs = f.host.exec("ls /home/moor/.moor/runs | wc -l");
    assert_eq!(dirs.trim(), "1", "a refused run left its folder");

    f.host
        .exec(&format!("rm /home/moor/.moor/runs/{id}/outputs/fill"));
    assert_exit(&run(&f, &src, &[], &["true"]), 0);
}

#[test]
fn a_run_whose_command_cannot_start_says_why_on_stderr_and_in_json() {
    if !docker_or_skip() {
        return;
    }
    let (f, src) = host_with(&[]);
    let out = run(&f, &src, &[], &["nonexistent-cmd", "x"]);
    assert_exit(&out, 127);
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("error: run ")
            && line
                .contains(" failed: cannot start \"nonexistent-cmd\": No such file or directory"),
        "{}",
        out.stderr
    );
    let json = run(&f, &src, &["--json"], &["nonexistent-cmd"]);
    assert_exit(&json, 127);
    let error = json.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.starts_with("cannot start"), "{}", json.stdout);
}
