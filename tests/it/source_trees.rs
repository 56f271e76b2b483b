//! Sources sent file by file to a real host: the first run sends each
//! content once, compressed; after one small file changes the next run
//! sends about that file; the host keeps one copy of each content, shared
//! by the snapshots' trees, and `runs prune` frees what no tree holds.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// Bytes that do not compress.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn one_changed_file_sends_about_that_file_and_the_host_keeps_each_content_once() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    std::fs::create_dir_all(p.join("data")).unwrap();
    std::fs::write(p.join("data/weights.bin"), noise(3 << 20)).unwrap();
    std::fs::write(p.join("data/copy.bin"), noise(3 << 20)).unwrap();
    std::fs::write(p.join("notes.txt"), "moor ".repeat(200_000)).unwrap();
    std::fs::write(p.join("train.py"), "print('v1')\n").unwrap();
    // What `moor run` says it sent: "(N source bytes sent)".
    let sent = |out: &moor_tests::Output| -> u64 {
        let (head, _) = out
            .stderr
            .split_once(" source bytes sent")
            .expect("the run line");
        head.rsplit('(').next().unwrap().parse().unwrap()
    };

    let first = f.run_on("box", p, &[], &["python3", "train.py"]);
    assert_exit(&first, 0);
    // The two equal 3 MiB files go once; 1 MB of text compresses to little.
    let bytes = sent(&first);
    assert!(
        bytes > 3 << 20 && bytes < (3 << 20) + (100 << 10),
        "{bytes}"
    );
    assert!(
        first.stderr.contains("v1") || first.stdout.contains("v1"),
        "{}",
        first.stderr
    );

    std::fs::write(p.join("train.py"), "print('v2')\n").unwrap();
    let second = f.run_on("box", p, &[], &["python3", "train.py"]);
    assert_exit(&second, 0);
    let bytes = sent(&second);
    assert!(bytes < 4096, "one small file and the manifest: {bytes}");
    assert!(
        second.stderr.contains("v2") || second.stdout.contains("v2"),
        "{}",
        second.stderr
    );
    let human = f.run_on("box", p, &[], &["true"]);
    assert!(
        human.stderr.contains("source bytes sent") || human.stderr.is_empty(),
        "{}",
        human.stderr
    );

    // `--json` says the same as the run line: nothing sent for an unchanged source.
    let json = f.run_on("box", p, &["--json"], &["true"]);
    assert_exit(&json, 0);
    assert_eq!(json.json()["snapshot_bytes_sent"], 0, "{}", json.stdout);
    assert_eq!(json.json()["exit_code"], 0, "{}", json.stdout);

    // One copy of each content on the host: 3 distinct contents + 2 scripts.
    let store = "/home/moor/.moor/snapshots";
    let listing = f.host.exec(&format!(
        "ls {store}/blobs | wc -l; ls -d {store}/*.tree | wc -l; \
         stat -c %i {store}/*.tree/data/weights.bin | sort -u | wc -l; du -sk {store} | cut -f1"
    ));
    let counts: Vec<u64> = listing
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts[..3], [4, 2, 1], "{listing}");
    assert!(
        counts[3] < 5 * 1024,
        "two snapshots of a 7 MB source in {} KiB",
        counts[3]
    );

    // Prune (everything aged): the finished runs go, then the snapshots and
    // every content, all but the newest run's.
    f.host.exec(&format!(
        "touch -h -d '1 hour ago' {store}/*.manifest {store}/blobs/*"
    ));
    let pruned = f
        .moor
        .run(&["runs", "prune", "--target", "box", "--keep", "1", "--json"]);
    assert_exit(&pruned, 0);
    assert_eq!(pruned.json()["snapshots"], 1, "{}", pruned.stdout);
    let left = f.host.exec(&format!("ls {store}/blobs | wc -l"));
    assert_eq!(left.trim(), "3", "the newest snapshot's contents stay");

    // A host that lost the source this workspace sent it (its snapshots
    // removed by hand): the start, sent without asking first, is refused,
    // and the source goes again.
    f.host.exec(&format!("rm -rf {store}/*"));
    let again = f.run_on("box", p, &["--json"], &["python3", "train.py"]);
    assert_exit(&again, 0);
    let resent = again.json()["snapshot_bytes_sent"].as_u64().unwrap();
    assert!(resent > 0, "{}", again.stdout);
    assert_eq!(again.json()["exit_code"], 0, "{}", again.stdout);
}
