//! Snapshots unpacked once and shared by their runs: `SHA.tree/` beside
//! `SHA.tar` in `~/.moor/snapshots`, its files read-only, made the first
//! time a run needs it (unpacked into a staging folder, then renamed into
//! place, so a tree is whole or absent whatever stops the daemon). Each run
//! gets its own folders with hard links to the tree's files (a copy where a
//! link cannot be made: another file system, too many links), so a run of
//! an unchanged 200 MB source costs no unpacking and no space. A run may add
//! and remove files in its source folder; its source files themselves are
//! read-only, since every run of the snapshot shares them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Makes `tree` (`SHA.tree`, see [`crate::snapshots::tree_path`]) from the
/// snapshot `archive` unless it is there already.
pub fn unpack_once(archive: &Path, tree: &Path) -> io::Result<()> {
    if tree.is_dir() {
        return Ok(());
    }
    made_whole(tree, |staging| {
        tar::Archive::new(fs::File::open(archive)?).unpack(staging)?;
        read_only(staging)
    })
}

/// Makes `tree` whole or not at all: `fill` fills a staging folder beside
/// it, renamed into place once filled (removed on any error). One made
/// first by another run or upload of the same snapshot is as good.
pub fn made_whole(tree: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    static STAGED: AtomicU32 = AtomicU32::new(0);
    let name = tree.file_name().unwrap_or_default().to_string_lossy();
    let staging = tree.with_file_name(format!(
        ".{name}.{}.{}",
        std::process::id(),
        STAGED.fetch_add(1, Ordering::Relaxed)
    ));
    let made = crate::sys::create_private_dir(&staging)
        .and_then(|()| fill(&staging))
        .and_then(|()| fs::rename(&staging, tree));
    if made.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    match made {
        Err(_) if tree.is_dir() => Ok(()),
        other => other,
    }
}

/// Whether `entry` is a staging folder of [`made_whole`] older than 10
/// minutes (its daemon was killed while unpacking).
pub fn is_stale_staging(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy().into_owned();
    name.starts_with('.')
        && name.contains(".tree.")
        && crate::sys::changed_ago(entry).is_some_and(|ago| ago > Duration::from_secs(600))
}

/// Gives `dest` (an empty folder) the tree's folders, links to its files
/// (copies where a link cannot be made) and its symbolic links as they are.
/// Nothing is followed: a link in the tree stays a link.
pub fn link_into(tree: &Path, dest: &Path) -> io::Result<()> {
    let mut files = Vec::new();
    copy_folders(tree, dest, &mut files)?;
    link_all(&files)
}

/// Makes `dest`'s folders and symbolic links as `tree`'s, and lists the
/// (file, link to make) pairs.
fn copy_folders(tree: &Path, dest: &Path, files: &mut Vec<(PathBuf, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(tree)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_dir() {
            fs::create_dir(&to)?;
            copy_folders(&from, &to, files)?;
        } else if kind.is_file() {
            files.push((from, to));
        }
    }
    Ok(())
}

/// Hard-links each `(from, to)` (a copy, with `from`'s mode, where a link
/// cannot be made: another file system, too many links), on a few threads:
/// a link costs a round of file-system locking, and a source has thousands.
pub fn link_all(pairs: &[(PathBuf, PathBuf)]) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    let per = pairs.len().div_ceil(threads).max(256);
    std::thread::scope(|scope| {
        let workers: Vec<_> = pairs
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || {
                    for (from, to) in chunk {
                        if fs::hard_link(from, to).is_err() {
                            fs::copy(from, to)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(io::Error::other("a link thread panicked")))
        })
    })
}

/// Clears every write bit of the files under `dir` (folders stay as they are).
fn read_only(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_only(&entry.path())?;
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode & !0o222))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_of(dir: &Path, sha: &str) -> std::path::PathBuf {
        dir.join(format!("{sha}.tar"))
    }

    fn tree_of(dir: &Path, sha: &str) -> std::path::PathBuf {
        dir.join(format!("{sha}.tree"))
    }

    fn snapshot(dir: &Path) -> String {
        let mut archive = tar::Builder::new(Vec::new());
        for (name, body) in [("train.py", "print(1)\n"), ("lib/util.py", "X = 1\n")] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(&mut header, name, body.as_bytes())
                .unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        archive
            .append_link(&mut header, "latest", "train.py")
            .unwrap();
        let bytes = archive.into_inner().unwrap();
        let sha = moor_proto::sha256_hex(&bytes);
        fs::write(archive_of(dir, &sha), bytes).unwrap();
        sha
    }

    #[test]
    fn runs_share_one_read_only_tree() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let sha = snapshot(dir.path());
        let tree = tree_of(dir.path(), &sha);
        let (a, b) = (dir.path().join("run-a"), dir.path().join("run-b"));
        for run in [&a, &b] {
            fs::create_dir(run).unwrap();
            unpack_once(&archive_of(dir.path(), &sha), &tree).unwrap();
            link_into(&tree, run).unwrap();
        }
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&a.join("lib/util.py")), ino(&b.join("lib/util.py")));
        assert_eq!(
            fs::read_to_string(b.join("train.py")).unwrap(),
            "print(1)\n"
        );
        assert_eq!(
            fs::read_link(a.join("latest")).unwrap(),
            Path::new("train.py")
        );
        // Shared files cannot be written through one run's folder...
        let mode = fs::metadata(a.join("train.py")).unwrap().mode();
        assert_eq!(mode & 0o222, 0, "read-only");
        // ...but a run's folders are its own.
        fs::write(a.join("lib/new.txt"), "mine").unwrap();
        fs::remove_file(a.join("train.py")).unwrap();
        assert!(!b.join("lib/new.txt").exists());
        assert!(tree.join("train.py").exists());
        // No staging folder is left.
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn fresh_staging_is_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(format!(".{}.tree.1.0", "cd".repeat(32)))).unwrap();
        let entry = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap();
        assert!(!is_stale_staging(&entry));
    }

    #[test]
    fn a_damaged_archive_leaves_no_tree() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        fs::write(archive_of(dir.path(), &sha), vec![b'x'; 1024]).unwrap();
        let tree = tree_of(dir.path(), &sha);
        assert!(unpack_once(&archive_of(dir.path(), &sha), &tree).is_err());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the archive"
        );
    }
}
