-- Recovery and reconciliation (see docs/journal.md).
-- PostgreSQL twin of migrations/0005_recovery.sql.
-- The cash a book opened with, so that its cash can be recomputed from the fills; NULL for
-- a book opened before this migration that already had fills.
ALTER TABLE journal_cash ADD COLUMN opening_cash TEXT;
UPDATE journal_cash SET opening_cash = cash
    WHERE NOT EXISTS (SELECT 1 FROM journal_fills f WHERE f.book = journal_cash.book);
-- The venue's newest fill when the book opened: recovery looks for fills after it until
-- the journal holds one of its own. NULL: the venue had none (every fill is after it).
ALTER TABLE journal_cash ADD COLUMN opening_fill_cursor TEXT;
-- The market time of the last bar the Execution agent handled: a restart resumes after it.
ALTER TABLE journal_cash ADD COLUMN last_bar_at TEXT COLLATE "C";

-- What reconciliation changed to agree with the venue (the source of truth), append-only:
-- a position or the cash set to the venue's figure, and why.
CREATE TABLE journal_adjustments (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book TEXT NOT NULL,
    -- position or cash
    kind TEXT NOT NULL,
    symbol TEXT,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    avg_price TEXT,
    reason TEXT NOT NULL,
    journaled_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX journal_adjustments_book ON journal_adjustments (book, seq);
