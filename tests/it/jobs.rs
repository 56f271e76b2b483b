//! Jobs on several real test hosts (the plain image): pools, a command on
//! several targets as one job (node variables, one row in `moor runs`,
//! merged logs, `--node`, cancel of every node, `node-N/` downloads), the
//! gang start (a node that cannot take its run: nothing runs anywhere), and
//! Azure ML job files (environment variables, inputs, outputs, `--set`,
//! data sent once).

use std::time::{Duration, Instant};

use moor_tests::{
    assert_exit, docker_or_skip, source_dir as src, Cluster, HostSpec, Moor, TestHost,
};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

pub(crate) fn job_row(moor: &Moor, id: &str) -> serde_json::Value {
    let runs = moor.run(&["runs", "--json"]);
    assert_exit(&runs, 0);
    runs.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no row {id} in {}", runs.stdout))
}

pub(crate) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `sh nap.sh` (from `dir`) on `targets` as one detached job; its id.
pub(crate) fn start_napping(moor: &Moor, targets: &[&str], dir: &str) -> String {
    let mut args = vec!["run"];
    for target in targets {
        args.extend(["--target", target]);
    }
    args.extend([
        "--source-dir",
        dir,
        "--detach",
        "--json",
        "--",
        "sh",
        "nap.sh",
    ]);
    let out = moor.run(&args);
    assert_exit(&out, 0);
    out.json()["id"].as_str().unwrap().to_owned()
}

/// Whether a process whose command line matches `pattern` runs on `host`
/// (written so that it does not match this check's own command line, e.g.
/// `[n]ap.sh`).
pub(crate) fn running(host: &TestHost, pattern: &str) -> bool {
    let out = host.exec(&format!(
        "pgrep -f -- '{pattern}' >/dev/null && echo yes || echo no"
    ));
    out.trim() == "yes"
}

#[test]
fn pools_and_a_command_on_several_targets_as_one_job() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 3, HostSpec::default());
    let moor = &c.moor;
    // Pools: create, list, show, delete; names checked.
    let created = moor.run(&[
        "pool", "create", "trio", "--target", "node0", "--target", "node1", "--target", "node2",
        "--json",
    ]);
    assert_exit(&created, 0);
    assert_eq!(created.json()["targets"][2], "node2");
    assert_exit(
        &moor.run(&["pool", "create", "node0", "--target", "node1"]),
        2,
    );
    let twice = moor.run(&[
        "pool", "create", "dup", "--target", "node1", "--target", "node1",
    ]);
    assert_exit(&twice, 2);
    assert!(twice.stderr.contains("named twice"), "{}", twice.stderr);
    assert_exit(
        &moor.run(&["pool", "create", "ghost", "--target", "nope"]),
        2,
    );
    let listed = moor.run(&["pool", "list", "--json"]);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    assert!(moor
        .run(&["pool", "show", "trio"])
        .stdout
        .contains("node 1: node1"));

    // One command on two nodes of the pool: each node has its variables.
    let code = src(&[(
        "who.sh",
        "echo \"rank=$MOOR_NODE_RANK of $MOOR_NUM_NODES master=$MOOR_MASTER_ADDR job=$MOOR_JOB_ID\"\n\
         printf '%s\\n' \"$MOOR_NODE_IPS\" > \"$MOOR_OUTPUT_DIR/ips\"\n\
         echo $MOOR_NODE_RANK > \"$MOOR_OUTPUT_DIR/rank\"\n",
    )]);
    let dir = code.path().to_str().unwrap();
    let out = moor.run(&[
        "run",
        "--pool",
        "trio",
        "--nodes",
        "2",
        "--source-dir",
        dir,
        "--json",
        "--",
        "sh",
        "who.sh",
    ]);
    assert_exit(&out, 0);
    let row = out.json();
    let id = row["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with('j'), "{row}");
    assert_eq!(row["state"], "succeeded");
    assert_eq!(row["target"], "trio");
    assert_eq!(row["nodes"].as_array().unwrap().len(), 2);
    let ips = [&c.hosts[0].ip, &c.hosts[1].ip];
    // The log is merged, each line after its node's prefix (stderr: --json).
    assert!(
        out.stderr
            .contains(&format!("[node 0] rank=0 of 2 master={} job={id}", ips[0])),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("[node 1] rank=1 of 2 master={}", ips[0])),
        "{}",
        out.stderr
    );
    // One row in `moor runs`, the nodes in its JSON; --node shows one log.
    let listed = job_row(moor, &id);
    assert_eq!(listed["nodes"][1]["target"], "node1");
    let all = moor.run(&["runs", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    let one = moor.run(&["logs", &id, "--node", "1"]);
    assert_exit(&one, 0);
    assert!(one.stdout.starts_with("rank=1 of 2"), "{}", one.stdout);
    // Each node's outputs in node-N/.
    let to = tempfile::tempdir().unwrap();
    let got = moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]);
    assert_exit(&got, 0);
    for rank in 0..2 {
        let node = to.path().join(format!("node-{rank}"));
        assert_eq!(
            std::fs::read_to_string(node.join("rank")).unwrap().trim(),
            rank.to_string()
        );
        let listed = std::fs::read_to_string(node.join("ips")).unwrap();
        assert_eq!(listed.lines().collect::<Vec<_>>(), ips, "MOOR_NODE_IPS");
    }

    // --target a --target b, detached; cancel stops every node.
    let sleeper = src(&[("nap.sh", "sleep 300\n")]);
    let dir = sleeper.path().to_str().unwrap();
    let id = start_napping(moor, &["node1", "node2"], dir);
    wait_for("both nodes running", Duration::from_secs(30), || {
        running(&c.hosts[1], "[n]ap.sh") && running(&c.hosts[2], "[n]ap.sh")
    });
    assert_eq!(job_row(moor, &id)["state"], "running");
    let cancelled = moor.run(&["cancel", &id, "--grace", "1", "--json"]);
    assert_exit(&cancelled, 0);
    assert_eq!(cancelled.json()["state"], "cancelled");
    assert!(!running(&c.hosts[1], "[n]ap.sh") && !running(&c.hosts[2], "[n]ap.sh"));

    // Asking for more nodes than the pool has is refused before anything.
    let more = moor.run(&["run", "--pool", "trio", "--nodes", "4", "--", "true"]);
    assert_exit(&more, 2);
    assert!(more.stderr.contains("pool trio has 3"), "{}", more.stderr);
    assert_exit(&moor.run(&["pool", "delete", "trio"]), 0);
    assert_exit(&moor.run(&["pool", "delete", "trio"]), 2);
}

#[test]
fn a_node_that_cannot_take_its_run_leaves_every_node_idle() {
    if !docker_or_skip() {
        return;
    }
    // Node 1's run folder fills at once: its run cannot be set up.
    let full = HostSpec {
        moor_tmpfs: &[("runs", "1m")],
        ..HostSpec::default()
    };
    let c = Cluster::of(MOOR, &[HostSpec::default(), full]);
    let code = src(&[("go.sh", "touch /tmp/moor-ran\n")]);
    let mut noise = vec![0u8; 3 << 20];
    for (i, b) in noise.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    std::fs::write(code.path().join("noise.bin"), noise).unwrap();
    let out = c.moor.run(&[
        "run",
        "--target",
        "node0",
        "--target",
        "node1",
        "--source-dir",
        code.path().to_str().unwrap(),
        "--",
        "sh",
        "go.sh",
    ]);
    assert_exit(&out, 8);
    assert!(
        out.stderr
            .contains("node 1 (node1) could not start its part"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr.trim());
    // Node 0 took its run held, and it was cancelled before it started.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        c.hosts[0]
            .exec("test -e /tmp/moor-ran && echo ran || echo idle")
            .trim(),
        "idle"
    );
}

#[test]
fn azure_ml_job_files_with_inputs_outputs_and_variables() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    let moor = &c.moor;
    let dir = src(&[
        (
            "hello.yml",
            "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
             command: 'echo $HELLO && echo \"greeting: ${{inputs.greeting}}\"'\n\
             environment_variables:\n  HELLO: hello world\n\
             inputs:\n  greeting: it's me\n\
             compute: azureml:node0\n\
             display_name: hello-job\n\
             experiment_name: greetings\n\
             resources:\n  shm_size: 2g\n",
        ),
        (
            "count.yml",
            "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
             code: src\n\
             command: >-\n  python3 count.py --data ${{inputs.rows}} --words ${{inputs.words}}\n  --min ${{inputs.min}} --out ${{outputs.report}}\n\
             inputs:\n  rows:\n    type: uri_file\n    path: ./data/rows.csv\n  words:\n    type: uri_folder\n    path: ./data/words\n  min: 2\n\
             outputs:\n  report:\n    type: uri_folder\n\
             compute: node0\n",
        ),
        (
            "src/count.py",
            "import argparse, os\n\
             p = argparse.ArgumentParser()\n\
             p.add_argument('--data'); p.add_argument('--words'); p.add_argument('--min', type=int); p.add_argument('--out')\n\
             a = p.parse_args()\n\
             rows = [l for l in open(a.data) if l.strip()]\n\
             words = sorted(os.listdir(a.words))\n\
             open(os.path.join(a.out, 'report.txt'), 'w').write(f'{len(rows)} rows, words {words}, min {a.min}\\n')\n\
             print('counted', len(rows))\n",
        ),
        ("data/rows.csv", "a,1\nb,2\nc,3\n"),
        ("data/words/one.txt", "1"),
        ("data/words/two.txt", "2"),
        ("src/stale.yml", "ignored: by the command\n"),
    ]);
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // The variables and a literal input (quoted: the value has a quote).
    let out = moor.run(&["job", "submit", &file("hello.yml"), "--json"]);
    assert_exit(&out, 0);
    assert!(out.stderr.contains("hello world"), "{}", out.stderr);
    assert!(out.stderr.contains("greeting: it's me"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("hello.yml:11: resources.shm_size is not something moor uses"),
        "{}",
        out.stderr
    );
    let row = out.json();
    assert_eq!(row["name"], "hello-job");
    assert_eq!(row["experiment"], "greetings");
    // --set overrides; `moor run -f` is the same.
    let out = moor.run(&[
        "run",
        "-f",
        &file("hello.yml"),
        "--set",
        "inputs.greeting=bye",
        "--set",
        "environment_variables.HELLO=hej",
    ]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("hej\ngreeting: bye"), "{}", out.stdout);
    let only = moor
        .run(&["runs", "--experiment", "greetings", "--json"])
        .json();
    assert_eq!(only.as_array().unwrap().len(), 2, "{only}");

    // Inputs (a file, a folder), an output folder, downloaded with the job.
    let out = moor.run(&["job", "submit", &file("count.yml"), "--detach", "--json"]);
    assert_exit(&out, 0);
    let first = out.json();
    assert!(first["snapshot_bytes_sent"].as_u64().unwrap() > 0);
    let id = first["id"].as_str().unwrap().to_owned();
    let followed = moor.run(&["logs", &id, "--follow"]);
    assert_exit(&followed, 0);
    assert!(followed.stdout.contains("counted 3"), "{}", followed.stdout);
    let to = tempfile::tempdir().unwrap();
    assert_exit(
        &moor.run(&["download", &id, "--to", to.path().to_str().unwrap()]),
        0,
    );
    let report = std::fs::read_to_string(to.path().join("node-0/report/report.txt")).unwrap();
    assert_eq!(report, "3 rows, words ['one.txt', 'two.txt'], min 2\n");
    // Unchanged code and data are not sent again.
    let again = moor.run(&[
        "job",
        "submit",
        &file("count.yml"),
        "--detach",
        "--json",
        "--set",
        "inputs.min=5",
    ]);
    assert_exit(&again, 0);
    assert_eq!(again.json()["snapshot_bytes_sent"], 0, "{}", again.stdout);

    // What moor cannot read is exit 2 with the file and line.
    std::fs::write(
        dir.path().join("bad.yml"),
        "command: echo\ninputs:\n  x:\n    type: mltable\n    path: azureml:data:1\n",
    )
    .unwrap();
    let bad = moor.run(&["job", "submit", &file("bad.yml")]);
    assert_exit(&bad, 2);
    assert!(bad.stderr.contains("bad.yml:"), "{}", bad.stderr);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn url_inputs_are_downloaded_on_the_host_once() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 1, HostSpec::default());
    // An HTTP server on the test network (another host).
    let web = TestHost::start_on(&c.network, &HostSpec::default());
    web.exec(
        "mkdir -p /srv/data && printf 'a,1\\nb,2\\nc,3\\n' > /srv/data/rows.csv && \\
         (cd /srv && nohup python3 -m http.server 8000 > /srv/access.log 2>&1 &)",
    );
    let url = format!("http://{}:8000/data/rows.csv", web.ip);
    let up = format!(
        "python3 -c \"import urllib.request; urllib.request.urlopen('http://{}:8000/')\" 2>/dev/null && echo up || true",
        web.ip
    );
    wait_for("the HTTP server", Duration::from_secs(20), || {
        c.hosts[0].exec(&up).contains("up")
    });
    let dir = src(&[(
        "fetch.yml",
        &format!(
            "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n\
             command: wc -l < ${{{{inputs.remote}}}} && tail -n 1 ${{{{inputs.remote}}}}\n\
             inputs:\n  remote:\n    type: uri_file\n    path: {url}\n\
             compute: node0\n"
        ),
    )]);
    let file = dir.path().join("fetch.yml");
    let file = file.to_str().unwrap();
    let gets = || {
        web.exec("grep -c 'GET /data/rows.csv' /srv/access.log || true")
            .trim()
            .to_owned()
    };
    for _ in 0..2 {
        let out = c.moor.run(&["job", "submit", file]);
        assert_exit(&out, 0);
        assert!(
            out.stdout.contains(&format!("moor: input remote: {url}")),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("3\nc,3\n"), "{}", out.stdout);
    }
    assert_eq!(
        gets(),
        "1",
        "downloaded once, then taken from the host's cache"
    );
    // A URL that does not answer: the job fails saying which and why.
    let out = c.moor.run(&[
        "job",
        "submit",
        file,
        "--set",
        &format!("inputs.remote.path=http://{}:8000/nope.csv", web.ip),
    ]);
    assert_exit(&out, 127);
    assert!(
        out.stderr.contains("cannot download http://"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}
