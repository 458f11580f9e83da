#!/usr/bin/env bash
# Replay benchmark over a generated stream, pinned to one core: records/s end to end
# (JSON decoding included), the same file's decode-only rate measured in the same run, and
# peak memory. A benchmark, not a test: it prints numbers and checks nothing.
#
#   benches/replay.sh [RECORDS] [SEED]          (default 1000000, 42)
#   RUSTFLAGS="-C target-cpu=x86-64-v3" benches/replay.sh   # AVX2 decoding (see README)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
seed="${2:-42}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet --bin fundwatch
bin="$CARGO_TARGET_DIR/release/fundwatch"
work="${BENCH_DIR:-/var/tmp/fundwatch-bench}"
mkdir -p "$work"
stream="$work/stream-$records-$seed.jsonl"
if [ ! -s "$stream" ]; then
  "$bin" generate --records "$records" --seed "$seed" --out "$stream" --labels "$stream.labels" >/dev/null
fi
echo "== $(basename "$stream") ($(du -h "$stream" | cut -f1)), pinned to CPU 0"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
timer=""
command -v /usr/bin/time >/dev/null && timer="/usr/bin/time -f   peak-memory-KiB=%M"
$timer $pin "$bin" replay --no-progress --decode-baseline \
  --input "$stream" --alerts "$work/alerts.jsonl" --summary-json "$work/summary.json"
"$bin" evaluate --alerts "$work/alerts.jsonl" --labels "$stream.labels"
