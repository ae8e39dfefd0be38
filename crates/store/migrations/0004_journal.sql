-- The execution journal: every order intent before it goes to the venue, the venue's
-- answers, every fill, and the positions and cash they add up to. The venue (the broker) is
-- the source of truth; this is what vigil knew, for recovery and reconciliation.
-- `book` names the account the rows belong to: an external broker keeps one book across
-- processes; the in-process paper venue starts a new one with every session.
CREATE TABLE journal_orders (
    book TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    reference_price TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    -- intent (journaled, not yet answered), accepted, rejected, partially_filled, filled,
    -- cancelled, failed (never reached the venue)
    status TEXT NOT NULL,
    venue_order_id TEXT,
    filled_quantity TEXT NOT NULL DEFAULT '0',
    reason TEXT,
    journaled_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (book, client_order_id)
);
CREATE INDEX journal_orders_open ON journal_orders (book, status);

CREATE TABLE journal_fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    book TEXT NOT NULL,
    fill_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    filled_at TEXT NOT NULL,
    journaled_at TEXT NOT NULL,
    UNIQUE (book, fill_id)
);

CREATE TABLE journal_positions (
    book TEXT NOT NULL,
    symbol TEXT NOT NULL,
    quantity TEXT NOT NULL,
    avg_price TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (book, symbol)
);

CREATE TABLE journal_cash (
    book TEXT PRIMARY KEY,
    cash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
