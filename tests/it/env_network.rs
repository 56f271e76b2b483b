//! Builds behind a corporate network, against a real forward proxy (squid)
//! that is a host's only way out, and an HTTPS package index signed by a
//! private CA: without the target's network settings the build fails with
//! the named cause; with the proxy it fails on the certificate; with the
//! proxy and the CA bundle it succeeds, through the proxy: pip, the conda
//! solver and installer, and a Docker build (the proxy as build arguments).

use moor_tests::corporate::Corporate;
use moor_tests::packages::{conda_channel, small_wheelhouse};
use moor_tests::{
    assert_exit, docker_or_skip, image, HostSpec, ImageGuard, Keys, Moor, TestHost, USER,
};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn pip_and_conda_builds_go_through_the_targets_proxy_and_trust_its_ca() {
    if !docker_or_skip() {
        return;
    }
    let channel_dir = tempfile::tempdir().unwrap();
    conda_channel(channel_dir.path());
    let six: Vec<_> = std::fs::read_dir(small_wheelhouse())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("six-"))
        .collect();
    let corp = Corporate::start(&six, Some(channel_dir.path()));
    let keys = Keys::new();
    let key = keys.generate("id", "ed25519", None);
    let host = TestHost::start_on(
        &corp.network,
        &HostSpec {
            authorized_keys: vec![key.public.clone()],
            docker_socket: Some(true),
            ..HostSpec::default()
        },
    );
    let moor = Moor::new(MOOR);
    let key_path = key.private.to_str().unwrap();
    let attach = ["attach", "vm", "box", "--host", &host.ip, "--user", USER];
    let attached = moor.run(&[&attach[..], &["--key", key_path, "--accept-new-host-key"]].concat());
    assert_exit(&attached, 0);

    let files = tempfile::tempdir().unwrap();
    let reqs = files.path().join("requirements.txt");
    let index = &corp.index_url;
    std::fs::write(&reqs, format!("--index-url {index}/simple\nsix==1.16.0\n")).unwrap();
    assert_exit(
        &moor.run(&[
            "env",
            "create",
            "six",
            "--pip-requirements",
            reqs.to_str().unwrap(),
        ]),
        0,
    );
    let prepare = |name: &str| moor.run(&["env", "prepare", name, "--target", "box", "--json"]);
    let message = |out: &moor_tests::Output| {
        out.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // No settings: the index (on this machine's loopback) is out of reach.
    let out = prepare("six");
    assert_exit(&out, 9);
    assert!(
        message(&out).contains("Connection refused"),
        "{}",
        message(&out)
    );

    // The proxy: the index answers, with a certificate the host does not trust.
    let set = moor.run(&[
        "network",
        "box",
        "--https-proxy",
        &corp.proxy_url,
        "--no-proxy",
        "localhost",
        "--json",
    ]);
    assert_exit(&set, 0);
    assert_eq!(set.json()["https_proxy"], corp.proxy_url.as_str());
    let out = prepare("six");
    assert_exit(&out, 9);
    assert!(
        message(&out).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        message(&out)
    );
    // The conda channel on the same index: its error names the cause, the
    // proxy it went through, and the CA setting as the fix.
    let yml = files.path().join("environment.yml");
    std::fs::write(
        &yml,
        format!("channels:\n  - {index}/channel\ndependencies:\n  - moor-hello=1.2\n"),
    )
    .unwrap();
    assert_exit(
        &moor.run(&[
            "env",
            "create",
            "hello",
            "--conda-file",
            yml.to_str().unwrap(),
        ]),
        0,
    );
    let out = prepare("hello");
    assert_exit(&out, 9);
    let said = format!(
        "the channel's TLS certificate is not trusted (a proxy or server with a private CA?) through proxy {}",
        corp.proxy_url
    );
    assert!(message(&out).contains(&said), "{}", message(&out));
    let fix = out.json()["error"]["fix"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(fix.contains("CA bundle"), "{fix}");

    // The proxy and the CA: built, through the proxy.
    let ca = corp.ca_file.to_str().unwrap();
    assert_exit(&moor.run(&["network", "box", "--ca-bundle", ca]), 0);
    let shown = moor.run(&["show", "box", "--json"]).json();
    assert_eq!(shown["network"]["ca_certificates"], 1, "{shown}");
    assert_exit(&prepare("six"), 0);
    let src = files.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let run = moor.run(&[
        "run",
        "--target",
        "box",
        "--env",
        "six",
        "--source-dir",
        src.to_str().unwrap(),
        "--",
        "python",
        "-c",
        "import six; print('six', six.__version__)",
    ]);
    assert_exit(&run, 0);
    assert!(run.stdout.contains("six 1.16.0"), "{}", run.stdout);

    // The conda solver and installer take the same way.
    let out = prepare("hello");
    assert_exit(&out, 0);
    let run = moor.run(&[
        "run",
        "--target",
        "box",
        "--env",
        "hello",
        "--source-dir",
        src.to_str().unwrap(),
        "--",
        "moor-hello",
    ]);
    assert_exit(&run, 0);
    assert!(run.stdout.contains("moor-hello 1.2"), "{}", run.stdout);
    let log = corp.proxy_log();
    assert!(
        log.contains(&format!("CONNECT {}", index.trim_start_matches("https://"))),
        "{log}"
    );

    // A Docker build: the proxy as build arguments, the CA in moor's pip layer.
    let _heavy = moor_tests::heavy();
    let base = image();
    let created = moor.run(&[
        "env",
        "create",
        "img",
        "--docker-base",
        base,
        "--pip-requirements",
        reqs.to_str().unwrap(),
        "--json",
    ]);
    assert_exit(&created, 0);
    let _image = ImageGuard(moor_proto::env::image_tag(
        created.json()["hash"].as_str().unwrap(),
    ));
    assert_exit(&prepare("img"), 0);
    let run = moor.run(&[
        "run",
        "--target",
        "box",
        "--env",
        "img",
        "--source-dir",
        src.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        "import six; print('six in the image', six.__version__)",
    ]);
    assert_exit(&run, 0);
    assert!(
        run.stdout.contains("six in the image 1.16.0"),
        "{}",
        run.stdout
    );

    // A proxy URL with a password is refused, never echoed.
    let out = moor.run(&[
        "network",
        "box",
        "--https-proxy",
        "http://me:s3cret@proxy:3128",
    ]);
    assert_exit(&out, 2);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}
