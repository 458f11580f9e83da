#!/usr/bin/env bash
# Render a fundwatch report in headless Chromium (Debian package `chromium`) and save a
# screenshot: proof that the self-contained HTML draws its plots without a network.
#
#   scripts/report-screenshot.sh fundwatch-report/report.html report.png [WIDTHxHEIGHT]
set -euo pipefail
html=${1:?usage: report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]}
out=${2:?usage: report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]}
size=${3:-1280x4000}
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [[ -z "$browser" ]]; then
  echo "no Chromium found: sudo apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)" >&2
  exit 3
fi
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# A throwaway profile, no network: the report must not need one.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --proxy-server='127.0.0.1:9' --proxy-bypass-list='<-loopback>' \
  --window-size="${size/x/,}" --screenshot="$out_abs" "file://$abs" >/dev/null 2>&1
[[ -s "$out_abs" ]] || { echo "Chromium wrote no screenshot" >&2; exit 1; }
echo "$out_abs"
