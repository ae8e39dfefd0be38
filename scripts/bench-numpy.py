#!/usr/bin/env python3
"""The EMA-cross vectorized backtest of `vigil backtest` (crates/backtest/src/vectorized.rs),
written the way a numpy/pandas user would, timed for a side-by-side benchmark (issue 21,
point 8).

What it computes, as vigil does: the closes as float64; two EMAs of the close with
alpha = 2/(span + 1), seeded with the first close (pandas `ewm(span, adjust=False)`; fast
span 10, slow 30, the spans of models/ema_cross); output = fast - slow; position =
sign(output) (+1, -1, 0; shorts allowed, as `[signal] allow_short = true`), flat for the
first `slow span` bars (the model's warm-up, as in vigil); the position
decided at bar t's close earns bar t+1's return; the return of bar t is
previous_position * (close[t]/close[t-1] - 1) - cost_per_unit * |position change|, with
cost_per_unit = (commission_bps + slippage_bps) / 10000. Then the compounded total return,
the Sharpe ratio (mean / sample std of the per-bar returns, times sqrt(bars a year)), the
maximum drawdown of the compounded equity (from a starting peak of 1), and the number of
position changes.

What it times (time.perf_counter; the best and the median of --runs runs, 5 by default):
  engine      from a numpy array of closes already in memory to the metrics: the EMAs by
              pandas `Series.ewm(..., adjust=False).mean()` (compiled code, as a pandas user
              would write it, not a Python loop), the rest in numpy. Reported in bars/s.
  end to end  `pandas.read_csv(path, usecols=['close'])` plus the engine: the CSV file to
              the metrics, in seconds.
`vigil backtest` does more in its run (a one-bar-lagged and a doubled-cost probe, the trade
list, the information coefficient, the probabilistic Sharpe ratios); set its timing beside
these figures with that in mind.

Costs: 1 bp of commission and 1 bp of slippage by default, the embedded config's
`[execution]` values, so that the figures can be checked against `vigil backtest --json` run
without `--config`; --commission-bps and --slippage-bps change them (config/
production.example.toml has 1 and 2).

Bars a year: the script reads only the close column, so the Sharpe ratio's annualisation is a
parameter, --periods-per-year, by default 365.25 * 24 * 60 = 525960 (one-minute bars around
the clock), which is what `vigil backtest --all-day` uses on one-minute bars. To compare with
`vigil backtest` on an exchange calendar, pass the `periods_per_year` its --json prints. The
per-bar Sharpe ratio is printed too: it does not depend on the annualisation.

Run:
    /work/venv/bin/pip install numpy pandas
    python3 scripts/bench-numpy.py FILE            # FILE: timestamp,open,high,low,close,volume
    python3 scripts/bench-numpy.py FILE --runs 5 --commission-bps 1 --slippage-bps 2
    /usr/bin/time python3 scripts/bench-numpy.py FILE --once   # the whole process, once
The one-minute file of the other benchmarks is made by
    vigil data synth --bars 1000000 --seed 42 --out /tmp/bench/bars.csv
If FILE does not exist, the script writes one there (a seeded numpy random walk of --bars
one-minute bars, not vigil's generator: its figures will not be vigil's file's) and says so.
Check the figures with
    vigil backtest --model models/ema_cross --data FILE --all-day --json
(summary.total_return, summary.sharpe, summary.max_drawdown, position_changes).
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd

FAST_SPAN = 10
SLOW_SPAN = 30


def engine(closes, cost_per_unit, periods_per_year):
    """The metrics of the EMA cross over `closes` (a float64 numpy array)."""
    s = pd.Series(closes, copy=False)
    fast = s.ewm(span=FAST_SPAN, adjust=False).mean().to_numpy()
    slow = s.ewm(span=SLOW_SPAN, adjust=False).mean().to_numpy()
    position = np.sign(fast - slow)
    # Silent for the slow span's first bars, as vigil's EMA cross is (its warm-up).
    position[:SLOW_SPAN] = 0.0
    previous = np.empty_like(position)
    previous[0] = 0.0
    previous[1:] = position[:-1]
    market = np.empty_like(closes)
    market[0] = 0.0
    np.divide(closes[1:], closes[:-1], out=market[1:])
    market[1:] -= 1.0
    change = np.abs(position - previous)
    returns = previous * market - cost_per_unit * change
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum(np.maximum.accumulate(equity), 1.0)
    max_drawdown = max(float(np.max(1.0 - equity / peak)), 0.0)
    mean = float(returns.mean())
    std = float(returns.std(ddof=1))
    per_bar_sharpe = mean / std if std > 0.0 else float("nan")
    return {
        "bars": int(closes.size),
        "total_return": float(equity[-1] - 1.0),
        "sharpe": per_bar_sharpe * np.sqrt(periods_per_year),
        "per_bar_sharpe": per_bar_sharpe,
        "max_drawdown": max_drawdown,
        "position_changes": int(np.count_nonzero(change)),
        "exposure": float(np.count_nonzero(previous)) / closes.size,
    }


def read_closes(path):
    """The close column of a bars CSV file, as a float64 numpy array."""
    return pd.read_csv(path, usecols=["close"], dtype={"close": np.float64})["close"].to_numpy()


def end_to_end(path, cost_per_unit, periods_per_year):
    return engine(read_closes(path), cost_per_unit, periods_per_year)


def timed(fn, runs):
    """Each run's wall time in seconds, and the last run's result."""
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def synthesise(path, bars, seed):
    """A seeded random walk of one-minute bars, written to `path`."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.0005, bars)
    close = 100.0 * np.exp(np.cumsum(steps))
    open_ = np.empty_like(close)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    spread = np.abs(rng.normal(0.0, 0.0003, bars)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.integers(100, 10_000, bars)
    start = np.datetime64("2024-01-01T00:00:00")
    times = start + np.arange(bars) * np.timedelta64(60, "s")
    frame = pd.DataFrame(
        {
            "timestamp": np.datetime_as_string(times, unit="s").astype(object) + "Z",
            "open": open_.round(4),
            "high": high.round(4),
            "low": low.round(4),
            "close": close.round(4),
            "volume": volume,
        }
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frame.to_csv(path, index=False)


def main():
    p = argparse.ArgumentParser(
        description="numpy/pandas EMA-cross vectorized backtest, timed (see the docstring)."
    )
    p.add_argument("file", help="bars CSV: timestamp,open,high,low,close,volume")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each kind (default 5)")
    p.add_argument("--commission-bps", type=float, default=1.0)
    p.add_argument("--slippage-bps", type=float, default=1.0)
    p.add_argument(
        "--periods-per-year",
        type=float,
        default=365.25 * 24 * 60,
        help="bars a year for the Sharpe ratio (default 525960: one-minute bars, all day)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="read and compute once, print the figures, no timings (for timing the whole "
        "process from outside, as `/usr/bin/time` times `vigil backtest`)",
    )
    p.add_argument("--bars", type=int, default=1_000_000, help="bars to write if FILE is absent")
    p.add_argument("--seed", type=int, default=42, help="seed of the file written if FILE is absent")
    a = p.parse_args()
    if a.runs < 1:
        p.error("--runs must be at least 1")

    if not os.path.exists(a.file):
        print(
            f"{a.file} does not exist: writing {a.bars} one-minute bars there, a numpy random "
            f"walk with seed {a.seed} (not `vigil data synth`'s file)"
        )
        synthesise(a.file, a.bars, a.seed)

    cost = (a.commission_bps + a.slippage_bps) / 10_000.0
    if a.once:
        figures = end_to_end(a.file, cost, a.periods_per_year)
        print(" ".join(f"{k}={v:.10g}" for k, v in figures.items()))
        return
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(
        f"model: EMA cross, fast span {FAST_SPAN}, slow span {SLOW_SPAN}, sign, shorts allowed; "
        f"costs: commission {a.commission_bps:g} bps + slippage {a.slippage_bps:g} bps = "
        f"{cost:g} per unit of position change; {a.periods_per_year:g} bars a year"
    )

    closes = read_closes(a.file)
    if closes.size < 2:
        sys.exit(f"{a.file}: fewer than two bars")
    if not np.all(np.isfinite(closes)):
        sys.exit(f"{a.file}: a close is missing or not a number")

    engine_times, figures = timed(lambda: engine(closes, cost, a.periods_per_year), a.runs)
    e2e_times, e2e_figures = timed(lambda: end_to_end(a.file, cost, a.periods_per_year), a.runs)
    if repr(e2e_figures) != repr(figures):
        sys.exit("the end-to-end run's figures differ from the engine's")

    print(f"\n{a.file}: {figures['bars']} bars")
    print(f"  total_return      {figures['total_return']:.10g}")
    print(f"  sharpe            {figures['sharpe']:.10g}  (per bar {figures['per_bar_sharpe']:.10g})")
    print(f"  max_drawdown      {figures['max_drawdown']:.10g}")
    print(f"  position_changes  {figures['position_changes']}")
    print(f"  exposure          {figures['exposure']:.10g}")

    n = figures["bars"]
    rows = [
        ("engine (closes in memory)", engine_times),
        ("end to end (read_csv + engine)", e2e_times),
    ]
    print(f"\ntimings over {a.runs} runs each:")
    print(f"  {'':32} {'best s':>10} {'median s':>10} {'best bars/s':>14} {'median bars/s':>14}")
    for label, times in rows:
        best, median = min(times), statistics.median(times)
        print(f"  {label:32} {best:10.4f} {median:10.4f} {n / best:14,.0f} {n / median:14,.0f}")


if __name__ == "__main__":
    main()
