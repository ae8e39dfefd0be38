-- Alerting: the engine's state, the notification log, and the requests of `vigil alerts`.
-- PostgreSQL twin of migrations/0001_alerts.sql: the same tables and columns. Times are
-- TEXT as in SQLite (RFC 3339, UTC, milliseconds) with the "C" collation, so that they
-- compare and sort byte by byte, in time order, as SQLite's BINARY does.

-- The alert engine's state (active alerts, silences, the day's notices, grouping marks) as
-- one JSON document, replaced whole on every change.
CREATE TABLE alert_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    state    TEXT    NOT NULL,
    saved_at TEXT    COLLATE "C" NOT NULL
);

-- Append-only: every notice, suppression, delivery attempt, ack and silence.
CREATE TABLE alert_log (
    seq      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TEXT    COLLATE "C" NOT NULL,
    kind     TEXT    NOT NULL,
    alert_id TEXT,
    rule     TEXT,
    severity TEXT,
    channel  TEXT,
    detail   TEXT    NOT NULL
);
CREATE INDEX alert_log_at ON alert_log (at);

-- What `vigil alerts ack|silence|unsilence` asked; the running Monitor applies each once
-- (or the next `vigil run` does) and writes the result.
CREATE TABLE alert_requests (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TEXT    COLLATE "C" NOT NULL,
    who        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    applied_at TEXT    COLLATE "C",
    ok         BOOLEAN,
    result     TEXT
);
CREATE INDEX alert_requests_pending ON alert_requests (applied_at) WHERE applied_at IS NULL;
