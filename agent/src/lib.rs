//! `moor-agent`: the program moor installs on an attached machine. Built as a
//! static musl binary (x86_64 and aarch64 builds), so it runs on any Linux of
//! those architectures whatever its libc.
//!
//! Commands:
//! - `--version`, `hello`: what it is; `hello` is the handshake the
//!   controller checks (magic line, protocol, self-hashed build).
//! - `run [--name N] [--workdir DIR] -- CMD ARGS...`: start a run that
//!   outlives this process; prints the run as JSON.
//! - `runs`, `show ID`, `cancel ID [--grace SECS]`: runs as JSON.
//! - `serve`: the per-user daemon speaking moor's protocol on a Unix socket.
//! - `stdio`: what the controller execs over SSH: relays to the daemon,
//!   starting it when it is not running.
//! - `supervise DIR`: internal, the supervisor of one run.
//! - `env-build DIR`, `container-run DIR`: internal, the jobs of an
//!   environment build and of a run in a Docker environment.
//! - `launch DIR -- CMD` (`launch --ranks N,FIRST,WORLD -- CMD` in a
//!   container): internal, the job of a run with several processes on this
//!   host (distributed training; see [`launch`]).
//! - `mpi-launch DIR -- CMD`, `mpi-peer DIR`: internal, the jobs of an MPI
//!   job's node 0 and other nodes (see [`mpi`]).
//! - `keep-endpoint DIR`: internal, the job of an endpoint's run:
//!   keeps its server up (see [`endpoints`]).
//! - `conda-create PREFIX SPEC.json [CHANNEL...]`: a conda environment made
//!   with rattler (also inside Docker builds: the static agent runs anywhere).
//!
//! Runs live under `$HOME/.moor/runs` (see [`runs`]).

//!
//! Where things are: [`handler`] answers the protocol (one connection),
//! [`serve`] is the daemon and the stdio relay, [`snapshots`] keeps source
//! snapshots ([`snapshot_trees`]: unpacked once, shared by their runs;
//! [`manifests`] and [`blobs`]: snapshots sent file by file),
//! [`runs`] and [`supervise`]
//! keep runs on disk and watch them, [`envs`] and [`envbuild`] keep and build
//! environments ([`docker`] is the Engine API, [`spark`] spark-submit),
//! [`gpus`] shares the host's GPUs among runs, [`tracking`] is a run's
//! MLflow tracking endpoint,
//! [`endpoints`] keeps models served over HTTP, [`start_run`] starts a run,
//! [`outputs`] streams a run's outputs as an archive, [`run_stream`] its log
//! and MLflow records, [`inputs`] unpacks its
//! data inputs ([`url_inputs`] downloads URL ones), [`node`] tells a multi-node job this host's addresses, [`login_env`] gives
//! runs the login shell's `PATH` and `/etc/environment`,
//! [`sys`] holds file and process helpers, [`error`] the one error type.

pub mod blobs;
pub mod build_network;
pub mod container_job;
pub mod docker;
pub mod docker_context;
pub mod endpoints;
pub mod envbuild;
pub mod envs;
pub mod error;
pub mod fetch_error;
pub mod gpus;
pub mod handler;
pub mod inputs;
pub mod job_link;
pub mod launch;
pub mod login_env;
pub mod manifests;
pub mod mpi;
pub mod node;
pub mod outputs;
pub mod run_stream;
pub mod runs;
pub mod serve;
pub mod snapshot_trees;
pub mod snapshots;
pub mod spark;
pub mod start_run;
pub mod supervise;
pub mod sys;
pub mod tracking;
pub mod url_inputs;

pub use error::{AgentError, Result};
