#!/usr/bin/env bash
# Pipeline benchmark: N one-minute bars (default 1,000,000, seed 42) through all six agents
# with logging on, `vigil run --speed max`, RUNS times; prints each run and the median.
# MONITOR=on (default) runs the embedded config (monitoring and the control address on,
# the drawdown control line out of reach); MONITOR=off turns both off; MONITOR=both alternates the two run by run and
# prints both medians and their difference.
# BASELINE=path/to/an/older/vigil alternates that binary ("old") with this tree's ("new"),
# run by run on the same data and config (monitoring on), and prints both medians and their
# difference: how a change is checked against the binary before it.
# Usage: scripts/bench-pipeline.sh            (BARS=…, RUNS=…, SEED=…, MONITOR=…, BASELINE=…)
set -euo pipefail
cd "$(dirname "$0")/.."
bars=${BARS:-1000000}
runs=${RUNS:-5}
seed=${SEED:-42}
monitor=${MONITOR:-on}
case "$monitor" in
  on) modes=(on) ;;
  off) modes=(off) ;;
  both) modes=(on off) ;;
  *) echo "MONITOR must be on, off or both, not '$monitor'" >&2; exit 2 ;;
esac
baseline=${BASELINE:-}
if [ -n "$baseline" ]; then
  [ -x "$baseline" ] || { echo "BASELINE=$baseline is not an executable" >&2; exit 2; }
  modes=(new old)
fi
cargo build --release --locked -p vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/vigil data synth --bars "$bars" --seed "$seed" --out "$work/bars.csv"
# The embedded config with the drawdown control line out of reach: the random walk pays
# commission on ~37k round trips and falls 10% from its peak, and a line that engages would
# stop the trading this benchmark measures. The sensor still runs on every bar.
sed -e 's/^line_pct = .*/line_pct = "0.99"/' config/vigil.toml > "$work/on.toml"
# Each run starts from an empty store: a trading state saved by one run (a tripped breaker)
# would carry over into the next.
printf '\n[store]\npath = "%s/state/vigil.db"\n' "$work" >> "$work/on.toml"
# The same with monitoring (probes, rules, sysinfo, pings) and the control address turned
# off; heartbeats and the log stay on.
sed -e '/^\[monitor\]/a enabled = false' "$work/on.toml" > "$work/off.toml"
printf '\n[control]\nenabled = false\n' >> "$work/off.toml"

declare -A results
for i in $(seq "$runs"); do
  # ABBA: the order flips every round, so that neither side always runs first (the first
  # run of a round measured up to 15% slower on this machine, whichever binary it was).
  order=("${modes[@]}")
  if (( i % 2 == 0 )) && (( ${#modes[@]} == 2 )); then
    order=("${modes[1]}" "${modes[0]}")
  fi
  for mode in "${order[@]}"; do
    bin=./target/release/vigil
    config=$mode
    case "$mode" in
      new) config=on ;;
      old) config=on; bin=$baseline ;;
    esac
    args=(--config "$work/$config.toml")
    rm -rf "$work/logs" "$work/state"
    json=$("$bin" run "${args[@]}" --data "$work/bars.csv" --speed max --log-dir "$work/logs" --json 2>/dev/null)
    rate=$(printf '%s\n' "$json" | sed -n 's/.*"bars_per_second": *\([0-9.]*\).*/\1/p')
    lines=$(printf '%s\n' "$json" | sed -n 's/.*"log_lines": *\([0-9]*\).*/\1/p')
    secs=$(printf '%s\n' "$json" | sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p')
    label="monitoring $mode"
    [ -n "$baseline" ] && label="$mode binary"
    printf 'run %d, %s: %.0f bars/s (%.3f s, %s log lines)\n' "$i" "$label" "$rate" "$secs" "$lines"
    results[$mode]+="$rate "
  done
done
declare -A medians
for mode in "${modes[@]}"; do
  # shellcheck disable=SC2086
  medians[$mode]=$(printf '%s\n' ${results[$mode]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  label="monitoring $mode"
  [ -n "$baseline" ] && label="$mode binary"
  printf 'median, %s: %.0f bars/s over %d runs of %d bars\n' "$label" "${medians[$mode]}" "$runs" "$bars"
done
if [ -n "$baseline" ]; then
  awk -v new="${medians[new]}" -v old="${medians[old]}" \
    'BEGIN { printf "new against old: %+.1f%%\n", (new - old) / old * 100 }'
elif [ "$monitor" = both ]; then
  awk -v on="${medians[on]}" -v off="${medians[off]}" \
    'BEGIN { printf "monitoring costs %.1f%% of the pipeline rate\n", (off - on) / off * 100 }'
fi
