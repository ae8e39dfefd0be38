-- The paper broker's book. Money, quantities and prices are decimal text (exact); times are
-- RFC 3339 in UTC with nanoseconds (fixed width: they sort as text in time order).

-- The account: one row.
CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Random hex made when the file is created; part of every id the broker hands out.
    instance TEXT NOT NULL,
    initial_cash TEXT NOT NULL,
    cash TEXT NOT NULL,
    -- The market clock: bars at or before it have been processed. NULL before the first.
    clock TEXT
);

CREATE TABLE orders (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    qty TEXT NOT NULL,
    limit_price TEXT,
    filled_qty TEXT NOT NULL,
    filled_notional TEXT NOT NULL,
    status TEXT NOT NULL,
    reject_reason TEXT,
    -- Only bars strictly after this market time may fill the order.
    after_time TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    filled_at TEXT,
    canceled_at TEXT
);

CREATE INDEX orders_by_status ON orders (status, seq);

-- Every execution, append-only: the FILL account activities.
CREATE TABLE fills (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders (id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    cum_qty TEXT NOT NULL,
    leaves_qty TEXT NOT NULL,
    transaction_time TEXT NOT NULL
);

-- Non-flat positions.
CREATE TABLE positions (
    symbol TEXT PRIMARY KEY,
    qty TEXT NOT NULL,
    avg_entry_price TEXT NOT NULL
);
