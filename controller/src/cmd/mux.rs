//! `moor mux status` and `moor mux stop`: the workspace's warm connections
//! ([`crate::mux`]), as `ssh -O check` and `ssh -O exit` for a ControlMaster.

use serde::Serialize;

use super::Context;
use crate::error::Result;
use crate::mux::{self, Answer, MuxStatus, Request};
use crate::output::{Render, Table, Text};

/// What `moor mux status` found.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Whether a mux answered.
    pub running: bool,
    /// Its socket.
    pub socket: Option<String>,
    /// What it holds.
    #[serde(flatten)]
    pub mux: Option<MuxStatus>,
}

impl Render for Status {
    fn render(&self, out: &mut Text) {
        let Some(mux) = &self.mux else {
            out.line("no multiplexer runs for this workspace (the next command that connects starts one)");
            return;
        };
        out.line(format!(
            "multiplexer pid {} up {}, {} pipe(s) open, exits after {} idle",
            mux.pid,
            crate::output::duration(mux.uptime_secs),
            mux.pipes_open,
            crate::output::duration(mux.idle_limit_secs),
        ));
        if mux.targets.is_empty() {
            return;
        }
        let mut table =
            Table::new(&["TARGET", "STATE", "ENDPOINT", "SINCE", "PIPES", "NOTE"]).right(4);
        for t in &mux.targets {
            table.row(vec![
                t.target.clone(),
                t.state.clone(),
                t.endpoint.clone(),
                crate::output::duration(t.since_secs),
                t.pipes_given.to_string(),
                t.error.clone().unwrap_or_default(),
            ]);
        }
        out.raw(&table.render());
    }
}

/// `moor mux status`.
pub async fn status(ctx: &Context) -> Result<Status> {
    let socket = mux::socket_path(&ctx.workspace).map(|p| p.display().to_string());
    let mux = match mux::ask(&ctx.workspace, &Request::Status).await {
        Some(Answer::Status(status)) => Some(status),
        _ => None,
    };
    Ok(Status {
        running: mux.is_some(),
        socket,
        mux,
    })
}

/// What `moor mux stop` did.
#[derive(Debug, Serialize)]
pub struct Stopped {
    /// Whether a mux was running (and was told to stop).
    pub stopped: bool,
}

impl Render for Stopped {
    fn render(&self, out: &mut Text) {
        out.line(if self.stopped {
            "multiplexer stopped: its connections are closed"
        } else {
            "no multiplexer ran for this workspace"
        });
    }
}

/// `moor mux stop`.
pub async fn stop(ctx: &Context) -> Result<Stopped> {
    let stopped = matches!(
        mux::ask(&ctx.workspace, &Request::Stop).await,
        Some(Answer::Done)
    );
    Ok(Stopped { stopped })
}

/// `moor mux serve` (hidden): runs until idle for `idle_secs`.
pub async fn serve(ctx: &Context, idle_secs: u64, warm: Vec<String>) -> Result<()> {
    let idle = std::time::Duration::from_secs(idle_secs);
    crate::muxd::serve(ctx.targets.clone(), idle, warm).await
}
