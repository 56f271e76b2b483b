//! Environments against real test hosts and the real Docker engine: a conda
//! environment solved and installed by the agent from a local channel of
//! real `.conda` packages (no conda on the host), a pip venv from a
//! wheelhouse of real wheels training a real model, a Docker image built
//! through the Engine API and a run in it (its MLflow endpoint carried into
//! the container), and the failures: a missing
//! package, a broken Dockerfile, no engine, no access to it, a full disk.

use std::path::Path;
use std::time::{Duration, Instant};

use moor_tests::packages::{conda_channel, wheelhouse, SKLEARN_REQUIREMENTS};
use moor_tests::{assert_exit, docker_or_skip, image, Fixture, HostSpec, ImageGuard, Moor, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

/// MLflow's REST calls as its client makes them, from a container: a batch
/// of 20 points, then an artifact written where the run says.
const TRACK: &str = r#"import json, os, urllib.parse, urllib.request
base = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/"
headers = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "Content-Type": "application/json"}
run = os.environ["MLFLOW_RUN_ID"]
body = {"run_id": run, "metrics": [{"key": "loss", "value": 1 / (s + 1), "step": s, "timestamp": 1} for s in range(20)]}
urllib.request.urlopen(urllib.request.Request(base + "runs/log-batch", json.dumps(body).encode(), headers, method="POST"), timeout=10).read()
got = json.load(urllib.request.urlopen(urllib.request.Request(base + "runs/get?run_id=" + run, headers=headers), timeout=10))
uri = got["run"]["info"]["artifact_uri"]
print("artifacts at", uri, flush=True)
path = urllib.parse.unquote(urllib.parse.urlparse(uri).path)
os.makedirs(path, exist_ok=True)
open(os.path.join(path, "note.txt"), "w").write("from the container\n")
"#;

/// An attached host, a scratch directory, and helpers.
struct Env {
    f: Fixture,
    dir: tempfile::TempDir,
}

fn attached(spec: HostSpec) -> Env {
    let f = Fixture::new(MOOR, spec);
    assert_exit(&f.attach("box", &[]), 0);
    Env {
        f,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn moor(&self) -> &Moor {
        &self.f.moor
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn channel(&self) -> String {
        let dir = self.dir.path().join("channel");
        std::fs::create_dir_all(&dir).unwrap();
        conda_channel(&dir);
        dir.to_str().unwrap().to_owned()
    }

    fn create(&self, name: &str, flags: &[&str]) {
        let out = self
            .moor()
            .run(&[&["env", "create", name, "--json"][..], flags].concat());
        assert_exit(&out, 0);
    }

    fn prepare(&self, name: &str, flags: &[&str]) -> Output {
        self.moor().run(
            &[
                &["env", "prepare", name, "--target", "box", "--json"][..],
                flags,
            ]
            .concat(),
        )
    }

    fn run_in(&self, env: &str, command: &[&str]) -> Output {
        let src = self.path("src");
        std::fs::create_dir_all(&src).unwrap();
        self.moor().run(
            &[
                &["run", "--target", "box", "--env", env, "--source-dir", &src][..],
                &["--"],
                command,
            ]
            .concat(),
        )
    }

    /// Whether `hash`'s ready marker exists on the host.
    fn ready_on_host(&self, hash: &str) -> bool {
        self.f
            .host
            .read_file(&format!("/home/moor/.moor/envs/{hash}/ready.json"))
            .is_some()
    }

    fn hash(&self, env: &str) -> String {
        let out = self.moor().run(&["env", "show", env, "--json"]);
        assert_exit(&out, 0);
        out.json()["hash"].as_str().unwrap().to_owned()
    }
}

fn conda_yml(deps: &[&str]) -> String {
    let deps: String = deps.iter().map(|d| format!("  - {d}\n")).collect();
    format!("name: hello\nchannels:\n  - conda-forge\ndependencies:\n{deps}")
}

#[test]
fn conda_env_is_built_by_the_agent_from_a_local_channel_once() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let e = attached(HostSpec::default());
    let (code, _) =
        e.f.host
            .exec_as_user(&["sh", "-c", "command -v conda mamba micromamba"], b"");
    assert_ne!(code, 0, "the test host must have no conda");
    let channel = e.channel();
    let yml = e.write("environment.yml", &conda_yml(&["moor-hello"]));
    e.create("hello", &["--conda-file", &yml]);
    let hash = e.hash("hello");

    // Two prepares at once build it once.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            e.moor().spawn(&[
                "env",
                "prepare",
                "hello",
                "--target",
                "box",
                "--json",
                "--channel-dir",
                &channel,
            ])
        })
        .collect();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs = e.moor().run(&["runs", "--target", "box", "--json"]);
    assert_exit(&runs, 0);
    let builds = runs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("env-build"))
        })
        .count();
    assert_eq!(builds, 1, "two prepares started {builds} builds");
    assert!(e.ready_on_host(&hash));

    // A cache hit: no build, reported as cached.
    let again = e.prepare("hello", &["--channel-dir", &channel]);
    assert_exit(&again, 0);
    assert_eq!(again.json()["cached"], true, "{}", again.stdout);
    assert_eq!(again.json()["state"], "ready");

    // The run uses the environment's tools; the prefix placeholder was
    // replaced by the real prefix; the solver took the newest moor-hello.
    let out = e.run_in("hello", &["moor-hello"]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("moor-hello 1.2"), "{}", out.stdout);
    let prefix = format!("installed in /home/moor/.moor/envs/{hash}/prefix");
    assert!(out.stdout.contains(&prefix), "{}", out.stdout);
    assert!(
        !out.stderr.contains("building environment"),
        "a second run rebuilt: {}",
        out.stderr
    );

    // A missing package: exit 9, a one-line error naming it, nothing ready.
    let yml = e.write(
        "missing.yml",
        &conda_yml(&["moor-hello", "no-such-package >=1"]),
    );
    e.create("missing", &["--conda-file", &yml]);
    let out = e.prepare("missing", &["--channel-dir", &channel]);
    assert_exit(&out, 9);
    let error = &out.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no-such-package"),
        "{error}"
    );
    assert!(!e.ready_on_host(&e.hash("missing")));

    // Asked to use the host's conda on a host that has none: exit 9 with
    // the fix, nothing ready.
    let yml = e.write("host.yml", &conda_yml(&["moor-data"]));
    e.create("hostconda", &["--conda-file", &yml]);
    let out = e.prepare(
        "hostconda",
        &["--channel-dir", &channel, "--use-host-conda"],
    );
    assert_exit(&out, 9);
    let error = &out.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no micromamba, mamba or conda on the host"),
        "{error}"
    );
    assert!(
        error["fix"]
            .as_str()
            .unwrap()
            .contains("drop --use-host-conda"),
        "{error}"
    );
    assert!(!e.ready_on_host(&e.hash("hostconda")));

    // Prune keeps what a live run uses (saying why) and removes the rest;
    // once the run ends, that one goes too.
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let started = e.moor().run(&[
        "run",
        "--target",
        "box",
        "--env",
        "hello",
        "--source-dir",
        &src,
        "--detach",
        "--json",
        "--",
        "sleep",
        "300",
    ]);
    assert_exit(&started, 0);
    let id = started.json()["id"].as_str().unwrap().to_owned();
    // Builds of defined environments are kept; undefined ones go.
    let gone: Vec<String> = ["missing", "hostconda"].iter().map(|n| e.hash(n)).collect();
    for name in ["missing", "hostconda"] {
        assert_exit(&e.moor().run(&["env", "delete", name]), 0);
    }
    let out = e.moor().run(&["env", "prune", "--target", "box", "--json"]);
    assert_exit(&out, 0);
    let pruned = out.json();
    assert_eq!(pruned["kept"][0][0], hash.as_str(), "{pruned}");
    let why = pruned["kept"][0][1].as_str().unwrap();
    assert!(why.starts_with("defined as hello:1"), "{pruned}");
    let removed = pruned["removed"].as_array().unwrap();
    for hash in &gone {
        assert!(removed.contains(&hash.as_str().into()), "{hash}: {pruned}");
    }
    // --all: only what a live run uses is kept.
    let out = e
        .moor()
        .run(&["env", "prune", "--target", "box", "--all", "--json"]);
    assert_exit(&out, 0);
    let pruned = out.json();
    let kept = pruned["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{pruned}");
    assert_eq!(kept[0][0], hash.as_str());
    assert!(
        kept[0][1]
            .as_str()
            .unwrap()
            .contains("run(s) use the environment"),
        "{pruned}"
    );
    assert!(e.ready_on_host(&hash));
    assert_exit(&e.moor().run(&["cancel", &id, "--grace", "1"]), 0);
    let out = e
        .moor()
        .run(&["env", "prune", "--target", "box", "--all", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["removed"], serde_json::json!([hash]));
    assert!(!e.ready_on_host(&hash));
}

#[test]
fn pip_env_from_a_wheelhouse_trains_a_model_and_an_interrupted_build_is_not_ready() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let e = attached(HostSpec::default());
    let wheels = wheelhouse().to_str().unwrap().to_owned();
    let reqs = e.write("requirements.txt", SKLEARN_REQUIREMENTS);
    e.create("sk", &["--pip-requirements", &reqs]);
    let hash = e.hash("sk");

    // Interrupt the first build (cancel kills its process group), mid-install.
    let mut first = e.moor().spawn(&[
        "env",
        "prepare",
        "sk",
        "--target",
        "box",
        "--wheelhouse",
        &wheels,
    ]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let build = loop {
        let runs = e.moor().run(&["runs", "--target", "box", "--json"]);
        let found = runs.json().as_array().unwrap().iter().find_map(|r| {
            (r["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("env-build"))
                && r["state"] == "running")
                .then(|| r["id"].as_str().unwrap().to_owned())
        });
        if let Some(id) = found {
            break id;
        }
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(3));
    assert_exit(&e.moor().run(&["cancel", &build, "--grace", "1"]), 0);
    let status = first.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(9),
        "an interrupted build fails the prepare"
    );
    assert!(!e.ready_on_host(&hash), "an interrupted build looks ready");

    // The retry completes it.
    let out = e.prepare("sk", &["--wheelhouse", &wheels]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["cached"], false);
    assert!(e.ready_on_host(&hash));

    // Logistic regression on the iris data that ships with scikit-learn.
    e.write(
        "src/train.py",
        "import json, os, sys\n\
         from sklearn.datasets import load_iris\n\
         from sklearn.linear_model import LogisticRegression\n\
         from sklearn.model_selection import train_test_split\n\
         X, y = load_iris(return_X_y=True)\n\
         Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)\n\
         model = LogisticRegression(max_iter=1000).fit(Xtr, ytr)\n\
         acc = model.score(Xte, yte)\n\
         print(f'python {sys.prefix} accuracy {acc:.3f}')\n\
         with open(os.path.join(os.environ['MOOR_OUTPUT_DIR'], 'metrics.json'), 'w') as f:\n\
         \x20   json.dump({'accuracy': acc}, f)\n",
    );
    let out = e.run_in("sk", &["python", "train.py"]);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains(&format!("envs/{hash}/prefix")),
        "{}",
        out.stdout
    );
    let run_id = run_id_of(&out);
    let metrics = e.moor().download_json(&run_id, "metrics.json");
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.9, "accuracy {accuracy}");

    // A package the wheelhouse lacks: exit 9 with pip's last lines.
    let bad = e.write("bad.txt", "moor-no-such-package==1.0\n");
    e.create("bad", &["--pip-requirements", &bad]);
    let out = e.prepare("bad", &["--wheelhouse", &wheels]);
    assert_exit(&out, 9);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("moor-no-such-package"), "{message}");
    assert!(!message.contains('\n'));
    assert!(!e.ready_on_host(&e.hash("bad")));
}

#[test]
fn a_full_disk_fails_the_build_and_leaves_nothing_ready() {
    if !docker_or_skip() {
        return;
    }
    // Room for the wheelhouse, not for numpy and scipy installed.
    let e = attached(HostSpec {
        moor_tmpfs: &[("envs", "100m")],
        ..HostSpec::default()
    });
    let wheels = wheelhouse().to_str().unwrap().to_owned();
    let reqs = e.write("requirements.txt", SKLEARN_REQUIREMENTS);
    e.create("sk", &["--pip-requirements", &reqs]);
    let out = e.prepare("sk", &["--wheelhouse", &wheels]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("No space left") || message.contains("space"),
        "{message}"
    );
    assert!(!e.ready_on_host(&e.hash("sk")));
}

#[test]
fn docker_env_is_built_through_the_engine_api_and_runs_in_a_container() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let e = attached(HostSpec {
        docker_socket: Some(true),
        ..HostSpec::default()
    });
    let channel = e.channel();
    let nonce = format!("{}-{}", std::process::id(), e.dir.path().display());
    let dockerfile = e.write(
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo 'built {nonce}' > /etc/moor-marker\n",
            image()
        ),
    );
    let yml = e.write("environment.yml", &conda_yml(&["moor-hello"]));
    e.create("img", &["--dockerfile", &dockerfile, "--conda-file", &yml]);
    let hash = e.hash("img");
    let tag = moor_proto::env::image_tag(&hash);
    let _cleanup = ImageGuard(tag.clone());
    let out = e.prepare("img", &["--channel-dir", &channel]);
    assert_exit(&out, 0);
    assert_eq!(out.json()["image"], tag.as_str());
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "no image {tag}");

    // In the container: the image's file, the conda layer's tool, the
    // source in /moor/src, outputs copied back, the exit code kept.
    e.write("src/data.txt", "from the snapshot\n");
    let out = e.run_in(
        "img",
        &[
            "sh",
            "-c",
            "cat /etc/moor-marker; moor-hello; cat data.txt; pwd; cd $MOOR_OUTPUT_DIR; \
             echo result > r.txt; ln -s r.txt latest; ln -s /etc/passwd passwd; \
             ln -s ../../../.. up; exit 7",
        ],
    );
    assert_exit(&out, 7);
    for want in [
        &format!("built {nonce}")[..],
        "moor-hello 1.2",
        "from the snapshot",
        "/moor/src",
        // No link from the container leads out of the run's outputs.
        "moor: left out outputs/passwd: a link to /etc/passwd (outside the folder)",
        "moor: left out outputs/up: a link to ../../../.. (outside the folder)",
    ] {
        assert!(
            out.stdout.contains(want),
            "{want:?} missing from {}",
            out.stdout
        );
    }
    let run_id = run_id_of(&out);
    let to = e.path("out");
    assert_exit(&e.moor().run(&["download", &run_id, "--to", &to]), 0);
    assert_eq!(
        std::fs::read_to_string(Path::new(&to).join("r.txt")).unwrap(),
        "result\n"
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(&to).join("latest")).unwrap(),
        "result\n"
    );
    assert!(!Path::new(&to).join("passwd").exists());
    assert!(!Path::new(&to).join("up").exists());

    // MLflow in the container: the run's endpoint is carried in (its
    // points reach `moor metrics`), and the artifact URI it gives is the
    // container's outputs, copied back with them.
    e.write("src/track.py", TRACK);
    let out = e.run_in("img", &["python3", "track.py"]);
    assert_exit(&out, 0);
    assert!(
        out.stdout
            .contains("artifacts at file:///moor/outputs/mlflow/"),
        "{}",
        out.stdout
    );
    let tracked = run_id_of(&out);
    let metrics = e.moor().run(&["metrics", &tracked, "--json"]);
    assert_exit(&metrics, 0);
    let points = metrics.json()["points"].as_array().unwrap().len();
    assert_eq!(points, 20, "{}", metrics.stdout);
    let to = e.path("tracked");
    assert_exit(&e.moor().run(&["download", &tracked, "--to", &to]), 0);
    let note = Path::new(&to).join(format!("mlflow/{tracked}/artifacts/note.txt"));
    assert_eq!(
        std::fs::read_to_string(note).unwrap(),
        "from the container\n"
    );

    // An Azure ML job file in this environment: its file input and its
    // output folder are in the container too.
    e.write("job/in.txt", "job input\n");
    let job = e.write(
        "job/job.yml",
        "command: cat ${{inputs.data}} > ${{outputs.model}}/copy.txt\n\
         inputs:\n  data:\n    type: uri_file\n    path: in.txt\n\
         outputs:\n  model:\n    type: uri_folder\n\
         environment: azureml:img@latest\n\
         compute: box\n",
    );
    let out = e.moor().run(&["job", "submit", &job, "--json"]);
    assert_exit(&out, 0);
    let job_id = out.json()["id"].as_str().unwrap().to_owned();
    let to = e.path("job-out");
    assert_exit(&e.moor().run(&["download", &job_id, "--to", &to]), 0);
    assert_eq!(
        std::fs::read_to_string(Path::new(&to).join("node-0/model/copy.txt")).unwrap(),
        "job input\n"
    );
    let left = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=moor.run={run_id}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the run's container was not removed"
    );

    // Cancel stops the container; the run ends cancelled, nothing is left.
    let src = e.path("src");
    let started = e.moor().run(&[
        "run",
        "--target",
        "box",
        "--env",
        "img",
        "--source-dir",
        &src,
        "--detach",
        "--json",
        "--",
        "sleep",
        "300",
    ]);
    assert_exit(&started, 0);
    let id = started.json()["id"].as_str().unwrap().to_owned();
    let label = format!("label=moor.run={id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while docker_ps(&label).is_empty() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let cancelled = e.moor().run(&["cancel", &id, "--json"]);
    assert_exit(&cancelled, 0);
    assert_eq!(
        cancelled.json()["state"],
        "cancelled",
        "{}",
        cancelled.stdout
    );
    assert!(
        docker_ps(&label).is_empty(),
        "a cancelled run's container is left"
    );

    // A host with an NVIDIA device: the container asks the engine for the
    // GPUs. This engine has no NVIDIA runtime, so it refuses, and the run
    // fails with the fix; nothing is left behind.
    e.f.host.exec("touch /dev/nvidia0");
    let out = e.run_in("img", &["true"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("NVIDIA Container Toolkit") && out.stdout.contains("device driver"),
        "{}",
        out.stdout
    );
    let id = run_id_of(&out);
    assert!(docker_ps(&format!("label=moor.run={id}")).is_empty());
    e.f.host.exec("rm /dev/nvidia0");

    // A second prepare is a cache hit; a broken Dockerfile fails with its log.
    let again = e.prepare("img", &["--channel-dir", &channel]);
    assert_exit(&again, 0);
    assert_eq!(again.json()["cached"], true);
    let broken = e.write(
        "Broken",
        &format!(
            "FROM {}\nRUN echo about to fail {nonce} && exit 3\n",
            image()
        ),
    );
    e.create("broken", &["--dockerfile", &broken]);
    let _cleanup2 = ImageGuard(moor_proto::env::image_tag(&e.hash("broken")));
    let out = e.prepare("broken", &[]);
    assert_exit(&out, 9);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("exit code: 3") || message.contains("returned a non-zero code: 3"),
        "{message}"
    );
    assert!(!e.ready_on_host(&e.hash("broken")));
}

#[test]
fn docker_env_with_a_pip_layer_trains_from_a_wheelhouse() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let e = attached(HostSpec {
        docker_socket: Some(true),
        ..HostSpec::default()
    });
    let wheels = wheelhouse().to_str().unwrap().to_owned();
    let reqs = e.write("requirements.txt", SKLEARN_REQUIREMENTS);
    // The test host's Debian 12: its system pip is "externally managed".
    e.create(
        "skimg",
        &["--docker-base", image(), "--pip-requirements", &reqs],
    );
    let hash = e.hash("skimg");
    let _cleanup = ImageGuard(moor_proto::env::image_tag(&hash));
    e.write(
        "src/train.py",
        "import json, os, sklearn\n\
         from sklearn.datasets import load_iris\n\
         from sklearn.linear_model import LogisticRegression\n\
         X, y = load_iris(return_X_y=True)\n\
         acc = LogisticRegression(max_iter=1000).fit(X, y).score(X, y)\n\
         print(f'sklearn {sklearn.__version__} in {sklearn.__file__} accuracy {acc:.3f}')\n\
         json.dump({'accuracy': acc}, open(os.environ['MOOR_OUTPUT_DIR'] + '/metrics.json', 'w'))\n",
    );
    // `moor run --env` builds it, shipping the wheelhouse itself.
    let src = e.path("src");
    let out = e.moor().run(&[
        "run",
        "--target",
        "box",
        "--env",
        "skimg",
        "--wheelhouse",
        &wheels,
        "--source-dir",
        &src,
        "--",
        "python3",
        "train.py",
    ]);
    assert_exit(&out, 0);
    assert!(
        out.stdout
            .contains("sklearn 1.5.2 in /usr/local/lib/python3"),
        "{}",
        out.stdout
    );
    assert!(e.ready_on_host(&hash));
    let run_id = run_id_of(&out);
    let metrics = e.moor().download_json(&run_id, "metrics.json");
    assert!(metrics["accuracy"].as_f64().unwrap() >= 0.9, "{metrics}");

    // The asset flags belong with --env.
    let out = e.moor().run(&[
        "run",
        "--target",
        "box",
        "--wheelhouse",
        &wheels,
        "--source-dir",
        &src,
        "--",
        "true",
    ]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("add --env ENV"), "{}", out.stderr);
}

/// The run id from `moor run`'s "moor: run ID on TARGET" line.
fn run_id_of(out: &Output) -> String {
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("moor: run "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run line in {}", out.stderr))
        .to_owned()
}

fn docker_ps(filter: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn docker_env_without_an_engine_or_access_fails_with_the_fix() {
    if !docker_or_skip() {
        return;
    }
    for (socket, want) in [
        (None, "no Docker engine answers"),
        (Some(false), "no access to the Docker socket"),
    ] {
        let e = attached(HostSpec {
            docker_socket: socket,
            ..HostSpec::default()
        });
        e.create("d", &["--docker-base", image()]);
        let out = e.prepare("d", &[]);
        assert_exit(&out, 9);
        let error = &out.json()["error"];
        assert!(
            error["message"].as_str().unwrap().contains(want),
            "{socket:?}: {error}"
        );
        assert!(!e.ready_on_host(&e.hash("d")));
    }
}

#[test]
fn specs_are_checked_at_create_with_line_and_reason() {
    let m = Moor::new(MOOR);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let bad_yml = write(
        "environment.yml",
        "channels: [conda-forge]\ndependencies:\n  - numpy\n  - 'numpy >=>= 2'\n",
    );
    let out = m.run(&["env", "create", "x", "--conda-file", &bad_yml]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("environment.yml:"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    let bad_req = write("requirements.txt", "numpy==2.1.3\nscikit learn\n");
    let out = m.run(&["env", "create", "x", "--pip-requirements", &bad_req]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("requirements.txt:2:"), "{}", out.stderr);

    // Same spec in another order under another name: same hash.
    let a = write("a.txt", "numpy==2.1.3\nscipy==1.14.1\n");
    let b = write("b.txt", "scipy == 1.14.1\nNumPy==2.1.3\n");
    let ha = m.run(&["env", "create", "a", "--pip-requirements", &a, "--json"]);
    let hb = m.run(&["env", "create", "b", "--pip-requirements", &b, "--json"]);
    assert_exit(&ha, 0);
    assert_exit(&hb, 0);
    assert_eq!(ha.json()["hash"], hb.json()["hash"]);
    // Another spec under a name is its next version; the same spec again
    // changes nothing.
    let c = write("c.txt", "numpy==2.1.2\n");
    let v2 = m.run(&["env", "create", "a", "--pip-requirements", &c, "--json"]);
    assert_exit(&v2, 0);
    assert_eq!(
        (
            v2.json()["version"].as_u64(),
            v2.json()["unchanged"].as_bool()
        ),
        (Some(2), Some(false))
    );
    let again = m.run(&["env", "create", "a", "--pip-requirements", &c, "--json"]);
    assert_eq!(
        (
            again.json()["version"].as_u64(),
            again.json()["unchanged"].as_bool()
        ),
        (Some(2), Some(true))
    );
    let list = m.run(&["env", "list", "--json"]);
    assert_eq!(list.json().as_array().unwrap().len(), 3);
    let show = |name: &str| m.run(&["env", "show", name, "--json"]).json();
    assert_eq!(show("a")["version"], 2);
    assert_eq!(show("a:1")["hash"], ha.json()["hash"]);
    assert_exit(&m.run(&["env", "show", "a:9"]), 2);
    assert_exit(&m.run(&["env", "show", "a:x"]), 2);
    assert_exit(&m.run(&["env", "delete", "a:2"]), 0);
    assert_eq!(show("a")["version"], 1);
    assert_exit(&m.run(&["env", "delete", "a"]), 0);
    assert_exit(&m.run(&["env", "show", "a"]), 2);
}
