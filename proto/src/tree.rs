//! Source snapshots sent file by file. A [`Manifest`] lists a source's
//! files (path, size, executable bit, content sha256) and its links; the
//! sha256 of its bytes names the snapshot, as a tar's hash names a packed
//! one. The host keeps file contents by their hash, so a changed source
//! sends only the contents the host lacks: a zstd stream of records, each a
//! [`BlobHeader`] and the content's bytes.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const FORMAT: &str = "moor-tree 1";

/// A source tree, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Regular files, sorted by path.
    pub files: Vec<TreeFile>,
    /// Symbolic links, sorted by path.
    pub links: Vec<TreeLink>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    /// Relative, `/`-separated.
    pub path: String,
    /// Hex sha256 of its content.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is executable (0755 rather than 0644).
    pub executable: bool,
}

/// One symbolic link of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeLink {
    /// Relative, `/`-separated.
    pub path: String,
    /// Where it points: relative, inside the tree by its text.
    pub target: String,
}

impl Manifest {
    /// A manifest of these files and links (sorted here).
    pub fn new(mut files: Vec<TreeFile>, mut links: Vec<TreeLink>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        links.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            format: FORMAT.into(),
            files,
            links,
        }
    }

    /// Its bytes as sent and hashed (serde_json of the sorted lists: the
    /// same tree always gives the same bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifests serialize")
    }

    /// The bytes' hex sha256: the snapshot's name.
    pub fn id(&self) -> String {
        crate::sha256_hex(&self.to_bytes())
    }

    /// The sum of its files' sizes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Reads a manifest from a host's or controller's bytes and checks it:
    /// the format, plain relative paths each named once, no path under
    /// another file or link, 64-hex hashes, links that stay inside.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest: {e}"))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "manifest format {:?}, this agent reads {FORMAT:?}",
                manifest.format
            ));
        }
        let mut names = HashSet::new();
        let paths = manifest
            .files
            .iter()
            .map(|f| &f.path)
            .chain(manifest.links.iter().map(|l| &l.path));
        for path in paths {
            if !plain_relative(path) {
                return Err(format!("manifest: {path:?} is not a plain relative path"));
            }
            if !names.insert(path.as_str()) {
                return Err(format!("manifest: {path:?} is named twice"));
            }
        }
        for path in &names {
            let mut prefix = *path;
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if names.contains(parent) {
                    return Err(format!("manifest: {path:?} is under the file {parent:?}"));
                }
                prefix = parent;
            }
        }
        if let Some(bad) = manifest
            .files
            .iter()
            .find(|f| !crate::is_sha256_hex(&f.sha256))
        {
            return Err(format!("manifest: {:?} has no sha256", bad.path));
        }
        if let Some(bad) = manifest
            .links
            .iter()
            .find(|l| !crate::archive::stays_inside(Path::new(&l.path), Path::new(&l.target)))
        {
            return Err(format!(
                "manifest: the link {:?} points outside the tree",
                bad.path
            ));
        }
        Ok(manifest)
    }
}

/// Whether `path` is relative and plain: names joined by single `/`, no
/// `.`, `..`, empty name or NUL.
pub fn plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|name| !name.is_empty() && name != "." && name != "..")
}

/// What precedes each content in a blob stream: its hash, mode and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Whether the host keeps it executable.
    pub executable: bool,
    /// The content's size in bytes.
    pub size: u64,
}

/// A header's size on the wire: 32 bytes of hash, 1 of mode, 8 of size.
pub const BLOB_HEADER_LEN: usize = 41;

impl BlobHeader {
    /// Its bytes.
    pub fn encode(&self) -> [u8; BLOB_HEADER_LEN] {
        let mut out = [0u8; BLOB_HEADER_LEN];
        for (i, pair) in self.sha256.as_bytes().chunks(2).take(32).enumerate() {
            let text = std::str::from_utf8(pair).unwrap_or("00");
            out[i] = u8::from_str_radix(text, 16).unwrap_or(0);
        }
        out[32] = u8::from(self.executable);
        out[33..].copy_from_slice(&self.size.to_be_bytes());
        out
    }

    /// The next header of `reader`; `None` where the stream ends cleanly.
    pub fn read_from(reader: &mut impl Read) -> io::Result<Option<BlobHeader>> {
        let mut buf = [0u8; BLOB_HEADER_LEN];
        let mut got = 0;
        while got < BLOB_HEADER_LEN {
            match reader.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if buf[32] > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "blob stream: bad mode byte",
            ));
        }
        Ok(Some(BlobHeader {
            sha256: crate::hex(&buf[..32]),
            executable: buf[32] == 1,
            size: u64::from_be_bytes(buf[33..].try_into().expect("8 bytes")),
        }))
    }

    /// The name the host keeps the content under: its hash, `.x` when
    /// executable (the two modes are two files, since a file's links share
    /// its mode).
    pub fn blob_name(sha256: &str, executable: bool) -> String {
        if executable {
            format!("{sha256}.x")
        } else {
            sha256.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, body: &[u8]) -> TreeFile {
        TreeFile {
            path: path.into(),
            sha256: crate::sha256_hex(body),
            size: body.len() as u64,
            executable: false,
        }
    }

    #[test]
    fn the_same_tree_has_the_same_id_whatever_the_order() {
        let a = Manifest::new(vec![file("b", b"2"), file("a/x", b"1")], vec![]);
        let b = Manifest::new(vec![file("a/x", b"1"), file("b", b"2")], vec![]);
        assert_eq!(a.id(), b.id());
        assert_eq!(Manifest::parse(&a.to_bytes()).unwrap(), a);
        let c = Manifest::new(vec![file("a/x", b"1"), file("b", b"3")], vec![]);
        assert_ne!(a.id(), c.id());
        assert_eq!(a.size(), 2);
    }

    #[test]
    fn unsafe_manifests_are_refused() {
        let link = |path: &str, target: &str| TreeLink {
            path: path.into(),
            target: target.into(),
        };
        let bad = [
            Manifest::new(vec![file("../x", b"")], vec![]),
            Manifest::new(vec![file("/etc/passwd", b"")], vec![]),
            Manifest::new(vec![file("a//b", b"")], vec![]),
            Manifest::new(vec![file("a/./b", b"")], vec![]),
            Manifest::new(vec![file("a", b""), file("a", b"1")], vec![]),
            Manifest::new(vec![file("a/b", b"")], vec![link("a", "c")]),
            Manifest::new(vec![file("a", b""), file("a/b", b"")], vec![]),
            Manifest::new(vec![], vec![link("l", "../../etc")]),
            Manifest::new(vec![], vec![link("l", "/etc")]),
        ];
        for manifest in bad {
            assert!(
                Manifest::parse(&manifest.to_bytes()).is_err(),
                "{manifest:?}"
            );
        }
        let mut no_hash = Manifest::new(vec![file("a", b"")], vec![]);
        no_hash.files[0].sha256 = "x".into();
        assert!(Manifest::parse(&no_hash.to_bytes()).is_err());
        let fine = Manifest::new(vec![file("d/a", b"")], vec![link("d/l", "a")]);
        assert!(Manifest::parse(&fine.to_bytes()).is_ok());
    }

    #[test]
    fn blob_headers_round_trip() {
        let header = BlobHeader {
            sha256: crate::sha256_hex(b"x"),
            executable: true,
            size: 1 << 40,
        };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&header.encode());
        let mut reader = &bytes[..];
        assert_eq!(
            BlobHeader::read_from(&mut reader).unwrap(),
            Some(header.clone())
        );
        assert_eq!(BlobHeader::read_from(&mut reader).unwrap(), Some(header));
        assert_eq!(BlobHeader::read_from(&mut reader).unwrap(), None);
        let mut cut = &bytes[..10];
        assert!(BlobHeader::read_from(&mut cut).is_err());
    }
}
