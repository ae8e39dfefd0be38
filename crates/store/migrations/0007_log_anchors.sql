-- The log chain's anchors (see docs/logs.md): the chain's head (its newest line's file,
-- sequence number and hash) as the log writer saw it when it started, at each flush and
-- when it stopped, kept outside the log so that `vigil logs verify` finds lines cut from
-- the end, the newest files deleted and forgeries re-hashed. Append-only; older flush
-- anchors are thinned (the last of each file and hour stays).
CREATE TABLE log_anchors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The chain: the hash of its first line.
    chain TEXT NOT NULL,
    -- The log file (its name in the log folder).
    file TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    -- start, flush or stop
    kind TEXT NOT NULL,
    -- The writer's wall clock, RFC 3339 UTC.
    at TEXT NOT NULL
);
CREATE INDEX log_anchors_chain ON log_anchors (chain, id);
