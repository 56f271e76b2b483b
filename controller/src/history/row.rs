//! A run as `moor runs --json` and the other run commands print it: one
//! row per run, or per job (its nodes in `nodes`).

use std::collections::BTreeMap;

use moor_proto::{RunInfo, RunState, SparkSpec};
use serde::Serialize;

/// A run as `moor runs --json` prints it.
#[derive(Debug, Serialize)]
pub struct RunJson {
    /// Run id.
    pub id: String,
    /// Target name.
    pub target: String,
    /// The run's name.
    pub name: Option<String>,
    /// State.
    pub state: RunState,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal.
    pub signal: Option<i32>,
    /// Command.
    pub command: Vec<String>,
    /// Times.
    pub created_at: String,
    /// Started.
    pub started_at: Option<String>,
    /// Ended.
    pub ended_at: Option<String>,
    /// A Spark run's master and settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,
    /// A Spark run's YARN application, once submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yarn_application: Option<String>,
    /// Why it failed or was lost, when its command did not say (it could
    /// not start, its supervisor vanished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds from its start to its end (or to now, while it runs).
    pub duration_secs: Option<u64>,
    /// The environment it runs in (its content hash), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The names of its `-e`/`--env-file` variables (never the values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Whether its target answered now; when not, the run is as the
    /// workspace's history last heard of it.
    pub reachable: bool,
    /// Its target has been detached since (`moor runs --all`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub target_detached: bool,
    /// A job's experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The latest value of each metric its code logged through MLflow (a
    /// job's: node 0's).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, moor_proto::tracking::Latest>,
    /// A job's nodes (the row is the job's; `target` lists their targets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeJson>,
    /// Who started it, in a team workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl RunJson {
    /// The run `run` on `target`.
    pub fn new(run: RunInfo, target: &str) -> RunJson {
        let duration_secs = duration(&run.started_at, &run.ended_at, run.state);
        RunJson {
            id: run.id,
            target: target.to_owned(),
            name: run.name,
            state: run.state,
            exit_code: run.exit_code,
            signal: run.signal,
            command: run.command,
            created_at: run.created_at,
            started_at: run.started_at,
            ended_at: run.ended_at,
            spark: run.spark,
            yarn_application: run.yarn_application,
            error: run.error,
            duration_secs,
            environment: run.environment,
            env: run.env_names,
            reachable: true,
            target_detached: false,
            experiment: None,
            metrics: run.metrics,
            nodes: Vec::new(),
            user: None,
        }
    }

    /// A run as the workspace's history last heard of it (its target did
    /// not answer, or is detached).
    pub fn recorded(run: RunInfo, target: &str, target_detached: bool) -> RunJson {
        RunJson {
            reachable: false,
            target_detached,
            ..RunJson::new(run, target)
        }
    }

    /// Whether this row is a job's.
    pub fn is_job(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// The error line for a run that ended without its command's own say,
    /// e.g. `run X failed: cannot start "x": No such file or directory`.
    pub fn error_line(&self) -> Option<String> {
        let error = self.error.as_ref()?;
        Some(format!(
            "error: run {} {}: {error}; fix: see `moor logs {}` and the run's command",
            self.id,
            state_name(self.state),
            self.id
        ))
    }

    /// The exit code `moor run` ends with for this run: its own, 128+N for
    /// a signal N, 1 when it has neither.
    pub fn exit_code(&self) -> u8 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => u8::try_from(code).unwrap_or(1),
            (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
            (None, None) => 1,
        }
    }

    /// The command as `moor runs` shows it: a Spark run as the spark-submit
    /// it is (and its YARN application, once known).
    pub(crate) fn shown_command(&self) -> String {
        match (&self.spark, &self.yarn_application) {
            (Some(_), Some(app)) => format!("spark-submit {} ({app})", self.command.join(" ")),
            (Some(_), None) => format!("spark-submit {}", self.command.join(" ")),
            (None, _) => self.command.join(" "),
        }
    }
}

/// Seconds a run took (or has taken so far, while it runs).
fn duration(started: &Option<String>, ended: &Option<String>, state: RunState) -> Option<u64> {
    let start = moor_proto::time::parse(started.as_deref()?)?;
    let end = match ended {
        Some(end) => moor_proto::time::parse(end)?,
        None if !state.is_final() => moor_proto::time::parse(&moor_proto::time::now())?,
        None => return None,
    };
    Some(end.saturating_sub(start))
}

/// A run state's name, as the JSON spells it.
pub fn state_name(state: RunState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// One node of a job, as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeJson {
    /// Its rank.
    pub rank: usize,
    /// Its target.
    pub target: String,
    /// Its run.
    pub run: String,
    /// Its state (`None`: never heard of).
    pub state: Option<RunState>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal.
    pub signal: Option<i32>,
    /// Why it failed without its command's say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
