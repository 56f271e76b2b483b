//! Distributed training across real test hosts with Debian's CPU torch
//! (gloo): an all-reduce whose sum proves every rank took part, on 2 and 3
//! nodes and with several processes per node; a DDP training from an Azure
//! ML job file after which every rank holds the same parameters; two
//! processes in a Docker environment; TensorFlow's `TF_CONFIG` (each worker
//! serves and reaches the others where it says: what TF's own servers do);
//! and a node killed mid-job, which fails the job and stops the other nodes.

use std::time::{Duration, Instant};

use moor_tests::{
    assert_exit, dist_image, docker_or_skip, heavy, source_dir as src, Cluster, HostSpec,
    ImageGuard,
};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

const ALL_REDUCE: &str = r#"import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
print(f"rank {rank}/{world} node {os.environ['NODE_RANK']} local {os.environ['LOCAL_RANK']}/{os.environ['LOCAL_WORLD_SIZE']} sum {t.item():.0f}", flush=True)
if rank == 0:
    with open(os.path.join(os.environ["MOOR_OUTPUT_DIR"], "sum.txt"), "w") as f:
        f.write(f"{t.item():.0f} {world}\n")
dist.destroy_process_group()
"#;

const DDP: &str = r#"import argparse, hashlib, os, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
p = argparse.ArgumentParser()
p.add_argument("--steps", type=int); p.add_argument("--lr", type=float); p.add_argument("--out")
a = p.parse_args()
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.Linear(8, 1)
ddp = DDP(model)
opt = torch.optim.SGD(ddp.parameters(), lr=a.lr)
g = torch.Generator().manual_seed(100 + rank)
w = torch.arange(8, dtype=torch.float32)
losses = []
for _ in range(a.steps):
    x = torch.randn(64, 8, generator=g)
    loss = ((ddp(x).squeeze(1) - (x @ w + 0.5)) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(loss.item())
params = torch.cat([q.detach().flatten() for q in model.parameters()])
with open(os.path.join(a.out, f"params-rank{rank}.sha256"), "w") as f:
    f.write(hashlib.sha256(params.numpy().tobytes()).hexdigest())
if rank == 0:
    with open(os.path.join(a.out, "loss.txt"), "w") as f:
        f.write(f"{losses[0]:.6f} {losses[-1]:.6f}\n")
print(f"rank {rank} done, loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
dist.destroy_process_group()
"#;

fn dist() -> HostSpec {
    HostSpec {
        dist: true,
        ..HostSpec::default()
    }
}

#[test]
fn torch_all_reduce_and_ddp_across_hosts() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = heavy();
    let c = Cluster::new(MOOR, 3, dist());
    let moor = &c.moor;
    // As on a stock Ubuntu install, each host name resolves to loopback:
    // gloo left alone would advertise 127.0.1.1 (issue 33).
    for host in &c.hosts {
        host.exec("h=$(hostname); { echo \"127.0.1.1 $h\"; grep -v \"$h\" /etc/hosts; } > /tmp/hosts && cat /tmp/hosts > /etc/hosts");
        assert_eq!(
            host.exec("getent hosts $(hostname) | cut -d' ' -f1").trim(),
            "127.0.1.1"
        );
    }
    let code = src(&[("allreduce.py", ALL_REDUCE), ("train/ddp.py", DDP)]);
    let dir = code.path().to_str().unwrap();

    // Two nodes, one process each: 1 + 2.
    let out = moor.run(&[
        "run",
        "--target",
        "node0",
        "--target",
        "node1",
        "--distribution",
        "pytorch",
        "--source-dir",
        dir,
        "--json",
        "--",
        "python3",
        "allreduce.py",
    ]);
    assert_exit(&out, 0);
    assert!(
        out.stderr
            .contains("[node 1] rank 1/2 node 1 local 0/1 sum 3"),
        "{}",
        out.stderr
    );
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("node-0/sum.txt")).unwrap(),
        "3 2\n"
    );

    // A pool of three, two processes per node: ranks 0..5, 1+..+6 = 21.
    assert_exit(
        &moor.run(&[
            "pool", "create", "trio", "--target", "node0", "--target", "node1", "--target", "node2",
        ]),
        0,
    );
    let out = moor.run(&[
        "run",
        "--pool",
        "trio",
        "--processes-per-node",
        "2",
        "--source-dir",
        dir,
        "--",
        "python3",
        "allreduce.py",
    ]);
    assert_exit(&out, 0);
    for rank in 0..6 {
        let node = rank / 2;
        let line = format!(
            "[node {node}] rank {rank}/6 node {node} local {}/2 sum 21",
            rank % 2
        );
        assert!(
            out.stdout.contains(&line),
            "{line} missing from\n{}",
            out.stdout
        );
    }

    // DDP from an Azure ML job file: instance_count 2 on the pool, two
    // processes each (2x2); every rank ends with the same parameters.
    std::fs::write(
        code.path().join("ddp.yml"),
        "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
         code: train\n\
         command: >-\n  python3 ddp.py --steps ${{inputs.steps}} --lr ${{inputs.lr}}\n  --out ${{outputs.model}}\n\
         inputs:\n  steps: 30\n  lr: 0.01\n\
         outputs:\n  model:\n    type: uri_folder\n\
         compute: azureml:trio\n\
         distribution:\n  type: pytorch\n  process_count_per_instance: 2\n\
         resources:\n  instance_count: 2\n\
         display_name: ddp-synthetic\n",
    )
    .unwrap();
    let out = moor.run(&[
        "job",
        "submit",
        code.path().join("ddp.yml").to_str().unwrap(),
        "--json",
    ]);
    assert_exit(&out, 0);
    let row = out.json();
    assert_eq!(row["nodes"].as_array().unwrap().len(), 2, "{row}");
    let id = row["id"].as_str().unwrap().to_owned();
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    let read = |p: &str| std::fs::read_to_string(to.path().join(p)).unwrap();
    for rank in 1..4 {
        assert_eq!(
            read("node-0/model/params-rank0.sha256"),
            read(&format!("node-{}/model/params-rank{rank}.sha256", rank / 2))
        );
    }
    let loss: Vec<f64> = read("node-0/model/loss.txt")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(loss[1] < loss[0] / 2.0, "the loss fell: {loss:?}");
}

#[test]
fn several_processes_per_node_in_a_docker_environment() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = heavy();
    // The test host drives this machine's Docker engine (its socket): the
    // container is on this machine's network, not the test host's, so the
    // rendezvous is on 127.0.0.1 (on a real host, the host's own network).
    let c = Cluster::new(
        MOOR,
        1,
        HostSpec {
            docker_socket: Some(true),
            ..HostSpec::default()
        },
    );
    let moor = &c.moor;
    let created = moor.run(&[
        "env",
        "create",
        "torch",
        "--docker-base",
        dist_image(),
        "--json",
    ]);
    assert_exit(&created, 0);
    let shown = moor.run(&["env", "show", "torch", "--json"]);
    let hash = shown.json()["hash"].as_str().unwrap().to_owned();
    let _image = ImageGuard(moor_proto::env::image_tag(&hash));
    let code = src(&[("allreduce.py", ALL_REDUCE)]);
    let out = moor.run(&[
        "run",
        "--target",
        "node0",
        "--env",
        "torch",
        "--processes-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--json",
        "--",
        "python3",
        "allreduce.py",
    ]);
    assert_exit(&out, 0);
    for rank in 0..2 {
        let line = format!("rank {rank}/2 node 0 local {rank}/2 sum 3");
        assert!(out.stderr.contains(&line), "{line} in {}", out.stderr);
    }
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("node-0/sum.txt")).unwrap(),
        "3 2\n"
    );

    // A cancel reaches every rank in the container (each notes its SIGTERM
    // in the outputs, copied back when the container stops).
    let code = src(&[(
        "wait.py",
        "import os, signal, sys, time\n\
         def bye(*_):\n    open(os.path.join(os.environ['MOOR_OUTPUT_DIR'], 'term-' + os.environ['RANK']), 'w').close()\n    sys.exit(0)\n\
         signal.signal(signal.SIGTERM, bye)\n\
         print('up', os.environ['RANK'], flush=True)\n\
         time.sleep(600)\n",
    )]);
    let out = moor.run(&[
        "run",
        "--target",
        "node0",
        "--env",
        "torch",
        "--processes-per-node",
        "2",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--detach",
        "--json",
        "--",
        "python3",
        "wait.py",
    ]);
    assert_exit(&out, 0);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = moor.run(&["logs", &id]).stdout;
        if log.contains("up 0") && log.contains("up 1") {
            break;
        }
        assert!(Instant::now() < deadline, "both ranks up: {log}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let cancelled = moor.run(&["cancel", &id, "--json"]);
    assert_exit(&cancelled, 0);
    assert_eq!(cancelled.json()["state"], "cancelled");
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    for rank in 0..2 {
        assert!(
            to.path().join(format!("node-0/term-{rank}")).exists(),
            "rank {rank} got no SIGTERM"
        );
    }
}

/// A TensorFlow worker's rendezvous without TensorFlow (not in Debian):
/// listen where `TF_CONFIG` puts this worker, reach the next one where it
/// puts that one, hear the previous one.
const TF_CHECK: &str = r#"import json, os, socket, time
c = json.loads(os.environ["TF_CONFIG"])
workers, me = c["cluster"]["worker"], c["task"]["index"]
assert c["task"]["type"] == "worker"
port = int(workers[me].rsplit(":", 1)[1])
srv = socket.create_server(("0.0.0.0", port))
host, other = workers[(me + 1) % len(workers)].rsplit(":", 1)
deadline = time.time() + 30
while True:
    try:
        s = socket.create_connection((host, int(other)), timeout=2)
        s.sendall(f"worker {me}".encode()); s.close(); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.2)
conn, _ = srv.accept()
print(f"worker {me} of {len(workers)} heard {conn.recv(64).decode()}", flush=True)
"#;

#[test]
fn tensorflow_workers_meet_where_tf_config_says() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 3, HostSpec::default());
    let code = src(&[
        ("src/tf_check.py", TF_CHECK),
        (
            "tf.yml",
            "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
             code: src\n\
             command: python3 tf_check.py\n\
             compute: azureml:trio\n\
             resources:\n  instance_count: 3\n\
             distribution:\n  type: tensorflow\n  worker_count: 3\n",
        ),
    ]);
    assert_exit(
        &c.moor.run(&[
            "pool", "create", "trio", "--target", "node0", "--target", "node1", "--target", "node2",
        ]),
        0,
    );
    let file = code.path().join("tf.yml");
    let out = c
        .moor
        .run(&["job", "submit", file.to_str().unwrap(), "--json"]);
    assert_exit(&out, 0);
    for (me, from) in [(0, 2), (1, 0), (2, 1)] {
        let line = format!("[node {me}] worker {me} of 3 heard worker {from}");
        assert!(out.stderr.contains(&line), "{line} in {}", out.stderr);
    }
}

#[test]
fn a_node_killed_mid_job_fails_it_and_stops_the_others() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = heavy();
    let c = Cluster::new(MOOR, 2, dist());
    let code = src(&[(
        "hang.py",
        "import time, torch.distributed as dist\n\
         dist.init_process_group('gloo')\n\
         print('joined', dist.get_rank(), flush=True)\n\
         time.sleep(600)\n",
    )]);
    let mut job = c.moor.spawn(&[
        "run",
        "--target",
        "node0",
        "--target",
        "node1",
        "--distribution",
        "pytorch",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--",
        "python3",
        "hang.py",
    ]);
    let on = |i: usize| {
        c.hosts[i]
            .exec("pgrep -f '[h]ang.py' || true")
            .trim()
            .to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while on(0).is_empty() || on(1).is_empty() {
        assert!(Instant::now() < deadline, "both ranks started");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.hosts[1].exec("pkill -9 -f '[h]ang.py'");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not end after a node was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        status.code(),
        Some(137),
        "the killed node's signal decides the exit"
    );
    assert!(on(0).is_empty(), "node 0's rank still runs");
    let runs = c.moor.run(&["runs", "--json"]).json();
    let row = &runs[0];
    assert_eq!(row["state"], "failed", "{row}");
    assert_eq!(row["nodes"][1]["signal"], 9, "{row}");
    assert_eq!(row["nodes"][0]["state"], "cancelled", "{row}");
}

#[test]
fn mpi_allreduce_over_two_hosts_by_two_processes_keeps_authorized_keys_byte_for_byte() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = heavy();
    let c = Cluster::new(MOOR, 2, dist());
    // Audit, item 2: a comment in Latin-1 (not UTF-8) in node 1's
    // authorized_keys emptied the file once; now every byte stays.
    let keys_file = "/home/moor/.ssh/authorized_keys";
    c.hosts[1].exec(&format!("printf '# Jos\\351 (Latin-1)\\n' >> {keys_file}"));
    let keys_before = c.hosts[1].exec(&format!("sha256sum < {keys_file}"));
    assert!(c.hosts[1].exec(&format!("grep -c Jos {keys_file}")).trim() == "1");
    let code = src(&[(
        "reduce.py",
        "from mpi4py import MPI\n\
         comm = MPI.COMM_WORLD\n\
         rank, size = comm.Get_rank(), comm.Get_size()\n\
         total = comm.allreduce(rank + 1, op=MPI.SUM)\n\
         hosts = sorted(set(comm.allgather(MPI.Get_processor_name())))\n\
         print(f'rank {rank}/{size} sum {total} hosts {len(hosts)}', flush=True)\n",
    )]);
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--target",
        "node1",
        "--distribution",
        "mpi",
        "--processes-per-node",
        "2",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--json",
        "--",
        "python3",
        "reduce.py",
    ]);
    assert_exit(&out, 0);
    for rank in 0..4 {
        let line = format!("[node 0] rank {rank}/4 sum 10 hosts 2");
        assert!(
            out.stderr.contains(&line),
            "{line} missing from\n{}",
            out.stderr
        );
    }
    let row = out.json();
    assert_eq!(row["nodes"][1]["state"], "succeeded", "{row}");
    // The job's key is gone from node 1, and only ever let node 0 in; every
    // other byte of the file is as it was.
    let keys = c.hosts[1].read_file(keys_file).unwrap_or_default();
    assert!(!keys.contains("moor-mpi-job"), "{keys}");
    assert_eq!(
        c.hosts[1].exec(&format!("sha256sum < {keys_file}")),
        keys_before
    );
    let log = c
        .moor
        .run(&["logs", row["id"].as_str().unwrap(), "--node", "1"]);
    assert!(
        log.stdout.contains(&format!("node 0 ({})", c.hosts[0].ip)),
        "{}",
        log.stdout
    );

    // Audit, item 2: `mpi-peer` killed with -9 left the job's key behind;
    // now its supervisor removes it when the peer's run ends.
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--target",
        "node1",
        "--distribution",
        "mpi",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--detach",
        "--json",
        "--",
        "sleep",
        "600",
    ]);
    assert_exit(&out, 0);
    let job = out.json()["id"].as_str().unwrap().to_owned();
    let has_key = || {
        c.hosts[1]
            .exec(&format!("grep -c moor-mpi-job {keys_file} || true"))
            .trim()
            == "1"
    };
    crate::jobs::wait_for("the job's key on node 1", Duration::from_secs(60), has_key);
    c.hosts[1].exec("pkill -9 -f '[m]oor-agent mpi-peer'");
    crate::jobs::wait_for(
        "the job's key gone from node 1",
        Duration::from_secs(30),
        || !has_key(),
    );
    assert_eq!(
        c.hosts[1].exec(&format!("sha256sum < {keys_file}")),
        keys_before
    );
    // The job ends (its node 1 failed; the job link stops node 0): cancel
    // whatever is left.
    let _ = c.moor.run(&["cancel", &job]);
}
