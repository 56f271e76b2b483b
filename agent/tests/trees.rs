//! Sources sent file by file ([`moor_proto::tree`]) from the controller's
//! client to the agent's handler in process: the first upload sends every
//! content once (compressed), a changed file sends about that file, the
//! host builds one read-only tree of hard links to its content store, and
//! a run works in it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use moor::snapshot::{self, SnapshotIndex};
use moor::transfer::Transfer;
use moor_proto::{RunSpec, RunState};

mod support;
use support::in_process;

fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    bytes
}

#[tokio::test]
async fn a_changed_file_sends_about_that_file_and_runs_share_one_tree() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    std::fs::create_dir_all(p.join("data/deep")).unwrap();
    std::fs::write(p.join("data/big.bin"), random(2 << 20)).unwrap();
    std::fs::write(p.join("data/deep/same.txt"), "twice\n").unwrap();
    std::fs::write(p.join("same.txt"), "twice\n").unwrap();
    std::fs::write(p.join("text.txt"), "moor ".repeat(100_000)).unwrap();
    std::fs::write(
        p.join("run.sh"),
        "#!/bin/sh\ncat same.txt\nwc -c < data/big.bin\n",
    )
    .unwrap();
    std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("data/big.bin", p.join("latest")).unwrap();
    let index = SnapshotIndex::in_dir(ws.path().join("index"));
    let client = in_process(home.path()).await;

    let first = snapshot::pack_source(p, 64 << 20, &index, snapshot::Keys::Refuse).unwrap();
    let sent = client
        .put_snapshot(&first, &Transfer::hidden())
        .await
        .unwrap();
    // Every content once (same.txt twice in the source), the text compressed.
    assert!(sent < (2 << 20) + 60_000, "{sent}");
    assert!(sent > 2 << 20, "{sent}");
    // Packed again, the same: the host has it, nothing is sent.
    let again = snapshot::pack_source(p, 64 << 20, &index, snapshot::Keys::Refuse).unwrap();
    assert_eq!(
        (again.sha256.as_str(), again.new),
        (first.sha256.as_str(), false)
    );
    assert_eq!(
        client
            .put_snapshot(&again, &Transfer::hidden())
            .await
            .unwrap(),
        0
    );

    let snapshots = home.path().join(".moor/snapshots");
    let tree = snapshots.join(format!("{}.tree", first.sha256));
    let ino = |path: &Path| std::fs::metadata(path).unwrap().ino();
    assert_eq!(
        ino(&tree.join("same.txt")),
        ino(&tree.join("data/deep/same.txt"))
    );
    let blob = snapshots
        .join("blobs")
        .join(moor_proto::sha256_hex(b"twice\n"));
    assert_eq!(ino(&blob), ino(&tree.join("same.txt")));
    assert_eq!(std::fs::metadata(&blob).unwrap().mode() & 0o777, 0o444);
    assert_eq!(
        std::fs::metadata(tree.join("run.sh")).unwrap().mode() & 0o777,
        0o555
    );
    assert_eq!(
        std::fs::read_link(tree.join("latest")).unwrap(),
        Path::new("data/big.bin")
    );

    // A run works in the tree (its own folders, linked files).
    let spec = RunSpec {
        snapshot: first.sha256.clone(),
        command: vec!["./run.sh".into()],
        ..RunSpec::default()
    };
    let run = client.start_run(spec).await.unwrap();
    let done = loop {
        let info = client.run(&run.id).await.unwrap();
        if info.state.is_final() {
            break info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!((done.state, done.exit_code), (RunState::Succeeded, Some(0)));

    // One small file changed: about that file is sent, not the 2 MiB.
    std::fs::write(p.join("same.txt"), "changed\n").unwrap();
    let second = snapshot::pack_source(p, 64 << 20, &index, snapshot::Keys::Refuse).unwrap();
    assert_ne!(second.sha256, first.sha256);
    let sent = client
        .put_snapshot(&second, &Transfer::hidden())
        .await
        .unwrap();
    assert!(
        sent < 4096 + second.tree().unwrap().manifest().len(),
        "{sent}"
    );
    let tree2 = snapshots.join(format!("{}.tree", second.sha256));
    assert_eq!(
        std::fs::read_to_string(tree2.join("same.txt")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        ino(&tree.join("data/big.bin")),
        ino(&tree2.join("data/big.bin"))
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("same.txt")).unwrap(),
        "twice\n"
    );
}
