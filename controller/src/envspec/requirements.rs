//! pip requirements files as pip and pip-tools write them: requirements
//! (PEP 508 names with extras, specifiers and markers; `name @ URL`; bare
//! wheel, sdist and VCS URLs), `--hash` options and continuation lines
//! (`pip-compile --generate-hashes`), index options, and `-r`/`-c` files
//! read relative to the file that names them (recursively, cycles refused).
//! Everything they name becomes part of the spec, so its hash changes with
//! any of them. Local paths and `-e` are refused with a fix that works
//! (a wheelhouse). Every bad line is reported, in one go.

use std::path::{Path, PathBuf};

use moor_proto::env::PipSpec;

use super::SpecError;

/// Index options kept (with their value), in file order.
const VALUE_OPTIONS: &[&str] = &[
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
];
/// Flag options kept as written.
const FLAG_OPTIONS: &[&str] = &[
    "--no-index",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
];
/// URL schemes pip installs from directly.
const URL_SCHEMES: &[&str] = &["https://", "http://", "file://"];
/// Version-control schemes (`git+https://...`).
const VCS_PREFIXES: &[&str] = &["git+", "hg+", "svn+", "bzr+"];
/// Most `-r`/`-c` files one spec may read (a guard, far above real use).
const MAX_FILES: usize = 256;

/// Parses a requirements file and the files it includes.
pub fn parse(file: &Path) -> Result<PipSpec, SpecError> {
    let mut reader = Reader::default();
    reader.file(file, false, None);
    let Reader {
        spec,
        mut errors,
        option_lines,
        ..
    } = reader;
    if errors.is_empty() && spec.requirements.is_empty() {
        let reason = match option_lines.first() {
            Some((file, line, option)) => format!(
                "no requirements: only options (the first, {option:?}, at {}:{line}); list at least one package",
                file.display()
            ),
            None => "no requirements".into(),
        };
        errors.push(SpecError::at(file, None, reason));
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(SpecError::many(errors))
    }
}

/// Parses the lines of a conda file's `pip:` section: requirements, and
/// options as in a requirements file (`-r` relative to the conda file).
pub fn parse_lines(
    file: &Path,
    lines: &[(Option<usize>, String)],
) -> Result<PipSpec, Vec<SpecError>> {
    let mut reader = Reader::default();
    for (line, text) in lines {
        reader.line(file, *line, text, false);
    }
    if reader.errors.is_empty() {
        Ok(reader.spec)
    } else {
        Err(reader.errors)
    }
}

#[derive(Default)]
struct Reader {
    spec: PipSpec,
    errors: Vec<SpecError>,
    /// The files being read, outermost first (canonical paths).
    reading: Vec<PathBuf>,
    files_read: usize,
    option_lines: Vec<(PathBuf, usize, String)>,
}

impl Reader {
    /// Reads `file` (named at `from`, a file and line, unless it is the top one).
    fn file(&mut self, file: &Path, constraints: bool, from: Option<(&Path, usize)>) {
        let at = |reason: String| match from {
            Some((f, line)) => SpecError::at(f, Some(line), reason),
            None => SpecError::at(file, None, reason),
        };
        let canonical = match std::fs::canonicalize(file) {
            Ok(path) => path,
            Err(e) => return self.errors.push(at(format!("{}: {e}", file.display()))),
        };
        if let Some(first) = self.reading.iter().position(|p| *p == canonical) {
            let cycle: Vec<String> = self.reading[first..]
                .iter()
                .chain([&canonical])
                .map(|p| p.display().to_string())
                .collect();
            return self.errors.push(at(format!(
                "files include each other: {}",
                cycle.join(" -> ")
            )));
        }
        self.files_read += 1;
        if self.files_read > MAX_FILES {
            return self
                .errors
                .push(at(format!("more than {MAX_FILES} files included")));
        }
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => return self.errors.push(at(format!("{}: {e}", file.display()))),
        };
        self.reading.push(canonical);
        for (line, logical) in logical_lines(&text) {
            self.line(file, Some(line), &logical, constraints);
        }
        self.reading.pop();
    }

    /// One logical line (continuations joined, comment not yet removed).
    fn line(&mut self, file: &Path, line: Option<usize>, text: &str, constraints: bool) {
        let text = strip_comment(text);
        if text.is_empty() {
            return;
        }
        let error = |reason: String| SpecError::at(file, line, reason);
        if text.starts_with('-') {
            if let Err(reason) = self.option(file, line, text, constraints) {
                self.errors.push(error(reason));
            }
            return;
        }
        match requirement_with_hashes(text) {
            Ok(req) if constraints => self.spec.constraints.push(req),
            Ok(req) => self.spec.requirements.push(req),
            Err(reason) => self.errors.push(error(reason)),
        }
    }

    fn option(
        &mut self,
        file: &Path,
        line: Option<usize>,
        text: &str,
        constraints: bool,
    ) -> Result<(), String> {
        let (option, value) = split_option(text);
        let included = |value: &str| -> Result<PathBuf, String> {
            if value.is_empty() {
                return Err(format!("{option} needs a file"));
            }
            if value.contains("://") {
                return Err(format!(
                    "{option} {value}: a URL; download the file next to this one and name it instead"
                ));
            }
            let base = file.parent().unwrap_or(Path::new(""));
            Ok(base.join(value))
        };
        match option {
            "-r" | "--requirement" => {
                let path = included(value)?;
                self.file(&path, constraints, Some((file, line.unwrap_or(0))));
            }
            "-c" | "--constraint" => {
                let path = included(value)?;
                self.file(&path, true, Some((file, line.unwrap_or(0))));
            }
            "-e" | "--editable" => {
                return Err(format!(
                    "{option} {value}: editable installs are not supported; for a URL drop -e, for a local directory build a wheel (pip wheel {value} -w wheels) and pass --wheelhouse wheels with the package's name listed"
                ))
            }
            "--require-hashes" => {} // implied by the hashes themselves
            _ if VALUE_OPTIONS.contains(&option) => {
                if value.is_empty() {
                    return Err(format!("{option} needs a value"));
                }
                self.note_option(file, line, option);
                self.spec.options.push(format!("{option} {value}"));
            }
            _ if FLAG_OPTIONS.contains(&option) => {
                self.note_option(file, line, option);
                self.spec.options.push(text.to_owned());
            }
            _ => return Err(format!("unsupported option {option:?}")),
        }
        Ok(())
    }

    fn note_option(&mut self, file: &Path, line: Option<usize>, option: &str) {
        if let Some(line) = line {
            self.option_lines
                .push((file.to_owned(), line, option.to_owned()));
        }
    }
}

/// Lines with their continuations (`\` at the end) joined, each with the
/// 1-based line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut joined = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if joined.is_empty() {
            start = i + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
            }
            None => {
                joined.push_str(raw);
                out.push((start, std::mem::take(&mut joined)));
            }
        }
    }
    if !joined.trim().is_empty() {
        out.push((start, joined));
    }
    out
}

/// The line without a comment (`#` at the start or after whitespace), trimmed.
fn strip_comment(line: &str) -> &str {
    let cut = line
        .char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(|p: char| p.is_whitespace())))
        .map_or(line.len(), |(i, _)| i);
    line[..cut].trim()
}

/// `-r file`, `-r=file`, `--requirement=file`, `-rfile`.
fn split_option(text: &str) -> (&str, &str) {
    if let Some(split) = text.find(|c: char| c.is_whitespace() || c == '=') {
        let value = text[split..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
        return (&text[..split], value.trim());
    }
    for short in ["-r", "-c", "-e", "-i", "-f"] {
        if let Some(value) = text.strip_prefix(short).filter(|v| !v.is_empty()) {
            return (short, value);
        }
    }
    (text, "")
}

/// A requirement with its `--hash` options: canonical requirement, then
/// the hashes sorted.
fn requirement_with_hashes(text: &str) -> Result<String, String> {
    let mut hashes = Vec::new();
    let mut rest = Vec::new();
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let value = if word == "--hash" {
            Some(words.next().unwrap_or_default())
        } else {
            word.strip_prefix("--hash=")
        };
        match value {
            Some(value) => hashes.push(hash(value)?),
            None if word.starts_with("--") => {
                return Err(format!(
                    "unsupported per-requirement option {word:?} (only --hash is)"
                ))
            }
            None => rest.push(word),
        }
    }
    let mut out = requirement(&rest.join(" "))?;
    hashes.sort();
    hashes.dedup();
    for hash in hashes {
        out.push_str(" --hash=");
        out.push_str(&hash);
    }
    Ok(out)
}

/// `sha256:HEX` (or sha384, sha512) with the right length.
fn hash(value: &str) -> Result<String, String> {
    let (algorithm, hex) = value
        .split_once(':')
        .ok_or_else(|| format!("--hash {value:?}: expected ALGORITHM:HEX, e.g. sha256:..."))?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("--hash {value:?}: use sha256, sha384 or sha512")),
    };
    if hex.len() != length || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--hash {value:?}: a {algorithm} hash is {length} hex digits"
        ));
    }
    Ok(format!("{algorithm}:{}", hex.to_ascii_lowercase()))
}

/// Checks one requirement and returns it in canonical form: a PEP 508
/// name (normalised per PEP 503) with extras, specifier or `@ URL`, and
/// marker; or a bare URL as written. Local paths are refused.
pub(super) fn requirement(line: &str) -> Result<String, String> {
    let line = line.trim();
    if let Some(url) = bare_url(line) {
        return url;
    }
    if line.starts_with(['.', '/', '~']) || line.contains(['/', '\\']) && !line.contains('@') {
        return Err(format!(
            "{line:?} is a local path, which moor does not ship with an environment; build a wheel (pip wheel {line} -w wheels), list the package by name and pass --wheelhouse wheels"
        ));
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{line:?} is not a requirement (expected NAME[extras] [specifier], NAME @ URL, or a URL)"
        ));
    }
    let mut normal = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && normal.ends_with('-')) {
            normal.push(c);
        }
    }
    let after = &line[name_end..];
    // In `name @ URL ; marker`, a ';' inside the URL is not the marker's.
    let (rest, marker) = match after.trim_start().starts_with('@') {
        true => match after.split_once(" ;").or_else(|| after.split_once("; ")) {
            Some((rest, marker)) => (rest.trim(), Some(marker.trim())),
            None => (after.trim(), None),
        },
        false => match after.split_once(';') {
            Some((rest, marker)) => (rest.trim(), Some(marker.trim())),
            None => (after.trim(), None),
        },
    };
    let (extras, rest) = match rest.strip_prefix('[') {
        Some(inner) => {
            let (extras, rest) = inner
                .split_once(']')
                .ok_or_else(|| format!("{line:?}: unclosed [ in the extras"))?;
            (format!("[{}]", extras.replace(' ', "")), rest.trim())
        }
        None => (String::new(), rest),
    };
    let version = if let Some(url) = rest.strip_prefix('@') {
        let url = url.trim();
        if url.is_empty() || url.contains(char::is_whitespace) || !url.contains("://") {
            return Err(format!("{line:?}: expected NAME @ URL"));
        }
        format!(" @ {url}")
    } else {
        let compact: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
        for clause in compact.split(',').filter(|c| !c.is_empty()) {
            let op = ["===", "==", "!=", "~=", ">=", "<=", ">", "<"]
                .iter()
                .find(|op| clause.starts_with(*op))
                .ok_or_else(|| {
                    format!("{clause:?} is not a version specifier (use ==, >=, <=, !=, ~=, >, <)")
                })?;
            let v = &clause[op.len()..];
            if v.is_empty()
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '-' | '_')
                })
            {
                return Err(format!("{clause:?}: {v:?} is not a version"));
            }
        }
        compact
    };
    Ok(match marker {
        Some(marker) => format!("{normal}{extras}{version}; {marker}"),
        None => format!("{normal}{extras}{version}"),
    })
}

/// A bare URL requirement (a wheel, an sdist, `git+https://...@REV#egg=NAME`),
/// with its marker, if `line` is one.
fn bare_url(line: &str) -> Option<Result<String, String>> {
    let lower = line.to_ascii_lowercase();
    let vcs = VCS_PREFIXES.iter().any(|p| lower.starts_with(p));
    if !vcs && !URL_SCHEMES.iter().any(|s| lower.starts_with(s)) {
        return None;
    }
    let (url, marker) = match line.split_once(" ;").or_else(|| line.split_once("; ")) {
        Some((url, marker)) => (url.trim(), Some(marker.trim())),
        None => (line, None),
    };
    if url.contains(char::is_whitespace) {
        return Some(Err(format!("{line:?}: a URL has no spaces")));
    }
    if vcs && !url.contains("://") {
        return Some(Err(format!(
            "{line:?}: expected a VCS URL such as git+https://HOST/REPO@REV#egg=NAME"
        )));
    }
    Some(Ok(match marker {
        Some(marker) => format!("{url}; {marker}"),
        None => url.to_owned(),
    }))
}

#[cfg(test)]
mod tests;
