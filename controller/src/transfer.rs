//! Progress of a long transfer (the agent at attach, a snapshot upload, a
//! download) on a terminal: bytes, rate and, when the size is known, a bar
//! and the time left, redrawn on stderr; its last state stays on screen, as
//! scp's does. Off a terminal nothing is drawn: the command's own summary
//! line says what was sent.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Transfers smaller than this finish too fast for a bar.
const SMALLEST: u64 = 1 << 20;

/// One transfer's progress (drawn only on a terminal).
pub struct Transfer {
    bar: Option<ProgressBar>,
}

impl Transfer {
    /// Progress of sending or receiving `what`, `total` bytes if known.
    pub fn new(what: &str, total: Option<u64>) -> Transfer {
        let small = total.is_some_and(|t| t < SMALLEST);
        if small || !std::io::stderr().is_terminal() {
            return Transfer::hidden();
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{msg} {binary_bytes} {binary_bytes_per_sec}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_message(what.to_owned());
        Transfer { bar: Some(bar) }
    }

    /// No progress shown (tests, small transfers, not a terminal).
    pub fn hidden() -> Transfer {
        Transfer { bar: None }
    }

    /// `n` more bytes went.
    pub fn add(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            // Drawn once more whatever the redraw rate: the whole transfer.
            bar.finish();
        }
    }
}
