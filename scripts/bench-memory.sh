#!/usr/bin/env bash
# Memory over a long session: BARS synthetic one-minute bars (default 2,000,000, about 20
# years of sessions; seed 42) at full speed through all six agents with logging and
# monitoring on, with fast EMAs (FAST/SLOW, default 2/5) so that an order goes out every
# few bars, on the in-process paper venue. The process's resident set (VmRSS) is sampled
# every 50 ms; this prints the curve (RSS against the share of the run's wall time) and
# the peak. Flat after warm-up means nothing grows with the orders and bars handled.
# Usage: scripts/bench-memory.sh        (BARS=…, SEED=…, FAST=…, SLOW=…, BIN=…)
set -euo pipefail
cd "$(dirname "$0")/.."
bars=${BARS:-2000000}
seed=${SEED:-42}
fast=${FAST:-2}
slow=${SLOW:-5}
bin=${BIN:-./target/release/vigil}
if [ -z "${BIN:-}" ]; then cargo build --release --locked -p vigil; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" data synth --bars "$bars" --seed "$seed" --out "$work/bars.csv"
sed -e 's/^line_pct = .*/line_pct = "0.99"/' \
    -e "s/^fast_span = .*/fast_span = $fast/" \
    -e "s/^slow_span = .*/slow_span = $slow/" config/vigil.toml > "$work/vigil.toml"
printf '\n[store]\npath = "%s/state/vigil.db"\n' "$work" >> "$work/vigil.toml"
# The weekly drawdown rule (CRITICAL: it trips the breaker) off: the random walk falls 5% in
# a week now and then, and a tripped breaker would stop the orders measured here.
printf '\n[[monitor.rules]]\nname = "weekly_drawdown_high"\nmetric = "weekly_drawdown_ratio"\nop = ">"\nvalue = 0.05\nlevel = "CRITICAL"\nenabled = false\n' >> "$work/vigil.toml"
"$bin" run --config "$work/vigil.toml" --data "$work/bars.csv" --speed max \
  --log-dir "$work/logs" --json > "$work/summary.json" 2>/dev/null &
pid=$!
start=$(date +%s.%N)
: > "$work/rss"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && printf '%s %s\n' "$(date +%s.%N)" "$rss" >> "$work/rss"
  sleep 0.05
done
wait "$pid"
orders=$(sed -n 's/.*"orders": *\([0-9]*\).*/\1/p' "$work/summary.json" | head -1)
secs=$(sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p' "$work/summary.json" | head -1)
printf '%s bars, %s orders in %.1f s\n' "$bars" "$orders" "$secs"
awk -v start="$start" '
  { t[NR] = $1 - start; r[NR] = $2; if ($2 > peak) peak = $2 }
  END {
    n = NR; if (n == 0) { print "no sample"; exit }
    end = t[n]
    for (k = 1; k <= 10; k++) {
      # the last sample at or before k tenths of the run
      want = end * k / 10; best = 1
      for (i = 1; i <= n; i++) if (t[i] <= want) best = i
      printf "  %3d%% of the run (%5.1f s): RSS %6.1f MB\n", k * 10, t[best], r[best] / 1024
    }
    printf "peak RSS %.1f MB over %d samples\n", peak / 1024, n
  }' "$work/rss"
