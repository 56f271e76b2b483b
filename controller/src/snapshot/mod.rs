//! Source snapshots: a deterministic tar of a directory that honours
//! `.gitignore` (and `.ignore`, `.moorignore`), addressed by its sha256, so
//! an unchanged source is never sent twice.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

mod guard;
mod index;
mod tree;

pub use guard::{leave_out_workspace, Keys};
pub use index::SnapshotIndex;
pub use tree::{send_blob, TreeSource};

/// The folder `moor download` writes to by default (`./moor-outputs/RUN`):
/// never part of a snapshot, so outputs are not uploaded with the next run.
pub const DOWNLOADS_DIR: &str = "moor-outputs";

/// Default largest snapshot.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// A snapshot: a packed archive, or a source tree sent file by file.
#[derive(Debug)]
pub struct Snapshot {
    /// Its hex sha256 (of the archive, or of the tree's manifest).
    pub sha256: String,
    /// The archive's size, or the tree's files' sizes summed.
    pub size: u64,
    /// Files in it.
    pub files: usize,
    /// Symbolic links left out because they point outside the directory
    /// (each with where it points).
    pub skipped_links: Vec<(PathBuf, PathBuf)>,
    /// How many files were read to make it (a source's others had their
    /// hashes in the workspace's index).
    pub files_read: usize,
    /// Whether it is not the snapshot its source folder made last time in
    /// this workspace (a host is then unlikely to have it).
    pub new: bool,
    content: Content,
}

#[derive(Debug)]
enum Content {
    /// A tar archive.
    Packed(Vec<u8>),
    /// A source read file by file when a host lacks its contents.
    Tree(TreeSource),
}

impl Snapshot {
    /// A snapshot of `bytes`, packed already.
    pub fn packed(
        bytes: Vec<u8>,
        files: usize,
        skipped_links: Vec<(PathBuf, PathBuf)>,
    ) -> Snapshot {
        Snapshot {
            sha256: moor_proto::sha256_hex(&bytes),
            size: bytes.len() as u64,
            files_read: files,
            new: true,
            files,
            skipped_links,
            content: Content::Packed(bytes),
        }
    }

    /// The same content claiming another hash: what a damaged upload looks
    /// like to the agent (its checks are tested with it).
    pub fn with_claimed_sha256(mut self, sha256: String) -> Snapshot {
        self.sha256 = sha256;
        self
    }

    /// The tar archive, for a packed snapshot.
    pub fn archive(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Packed(bytes) => Some(bytes),
            Content::Tree(_) => None,
        }
    }

    /// The tar archive itself, for a packed snapshot (no copy of it made).
    pub fn into_archive(self) -> Option<Vec<u8>> {
        match self.content {
            Content::Packed(bytes) => Some(bytes),
            Content::Tree(_) => None,
        }
    }

    /// The source tree, for one sent file by file.
    pub fn tree(&self) -> Option<&TreeSource> {
        match &self.content {
            Content::Tree(tree) => Some(tree),
            Content::Packed(_) => None,
        }
    }

    /// The one warning line about links left out, if any were.
    pub fn skipped_warning(&self) -> Option<String> {
        if self.skipped_links.is_empty() {
            return None;
        }
        let shown: Vec<String> = self
            .skipped_links
            .iter()
            .map(|(link, to)| format!("{} -> {}", link.display(), to.display()))
            .collect();
        Some(format!(
            "moor: left out {} symbolic link(s) pointing outside the source: {}",
            shown.len(),
            shown.join(", ")
        ))
    }
}

/// Packs `dir`. Entries are sorted and their metadata normalised (owner 0,
/// mtime 0, mode 0644 or 0755), so the same files give the same hash.
/// Symbolic links stay links when they point inside `dir` (an absolute one
/// is made relative); those pointing outside are left out and listed in
/// [`Snapshot::skipped_links`], never followed.
pub fn pack(dir: &Path, max_bytes: u64) -> Result<Snapshot> {
    pack_with(dir, max_bytes, Ignores::Source)
}

/// A run's source: `dir` as a tree sent file by file ([`tree`]), each
/// file's hash from the workspace's index when it stats as when it was
/// last hashed, so an unchanged source is known without reading a file
/// and a changed one reads only what changed. A source with a name that is
/// not UTF-8 is packed as an archive instead.
pub fn pack_source(
    dir: &Path,
    max_bytes: u64,
    index: &SnapshotIndex,
    keys: Keys,
) -> Result<Snapshot> {
    let started = std::time::SystemTime::now();
    let mut listing = walk(dir, max_bytes, Ignores::Source)?;
    listing.keys = keys;
    if let Some(tree) = tree::of_listing(dir, &listing, index, started)? {
        tracing::debug!(
            read = tree.hashed,
            files = listing.paths.len(),
            "source hashed"
        );
        return Ok(Snapshot {
            sha256: tree.id,
            size: tree.size,
            files: listing.paths.len(),
            skipped_links: listing.skipped_links,
            files_read: tree.hashed,
            new: tree.new,
            content: Content::Tree(tree.source),
        });
    }
    let bytes = archive(dir, &listing)?;
    Ok(Snapshot::packed(
        bytes,
        listing.paths.len(),
        listing.skipped_links,
    ))
}

/// Packs every file of `dir`, ignore files or not (a channel, a wheelhouse).
pub fn pack_all(dir: &Path, max_bytes: u64) -> Result<Snapshot> {
    pack_with(dir, max_bytes, Ignores::None)
}

/// Packs a Docker build context: what Docker would send, honouring only
/// the `.dockerignore` at its top (patterns anchored there, `**` and `!`
/// as Docker reads them); `Dockerfile` and `.dockerignore` are always sent.
pub fn pack_docker_context(dir: &Path, max_bytes: u64) -> Result<Snapshot> {
    let file = dir.join(".dockerignore");
    let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
    if let Ok(text) = std::fs::read_to_string(&file) {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Docker anchors every pattern at the context's top.
            let (bang, pattern) = match line.strip_prefix('!') {
                Some(rest) => ("!", rest.trim()),
                None => ("", line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            builder
                .add_line(Some(file.clone()), &format!("{bang}/{pattern}"))
                .map_err(|e| {
                    Error::usage(
                        format!("{}:{}: {e}", file.display(), i + 1),
                        "write .dockerignore patterns as Docker documents them",
                    )
                })?;
        }
    }
    let matcher = builder.build().map_err(|e| {
        Error::usage(
            format!("{}: {e}", file.display()),
            "write .dockerignore patterns as Docker documents them",
        )
    })?;
    pack_with(
        dir,
        max_bytes,
        Ignores::Docker(std::sync::Arc::new(matcher)),
    )
}

/// Whether `.dockerignore` leaves `rel` out, as Docker reads it: the last
/// pattern matching the path itself decides, else one matching a parent
/// folder (an excluded folder's files are out unless a `!` pattern names
/// them, so such a folder is walked, not skipped, when there are `!` lines).
fn dockerignored(matcher: &ignore::gitignore::Gitignore, rel: &Path, is_dir: bool) -> bool {
    let own = matcher.matched(rel, is_dir);
    if own.is_whitelist() {
        return false;
    }
    if is_dir && matcher.num_whitelists() > 0 {
        return false; // a file inside may be let back in
    }
    own.is_ignore() || matcher.matched_path_or_any_parents(rel, is_dir).is_ignore()
}

/// Packs one file as a snapshot holding it under its own name (a job's
/// `uri_file` input), metadata normalised as in [`pack`].
pub fn pack_file(file: &Path, max_bytes: u64) -> Result<Snapshot> {
    let io = |cause: std::io::Error| Error::Io {
        what: "cannot pack the input file",
        path: file.to_owned(),
        cause,
    };
    let meta = std::fs::metadata(file).map_err(io)?;
    if meta.len() > max_bytes {
        return Err(Error::usage(
            format!(
                "{} is {}, over the {} limit",
                file.display(),
                moor_proto::human_bytes(meta.len()),
                moor_proto::human_bytes(max_bytes)
            ),
            "pass a smaller file, or raise --max-snapshot-size",
        ));
    }
    let name = file.file_name().ok_or_else(|| {
        Error::usage(
            format!("{} names no file", file.display()),
            "give the input's file path",
        )
    })?;
    let data = std::fs::read(file).map_err(io)?;
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    archive
        .append_data(&mut header, name, &data[..])
        .map_err(io)?;
    let bytes = archive.into_inner().map_err(io)?;
    Ok(Snapshot::packed(bytes, 1, Vec::new()))
}

/// Which files a snapshot leaves out.
#[derive(Clone)]
enum Ignores {
    /// `.gitignore`, `.ignore`, `.moorignore`, and moor's download folder.
    Source,
    /// None.
    None,
    /// A `.dockerignore`.
    Docker(std::sync::Arc<ignore::gitignore::Gitignore>),
}

/// What a snapshot of a directory holds, read from its metadata only.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Regular files, relative, sorted.
    paths: Vec<PathBuf>,
    /// Links kept (relative path, where it points), sorted.
    links: Vec<(PathBuf, PathBuf)>,
    /// Links left out, sorted.
    skipped_links: Vec<(PathBuf, PathBuf)>,
    /// Whether files holding a private key are refused (a source's are).
    keys: Keys,
    /// Each file's size, times, inode and mode, in `paths` order.
    stats: Vec<index::FileStat>,
}

fn pack_with(dir: &Path, max_bytes: u64, mode: Ignores) -> Result<Snapshot> {
    let listing = walk(dir, max_bytes, mode)?;
    let bytes = archive(dir, &listing)?;
    Ok(Snapshot::packed(
        bytes,
        listing.paths.len(),
        listing.skipped_links,
    ))
}

/// Lists what a snapshot of `dir` holds, reading no file.
fn walk(dir: &Path, max_bytes: u64, mode: Ignores) -> Result<Listing> {
    let ignores = matches!(mode, Ignores::Source);
    let io = |cause: std::io::Error| Error::Io {
        what: "cannot pack the source snapshot",
        path: dir.to_owned(),
        cause,
    };
    if !dir.is_dir() {
        return Err(Error::usage(
            format!("--source-dir {} is not a directory", dir.display()),
            "pass the directory with your training code",
        ));
    }
    let mut paths = Vec::new();
    let mut links = Vec::new();
    let mut skipped_links = Vec::new();
    // moor's own download folder: at the top of the source, and the one
    // under the current directory when that is inside the source.
    let downloads = std::env::current_dir()
        .ok()
        .map(|cwd| cwd.join(DOWNLOADS_DIR))
        .and_then(|d| {
            d.strip_prefix(dir.canonicalize().ok()?)
                .ok()
                .map(Path::to_owned)
        });
    let workspace = guard::workspace_in(dir);
    let root = dir.to_path_buf();
    let mut builder = ignore::WalkBuilder::new(dir);
    builder
        .standard_filters(ignores)
        .hidden(false)
        .require_git(false)
        .filter_entry(move |e| {
            let rel = e.path().strip_prefix(&root).unwrap_or(e.path());
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            let ours = ignores
                && is_dir
                && (rel == Path::new(DOWNLOADS_DIR) || downloads.as_deref() == Some(rel));
            let docker_ignored = match &mode {
                Ignores::Docker(matcher) => {
                    let always = rel.as_os_str().is_empty()
                        || rel == Path::new("Dockerfile")
                        || rel == Path::new(".dockerignore");
                    !always && dockerignored(matcher, rel, is_dir)
                }
                _ => false,
            };
            let workspace = is_dir && workspace.as_deref() == Some(rel);
            if workspace {
                guard::say_left_out(&root, rel);
            }
            e.file_name() != ".git" && !ours && !docker_ignored && !workspace
        });
    if ignores {
        builder.add_custom_ignore_filename(".moorignore");
    }
    let walker = builder.build();
    let mut total = 0u64;
    for entry in walker {
        let entry = entry.map_err(|e| io(std::io::Error::other(e)))?;
        if entry.path_is_symlink() {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("walk stays inside")
                .to_owned();
            let to = std::fs::read_link(entry.path()).map_err(io)?;
            match link_inside(&rel, &to, dir) {
                Some(kept) => links.push((rel, kept)),
                None => skipped_links.push((rel, to)),
            }
            continue;
        }
        if entry.file_type().is_some_and(|t| t.is_file()) {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("walk stays inside")
                .to_owned();
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if total > max_bytes {
                return Err(Error::usage(
                    format!(
                        "the source in {} is over {} (at {})",
                        dir.display(),
                        moor_proto::human_bytes(max_bytes),
                        rel.display()
                    ),
                    "list data and build outputs in .moorignore or .gitignore, or raise --max-snapshot-size",
                ));
            }
            paths.push(rel);
        }
    }
    paths.sort();
    links.sort();
    skipped_links.sort();
    let mut stats = Vec::with_capacity(paths.len());
    for rel in &paths {
        let meta = std::fs::symlink_metadata(dir.join(rel)).map_err(io)?;
        let stat = index::FileStat::of(&meta);
        stats.push(stat);
    }
    Ok(Listing {
        paths,
        links,
        skipped_links,
        keys: Keys::Allow,
        stats,
    })
}

/// The tar archive of a listing (files read now).
fn archive(dir: &Path, listing: &Listing) -> Result<Vec<u8>> {
    let io = |cause: std::io::Error| Error::Io {
        what: "cannot pack the source snapshot",
        path: dir.to_owned(),
        cause,
    };
    let (paths, links) = (&listing.paths, &listing.links);
    let mut archive = tar::Builder::new(Vec::new());
    for rel in paths {
        let full = dir.join(rel);
        let data = std::fs::read(&full).map_err(io)?;
        if listing.keys == Keys::Refuse
            && guard::is_private_key(&data[..data.len().min(guard::HEAD)])
        {
            return Err(guard::refused(&full));
        }
        let executable = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&full).map_err(io)?.permissions().mode() & 0o111 != 0
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        archive
            .append_data(&mut header, rel, &data[..])
            .map_err(io)?;
    }
    for (rel, to) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        archive.append_link(&mut header, rel, to).map_err(io)?;
    }
    archive.into_inner().map_err(io)
}

/// Where the link at `rel` (inside `root`) pointing to `to` leads, as a
/// relative target, when it stays inside `root`; `None` when it leaves it.
/// Judged on the paths as written (lexically), never by following them.
fn link_inside(rel: &Path, to: &Path, root: &Path) -> Option<PathBuf> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let target = if to.is_absolute() {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let abs = normalize(to)?;
        abs.strip_prefix(&root).ok()?.to_owned()
    } else {
        normalize(&parent.join(to))?
    };
    // As written when relative; an absolute one becomes relative to the link.
    if !to.is_absolute() {
        return Some(to.to_owned());
    }
    let ups = parent.components().count();
    let mut relative: PathBuf = std::iter::repeat_n(Component::ParentDir, ups).collect();
    relative.push(target);
    Some(relative)
}

/// `path` with `.` and `..` worked out; `None` when `..` climbs above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
