-- Every backtest `vigil backtest` and `vigil gate` ran (see docs/backtest.md), so that the
-- deflated Sharpe ratio counts the trials actually made on a model: a model tried fifty
-- times is judged against the best of fifty tries of luck. Append-only.
CREATE TABLE backtests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The model's name (its trials count across its versions) and version.
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    -- The data's SHA-256.
    data_sha256 TEXT NOT NULL,
    -- backtest or gate
    command TEXT NOT NULL,
    -- The wall clock, RFC 3339 UTC.
    at TEXT NOT NULL
);
CREATE INDEX backtests_model ON backtests (model);
