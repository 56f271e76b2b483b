//! The GPU queue on a real test host with an inventory of two GPUs given
//! through the documented setting (`~/.moor/gpus`: this machine has no
//! GPU): three runs asking one GPU each, the third queued until one ends,
//! distinct `CUDA_VISIBLE_DEVICES`; a run asking none starts at once; one
//! asking more than the host has fails with the reason.

use std::time::{Duration, Instant};

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn runs_asking_for_gpus_queue_until_enough_are_free() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("gpubox", &[]), 0);
    f.host.exec("mkdir -p /home/moor/.moor && printf '0\\n1\\n' > /home/moor/.moor/gpus && chown -R moor /home/moor/.moor");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("hold.sh"),
        "echo \"gpus=$CUDA_VISIBLE_DEVICES\"\nwhile [ ! -e /tmp/go-$1 ]; do sleep 0.1; done\n",
    )
    .unwrap();
    let dir = src.path().to_str().unwrap();
    let start = |name: &str, gpus: &str| -> String {
        let out = f.moor.run(&[
            "run",
            "--target",
            "gpubox",
            "--source-dir",
            dir,
            "--gpus",
            gpus,
            "--detach",
            "--json",
            "--",
            "sh",
            "hold.sh",
            name,
        ]);
        assert_exit(&out, 0);
        out.json()["id"].as_str().unwrap().to_owned()
    };
    let state = |id: &str| -> String {
        let runs = f.moor.run(&["runs", "--json"]).json();
        let run = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap();
        run["state"].as_str().unwrap().to_owned()
    };
    let wait = |id: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while state(id) != want {
            assert!(Instant::now() < deadline, "run {id} never {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let log = |id: &str| f.moor.run(&["logs", id]).stdout;
    let a = start("a", "1");
    let b = start("b", "1");
    wait(&a, "running");
    wait(&b, "running");
    let c = start("c", "1");
    // No GPU asked: starts at once, whatever the GPUs' use.
    let d = start("d", "0");
    wait(&d, "running");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&c), "queued", "the third waits for a GPU");
    let (ga, gb) = (log(&a), log(&b));
    assert!(
        ga.starts_with("gpus=") && gb.starts_with("gpus="),
        "{ga} {gb}"
    );
    assert_ne!(ga, gb, "two runs got the same GPU");
    f.host.exec("touch /tmp/go-a");
    wait(&c, "running");
    assert_eq!(log(&c), ga, "the third got the GPU the first gave back");
    f.host.exec("touch /tmp/go-b /tmp/go-c /tmp/go-d");
    for id in [&a, &b, &c, &d] {
        wait(id, "succeeded");
    }
    assert_eq!(log(&d), "gpus=\n");
    // More than the host has: fails, saying why.
    let out = f.moor.run(&[
        "run",
        "--target",
        "gpubox",
        "--source-dir",
        dir,
        "--gpus",
        "3",
        "--",
        "true",
    ]);
    assert_exit(&out, 127);
    assert!(
        out.stderr
            .contains("asks for 3 GPU(s); this host has 2 (~/.moor/gpus)"),
        "{}",
        out.stderr
    );
}
