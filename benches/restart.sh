#!/usr/bin/env bash
# Restart benchmark: what a restart of a caught-up instance re-reads, and how long it takes to
# be live again, with and without checkpoints, on a long stream whose Kafka timestamps are its
# event times. A benchmark, not a test: it prints numbers and checks nothing.
#
#  1. `fundwatch generate --days DAYS --records RECORDS` into a fresh 4-partition topic with
#     retention.ms=-1 and retention.bytes=-1 (`fundwatch produce --event-time`; scripts/kafka.sh
#     caps partitions at 64 MiB by default).
#  2. `fundwatch run --exit-when-idle-ms 2000` drains it (checkpoints written at the end).
#  3. The same instance restarted, caught up: with checkpoints (restore), then with
#     `checkpoint_interval = "0s"` (rebuild from the input's lookback). For each: records
#     re-read (`records_replayed`), seconds to the idle exit (start-up, group join, restore or
#     rebuild, 2 s idle wait), and the checkpoint bytes and time of the first run.
#
#   benches/restart.sh
#   env: RECORDS=2400000 DAYS=220 SEED=5 KAFKA_PORT (as for scripts/kafka.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${RECORDS:-2400000}"
days="${DAYS:-220}"
seed="${SEED:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet --bin fundwatch
cargo build --release --quiet -p fundwatch-kafka --bins
fw="$CARGO_TARGET_DIR/release/fundwatch"
tsvc="$CARGO_TARGET_DIR/release/fundwatch-kafka-test-service"
work="$(mktemp -d "${TMPDIR:-/tmp}/fundwatch-restart-bench.XXXXXX")"
id="fwr-$$-$(date +%s)"
was_running=0
scripts/kafka.sh status >/dev/null 2>&1 && was_running=1
bootstrap=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$bootstrap" ]] && [[ -s "$work/admin.toml" ]]; then
    "$tsvc" --config "$work/admin.toml" --delete-topics "$id-in,$id-alerts,$id-dead,$id-state" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if ((was_running == 0)); then scripts/kafka.sh stop || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bootstrap="$(scripts/kafka.sh start)"
printf '[kafka]\nbrokers = "%s"\n' "$bootstrap" >"$work/admin.toml"
"$tsvc" --config "$work/admin.toml" --create-topics "$id-in:4:retention.ms=-1:retention.bytes=-1,$id-alerts:4,$id-dead:1" >/dev/null
config() { # FILE CHECKPOINT_INTERVAL
  cat >"$1" <<EOF
[kafka]
brokers = "$bootstrap"
group_id = "$id-group"
input_topic = "$id-in"
alert_topic = "$id-alerts"
dead_letter_topic = "$id-dead"
state_topic = "$id-state"
transactional_id_prefix = "fwr"
checkpoint_interval = "$2"
EOF
}
config "$work/on.toml" 30s
config "$work/off.toml" 0s
stream="$work/stream.jsonl"
"$fw" generate --records "$records" --days "$days" --seed "$seed" --out "$stream" --labels "$work/labels.jsonl" >/dev/null
"$fw" produce --config "$work/on.toml" --input "$stream" --event-time >"$work/produce.json" 2>"$work/produce.log"
echo "== restart benchmark: $(jq -r .records "$work/produce.json") records over $days days in $id-in (4 partitions, Kafka time = event time), $(nproc) CPUs shared with the broker"
run() { # NAME CONFIG
  local t0 t1
  t0=$(date +%s.%N)
  "$fw" run --config "$2" --exit-when-idle-ms 2000 --instance-id "$id-i" --listen off >"$work/$1.json" 2>"$work/$1.log" || {
    tail -20 "$work/$1.log" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  jq -r --arg name "$1" --arg wall "$(echo "$t1 - $t0" | bc)" '
    "   \($name): \($wall|tonumber*10|round/10) s wall, \(.records_consumed) records live, \(.records_replayed) re-read, starts \(.partition_starts|tostring), \(.checkpoints) checkpoints \(.checkpoint_bytes/1048576*10|round/10) MiB in \(.checkpoint_seconds*1000|round) ms, \(.alerts) alerts"' "$work/$1.json"
}
run "first run (drain, checkpoints on)" "$work/on.toml"
run "caught-up restart, checkpoints on" "$work/on.toml"
run "caught-up restart, checkpoints off" "$work/off.toml"
grep -h "restored from checkpoint" "$work/caught-up restart, checkpoints on.log" | head -4 | sed 's/^/   /' || true
