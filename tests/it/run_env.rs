//! A run's environment against a real test host: `-e` and `--env-file`
//! variables (names listed by `moor runs`, values never), the host's
//! `/etc/environment`, and the `PATH` its login shell sets up.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

#[test]
fn runs_get_their_variables_etc_environment_and_the_login_path() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    f.host.exec(
        "echo 'MOOR_ETC_VAR=\"from etc\"' >> /etc/environment; \
         mkdir -p /home/moor/tools; \
         printf '#!/bin/sh\\necho tools on the login path\\n' > /home/moor/tools/hello-tools; \
         chmod 755 /home/moor/tools/hello-tools; \
         echo 'export PATH=\"$HOME/tools:$PATH\"' >> /home/moor/.profile; \
         chown -R moor /home/moor/tools /home/moor/.profile",
    );
    let src = tempfile::tempdir().unwrap();
    let env_file = src.path().join("run.env");
    std::fs::write(
        &env_file,
        "# secrets\nexport BAZ='s3cr3t value'\nFOO=from-file\n",
    )
    .unwrap();
    let out = f.run_on(
        "box",
        src.path(),
        &[
            "-e",
            "FOO=from-flag",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
        &["sh", "-c", "echo \"$FOO|$BAZ|$MOOR_ETC_VAR\"; hello-tools"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "from-flag|s3cr3t value|from etc\ntools on the login path\n"
    );
    let runs = f.moor.run(&["runs", "--json"]);
    assert_exit(&runs, 0);
    assert_eq!(runs.json()[0]["env"], serde_json::json!(["BAZ", "FOO"]));
    assert!(!runs.stdout.contains("s3cr3t"), "a value was printed");

    let bad = f
        .moor
        .run(&["run", "--target", "box", "-e", "1BAD=hunter2", "--", "true"]);
    assert_exit(&bad, 2);
    assert!(!bad.stderr.contains("hunter2"), "{}", bad.stderr);
}
