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
    let names = names(a.bytes().unwrap());
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
    let names = names(snap.bytes().unwrap());
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
    let mut entries: Vec<(String, Option<String>)> = tar::Archive::new(snap.bytes().unwrap())
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
fn the_index_knows_an_unchanged_source_without_reading_it() {
    let src = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let index = SnapshotIndex::in_dir(ws.path().join("snapshot-index"));
    let p = src.path();
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    std::fs::create_dir(p.join("data")).unwrap();
    std::fs::write(p.join("data/x.csv"), "a,b\n").unwrap();
    // Files younger than the packing never vouch (racily clean): none is
    // recorded yet.
    let first = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    assert!(first.packed.get().is_some());
    assert!(!ws.path().join("snapshot-index").exists());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    assert_eq!(second.sha256, first.sha256);
    let entries: Vec<_> = std::fs::read_dir(ws.path().join("snapshot-index"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
    // Known now: nothing read until a host lacks it, then the same bytes.
    let third = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    assert!(third.packed.get().is_none(), "not packed");
    assert_eq!(
        (third.sha256.as_str(), third.size, third.files),
        (first.sha256.as_str(), first.size, 2)
    );
    assert_eq!(third.bytes().unwrap(), first.bytes().unwrap());
    // One changed file (same size): another snapshot.
    std::fs::write(p.join("train.py"), "print(2)\n").unwrap();
    let changed = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    assert_ne!(changed.sha256, first.sha256);
    assert!(changed.packed.get().is_some());
    // A file changed between the quick check and the upload: refused.
    std::fs::write(p.join("train.py"), "print(1)\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    let known = pack_source(p, DEFAULT_MAX_BYTES, &index).unwrap();
    assert!(known.packed.get().is_none());
    std::fs::write(p.join("train.py"), "print(3)\n").unwrap();
    let e = known.bytes().unwrap_err();
    assert!(e.to_string().contains("changed while moor read it"), "{e}");
}
