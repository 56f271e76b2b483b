//! Spec files as real projects write them, built on real hosts: a lock file
//! made by pip-compile with `--generate-hashes` (installed in hash-checking
//! mode, and a tampered hash refused by pip), nested `-r`/`-c` files, a
//! `name @ file://` wheel and a VCS requirement against a git repository on
//! the host, a local package refused with a fix that works (a wheelhouse),
//! a conda file's `variables:` set in every run and a `file://` channel on
//! the host, a Docker build context (COPY, `.dockerignore`, build args,
//! stages), and channels that cannot be read naming their root cause.

use moor_tests::packages::{conda_channel, pip_compile_lock, small_wheelhouse};
use moor_tests::{assert_exit, docker_or_skip, image, Fixture, HostSpec, ImageGuard, Moor, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

struct Host {
    f: Fixture,
    dir: tempfile::TempDir,
}

fn attached() -> Host {
    attached_with(HostSpec::default())
}

fn attached_with(spec: HostSpec) -> Host {
    let f = Fixture::new(MOOR, spec);
    assert_exit(&f.attach("box", &[]), 0);
    Host {
        f,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Host {
    fn moor(&self) -> &Moor {
        &self.f.moor
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn create(&self, name: &str, flags: &[&str]) -> Output {
        self.moor()
            .run(&[&["env", "create", name, "--json"][..], flags].concat())
    }

    fn prepare(&self, name: &str, flags: &[&str]) -> Output {
        let head = ["env", "prepare", name, "--target", "box", "--json"];
        self.moor().run(&[&head[..], flags].concat())
    }

    fn run_in(&self, env: &str, extra: &[&str], command: &[&str]) -> Output {
        let src = self.dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        self.f
            .run_on("box", &src, &[&["--env", env][..], extra].concat(), command)
    }

    /// The log of the environment's newest build run.
    fn build_log(&self) -> String {
        let runs = self
            .moor()
            .run(&["runs", "--target", "box", "--json"])
            .json();
        let id = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("env-build"))
            })
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .next()
            .expect("a build run");
        self.moor().run(&["logs", &id]).stdout
    }
}

const PYTHON_VERSIONS: &str =
    "import six, idna; print('versions', six.__version__, idna.__version__)";

#[test]
fn a_pip_compile_lock_file_installs_with_its_hashes_checked_through_nested_files() {
    if !docker_or_skip() {
        return;
    }
    let b = attached();
    let wheels = small_wheelhouse().to_str().unwrap().to_owned();
    let lock = std::fs::read_to_string(pip_compile_lock()).unwrap();
    assert!(
        lock.contains("--hash=sha256:") && lock.contains(" \\\n"),
        "{lock}"
    );
    b.write("locks/lock.txt", &lock);
    let top = b.write(
        "project/requirements.txt",
        "# the project's pins\n-r ../locks/lock.txt\n",
    );

    assert_exit(&b.create("locked", &["--pip-requirements", &top]), 0);
    let out = b.prepare("locked", &["--wheelhouse", &wheels]);
    assert_exit(&out, 0);
    assert!(
        b.build_log().contains("--require-hashes"),
        "{}",
        b.build_log()
    );
    let out = b.run_in("locked", &[], &["python", "-c", PYTHON_VERSIONS]);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("versions 1.16.0 3.10"),
        "{}",
        out.stdout
    );

    // The hashes changed in the included lock file (one digit each: a
    // package passes when any of its files matches): another spec, and pip
    // refuses the wheels.
    let tampered: String = lock
        .lines()
        .map(|line| match line.find("--hash=sha256:") {
            Some(at) => {
                let digit = at + "--hash=sha256:".len();
                let flipped = if &line[digit..=digit] == "0" {
                    "1"
                } else {
                    "0"
                };
                format!("{}{flipped}{}\n", &line[..digit], &line[digit + 1..])
            }
            None => format!("{line}\n"),
        })
        .collect();
    assert_ne!(tampered, lock);
    b.write("locks/lock.txt", &tampered);
    let created = b.create("tampered", &["--pip-requirements", &top]);
    assert_exit(&created, 0);
    let shown = b.moor().run(&["env", "show", "locked", "--json"]).json();
    assert_ne!(
        created.json()["hash"],
        shown["hash"],
        "the included file is part of the hash"
    );
    let out = b.prepare("tampered", &["--wheelhouse", &wheels]);
    assert_exit(&out, 9);
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.to_ascii_lowercase().contains("hash"), "{message}");

    // `--env locked` still runs version 1, and says its file changed since.
    let out = b.run_in("locked", &[], &["python", "-c", PYTHON_VERSIONS]);
    assert_exit(&out, 0);
    let said = "changed since environment locked:1 was created from it";
    assert!(out.stderr.contains(said), "{}", out.stderr);
}

#[test]
fn constraints_a_file_url_wheel_and_a_git_requirement_install_on_the_host() {
    if !docker_or_skip() {
        return;
    }
    let b = attached();
    let wheels = small_wheelhouse();
    // A git repository on the host with a setuptools package, tagged v1.
    let script = "set -e; mkdir -p ~/repos/hello ~/wheels; cd ~/repos/hello; \
        printf '[build-system]\\nrequires = [\"setuptools\"]\\nbuild-backend = \"setuptools.build_meta\"\\n[project]\\nname = \"moor-vcs-hello\"\\nversion = \"1.0\"\\n' > pyproject.toml; \
        echo 'GREETING = \"hello from git\"' > moor_vcs_hello.py; \
        git init -q; git add .; git -c user.name=t -c user.email=t@example.com commit -qm one; git tag v1";
    let (code, out) = b.f.host.exec_as_user(&["sh", "-c", script], b"");
    assert_eq!(code, 0, "{out}");
    // The idna wheel, on the host, named by a file:// URL.
    let idna = std::fs::read_dir(wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("idna-")
        })
        .unwrap();
    let idna_name = idna.file_name().unwrap().to_str().unwrap().to_owned();
    let bytes = std::fs::read(&idna).unwrap();
    let (code, out) = b.f.host.exec_as_user(
        &["sh", "-c", &format!("cat > ~/wheels/{idna_name}")],
        &bytes,
    );
    assert_eq!(code, 0, "{out}");

    b.write("constraints.txt", "six==1.16.0\n");
    let reqs = b.write(
        "requirements.txt",
        &format!(
            "-c constraints.txt\nsix\nIDNA @ file:///home/moor/wheels/{idna_name}\n\
             git+file:///home/moor/repos/hello@v1#egg=moor-vcs-hello\n"
        ),
    );
    let created = b.create("vcs", &["--pip-requirements", &reqs]);
    assert_exit(&created, 0);
    let spec = b.moor().run(&["env", "show", "vcs", "--json"]).json();
    assert_eq!(
        spec["spec"]["pip"]["constraints"][0], "six==1.16.0",
        "{spec}"
    );
    let out = b.prepare("vcs", &["--wheelhouse", wheels.to_str().unwrap()]);
    assert_exit(&out, 0);
    let code = "import six, idna, moor_vcs_hello; print(six.__version__, idna.__version__, moor_vcs_hello.GREETING)";
    let out = b.run_in("vcs", &[], &["python", "-c", code]);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("1.16.0 3.10 hello from git"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_conda_files_variables_are_set_in_every_run_and_a_runs_own_win() {
    if !docker_or_skip() {
        return;
    }
    let b = attached();
    let channel = b.dir.path().join("channel");
    std::fs::create_dir_all(&channel).unwrap();
    conda_channel(&channel);
    let yml = b.write(
        "environment.yml",
        "name: vars\nprefix: /opt/conda/envs/vars\nchannels:\n  - defaults\ndependencies:\n  - moor-hello=1.2\nvariables:\n  MOOR_GREETING: hello from conda\n  DATA_DIR: /data/set\n",
    );
    let created = b.create("vars", &["--conda-file", &yml]);
    assert_exit(&created, 0);
    assert!(
        created
            .stderr
            .contains("prefix: /opt/conda/envs/vars is ignored"),
        "{}",
        created.stderr
    );
    let shown = b.moor().run(&["env", "show", "vars", "--json"]).json();
    assert_eq!(
        shown["spec"]["conda"]["channels"],
        serde_json::json!([
            "https://repo.anaconda.com/pkgs/main",
            "https://repo.anaconda.com/pkgs/r"
        ])
    );
    let channel = channel.to_str().unwrap();
    let out = b.prepare("vars", &["--channel-dir", channel]);
    assert_exit(&out, 0);
    let echo = ["sh", "-c", "echo \"$MOOR_GREETING|$DATA_DIR\""];
    let out = b.run_in("vars", &[], &echo);
    assert_exit(&out, 0);
    assert_eq!(out.stdout.trim(), "hello from conda|/data/set");
    let out = b.run_in("vars", &["-e", "DATA_DIR=/mine"], &echo);
    assert_exit(&out, 0);
    assert_eq!(out.stdout.trim(), "hello from conda|/mine");
}

#[test]
fn every_bad_line_of_every_file_is_reported_in_one_go() {
    let m = Moor::new(MOOR);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inc.txt"), "ok-pkg\nbad pkg\n").unwrap();
    let top = dir.path().join("requirements.txt");
    std::fs::write(&top, "-r inc.txt\nnumpy==\n-e ./pkg\n-r inc.txt\n").unwrap();
    let out = m.run(&[
        "env",
        "create",
        "x",
        "--pip-requirements",
        top.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("3 problems: "), "{line}");
    for said in [
        "inc.txt:2:",
        "requirements.txt:2:",
        "requirements.txt:3: -e ./pkg",
    ] {
        assert!(line.contains(said), "{said}: {line}");
    }
}

#[test]
fn a_docker_context_with_copy_dockerignore_build_args_and_stages_builds_and_runs() {
    if !docker_or_skip() {
        return;
    }
    let _heavy = moor_tests::heavy();
    let b = attached_with(HostSpec {
        docker_socket: Some(true),
        ..HostSpec::default()
    });
    let base = image();
    let dockerfile = b.write(
        "ctx/Dockerfile",
        &format!(
            "FROM {base} AS build\nRUN echo built-in-stage > /stage.txt\n\
             FROM {base}\nARG GREETING=unset\nCOPY --from=build /stage.txt /opt/app/stage.txt\n\
             COPY app/ /opt/app/\nRUN echo \"$GREETING\" > /opt/app/greeting.txt\n"
        ),
    );
    b.write("ctx/app/hello.txt", "hello from the context\n");
    b.write("ctx/app/debug.log", "a log\n");
    b.write("ctx/secret.txt", "do not ship\n");
    b.write("ctx/.dockerignore", "secret.txt\n**/*.log\n");
    let context = b.dir.path().join("ctx");
    let context = context.to_str().unwrap();

    // COPY needs the context.
    let refused = b.create("plain", &["--dockerfile", &dockerfile]);
    assert_exit(&refused, 2);
    assert!(
        refused
            .stderr
            .contains("needs a build context: pass --docker-context"),
        "{}",
        refused.stderr
    );

    let created = b.create(
        "ctx",
        &[
            "--docker-context",
            context,
            "--build-arg",
            "GREETING=hi-arg",
        ],
    );
    assert_exit(&created, 0);
    let hash = created.json()["hash"].as_str().unwrap().to_owned();
    let _image = ImageGuard(moor_proto::env::image_tag(&hash));
    // What travels: the context minus .dockerignore's files.
    let sha = created.json()["spec"]["docker"]["context"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = b.moor().workspace().join(format!("contexts/{sha}.tar"));
    let listed = std::process::Command::new("tar")
        .arg("tf")
        .arg(&kept)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("app/hello.txt") && listed.contains("Dockerfile"),
        "{listed}"
    );
    assert!(
        !listed.contains("secret.txt") && !listed.contains("debug.log"),
        "{listed}"
    );

    assert_exit(&b.prepare("ctx", &[]), 0);
    let show = "cat /opt/app/hello.txt /opt/app/stage.txt /opt/app/greeting.txt; test ! -e /opt/app/debug.log && echo no-log";
    let out = b.run_in("ctx", &[], &["sh", "-c", show]);
    assert_exit(&out, 0);
    for want in [
        "hello from the context",
        "built-in-stage",
        "hi-arg",
        "no-log",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }

    // A changed file in the context is a new version.
    b.write("ctx/app/hello.txt", "hello again\n");
    let again = b.create(
        "ctx",
        &[
            "--docker-context",
            context,
            "--build-arg",
            "GREETING=hi-arg",
        ],
    );
    assert_exit(&again, 0);
    assert_eq!(again.json()["version"], 2);
    assert_ne!(again.json()["hash"].as_str().unwrap(), hash);
}

#[test]
fn an_unreadable_channel_names_its_root_cause_and_what_helps() {
    if !docker_or_skip() {
        return;
    }
    let b = attached();
    // An HTTPS server on the host with a certificate nobody trusts.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for (from, to) in [(&cert, "/tmp/cert.pem"), (&key, "/tmp/key.pem")] {
        let bytes = std::fs::read(from).unwrap();
        let (code, out) =
            b.f.host
                .exec_as_user(&["sh", "-c", &format!("cat > {to}")], &bytes);
        assert_eq!(code, 0, "{out}");
    }
    let serve = "import http.server, ssl\n\
        s = http.server.HTTPServer(('127.0.0.1', 8443), http.server.SimpleHTTPRequestHandler)\n\
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('/tmp/cert.pem', '/tmp/key.pem')\n\
        s.socket = c.wrap_socket(s.socket, server_side=True); s.serve_forever()\n";
    let started = std::process::Command::new("docker")
        .args([
            "exec",
            "-d",
            "-u",
            "moor",
            &b.f.host.name,
            "python3",
            "-c",
            serve,
        ])
        .output()
        .unwrap();
    assert!(started.status.success());

    for (channel, cause, fix) in [
        (
            "https://no-such-host.invalid/chan",
            "the channel's host name does not resolve",
            "--channel-dir",
        ),
        (
            "https://127.0.0.1:9/chan",
            "the connection to the channel was refused",
            "proxy",
        ),
        (
            "https://127.0.0.1:8443/chan",
            "the channel's TLS certificate is not trusted",
            "CA",
        ),
    ] {
        let yml = b.write(
            "environment.yml",
            &format!("channels:\n  - {channel}\ndependencies:\n  - moor-hello\n"),
        );
        let name = format!("chan{}", channel.len());
        assert_exit(&b.create(&name, &["--conda-file", &yml]), 0);
        let out = b.prepare(&name, &[]);
        assert_exit(&out, 9);
        let error = &out.json()["error"];
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(cause), "{channel}: {message}");
        assert!(message.contains("(no proxy set)"), "{channel}: {message}");
        let said_fix = error["fix"].as_str().unwrap();
        assert!(said_fix.contains(fix), "{channel}: {said_fix}");
    }
}

#[test]
fn a_local_package_is_refused_with_a_fix_that_works_and_a_file_channel_is_read_on_the_host() {
    if !docker_or_skip() {
        return;
    }
    let b = attached();
    b.write(
        "pkg/pyproject.toml",
        "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"moor-local-pkg\"\nversion = \"0.1\"\n",
    );
    b.write(
        "pkg/moor_local_pkg.py",
        "WHERE = 'built from a local folder'\n",
    );
    let reqs = b.write("requirements.txt", "six\n./pkg\n");
    let refused = b.create("local", &["--pip-requirements", &reqs]);
    assert_exit(&refused, 2);
    let line = refused.stderr.trim();
    assert!(
        line.contains("requirements.txt:2: \"./pkg\" is a local path"),
        "{line}"
    );
    assert!(line.contains("pip wheel ./pkg -w wheels"), "{line}");

    // The fix, as said: a wheel in a wheelhouse, the package by name.
    let wheels = b.dir.path().join("wheels");
    let built = std::process::Command::new("python3")
        .args(["-m", "pip", "wheel", "--quiet", "--no-deps", "-w"])
        .arg(&wheels)
        .arg(b.dir.path().join("pkg"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    for entry in std::fs::read_dir(small_wheelhouse()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, wheels.join(path.file_name().unwrap())).unwrap();
    }
    let reqs = b.write("requirements.txt", "six\nmoor-local-pkg\n");
    assert_exit(&b.create("local", &["--pip-requirements", &reqs]), 0);
    assert_exit(
        &b.prepare("local", &["--wheelhouse", wheels.to_str().unwrap()]),
        0,
    );
    let code = "import moor_local_pkg; print(moor_local_pkg.WHERE)";
    let out = b.run_in("local", &[], &["python", "-c", code]);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("built from a local folder"),
        "{}",
        out.stdout
    );

    // A file:// channel names a folder on the host.
    let channel = b.dir.path().join("channel");
    std::fs::create_dir_all(&channel).unwrap();
    conda_channel(&channel);
    let copied = std::process::Command::new("docker")
        .arg("cp")
        .arg(&channel)
        .arg(format!("{}:/home/moor/chan", b.f.host.name))
        .output()
        .unwrap();
    assert!(copied.status.success());
    b.f.host.exec("chown -R moor /home/moor/chan");
    let yml = b.write(
        "environment.yml",
        "channels:\n  - file:///home/moor/chan\ndependencies:\n  - moor-hello=1.1\n",
    );
    assert_exit(&b.create("filechan", &["--conda-file", &yml]), 0);
    assert_exit(&b.prepare("filechan", &[]), 0);
    let out = b.run_in("filechan", &[], &["moor-hello"]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("moor-hello 1.1"), "{}", out.stdout);
}
