#!/usr/bin/env bash
# Shadow-run and canary overhead: N one-minute bars (default 1,000,000, seed 42) through
# `vigil run --speed max`, trading ema_cross 1.0.0 from the registry: without a release,
# with a release of ema_cross 1.1.0 (spans 12/30) in shadow beside it, and with that
# release in its canary at 50 % of capital (both versions netted, sub-ledgers kept); RUNS
# rounds, the order rotating each round; prints each run and the medians. Each run starts
# from a fresh store and registry; `auto_promote` is off so that each mode stays as set.
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
printf '\n[release.canary]\nauto_promote = false\nmargin_bps = 10000.0\n\n[release.rollback]\nenabled = false\n' >> "$work/vigil.toml"

setup() { # $1: no release (0), in shadow (1), in its canary's third step, 50 % (2)
  rm -rf "$work/logs" "$work/state"
  local c=(--config "$work/vigil.toml" --reason bench)
  "$bin" model register "$work/v1" --skip-gate "${c[@]}" >/dev/null 2>&1
  "$bin" model promote ema_cross candidate "${c[@]}" >/dev/null
  "$bin" model register "$work/v2" --skip-gate "${c[@]}" >/dev/null 2>&1
  if [ "$1" != 0 ]; then "$bin" model release start ema_cross "${c[@]}" >/dev/null; fi
  if [ "$1" = 2 ]; then
    for _ in 1 2 3; do "$bin" model release step ema_cross "${c[@]}" >/dev/null; done
  fi
}

declare -A results
for i in $(seq "$runs"); do
  case $(( i % 3 )) in
    1) order=(without with canary) ;;
    2) order=(with canary without) ;;
    *) order=(canary without with) ;;
  esac
  for mode in "${order[@]}"; do
    case $mode in without) setup 0 ;; with) setup 1 ;; canary) setup 2 ;; esac
    json=$("$bin" run --config "$work/vigil.toml" --data "$work/bars.csv" --speed max \
      --log-dir "$work/logs" --json 2>/dev/null)
    rate=$(printf '%s\n' "$json" | sed -n 's/.*"bars_per_second": *\([0-9.]*\).*/\1/p')
    secs=$(printf '%s\n' "$json" | sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p')
    printf 'run %d, %s: %.0f bars/s (%.3f s)\n' "$i" "$mode" "$rate" "$secs"
    results[$mode]+="$rate "
  done
done
for mode in without with canary; do
  # shellcheck disable=SC2086
  median=$(printf '%s\n' ${results[$mode]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf 'median, %s: %.0f bars/s over %d runs of %d bars\n' "$mode" "$median" "$runs" "$bars"
done
