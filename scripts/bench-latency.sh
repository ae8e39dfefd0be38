#!/usr/bin/env bash
# Decision latency: from a bar's arrival at the Data agent to the venue's answer to the
# order it caused, through all six agents with logging and monitoring on, on a live-paced
# replay (each bar sent alone, on the wall clock): `vigil run --speed SPEED` over BARS
# synthetic one-minute bars (default 100,000, seed 42; SPEED default 600000, a minute bar
# every 100 µs, a night in 0.1 s), RUNS times. The Execution agent measures every order
# (the same figures /metrics serves as vigil_decision_latency_seconds) and the run's
# summary gives the quantiles; this prints each run's and the median of each quantile.
# The signal uses fast EMAs (FAST/SLOW, default 2/5) so that orders come every few bars.
# Usage: scripts/bench-latency.sh        (BARS=…, RUNS=…, SEED=…, SPEED=…, FAST=…, SLOW=…)
set -euo pipefail
cd "$(dirname "$0")/.."
bars=${BARS:-100000}
runs=${RUNS:-3}
seed=${SEED:-42}
speed=${SPEED:-600000}
fast=${FAST:-2}
slow=${SLOW:-5}
cargo build --release --locked -p vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/vigil data synth --bars "$bars" --seed "$seed" --out "$work/bars.csv"
# The embedded config (logging, monitoring and the control address on) with fast EMAs, and
# the drawdown control line out of reach: a line that engages would stop the trading this
# benchmark measures.
sed -e 's/^line_pct = .*/line_pct = "0.99"/' \
    -e "s/^fast_span = .*/fast_span = $fast/" \
    -e "s/^slow_span = .*/slow_span = $slow/" config/vigil.toml > "$work/vigil.toml"
printf '\n[store]\npath = "%s/state/vigil.db"\n' "$work" >> "$work/vigil.toml"
# The weekly drawdown rule (CRITICAL: it trips the breaker) off: the random walk falls 5% in
# a week now and then, and a tripped breaker would stop the orders measured here.
printf '\n[[monitor.rules]]\nname = "weekly_drawdown_high"\nmetric = "weekly_drawdown_ratio"\nop = ">"\nvalue = 0.05\nlevel = "CRITICAL"\nenabled = false\n' >> "$work/vigil.toml"
field() { printf '%s\n' "$1" | tr ',{}' '\n\n\n' | sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" | head -1; }
declare -a p50s p99s
for i in $(seq "$runs"); do
  rm -rf "$work/logs" "$work/state"
  json=$(./target/release/vigil run --config "$work/vigil.toml" --data "$work/bars.csv" \
    --speed "$speed" --log-dir "$work/logs" --json 2>/dev/null)
  n=$(field "$json" count)
  p50=$(field "$json" p50_us)
  p90=$(field "$json" p90_us)
  p99=$(field "$json" p99_us)
  p999=$(field "$json" p999_us)
  max=$(field "$json" max_us)
  secs=$(field "$json" wall_seconds)
  printf 'run %d: %s orders in %.1f s: p50 %s µs, p90 %s µs, p99 %s µs, p99.9 %s µs, max %s µs\n' \
    "$i" "$n" "$secs" "$p50" "$p90" "$p99" "$p999" "$max"
  p50s+=("$p50")
  p99s+=("$p99")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf 'median of %d runs of %d bars at %s× real time: p50 %s µs, p99 %s µs\n' \
  "$runs" "$bars" "$speed" "$(median "${p50s[@]}")" "$(median "${p99s[@]}")"
