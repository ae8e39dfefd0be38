-- Whether vigil has run with this store before (see docs/recovery.md, "A store that lost
-- its history"). PostgreSQL twin of migrations/0006_identity.sql; the identity file is
-- `<log.dir>/store.identity` for a store in PostgreSQL.
CREATE TABLE store_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    install_id TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    runs BIGINT NOT NULL,
    last_started_at TEXT COLLATE "C"
);

-- Per book, the most the journal ever held; never lowered.
CREATE TABLE store_high_water (
    book TEXT PRIMARY KEY,
    orders BIGINT NOT NULL,
    fills BIGINT NOT NULL,
    last_bar_at TEXT COLLATE "C"
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

-- Every rebuild of a book's journal from the broker an operator asked for, append-only.
CREATE TABLE journal_rebuilds (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book TEXT NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    reason TEXT NOT NULL,
    summary TEXT NOT NULL
);
