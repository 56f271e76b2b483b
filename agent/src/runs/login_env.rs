//! The environment a run starts from, as users expect from `ssh host cmd`
//! on a machine set up for ML: the variables of `/etc/environment`, and the
//! `PATH` of the user's login shell (where profile scripts put CUDA, conda
//! or `~/.local/bin`). The daemon itself is started from a bare SSH exec,
//! whose `PATH` lacks those.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the daemon hands a supervisor the login `PATH` it asked for (at
/// most once a minute), so that not every run starts a login shell.
pub const LOGIN_PATH_VAR: &str = "MOOR_LOGIN_PATH";

/// How long a login shell may take to print its `PATH`.
const LOGIN_SHELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Variables to start a run with: `/etc/environment`'s, then `PATH` from a
/// login shell (handed over by the daemon in [`LOGIN_PATH_VAR`], else
/// asked now; when it answers in time and prints one).
pub fn variables() -> Vec<(String, String)> {
    let mut vars = std::fs::read_to_string("/etc/environment")
        .map(|text| parse_etc_environment(&text))
        .unwrap_or_default();
    let handed = std::env::var(LOGIN_PATH_VAR).ok().filter(|p| !p.is_empty());
    if let Some(path) = handed.or_else(login_path) {
        vars.retain(|(k, _)| k != "PATH");
        vars.push(("PATH".into(), path));
    }
    vars
}

/// `KEY=VALUE` lines (quotes stripped, `#` comments and other lines
/// skipped), as pam_env reads the file.
pub fn parse_etc_environment(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap_or(l).split_once('=')?;
            let good = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            good.then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The `PATH` a login shell of this user ends up with, between markers
/// (profile scripts may print), or `None` if it fails or takes too long.
pub fn login_path() -> Option<String> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| s.starts_with('/') && crate::sys::is_executable(std::path::Path::new(s)))
        .unwrap_or_else(|| "/bin/sh".into());
    let mut child = Command::new(shell)
        .args(["-lc", "printf '\\n@moor-path@%s@moor-path@' \"$PATH\""])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < LOGIN_SHELL_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(1 << 20)
        .read_to_string(&mut out)
        .ok()?;
    let path = out.split("@moor-path@").nth(1)?;
    (!path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_environment_lines_as_pam_env_reads_them() {
        let text = "# comment\nPATH=\"/usr/local/bin:/usr/bin\"\nLANG=C.UTF-8\nexport A='b c'\nnot a var\nBAD-NAME=x\n";
        assert_eq!(
            parse_etc_environment(text),
            [
                ("PATH".to_owned(), "/usr/local/bin:/usr/bin".to_owned()),
                ("LANG".into(), "C.UTF-8".into()),
                ("A".into(), "b c".into()),
            ]
        );
    }

    #[test]
    fn a_login_shell_gives_its_path() {
        let path = login_path().expect("a login shell answers");
        assert!(path.contains("/usr/bin"), "{path}");
    }
}
