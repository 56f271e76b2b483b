//! Where a followed log goes. `moor run` prints its log as it comes; an
//! environment build shows progress: on a terminal one status line redrawn
//! in place (elapsed time, lines so far, the latest line), otherwise the
//! build log's plain lines on stderr.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The destination of a log stream.
pub enum LogSink {
    /// Raw bytes to stdout.
    Stdout,
    /// Raw bytes to stderr.
    Stderr,
    /// A status line on stderr (a terminal).
    Status(StatusLine),
    /// JSON lines on stdout, one per log line (`moor logs --json`).
    JsonLines(JsonLines),
    /// Whole lines, each after a prefix (one node of a multi-node job).
    Prefixed(Prefixed),
}

/// A log as whole lines after a prefix (`[node 1] `), on stdout or stderr;
/// a line longer than 64 KiB is cut, so memory stays bounded.
pub struct Prefixed {
    prefix: String,
    partial: Vec<u8>,
    stderr: bool,
}

impl Prefixed {
    const LONGEST: usize = 64 * 1024;

    fn feed(&mut self, bytes: &[u8]) {
        let mut lines = Vec::new();
        for &b in bytes {
            self.partial.push(b);
            if b == b'\n' || self.partial.len() >= Self::LONGEST {
                if b != b'\n' {
                    self.partial.push(b'\n');
                }
                lines.extend_from_slice(self.prefix.as_bytes());
                lines.append(&mut self.partial);
            }
        }
        self.print(&lines);
    }

    fn print(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // One write per chunk of whole lines: nodes' lines never interleave.
        if self.stderr {
            raw(&mut std::io::stderr().lock(), bytes, false);
        } else {
            raw(&mut std::io::stdout().lock(), bytes, false);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let mut line = self.prefix.as_bytes().to_vec();
            line.append(&mut self.partial);
            line.push(b'\n');
            self.print(&line);
        }
    }
}

/// A log as JSON lines: `{"offset": N, "text": "..."}` for each line (the
/// byte offset where it starts, its text without the newline, invalid
/// UTF-8 replaced). A line longer than 64 KiB is cut into pieces, so memory
/// stays bounded.
pub struct JsonLines {
    offset: u64,
    partial: Vec<u8>,
}

impl JsonLines {
    const LONGEST: usize = 64 * 1024;

    fn feed(&mut self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        for &b in bytes {
            if b == b'\n' {
                self.emit(&mut out, 1);
            } else {
                self.partial.push(b);
                if self.partial.len() >= Self::LONGEST {
                    self.emit(&mut out, 0);
                }
            }
        }
        let _ = out.flush();
    }

    /// Prints the pending text as one line; `newline` bytes follow it.
    fn emit(&mut self, out: &mut impl Write, newline: u64) {
        let line = serde_json::json!({
            "offset": self.offset,
            "text": String::from_utf8_lossy(&self.partial),
        });
        let _ = writeln!(out, "{line}");
        self.offset += self.partial.len() as u64 + newline;
        self.partial.clear();
    }
}

impl LogSink {
    /// A run's log as `moor run` and `moor logs` print it: stdout, or stderr
    /// when `--json` keeps stdout for the result.
    pub fn for_log(json: bool) -> Self {
        if json {
            LogSink::Stderr
        } else {
            LogSink::Stdout
        }
    }

    /// `moor logs --json`: JSON lines from byte `offset`.
    pub fn json_lines(offset: u64) -> Self {
        LogSink::JsonLines(JsonLines {
            offset,
            partial: Vec::new(),
        })
    }

    /// A node's log in a job's merged log: each line after `prefix`, on
    /// stdout (stderr with `--json`).
    pub fn prefixed(prefix: String, json: bool) -> Self {
        LogSink::Prefixed(Prefixed {
            prefix,
            partial: Vec::new(),
            stderr: json,
        })
    }

    /// A status line when stderr is a terminal, else plain lines on stderr.
    pub fn progress(label: String) -> Self {
        if std::io::stderr().is_terminal() {
            LogSink::Status(StatusLine::new(label, terminal_width()))
        } else {
            LogSink::Stderr
        }
    }

    /// Takes a chunk of the log; `more` says that another chunk is already
    /// waiting (then raw output is not flushed yet).
    pub fn write(&mut self, bytes: &[u8], more: bool) {
        match self {
            LogSink::Stdout => raw(&mut std::io::stdout().lock(), bytes, more),
            LogSink::Stderr => raw(&mut std::io::stderr().lock(), bytes, more),
            LogSink::Status(line) => {
                line.feed(bytes);
                if !more {
                    line.draw();
                }
            }
            LogSink::JsonLines(lines) => lines.feed(bytes),
            LogSink::Prefixed(lines) => lines.feed(bytes),
        }
    }

    /// Time passed with no log: redraws the status line's clock.
    pub fn tick(&mut self) {
        if let LogSink::Status(line) = self {
            line.draw();
        }
    }

    /// The stream ended: the status line is cleared, a last line without
    /// a newline printed.
    pub fn finish(&mut self) {
        match self {
            LogSink::Status(_) => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
            LogSink::JsonLines(lines) if !lines.partial.is_empty() => {
                let mut out = std::io::stdout().lock();
                lines.emit(&mut out, 0);
                let _ = out.flush();
            }
            LogSink::Prefixed(lines) => lines.finish(),
            _ => {}
        }
    }
}

fn raw(out: &mut impl Write, bytes: &[u8], more: bool) {
    let _ = out.write_all(bytes);
    // Flush only when nothing else is waiting: live, but not a syscall per
    // frame when the log comes in bulk.
    if !more {
        let _ = out.flush();
    }
}

/// Columns of the terminal: `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c >= 20)
        .unwrap_or(80)
}

/// One line of progress, redrawn in place.
pub struct StatusLine {
    label: String,
    started: Instant,
    width: usize,
    lines: u64,
    /// The latest complete, non-empty line.
    latest: String,
    /// The line being received.
    partial: Vec<u8>,
}

impl StatusLine {
    /// A status line for `label`, `width` columns wide.
    pub fn new(label: String, width: usize) -> Self {
        StatusLine {
            label,
            started: Instant::now(),
            width,
            lines: 0,
            latest: String::new(),
            partial: Vec::new(),
        }
    }

    /// Takes log bytes: counts lines and keeps the latest.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.lines += 1;
                let line = std::mem::take(&mut self.partial);
                let text = printable(&line);
                if !text.is_empty() {
                    self.latest = text;
                }
            } else {
                self.partial.push(b);
            }
        }
    }

    /// The line as drawn after `elapsed`, at most `width - 1` columns.
    pub fn render(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs();
        let head = format!(
            "{} {}:{:02} · {} lines",
            self.label,
            secs / 60,
            secs % 60,
            self.lines
        );
        let mut line = if self.latest.is_empty() {
            head
        } else {
            format!("{head} · {}", self.latest)
        };
        let room = self.width.saturating_sub(1);
        if line.chars().count() > room {
            line = line.chars().take(room.saturating_sub(1)).collect();
            line.push('…');
        }
        line
    }

    fn draw(&self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", self.render(self.started.elapsed()));
        let _ = err.flush();
    }
}

/// A log line as shown in a status line: what follows its last carriage
/// return (progress bars redraw that way), without terminal escapes, control
/// characters or surrounding blanks.
fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let last = text
        .rsplit('\r')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let mut out = String::with_capacity(last.len());
    let mut chars = last.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_keeps_the_latest_printable_one() {
        let mut s = StatusLine::new("building sk on box".into(), 200);
        s.feed(b"Collecting numpy\nCollecting sci");
        assert_eq!(s.lines, 1);
        assert_eq!(s.latest, "Collecting numpy");
        s.feed(b"py\n\n  \n 10%\r 50%\r\x1b[1m100%\x1b[0m\r\n");
        assert_eq!(s.lines, 5);
        assert_eq!(s.latest, "100%");
        assert_eq!(
            s.render(Duration::from_secs(75)),
            "building sk on box 1:15 · 5 lines · 100%"
        );
    }

    #[test]
    fn a_line_fits_the_terminal() {
        let mut s = StatusLine::new("building e on t".into(), 40);
        s.feed("Installing ünïcödé packages into a long prefix\n".as_bytes());
        let line = s.render(Duration::from_secs(3));
        assert_eq!(line.chars().count(), 39);
        assert!(line.ends_with('…'));
        assert!(line.starts_with("building e on t 0:03 · 1 lines"));
    }

    #[test]
    fn before_any_output_the_line_has_the_clock() {
        let s = StatusLine::new("building e on t".into(), 80);
        assert_eq!(
            s.render(Duration::from_secs(0)),
            "building e on t 0:00 · 0 lines"
        );
    }
}
