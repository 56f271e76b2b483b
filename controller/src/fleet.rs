//! Work on many hosts at once, in one process: at most `parallel` hosts in
//! flight, results in the order the hosts were given, and on a terminal one
//! live view on stderr (a line per host in flight with its time so far, and
//! a summary line) that is cleared when the work ends. `moor attach
//! --inventory`, `moor validate` of many hosts, and every command that asks
//! several targets' agents go through [`each`].

use std::future::Future;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Hosts in flight at once unless `--parallel` says otherwise.
pub const DEFAULT_PARALLEL: u16 = 32;

/// Whether a host's work ended well, for the summary line.
pub trait Finished {
    /// It did.
    fn ok(&self) -> bool;
}

impl<T, E> Finished for Result<T, E> {
    fn ok(&self) -> bool {
        self.is_ok()
    }
}

/// Runs `work` on every item, at most `parallel` at once; the results in
/// the items' order. `verb` (e.g. "attaching") and `label` (the host) make
/// the live view; `quiet` turns it off (a single target, JSON to a pipe).
pub async fn each<I, T, Fut>(
    items: Vec<I>,
    parallel: u16,
    view: View,
    label: impl Fn(&I) -> String,
    work: impl Fn(I) -> Fut,
) -> Vec<T>
where
    Fut: Future<Output = T>,
    T: Finished,
{
    let total = items.len();
    let view = &LiveView::new(view, total);
    let (label, work) = (&label, &work);
    let mut done: Vec<(usize, T)> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| async move {
            let bar = view.start(label(&item));
            let result = work(item).await;
            view.finish(bar, result.ok());
            (i, result)
        })
        .buffer_unordered(usize::from(parallel.max(1)))
        .collect()
        .await;
    view.close();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// What the live view says, if anything.
#[derive(Debug, Clone, Copy)]
pub enum View {
    /// Nothing.
    Quiet,
    /// `verb` beside each host, on a terminal: "attaching", "validating".
    Live(&'static str),
}

/// The view while work is going on.
struct LiveView {
    bars: Option<(MultiProgress, ProgressBar, &'static str)>,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    in_flight: AtomicUsize,
}

impl LiveView {
    fn new(view: View, total: usize) -> LiveView {
        let bars = match view {
            View::Live(verb) if total > 1 && std::io::stderr().is_terminal() => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let summary = multi.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                    summary.set_style(style);
                }
                summary.enable_steady_tick(Duration::from_millis(120));
                Some((multi, summary, verb))
            }
            _ => None,
        };
        let view = LiveView {
            bars,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        };
        view.summarize();
        view
    }

    fn start(&self, label: String) -> Option<ProgressBar> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.summarize();
        let (multi, _, verb) = self.bars.as_ref()?;
        let bar = multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("  {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(format!("{verb} {label}"));
        Some(bar)
    }

    fn finish(&self, bar: Option<ProgressBar>, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(bar), Some((multi, _, _))) = (bar, &self.bars) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
        self.summarize();
    }

    fn summarize(&self) {
        if let Some((_, summary, verb)) = &self.bars {
            summary.set_message(format!(
                "{verb} {} hosts: {} done, {} failed, {} in flight",
                self.total,
                self.done.load(Ordering::Relaxed),
                self.failed.load(Ordering::Relaxed),
                self.in_flight.load(Ordering::Relaxed),
            ));
        }
    }

    fn close(&self) {
        if let Some((multi, summary, _)) = &self.bars {
            summary.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_in_order() {
        let now = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u64> = (0..20).collect();
        let out: Vec<Result<u64, ()>> = each(
            items,
            4,
            View::Quiet,
            |i| i.to_string(),
            |i| {
                let (now, most) = (&now, &most);
                async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    // Later items finish first.
                    tokio::time::sleep(Duration::from_millis(20 - i)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(i * 2)
                }
            },
        )
        .await;
        assert_eq!(out, (0..20).map(|i| Ok(i * 2)).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 4);
    }
}
