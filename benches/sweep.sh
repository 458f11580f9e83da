#!/usr/bin/env bash
# Sweep benchmark: one `fundwatch backtest --sweep` of N values over a generated stream,
# against N sequential `fundwatch replay` runs of the same configs, in the same run. Prints
# both wall times, the speed-up, and peak memory. A benchmark, not a test.
#
#   benches/sweep.sh [RECORDS] [SEED] [SPEC]
#   default: 1000000 records, seed 42, scatter_in_concentrated_out.min_distinct_payers=3:22:1 (20 values)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
seed="${2:-42}"
spec="${3:-scatter_in_concentrated_out.min_distinct_payers=3:22:1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet --bin fundwatch --features report
bin="$CARGO_TARGET_DIR/release/fundwatch"
work="${BENCH_DIR:-/var/tmp/fundwatch-bench}"
mkdir -p "$work/sweep-configs"
stream="$work/stream-$records-$seed.jsonl"
if [ ! -s "$stream" ]; then
  "$bin" generate --records "$records" --seed "$seed" --out "$stream" --labels "$stream.labels" >/dev/null
fi
field="${spec%%=*}"          # rule.param
rule="${field%%.*}"
param="${field#*.}"
range="${spec#*=}"
IFS=: read -r from to step <<<"$range"
values=$(seq "$from" "$step" "$to")
n=$(wc -w <<<"$values")
echo "== $(basename "$stream") ($(du -h "$stream" | cut -f1)); $n values of $field; $(nproc) cores"

timer=""
command -v /usr/bin/time >/dev/null && timer="/usr/bin/time -f peak-memory-KiB=%M"
t0=$(date +%s.%N)
# --no-cases: the lanes path this benchmark measures (with the case stage every point is a
# full run of its config, as slow as that many replays).
$timer "$bin" backtest --input "$stream" --labels "$stream.labels" --sweep "$spec" --no-cases \
  --out "$work/sweep-report" >"$work/sweep.out"
t1=$(date +%s.%N)
grep -E "^stream|^sweep of" "$work/sweep.out"
sweep_s=$(echo "$t1 - $t0" | bc)

t0=$(date +%s.%N)
for v in $values; do
  cfg="$work/sweep-configs/$param-$v.toml"
  printf '[rules.%s]\n%s = %s\n' "$rule" "$param" "$v" >"$cfg"
  "$bin" replay --no-progress --input "$stream" --config "$cfg" --alerts "$work/sweep-configs/alerts-$v.jsonl" >/dev/null
done
t1=$(date +%s.%N)
replays_s=$(echo "$t1 - $t0" | bc)
printf 'sweep (decode once, %s points)   %8.2f s\n' "$n" "$sweep_s"
printf '%s sequential replays            %8.2f s\n' "$n" "$replays_s"
printf 'speed-up                          %8.1fx\n' "$(echo "$replays_s / $sweep_s" | bc -l)"
