//! `moor status [TARGET...]`: every target's agent asked at once for its
//! version, uptime, load and runs going.

use moor_proto::AgentStatus;
use serde::Serialize;

use super::Context;
use crate::cli::StatusArgs;
use crate::error::{exit, Result};
use crate::output::{Render, Table, Text};
use crate::reach::Access;

/// One target's status.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The target.
    pub target: String,
    /// Whether its agent answered.
    pub up: bool,
    /// What it said.
    #[serde(flatten)]
    pub status: Option<AgentStatus>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What helps, when it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every target's status.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Status {
    rows: Vec<Row>,
    #[serde(skip)]
    exit_code: u8,
}

impl Render for Status {
    fn render(&self, out: &mut Text) {
        let mut table = Table::new(&[
            "TARGET", "UP", "AGENT", "UPTIME", "LOAD", "RUNNING", "DISK", "NOTE",
        ])
        .right(3)
        .right(4)
        .right(5)
        .right(6);
        for row in &self.rows {
            // A target that is down: blanks, and why in the last column.
            let (agent, uptime, load, running, disk, note) = match &row.status {
                Some(s) => (
                    s.version.clone(),
                    crate::output::duration(s.uptime_secs),
                    s.load.map(|l| format!("{l:.2}")).join(" "),
                    s.running.to_string(),
                    // Runs + snapshots + environments under ~/.moor.
                    s.disk
                        .map(|d| {
                            moor_proto::human_bytes(d.runs_bytes + d.snapshots_bytes + d.envs_bytes)
                        })
                        .unwrap_or_default(),
                    String::new(),
                ),
                None => (
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    row.error.clone().unwrap_or_default(),
                ),
            };
            let up = if row.up { "yes" } else { "no" };
            table.row(vec![
                row.target.clone(),
                up.into(),
                agent,
                uptime,
                load,
                running,
                disk,
                note,
            ]);
        }
        out.raw(&table.render());
        // A non-zero exit says why on stderr too.
        for row in self.rows.iter().filter(|r| !r.up) {
            out.note(format!(
                "error: target {}: {}; fix: {}",
                row.target,
                row.error.as_deref().unwrap_or("no answer"),
                row.fix.as_deref().unwrap_or("run with -vv")
            ));
        }
    }

    fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// `moor status [TARGET...]`.
pub async fn run(args: &StatusArgs, ctx: &Context) -> Result<Status> {
    let store = ctx.store()?;
    let targets = if args.targets.is_empty() {
        store.targets()?
    } else {
        args.targets
            .iter()
            .map(|n| ctx.targets.named(&store, n))
            .collect::<Result<_>>()?
    };
    let access = Access::from_args(&args.connect)?;
    let answers = ctx
        .targets
        .ask_all(&targets, &access, async |agent| agent.status().await)
        .await;
    let mut status = Status {
        rows: Vec::new(),
        exit_code: exit::OK,
    };
    for (t, answer) in targets.iter().zip(answers) {
        let row = match answer {
            Ok(s) => Row {
                target: t.name.clone(),
                up: true,
                status: Some(s),
                error: None,
                fix: None,
            },
            Err(e) => {
                status.exit_code = e.exit_code();
                Row {
                    target: t.name.clone(),
                    up: false,
                    status: None,
                    error: Some(e.to_string()),
                    fix: Some(e.fix()),
                }
            }
        };
        status.rows.push(row);
    }
    Ok(status)
}
