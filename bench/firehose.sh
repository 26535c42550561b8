#!/usr/bin/env bash
# Firehose throughput: records/s from PutRecordBatch (boto3, 500 records a call, 4 threads) to
# objects readable through S3, for UNCOMPRESSED and GZIP delivery streams (SizeInMBs 5,
# IntervalInSeconds 1), beside the in-memory ceiling in the same run: the same records
# concatenated into the same 5 MiB buffers, gzipped when asked, one file write + fsync each.
#
#   bash bench/firehose.sh          # from the repo root
#
# Env: COUNT (100000 records), SIZE (1024 bytes a record), SLUICE_PORT (4632).
# Traffic goes to 127.0.0.1 only; every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-100000}"
SIZE="${SIZE:-1024}"
SLUICE_PORT="${SLUICE_PORT:-4632}"
BOTO_VERSION=1.44.5
VENV=/tmp/sluice-bench-venv
PY="$VENV/bin/python"
HELPER=bench/firehose.py

if ! "$PY" -c "import boto3; assert boto3.__version__ == '$BOTO_VERSION'" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION"
fi

cargo build --release --quiet
WORK=$(mktemp -d /tmp/sluice-bench-firehose.XXXXXX)
mkdir "$WORK/bin" && cp "${CARGO_TARGET_DIR:-target}/release/sluice" "$WORK/bin/sluice"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
SLUICE_VERSION="$("$WORK/bin/sluice" --version | awk '{print $2}') ($commit)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
"$WORK/bin/sluice" serve --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$WORK/data" >"$WORK/sluice.log" 2>&1 &
PID=$!
ENDPOINT="http://127.0.0.1:$SLUICE_PORT"
for _ in $(seq 300); do
  curl -s -o /dev/null --max-time 2 "$ENDPOINT/_sluice/health" && break
  sleep 0.1
done

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
ROWS=()
CPU=()
for compression in UNCOMPRESSED GZIP; do
  s0=$(proc_ticks "$PID"); w0=$(date +%s.%N)
  read -r rps mibs objects < <(timeout 900 "$PY" "$HELPER" sluice "$ENDPOINT" "$COUNT" "$SIZE" "$compression")
  s1=$(proc_ticks "$PID"); w1=$(date +%s.%N)
  CPU+=("$compression: sluice used $(awk -v t="$((s1 - s0))" -v hz="$HZ" -v a="$w0" -v b="$w1" 'BEGIN {printf "%.1f CPU s over %.1f s of wall clock (records generated, put, waited for, read back and checked)", t / hz, b - a}')")
  ROWS+=("| sluice $SLUICE_VERSION, PutRecordBatch -> S3 objects readable | $compression | $rps | $mibs | $objects |")
  read -r rps mibs objects < <(timeout 900 "$PY" "$HELPER" ceiling "$WORK/ceiling-$compression" "$COUNT" "$SIZE" "$compression")
  ROWS+=("| ceiling: in memory, concatenate (+ gzip) + one file write + fsync per buffer | $compression | $rps | $mibs | $objects |")
done
errlines=$(grep -cE ' ERROR |panicked' "$WORK/sluice.log" || true)

echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average before the run: $LOAD0"
printf '%s\n' "${CPU[@]}"
echo "load: $COUNT records of $SIZE bytes; every delivered record checked against those put; server log error lines: $errlines"
echo
echo "| path | compression | records/s | MiB/s | objects |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
