#!/usr/bin/env bash
# Shadow-run overhead: N one-minute bars (default 1,000,000, seed 42) through `vigil run
# --speed max`, trading ema_cross 1.0.0 from the registry, with and without a release of
# ema_cross 1.1.0 (spans 12/30) in shadow beside it; RUNS rounds, the order flipping each
# round; prints each run and both medians. Each run starts from a fresh store and registry.
# Usage: scripts/bench-shadow.sh            (BARS=…, RUNS=…, SEED=…)
set -euo pipefail
cd "$(dirname "$0")/.."
bars=${BARS:-1000000}
runs=${RUNS:-5}
seed=${SEED:-42}
cargo build --release --locked -p vigil
bin=$PWD/target/release/vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" data synth --bars "$bars" --seed "$seed" --out "$work/bars.csv"
mkdir -p "$work/v1" "$work/v2"
cp models/ema_cross/* "$work/v1/"
cp models/ema_cross/* "$work/v2/"
sed -i -e 's/^version = "1.0.0"/version = "1.1.0"/' -e 's/^fast_span = 10/fast_span = 12/' "$work/v2/model.toml"
# The manifest lists no file for the EMA cross, so the edit keeps it loadable.
sed -e 's/^line_pct = .*/line_pct = "0.99"/' \
    -e 's/^model = "ema_cross"/model = "registry:ema_cross"/' config/vigil.toml > "$work/vigil.toml"
printf '\n[store]\npath = "%s/state/vigil.db"\nsnapshots = "%s/state/snapshots"\n' "$work" "$work" >> "$work/vigil.toml"

setup() { # $1: with a release (1) or not (0)
  rm -rf "$work/logs" "$work/state"
  local c=(--config "$work/vigil.toml" --reason bench)
  "$bin" model register "$work/v1" --skip-gate "${c[@]}" >/dev/null 2>&1
  "$bin" model promote ema_cross candidate "${c[@]}" >/dev/null
  "$bin" model register "$work/v2" --skip-gate "${c[@]}" >/dev/null 2>&1
  if [ "$1" = 1 ]; then "$bin" model release start ema_cross "${c[@]}" >/dev/null; fi
}

declare -A results
for i in $(seq "$runs"); do
  order=(without with)
  if (( i % 2 == 0 )); then order=(with without); fi
  for mode in "${order[@]}"; do
    setup "$([ "$mode" = with ] && echo 1 || echo 0)"
    json=$("$bin" run --config "$work/vigil.toml" --data "$work/bars.csv" --speed max \
      --log-dir "$work/logs" --json 2>/dev/null)
    rate=$(printf '%s\n' "$json" | sed -n 's/.*"bars_per_second": *\([0-9.]*\).*/\1/p')
    secs=$(printf '%s\n' "$json" | sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p')
    printf 'run %d, %s shadow: %.0f bars/s (%.3f s)\n' "$i" "$mode" "$rate" "$secs"
    results[$mode]+="$rate "
  done
done
for mode in without with; do
  # shellcheck disable=SC2086
  median=$(printf '%s\n' ${results[$mode]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf 'median, %s shadow: %.0f bars/s over %d runs of %d bars\n' "$mode" "$median" "$runs" "$bars"
done
