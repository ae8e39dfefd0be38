-- The report of every `vigil backtest` and `vigil gate` run (docs/backtest.md): which model,
-- on which data, the gate's verdict, the figures as JSON and the page itself (one
-- self-contained HTML file: equity, drawdown, folds, the gate's table). The dashboard lists
-- them and shows each page. Append-only.
CREATE TABLE backtest_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The model's name and version.
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    -- backtest or gate
    command TEXT NOT NULL,
    -- The bars file as given, and its SHA-256.
    data TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,
    -- The wall clock, RFC 3339 UTC.
    at TEXT NOT NULL,
    -- passed or failed for a gate; NULL for a backtest.
    verdict TEXT,
    -- The figures of each layer (and the gate's checks), JSON.
    summary TEXT NOT NULL,
    -- The page.
    html TEXT NOT NULL
);
CREATE INDEX backtest_reports_at ON backtest_reports (at);
