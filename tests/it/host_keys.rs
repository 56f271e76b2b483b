//! Host keys of attached targets, against real test hosts: `@revoked` wins
//! wherever its line is, a key of another type is "changed" (never learned
//! as new), and every command pins the fingerprint the target was attached
//! with; the one way to accept a reinstalled host is `moor host-key forget`
//! plus the new key's fingerprint, which then becomes the pin.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

fn attached() -> Fixture {
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    f
}

fn status(f: &Fixture, extra: &[&str]) -> Output {
    f.moor.run(&[&["status", "box"][..], extra].concat())
}

fn assert_host_key_error(out: &Output, says: &str) {
    assert_exit(out, 5);
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(line.contains(says), "{}", out.stderr);
}

#[test]
fn a_revoked_key_in_the_users_known_hosts_wins_over_the_workspace_record() {
    if !docker_or_skip() {
        return;
    }
    let f = attached();
    assert_exit(&status(&f, &[]), 0);
    let revoked = format!("@revoked * {}\n", f.host.ed25519_public_key());
    std::fs::write(f.moor.home().join(".ssh/known_hosts"), revoked).unwrap();
    assert_host_key_error(&status(&f, &[]), "revoked");
    assert_host_key_error(&status(&f, &["--accept-new-host-key"]), "revoked");
    let fingerprint = f.host.ed25519_fingerprint();
    assert_host_key_error(
        &status(&f, &["--host-key-fingerprint", &fingerprint]),
        "revoked",
    );
}

#[test]
fn a_host_key_of_another_type_is_changed_whatever_the_flags() {
    if !docker_or_skip() {
        return;
    }
    let f = attached();
    let known_hosts = f.moor.workspace().join("known_hosts");
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    f.host.offer_only_a_new_ecdsa_key();
    for flags in [&[][..], &["--accept-new-host-key"][..]] {
        let out = status(&f, flags);
        assert_host_key_error(&out, "HOST KEY CHANGED");
        assert!(out.stderr.contains("ecdsa-sha2-nistp256"), "{}", out.stderr);
    }
    let run = f.moor.run(&[
        "run",
        "--target",
        "box",
        "--accept-new-host-key",
        "--",
        "true",
    ]);
    assert_host_key_error(&run, "HOST KEY CHANGED");
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        recorded,
        "the new key was learned"
    );
}

#[test]
fn the_attached_fingerprint_is_pinned_until_the_key_is_forgotten_and_named() {
    if !docker_or_skip() {
        return;
    }
    let f = attached();
    let old = f.host.ed25519_fingerprint();
    f.host.regenerate_host_keys();
    let new = f.host.ed25519_fingerprint();
    assert_ne!(old, new);

    // The workspace's known_hosts no longer records the host: the key the
    // target was attached with still decides.
    let forget = f.moor.run(&["host-key", "forget", &f.host.ip]);
    assert_exit(&forget, 0);
    for flags in [&[][..], &["--accept-new-host-key"][..]] {
        let out = status(&f, flags);
        assert_host_key_error(&out, &format!("but target box was attached with {old}"));
        assert!(
            out.stderr
                .contains(&format!("moor host-key forget {}", f.host.ip)),
            "{}",
            out.stderr
        );
    }
    let wrong = status(&f, &["--host-key-fingerprint", &old]);
    assert_exit(&wrong, 5);

    // Forgotten and named: accepted, and the new key is pinned from now on.
    let named = status(&f, &["--host-key-fingerprint", &new]);
    assert_exit(&named, 0);
    assert!(
        named
            .stderr
            .contains(&format!("now pinned to host key ssh-ed25519 {new}")),
        "{}",
        named.stderr
    );
    assert_exit(&status(&f, &[]), 0);
    let targets = f.moor.run(&["list", "--json"]);
    assert_exit(&targets, 0);
    assert!(targets.stdout.contains(&new), "{}", targets.stdout);
}

#[test]
fn a_reinstalled_host_is_taken_back_by_validate_or_by_attach_with_its_new_key_named() {
    if !docker_or_skip() {
        return;
    }
    let f = attached();
    f.host.regenerate_host_keys();
    let new = f.host.ed25519_fingerprint();
    assert_exit(&f.moor.run(&["host-key", "forget", &f.host.ip]), 0);

    // validate NAME takes the host-key flags and re-pins.
    let validated = f
        .moor
        .run(&["validate", "box", "--host-key-fingerprint", &new]);
    assert_exit(&validated, 0);
    assert!(
        validated.stderr.contains("now pinned"),
        "{}",
        validated.stderr
    );
    assert_exit(&status(&f, &[]), 0);

    // Again, through a re-attach under the same name: same machine-id,
    // the new key named, so the name stays with it.
    f.host.regenerate_host_keys();
    let newer = f.host.ed25519_fingerprint();
    assert_exit(&f.moor.run(&["host-key", "forget", &f.host.ip]), 0);
    let plain = f.moor.run(
        &[
            &["attach", "vm", "box", "--json"][..],
            &f.login(),
            &["--accept-new-host-key"],
        ]
        .concat(),
    );
    assert_exit(&plain, 7);
    let reattached = f.moor.run(
        &[
            &["attach", "vm", "box", "--json"][..],
            &f.login(),
            &["--host-key-fingerprint", &newer],
        ]
        .concat(),
    );
    assert_exit(&reattached, 0);
    let shown = f.moor.run(&["show", "box", "--json"]);
    assert!(shown.stdout.contains(&newer), "{}", shown.stdout);
    assert_exit(&status(&f, &[]), 0);

    // detach takes the flags too.
    let detached = f
        .moor
        .run(&["detach", "box", "--host-key-fingerprint", &newer]);
    assert_exit(&detached, 0);
}
