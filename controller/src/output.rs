//! Printing results: an aligned table for people, JSON for programs, and the
//! one-line error format (cause, then fix).

use std::io::Write;

use serde::Serialize;

use crate::checks::{Check, Status};
use crate::error::Error;

/// `println!` that ignores a closed stdout (`moor list | head`) instead of
/// panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// An error as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    /// Machine-readable kind, e.g. `host_key_unknown`.
    pub kind: &'static str,
    /// The cause.
    pub message: String,
    /// The fix.
    pub fix: String,
    /// The exit code moor exits with.
    pub exit_code: u8,
}

impl From<&Error> for ErrorJson {
    fn from(e: &Error) -> Self {
        ErrorJson {
            kind: e.kind(),
            message: e.to_string(),
            fix: e.fix(),
            exit_code: e.exit_code(),
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// The one-line human form of an error: `error: CAUSE; fix: FIX`.
pub fn error_line(e: &Error) -> String {
    format!("error: {e}; fix: {}", e.fix())
}

/// Prints an error: JSON on stdout with `--json`, else one line on stderr.
pub fn error(e: &Error, as_json: bool) {
    if as_json {
        #[derive(Serialize)]
        struct Failed<'a> {
            ok: bool,
            error: &'a ErrorJson,
        }
        json(&Failed {
            ok: false,
            error: &ErrorJson::from(e),
        });
    } else {
        eprintln!("{}", error_line(e));
    }
}

/// The mark shown for a status.
fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "skip",
    }
}

/// Renders checks as an aligned table, remedies indented under warnings and failures.
pub fn check_table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "  {:<4}  {:<width$}  {}\n",
            mark(c.status),
            c.id,
            c.detail
        ));
        if let Some(remedy) = &c.remedy {
            out.push_str(&format!("        {:<width$}  fix: {remedy}\n", ""));
        }
    }
    out
}

/// `1 failed, 2 warnings, 9 passed, 3 skipped`.
pub fn summary(checks: &[Check]) -> String {
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    [
        plural(count(Status::Fail), "failed", "failed"),
        plural(count(Status::Warn), "warning", "warnings"),
        plural(count(Status::Pass), "passed", "passed"),
        plural(count(Status::Skip), "skipped", "skipped"),
    ]
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_shows_remedies() {
        let checks = vec![
            Check::pass("ssh.connect", "10.0.0.1:22"),
            Check::fail("disk.free", "1.0 GiB free", "free space"),
        ];
        let table = check_table(&checks);
        assert_eq!(
            table,
            "  pass  ssh.connect  10.0.0.1:22\n  FAIL  disk.free    1.0 GiB free\n                     fix: free space\n"
        );
        assert_eq!(
            summary(&checks),
            "1 failed, 0 warnings, 1 passed, 0 skipped"
        );
    }

    #[test]
    fn error_is_one_line() {
        let e = Error::usage("bad thing", "do the other thing");
        assert_eq!(error_line(&e), "error: bad thing; fix: do the other thing");
        assert!(!error_line(&e).contains('\n'));
    }
}
