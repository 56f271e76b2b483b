//! A run's own environment variables, from `moor run -e KEY=VALUE` and
//! `--env-file FILE` (KEY=VALUE lines as `.env` files write them). Checked
//! where the user wrote them; values travel to the host only in the run's
//! spec (0600), never in argv, logs or `moor runs` output.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The variables of `--env-file` (if any), then `-e` ones over them.
pub fn collect(vars: &[String], file: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    if let Some(file) = file {
        let text = crate::limits::spec_text(file, false).map_err(|why| {
            Error::usage(
                format!("--env-file {why}"),
                "give a text file of KEY=VALUE lines",
            )
        })?;
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            match parse(line) {
                Ok((k, v)) => {
                    env.insert(k, v);
                }
                Err(why) => bad.push(format!("{}:{}: {why}", file.display(), i + 1)),
            }
        }
        if !bad.is_empty() {
            return Err(Error::usage(
                bad.join("; "),
                "write each line as KEY=VALUE (KEY: letters, digits, _; not starting with a digit)",
            ));
        }
    }
    for var in vars {
        let (k, v) = parse(var).map_err(|why| {
            Error::usage(
                format!("-e {:?}: {why}", var.split('=').next().unwrap_or_default()),
                "write it as -e KEY=VALUE",
            )
        })?;
        env.insert(k, v);
    }
    Ok(env)
}

/// Whether `key` is an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `KEY=VALUE`, the value unquoted if it is wholly in '' or "".
fn parse(s: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or("no `=`")?;
    let key = key.trim();
    if !is_name(key) {
        return Err(format!("{key:?} is not a variable name"));
    }
    let value = value.trim();
    let unquoted = ['"', '\''].iter().find_map(|q| {
        value
            .strip_prefix(*q)
            .and_then(|v| v.strip_suffix(*q))
            .filter(|_| value.len() >= 2)
    });
    Ok((key.to_owned(), unquoted.unwrap_or(value).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_flags_make_one_environment_flags_winning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.env");
        std::fs::write(
            &file,
            "# comment\n\nexport A=1\nB=\"two words\"\nC='x=y'\nD=\n",
        )
        .unwrap();
        let env = collect(&["A=flag".into(), "E=5".into()], Some(&file)).unwrap();
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("A", "flag"),
                ("B", "two words"),
                ("C", "x=y"),
                ("D", ""),
                ("E", "5")
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_with_their_number_and_values_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.env");
        std::fs::write(&file, "OK=1\nno equals\n9X=secret\n").unwrap();
        let err = collect(&[], Some(&file)).unwrap_err().to_string();
        assert!(err.contains("bad.env:2: no `=`"), "{err}");
        assert!(
            err.contains("bad.env:3: \"9X\" is not a variable name"),
            "{err}"
        );
        assert!(!err.contains("secret"));
        let err = collect(&["BAD-NAME=hunter2".into()], None)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
