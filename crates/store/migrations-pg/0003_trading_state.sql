-- The Risk agent's trading state (the circuit breaker), so that a halt survives a restart.
-- PostgreSQL twin of migrations/0003_trading_state.sql.
CREATE TABLE trading_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT COLLATE "C" NOT NULL
);
