#!/usr/bin/env bash
# CloudTrail Lake at scale: the server's memory while a store grows, STEP events at a time, to
# TOTAL events (the issue asks for ten million), with a GROUP BY and a time-range query after
# each step. Prints one line per step: events in the store, PutAuditEvents events/s for the
# step, the server's RSS (VmRSS) and peak RSS (VmHWM) after the puts and after the queries,
# the segment files' size and sluice.db's size.
#
#   bash bench/lake_rss.sh                      # STEP=1000000 TOTAL=10000000
#   STEP=500000 TOTAL=3000000 bash bench/lake_rss.sh
#
# Uses the release binary at SLUICE_BIN (default: target/release/sluice, built if missing) and
# the boto3 venv of bench/lake.sh. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

STEP="${STEP:-1000000}"
TOTAL="${TOTAL:-10000000}"
CLIENTS="${CLIENTS:-4}"
PORT="${SLUICE_PORT:-4642}"
VENV=/tmp/sluice-bench-lake-venv
PY="$VENV/bin/python"
HELPER=bench/lake.py
BIN="${SLUICE_BIN:-${CARGO_TARGET_DIR:-target}/release/sluice}"
if ! "$PY" -c "import boto3" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "boto3==1.44.5" "botocore==1.44.5" "duckdb==2.0.1"
fi
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d /tmp/sluice-bench-rss.XXXXXX)
cp "$BIN" "$WORK/sluice"
export LAKE_BENCH_NOW="$(date +%s)"
SLUICE_LOG=warn "$WORK/sluice" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  >"$WORK/sluice.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/_sluice/health" >/dev/null && break
  sleep 0.1
done
ENDPOINT="http://127.0.0.1:$PORT"
ACCOUNT=111122223333
read -r STORE CHANNEL < <("$PY" "$HELPER" setup "$ENDPOINT" "$ACCOUNT" \
  | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d['store'], d['channel'])")
rss() { awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {printf "%d MB (peak %d MB)", r/1024, h/1024}' "/proc/$PID/status"; }
echo "events  put/s  rss_after_puts  rss_after_queries  segments  sluice.db"
done_events=0
while [ "$done_events" -lt "$TOTAL" ]; do
  out=$("$PY" "$HELPER" append "$ENDPOINT" "$ACCOUNT" "$CHANNEL" "$done_events" "$STEP" "$CLIENTS" "$TOTAL")
  done_events=$((done_events + STEP))
  rate=$(echo "$out" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['events_per_second'])")
  after_puts=$(rss)
  "$PY" "$HELPER" query "$ENDPOINT" "$ACCOUNT" "$STORE" >/dev/null
  after_queries=$(rss)
  echo "$done_events  $rate  $after_puts  $after_queries  $(du -sh "$WORK/data/lake" 2>/dev/null | cut -f1)  $(du -sh "$WORK/data/sluice.db" | cut -f1)"
done
