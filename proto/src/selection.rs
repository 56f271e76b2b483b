//! Which files of a run's outputs a download sends: `--include` and
//! `--exclude` globs, and the files the destination already holds (same
//! size and modification time, as rsync's quick check, or same size and
//! sha256: not sent again). The controller fills it in, the agent
//! applies it while it walks the outputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Send only files matching one of these (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Never send files matching one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Files the destination holds, by relative path: (size, hex sha256;
    /// empty when the destination did not read the file).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub have: BTreeMap<String, (u64, String)>,
    /// Their modification times (whole seconds since the epoch), for
    /// rsync's quick check: a file of the same size and time is not read
    /// on either side, let alone sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mtimes: BTreeMap<String, i64>,
}

impl Selection {
    /// Whether the file (or link) at `rel` (`/`-separated) is wanted.
    pub fn wants(&self, rel: &str) -> bool {
        let hit = |p: &String| matches(p, rel);
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }

    /// Whether anything filters by name (then folders are not sent for
    /// their own sake: only those holding a wanted file appear).
    pub fn filters(&self) -> bool {
        !self.include.is_empty()
    }
}

/// A glob against a relative path: `*` and `?` stay within a path segment,
/// `**` spans segments (`**/` also matches nothing); a pattern without `/`
/// is matched against the file name alone, at any depth.
pub fn matches(pattern: &str, rel: &str) -> bool {
    if pattern.contains('/') {
        glob(pattern.trim_start_matches('/').as_bytes(), rel.as_bytes())
    } else {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        glob(pattern.as_bytes(), name.as_bytes())
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p {
        [] => s.is_empty(),
        [b'*', b'*', b'/', rest @ ..] => {
            glob(rest, s)
                || s.iter()
                    .enumerate()
                    .any(|(i, &c)| c == b'/' && glob(rest, &s[i + 1..]))
        }
        [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        [b'*', rest @ ..] => {
            let segment = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
            (0..=segment).any(|i| glob(rest, &s[i..]))
        }
        [b'?', rest @ ..] => s.first().is_some_and(|&c| c != b'/') && glob(rest, &s[1..]),
        [c, rest @ ..] => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_people_write_them() {
        assert!(matches("*.json", "metrics.json"));
        assert!(matches("*.json", "eval/metrics.json"));
        assert!(!matches("*.json", "metrics.json.bak"));
        assert!(matches("checkpoints/*", "checkpoints/e1.pt"));
        assert!(!matches("checkpoints/*", "checkpoints/old/e1.pt"));
        assert!(matches("checkpoints/**", "checkpoints/old/e1.pt"));
        assert!(matches("**/e?.pt", "a/b/e1.pt"));
        assert!(matches("**/e?.pt", "e1.pt"));
        assert!(matches("/model/*.bin", "model/w.bin"));
        assert!(!matches("model/*.bin", "other/model/w.bin"));
    }

    #[test]
    fn include_then_exclude() {
        let s = Selection {
            include: vec!["*.pt".into(), "*.json".into()],
            exclude: vec!["tmp/**".into()],
            ..Selection::default()
        };
        assert!(s.wants("m/e1.pt"));
        assert!(s.wants("metrics.json"));
        assert!(!s.wants("log.txt"));
        assert!(!s.wants("tmp/x.pt"));
        assert!(Selection::default().wants("anything"));
    }
}
