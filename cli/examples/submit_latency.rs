//! Submit latency over a warm connection: connects once to an attached
//! target's agent, then starts N runs of `true` back to back and prints the
//! latency of each StartRun round trip (min, median, p99, mean).
//!
//!   MOOR_WORKSPACE=... cargo run --release --example submit_latency -- TARGET [N]

use std::time::Instant;

use moor::cmd::Context;
use moor::reach::Access;
use moor_proto::RunSpec;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().ok_or("usage: submit_latency TARGET [N]")?;
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let ctx = Context::open(
        std::env::var_os("MOOR_WORKSPACE").map(Into::into),
        false,
        &moor_cli::AGENTS,
    )?;
    let target = ctx.targets.attached(&ctx.store()?, name)?;
    let conn = ctx.targets.connect(&target, &Access::defaults()).await?;
    let spec = RunSpec {
        name: Some("latency".into()),
        snapshot: String::new(),
        command: vec!["true".into()],
        env: Default::default(),
        environment: None,
        spark: None,
        ..RunSpec::default()
    };
    let mut micros = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        conn.agent.start_run(spec.clone()).await?;
        micros.push(started.elapsed().as_micros() as u64);
    }
    micros.sort_unstable();
    let mean = micros.iter().sum::<u64>() / n as u64;
    println!(
        "submit latency over one warm connection, {n} runs: min {:.2} ms, median {:.2} ms, p99 {:.2} ms, mean {:.2} ms",
        micros[0] as f64 / 1000.0,
        micros[n / 2] as f64 / 1000.0,
        micros[(n * 99 / 100).min(n - 1)] as f64 / 1000.0,
        mean as f64 / 1000.0
    );
    Ok(())
}
