//! Starting a [`RunPlan`]: the one way every run begins. A single run goes
//! in one request with its snapshot question (and its log, when followed);
//! a job is gang-started ([`gang`], where [`rendezvous`] says where the
//! nodes meet and [`mpi`] gives MPI's roles); an endpoint's run is handed
//! to the agent that keeps it up. Each first connects, makes the
//! environment ready on every node, and sends only the content a host
//! lacks.

mod gang;
mod mpi;
pub mod rendezvous;

use moor_proto::endpoint::{EndpointInfo, EndpointSpec};

pub use gang::Launched;

use crate::agent_client::{ByteStream, StartedRun};
use crate::context::Context;
use crate::envs::prepare::{prepare_on, Assets};
use crate::error::{Error, Result};
use crate::plan::{Content, Payloads, RunPlan};
use crate::reach::{Access, Connected};
use crate::snapshot::Snapshot;
use crate::store::Target;

/// A started plan, with what its command still needs to follow it.
pub enum Started {
    /// One run on its open connection.
    Run {
        /// The run as the agent accepted it.
        run: moor_proto::RunInfo,
        /// Its target.
        target: Target,
        /// The connection it was started on.
        conn: Connected,
        /// Its log, streaming from the first byte (when followed).
        log: Option<ByteStream>,
        /// Source bytes sent.
        sent: usize,
    },
    /// A gang-started job.
    Job(Launched),
    /// An endpoint the agent now keeps up.
    Endpoint {
        /// The endpoint as created (starting).
        created: EndpointInfo,
        /// Its target.
        target: Target,
        /// The connection it was created on.
        conn: Connected,
    },
}

/// Starts `plan` (see the module's doc); `follow` asks a single run's log
/// to stream from its start.
pub async fn start(
    plan: &RunPlan,
    payloads: &Payloads,
    ctx: &Context,
    access: &Access,
    assets: &Assets<'_>,
    follow: bool,
) -> Result<Started> {
    if plan.job {
        return gang::launch(plan, payloads, ctx, access, assets)
            .await
            .map(Started::Job);
    }
    let store = ctx.store()?;
    let target = ctx.targets.named(&store, &plan.nodes[0])?;
    let conn = ctx.targets.connect(&target, access).await?;
    let started = start_one(plan, payloads, ctx, &target, &conn, assets, follow).await;
    match started {
        Ok(One::Run(run, log, sent)) => {
            store.record_run(&run, &target.name)?;
            Ok(Started::Run {
                run,
                target,
                conn,
                log,
                sent,
            })
        }
        Ok(One::Endpoint(created)) => {
            store.record_endpoint(&created.name, &target.name)?;
            Ok(Started::Endpoint {
                created,
                target,
                conn,
            })
        }
        Err(e) => {
            conn.close().await;
            Err(e)
        }
    }
}

/// What one node started.
enum One {
    /// A run, its log (when followed) and the source bytes sent.
    Run(moor_proto::RunInfo, Option<ByteStream>, usize),
    /// An endpoint, created.
    Endpoint(EndpointInfo),
}

/// One node's run or endpoint, on its connection.
async fn start_one(
    plan: &RunPlan,
    payloads: &Payloads,
    ctx: &Context,
    target: &Target,
    conn: &Connected,
    assets: &Assets<'_>,
    follow: bool,
) -> Result<One> {
    if let Some(env) = &plan.env {
        // A cache hit is one request; otherwise the build log shows first.
        prepare_on(conn, ctx, target, env, assets).await?;
    }
    let source = plan
        .source
        .as_ref()
        .map(|c| payload(payloads, c))
        .transpose()?;
    let spec = plan.node_spec(0);
    let Some(serve) = &plan.serve else {
        let snap = source.ok_or_else(|| no_content("source"))?;
        let progress = crate::transfer::Transfer::new("source snapshot", Some(snap.size));
        let (sent, StartedRun { run, log }) = conn
            .agent
            .start_with_snapshot(snap, spec, follow, &progress)
            .await?;
        drop(progress);
        tracing::info!(sha256 = %snap.sha256, files = snap.files, sent, "snapshot");
        return Ok(One::Run(run, log, sent));
    };
    if let Some(snap) = source {
        let progress = crate::transfer::Transfer::new("source snapshot", Some(snap.size));
        conn.agent.put_snapshot(snap, &progress).await?;
    }
    if let Some(moor_proto::endpoint::ModelSource::Snapshot { sha256 }) = &serve.model {
        let packed = payloads
            .by_hash(sha256)
            .ok_or_else(|| no_content("model"))?;
        let progress = crate::transfer::Transfer::new("model", Some(packed.size));
        conn.agent.put_snapshot(packed, &progress).await?;
    }
    let created = conn
        .agent
        .create_endpoint(EndpointSpec {
            name: serve.name.clone(),
            port: serve.port,
            public: serve.public,
            health_path: serve.health_path.clone(),
            server: serve.server.clone(),
            model: serve.model.clone(),
            run: spec,
        })
        .await?;
    Ok(One::Endpoint(created))
}

/// The packed snapshot behind `content`.
pub fn payload<'a>(payloads: &'a Payloads, content: &Content) -> Result<&'a Snapshot> {
    payloads
        .get(content)
        .ok_or_else(|| no_content(&content.sha256))
}

fn no_content(what: &str) -> Error {
    Error::usage(
        format!("the plan names content {what} that was not packed here"),
        "build the plan again from its source folders (moor run, moor job submit)",
    )
}
