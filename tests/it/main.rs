//! moor's integration tests, one test binary (one link on two cores instead
//! of six): each module drives the real `moor` binary against real OpenSSH
//! test hosts in containers (see the `moor-tests` harness).

mod arm64;
mod attach;
mod audit;
mod bastion;
mod cli_habits;
mod detach;
mod endpoints;
mod env_network;
mod env_specs;
mod envs;
mod fleet;
mod forward;
mod gpu_queue;
mod harness;
mod host_keys;
mod install;
mod job_link;
mod jobs;
mod jobs_torch;
mod mlflow;
mod mux;
mod outputs;
mod run_ends;
mod run_env;
mod run_history;
mod run_names;
mod run_output;
mod run_plan;
mod runs;
mod source_trees;
mod spark;
mod ssh_shell;
mod team;
mod ui;
mod validate;
mod workspace_db;
