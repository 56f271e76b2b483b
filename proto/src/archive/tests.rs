//! The unpacker against archives a hostile or careless job could produce.

use std::fs;
use std::path::Path;

use tar::{EntryType, Header};

use super::{stays_inside, unpack_within, PullReader};

/// An archive built entry by entry, with names written raw (the tar crate's
/// own setters refuse `..` and absolute paths, which is what is tested).
struct Archive(tar::Builder<Vec<u8>>);

impl Archive {
    fn new() -> Archive {
        Archive(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, kind: EntryType, name: &str, link: &str, data: &[u8]) -> Archive {
        let mut h = Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &str) -> Archive {
        self.entry(EntryType::Regular, name, "", data.as_bytes())
    }

    fn dir(self, name: &str) -> Archive {
        self.entry(EntryType::Directory, name, "", b"")
    }

    fn symlink(self, name: &str, target: &str) -> Archive {
        self.entry(EntryType::Symlink, name, target, b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Archive {
        self.entry(EntryType::Link, name, target, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn reasons(done: &super::Unpacked) -> Vec<String> {
    done.skipped.first.iter().map(|s| s.to_string()).collect()
}

#[test]
fn plain_files_folders_and_inside_links_are_unpacked() {
    let dest = tempfile::tempdir().unwrap();
    let bytes = Archive::new()
        .dir("model")
        .file("model/w.bin", "weights")
        .file("./metrics.json", "{}")
        .symlink("latest", "model/w.bin")
        .symlink("model/up", "../metrics.json")
        .hardlink("model/copy.bin", "model/w.bin")
        .bytes();
    let done = unpack_within(&bytes[..], dest.path(), 0).unwrap();
    assert_eq!(reasons(&done), Vec::<String>::new());
    assert_eq!((done.files, done.links), (3, 2));
    let d = dest.path();
    assert_eq!(fs::read_to_string(d.join("latest")).unwrap(), "weights");
    assert_eq!(fs::read_to_string(d.join("model/up")).unwrap(), "{}");
    assert_eq!(
        fs::read_to_string(d.join("model/copy.bin")).unwrap(),
        "weights"
    );
    assert!(fs::symlink_metadata(d.join("latest")).unwrap().is_symlink());
}

#[test]
fn links_out_of_the_folder_are_skipped_and_never_written_through() {
    let outside = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    let bytes = Archive::new()
        .symlink("etc", &out)
        .file("etc/owned", "x")
        .symlink("up", "../../x")
        .symlink("sub/deep", "../../x")
        .symlink("ssh", "/root/.ssh")
        .hardlink("passwd", "/etc/passwd")
        .hardlink("up2", "../secret")
        .bytes();
    let done = unpack_within(&bytes[..], dest.path(), 0).unwrap();
    assert_eq!(done.skipped.total, 6, "{:?}", reasons(&done));
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(reasons(&done)[0].starts_with("etc: a link to /"));
    // The skipped link left no trace: `etc/owned` landed in a real folder.
    assert_eq!(
        fs::read_to_string(dest.path().join("etc/owned")).unwrap(),
        "x"
    );
    assert!(fs::symlink_metadata(dest.path().join("etc"))
        .unwrap()
        .is_dir());
}

#[test]
fn an_existing_link_in_the_folder_is_replaced_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dest.path().join("out.txt")).unwrap();
    let bytes = Archive::new().file("out.txt", "new").bytes();
    unpack_within(&bytes[..], dest.path(), 0).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        fs::read_to_string(dest.path().join("out.txt")).unwrap(),
        "new"
    );
}

#[test]
fn traversal_absolute_and_special_entries_are_skipped() {
    let dest = tempfile::tempdir().unwrap();
    let bytes = Archive::new()
        .file("../escape", "x")
        .file("/tmp/moor-abs-escape", "x")
        .entry(EntryType::Fifo, "pipe", "", b"")
        .entry(EntryType::Char, "tty", "", b"")
        .dir("clash")
        .file("clash", "file over a folder")
        .file("f", "1")
        .dir("f")
        .bytes();
    let done = unpack_within(&bytes[..], dest.path(), 0).unwrap();
    assert_eq!(
        reasons(&done),
        [
            "../escape: not a plain relative path",
            "/tmp/moor-abs-escape: not a plain relative path",
            "pipe: a special file (a FIFO)",
            "tty: a special file (a character device)",
            "clash: a folder of that name is already there",
            "f: a file or link of that name is already there",
        ]
    );
    assert!(!Path::new("/tmp/moor-abs-escape").exists());
}

#[test]
fn leading_components_are_stripped_and_skips_are_bounded() {
    let dest = tempfile::tempdir().unwrap();
    let mut archive = Archive::new().dir("outputs").file("outputs/a.txt", "a");
    for i in 0..100 {
        archive = archive.symlink(&format!("outputs/l{i}"), "/etc");
    }
    let done = unpack_within(&archive.bytes()[..], dest.path(), 1).unwrap();
    assert_eq!(fs::read_to_string(dest.path().join("a.txt")).unwrap(), "a");
    assert_eq!((done.skipped.first.len(), done.skipped.total), (20, 100));
}

#[test]
fn a_pull_reader_reads_chunk_by_chunk() {
    let bytes = Archive::new().file("a", &"z".repeat(10_000)).bytes();
    let mut chunks = bytes.chunks(777).map(<[u8]>::to_vec).collect::<Vec<_>>();
    chunks.reverse();
    let mut reader = PullReader::new(|| Ok(chunks.pop()));
    let dest = tempfile::tempdir().unwrap();
    let done = unpack_within(&mut reader, dest.path(), 0).unwrap();
    assert_eq!(done.bytes, 10_000);
    // tar stops at the first end block; the rest is drained by the caller.
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    assert_eq!(reader.read, bytes.len() as u64);
}

#[test]
fn links_are_judged_from_where_they_lie() {
    assert!(stays_inside(Path::new("a/b/l"), Path::new("../../x")));
    assert!(!stays_inside(Path::new("a/b/l"), Path::new("../../../x")));
    assert!(stays_inside(Path::new("a/l"), Path::new("..")));
    assert!(stays_inside(Path::new("l"), Path::new("./x/y")));
    // `x` may be a link to `.`: a `..` after a name could lead out.
    assert!(!stays_inside(Path::new("l"), Path::new("./x/../y")));
    assert!(!stays_inside(Path::new("l"), Path::new("..")));
    assert!(stays_inside(Path::new("l"), Path::new(".")));
    assert!(!stays_inside(Path::new("l"), Path::new("x/../../y")));
    assert!(!stays_inside(Path::new("l"), Path::new("/x")));
    assert!(!stays_inside(Path::new("l"), Path::new("")));
}

#[test]
fn zero_runs_are_holes_on_this_disk() {
    use std::os::unix::fs::MetadataExt;
    // 8 MiB: data, 8 MiB of zeros less a block, data, zeros at the end.
    let mut data = vec![0u8; 16 << 20];
    data[..4096].fill(7);
    data[(8 << 20)..(8 << 20) + 10].fill(9);
    let bytes = Archive::new()
        .entry(EntryType::Regular, "disk.img", "", &data)
        .bytes();
    let dest = tempfile::tempdir().unwrap();
    let done = unpack_within(&bytes[..], dest.path(), 0).unwrap();
    assert_eq!(done.bytes, 16 << 20);
    let path = dest.path().join("disk.img");
    assert_eq!(fs::read(&path).unwrap(), data);
    let used = fs::metadata(&path).unwrap().blocks() * 512;
    assert!(
        used < 1 << 20,
        "{used} bytes on disk for 16 MiB of mostly zeros"
    );
}
