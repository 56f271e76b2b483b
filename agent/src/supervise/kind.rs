//! What a run's job is, as one enum of run kinds, and the command line
//! each starts: the user's command as it is, several ranks through the
//! launcher, an MPI node, spark-submit, or a Docker container; an
//! endpoint's server is wrapped in its keeper whatever its kind.

use std::path::Path;

use moor_proto::env::EnvKind;
use moor_proto::{MpiRole, SparkSpec};

use crate::envs::Ready;
use crate::error::{AgentError, Result};
use crate::runs::StoredSpec;
use crate::sys;

/// The kinds of run a supervisor starts.
pub enum RunKind<'a> {
    /// The command as it is.
    Plain,
    /// Several processes of one node (torch-style ranks): `launch`.
    Ranks,
    /// An MPI job's node: node 0 runs mpirun (`mpi-launch`), the others
    /// wait for it (`mpi-peer`).
    Mpi {
        /// Whether this node is a peer (not node 0).
        peer: bool,
    },
    /// spark-submit of the command's script.
    Spark(&'a SparkSpec),
    /// The command in a Docker environment's container: `container-run`.
    Container,
}

impl<'a> RunKind<'a> {
    /// The kind of the run `stored` asks for, in its environment.
    pub fn of(stored: &'a StoredSpec, environment: Option<&Ready>) -> RunKind<'a> {
        let spec = &stored.spec;
        if let Some(spark) = &spec.spark {
            return RunKind::Spark(spark);
        }
        if environment.is_some_and(|r| r.kind == EnvKind::Docker) {
            return RunKind::Container;
        }
        match (&spec.mpi, spec.processes) {
            (Some(role), _) => RunKind::Mpi {
                peer: matches!(role, MpiRole::Peer { .. }),
            },
            (None, Some(p)) if p.count > 1 => RunKind::Ranks,
            _ => RunKind::Plain,
        }
    }

    /// The command line that starts the run's job.
    pub fn argv(
        &self,
        dir: &Path,
        stored: &StoredSpec,
        run_id: &str,
        environment: Option<&Ready>,
    ) -> Result<Vec<String>> {
        let agent = |verb: &str| -> Result<Vec<String>> {
            Ok(vec![
                std::env::current_exe()?.display().to_string(),
                verb.into(),
                dir.display().to_string(),
            ])
        };
        let then_command = |mut argv: Vec<String>| {
            argv.push("--".into());
            argv.extend(stored.spec.command.iter().cloned());
            argv
        };
        Ok(match self {
            RunKind::Plain => stored.spec.command.clone(),
            RunKind::Ranks => then_command(agent("launch")?),
            RunKind::Mpi { peer: true } => agent("mpi-peer")?,
            RunKind::Mpi { peer: false } => then_command(agent("mpi-launch")?),
            RunKind::Container => agent("container-run")?,
            RunKind::Spark(spark) => {
                let name = stored.spec.name.clone().unwrap_or(format!("moor-{run_id}"));
                spark_argv(spark, &name, stored, dir, environment)?
            }
        })
    }
}

/// An endpoint's server: the keeper runs `argv` and restarts it. The
/// command goes in a file, not on the keeper's command line: a `pkill -f`
/// aimed at the server must not take its keeper.
pub fn kept(dir: &Path, stored: &StoredSpec, argv: Vec<String>) -> Result<Vec<String>> {
    if stored.spec.serving.is_none() {
        return Ok(argv);
    }
    sys::write_json_atomic(&dir.join(crate::endpoints::keeper::COMMAND), &argv)?;
    Ok(vec![
        std::env::current_exe()?.display().to_string(),
        "keep-endpoint".into(),
        dir.display().to_string(),
    ])
}

/// The spark-submit command of a Spark run, or why there is none.
fn spark_argv(
    spark: &SparkSpec,
    name: &str,
    stored: &StoredSpec,
    dir: &Path,
    environment: Option<&Ready>,
) -> Result<Vec<String>> {
    if environment.is_some_and(|r| r.kind == EnvKind::Docker) {
        return Err(AgentError::usage(
            "a Spark run cannot use a Docker environment (spark-submit runs on the host)",
        )
        .with_fix("use a conda or pip environment, or none"));
    }
    let submit = crate::runs::spark::find_submit().ok_or_else(|| {
        AgentError::not_found(
            "no spark-submit on this host (PATH, /usr/hdp/current/spark2-client, $SPARK_HOME)",
        )
        .with_fix("attach the cluster's head node, or install Spark and put spark-submit on PATH")
    })?;
    crate::runs::spark::submit_argv(
        &submit,
        spark,
        name,
        &stored.spec.command,
        &stored.workdir,
        dir,
    )
    .map_err(AgentError::from)
}
