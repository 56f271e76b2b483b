//! Store: migrations, conflicts, reservations, concurrent writers.

use super::*;
use crate::target_kind::TargetKind;

pub(crate) fn target(name: &str, fp: &str, id: &str) -> Target {
    Target {
        name: name.into(),
        kind: TargetKind::Vm,
        host: format!("{name}.example"),
        port: 22,
        user: "u".into(),
        jumps: Vec::new(),
        network: Default::default(),
        auth: AuthRef::WorkspaceKey,
        resource_id: None,
        host_key_algorithm: "ssh-ed25519".into(),
        host_key_fingerprint: fp.into(),
        machine_id: id.into(),
        agent_version: "0.1.0".into(),
        agent_build: "ab".into(),
        state: TargetState::Ready,
        facts: None,
        checks: Vec::new(),
        created_at: crate::time::now(),
        updated_at: crate::time::now(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("moor.db")).unwrap();
    (dir, store)
}

#[test]
fn migrates_and_keeps_its_id() {
    let (dir, store) = open();
    let id = store.workspace_id().unwrap();
    assert_eq!(id.len(), 16);
    drop(store);
    let again = Store::open(&dir.path().join("moor.db")).unwrap();
    assert_eq!(again.workspace_id().unwrap(), id);
    let version: i64 = again
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, super::migrations::MIGRATIONS.len());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("moor.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn refuses_a_newer_schema() {
    let (dir, store) = open();
    store.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(store);
    assert!(Store::open(&dir.path().join("moor.db")).is_err());
}

#[test]
fn a_reinstalled_machine_keeps_its_name_only_with_its_new_key_named() {
    let (_d, mut store) = open();
    assert_eq!(
        store.reserve("a", "fp1", "m1", false, false).unwrap(),
        Ok(None)
    );
    store
        .commit_target(&target("a", "fp1", "m1"), None)
        .unwrap();
    let taken = Err(Conflict::NameTaken {
        host: "a.example".into(),
    });
    // New key, same machine-id: only when the user named the new key.
    assert_eq!(
        store.reserve("a", "fp2", "m1", false, false).unwrap(),
        taken
    );
    assert_eq!(
        store.reserve("a", "fp2", "m1", false, true).unwrap(),
        Ok(None)
    );
    // Another machine-id needs --replace, named key or not.
    assert_eq!(store.reserve("a", "fp3", "m9", false, true).unwrap(), taken);
    assert_eq!(
        store.reserve("a", "fp3", "m9", true, false).unwrap(),
        Ok(None)
    );
}

#[test]
fn one_machine_one_name() {
    let (_d, mut store) = open();
    assert_eq!(
        store.reserve("a", "fp1", "m1", false, false).unwrap(),
        Ok(None)
    );
    store
        .commit_target(&target("a", "fp1", "m1"), None)
        .unwrap();
    // Same machine, other name.
    assert_eq!(
        store.reserve("b", "fp1", "m1", false, false).unwrap(),
        Err(Conflict::MachineTaken { name: "a".into() })
    );
    // Same name, other machine.
    assert_eq!(
        store.reserve("a", "fp2", "m2", false, false).unwrap(),
        Err(Conflict::NameTaken {
            host: "a.example".into()
        })
    );
    // Same name, same machine: a refresh.
    assert_eq!(
        store.reserve("a", "fp1", "m1", false, false).unwrap(),
        Ok(None)
    );
    // --replace moves it.
    assert_eq!(
        store.reserve("b", "fp1", "m1", true, false).unwrap(),
        Ok(Some("a".into()))
    );
    store
        .commit_target(&target("b", "fp1", "m1"), Some("a"))
        .unwrap();
    let names: Vec<String> = store
        .targets()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["b"]);
    assert!(
        store
            .conn
            .query_row("SELECT COUNT(*) FROM attach_reservations", [], |r| r
                .get::<_, i64>(0))
            .unwrap()
            == 0
    );
}

#[test]
fn refresh_keeps_created_at() {
    let (_d, mut store) = open();
    let mut t = target("a", "fp", "m");
    t.created_at = "2020-01-01T00:00:00Z".into();
    store.commit_target(&t, None).unwrap();
    let mut t2 = target("a", "fp", "m");
    t2.agent_version = "0.2.0".into();
    store.commit_target(&t2, None).unwrap();
    let got = store.target("a").unwrap().unwrap();
    assert_eq!(got.created_at, "2020-01-01T00:00:00Z");
    assert_eq!(got.agent_version, "0.2.0");
    assert!(store.delete_target("a").unwrap());
    assert!(!store.delete_target("a").unwrap());
}

#[test]
fn a_live_reservation_blocks_a_dead_one_does_not() {
    let (_d, mut store) = open();
    // pid 1 is alive (init); a reservation it holds blocks.
    let init_start = process_start(1).unwrap();
    store
        .conn
        .execute(
            "INSERT INTO attach_reservations VALUES ('fp|m', 'x', 1, ?1, 'now')",
            params![init_start],
        )
        .unwrap();
    assert_eq!(
        store.reserve("y", "fp", "m", false, false).unwrap(),
        Err(Conflict::Busy {
            pid: 1,
            name: "x".into()
        })
    );
    // Same pid but another start time: the holder died and the pid was reused.
    store
        .conn
        .execute("UPDATE attach_reservations SET pid_start = 'stale'", [])
        .unwrap();
    assert_eq!(
        store.reserve("y", "fp", "m", false, false).unwrap(),
        Ok(None)
    );
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moor.db");
    Store::open(&path).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                for j in 0..10 {
                    let name = format!("t{i}-{j}");
                    store
                        .commit_target(&target(&name, &format!("fp{i}-{j}"), "m"), None)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(Store::open(&path).unwrap().targets().unwrap().len(), 80);
}

#[test]
fn a_target_round_trips_typed_and_an_unknown_kind_is_an_error() {
    let (dir, mut store) = open();
    let mut t = target("a", "SHA256:x", "m1");
    t.checks = vec![Check::pass("ssh.connect", "10.0.0.1:22")];
    store.commit_target(&t, None).unwrap();
    let back = store.target("a").unwrap().unwrap();
    assert_eq!(back.kind, TargetKind::Vm);
    assert_eq!(back.state, TargetState::Ready);
    assert_eq!(back.checks, t.checks);
    assert_eq!(back.facts, None);
    // A kind this moor does not know (a newer moor's) is refused, never
    // taken for a VM.
    let raw = rusqlite::Connection::open(dir.path().join("moor.db")).unwrap();
    raw.execute(
        "UPDATE targets SET kind = 'kubernetes' WHERE name = 'a'",
        [],
    )
    .unwrap();
    let err = store.target("a").unwrap_err();
    assert_eq!(err.kind(), "workspace");
    assert!(err.to_string().contains("unknown target kind"), "{err}");
    assert!(store.targets().is_err());
}

#[test]
fn concurrent_first_opens_of_a_new_workspace_all_succeed() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moor.db");
        let start = std::sync::Barrier::new(16);
        let ids: Vec<String> = std::thread::scope(|s| {
            let opens: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        Store::open(&path).map(|store| store.workspace_id().unwrap())
                    })
                })
                .collect();
            opens
                .into_iter()
                .map(|o| {
                    o.join()
                        .unwrap()
                        .unwrap_or_else(|e| panic!("round {round}: {e}"))
                })
                .collect()
        });
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "one workspace id: {ids:?}"
        );
    }
}

#[test]
fn an_older_workspace_keeps_its_environments_as_version_1_and_targets_gain_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moor.db");
    // A workspace as the previous moor left it: the first four migrations,
    // a target and an environment.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &super::migrations::MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute(
            "INSERT INTO envs (name, hash, kind, spec, sources, created_at) VALUES ('sk', ?1, 'venv', ?2, '[\"r.txt\"]', 't0')",
            rusqlite::params!["ab".repeat(32), r#"{"pip":{"requirements":["six"]}}"#],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO targets (name, kind, host, port, user, auth, host_key_algorithm, host_key_fingerprint, machine_id, agent_version, agent_build, state, facts, checks, created_at, updated_at) \
             VALUES ('box', 'vm', 'h', 22, 'u', '{\"method\":\"agent\"}', 'ssh-ed25519', 'SHA256:x', 'm', '0.1.0', 'b', 'ready', '', '[]', 't0', 't0')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let env = store
        .env(&EnvRef {
            name: "sk",
            version: None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        (env.version, env.hash.as_str()),
        (1, "ab".repeat(32).as_str())
    );
    assert_eq!(env.origin, super::EnvOrigin::default());
    let target = store.target("box").unwrap().unwrap();
    assert!(target.jumps.is_empty());
    assert!(target.network.is_empty());
}
