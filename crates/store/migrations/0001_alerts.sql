-- Alerting: the engine's state, the notification log, and the requests of `vigil alerts`.

-- The alert engine's state (active alerts, silences, the day's notices, grouping marks) as
-- one JSON document, replaced whole on every change.
CREATE TABLE alert_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    state    TEXT    NOT NULL,
    saved_at TEXT    NOT NULL
);

-- Append-only: every notice, suppression, delivery attempt, ack and silence.
CREATE TABLE alert_log (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT    NOT NULL,
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
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT    NOT NULL,
    who        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    applied_at TEXT,
    ok         INTEGER,
    result     TEXT
);
CREATE INDEX alert_requests_pending ON alert_requests (applied_at) WHERE applied_at IS NULL;
