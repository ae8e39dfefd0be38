-- Every `vigil drill` run against a running stack (docs/operations.md, "Drills"): which drill
-- (`all` is the monthly drill over every class), when, whether every check passed, its
-- score, and its report as JSON. The monthly checklist fails when no `all` passed in the
-- last 31 days. Append-only.
CREATE TABLE drill_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    drill TEXT NOT NULL,
    -- The wall clock, RFC 3339 UTC.
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    -- 1 when every check of every class passed.
    passed INTEGER NOT NULL,
    checks_passed INTEGER NOT NULL,
    checks_total INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX drill_runs_finished ON drill_runs (finished_at);
