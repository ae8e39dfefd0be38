#!/usr/bin/env bash
# Pipeline benchmark: N one-minute bars (default 1,000,000, seed 42) through all six agents
# with logging on, `vigil run --speed max`, RUNS times; prints each run and the median.
# Usage: scripts/bench-pipeline.sh            (BARS=…, RUNS=…, SEED=… to change)
set -euo pipefail
cd "$(dirname "$0")/.."
bars=${BARS:-1000000}
runs=${RUNS:-5}
seed=${SEED:-42}
cargo build --release --locked -p vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/vigil data synth --bars "$bars" --seed "$seed" --out "$work/bars.csv"
results=()
for i in $(seq "$runs"); do
  rm -rf "$work/logs"
  json=$(./target/release/vigil run --data "$work/bars.csv" --speed max --log-dir "$work/logs" --json 2>/dev/null)
  rate=$(printf '%s\n' "$json" | sed -n 's/.*"bars_per_second": *\([0-9.]*\).*/\1/p')
  lines=$(printf '%s\n' "$json" | sed -n 's/.*"log_lines": *\([0-9]*\).*/\1/p')
  secs=$(printf '%s\n' "$json" | sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p')
  printf 'run %d: %.0f bars/s (%.3f s, %s log lines)\n' "$i" "$rate" "$secs" "$lines"
  results+=("$rate")
done
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'median: %.0f bars/s over %d runs of %d bars\n' "$median" "$runs" "$bars"
