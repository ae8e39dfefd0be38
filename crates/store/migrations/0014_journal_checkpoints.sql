-- Checkpoints of a book's journal (see docs/journal.md, "Checkpoints"), so that a restart
-- reads what was journaled since the last one, not every fill ever journaled: through a
-- fill (by `journal_fills.seq`) and an order (by the order rows were inserted in), how many
-- fills and orders the book held and what the fills moved the cash by (their sum, as the
-- fill rows say: quantity, price, commission). Append-only; written by the journal's
-- writer every so many fills, on a read of the rows since the previous checkpoint.
CREATE TABLE journal_checkpoints (
    book TEXT NOT NULL,
    fills_through INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    fill_cash_flow TEXT NOT NULL,
    last_fill_id TEXT,
    orders_through INTEGER NOT NULL,
    orders INTEGER NOT NULL,
    written_at TEXT NOT NULL,
    PRIMARY KEY (book, fills_through, orders_through)
);
-- The fills and orders after a checkpoint, read by range; the last decision, by index.
CREATE INDEX journal_fills_seq ON journal_fills (book, seq);
-- SQLite: an index holds the rowid after its columns, so this one is (book, rowid).
CREATE INDEX journal_orders_book ON journal_orders (book);
CREATE INDEX journal_orders_decided ON journal_orders (book, decided_at);
