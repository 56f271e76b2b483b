//! The workspace database's schema, as the migrations that make it: a new
//! workspace runs them all, an older one those it lacks (`PRAGMA
//! user_version` counts how many ran). Never edit one that shipped; add the
//! next.

/// Schema migrations; entry `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: workspace identity, targets, attach reservations.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE targets (
         name TEXT PRIMARY KEY,
         kind TEXT NOT NULL,
         host TEXT NOT NULL,
         port INTEGER NOT NULL,
         user TEXT NOT NULL,
         auth TEXT NOT NULL,
         resource_id TEXT,
         host_key_algorithm TEXT NOT NULL,
         host_key_fingerprint TEXT NOT NULL,
         machine_id TEXT NOT NULL,
         agent_version TEXT NOT NULL,
         agent_build TEXT NOT NULL,
         state TEXT NOT NULL,
         facts TEXT NOT NULL,
         checks TEXT NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         UNIQUE (host_key_fingerprint, machine_id)
     );
     CREATE TABLE attach_reservations (
         machine TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         pid INTEGER NOT NULL,
         pid_start TEXT NOT NULL,
         started_at TEXT NOT NULL
     );",
    // 2: runs started from this workspace, to find a run's target.
    "CREATE TABLE runs (
         id TEXT PRIMARY KEY,
         target TEXT NOT NULL,
         name TEXT,
         command TEXT NOT NULL,
         snapshot TEXT NOT NULL,
         created_at TEXT NOT NULL
     );",
    // 3: environments (named specs; the hash is the spec's identity).
    "CREATE TABLE envs (
         name TEXT PRIMARY KEY,
         hash TEXT NOT NULL,
         kind TEXT NOT NULL,
         spec TEXT NOT NULL,
         sources TEXT NOT NULL,
         created_at TEXT NOT NULL
     );
     ALTER TABLE runs ADD COLUMN env TEXT;",
    // 4: run history: each run as moor last heard of it (RunInfo JSON).
    "ALTER TABLE runs ADD COLUMN info TEXT;
     ALTER TABLE runs ADD COLUMN heard_at TEXT;",
    // 5: the jump hosts a target is reached through (JSON list).
    "ALTER TABLE targets ADD COLUMN jumps TEXT NOT NULL DEFAULT '[]';",
    // 6: environment versions (NAME:N); the files each was made from.
    "CREATE TABLE env_versions (
         name TEXT NOT NULL,
         version INTEGER NOT NULL,
         hash TEXT NOT NULL,
         kind TEXT NOT NULL,
         spec TEXT NOT NULL,
         sources TEXT NOT NULL,
         origin TEXT NOT NULL DEFAULT '{}',
         created_at TEXT NOT NULL,
         PRIMARY KEY (name, version)
     );
     INSERT INTO env_versions (name, version, hash, kind, spec, sources, created_at)
         SELECT name, 1, hash, kind, spec, sources, created_at FROM envs;
     DROP TABLE envs;
     ALTER TABLE env_versions RENAME TO envs;",
    // 7: a target's network settings (proxy, CA), JSON.
    "ALTER TABLE targets ADD COLUMN network TEXT NOT NULL DEFAULT '{}';",
    // 8: pools of targets; jobs (one command on several nodes), each node a
    // run of the runs table.
    "CREATE TABLE pools (
         name TEXT PRIMARY KEY,
         targets TEXT NOT NULL,
         created_at TEXT NOT NULL
     );
     CREATE TABLE jobs (
         id TEXT PRIMARY KEY,
         name TEXT,
         experiment TEXT,
         info TEXT NOT NULL,
         created_at TEXT NOT NULL
     );
     ALTER TABLE runs ADD COLUMN job TEXT;
     ALTER TABLE runs ADD COLUMN node INTEGER;
     CREATE INDEX runs_job ON runs (job);",
    // 9: endpoints created from this workspace: which target serves each.
    "CREATE TABLE endpoints (
         name TEXT PRIMARY KEY,
         target TEXT NOT NULL,
         created_at TEXT NOT NULL
     );",
    // 10: who started a run, in a team server's workspace (MOOR_TEAM_USER).
    "ALTER TABLE runs ADD COLUMN started_by TEXT;",
];
