-- PostgreSQL twin of migrations/0019_fix_executions.sql.
-- The ExecutionReports a FIX session received (fills, cancels, rejects), each once by its
-- ExecID: a resent duplicate (PossDupFlag) is not booked twice, the ones received after the
-- last fill the journal holds are handed over again after a crash, and the positions and
-- cash the executions add up to are the venue's book where the counterparty has none.
-- `ordinal` is the order of arrival within the session.
CREATE TABLE fix_executions (
    session TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    exec_id TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL,
    exec_type TEXT NOT NULL,
    ord_status TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    last_qty TEXT NOT NULL,
    last_px TEXT NOT NULL,
    cum_qty TEXT NOT NULL,
    leaves_qty TEXT NOT NULL,
    commission TEXT NOT NULL,
    transact_time TEXT NOT NULL,
    text TEXT,
    PRIMARY KEY (session, exec_id),
    UNIQUE (session, ordinal)
);
