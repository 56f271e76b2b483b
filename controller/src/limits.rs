//! What moor refuses as too large or malformed before doing any work, in
//! one place, each limit named in its message: spec files (job files,
//! conda files, `--env-file`) over [`SPEC_FILE_BYTES`], not text, or YAML
//! nested deeper than [`YAML_DEPTH`] (a parser's time grows with it); a
//! run's variables over [`MAX_VARIABLES`], [`MAX_VARIABLE_BYTES`] each or
//! [`MAX_ENVIRONMENT_BYTES`] in all (what Linux lets a process start
//! with); run names with control characters or over [`MAX_NAME_CHARS`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest job, conda or variables file moor reads.
pub const SPEC_FILE_BYTES: u64 = 1 << 20;
/// The deepest YAML nesting moor reads.
pub const YAML_DEPTH: usize = 64;
/// The most variables a run gets.
pub const MAX_VARIABLES: usize = 4096;
/// The largest `KEY=VALUE` (Linux's limit for one string a process starts with).
pub const MAX_VARIABLE_BYTES: usize = 128 << 10;
/// The most bytes of variables in all.
pub const MAX_ENVIRONMENT_BYTES: usize = 1 << 20;
/// The longest run name.
pub const MAX_NAME_CHARS: usize = 128;

/// The text of a spec file, or why not (one line): too large, not UTF-8,
/// YAML nested too deep (`yaml`), unreadable.
pub fn spec_text(file: &Path, yaml: bool) -> std::result::Result<String, String> {
    let opened = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut bytes = Vec::new();
    opened
        .take(SPEC_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if bytes.len() as u64 > SPEC_FILE_BYTES {
        return Err(format!(
            "{} is over {}, the largest file of this kind moor reads",
            file.display(),
            moor_proto::human_bytes(SPEC_FILE_BYTES)
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not text: byte {} is not UTF-8",
            file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    if yaml && flow_depth(&text) > YAML_DEPTH {
        return Err(format!(
            "{} nests deeper than {YAML_DEPTH} levels, the deepest moor reads",
            file.display()
        ));
    }
    Ok(text)
}

/// How deep YAML's flow collections (`[...]`, `{...}`) nest, outside quotes
/// and comments. (Block nesting is bounded by the file's size: each level
/// indents every line below it.)
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        match (quote, c) {
            // Quoted scalars may span lines: the quote stays open.
            (_, '\n') => comment = false,
            _ if comment => {}
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    deepest
}

/// Refuses a run's variables over the limits, naming the limit.
pub fn check_variables(vars: &BTreeMap<String, String>) -> Result<()> {
    let fix = "send fewer or smaller variables (-e, --env-file, environment_variables); large values belong in files of the source";
    if vars.len() > MAX_VARIABLES {
        return Err(Error::usage(
            format!(
                "{} variables for the run; moor sends at most {MAX_VARIABLES}",
                vars.len()
            ),
            fix,
        ));
    }
    let mut total = 0;
    for (key, value) in vars {
        let size = key.len() + 1 + value.len();
        if size > MAX_VARIABLE_BYTES {
            return Err(Error::usage(
                format!(
                    "variable {key} is {}, over the {} one variable may hold",
                    moor_proto::human_bytes(size as u64),
                    moor_proto::human_bytes(MAX_VARIABLE_BYTES as u64)
                ),
                fix,
            ));
        }
        total += size + 1;
    }
    if total > MAX_ENVIRONMENT_BYTES {
        return Err(Error::usage(
            format!(
                "the run's variables are {} in all, over the {} moor sends",
                moor_proto::human_bytes(total as u64),
                moor_proto::human_bytes(MAX_ENVIRONMENT_BYTES as u64)
            ),
            fix,
        ));
    }
    Ok(())
}

/// Refuses a run name with a control character (a newline would split a
/// row of `moor runs`) or over [`MAX_NAME_CHARS`].
pub fn check_name(name: &str) -> Result<()> {
    if name.chars().any(char::is_control) || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::usage(
            format!("{name:?} is not a run name: control characters, or over {MAX_NAME_CHARS} characters"),
            format!("give --name (or display_name) printable text of at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_nesting_is_counted_outside_quotes_and_comments() {
        assert_eq!(flow_depth("a: [1, {b: [2]}]\n"), 3);
        assert_eq!(flow_depth("a: '[[[['\nb: \"{{{\" # [[[[\n"), 0);
        assert_eq!(flow_depth(&"[".repeat(100_000)), 100_000);
    }

    #[test]
    fn variables_and_names_over_the_limits_are_refused() {
        let many: BTreeMap<String, String> =
            (0..5000).map(|i| (format!("V{i}"), "x".into())).collect();
        assert!(check_variables(&many)
            .unwrap_err()
            .to_string()
            .contains("at most 4096"));
        let big = BTreeMap::from([("V".to_owned(), "x".repeat(200 << 10))]);
        assert!(check_variables(&big).is_err());
        let fine = BTreeMap::from([("V".to_owned(), "x".repeat(1000))]);
        check_variables(&fine).unwrap();
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"n".repeat(129)).is_err());
        check_name("train — run 2").unwrap();
    }
}
