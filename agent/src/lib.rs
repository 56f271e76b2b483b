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
//!   host (distributed training; see [`job::launch`]).
//! - `mpi-launch DIR -- CMD`, `mpi-peer DIR`: internal, the jobs of an MPI
//!   job's node 0 and other nodes (see [`job::mpi`]).
//! - `keep-endpoint DIR`: internal, the job of an endpoint's run:
//!   keeps its server up (see [`endpoints`]).
//! - `conda-create PREFIX SPEC.json [CHANNEL...]`: a conda environment made
//!   with rattler (also inside Docker builds: the static agent runs anywhere).
//!
//! Runs live under `$HOME/.moor/runs` (see [`runs`]).
//!
//! Where things are, a room each:
//! - [`handler`] answers the protocol (one connection; starting a run is
//!   [`handler::start_run`]), [`serve`] is the daemon and the stdio relay.
//! - [`snapshots`] keeps source snapshots: [`snapshots::trees`] unpacks each
//!   once for its runs to share, [`snapshots::manifests`] and
//!   [`snapshots::blobs`] take snapshots sent file by file.
//! - [`runs`] keeps runs on disk: [`runs::stream`] streams a run's log and
//!   MLflow records, [`runs::outputs`] its outputs as an archive,
//!   [`runs::inputs`] and [`runs::url_inputs`] bring its data,
//!   [`runs::gpus`] shares the host's GPUs, [`runs::spark`] is spark-submit,
//!   [`runs::login_env`] gives the login shell's `PATH`.
//! - [`supervise`] is one run's supervisor process: prepare, its command
//!   line by kind (plain, several ranks, MPI, Spark, a Docker container:
//!   [`supervise::container`]), spawn and wait, finish.
//! - [`envs`] keeps and builds environments: [`envs::build`], the Docker
//!   Engine API ([`envs::docker`], [`envs::docker_context`]), the target's
//!   proxy and CA ([`envs::network`]).
//! - [`job`] is a job's part on this host: the nodes' link, addresses and
//!   rank launchers (torch-style and MPI).
//! - [`endpoints`] keeps models served over HTTP, [`tracking`] is a run's
//!   MLflow tracking endpoint.
//! - [`sys`] holds file and process helpers, [`error`] the one error type.

pub mod endpoints;
pub mod envs;
pub mod error;
pub mod handler;
pub mod job;
pub mod runs;
pub mod serve;
pub mod snapshots;
pub mod strict_modes;
pub mod supervise;
pub mod sys;
pub mod tracking;

pub use error::{AgentError, Result};
