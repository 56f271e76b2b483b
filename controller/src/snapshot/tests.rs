//! Packing snapshots of directories written here.

use super::*;

/// The paths in a tar archive, sorted.
fn names(archive: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = tar::Archive::new(archive)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn honours_ignores_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::create_dir_all(p.join("data")).unwrap();
    std::fs::create_dir_all(p.join(".git")).unwrap();
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    std::fs::write(p.join("src/model.py"), "x = 1\n").unwrap();
    std::fs::write(p.join("data/big.bin"), vec![0u8; 1000]).unwrap();
    std::fs::write(p.join("notes.tmp"), "scratch").unwrap();
    std::fs::write(p.join(".git/HEAD"), "ref").unwrap();
    // moor's own download folder is never uploaded again.
    std::fs::create_dir_all(p.join("moor-outputs/20261129T101010-aabbccdd")).unwrap();
    std::fs::write(p.join("moor-outputs/20261129T101010-aabbccdd/m.bin"), "w").unwrap();
    std::fs::write(p.join(".gitignore"), "data/\n").unwrap();
    std::fs::write(p.join(".moorignore"), "*.tmp\n").unwrap();
    let a = pack(p, DEFAULT_MAX_BYTES).unwrap();
    let names = names(a.archive().unwrap());
    assert_eq!(
        names,
        [".gitignore", ".moorignore", "src/model.py", "train.py"]
    );
    // Same content, new mtimes: same hash. Changed content: new hash.
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    assert_eq!(pack(p, DEFAULT_MAX_BYTES).unwrap().sha256, a.sha256);
    std::fs::write(p.join("train.py"), "print(2)\n").unwrap();
    assert_ne!(pack(p, DEFAULT_MAX_BYTES).unwrap().sha256, a.sha256);
    let err = pack(p, 10).unwrap_err();
    assert!(err.to_string().contains("is over"), "{err}");
}

#[test]
fn a_docker_context_honours_dockerignore_as_docker_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let put = |rel: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, rel).unwrap();
    };
    for rel in [
        "Dockerfile",
        "app/main.py",
        "app/debug.log",
        "data/big.bin",
        "data/keep.txt",
        "secret.txt",
        "sub/secret.txt",
        ".git/config",
    ] {
        put(rel);
    }
    std::fs::write(
        dir.path().join(".dockerignore"),
        "# comment\nsecret.txt\n**/*.log\ndata\n!data/keep.txt\nDockerfile\n",
    )
    .unwrap();
    let snap = pack_docker_context(dir.path(), 1 << 20).unwrap();
    let names = names(snap.archive().unwrap());
    // Anchored: sub/secret.txt stays; Dockerfile and .dockerignore always go.
    assert_eq!(
        names,
        [
            ".dockerignore",
            "Dockerfile",
            "app/main.py",
            "data/keep.txt",
            "sub/secret.txt"
        ]
    );
}

#[test]
fn links_inside_stay_links_and_links_outside_are_left_out() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    symlink("train.py", p.join("same")).unwrap();
    symlink("../train.py", p.join("sub/up")).unwrap();
    symlink(p.join("train.py"), p.join("sub/absolute")).unwrap();
    symlink("/etc/passwd", p.join("passwd")).unwrap();
    symlink("../../outside", p.join("sub/escape")).unwrap();
    symlink("loop", p.join("loop")).unwrap();
    let snap = pack(p, DEFAULT_MAX_BYTES).unwrap();
    let mut entries: Vec<(String, Option<String>)> = tar::Archive::new(snap.archive().unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            (e.path().unwrap().display().to_string(), link)
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            ("loop".to_owned(), Some("loop".to_owned())),
            ("same".to_owned(), Some("train.py".to_owned())),
            ("sub/absolute".to_owned(), Some("../train.py".to_owned())),
            ("sub/up".to_owned(), Some("../train.py".to_owned())),
            ("train.py".to_owned(), None),
        ]
    );
    let skipped: Vec<String> = snap
        .skipped_links
        .iter()
        .map(|(l, _)| l.display().to_string())
        .collect();
    assert_eq!(skipped, ["passwd", "sub/escape"]);
    let warning = snap.skipped_warning().unwrap();
    assert!(warning.contains("passwd -> /etc/passwd"), "{warning}");
    assert!(!warning.contains('\n'));
}

#[test]
fn a_source_is_a_tree_whose_unchanged_files_are_not_read_again() {
    use moor_proto::tree::Manifest;
    let src = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let index = SnapshotIndex::in_dir(ws.path().join("snapshot-index"));
    let p = src.path();
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    std::fs::create_dir(p.join("data")).unwrap();
    std::fs::write(p.join("data/x.csv"), "a,b\n").unwrap();
    std::os::unix::fs::symlink("data/x.csv", p.join("latest.csv")).unwrap();
    let first = pack_source(p, DEFAULT_MAX_BYTES, &index, Keys::Refuse).unwrap();
    let tree = first.tree().expect("a source goes file by file");
    let manifest = Manifest::parse(tree.manifest()).unwrap();
    assert_eq!(first.sha256, moor_proto::sha256_hex(tree.manifest()));
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["data/x.csv", "train.py"]);
    assert_eq!(manifest.links[0].target, "data/x.csv");
    assert_eq!((first.size, first.files, first.files_read), (13, 2, 2));
    let (path, header) = tree.blob(&moor_proto::sha256_hex(b"a,b\n")).unwrap();
    assert_eq!((path, header.size), (p.join("data/x.csv"), 4));
    // Files younger than the packing never vouch (racily clean): read again.
    let second = pack_source(p, DEFAULT_MAX_BYTES, &index, Keys::Refuse).unwrap();
    assert_eq!(
        (second.sha256.as_str(), second.files_read),
        (first.sha256.as_str(), 2)
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = pack_source(p, DEFAULT_MAX_BYTES, &index, Keys::Refuse).unwrap();
    // Known now: nothing read, the same snapshot.
    let known = pack_source(p, DEFAULT_MAX_BYTES, &index, Keys::Refuse).unwrap();
    assert_eq!(
        (known.sha256.as_str(), known.files_read),
        (first.sha256.as_str(), 0)
    );
    // One changed file (same size): only it is read; another snapshot.
    std::fs::write(p.join("train.py"), "print(2)\n").unwrap();
    let changed = pack_source(p, DEFAULT_MAX_BYTES, &index, Keys::Refuse).unwrap();
    assert_ne!(changed.sha256, first.sha256);
    assert_eq!(changed.files_read, 1);
    // A file changed between hashing and sending: refused, not sent.
    let (path, header) = {
        let tree = changed.tree().unwrap();
        let (path, header) = tree.blob(&moor_proto::sha256_hex(b"print(2)\n")).unwrap();
        (path, header.clone())
    };
    std::fs::write(p.join("train.py"), "print(3)\n").unwrap();
    let e = send_blob(&path, &header, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("changed while moor read it"), "{e}");
    std::fs::write(p.join("train.py"), "print(2)\n").unwrap();
    let mut out = Vec::new();
    send_blob(&path, &header, &mut out).unwrap();
    assert_eq!(out, b"print(2)\n");
}
