#!/usr/bin/env bash
# Kafka service benchmark against the local single-node broker of scripts/kafka.sh.
# A benchmark, not a test: it prints numbers and checks nothing.
#
#  1. Throughput: a generated stream is loaded (fundwatch produce, full speed) into a fresh
#     4-partition topic; then, REPS times, a bare rdkafka BaseConsumer reads it to its end
#     (the baseline) and `fundwatch run --exit-when-idle-ms 2000` drains it with a fresh
#     consumer group; service rate / bare rate is printed as a percentage.
#  2. Latency: the service runs live on fresh topics (started before anything is produced),
#     `fundwatch produce --rate RATE` offers RATE records/s for LATENCY_SECONDS, and
#     `fundwatch-kafka-test-service --latency` reports produce-to-alert latency percentiles
#     for every alert (its `triggered_by` input record's Kafka timestamp → the alert's
#     Kafka timestamp, and → when a read_committed consumer received it). Once with
#     `[engine] allowed_lateness` at its default (10m) and once at 0s, REPS times each.
#
#   benches/kafka.sh
#   env: RECORDS=200000 SEED=5 REPS=2 RATE=2000 LATENCY_SECONDS=60 COMMIT_INTERVAL=500ms
#        KAFKA_PORT (as for scripts/kafka.sh)
#
# The broker is started when it is not running, and stopped again at the end only then.
# Every topic gets a unique name and is deleted at the end; temp files go too.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${RECORDS:-200000}"
seed="${SEED:-5}"
reps="${REPS:-2}"
rate="${RATE:-2000}"
lat_secs="${LATENCY_SECONDS:-60}"
commit_interval="${COMMIT_INTERVAL:-500ms}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
cargo build --release --quiet --bin fundwatch
cargo build --release --quiet -p fundwatch-kafka --bins
fw="$CARGO_TARGET_DIR/release/fundwatch"
tsvc="$CARGO_TARGET_DIR/release/fundwatch-kafka-test-service"

work="$(mktemp -d "${TMPDIR:-/tmp}/fundwatch-kafka-bench.XXXXXX")"
run_id="fwb-$$-$(date +%s)"
was_running=0
scripts/kafka.sh status >/dev/null 2>&1 && was_running=1
bootstrap=""
topics=()
pids=()

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  if ((${#topics[@]})) && [[ -n "$bootstrap" ]] && [[ -s "$work/admin.toml" ]]; then
    "$tsvc" --config "$work/admin.toml" --delete-topics "$(IFS=,; echo "${topics[*]}")" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if ((was_running == 0)); then
    echo "== stopping the broker this run started" >&2
    scripts/kafka.sh stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((was_running == 0)); then
  echo "== starting the local broker (scripts/kafka.sh start); it is stopped again at the end" >&2
fi
bootstrap="$(scripts/kafka.sh start)"
printf '[kafka]\nbrokers = "%s"\n' "$bootstrap" >"$work/admin.toml"

# create NAME:PARTITIONS...
create() {
  local t
  "$tsvc" --config "$work/admin.toml" --create-topics "$(IFS=,; echo "$*")" >/dev/null
  for t in "$@"; do topics+=("${t%:*}"); done
}

# config FILE GROUP INPUT ALERTS DEAD LATENESS
config() {
  cat >"$1" <<EOF
[engine]
allowed_lateness = "$6"

[kafka]
brokers = "$bootstrap"
group_id = "$2"
input_topic = "$3"
alert_topic = "$4"
dead_letter_topic = "$5"
transactional_id_prefix = "fwb"
commit_interval = "$commit_interval"

[service]
shutdown_grace = "10s"
EOF
}

ncpu="$(nproc 2>/dev/null || echo '?')"
echo "== fundwatch Kafka benchmark: broker $bootstrap, $ncpu CPUs (broker, producer, service and readers share them), commit_interval $commit_interval"

stream="$work/stream.jsonl"
"$fw" generate --records "$records" --seed "$seed" --out "$stream" --labels "$work/labels.jsonl" >/dev/null
lines="$(wc -l <"$stream")"
echo "== stream: fundwatch generate --records $records --seed $seed: $lines lines, $(du -h "$stream" | cut -f1)"

# ------------------------------------------------------------------ 1. throughput
in="$run_id-tp-in"
create "$in:4"
config "$work/tp.toml" "$run_id-tp-produce" "$in" "$run_id-unused" "$run_id-unused" 10m
"$fw" produce --config "$work/tp.toml" --input "$stream" --topic "$in" >"$work/produce.json" 2>"$work/produce.log"
echo
echo "== 1. throughput over $in (4 partitions): $(jq -r '"\(.records) records produced in \(.seconds*100|round/100) s (\(.records_per_second|round) records/s)"' "$work/produce.json")"
echo "   bare  = rdkafka BaseConsumer reading to the end, first to last record"
echo "   bare+decode = the same, also decoding every record with fundwatch's decoder (no engine)"
echo "   busy  = service busy_records_per_second (first record polled to last; no group join, no idle wait)"
echo "   total = service records_per_second (whole run: start-up, group join, 2 s idle wait, final commit)"
for ((rep = 1; rep <= reps; rep++)); do
  bare_json="$("$tsvc" --config "$work/tp.toml" --bare-consume "$in" 2>"$work/bare.log")"
  bare="$(jq -r '.records_per_second' <<<"$bare_json")"
  decode_json="$("$tsvc" --config "$work/tp.toml" --bare-consume "$in" --bare-decode 2>>"$work/bare.log")"
  decode="$(jq -r '.records_per_second' <<<"$decode_json")"
  alerts="$run_id-tp-alerts-$rep"
  dead="$run_id-tp-dead-$rep"
  create "$alerts:4" "$dead:1"
  config "$work/tp-run.toml" "$run_id-tp-g$rep" "$in" "$alerts" "$dead" 10m
  "$fw" run --config "$work/tp-run.toml" --exit-when-idle-ms 2000 --instance-id "bench-$run_id-tp-$rep" \
    --listen off >"$work/run.json" 2>"$work/run.log" || {
    tail -20 "$work/run.log" >&2
    exit 1
  }
  jq -r --argjson bare "$bare" --argjson decode "$decode" --argjson bn "$(jq .records <<<"$bare_json")" --argjson rep "$rep" '
    "   run \($rep): bare \($bare|round) records/s (\($bn) records)  |  bare+decode \($decode|round) records/s = \(100*$decode/$bare|round)% of bare  |  service busy \(.busy_records_per_second|round) records/s (\(.busy_seconds*100|round/100) s) = \(100*.busy_records_per_second/$bare|round)% of bare  |  total \(.records_per_second|round) records/s (\(.seconds*100|round/100) s) = \(100*.records_per_second/$bare|round)% of bare  |  \(.records_consumed) records, \(.alerts) alerts, \(.rejected) rejected, \(.transactions_committed) transactions (\(.commit_seconds*1000|round) ms committing)"' \
    "$work/run.json"
done

# ------------------------------------------------------------------ 2. latency
n_lat=$((rate * lat_secs))
echo
echo "== 2. produce-to-alert latency: service live first, then $n_lat records offered at $rate records/s (~${lat_secs} s), commit_interval $commit_interval"
for lateness in 10m 0s; do
  for ((rep = 1; rep <= reps; rep++)); do
    tag="lat-$lateness-$rep"
    in="$run_id-$tag-in"
    alerts="$run_id-$tag-alerts"
    dead="$run_id-$tag-dead"
    create "$in:4" "$alerts:4" "$dead:1"
    cfg="$work/$tag.toml"
    config "$cfg" "$run_id-$tag-g" "$in" "$alerts" "$dead" "$lateness"
    "$fw" run --config "$cfg" --instance-id "bench-$run_id-$tag" --listen off \
      >"$work/$tag-run.json" 2>"$work/$tag-run.log" &
    svc=$!
    pids+=("$svc")
    for ((i = 0; i < 600; i++)); do
      grep -q "partitions assigned" "$work/$tag-run.log" && break
      kill -0 "$svc" 2>/dev/null || break
      sleep 0.1
    done
    if ! grep -q "partitions assigned" "$work/$tag-run.log"; then
      echo "the service did not get its partitions within 60 s:" >&2
      tail -20 "$work/$tag-run.log" >&2
      exit 1
    fi
    sleep 1 # let it resolve its start offsets before the first record arrives
    "$tsvc" --config "$cfg" --latency "$in" "$alerts" --latency-idle-ms 10000 \
      >"$work/$tag-lat.txt" 2>"$work/$tag-lat.log" &
    lat=$!
    pids+=("$lat")
    sleep 1
    "$fw" produce --config "$cfg" --input "$stream" --topic "$in" --rate "$rate" --limit "$n_lat" \
      >"$work/$tag-produce.json" 2>"$work/$tag-produce.log"
    lat_rc=0
    wait "$lat" || lat_rc=$?
    kill -TERM "$svc" 2>/dev/null || true
    svc_rc=0
    wait "$svc" || svc_rc=$?
    echo
    echo "-- allowed_lateness $lateness, run $rep: produced $(jq -r '"\(.records) records at \(.records_per_second|round) records/s"' "$work/$tag-produce.json"); service: $(jq -r '"\(.records_consumed) records, \(.alerts) alerts committed, \(.transactions_committed) transactions"' "$work/$tag-run.json" 2>/dev/null || echo "exit $svc_rc, no summary")"
    if ((lat_rc != 0)); then
      echo "latency reader failed (exit $lat_rc):" >&2
      tail -20 "$work/$tag-lat.log" >&2
      exit 1
    fi
    sed 's/^/   /' "$work/$tag-lat.txt"
  done
done
echo
echo "Notes: 'alert Kafka ts' is the alert's CreateTime, stamped when the service handed it to its"
echo "transactional producer (not yet visible); 'visible' is when a read_committed consumer got it,"
echo "i.e. after the transaction that carries it committed (every commit_interval). All clocks are"
echo "this host's wall clock. With allowed_lateness 10m a record is released only when its"
echo "partition's event time has moved 10 min past it; the generated stream's event time runs far"
echo "faster than the wall clock (the 'event time advances Nx' line), so that hold is milliseconds"
echo "here. On a real-time stream it would add up to the full allowed_lateness to every alert."
