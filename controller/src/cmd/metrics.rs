//! `moor metrics RUN|JOB [--follow]`: what a run's code logged through
//! MLflow (the agent's tracking endpoint keeps it with the run): params,
//! tags, and for each metric its last value, range, point count and a
//! sparkline; a job's, node by node. `--json` gives every point (`key`,
//! `value`, `step`, `timestamp`, and `node`/`rank` for a job's), written
//! while they stream (no point is held: a million take no more memory than
//! ten); with `--follow` it prints one JSON line a point as they come. On a
//! terminal `--follow` redraws the table as points arrive, until the run
//! ends.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use moor_proto::tracking::{self, Record, Summary};

use crate::cli::MetricsArgs;
use crate::cmd::Context;
use crate::error::Result;
use crate::follow::{self, ByteSink, RunFile};
use crate::output::{Render, Table, Text};
use crate::reach::Access;

/// What `moor metrics` shows. With `--json` it was printed while the
/// points streamed: `{"id", "points": [...], "runs": [...]}`.
#[derive(Debug, Serialize)]
pub struct Metrics {
    /// The run or job asked for.
    pub id: String,
    /// Each run's (a job's nodes, in order).
    pub runs: Vec<RunMetrics>,
    #[serde(skip)]
    printed: bool,
}

/// `--json`'s points, written as they come: `{"id":ID,"points":[` first,
/// each point, then `],"runs":[...]}` at the end.
struct JsonOut {
    out: std::io::BufWriter<std::io::Stdout>,
    first: bool,
}

impl JsonOut {
    fn start(id: &str) -> Self {
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let id = serde_json::to_string(id).unwrap_or_default();
        let _ = write!(out, "{{\"id\":{id},\"points\":[");
        JsonOut { out, first: true }
    }

    fn point(&mut self, point: &Point) {
        let comma = if self.first { "\n" } else { ",\n" };
        self.first = false;
        let _ = self.out.write_all(comma.as_bytes());
        let _ = serde_json::to_writer(&mut self.out, point);
    }

    fn end(mut self, runs: &[RunMetrics]) {
        let runs = serde_json::to_string(runs).unwrap_or_default();
        let _ = writeln!(self.out, "\n],\"runs\":{runs}}}");
        let _ = self.out.flush();
    }
}

/// One run's summary.
#[derive(Debug, Serialize)]
pub struct RunMetrics {
    /// The job's node, for a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// Its target.
    pub target: String,
    /// Its run.
    pub run_id: String,
    /// What its code logged into the moor run (nested MLflow runs' points
    /// are in `points`, with their `mlflow_run`).
    #[serde(flatten)]
    pub summary: Summary,
}

/// One metric point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Metric name.
    pub key: String,
    /// Value (NaN and infinities as names).
    #[serde(with = "tracking::float")]
    pub value: f64,
    /// Step.
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The job's node that logged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// The process's rank, for a run of several processes (or a job's node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// A nested MLflow run's id (points of the moor run itself have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlflow_run: Option<String>,
}

/// Reads a run's records as they stream: whole lines only (a line cut
/// short waits for its end), folded into the run's summary.
struct Collector<'a> {
    run_id: String,
    node: Option<usize>,
    lines: RecordLines,
    summary: Summary,
    json: Option<&'a mut JsonOut>,
    live: Option<Live>,
    json_lines: bool,
    changed: bool,
}

/// A terminal's live table: redrawn at most every half second.
struct Live {
    drawn: Instant,
    id: String,
}

impl Collector<'_> {
    fn take(&mut self, record: Record) {
        let mine = record.run() == Some(self.run_id.as_str());
        if let Record::Metric {
            run,
            key,
            value,
            step,
            timestamp,
            rank,
        } = &record
        {
            let point = Point {
                key: key.clone(),
                value: *value,
                step: *step,
                timestamp: *timestamp,
                node: self.node,
                rank: rank.or(self.node.map(|n| n as u32)),
                mlflow_run: (!mine).then(|| run.clone()),
            };
            if self.json_lines {
                if let Ok(line) = serde_json::to_string(&point) {
                    println!("{line}");
                }
            } else if let Some(json) = &mut self.json {
                json.point(&point);
            }
        }
        if mine {
            self.summary.add(&record);
            self.changed = true;
        }
    }

    fn redraw(&mut self, force: bool) {
        let Some(live) = &mut self.live else { return };
        if !self.changed || (!force && live.drawn.elapsed() < Duration::from_millis(500)) {
            return;
        }
        let mut text = Text::default();
        render_run(&mut text, &live.id, &self.summary);
        let mut out = std::io::stdout().lock();
        // Home and clear, then the table.
        let _ = write!(out, "\x1b[H\x1b[2J{}", text.as_str());
        let _ = out.flush();
        live.drawn = Instant::now();
        self.changed = false;
    }
}

/// A run's records as they stream in chunks cut anywhere: whole lines
/// only (a line cut short waits for the rest); lines that are not records
/// (a last line cut by a kill) are skipped.
#[derive(Debug, Default)]
pub struct RecordLines {
    partial: Vec<u8>,
}

impl RecordLines {
    /// Takes `bytes`, and gives `each` every record they complete.
    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(Record)) {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(record) = tracking::parse_line(line) {
                each(record);
            }
        }
    }
}

impl ByteSink for Collector<'_> {
    fn write(&mut self, bytes: &[u8], more: bool) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(bytes, |record| self.take(record));
        self.lines = lines;
        if !more {
            self.redraw(false);
        }
    }

    fn tick(&mut self) {
        self.redraw(true);
    }
}

/// `moor metrics`.
pub async fn metrics(args: &MetricsArgs, ctx: &Context) -> Result<Metrics> {
    let store = ctx.store()?;
    let access = Access::from_args(&args.connect)?;
    let runs = crate::history::runs_of(ctx, &store, &args.run, args.node)?;
    let live = args.follow && !ctx.json && runs.len() == 1 && std::io::stdout().is_terminal();
    let json_lines = args.follow && ctx.json;
    let mut json = (ctx.json && !args.follow).then(|| JsonOut::start(&args.run));
    let mut out = Vec::new();
    // A job's nodes one after the other (with --follow: each to its end).
    for (node, target, run_id) in runs {
        let mut collector = Collector {
            run_id: run_id.clone(),
            node,
            lines: RecordLines::default(),
            summary: Summary::default(),
            json: json.as_mut(),
            live: live.then(|| Live {
                drawn: Instant::now() - Duration::from_secs(1),
                id: args.run.clone(),
            }),
            json_lines,
            changed: false,
        };
        follow::follow_file(
            &ctx.targets,
            &target,
            &access,
            &run_id,
            RunFile::Metrics,
            0,
            args.follow,
            None,
            &mut collector,
        )
        .await?;
        collector.redraw(true);
        out.push(RunMetrics {
            node,
            target: target.name.clone(),
            run_id,
            summary: collector.summary,
        });
    }
    let printed = json.is_some() || json_lines || live;
    if let Some(json) = json {
        json.end(&out);
    }
    Ok(Metrics {
        id: args.run.clone(),
        runs: out,
        printed,
    })
}

impl Render for Metrics {
    fn render(&self, out: &mut Text) {
        if self.printed {
            return;
        }
        for run in &self.runs {
            let title = match run.node {
                Some(n) => format!(
                    "{} node {n} (run {} on {})",
                    self.id, run.run_id, run.target
                ),
                None => format!("run {} on {}", run.run_id, run.target),
            };
            render_run(out, &title, &run.summary);
        }
    }

    fn has_json(&self) -> bool {
        // `--json` printed while the points came.
        !self.printed
    }
}

/// One run's params, tags and metric table.
fn render_run(out: &mut Text, title: &str, summary: &Summary) {
    out.line(title);
    if summary.metrics.is_empty() && summary.params.is_empty() {
        out.line("  nothing logged through MLflow (yet)");
        return;
    }
    let pairs = |map: &BTreeMap<String, String>| -> String {
        map.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    if !summary.params.is_empty() {
        out.line(format!("  params: {}", pairs(&summary.params)));
    }
    let tags: BTreeMap<String, String> = summary
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("mlflow."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !tags.is_empty() {
        out.line(format!("  tags: {}", pairs(&tags)));
    }
    let mut table = Table::new(&["METRIC", "LAST", "STEP", "MIN", "MAX", "POINTS", ""])
        .right(1)
        .right(2)
        .right(3)
        .right(4)
        .right(5);
    for (key, m) in &summary.metrics {
        table.row(vec![
            key.clone(),
            number(m.last),
            m.last_step.to_string(),
            number(m.min),
            number(m.max),
            m.count.to_string(),
            sparkline(&m.curve.buckets, 24),
        ]);
    }
    out.raw(&table.render());
}

/// A value for people: up to 6 significant digits.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        format!("{v:.3e}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The curve in `width` block characters (each the mean of its share of
/// the points), scaled between their smallest and largest.
pub fn sparkline(points: &[(i64, f64)], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if points.is_empty() || width == 0 {
        return String::new();
    }
    let cells = width.min(points.len());
    let means: Vec<f64> = (0..cells)
        .map(|i| {
            let (from, to) = (i * points.len() / cells, (i + 1) * points.len() / cells);
            let finite: Vec<f64> = points[from..to.max(from + 1)]
                .iter()
                .map(|p| p.1)
                .filter(|v| v.is_finite())
                .collect();
            if finite.is_empty() {
                f64::NAN
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            }
        })
        .collect();
    let (lo, hi) = means
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    means
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if hi <= lo {
                BLOCKS[3]
            } else {
                BLOCKS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_falling_loss_draws_a_falling_line() {
        let points: Vec<(i64, f64)> = (0..50).map(|s| (s, 1.0 / (s + 1) as f64)).collect();
        let line = sparkline(&points, 10);
        assert_eq!(line.chars().count(), 10);
        assert_eq!(line.chars().next(), Some('█'));
        assert_eq!(line.chars().last(), Some('▁'));
        assert_eq!(sparkline(&[(0, 2.0)], 10), "▄");
        assert_eq!(sparkline(&[], 10), "");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1.0 / 3.0), "0.333333");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(1e-7), "1.000e-7");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn records_cut_across_chunks_are_read_whole() {
        let mut collector = Collector {
            run_id: "r".into(),
            node: Some(1),
            lines: RecordLines::default(),
            summary: Summary::default(),
            json: None,
            live: None,
            json_lines: false,
            changed: false,
        };
        let line = "{\"t\":\"metric\",\"run\":\"r\",\"key\":\"loss\",\"value\":0.5,\"step\":1,\"timestamp\":2}\n";
        let (a, b) = line.split_at(20);
        collector.write(a.as_bytes(), false);
        assert!(collector.summary.metrics.is_empty());
        collector.write(b.as_bytes(), false);
        collector.write(
            b"{\"t\":\"param\",\"run\":\"other\",\"key\":\"k\",\"value\":\"v\"}\n",
            false,
        );
        assert_eq!(collector.summary.metrics["loss"].last, 0.5);
        assert!(collector.summary.params.is_empty(), "a nested run's");
    }
}
