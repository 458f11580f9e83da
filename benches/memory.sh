#!/usr/bin/env bash
# Bounded state: resident memory of the engine on a stream of one-off account numbers (four
# records in five name an account and a counterparty seen once), with dictionary eviction on
# (the default) and off, at every tenth of the stream. A benchmark, not a test: it prints
# numbers and checks nothing (crates/engine/tests/dictionary_tests.rs checks the behaviour).
#
#   benches/memory.sh [RECORDS] [DAYS]          (default 5000000, 400: four times max_history)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-5000000}"
days="${2:-400}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet -p fundwatch-engine --example one_off_accounts
bin="$CARGO_TARGET_DIR/release/examples/one_off_accounts"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
$pin "$bin" "$records" "$days"
echo
$pin "$bin" "$records" "$days" keep
