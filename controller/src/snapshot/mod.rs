//! Source snapshots: a deterministic tar of a directory that honours
//! `.gitignore` (and `.ignore`, `.moorignore`), addressed by its sha256, so
//! an unchanged source is never sent twice.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

mod index;

pub use index::SnapshotIndex;

/// The folder `moor download` writes to by default (`./moor-outputs/RUN`):
/// never part of a snapshot, so outputs are not uploaded with the next run.
pub const DOWNLOADS_DIR: &str = "moor-outputs";

/// Default largest snapshot.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// A packed snapshot. Its archive may be packed only when a host lacks it:
/// a source the [`SnapshotIndex`] knows unchanged has its hash and size
/// without a file being read.
#[derive(Debug)]
pub struct Snapshot {
    /// Its hex sha256.
    pub sha256: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// Files in it.
    pub files: usize,
    /// Symbolic links left out because they point outside the directory
    /// (each with where it points).
    pub skipped_links: Vec<(PathBuf, PathBuf)>,
    /// The tar archive, once packed.
    packed: std::sync::OnceLock<Vec<u8>>,
    /// Where to pack it from when it is not packed yet.
    source: Option<(PathBuf, Listing)>,
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
            files,
            skipped_links,
            packed: std::sync::OnceLock::from(bytes),
            source: None,
        }
    }

    /// The same archive claiming another hash: what a damaged upload looks
    /// like to the agent (its checks are tested with it).
    pub fn with_claimed_sha256(mut self, sha256: String) -> Snapshot {
        self.sha256 = sha256;
        self
    }

    /// The tar archive, packed now if it was not (the files are read again;
    /// one changed since its hash was taken is refused, not sent).
    pub fn bytes(&self) -> Result<&[u8]> {
        if let Some(bytes) = self.packed.get() {
            return Ok(bytes);
        }
        let (dir, listing) = self
            .source
            .as_ref()
            .expect("an unpacked snapshot has a source");
        let bytes = archive(dir, listing)?;
        if moor_proto::sha256_hex(&bytes) != self.sha256 {
            return Err(Error::usage(
                format!("the source in {} changed while moor read it", dir.display()),
                "run the command again once the files stop changing",
            ));
        }
        Ok(self.packed.get_or_init(|| bytes))
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

/// [`pack`], through the workspace's index: a source whose files (names,
/// sizes, times, inodes, modes, links) are as when it was last packed gets
/// its hash and size from the index, and is read only if a host lacks it.
pub fn pack_source(dir: &Path, max_bytes: u64, index: &SnapshotIndex) -> Result<Snapshot> {
    let started = std::time::SystemTime::now();
    let listing = walk(dir, max_bytes, Ignores::Source)?;
    let key = index::Key::of(dir, &listing);
    if let Some(known) = index.get(&key) {
        tracing::debug!(sha256 = %known.sha256, "source unchanged since it was last packed");
        return Ok(Snapshot {
            sha256: known.sha256,
            size: known.size,
            files: listing.paths.len(),
            skipped_links: listing.skipped_links.clone(),
            packed: std::sync::OnceLock::new(),
            source: Some((dir.to_owned(), listing)),
        });
    }
    let bytes = archive(dir, &listing)?;
    let snap = Snapshot::packed(bytes, listing.paths.len(), listing.skipped_links.clone());
    // Only a listing whose files are all older than this packing may vouch
    // for the content later (a file changed within its time stamp's
    // granularity keeps its time): git's "racily clean" rule.
    if listing.newest < started - std::time::Duration::from_secs(2) {
        index.put(&key, &snap);
    }
    Ok(snap)
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
    /// Each file's size, times, inode and mode, in `paths` order.
    stats: Vec<index::FileStat>,
    /// The newest modification or change time of any file.
    newest: std::time::SystemTime,
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
            e.file_name() != ".git" && !ours && !docker_ignored
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
                        crate::checks::bytes(max_bytes),
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
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for rel in &paths {
        let meta = std::fs::symlink_metadata(dir.join(rel)).map_err(io)?;
        let stat = index::FileStat::of(&meta);
        newest = newest.max(stat.newest());
        stats.push(stat);
    }
    Ok(Listing {
        paths,
        links,
        skipped_links,
        stats,
        newest,
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
