-- Every backtest `vigil backtest` and `vigil gate` ran (see docs/backtest.md), so that the
-- deflated Sharpe ratio counts the trials actually made on a model: a model tried fifty
-- times is judged against the best of fifty tries of luck. Append-only.
-- PostgreSQL twin of migrations/0008_backtests.sql.
CREATE TABLE backtests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The model's name (its trials count across its versions) and version.
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    -- The data's SHA-256.
    data_sha256 TEXT NOT NULL,
    -- backtest or gate
    command TEXT NOT NULL,
    -- The wall clock, RFC 3339 UTC.
    at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX backtests_model ON backtests (model);
