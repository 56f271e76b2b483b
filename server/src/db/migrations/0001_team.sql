-- The team: users, their tokens (hashed) and the audit log.
-- Written in the SQL that PostgreSQL and SQLite both take.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL
);

CREATE INDEX tokens_user ON tokens (user_name);

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE INDEX audit_at ON audit (at_ms);
