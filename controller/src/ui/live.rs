//! What the dashboard reads from a run as it goes: its log, streamed to the
//! page as it grows (the agent pushes each line; the page shows it at
//! once), and a metric's curves for a chart, downsampled here (at most
//! [`CURVE_POINTS`](moor_proto::tracking::CURVE_POINTS) per line, over the
//! whole run or a zoomed range of steps), so a chart of millions of points
//! is as quick as one of fifty.

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;

use moor_proto::tracking::{Curve, Record};

use super::args::parse;
use super::http::{self, query_value, query_values, Answer, StreamSender};
use super::Shared;
use crate::cli::TargetArgs;
use crate::cmd::metrics::RecordLines;
use crate::cmd::Context;
use crate::error::{Error, Result};
use crate::follow::{self, ByteSink, RunFile};
use crate::output::error_line;
use crate::reach::Access;

/// The most runs one chart compares.
const MAX_COMPARED: usize = 20;

/// The header that says where in the log a stream starts.
const OFFSET_HEADER: &str = "x-moor-offset";

/// `GET runs/ID/log?node=N&tail=BYTES&offset=O`: the run's log (a job's
/// node N, 0 by default) from byte `offset`, or its last `tail` bytes, as
/// it grows, until the run ends. The answer's `X-Moor-Offset` says where
/// it starts (a page that lost the stream asks again from where it was).
pub async fn log(shared: &Arc<Shared>, id: &str, query: &str) -> Result<Answer> {
    let ctx = &shared.ctx;
    let store = ctx.store()?;
    let node = number::<u32>(query, "node")?;
    let runs = crate::history::runs_of(ctx, &store, id, None)?;
    let index = node.unwrap_or(0) as usize;
    let Some((_, target, run_id)) = runs.into_iter().nth(index) else {
        return Err(Error::usage(
            format!("{id} has no node {index}"),
            "nodes count from 0",
        ));
    };
    let access = Access::from_args(&parse::<TargetArgs>(&[])?)?;
    // Connected before the answer starts: an unreachable target is an
    // error status, not a broken stream.
    let conn = ctx.targets.connect(&target, &access).await?;
    let offset = match number::<u64>(query, "tail")? {
        Some(tail) => conn
            .agent
            .run(&run_id)
            .await?
            .log_bytes
            .saturating_sub(tail),
        None => number::<u64>(query, "offset")?.unwrap_or(0),
    };
    let shared = shared.clone();
    let mut answer = http::streamed("text/plain; charset=utf-8", move |sender| async move {
        let ctx = &shared.ctx;
        let behind = Arc::new(tokio::sync::Notify::new());
        let mut sink = PageSink {
            sender: sender.clone(),
            behind: behind.clone(),
        };
        let followed = follow::follow_file(
            &ctx.targets,
            &target,
            &access,
            &run_id,
            RunFile::Log,
            offset,
            true,
            Some(conn),
            &mut sink,
        );
        let note = tokio::select! {
            ended = followed => ended.err().map(|e| error_line(&e)),
            () = behind.notified() => Some(
                "the page read the log slower than it grew; reload it to go on".to_owned(),
            ),
        };
        if let Some(note) = note {
            sender.send_anyway(format!("\n[moor ui] {note}\n").as_bytes());
        }
    });
    answer.headers_mut().insert(
        HeaderName::from_static(OFFSET_HEADER),
        HeaderValue::from(offset),
    );
    Ok(answer)
}

/// The log's bytes, to the page.
struct PageSink {
    sender: StreamSender,
    behind: Arc<tokio::sync::Notify>,
}

impl ByteSink for PageSink {
    fn write(&mut self, bytes: &[u8], _more: bool) {
        if !self.sender.send(bytes) {
            // The page is gone (the task ends with it) or far behind.
            self.behind.notify_one();
        }
    }
}

/// A query's number `name`, if given.
fn number<T: std::str::FromStr>(query: &str, name: &str) -> Result<Option<T>> {
    query_value(query, name)
        .map(|text| {
            text.parse().map_err(|_| {
                Error::usage(format!("{name}={text} is not a number"), "reload the page")
            })
        })
        .transpose()
}

/// One line of a chart.
#[derive(Debug, Serialize)]
pub struct Series {
    /// The run (or job) asked for.
    pub run: String,
    /// The job's node, for a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// The run behind it (a job's node's run).
    pub run_id: String,
    /// Its target.
    pub target: String,
    /// Points logged in the range.
    pub count: u64,
    /// The curve: at most 512 (step, mean) in the order they were logged.
    pub curve: Curve,
}

/// A chart's lines.
#[derive(Debug, Serialize)]
pub struct Chart {
    /// The metric.
    pub key: String,
    /// The first step shown, when zoomed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// The last step shown, when zoomed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// One line per run (a job's: per node).
    pub series: Vec<Series>,
}

/// `GET chart?run=ID[&run=ID2...]&key=K[&from=STEP&to=STEP]`: the metric's
/// curve of each run (a job's: each node), over the steps from..=to.
pub async fn chart(ctx: &Context, query: &str) -> Result<Answer> {
    let key = query_value(query, "key")
        .ok_or_else(|| Error::usage("a chart needs key=METRIC", "reload the page"))?;
    let ids = query_values(query, "run");
    if ids.is_empty() || ids.len() > MAX_COMPARED {
        return Err(Error::usage(
            format!("a chart compares 1 to {MAX_COMPARED} runs"),
            "choose fewer runs",
        ));
    }
    let (from, to) = (number::<i64>(query, "from")?, number::<i64>(query, "to")?);
    let access = Access::from_args(&parse::<TargetArgs>(&[])?)?;
    let store = ctx.store()?;
    let mut series = Vec::new();
    for id in &ids {
        for (node, target, run_id) in crate::history::runs_of(ctx, &store, id, None)? {
            let mut sink = CurveSink {
                run_id: run_id.clone(),
                key: key.clone(),
                range: from.unwrap_or(i64::MIN)..=to.unwrap_or(i64::MAX),
                lines: RecordLines::default(),
                count: 0,
                curve: Curve::default(),
            };
            follow::follow_file(
                &ctx.targets,
                &target,
                &access,
                &run_id,
                RunFile::Metrics,
                0,
                false,
                None,
                &mut sink,
            )
            .await?;
            series.push(Series {
                run: id.clone(),
                node,
                run_id,
                target: target.name,
                count: sink.count,
                curve: sink.curve,
            });
        }
    }
    Ok(http::json(&Chart {
        key,
        from,
        to,
        series,
    }))
}

/// One metric of one run, folded into a bounded curve as its records come.
struct CurveSink {
    run_id: String,
    key: String,
    range: std::ops::RangeInclusive<i64>,
    lines: RecordLines,
    count: u64,
    curve: Curve,
}

impl ByteSink for CurveSink {
    fn write(&mut self, bytes: &[u8], _more: bool) {
        let (run_id, key, range) = (&self.run_id, &self.key, &self.range);
        let (count, curve) = (&mut self.count, &mut self.curve);
        self.lines.feed(bytes, |record| {
            if let Record::Metric {
                run,
                key: k,
                value,
                step,
                ..
            } = record
            {
                if run == *run_id && k == *key && range.contains(&step) {
                    *count += 1;
                    curve.push(step, value);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_keeps_one_metric_of_its_run_in_the_range() {
        let mut sink = CurveSink {
            run_id: "r1".into(),
            key: "loss".into(),
            range: 2..=4,
            lines: RecordLines::default(),
            count: 0,
            curve: Curve::default(),
        };
        let mut records = String::new();
        for step in 0..6 {
            for (run, key) in [("r1", "loss"), ("r1", "acc"), ("nested", "loss")] {
                records.push_str(&format!(
                    "{{\"t\":\"metric\",\"run\":\"{run}\",\"key\":\"{key}\",\"value\":{step}.5,\"step\":{step},\"timestamp\":1}}\n"
                ));
            }
        }
        // Cut mid-line: the rest comes with the next write.
        let (a, b) = records.split_at(records.len() / 2 + 7);
        sink.write(a.as_bytes(), true);
        sink.write(b.as_bytes(), false);
        assert_eq!(sink.count, 3);
        assert_eq!(sink.curve.buckets, vec![(2, 2.5), (3, 3.5), (4, 4.5)]);
    }

    #[test]
    fn numbers_in_queries_are_checked() {
        assert_eq!(number::<u64>("tail=100", "tail").unwrap(), Some(100));
        assert_eq!(number::<u64>("x=1", "tail").unwrap(), None);
        assert!(number::<i64>("from=abc", "from").is_err());
    }
}
