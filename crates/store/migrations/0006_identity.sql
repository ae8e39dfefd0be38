-- Whether vigil has run with this store before (see docs/recovery.md, "A store that lost
-- its history"): a store that lost its history must never look like a fresh start.
-- The store's identity, one row: a random id given at the first start, which the identity
-- file beside the store (`<store.path>.identity`) repeats, and the starts counted.
CREATE TABLE store_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    install_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    runs INTEGER NOT NULL,
    last_started_at TEXT
);

-- Per book, the most the journal ever held: orders and fills journaled (rows are only ever
-- added), and the latest bar handled or decided. Kept by every journal transaction, never
-- lowered: a journal that holds less than its high-water mark lost rows.
CREATE TABLE store_high_water (
    book TEXT PRIMARY KEY,
    orders INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    last_bar_at TEXT
);
INSERT INTO store_high_water (book, orders, fills, last_bar_at)
SELECT b.book,
    (SELECT COUNT(*) FROM journal_orders o WHERE o.book = b.book),
    (SELECT COUNT(*) FROM journal_fills f WHERE f.book = b.book),
    (SELECT MAX(t) FROM (
        SELECT c.last_bar_at AS t FROM journal_cash c WHERE c.book = b.book
        UNION ALL SELECT o.decided_at FROM journal_orders o WHERE o.book = b.book) AS times)
FROM (SELECT book FROM journal_cash UNION SELECT book FROM journal_orders
      UNION SELECT book FROM journal_fills) AS b;

-- Every rebuild of a book's journal from the broker an operator asked for
-- (`vigil run --rebuild-journal-from-broker`), append-only: when, why, what was found.
CREATE TABLE journal_rebuilds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    book TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    summary TEXT NOT NULL
);
