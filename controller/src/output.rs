//! Printing results, the one command contract: every command returns a
//! value that implements [`Render`] (text for people, JSON for programs, an
//! exit code), and `main` prints it once. Also the one table printer, the
//! check table, and the one-line error format (cause, then fix).

use std::fmt::Display;
use std::io::Write;

use serde::Serialize;

use crate::checks::{Check, Status};
use crate::error::{exit, Error};

/// A command's result: shown as text or as JSON, with the exit code it ends with.
pub trait Render: Serialize {
    /// The text for people.
    fn render(&self, out: &mut Text);

    /// The exit code (0 unless the result says otherwise).
    fn exit_code(&self) -> u8 {
        exit::OK
    }

    /// Whether `--json` prints this value (`moor logs` prints the log itself).
    fn has_json(&self) -> bool {
        true
    }
}

/// Text for people: lines for stdout, and notes for stderr.
#[derive(Debug, Default)]
pub struct Text {
    stdout: String,
    stderr: String,
}

impl Text {
    /// A line on stdout.
    pub fn line(&mut self, line: impl Display) {
        use std::fmt::Write as _;
        let _ = writeln!(self.stdout, "{line}");
    }

    /// Text on stdout as it is (a table ends its own lines).
    pub fn raw(&mut self, text: &str) {
        self.stdout.push_str(text);
    }

    /// What is on stdout so far.
    pub fn as_str(&self) -> &str {
        &self.stdout
    }

    /// A line on stderr (a note beside the result, or an error line).
    pub fn note(&mut self, line: impl Display) {
        use std::fmt::Write as _;
        let _ = writeln!(self.stderr, "{line}");
    }
}

/// A rendered result, ready to print.
#[derive(Debug)]
pub struct Printed {
    json: Option<String>,
    text: Text,
    exit_code: u8,
}

impl Printed {
    /// Renders `value` both ways.
    pub fn of<T: Render>(value: &T) -> Printed {
        let mut text = Text::default();
        value.render(&mut text);
        Printed {
            json: value
                .has_json()
                .then(|| serde_json::to_string_pretty(value).expect("results serialize")),
            text,
            exit_code: value.exit_code(),
        }
    }

    /// Prints it (JSON on stdout with `json`, else the text); returns the exit code.
    pub fn print(&self, json: bool) -> u8 {
        if json {
            if let Some(text) = &self.json {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        } else {
            let _ = std::io::stdout()
                .lock()
                .write_all(self.text.stdout.as_bytes());
        }
        // Notes go to stderr either way: JSON keeps stdout, and a non-zero
        // exit always says why there.
        let _ = std::io::stderr()
            .lock()
            .write_all(self.text.stderr.as_bytes());
        self.exit_code
    }
}

/// An aligned table with a header row; columns are two spaces apart, the
/// last one unpadded.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
            right: vec![false; headers.len()],
        }
    }

    /// Aligns column `i` to the right (numbers).
    pub fn right(mut self, i: usize) -> Table {
        self.right[i] = true;
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines.
    pub fn render(&self) -> String {
        let mut widths = vec![0; self.right.len()];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let last = row.len().saturating_sub(1);
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| match (i == last, self.right[i]) {
                    (_, true) => format!("{cell:>w$}", w = widths[i]),
                    (true, false) => cell.clone(),
                    (false, false) => format!("{cell:<w$}", w = widths[i]),
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

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
#[derive(Clone, Debug, Serialize)]
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

/// A duration as `45s`, `3m12s`, `2h05m`, `3d04h`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The one-line human form of an error: `error: CAUSE; fix: FIX`.
pub fn error_line(e: &Error) -> String {
    format!("error: {e}; fix: {}", e.fix())
}

/// Prints an error: one line on stderr, and with `--json` the JSON error on stdout.
pub fn error(e: &Error, as_json: bool) {
    if as_json {
        #[derive(Serialize)]
        struct Failed<'a> {
            ok: bool,
            error: &'a ErrorJson,
        }
        let failed = Failed {
            ok: false,
            error: &ErrorJson::from(e),
        };
        let text = serde_json::to_string_pretty(&failed).expect("errors serialize");
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
    // A non-zero exit always says why on stderr, JSON or not.
    eprintln!("{}", error_line(e));
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

/// Whether to colour: stdout is a terminal and `NO_COLOR` is not set.
fn colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A status mark in its colour on a terminal (green, yellow, red, dim).
fn paint(status: Status, text: &str) -> String {
    if !colour() {
        return text.to_owned();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Warn => "33",
        Status::Fail => "1;31",
        Status::Skip => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Renders checks as an aligned table, remedies indented under warnings and failures.
pub fn check_table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "  {}  {:<width$}  {}\n",
            paint(c.status, &format!("{:<4}", mark(c.status))),
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
    fn tables_align_under_their_headers() {
        let mut table = Table::new(&["NAME", "EXIT", "COMMAND"]).right(1);
        table.row(vec!["a".into(), "0".into(), "true".into()]);
        table.row(vec!["long-name".into(), "137".into(), "sleep 1".into()]);
        assert_eq!(
            table.render(),
            "NAME       EXIT  COMMAND\na             0  true\nlong-name   137  sleep 1\n"
        );
    }

    #[test]
    fn error_is_one_line() {
        let e = Error::usage("bad thing", "do the other thing");
        assert_eq!(error_line(&e), "error: bad thing; fix: do the other thing");
        assert!(!error_line(&e).contains('\n'));
    }
}
