//! What the workspace knows of runs and jobs, as the run commands and the
//! dashboard show them: a run's row ([`row`]: `moor runs --json`'s shape),
//! and jobs ([`jobs`]): found by id, id prefix or name, their nodes' runs
//! folded into one row, the runs behind a run-or-job key.

pub mod jobs;
pub mod row;

pub use jobs::{find, fold, nodes, row as job_row, runs_of, summarize};
pub use row::{state_name, NodeJson, RunJson};
