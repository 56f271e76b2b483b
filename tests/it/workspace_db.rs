//! The workspace database after bad luck, with a target attached to a real
//! test host: a missing, emptied or corrupt `moor.db` is refused with the
//! cause and a fix (never silently a new, empty workspace), and the
//! workspace comes back whole when the file is restored.

use moor_tests::{assert_exit, docker_or_skip, Fixture, HostSpec, Output};

const MOOR: &str = env!("CARGO_BIN_EXE_moor");

fn assert_refused(out: &Output, says: &str) {
    assert_exit(out, 1);
    let line = out.stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("error: ") && line.contains(says),
        "{}",
        out.stderr
    );
    assert!(line.contains("; fix: "), "{line}");
}

#[test]
fn a_lost_or_broken_database_is_refused_and_a_restored_one_is_whole_again() {
    if !docker_or_skip() {
        return;
    }
    let f = Fixture::new(MOOR, HostSpec::default());
    assert_exit(&f.attach("box", &[]), 0);
    let ws = f.moor.workspace();
    let db = ws.join("moor.db");
    let backup = f.moor.home().join("moor.db.backup");
    // A consistent copy: checkpointed into the main file first.
    assert_exit(&f.moor.run(&["list"]), 0);
    let conn = rusqlite_free_copy(&db, &backup);
    assert!(conn, "could not back up the database");

    for (damage, says) in [
        (
            "missing",
            "is missing or empty, but the workspace was in use",
        ),
        ("empty", "is missing or empty, but the workspace was in use"),
        ("garbage", "is corrupt"),
    ] {
        for side in ["moor.db-wal", "moor.db-shm"] {
            let _ = std::fs::remove_file(ws.join(side));
        }
        match damage {
            "missing" => std::fs::remove_file(&db).unwrap(),
            "empty" => std::fs::write(&db, b"").unwrap(),
            _ => std::fs::write(&db, vec![0x5a; 8192]).unwrap(),
        }
        let out = f.moor.run(&["list"]);
        assert_refused(&out, says);
        // Refused, not recreated: nothing new was written.
        let len = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        assert!(
            len == 0 || damage == "garbage",
            "{damage}: a new database was made"
        );
        let json = f.moor.run(&["list", "--json"]);
        assert_eq!(json.json()["error"]["kind"], "workspace", "{}", json.stdout);
    }

    std::fs::copy(&backup, &db).unwrap();
    let list = f.moor.run(&["list", "--json"]);
    assert_exit(&list, 0);
    assert!(list.stdout.contains("\"box\""), "{}", list.stdout);
    assert_exit(&f.moor.run(&["status", "box"]), 0);
}

/// Copies a SQLite database in WAL mode by waiting for moor's own
/// checkpoint: after every connection closed, the WAL is folded into the
/// main file (SQLite does it at the last close), so a plain copy is whole.
fn rusqlite_free_copy(db: &std::path::Path, to: &std::path::Path) -> bool {
    let wal = db.with_file_name("moor.db-wal");
    let folded = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
    folded && std::fs::copy(db, to).is_ok()
}
