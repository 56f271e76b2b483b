use std::collections::BTreeMap;

use super::build::default_name;
use super::{Content, Distribution, RunPlan, Serve};

fn plan(nodes: &[&str]) -> RunPlan {
    RunPlan {
        name: Some("train".into()),
        experiment: Some("lr-sweep".into()),
        command: vec!["python3".into(), "train.py".into()],
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        pool: None,
        job: nodes.len() > 1,
        source: Some(Content {
            sha256: "ab".repeat(32),
            size: 10,
        }),
        inputs: BTreeMap::from([(
            "data".into(),
            Content {
                sha256: "cd".repeat(32),
                size: 5,
            },
        )]),
        url_inputs: BTreeMap::new(),
        outputs: vec!["model".into()],
        env: None,
        variables: BTreeMap::from([("SEED".into(), "7".into())]),
        distribution: None,
        master_addr: None,
        gpus: 1,
        spark: None,
        serve: None,
    }
}

#[test]
fn a_plan_goes_through_json_and_back_unchanged() {
    let mut p = plan(&["a", "b"]);
    p.distribution = Some(Distribution::Pytorch {
        processes_per_node: 2,
    });
    p.serve = Some(Serve {
        name: "churn".into(),
        port: Some(5001),
        public: false,
        health_path: "/".into(),
        server: moor_proto::endpoint::Server::ScoringScript {
            script: "score.py".into(),
        },
        model: None,
    });
    let text = serde_json::to_string(&p).unwrap();
    let back: RunPlan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    assert!(text.contains(r#""distribution":{"type":"pytorch","processes_per_node":2}"#));
}

#[test]
fn every_node_gets_the_same_options_as_a_single_run() {
    let single = plan(&["a"]).node_spec(0);
    let job = plan(&["a", "b"]);
    for rank in 0..2 {
        let node = job.node_spec(rank);
        assert_eq!(node.name, single.name);
        assert_eq!(node.command, single.command);
        assert_eq!(node.env, single.env);
        assert_eq!(node.gpus, single.gpus);
        assert_eq!(node.experiment, single.experiment);
        assert_eq!(node.snapshot, single.snapshot);
        assert_eq!(node.inputs, single.inputs);
        assert_eq!(node.outputs, single.outputs);
    }
}

#[test]
fn torch_style_processes_are_numbered_across_nodes() {
    let mut p = plan(&["a", "b", "c"]);
    p.distribution = Some(Distribution::Pytorch {
        processes_per_node: 4,
    });
    let p2 = p.node_spec(2).processes.unwrap();
    assert_eq!((p2.count, p2.first_rank, p2.world_size), (4, 8, 12));
    p.distribution = Some(Distribution::Mpi {
        processes_per_node: 4,
    });
    assert!(p.node_spec(1).processes.is_none());
}

#[test]
fn a_plan_sends_its_content_to_every_node() {
    assert_eq!(plan(&["a", "b"]).bytes(), 30);
    assert_eq!(plan(&["a"]).contents().count(), 2);
}

fn name(argv: &[&str]) -> Option<String> {
    default_name(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn a_run_is_named_after_its_script_or_program() {
    assert_eq!(name(&["python3", "train.py"]).as_deref(), Some("train"));
    assert_eq!(
        name(&["python3", "-u", "src/fit.py", "--lr", "3"]).as_deref(),
        Some("fit")
    );
    assert_eq!(
        name(&["/usr/bin/python3.11", "x/eval.py"]).as_deref(),
        Some("eval")
    );
    assert_eq!(name(&["bash", "-x", "prep.sh"]).as_deref(), Some("prep"));
    assert_eq!(name(&["sh", "-c", "echo hi"]).as_deref(), Some("sh"));
    assert_eq!(name(&["nvidia-smi"]).as_deref(), Some("nvidia-smi"));
    assert_eq!(name(&["./train.sh"]).as_deref(), Some("train"));
    assert_eq!(name(&[]), None);
}
