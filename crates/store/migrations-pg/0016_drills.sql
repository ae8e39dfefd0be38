-- Every `vigil drill` run against a running stack (docs/operations.md, "Drills"): which drill
-- (`all` is the monthly drill over every class), when, whether every check passed, its
-- score, and its report as JSON. The monthly checklist fails when no `all` passed in the
-- last 31 days. Append-only.
-- PostgreSQL twin of migrations/0016_drills.sql.
CREATE TABLE drill_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    drill TEXT NOT NULL,
    -- The wall clock, RFC 3339 UTC.
    started_at TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C" NOT NULL,
    -- 1 when every check of every class passed.
    passed BIGINT NOT NULL,
    checks_passed BIGINT NOT NULL,
    checks_total BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX drill_runs_finished ON drill_runs (finished_at);
