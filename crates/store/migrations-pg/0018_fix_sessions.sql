-- PostgreSQL twin of migrations/0018_fix_sessions.sql.
-- A FIX session's state (the FIX venue, docs/fix-evaluation.md): the sequence numbers it
-- sends and expects, kept across restarts, and the messages it sent, kept for the
-- counterparty's ResendRequest. `session` names it: BeginString:SenderCompID->TargetCompID.
CREATE TABLE fix_sessions (
    session TEXT PRIMARY KEY,
    next_sender BIGINT NOT NULL,
    next_target BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE fix_sent (
    session TEXT NOT NULL,
    seq BIGINT NOT NULL,
    msg_type TEXT NOT NULL,
    frame BYTEA NOT NULL,
    PRIMARY KEY (session, seq)
);
