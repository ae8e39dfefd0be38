-- PostgreSQL twin of migrations/0014_journal_checkpoints.sql.
-- Checkpoints of a book's journal (see docs/journal.md, "Checkpoints"), so that a restart
-- reads what was journaled since the last one, not every fill ever journaled: through a
-- fill (by `journal_fills.seq`) and an order (by `journal_orders.seq`), how many fills and
-- orders the book held and what the fills moved the cash by (their sum, as the fill rows
-- say: quantity, price, commission). Append-only; written by the journal's writer every
-- so many fills, on a read of the rows since the previous checkpoint.
CREATE TABLE journal_checkpoints (
    book TEXT NOT NULL,
    fills_through BIGINT NOT NULL,
    fills BIGINT NOT NULL,
    fill_cash_flow TEXT NOT NULL,
    last_fill_id TEXT,
    orders_through BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    written_at TEXT NOT NULL,
    PRIMARY KEY (book, fills_through, orders_through)
);
-- The fills and orders after a checkpoint, read by range; the last decision, by index.
CREATE INDEX journal_fills_seq ON journal_fills (book, seq);
CREATE INDEX journal_orders_seq ON journal_orders (book, seq);
CREATE INDEX journal_orders_decided ON journal_orders (book, decided_at);
