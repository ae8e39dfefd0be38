-- PostgreSQL twin of migrations/0013_journal_ledgers.sql.
-- The book split by model version during and after a canary (vigil_core::SubLedgers as
-- JSON, see docs/deploy.md): rewritten with the fills and crosses that change it, so that a
-- restart, even after kill -9, resumes each version's positions, cash and P&L.
CREATE TABLE journal_ledgers (
    book TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
