#!/usr/bin/env bash
# What the case-linking stage costs: replay of one generated evasive stream with and without
# `--cases`, each pinned to one core, three times alternating; prints records/s, user CPU
# seconds and peak memory of each run, then scores the cases against the generator's truth.
# A benchmark, not a test: it prints numbers and checks nothing.
#
#   benches/cases.sh [RECORDS] [SEED]          (default 1000000, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
seed="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet --bin fundwatch
bin="$CARGO_TARGET_DIR/release/fundwatch"
work="${BENCH_DIR:-/var/tmp/fundwatch-bench}"
mkdir -p "$work"
stream="$work/evasive-$records-$seed.jsonl"
if [ ! -s "$stream" ]; then
  "$bin" generate --profile evasive --records "$records" --seed "$seed" --out "$stream" --labels "$stream.labels" >/dev/null
fi
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
for round in 1 2 3; do
  for mode in plain cases; do
    extra=()
    [ "$mode" = cases ] && extra=(--cases "$work/cases.jsonl")
    /usr/bin/time -f "  $mode: user %U s, peak memory %M KiB" $pin "$bin" replay --no-progress \
      --input "$stream" --alerts "$work/alerts-$mode.jsonl" "${extra[@]}" 2>&1 |
      grep -E "records/s|cases  |user" | sed "s/^/  [$round $mode]/"
  done
done
"$bin" score-cases --labels "$stream.labels" --cases "$work/cases.jsonl"
