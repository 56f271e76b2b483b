//! The job link on real test hosts: the nodes of a detached job, with no
//! moor following it, stop one another. A node whose command dies stops
//! the others (through node 0); a node 0 that falls silent (its container
//! frozen: no packet, no FIN) is left by the others after the silence
//! limit. Node 0's link listens only on the nodes' address, and 100 idle
//! connections to it stop nothing.

use std::time::Duration;

use moor_tests::{docker_or_skip, source_dir as src, Cluster, HostSpec};

use crate::jobs::{job_row, running, start_napping, wait_for};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn the_nodes_of_a_detached_job_stop_one_another() {
    if !docker_or_skip() {
        return;
    }
    let c = Cluster::new(MOOR, 3, HostSpec::default());
    let moor = &c.moor;
    let sleeper = src(&[("nap.sh", "sleep 600\n")]);
    let dir = sleeper.path().to_str().unwrap();
    let all_running = || (0..3).all(|i| running(&c.hosts[i], "[s]leep 600"));

    // Node 2's command is killed: nodes 0 and 1 stop, nobody following.
    let id = start_napping(moor, &["node0", "node1", "node2"], dir);
    wait_for("every node running", Duration::from_secs(30), all_running);
    // Node 0's link listens only on the address the nodes use, and a flood
    // of idle connections (issue 33: 30 stopped a healthy job) is let go
    // while every node runs on.
    let listening = c.hosts[0].exec("ss -ltnH");
    let ip = &c.hosts[0].ip;
    let locals: Vec<&str> = listening
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    let port = locals
        .iter()
        .find_map(|a| a.strip_prefix(&format!("{ip}:")))
        .unwrap_or_else(|| panic!("no link on {ip}: {listening}"));
    // Only sshd listens on every address.
    assert!(
        locals.iter().all(|a| a.starts_with(&format!("{ip}:"))
            || a.starts_with("127.")
            || a.ends_with(":22")),
        "{listening}"
    );
    c.hosts[2].exec(&format!(
        "python3 -c 'import socket,time; s=[socket.create_connection((\"{ip}\", {port})) for _ in range(100)]; time.sleep(6)'"
    ));
    assert!(all_running(), "the flood stopped the job");
    c.hosts[2].exec("pkill -9 -f '[s]leep 600'");
    wait_for("nodes 0 and 1 stopped", Duration::from_secs(20), || {
        !running(&c.hosts[0], "[s]leep 600") && !running(&c.hosts[1], "[s]leep 600")
    });
    wait_for("the job's end recorded", Duration::from_secs(20), || {
        job_row(moor, &id)["state"] == "failed"
    });
    let row = job_row(moor, &id);
    assert_eq!(row["nodes"][0]["state"], "cancelled", "{row}");
    assert_eq!(row["nodes"][1]["state"], "cancelled", "{row}");
    let log = moor.run(&["logs", &id, "--node", "1"]);
    assert!(
        log.stdout
            .contains("node 2 ended without success (exit 137); stopping this node"),
        "{}",
        log.stdout
    );

    // Node 0 falls silent: nodes 1 and 2 leave it after the silence limit.
    let id = start_napping(moor, &["node0", "node1", "node2"], dir);
    wait_for("every node running", Duration::from_secs(30), all_running);
    c.hosts[0].pause();
    let left = std::panic::catch_unwind(|| {
        wait_for("nodes 1 and 2 stopped", Duration::from_secs(45), || {
            !running(&c.hosts[1], "[s]leep 600") && !running(&c.hosts[2], "[s]leep 600")
        })
    });
    c.hosts[0].unpause();
    left.unwrap();
    let log = moor.run(&["logs", &id, "--node", "2"]);
    assert!(
        log.stdout
            .contains("node 0 is gone (silent for 15 s); stopping this node"),
        "{}",
        log.stdout
    );
    // Node 0, awake again, hears that its nodes are gone and stops too.
    wait_for("node 0 stopped", Duration::from_secs(30), || {
        !running(&c.hosts[0], "[s]leep 600")
    });
    wait_for("the job's end recorded", Duration::from_secs(20), || {
        job_row(moor, &id)["state"]
            .as_str()
            .is_some_and(|s| s != "running")
    });
}
