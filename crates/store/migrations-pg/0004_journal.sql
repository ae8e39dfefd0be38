-- The execution journal: every order intent before it goes to the venue, the venue's
-- answers, every fill, and the positions and cash they add up to. The venue (the broker) is
-- the source of truth; this is what vigil knew, for recovery and reconciliation.
-- `book` names the account the rows belong to: an external broker keeps one book across
-- processes; the in-process paper venue starts a new one with every session.
--
-- PostgreSQL twin of migrations/0004_journal.sql: the same tables and columns, money as
-- TEXT (the exact decimal as written, read back losslessly into rust_decimal::Decimal) and
-- times as TEXT (RFC 3339, UTC, milliseconds) with the "C" collation, as in SQLite.
-- SQLite keeps the order rows were inserted in by its implicit rowid; here `seq`, an
-- identity column, keeps it for journal_orders and journal_cash.
CREATE TABLE journal_orders (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    book TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    reference_price TEXT NOT NULL,
    decided_at TEXT COLLATE "C" NOT NULL,
    -- intent (journaled, not yet answered), accepted, rejected, partially_filled, filled,
    -- cancelled, failed (never reached the venue)
    status TEXT NOT NULL,
    venue_order_id TEXT,
    filled_quantity TEXT NOT NULL DEFAULT '0',
    reason TEXT,
    journaled_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (book, client_order_id)
);
CREATE INDEX journal_orders_open ON journal_orders (book, status);

CREATE TABLE journal_fills (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book TEXT NOT NULL,
    fill_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    filled_at TEXT COLLATE "C" NOT NULL,
    journaled_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (book, fill_id)
);

-- Read by symbol: the "C" collation orders symbols byte by byte, as SQLite does.
CREATE TABLE journal_positions (
    book TEXT NOT NULL,
    symbol TEXT COLLATE "C" NOT NULL,
    quantity TEXT NOT NULL,
    avg_price TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (book, symbol)
);

CREATE TABLE journal_cash (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    book TEXT PRIMARY KEY,
    cash TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
