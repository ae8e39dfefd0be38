-- The control API's audit: every authenticated, well-formed operator command, recorded before
-- it is carried out and completed with its answer. Append-only.
-- PostgreSQL twin of migrations/0002_control_audit.sql.
CREATE TABLE control_audit (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TEXT    COLLATE "C" NOT NULL,
    who         TEXT    NOT NULL,
    remote      TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    argument    TEXT,
    reason      TEXT    NOT NULL,
    -- The client's idempotency key: a repeated request is answered from here, not run again.
    request_id  TEXT    UNIQUE,
    finished_at TEXT    COLLATE "C",
    ok          BOOLEAN,
    status      INTEGER,
    outcome     TEXT,
    error       TEXT
);
CREATE INDEX control_audit_at ON control_audit (at);
