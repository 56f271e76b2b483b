//! A run's `outputs/` as a tar archive written straight into frames: the
//! daemon holds one chunk at a time whatever the size of the outputs.
//!
//! Nothing is ever followed: a symbolic link goes in as a link (the
//! controller keeps it only if it stays inside the outputs), a file is opened
//! with `O_NOFOLLOW` and checked to be a regular file after opening, so a job
//! swapping a file for a link or a FIFO mid-download gains nothing. FIFOs,
//! sockets, devices and unreadable files are left out and listed (see
//! [`Skips`]), never stopping the download. A file that grows while it is
//! read is sent at the size it had when its header was written (and one that
//! shrinks, padded with zeros), so the archive always stays well-formed.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use moor_proto::archive::Trailer;
use moor_proto::selection::Selection;
use nix::fcntl::OFlag;

/// Size of the data frames a download is cut into.
pub const CHUNK: usize = 256 * 1024;

/// Writes the tar archive of the folder `root` (entries relative to it) to
/// `out`, with the files `selection` wants and the destination lacks;
/// returns the trailer (what was left out, what was already there).
pub fn write_archive(root: &Path, selection: &Selection, out: impl Write) -> io::Result<Trailer> {
    let mut tar = tar::Builder::new(out);
    let mut trailer = Trailer::default();
    let skips = &mut trailer.skipped;
    // Folders still to list: (path on disk, path in the archive).
    let mut folders: Vec<(PathBuf, PathBuf)> = vec![(root.to_path_buf(), PathBuf::new())];
    while let Some((dir, rel)) = folders.pop() {
        let mut names = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect::<Vec<_>>(),
            Err(e) => {
                skips.add(&rel, format!("cannot list it: {e}"));
                continue;
            }
        };
        names.sort();
        // Popped last first: push in reverse for a sorted archive.
        for name in names.into_iter().rev() {
            let (path, rel) = (dir.join(&name), rel.join(&name));
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue; // gone meanwhile
            };
            let kind = meta.file_type();
            let wanted = selection.wants(&rel.to_string_lossy());
            if kind.is_dir() {
                if !selection.filters() {
                    let mut header = header_of(&meta, tar::EntryType::Directory);
                    tar.append_data(&mut header, &rel, io::empty())?;
                }
                folders.push((path, rel));
            } else if !wanted {
                continue;
            } else if already_there(selection, &rel, &path, &meta) {
                trailer.unchanged_files += 1;
                trailer.unchanged_bytes += meta.len();
            } else if kind.is_symlink() {
                let Ok(target) = fs::read_link(&path) else {
                    continue;
                };
                let mut header = header_of(&meta, tar::EntryType::Symlink);
                tar.append_link(&mut header, &rel, &target)?;
            } else if kind.is_file() {
                if let Some(why) = append_file(&mut tar, &path, &rel)? {
                    skips.add(&rel, why);
                }
            } else {
                let what = if kind.is_fifo() {
                    "a FIFO"
                } else if kind.is_socket() {
                    "a socket"
                } else {
                    "a device"
                };
                skips.add(&rel, format!("a special file ({what})"));
            }
        }
    }
    tar.into_inner()?.flush()?;
    Ok(trailer)
}

/// Whether the destination holds this very file: same size, and the same
/// modification time (rsync's quick check: nothing is read) or else the
/// same sha256 (read only when the size matches and the destination sent
/// a hash).
fn already_there(selection: &Selection, rel: &Path, path: &Path, meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let rel = rel.to_string_lossy();
    let Some((have_size, have_hash)) = selection.have.get(&*rel) else {
        return false;
    };
    if *have_size != meta.len() || !meta.is_file() {
        return false;
    }
    if selection.mtimes.get(&*rel) == Some(&meta.mtime()) {
        return true;
    }
    if have_hash.is_empty() {
        return false;
    }
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path);
    opened
        .and_then(moor_proto::sha256_of)
        .is_ok_and(|hash| hash == *have_hash)
}

/// Appends one regular file, opened without following links. `Ok(Some)`
/// says why it was left out (it could not be opened, or is no longer a
/// file; nothing was written then); `Err` is a failure of the archive's
/// writer or a read error mid-file, which end the download.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
) -> io::Result<Option<String>> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
        .and_then(|f| f.metadata().map(|m| (f, m)));
    let (file, meta) = match opened {
        Ok(opened) => opened,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Ok(Some("became a link while it was sent".into()))
        }
        Err(e) => return Ok(Some(format!("cannot read it: {e}"))),
    };
    if !meta.is_file() {
        return Ok(Some(
            "became something other than a file while it was sent".into(),
        ));
    }
    let mut header = header_of(&meta, tar::EntryType::Regular);
    let size = meta.len();
    header.set_size(size);
    let exact = file.take(size).chain(io::repeat(0).take(size));
    tar.append_data(&mut header, rel, exact.take(size))?;
    Ok(None)
}

fn header_of(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o777);
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_size(0);
    header
}

/// A writer that cuts what it is given into chunks of [`CHUNK`] bytes and
/// hands each to `send` (a data frame of the request).
pub struct Chunked<F: FnMut(&[u8]) -> io::Result<()>> {
    buf: Vec<u8>,
    send: F,
    /// Bytes handed on so far.
    pub sent: u64,
}

impl<F: FnMut(&[u8]) -> io::Result<()>> Chunked<F> {
    /// A writer sending through `send`.
    pub fn new(send: F) -> Chunked<F> {
        Chunked {
            buf: Vec::with_capacity(CHUNK),
            send,
            sent: 0,
        }
    }
}

impl<F: FnMut(&[u8]) -> io::Result<()>> Write for Chunked<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            (self.send)(&self.buf)?;
            self.sent += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_links_and_specials_are_listed_not_fatal() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir(r.join("sub")).unwrap();
        fs::write(r.join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("passwd")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        nix::unistd::mkfifo(&r.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut chunks = Vec::new();
        let skips = write_archive(
            r,
            &Selection::default(),
            Chunked::new(|c: &[u8]| {
                chunks.push(c.len());
                Ok(())
            }),
        )
        .unwrap()
        .skipped;
        assert_eq!(skips.total, 1);
        assert_eq!(skips.first[0].to_string(), "pipe: a special file (a FIFO)");
        assert!(chunks.iter().all(|&n| n <= CHUNK));
    }

    #[test]
    fn the_archive_unpacks_to_the_same_tree_and_is_cut_in_chunks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("m/n")).unwrap();
        fs::write(r.join("m/n/big"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        std::os::unix::fs::symlink("n/big", r.join("m/latest")).unwrap();
        let mut bytes = Vec::new();
        let mut sizes = Vec::new();
        write_archive(
            r,
            &Selection::default(),
            Chunked::new(|c: &[u8]| {
                sizes.push(c.len());
                bytes.extend_from_slice(c);
                Ok(())
            }),
        )
        .unwrap();
        assert!(sizes.len() >= 4 && sizes[..sizes.len() - 1].iter().all(|&n| n == CHUNK));
        let dest = tempfile::tempdir().unwrap();
        let done = moor_proto::archive::unpack_within(&bytes[..], dest.path(), 0).unwrap();
        assert_eq!((done.files, done.links, done.skipped.total), (1, 1, 0));
        assert_eq!(
            fs::read(dest.path().join("m/latest")).unwrap().len(),
            3 * CHUNK + 5
        );
    }
}
