#!/usr/bin/env bash
# Detection quality on generated streams: per rule, the worst and the mean F1 over SEEDS seeds,
# for both generator profiles, with all fields and with each metadata field stripped (what a
# bank loses when its feed lacks that column). Prints the README's ablation table.
#
#   benches/detection.sh                 # 5 seeds, 300k records, 90 days
#   SEEDS="1 2 3" RECORDS=1000000 DAYS=120 benches/detection.sh
#
# Uses the generator's and the backtest's examples (no Kafka, no polars: builds in a minute or
# two); each stream is scored with the default config, then deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fundwatch-target}"
SEEDS="${SEEDS:-1 2 3 4 5}"
RECORDS="${RECORDS:-300000}"
DAYS="${DAYS:-90}"
PROFILES="${PROFILES:-standard evasive}"
STRIPS="${STRIPS:-none memo industry channel account_type}"

cargo build --release -q -p fundwatch-generate --example cli
cargo build --release -q -p fundwatch-backtest --example typology_scores
gen="$CARGO_TARGET_DIR/release/examples/cli"
score="$CARGO_TARGET_DIR/release/examples/typology_scores"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for profile in $PROFILES; do
  for strip in $STRIPS; do
    for seed in $SEEDS; do
      name="$profile-$strip-$seed"
      args=(--profile "$profile" --records "$RECORDS" --days "$DAYS" --seed "$seed")
      [ "$strip" = none ] || args+=(--strip "$strip")
      "$gen" "${args[@]}" --out "$work/s.jsonl" --labels "$work/l.jsonl" >/dev/null
      "$score" "$work/s.jsonl" "$work/l.jsonl" >"$work/$name.txt"
      rm -f "$work/s.jsonl"
    done
  done
done

# The evaluation table's rows: rule truth pred TP FP FN precision recall F1.
echo "records $RECORDS, days $DAYS, seeds: $SEEDS (F1 worst / mean; worst seed in brackets)"
echo
echo "| profile | stripped | scatter-in | periodic | pass-through | structuring | large_value |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for profile in $PROFILES; do
  for strip in $STRIPS; do
    row="| $profile | $strip |"
    for rule in scatter_in_concentrated_out periodic_batch_small_out rapid_pass_through structuring large_value; do
      cell=$(for seed in $SEEDS; do
        awk -v r="$rule" -v s="$seed" '$1 == r && NF == 9 && $2 ~ /^[0-9]+$/ { print $9, s }' "$work/$profile-$strip-$seed.txt"
      done | awk '{ n++; sum += $1; if (n == 1 || $1 < w) { w = $1; ws = $2 } }
                 END { if (n) printf "%.3f / %.3f (%s)", w, sum / n, ws }')
      row="$row $cell |"
    done
    echo "$row"
  done
done
